package ghhook_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	gogithub "github.com/google/go-github/v60/github"

	"forgelink/shared/forgelink"
	"forgelink/shared/ghhook"
)

const whCorpusDir = "../../testdata/corpus/github"

// whCorpus lists every webhook payload of the corpus with the event name
// GitHub sends it under and what ParseEvent must make of it. The values
// were read off the JSON files.
var whCorpus = []struct {
	file     string
	event    string
	want     []forgelink.Event
	wantKind forgelink.Kind // when wantErr
	wantErr  bool
}{
	{
		file:  "push.json",
		event: "push",
		want: []forgelink.Event{{
			Type:          forgelink.BranchPush,
			Branch:        "main",
			Revision:      "366701fde727cb7a9e7f21eb88264f59f6f9b89c",
			Before:        "2f780193b136b72bfea4eeb640786a8c4450c7a2",
			Message:       "Fix multiline secrets replacer (#700)\n\n* Fix multiline secrets replacer\r\n\r\n* Add tests",
			Actor:         "6543",
			DefaultBranch: "main",
		}},
	},
	{
		file:  "push.forced.json",
		event: "push",
		want: []forgelink.Event{{
			Type:          forgelink.BranchPush,
			Branch:        "main",
			Revision:      "f7220f1f753260bf6f1c533357c70213e9fd4abe",
			Before:        "5ea737297f2e2e88f4cdf796e72cbcb12d40fd9c",
			Message:       "feat: initial implementation\n\nTCP/UDP proxy skeleton with layered dead-connection detection.\n\nCo-authored-by: Claude <noreply@anthropic.com>",
			Actor:         "6543",
			DefaultBranch: "main",
		}},
	},
	{
		file:  "push.created.json",
		event: "push",
		want: []forgelink.Event{{
			Type:          forgelink.BranchPush,
			Branch:        "master",
			Revision:      "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
			Message:       "Initial commit",
			Actor:         "Codertocat",
			DefaultBranch: "master",
		}},
	},
	{
		file:  "push.tag.json",
		event: "push",
		want: []forgelink.Event{{
			Type:          forgelink.TagPush,
			Tag:           "v0.0.1",
			Revision:      "d2b75aa7797ec26b088fa2dd527e9d2c052fcedd",
			Message:       "Update .drone.yml",
			Actor:         "bradrydzewski",
			DefaultBranch: "master",
		}},
	},
	{
		file:  "push.delete.json",
		event: "push",
		want: []forgelink.Event{{
			Type:          forgelink.BranchDelete,
			Branch:        "feature-branch",
			Before:        "d2b75aa7797ec26b088fa2dd527e9d2c052fcedd",
			Actor:         "bradrydzewski",
			DefaultBranch: "master",
		}},
	},
	{
		file:  "push.tag.delete.json",
		event: "push",
		want: []forgelink.Event{{
			Type:          forgelink.TagDelete,
			Tag:           "simple-tag",
			Before:        "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
			Actor:         "Codertocat",
			DefaultBranch: "master",
		}},
	},
	{
		file:  "pull_request.opened.json",
		event: "pull_request",
		want: []forgelink.Event{{
			Type:          forgelink.PullRequest,
			Branch:        "changes",
			Revision:      "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
			Actor:         "Codertocat",
			DefaultBranch: "master",
			PR: &forgelink.PR{
				Number:     2,
				Action:     forgelink.PROpened,
				BaseBranch: "master",
				HeadRepo:   "Codertocat/Hello-World",
			},
		}},
	},
	{
		file:  "pull_request.opened.fork.json",
		event: "pull_request",
		want: []forgelink.Event{{
			Type:          forgelink.PullRequest,
			Branch:        "changes",
			Revision:      "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
			Actor:         "Codertocat",
			DefaultBranch: "master",
			PR: &forgelink.PR{
				Number:     2,
				Action:     forgelink.PROpened,
				BaseBranch: "master",
				HeadRepo:   "octocat/Hello-World",
				Fork:       true,
			},
		}},
	},
	{
		file:  "pull_request.synchronize.json",
		event: "pull_request",
		want: []forgelink.Event{{
			Type:          forgelink.PullRequest,
			Branch:        "changes",
			Revision:      "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
			Before:        "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
			Actor:         "Codertocat",
			DefaultBranch: "master",
			PR: &forgelink.PR{
				Number:     2,
				Action:     forgelink.PRSynchronize,
				BaseBranch: "master",
				HeadRepo:   "Codertocat/Hello-World",
			},
		}},
	},
	{
		file:  "pull_request.closed.json",
		event: "pull_request",
		want: []forgelink.Event{{
			Type:          forgelink.PullRequest,
			Branch:        "changes",
			Revision:      "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
			Actor:         "Codertocat",
			DefaultBranch: "master",
			PR: &forgelink.PR{
				Number:     2,
				Action:     forgelink.PRClosed,
				BaseBranch: "master",
				HeadRepo:   "Codertocat/Hello-World",
			},
		}},
	},
	{
		file:  "pull_request.closed.merged.json",
		event: "pull_request",
		want: []forgelink.Event{{
			Type:          forgelink.PullRequest,
			Branch:        "anbraten-patch-3",
			Revision:      "c88b9ee719285134957cbc698c9b7ef9b78007bf",
			Actor:         "anbraten",
			DefaultBranch: "main",
			PR: &forgelink.PR{
				Number:     62,
				Action:     forgelink.PRMerged,
				BaseBranch: "main",
				HeadRepo:   "anbraten/test-ready-release-go",
			},
		}},
	},
	// GitHub sends a push for the same ref as every create and delete.
	{file: "create.tag.json", event: "create"},
	{file: "create.branch.json", event: "create"},
	{file: "delete.tag.json", event: "delete"},
	{file: "ping.json", event: "ping"},
	{file: "ping.app.json", event: "ping"},
	// GitHub App events forgelink does not act on.
	{file: "installation.created.json", event: "installation"},                           // answered 2xx, nothing to do
	{file: "installation.deleted.json", event: "installation"},                           // answered 2xx, nothing to do
	{file: "installation_repositories.added.json", event: "installation_repositories"},   // answered 2xx, nothing to do
	{file: "installation_repositories.removed.json", event: "installation_repositories"}, // answered 2xx, nothing to do
	{file: "github_app_authorization.revoked.json", event: "github_app_authorization"},   // answered 2xx, nothing to do
	{file: "repository.renamed.json", event: "repository"},                               // answered 2xx, nothing to do
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
			got, err := ghhook.ParseEvent(tc.event, whRead(t, tc.file))
			if tc.wantErr {
				if err == nil || forgelink.KindOf(err) != tc.wantKind {
					t.Fatalf("ParseEvent(%q) = %v, %v; want error of kind %v", tc.event, got, err, tc.wantKind)
				}
				return
			}
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
			got, err := ghhook.ParseEvent(tc.event, body[:len(body)/2])
			if forgelink.KindOf(err) != forgelink.Invalid || err == nil {
				t.Errorf("ParseEvent(%q, half a payload) = %v, %v; want an Invalid error", tc.event, got, err)
			}
		})
	}
}

