package bitbucket_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/bitbucket"
	"forgelink/shared/forgelink"
	"forgelink/shared/vcsfake"
)

const readRepo = "octo-ws/hello-world"

var readSlug = forgelink.Slug{VCS: forgelink.Bitbucket, Org: "octo-ws", Repo: "hello-world"}

// readSetup starts a fake Bitbucket with one private repository and
// returns a Forge for it.
func readSetup(t *testing.T) (*vcsfake.Bitbucket, *bitbucket.Forge) {
	t.Helper()
	b := vcsfake.NewBitbucket(t)
	b.AddRepo(readRepo, "main", true)
	f, err := bitbucket.NewForge(b.URL, b.Token, b.Server.Client())
	if err != nil {
		t.Fatalf("NewForge: %v", err)
	}
	return b, f
}

// readCheckErr fails the test unless err has kind want and, when msg is
// set, a client message containing msg.
func readCheckErr(t *testing.T, err error, want forgelink.Kind, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want kind %v", want)
	}
	if got := forgelink.KindOf(err); got != want {
		t.Errorf("kind = %v (%v), want %v", got, err, want)
	}
	if !strings.Contains(forgelink.MessageOf(err), msg) {
		t.Errorf("message = %q, want it to contain %q", forgelink.MessageOf(err), msg)
	}
	if !strings.HasPrefix(err.Error(), "bitbucket: ") {
		t.Errorf("error %q lacks the bitbucket: prefix", err)
	}
}

