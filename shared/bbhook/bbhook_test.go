package bbhook_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/bbhook"
	"forgelink/shared/forgelink"
)

const whCorpusDir = "../../testdata/corpus/bitbucket"

// whCorpus lists every webhook payload of the corpus with the event key
// Bitbucket sends it under and what ParseEvent must make of it. The values
// were read off the JSON files. These 2018 payloads have no actor nickname
// and no repository mainbranch.
var whCorpus = []struct {
	file  string
	event string
	want  []forgelink.Event
}{
	{
		file:  "repo-push.json",
		event: "repo:push",
		want: []forgelink.Event{{
			Type:     forgelink.BranchPush,
			Branch:   "master",
			Revision: "141977fedf5cf35aa290ac87d4b5177ac4cd9de1",
			Before:   "40e7580cf11311d84a6e5e97e2cbba6df1675750",
			Message:  "Update README\n",
			Actor:    "brydzewski",
		}},
	},
	{
		file:  "repo-push.branch-create.json",
		event: "repo:push",
		want: []forgelink.Event{{
			Type:     forgelink.BranchPush,
			Branch:   "develop",
			Revision: "141977fedf5cf35aa290ac87d4b5177ac4cd9de1",
			Message:  "Update README\n",
			Actor:    "brydzewski",
		}},
	},
	{
		file:  "repo-push.branch-delete.json",
		event: "repo:push",
		want: []forgelink.Event{{
			Type:   forgelink.BranchDelete,
			Branch: "develop",
			Before: "141977fedf5cf35aa290ac87d4b5177ac4cd9de1",
			Actor:  "brydzewski",
		}},
	},
	{
		file:  "repo-push.tag-create.json",
		event: "repo:push",
		want: []forgelink.Event{{
			Type:     forgelink.TagPush,
			Tag:      "feature/x",
			Revision: "141977fedf5cf35aa290ac87d4b5177ac4cd9de1",
			Message:  "Update README\n",
			Actor:    "brydzewski",
		}},
	},
	{
		// Bitbucket sends 12-digit commit hashes in pull request payloads.
		file:  "pullrequest-created.json",
		event: "pullrequest:created",
		want: []forgelink.Event{{
			Type:     forgelink.PullRequest,
			Branch:   "develop",
			Revision: "507a576e59b3",
			Actor:    "brydzewski",
			PR: &forgelink.PR{
				Number:     1,
				Action:     forgelink.PROpened,
				BaseBranch: "master",
				HeadRepo:   "brydzewski/foo",
			},
		}},
	},
	{
		file:  "pullrequest-updated.json",
		event: "pullrequest:updated",
		want: []forgelink.Event{{
			Type:     forgelink.PullRequest,
			Branch:   "develop",
			Revision: "0704fc5beccc",
			Actor:    "brydzewski",
			PR: &forgelink.PR{
				Number:     1,
				Action:     forgelink.PRSynchronize,
				BaseBranch: "master",
				HeadRepo:   "brydzewski/foo",
			},
		}},
	},
	{
		file:  "pullrequest-fulfilled.json",
		event: "pullrequest:fulfilled",
		want: []forgelink.Event{{
			Type:     forgelink.PullRequest,
			Branch:   "develop",
			Revision: "0704fc5beccc",
			Actor:    "brydzewski",
			PR: &forgelink.PR{
				Number:     1,
				Action:     forgelink.PRMerged,
				BaseBranch: "master",
				HeadRepo:   "brydzewski/foo",
			},
		}},
	},
}

