package github_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/forgelink"
	"forgelink/shared/github"
	"forgelink/shared/vcsfake"
)

const readRepo = "octo-org/hello-world"

var readSlug = forgelink.Slug{VCS: forgelink.GitHub, Org: "octo-org", Repo: "hello-world"}

// readSetup starts a fake GitHub with one private repository and returns a
// Forge for it.
func readSetup(t *testing.T) (*vcsfake.GitHub, *github.Forge) {
	t.Helper()
	g := vcsfake.NewGitHub(t)
	g.AddRepo(readRepo, "main", true)
	f, err := github.NewForge(g.URL, g.Token, g.Server.Client())
	if err != nil {
		t.Fatalf("NewForge: %v", err)
	}
	return g, f
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
	if !strings.HasPrefix(err.Error(), "github: ") {
		t.Errorf("error %q lacks the github: prefix", err)
	}
}

func TestReadFile(t *testing.T) {
	const (
		path = ".circleci/config.yml"
		sha  = "0123456789abcdef0123456789abcdef01234567"
	)
	atSHA := []byte("version: 2.1\njobs: {build: {docker: [{image: cimg/base:current}]}}\n")
	atMain := bytes.Repeat([]byte("# long enough for several base64 lines\n"), 20)
	atSlash := []byte("version: 2.1 # feature/x\n")
	tests := []struct {
		name      string
		path, ref string
		want      []byte
		wantKind  forgelink.Kind // Internal: no error
		wantMsg   string
	}{
		{name: "at a sha", path: path, ref: sha, want: atSHA},
		{name: "at a branch", path: path, ref: "main", want: atMain},
		{name: "at a branch with a slash", path: path, ref: "feature/x", want: atSlash},
		{name: "default branch", path: path, ref: "", want: atMain},
		{name: "leading slash", path: "/" + path, ref: sha, want: atSHA},
		{name: "empty file", path: "empty", ref: "main", want: []byte{}},
		{name: "missing file", path: "nope.yml", ref: sha, wantKind: forgelink.NotFound, wantMsg: "nope.yml at " + sha + " in " + readRepo + " not found"},
		{name: "file not at that ref", path: "empty", ref: sha, wantKind: forgelink.NotFound},
		{name: "missing ref", path: path, ref: "no-such-branch", wantKind: forgelink.NotFound},
		{name: "directory", path: ".circleci", ref: sha, wantKind: forgelink.Invalid, wantMsg: ".circleci is not a file"},
		{name: "too large", path: "big.bin", ref: "main", wantKind: forgelink.Invalid, wantMsg: "big.bin is too large"},
		{name: "no path", path: "/", ref: "main", wantKind: forgelink.Invalid, wantMsg: "no file path"},
		{name: "dot dot", path: "a/../b", ref: "main", wantKind: forgelink.Invalid, wantMsg: "is not a file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, f := readSetup(t)
			g.SetFile(readRepo, sha, path, atSHA)
			g.SetFile(readRepo, sha, ".circleci/other.yml", []byte("x"))
			g.SetFile(readRepo, "main", path, atMain)
			g.SetFile(readRepo, "main", "empty", []byte{})
			g.SetFile(readRepo, "main", "big.bin", make([]byte, 1<<20+1))
			g.SetFile(readRepo, "feature/x", path, atSlash)

			got, key, err := f.File(context.Background(), readSlug, tc.path, tc.ref)
			if tc.wantKind != forgelink.Internal {
				readCheckErr(t, err, tc.wantKind, tc.wantMsg)
				if err != nil && !strings.HasPrefix(err.Error(), "github: get file ") {
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
			if want := vcsfake.GitBlobSHA(tc.want); key != want {
				t.Errorf("key = %q, want the blob sha %q", key, want)
			}
			if n := g.CountRequests(http.MethodGet, "/contents/"+strings.TrimPrefix(tc.path, "/")); n != 1 {
				t.Errorf("asked GitHub %d times, want once", n)
			}
		})
	}
}

func TestReadFileKeyTracksContent(t *testing.T) {
	g, f := readSetup(t)
	g.SetFile(readRepo, "a", "c.yml", []byte("one"))
	g.SetFile(readRepo, "b", "c.yml", []byte("one"))
	g.SetFile(readRepo, "c", "c.yml", []byte("two"))
	var keys []string
	for _, ref := range []string{"a", "b", "c"} {
		_, key, err := f.File(context.Background(), readSlug, "c.yml", ref)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	if keys[0] != keys[1] || keys[0] == keys[2] {
		t.Errorf("keys = %v, want equal for equal content and different otherwise", keys)
	}
}

func TestReadOpenPullRequests(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(g *vcsfake.GitHub)
		branch   string
		want     []int
		wantReqs int
	}{
		{
			name: "filtered by branch",
			setup: func(g *vcsfake.GitHub) {
				g.OpenPR(readRepo, 1, "feature")
				g.OpenPR(readRepo, 3, "other")
				g.OpenPR(readRepo, 2, "feature")
			},
			branch: "feature", want: []int{1, 2}, wantReqs: 1,
		},
		{
			name: "closed ones left out",
			setup: func(g *vcsfake.GitHub) {
				g.OpenPR(readRepo, 1, "feature")
				g.OpenPR(readRepo, 2, "feature")
				g.ClosePR(readRepo, 1)
			},
			branch: "feature", want: []int{2}, wantReqs: 1,
		},
		{
			name: "forks left out",
			setup: func(g *vcsfake.GitHub) {
				g.OpenPR(readRepo, 1, "someone/hello-world:feature")
				g.OpenPR(readRepo, 2, "octo-org/hello-fork:feature") // same owner, another repository
				g.OpenPR(readRepo, 3, "feature")
			},
			branch: "feature", want: []int{3}, wantReqs: 1,
		},
		{name: "none", branch: "feature", want: []int{}, wantReqs: 1},
		{
			name: "more than one page",
			setup: func(g *vcsfake.GitHub) {
				for n := 1; n <= 230; n++ {
					g.OpenPR(readRepo, n, "busy")
				}
				g.OpenPR(readRepo, 231, "quiet")
			},
			branch: "busy", want: readSeq(1, 230), wantReqs: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, f := readSetup(t)
			if tc.setup != nil {
				tc.setup(g)
			}
			got, err := f.OpenPullRequests(context.Background(), readSlug, tc.branch)
			if err != nil {
				t.Fatalf("OpenPullRequests: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("numbers (-want +got):\n%s", diff)
			}
			if n := g.CountRequests(http.MethodGet, "/pulls"); n != tc.wantReqs {
				t.Errorf("%d requests, want %d", n, tc.wantReqs)
			}
		})
	}
}

func TestReadOpenPullRequestsErrors(t *testing.T) {
	_, f := readSetup(t)
	_, err := f.OpenPullRequests(context.Background(), forgelink.Slug{VCS: forgelink.GitHub, Org: "octo-org", Repo: "nope"}, "main")
	readCheckErr(t, err, forgelink.NotFound, "repository octo-org/nope")
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
	many := make([]vcsfake.Email, 0, 131)
	for i := range 130 {
		many = append(many, vcsfake.Email{Address: "x" + strconv.Itoa(i) + "@example.com", Verified: true})
	}
	many = append(many, vcsfake.Email{Address: "last@example.com", Primary: true, Verified: true})
	tests := []struct {
		name      string
		setup     func(g *vcsfake.GitHub)
		wantEmail string
		wantKind  forgelink.Kind // Internal: no error
	}{
		{name: "primary verified", wantEmail: vcsfake.DefaultEmail},
		{
			name: "picks the primary",
			setup: func(g *vcsfake.GitHub) {
				g.SetEmails(vcsfake.Email{Address: "old@example.com", Verified: true},
					vcsfake.Email{Address: "main@example.com", Primary: true, Verified: true})
			},
			wantEmail: "main@example.com",
		},
		{
			name: "primary not verified",
			setup: func(g *vcsfake.GitHub) {
				g.SetEmails(vcsfake.Email{Address: "old@example.com", Verified: true},
					vcsfake.Email{Address: "main@example.com", Primary: true})
			},
			wantEmail: "",
		},
		{name: "primary on a later page", setup: func(g *vcsfake.GitHub) { g.SetEmails(many...) }, wantEmail: "last@example.com"},
		{name: "no email scope", setup: func(g *vcsfake.GitHub) { g.SetScopes("repo", "admin:public_key") }, wantEmail: ""},
		{name: "user scope", setup: func(g *vcsfake.GitHub) { g.SetScopes("repo", "user") }, wantEmail: vcsfake.DefaultEmail},
		{name: "emails fail", setup: func(g *vcsfake.GitHub) { g.FailNext(http.MethodGet, "/user/emails", 502, 1) }, wantKind: forgelink.Transient},
		{name: "bad token", setup: func(g *vcsfake.GitHub) { g.SetToken("other") }, wantKind: forgelink.Unauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, f := readSetup(t)
			if tc.setup != nil {
				tc.setup(g)
			}
			login, email, err := f.Me(context.Background())
			if tc.wantKind != forgelink.Internal {
				readCheckErr(t, err, tc.wantKind, "")
				return
			}
			if err != nil {
				t.Fatalf("Me: %v", err)
			}
			if login != vcsfake.GitHubLogin || email != tc.wantEmail {
				t.Errorf("Me = %q, %q; want %q, %q", login, email, vcsfake.GitHubLogin, tc.wantEmail)
			}
		})
	}
}