func readKey(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestReadFile(t *testing.T) {
	const (
		path = ".circleci/config.yml"
		sha  = "0123456789abcdef0123456789abcdef01234567"
	)
	atSHA := []byte("version: 2.1\njobs: {build: {docker: [{image: cimg/base:current}]}}\n")
	atMain := []byte("version: 2.1 # main\n")
	atSlash := []byte("version: 2.1 # feature/x\n")
	jsonFile := []byte(`{"pagelen": 10, "values": [{"type": "not a listing"}]}`)
	tests := []struct {
		name      string
		path, ref string
		want      []byte
		wantReqs  map[string]int // path suffix -> GET count
		wantKind  forgelink.Kind // Internal: no error
		wantMsg   string
	}{
		{name: "at a sha", path: path, ref: sha, want: atSHA, wantReqs: map[string]int{"": 1}},
		{name: "at a branch", path: path, ref: "main", want: atMain, wantReqs: map[string]int{"": 1}},
		{
			name: "at a branch with a slash", path: path, ref: "feature/x", want: atSlash,
			wantReqs: map[string]int{"": 2, "/refs/branches/feature/x": 1},
		},
		{name: "main branch", path: path, ref: "", want: atMain, wantReqs: map[string]int{"": 2, "/repositories/" + readRepo: 1}},
		{name: "a JSON file", path: "data.json", ref: "main", want: jsonFile},
		{name: "empty file", path: "empty", ref: "main", want: []byte{}},
		{name: "missing file", path: "nope.yml", ref: sha, wantKind: forgelink.NotFound, wantMsg: "nope.yml at " + sha + " in " + readRepo + " not found"},
		{name: "missing ref", path: path, ref: "no-such-branch", wantKind: forgelink.NotFound},
		{name: "missing branch with a slash", path: path, ref: "no/such", wantKind: forgelink.NotFound, wantMsg: "branch no/such"},
		{name: "directory", path: ".circleci", ref: sha, wantKind: forgelink.Invalid, wantMsg: ".circleci is not a file"},
		{name: "too large", path: "big.bin", ref: "main", wantKind: forgelink.Invalid, wantMsg: "big.bin is too large"},
		{name: "no path", path: "", ref: "main", wantKind: forgelink.Invalid, wantMsg: "no file path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, f := readSetup(t)
			b.SetFile(readRepo, sha, path, atSHA)
			b.SetFile(readRepo, sha, ".circleci/other.yml", []byte("x"))
			b.SetFile(readRepo, "main", path, atMain)
			b.SetFile(readRepo, "main", "data.json", jsonFile)
			b.SetFile(readRepo, "main", "empty", []byte{})
			b.SetFile(readRepo, "main", "big.bin", make([]byte, 1<<20+1))
			b.SetFile(readRepo, "feature/x", path, atSlash)

			got, key, err := f.File(context.Background(), readSlug, tc.path, tc.ref)
			if tc.wantKind != forgelink.Internal {
				readCheckErr(t, err, tc.wantKind, tc.wantMsg)
				if err != nil && !strings.HasPrefix(err.Error(), "bitbucket: get file ") {
					t.Errorf("error %q does not say what it did", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("File: %v", err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("content = %q, want %q", got, tc.want)
			}
			if want := readKey(tc.want); key != want {
				t.Errorf("key = %q, want %q", key, want)
			}
			for suffix, want := range tc.wantReqs {
				if n := b.CountRequests(http.MethodGet, suffix); n != want {
					t.Errorf("%d GETs of ...%s, want %d", n, suffix, want)
				}
			}
		})
	}
}

func TestReadOpenPullRequests(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(b *vcsfake.Bitbucket)
		branch   string
		want     []int
		wantReqs int
	}{
		{
			name: "filtered by branch",
			setup: func(b *vcsfake.Bitbucket) {
				b.OpenPR(readRepo, 1, "feature")
				b.OpenPR(readRepo, 3, "other")
				b.OpenPR(readRepo, 2, "feature")
			},
			branch: "feature", want: []int{1, 2}, wantReqs: 1,
		},
		{
			name: "declined ones left out",
			setup: func(b *vcsfake.Bitbucket) {
				b.OpenPR(readRepo, 1, "feature")
				b.OpenPR(readRepo, 2, "feature")
				b.ClosePR(readRepo, 2)
			},
			branch: "feature", want: []int{1}, wantReqs: 1,
		},
		{
			name: "forks left out",
			setup: func(b *vcsfake.Bitbucket) {
				b.OpenPR(readRepo, 1, "someone/hello-world:feature")
				b.OpenPR(readRepo, 2, "feature")
			},
			branch: "feature", want: []int{2}, wantReqs: 1,
		},
		{
			name: "quotes in the branch name",
			setup: func(b *vcsfake.Bitbucket) {
				b.OpenPR(readRepo, 1, `say-"hi"\now`)
				b.OpenPR(readRepo, 2, `say-`)
			},
			branch: `say-"hi"\now`, want: []int{1}, wantReqs: 1,
		},
		{name: "none", branch: "feature", want: []int{}, wantReqs: 1},
		{
			name: "more than one page",
			setup: func(b *vcsfake.Bitbucket) {
				for n := 1; n <= 120; n++ {
					b.OpenPR(readRepo, n, "busy")
				}
				b.OpenPR(readRepo, 121, "quiet")
			},
			branch: "busy", want: readSeq(1, 120), wantReqs: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, f := readSetup(t)
			if tc.setup != nil {
				tc.setup(b)
			}
			got, err := f.OpenPullRequests(context.Background(), readSlug, tc.branch)
			if err != nil {
				t.Fatalf("OpenPullRequests: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if n := b.CountRequests(http.MethodGet, "/pullrequests"); n != tc.wantReqs {
				t.Errorf("%d requests, want %d", n, tc.wantReqs)
			}
		})
	}
}

func TestReadOpenPullRequestsErrors(t *testing.T) {
	_, f := readSetup(t)
	_, err := f.OpenPullRequests(context.Background(), forgelink.Slug{VCS: forgelink.Bitbucket, Org: "octo-ws", Repo: "nope"}, "main")
	readCheckErr(t, err, forgelink.NotFound, "repository octo-ws/nope")
	_, err = f.OpenPullRequests(context.Background(), readSlug, "")
	readCheckErr(t, err, forgelink.Invalid, "no branch")
}

// readSeq returns lo..hi.
func readSeq(lo, hi int) []int {
	var s []int
	for n := lo; n <= hi; n++ {
		s = append(s, n)
	}
	return s
}

func TestReadMe(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(b *vcsfake.Bitbucket)
		wantEmail string
		wantKind  forgelink.Kind // Internal: no error
	}{
		{name: "primary confirmed", wantEmail: vcsfake.DefaultEmail},
		{
			name: "picks the primary",
			setup: func(b *vcsfake.Bitbucket) {
				b.SetEmails(vcsfake.Email{Address: "old@example.com", Verified: true},
					vcsfake.Email{Address: "main@example.com", Primary: true, Verified: true})
			},
			wantEmail: "main@example.com",
		},
		{
			name: "primary not confirmed",
			setup: func(b *vcsfake.Bitbucket) {
				b.SetEmails(vcsfake.Email{Address: "main@example.com", Primary: true})
			},
			wantEmail: "",
		},
		{name: "no email scope", setup: func(b *vcsfake.Bitbucket) { b.FailNext(http.MethodGet, "/user/emails", 403, 1) }, wantEmail: ""},
		{name: "emails fail", setup: func(b *vcsfake.Bitbucket) { b.FailNext(http.MethodGet, "/user/emails", 503, 1) }, wantKind: forgelink.Transient},
		{name: "bad token", setup: func(b *vcsfake.Bitbucket) { b.SetToken("other") }, wantKind: forgelink.Unauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, f := readSetup(t)
			if tc.setup != nil {
				tc.setup(b)
			}
			login, email, err := f.Me(context.Background())
			if tc.wantKind != forgelink.Internal {
				readCheckErr(t, err, tc.wantKind, "")
				return
			}
			if err != nil {
				t.Fatalf("Me: %v", err)
			}
			if login != vcsfake.BitbucketUsername || email != tc.wantEmail {
				t.Errorf("Me = %q, %q; want %q, %q", login, email, vcsfake.BitbucketUsername, tc.wantEmail)
			}
		})
	}
}