func whRead(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(whCorpusDir, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func whSign(body, secret []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// TestCorpusIsCovered fails when a payload is added to the corpus without a
// row in whCorpus.
func TestCorpusIsCovered(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(whCorpusDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, tc := range whCorpus {
		listed[tc.file] = true
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s has no row in whCorpus", f)
		}
	}
	if len(files) != len(whCorpus) {
		t.Errorf("corpus has %d payloads, whCorpus %d rows", len(files), len(whCorpus))
	}
}

func TestParseEvent(t *testing.T) {
	for _, tc := range whCorpus {
		t.Run(tc.file, func(t *testing.T) {
			got, err := bbhook.ParseEvent(tc.event, whRead(t, tc.file))
			if err != nil {
				t.Fatalf("ParseEvent(%q): %v", tc.event, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseEvent(%q) mismatch (-want +got):\n%s", tc.event, diff)
			}
		})
	}
}

func TestParseEventTruncated(t *testing.T) {
	for _, tc := range whCorpus {
		t.Run(tc.file, func(t *testing.T) {
			body := whRead(t, tc.file)
			got, err := bbhook.ParseEvent(tc.event, body[:len(body)/2])
			if err == nil || forgelink.KindOf(err) != forgelink.Invalid {
				t.Errorf("ParseEvent(%q, half a payload) = %v, %v; want an Invalid error", tc.event, got, err)
			}
		})
	}
}

// TestParseEventSynthetic covers what the corpus lacks: several changes in
// one push, tag deletion, rejection, forks, nicknames and ping.
func TestParseEventSynthetic(t *testing.T) {
	const pr = `{"actor":{"nickname":"nick","username":"user","display_name":"Dee"},
		"repository":{"full_name":"ws/repo","mainbranch":{"name":"main"}},
		"pullrequest":{"id":5,
			"source":{"branch":{"name":"feat"},"commit":{"hash":"abc"},"repository":%s},
			"destination":{"branch":{"name":"main"},"commit":{"hash":"def"},"repository":{"full_name":"ws/repo"}}}}`
	prWith := func(source string) string { return strings.Replace(pr, "%s", source, 1) }
	prEvent := func(action forgelink.PRAction, headRepo string, fork bool) []forgelink.Event {
		return []forgelink.Event{{
			Type: forgelink.PullRequest, Branch: "feat", Revision: "abc", Actor: "nick", DefaultBranch: "main",
			PR: &forgelink.PR{Number: 5, Action: action, BaseBranch: "main", HeadRepo: headRepo, Fork: fork},
		}}
	}
	tests := []struct {
		name  string
		event string
		body  string
		want  []forgelink.Event
	}{
		{
			name:  "several changes",
			event: "repo:push",
			body: `{"actor":{"display_name":"Dee"},"push":{"changes":[
				{"new":{"type":"branch","name":"a","target":{"hash":"1","message":"m1"}},"old":{"type":"branch","name":"a","target":{"hash":"0"}}},
				{"new":null,"old":{"type":"tag","name":"v1","target":{"hash":"2"}}},
				{"new":{"type":"named_branch","name":"hg","target":{"hash":"3"}},"old":null},
				{"new":null,"old":null},
				{"new":{"type":"tag","name":"v2","target":{"hash":"4","message":"m4"}},"old":null}]}}`,
			want: []forgelink.Event{
				{Type: forgelink.BranchPush, Branch: "a", Revision: "1", Before: "0", Message: "m1", Actor: "Dee"},
				{Type: forgelink.TagDelete, Tag: "v1", Before: "2", Actor: "Dee"},
				{Type: forgelink.TagPush, Tag: "v2", Revision: "4", Message: "m4", Actor: "Dee"},
			},
		},
		{
			name:  "no changes",
			event: "repo:push",
			body:  `{"push":{"changes":[]}}`,
		},
		{
			name:  "ping",
			event: "diagnostics:ping",
			body:  `{}`,
		},
		{
			name:  "created",
			event: "pullrequest:created",
			body:  prWith(`{"full_name":"ws/repo"}`),
			want:  prEvent(forgelink.PROpened, "ws/repo", false),
		},
		{
			name:  "rejected",
			event: "pullrequest:rejected",
			body:  prWith(`{"full_name":"ws/repo"}`),
			want:  prEvent(forgelink.PRClosed, "ws/repo", false),
		},
		{
			name:  "fork",
			event: "pullrequest:created",
			body:  prWith(`{"full_name":"other/repo"}`),
			want:  prEvent(forgelink.PROpened, "other/repo", true),
		},
		{
			name:  "deleted fork",
			event: "pullrequest:updated",
			body:  prWith(`null`),
			want:  prEvent(forgelink.PRSynchronize, "", true),
		},
		{
			name:  "same repository other case",
			event: "pullrequest:fulfilled",
			body:  prWith(`{"full_name":"WS/Repo"}`),
			want:  prEvent(forgelink.PRMerged, "WS/Repo", false),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bbhook.ParseEvent(tc.event, []byte(tc.body))
			if err != nil {
				t.Fatalf("ParseEvent(%q): %v", tc.event, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseEvent(%q) mismatch (-want +got):\n%s", tc.event, diff)
			}
		})
	}
}

func TestParseEventInvalid(t *testing.T) {
	push := whRead(t, "repo-push.json")
	tests := []struct {
		name  string
		event string
		body  string
	}{
		{"event name with a space", "repo fork", string(push)},
		{"event name too long", strings.Repeat("a", 65), string(push)},
		{"ignored event with a body that is not JSON", "repo:fork", "{"},
		{"empty event", "", string(push)},
		{"empty body", "repo:push", ""},
		{"JSON array", "repo:push", `[]`},
		{"JSON null", "repo:push", `null`},
		{"push without push", "repo:push", `{"actor":{}}`},
		{"change without name", "repo:push", `{"push":{"changes":[{"new":{"type":"branch","target":{"hash":"1"}}}]}}`},
		{"change without target", "repo:push", `{"push":{"changes":[{"new":{"type":"branch","name":"a"}}]}}`},
		{"changes of wrong type", "repo:push", `{"push":{"changes":{}}}`},
		{"pull request without pullrequest", "pullrequest:created", `{"actor":{}}`},
		{"pull request without id", "pullrequest:created", `{"pullrequest":{"source":{"branch":{"name":"a"},"commit":{"hash":"1"}},"destination":{"branch":{"name":"b"}}}}`},
		{"pull request with string id", "pullrequest:created", `{"pullrequest":{"id":"1"}}`},
		{"pull request without source", "pullrequest:created", `{"pullrequest":{"id":1,"destination":{"branch":{"name":"b"}}}}`},
		{"pull request without source commit", "pullrequest:created", `{"pullrequest":{"id":1,"source":{"branch":{"name":"a"}},"destination":{"branch":{"name":"b"}}}}`},
		{"pull request without destination", "pullrequest:created", `{"pullrequest":{"id":1,"source":{"branch":{"name":"a"},"commit":{"hash":"1"}}}}`},
		{"ping not JSON", "diagnostics:ping", `{`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bbhook.ParseEvent(tc.event, []byte(tc.body))
			if err == nil || forgelink.KindOf(err) != forgelink.Invalid {
				t.Fatalf("ParseEvent(%q, %q) = %v, %v; want an Invalid error", tc.event, tc.body, got, err)
			}
			if !strings.HasPrefix(forgelink.MessageOf(err), "bitbucket: ") {
				t.Errorf("error %v has no client message with the package prefix", err)
			}
		})
	}
}

func TestVerifySignature(t *testing.T) {
	body := whRead(t, "repo-push.json")
	secret := []byte("It's a Secret to Everybody")
	old := []byte("the previous secret")
	valid := whSign(body, secret)
	sha1Mac := hmac.New(sha1.New, secret)
	sha1Mac.Write(body)
	altered := append([]byte(nil), body...)
	altered[len(altered)/2] ^= 1

	tests := []struct {
		name      string
		body      []byte
		signature string
		secrets   [][]byte
		wantErr   bool
	}{
		{"valid", body, valid, [][]byte{secret}, false},
		{"valid upper-case hex", body, "sha256=" + strings.ToUpper(strings.TrimPrefix(valid, "sha256=")), [][]byte{secret}, false},
		{"valid with second secret", body, valid, [][]byte{old, secret}, false},
		{"valid with first of two secrets", body, whSign(body, old), [][]byte{old, secret}, false},
		{"valid after an empty secret", body, valid, [][]byte{nil, secret}, false},
		{"wrong secret", body, valid, [][]byte{old}, true},
		{"empty secret", body, whSign(body, nil), [][]byte{{}}, true},
		{"nil secret", body, whSign(body, nil), [][]byte{nil}, true},
		{"no secret", body, whSign(body, nil), nil, true},
		{"sha1 prefix", body, "sha1=" + hex.EncodeToString(sha1Mac.Sum(nil)), [][]byte{secret}, true},
		{"sha1 prefix with sha256 digest", body, "sha1=" + strings.TrimPrefix(valid, "sha256="), [][]byte{secret}, true},
		{"missing", body, "", [][]byte{secret}, true},
		{"prefix only", body, "sha256=", [][]byte{secret}, true},
		{"no prefix", body, strings.TrimPrefix(valid, "sha256="), [][]byte{secret}, true},
		{"bad hex", body, "sha256=" + strings.Repeat("zz", sha256.Size), [][]byte{secret}, true},
		{"short hex", body, valid[:len(valid)-2], [][]byte{secret}, true},
		{"long hex", body, valid + "00", [][]byte{secret}, true},
		{"body altered by one byte", altered, valid, [][]byte{secret}, true},
		{"body truncated", body[:len(body)-1], valid, [][]byte{secret}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := bbhook.VerifySignature(tc.body, tc.signature, tc.secrets...)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("VerifySignature: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("VerifySignature accepted it")
			}
			if k := forgelink.KindOf(err); k != forgelink.Unauthorized {
				t.Errorf("VerifySignature: kind %v, want %v (%v)", k, forgelink.Unauthorized, err)
			}
			if !strings.HasPrefix(forgelink.MessageOf(err), "bitbucket: ") {
				t.Errorf("VerifySignature: message %q lacks the package prefix", forgelink.MessageOf(err))
			}
		})
	}
}

func TestVerifySignatureMessages(t *testing.T) {
	body := []byte(`{}`)
	secret := []byte("s")
	for _, tc := range []struct{ signature, want string }{
		{"", "missing X-Hub-Signature"},
		{whSign(body, []byte("other")), "signature does not match"},
	} {
		err := bbhook.VerifySignature(body, tc.signature, secret)
		if !strings.Contains(forgelink.MessageOf(err), tc.want) {
			t.Errorf("VerifySignature(%q) = %v; want a message containing %q", tc.signature, err, tc.want)
		}
	}
}

// FuzzParseEvent checks that no payload makes ParseEvent panic, fail with
// an error of another kind than Invalid, or return an incomplete event. The
// seeds are whole payloads of 5 to 30 KB, which the default one minute of
// minimization per new input stalls on: run it with a short
// -fuzzminimizetime, e.g.
//
//	go test -run '^$' -fuzz FuzzParseEvent -fuzztime 20s -fuzzminimizetime 1s
func FuzzParseEvent(f *testing.F) {
	events := []string{"repo:push", "pullrequest:created", "pullrequest:updated", "pullrequest:fulfilled", "pullrequest:rejected", "diagnostics:ping", "repo:fork"}
	for _, tc := range whCorpus {
		body := whRead(f, tc.file)
		for i, e := range events {
			if e == tc.event {
				f.Add(uint8(i), body)
			}
		}
	}
	// The event is chosen by index so that the fuzzer spends its time on
	// payloads rather than on event keys, all but a few of them unknown.
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		event := events[int(which)%len(events)]
		got, err := bbhook.ParseEvent(event, body)
		if err != nil {
			if got != nil {
				t.Errorf("ParseEvent returned events and an error: %v, %v", got, err)
			}
			if k := forgelink.KindOf(err); k != forgelink.Invalid {
				t.Errorf("ParseEvent(%q): kind %v, want %v: %v", event, k, forgelink.Invalid, err)
			}
			return
		}
		for _, e := range got {
			if e.Type == "" || (e.Type == forgelink.PullRequest) != (e.PR != nil) || (e.Branch == "") == (e.Tag == "") {
				t.Errorf("ParseEvent(%q) = malformed event %+v", event, e)
			}
			if e.PR != nil && (e.PR.Number <= 0 || e.Revision == "" || e.PR.BaseBranch == "") {
				t.Errorf("ParseEvent(%q) = incomplete pull request %+v %+v", event, e, *e.PR)
			}
		}
	})
}

// BenchmarkParseEvent measures ParseEvent on a push and a pull request.
func BenchmarkParseEvent(b *testing.B) {
	for _, tc := range []struct{ file, event string }{
		{"repo-push.json", "repo:push"},
		{"pullrequest-created.json", "pullrequest:created"},
	} {
		body := whRead(b, tc.file)
		b.Run(tc.file, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bbhook.ParseEvent(tc.event, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestParseEventIgnored: every event key forgelink does not act on, with a
// JSON body, is valid with nothing to do, so intake answers it 2xx.
func TestParseEventIgnored(t *testing.T) {
	for _, key := range []string{"repo:fork", "repo:updated", "pullrequest:comment_created", "pullrequest:approved", "issue:created", "repo:commit_status_updated"} {
		evs, err := bbhook.ParseEvent(key, []byte(`{"actor":{"nickname":"x"}}`))
		if err != nil || evs != nil {
			t.Errorf("ParseEvent(%q) = %v, %v; want nothing to do", key, evs, err)
		}
	}
}