func TestParseEventInvalid(t *testing.T) {
	push := whRead(t, "push.json")
	tests := []struct {
		name  string
		event string
		body  string
	}{
		{"event name with a space", "pull request", string(push)},
		{"event name too long", strings.Repeat("a", 65), string(push)},
		{"ignored event with a body that is not JSON", "issues", "payload=%7B%7D"},
		{"empty event", "", string(push)},
		{"empty body", "push", ""},
		{"not JSON", "push", "payload=%7B%7D"},
		{"JSON array", "push", `[]`},
		{"JSON null", "push", `null`},
		{"push without ref", "push", `{"before":"a","after":"b"}`},
		{"push of an empty branch name", "push", `{"ref":"refs/heads/","after":"b"}`},
		{"push ref of wrong type", "push", `{"ref":1}`},
		{"trailing garbage", "push", `{"ref":"refs/heads/main"} x`},
		{"pull_request without pull_request", "pull_request", `{"action":"opened","number":1}`},
		{"pull_request without number", "pull_request", `{"action":"opened","pull_request":{"head":{"ref":"a","sha":"b"},"base":{"ref":"main"}}}`},
		{"pull_request with string number", "pull_request", `{"action":"opened","number":"1","pull_request":{}}`},
		{"pull_request without action", "pull_request", `{"number":1,"pull_request":{"head":{"ref":"a","sha":"b"},"base":{"ref":"main"}}}`},
		{"pull_request without head", "pull_request", `{"action":"opened","number":1,"pull_request":{"base":{"ref":"main"}}}`},
		{"pull_request without head sha", "pull_request", `{"action":"opened","number":1,"pull_request":{"head":{"ref":"a"},"base":{"ref":"main"}}}`},
		{"pull_request without base", "pull_request", `{"action":"opened","number":1,"pull_request":{"head":{"ref":"a","sha":"b"}}}`},
		{"ping not JSON", "ping", `{"zen":`},
		{"create not JSON", "create", `<xml/>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ghhook.ParseEvent(tc.event, []byte(tc.body))
			if err == nil || forgelink.KindOf(err) != forgelink.Invalid {
				t.Fatalf("ParseEvent(%q, %q) = %v, %v; want an Invalid error", tc.event, tc.body, got, err)
			}
			if forgelink.MessageOf(err) == "" {
				t.Errorf("error %v has no client message", err)
			}
		})
	}
}

func TestParseEventNothingToDo(t *testing.T) {
	tests := []struct {
		name  string
		event string
		body  string
	}{
		{"labeled", "pull_request", `{"action":"labeled","number":1,"pull_request":{"number":1}}`},
		{"assigned", "pull_request", `{"action":"assigned","number":1,"pull_request":{"number":1}}`},
		{"push to a note", "push", `{"ref":"refs/notes/commits","after":"b"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ghhook.ParseEvent(tc.event, []byte(tc.body))
			if err != nil || got != nil {
				t.Errorf("ParseEvent(%q, %q) = %v, %v; want nil, nil", tc.event, tc.body, got, err)
			}
		})
	}
}