func TestReadAddUserKey(t *testing.T) {
	const scopeMsg = "GitHub refused to add the key to your account: the token needs the admin:public_key scope"
	tests := []struct {
		name     string
		setup    func(g *vcsfake.GitHub, key string)
		key      string // "" for a fresh one
		wantKind forgelink.Kind
		wantMsg  string
		wantKeys int
	}{
		{name: "ok", wantKeys: 1},
		{name: "write scope is enough", setup: func(g *vcsfake.GitHub, _ string) { g.SetScopes("repo", "write:public_key") }, wantKeys: 1},
		{
			name: "missing scope", setup: func(g *vcsfake.GitHub, _ string) { g.SetScopes("repo", "user:email", "read:public_key") },
			wantKind: forgelink.Forbidden, wantMsg: scopeMsg,
		},
		{
			name: "refused with 403", setup: func(g *vcsfake.GitHub, _ string) {
				g.FailNextResponse(http.MethodPost, "/user/keys", 1, 403, nil, `{"message":"Resource not accessible by personal access token"}`)
			},
			wantKind: forgelink.Forbidden, wantMsg: scopeMsg,
		},
		{
			name: "secondary rate limit is not a scope problem", setup: func(g *vcsfake.GitHub, _ string) { g.FailNext(http.MethodPost, "/user/keys", 403, 1) },
			wantKind: forgelink.Transient, wantMsg: "rate limit",
		},
		{
			name: "duplicate", setup: func(g *vcsfake.GitHub, key string) {
				if _, err := readForge(t, g).AddUserKey(context.Background(), "first", key); err != nil {
					t.Fatal(err)
				}
			},
			wantKind: forgelink.Conflict, wantMsg: "already in use", wantKeys: 1,
		},
		{
			name: "in use as a deploy key", setup: func(g *vcsfake.GitHub, key string) { g.AddKeyDirect(readRepo, "deploy", key, true) },
			wantKind: forgelink.Conflict, wantMsg: "already in use",
		},
		{name: "not a key", key: "ssh-ed25519", wantKind: forgelink.Invalid, wantMsg: "not an OpenSSH public key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, f := readSetup(t)
			key := tc.key
			if key == "" {
				key = vcsfake.NewPublicKey("me@laptop")
			}
			if tc.setup != nil {
				tc.setup(g, key)
			}
			id, err := f.AddUserKey(context.Background(), "forgelink", key)
			keys := g.UserKeys()
			if len(keys) != tc.wantKeys {
				t.Errorf("user has %d keys, want %d", len(keys), tc.wantKeys)
			}
			if tc.wantKind != forgelink.Internal {
				readCheckErr(t, err, tc.wantKind, tc.wantMsg)
				if tc.wantMsg == scopeMsg && forgelink.MessageOf(err) != scopeMsg {
					t.Errorf("message = %q, want exactly %q", forgelink.MessageOf(err), scopeMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("AddUserKey: %v", err)
			}
			if keys[0].ID != id || keys[0].Title != "forgelink" || !strings.HasPrefix(key, keys[0].Key) {
				t.Errorf("id %q, user keys %+v", id, keys)
			}
		})
	}
}

// readForge returns another Forge on g.
func readForge(t *testing.T, g *vcsfake.GitHub) *github.Forge {
	t.Helper()
	f, err := github.NewForge(g.URL, g.Token, g.Server.Client())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestReadDeleteUserKey(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(g *vcsfake.GitHub)
		id       func(added string) string
		wantKind forgelink.Kind
		wantMsg  string
		wantKeys int
	}{
		{name: "ok", id: func(a string) string { return a }},
		{name: "already gone", id: func(string) string { return "999999" }, wantKeys: 1},
		{
			name: "missing admin scope", setup: func(g *vcsfake.GitHub) { g.SetScopes("repo", "write:public_key") },
			id: func(a string) string { return a }, wantKind: forgelink.Forbidden, wantMsg: "needs the admin:public_key scope", wantKeys: 1,
		},
		{
			name: "server error", setup: func(g *vcsfake.GitHub) { g.FailNext(http.MethodDelete, "", 500, 1) },
			id: func(a string) string { return a }, wantKind: forgelink.Transient, wantKeys: 1,
		},
		{name: "bad id", id: func(string) string { return "abc" }, wantKind: forgelink.Invalid, wantMsg: "not a GitHub id", wantKeys: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, f := readSetup(t)
			added, err := f.AddUserKey(context.Background(), "forgelink", vcsfake.NewPublicKey(""))
			if err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(g)
			}
			err = f.DeleteUserKey(context.Background(), tc.id(added))
			if n := len(g.UserKeys()); n != tc.wantKeys {
				t.Errorf("user has %d keys, want %d", n, tc.wantKeys)
			}
			if tc.wantKind != forgelink.Internal {
				readCheckErr(t, err, tc.wantKind, tc.wantMsg)
				return
			}
			if err != nil {
				t.Fatalf("DeleteUserKey: %v", err)
			}
		})
	}
}