func TestReadUserKeys(t *testing.T) {
	const byHand = "add the public key by hand at https://bitbucket.org/account/settings/ssh-keys/"
	b, f := readSetup(t)
	var ak forgelink.AccountKeys = f
	_, err := ak.AddUserKey(context.Background(), "forgelink", vcsfake.NewPublicKey(""))
	readCheckErr(t, err, forgelink.Invalid, "Bitbucket Cloud has no API to add a key to your account; "+byHand)
	err = ak.DeleteUserKey(context.Background(), "1")
	readCheckErr(t, err, forgelink.Invalid, byHand)
	if n := len(b.Requests()); n != 0 {
		t.Errorf("%d requests, want none", n)
	}
}

func TestReadRepoAdmin(t *testing.T) {
	tests := []struct {
		name       string
		permission string
		fail       int
		want       bool
		wantKind   forgelink.Kind // Internal: no error
	}{
		{name: "admin", permission: "admin", want: true},
		{name: "write", permission: "write", want: false},
		{name: "read", permission: "read", want: false},
		{name: "not askable", permission: "admin", fail: 403, wantKind: forgelink.Forbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, f := readSetup(t)
			b.AddRepo("octo-ws/other", "main", false) // admin there, and listed unless q filters
			b.SetPermission(readRepo, vcsfake.BitbucketUsername, tc.permission)
			if tc.fail != 0 {
				b.FailNext(http.MethodGet, "/user/permissions/repositories", tc.fail, 1)
			}
			got, err := f.RepoAdmin(context.Background(), readSlug)
			if tc.wantKind != forgelink.Internal {
				readCheckErr(t, err, tc.wantKind, "")
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("RepoAdmin = %v, %v; want %v", got, err, tc.want)
			}
			if n := b.CountRequests(http.MethodGet, ""); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
	_, f := readSetup(t)
	got, err := f.RepoAdmin(context.Background(), forgelink.Slug{VCS: forgelink.Bitbucket, Org: "octo-ws", Repo: "nope"})
	if err != nil || got {
		t.Errorf("RepoAdmin of an unknown repository = %v, %v; want false", got, err)
	}
}

func TestReadFileNetworkError(t *testing.T) {
	b := vcsfake.NewBitbucket(t)
	u := b.URL
	b.Server.Close()
	f, err := bitbucket.NewForge(u, b.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = f.File(context.Background(), readSlug, "a.yml", "main")
	readCheckErr(t, err, forgelink.Transient, "")
}

func TestReadFullRevision(t *testing.T) {
	b, f := readSetup(t)
	const full = "507a576e59b3c4d5e6f708192a3b4c5d6e7f8091"
	b.SetFile(readRepo, full, "README.md", []byte("hi"))
	tests := []struct {
		name, rev, want string
		wantKind        forgelink.Kind // Internal means no error
	}{
		{"full hash is kept without asking", full, full, forgelink.Internal},
		{"12-character hash of a pull request payload", "507a576e59b3", full, forgelink.Internal},
		{"unknown commit", "deadbeef0000", "", forgelink.NotFound},
		{"not a hash", "main", "", forgelink.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.FullRevision(context.Background(), readSlug, tc.rev)
			if tc.wantKind != forgelink.Internal {
				readCheckErr(t, err, tc.wantKind, "")
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("FullRevision(%q) = %q, %v; want %q", tc.rev, got, err, tc.want)
			}
		})
	}
	if n := b.CountRequests(http.MethodGet, "/commit/"+full); n != 0 {
		t.Errorf("asked Bitbucket %d times about a full hash, want 0", n)
	}
}