func TestParseEventPullRequest(t *testing.T) {
	const head = `"head":{"ref":"feature","sha":"abc","repo":%s},"base":{"ref":"main","repo":{"full_name":"o/r"}}`
	tests := []struct {
		name     string
		action   string
		merged   bool
		headRepo string
		want     forgelink.PR
	}{
		{"reopened", "reopened", false, `{"full_name":"o/r"}`, forgelink.PR{Number: 7, Action: forgelink.PRReopened, BaseBranch: "main", HeadRepo: "o/r"}},
		{"edited", "edited", false, `{"full_name":"o/r"}`, forgelink.PR{Number: 7, Action: forgelink.PREdited, BaseBranch: "main", HeadRepo: "o/r"}},
		{"merged", "closed", true, `{"full_name":"o/r"}`, forgelink.PR{Number: 7, Action: forgelink.PRMerged, BaseBranch: "main", HeadRepo: "o/r"}},
		{"deleted fork", "opened", false, `null`, forgelink.PR{Number: 7, Action: forgelink.PROpened, BaseBranch: "main", Fork: true}},
		{"fork", "synchronize", false, `{"full_name":"x/r"}`, forgelink.PR{Number: 7, Action: forgelink.PRSynchronize, BaseBranch: "main", HeadRepo: "x/r", Fork: true}},
		{"same repo other case", "opened", false, `{"full_name":"O/R"}`, forgelink.PR{Number: 7, Action: forgelink.PROpened, BaseBranch: "main", HeadRepo: "O/R"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			merged := "false"
			if tc.merged {
				merged = "true"
			}
			body := `{"action":"` + tc.action + `","number":7,"pull_request":{"merged":` + merged + `,` +
				strings.Replace(head, "%s", tc.headRepo, 1) + `},"sender":{"login":"me"}}`
			got, err := ghhook.ParseEvent("pull_request", []byte(body))
			if err != nil {
				t.Fatalf("ParseEvent(%s): %v", body, err)
			}
			want := []forgelink.Event{{Type: forgelink.PullRequest, Branch: "feature", Revision: "abc", Actor: "me", PR: &tc.want}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ParseEvent(%s) mismatch (-want +got):\n%s", body, diff)
			}
		})
	}
}