func TestReadRepoAdmin(t *testing.T) {
	for _, admin := range []bool{true, false} {
		t.Run(strconv.FormatBool(admin), func(t *testing.T) {
			g, f := readSetup(t)
			g.SetAdmin(readRepo, admin)
			got, err := f.RepoAdmin(context.Background(), readSlug)
			if err != nil || got != admin {
				t.Errorf("RepoAdmin = %v, %v; want %v", got, err, admin)
			}
		})
	}
	_, f := readSetup(t)
	_, err := f.RepoAdmin(context.Background(), forgelink.Slug{VCS: forgelink.GitHub, Org: "octo-org", Repo: "nope"})
	readCheckErr(t, err, forgelink.NotFound, "repository octo-org/nope")
}

// TestReadSHA256Fallback checks the key when GitHub sends no sha.
func TestReadSHA256Fallback(t *testing.T) {
	g, f := readSetup(t)
	g.FailNextResponse(http.MethodGet, "/contents/c.yml", 1, 200, nil,
		`{"type":"file","encoding":"base64","size":3,"name":"c.yml","path":"c.yml","content":"YWJj\n"}`)
	got, key, err := f.File(context.Background(), readSlug, "c.yml", "main")
	sum := sha256.Sum256([]byte("abc"))
	if err != nil || string(got) != "abc" || key != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("File = %q, %q, %v; want abc with its sha256 key", got, key, err)
	}
}