func TestVerifySignature(t *testing.T) {
	body := whRead(t, "push.json")
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
			err := ghhook.VerifySignature(tc.body, tc.signature, tc.secrets...)
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
			if !strings.HasPrefix(forgelink.MessageOf(err), "github: ") {
				t.Errorf("VerifySignature: message %q lacks the package prefix", forgelink.MessageOf(err))
			}
		})
	}
}

func TestVerifySignatureMessages(t *testing.T) {
	body := []byte(`{}`)
	secret := []byte("s")
	for _, tc := range []struct{ signature, want string }{
		{"", "missing X-Hub-Signature-256"},
		{whSign(body, []byte("other")), "signature does not match"},
	} {
		err := ghhook.VerifySignature(body, tc.signature, secret)
		if !strings.Contains(forgelink.MessageOf(err), tc.want) {
			t.Errorf("VerifySignature(%q) = %v; want a message containing %q", tc.signature, err, tc.want)
		}
	}
}

func TestPayloadFromForm(t *testing.T) {
	payload := whRead(t, "push.json")
	form := []byte(url.Values{"payload": {string(payload)}}.Encode())
	got, err := ghhook.PayloadFromForm(form)
	if err != nil {
		t.Fatalf("PayloadFromForm: %v", err)
	}
	if diff := cmp.Diff(string(payload), string(got)); diff != "" {
		t.Errorf("PayloadFromForm mismatch (-want +got):\n%s", diff)
	}
	events, err := ghhook.ParseEvent("push", got)
	if err != nil || len(events) != 1 || events[0].Branch != "main" {
		t.Errorf("ParseEvent(PayloadFromForm) = %v, %v", events, err)
	}

	for _, body := range []string{"", "other=1", "payload=", "payload=%zz", `{"ref":"refs/heads/main"}`} {
		got, err := ghhook.PayloadFromForm([]byte(body))
		if err == nil || forgelink.KindOf(err) != forgelink.Invalid {
			t.Errorf("PayloadFromForm(%q) = %q, %v; want an Invalid error", body, got, err)
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
	events := []string{"push", "pull_request", "ping", "create", "delete", "issues"}
	for _, tc := range whCorpus {
		body := whRead(f, tc.file)
		for i, e := range events {
			if e == tc.event {
				f.Add(uint8(i), body)
			}
		}
	}
	// The event is chosen by index so that the fuzzer spends its time on
	// payloads rather than on event names, all but a few of them unknown.
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		event := events[int(which)%len(events)]
		got, err := ghhook.ParseEvent(event, body)
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
			if e.PR != nil && (e.PR.Number <= 0 || e.Branch == "" || e.Revision == "" || e.PR.BaseBranch == "") {
				t.Errorf("ParseEvent(%q) = incomplete pull request %+v %+v", event, e, *e.PR)
			}
		}
	})
}

// BenchmarkParseEvent compares ParseEvent with go-github's ParseWebHook,
// which decodes the whole payload into its typed structs.
func BenchmarkParseEvent(b *testing.B) {
	for _, file := range []string{"push.json", "pull_request.opened.json"} {
		body := whRead(b, file)
		event, _, _ := strings.Cut(file, ".")
		b.Run(file+"/forgelink", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ghhook.ParseEvent(event, body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(file+"/go-github", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := gogithub.ParseWebHook(event, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestParseEventIgnored: every event forgelink does not act on, with a
// JSON body, is valid with nothing to do, so intake answers it 2xx.
func TestParseEventIgnored(t *testing.T) {
	for _, event := range []string{"issues", "star", "release", "check_run", "workflow_job", "security_advisory", "repository_dispatch"} {
		evs, err := ghhook.ParseEvent(event, []byte(`{"action":"created","sender":{"login":"octocat"}}`))
		if err != nil || evs != nil {
			t.Errorf("ParseEvent(%q) = %v, %v; want nothing to do", event, evs, err)
		}
	}
}
