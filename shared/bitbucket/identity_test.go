package bitbucket_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/bitbucket"
	"forgelink/shared/forgelink"
	"forgelink/shared/vcsfake"
)

const hubotUUID = "{6c2b2d9e-0000-4000-8000-00000000b0b0}"

// identityForge returns a Forge for token on b.
func identityForge(t *testing.T, b *vcsfake.Bitbucket, token string, hc *http.Client) *bitbucket.Forge {
	t.Helper()
	if hc == nil {
		hc = b.Server.Client()
	}
	f, err := bitbucket.NewForge(b.URL, token, hc)
	if err != nil {
		t.Fatalf("NewForge: %v", err)
	}
	return f
}

func TestAccount(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the token to ask with.
		setup    func(b *vcsfake.Bitbucket) string
		want     *forgelink.Account
		wantKind forgelink.Kind // Internal: no error
		wantMsg  string
	}{
		{
			name:  "original user",
			setup: func(b *vcsfake.Bitbucket) string { return b.Token },
			want:  &forgelink.Account{ID: vcsfake.BitbucketUserUUID, Login: "octocat", Name: "Octo Cat", Scopes: vcsfake.BitbucketDefaultScopes},
		},
		{
			name:  "another user",
			setup: func(b *vcsfake.Bitbucket) string { return b.AddUser("hubot", hubotUUID, "Hu Bot") },
			want:  &forgelink.Account{ID: hubotUUID, Login: "hubot", Name: "Hu Bot", Scopes: vcsfake.BitbucketDefaultScopes},
		},
		{
			name: "fewer scopes",
			setup: func(b *vcsfake.Bitbucket) string {
				tok := b.AddUser("hubot", hubotUUID, "Hu Bot")
				b.SetScopes(tok, "account", "repository")
				return tok
			},
			want: &forgelink.Account{ID: hubotUUID, Login: "hubot", Name: "Hu Bot", Scopes: []string{"account", "repository"}},
		},
		{
			name: "no X-OAuth-Scopes",
			setup: func(b *vcsfake.Bitbucket) string {
				b.SetScopes(b.Token)
				return b.Token
			},
			want: &forgelink.Account{ID: vcsfake.BitbucketUserUUID, Login: "octocat", Name: "Octo Cat"},
		},
		{
			name: "space-separated scopes",
			setup: func(b *vcsfake.Bitbucket) string {
				b.FailNextResponse(http.MethodGet, "/user", 1, 200, http.Header{"X-Oauth-Scopes": {"account repository:admin"}},
					`{"type":"user","uuid":"{1}","username":"u","nickname":"n","display_name":"D"}`)
				return b.Token
			},
			want: &forgelink.Account{ID: "{1}", Login: "u", Name: "D", Scopes: []string{"account", "repository:admin"}},
		},
		{
			name: "no username: the nickname",
			setup: func(b *vcsfake.Bitbucket) string {
				b.FailNextResponse(http.MethodGet, "/user", 1, 200, nil, `{"type":"user","uuid":"{1}","nickname":"n","display_name":"D"}`)
				b.SetScopes(b.Token)
				return b.Token
			},
			want: &forgelink.Account{ID: "{1}", Login: "n", Name: "D"},
		},
		{
			name: "expired token",
			setup: func(b *vcsfake.Bitbucket) string {
				tok := b.AddUser("hubot", hubotUUID, "Hu Bot")
				b.ExpireToken(tok)
				return tok
			},
			wantKind: forgelink.Unauthorized, wantMsg: "Access token expired.",
		},
		{name: "revoked token", setup: func(b *vcsfake.Bitbucket) string { return "nope" }, wantKind: forgelink.Unauthorized},
		{
			name: "a user without a uuid",
			setup: func(b *vcsfake.Bitbucket) string {
				b.FailNextResponse(http.MethodGet, "/user", 1, 200, nil, `{"type":"user","username":"ghost"}`)
				return b.Token
			},
			wantKind: forgelink.Upstream,
		},
		{
			name: "Bitbucket down",
			setup: func(b *vcsfake.Bitbucket) string {
				b.FailNext(http.MethodGet, "/user", 500, 1)
				return b.Token
			},
			wantKind: forgelink.Transient,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := vcsfake.NewBitbucket(t)
			got, err := identityForge(t, b, tc.setup(b), nil).Account(context.Background())
			if tc.wantKind != forgelink.Internal {
				readCheckErr(t, err, tc.wantKind, tc.wantMsg)
				return
			}
			if err != nil {
				t.Fatalf("Account: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Account (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPermission(t *testing.T) {
	const repo = "octo-ws/hello-world"
	slug := forgelink.Slug{VCS: forgelink.Bitbucket, Org: "octo-ws", Repo: "hello-world"}
	tests := []struct {
		name     string
		private  bool
		perm     string // hubot's; "-": not set
		original bool   // ask as the original user instead
		setup    func(b *vcsfake.Bitbucket)
		slug     forgelink.Slug
		want     forgelink.Permission
		wantKind forgelink.Kind // Internal: no error
		wantReqs int
	}{
		{name: "admin", private: true, perm: "admin", want: forgelink.PermissionAdmin, wantReqs: 1},
		{name: "write", private: true, perm: "write", want: forgelink.PermissionPull, wantReqs: 1},
		{name: "read", private: true, perm: "read", want: forgelink.PermissionPull, wantReqs: 1},
		{name: "hidden", private: true, perm: "", want: forgelink.PermissionNone, wantReqs: 2},
		{name: "hidden public", private: false, perm: "", want: forgelink.PermissionNone, wantReqs: 2},
		{name: "private, no permission", private: true, perm: "-", want: forgelink.PermissionNone, wantReqs: 2},
		{name: "public, no permission", private: false, perm: "-", want: forgelink.PermissionPull, wantReqs: 2},
		{name: "no such repository", private: true, perm: "admin", slug: forgelink.Slug{VCS: forgelink.Bitbucket, Org: "octo-ws", Repo: "nope"}, want: forgelink.PermissionNone, wantReqs: 2},
		{name: "original user", private: true, perm: "-", original: true, want: forgelink.PermissionAdmin, wantReqs: 1},
		{name: "original user, read", private: true, perm: "-", original: true, setup: func(b *vcsfake.Bitbucket) { b.SetPermission(repo, vcsfake.BitbucketUsername, "read") }, want: forgelink.PermissionPull, wantReqs: 1},
		{name: "token may not ask", private: true, perm: "admin", setup: func(b *vcsfake.Bitbucket) { b.FailNext(http.MethodGet, "/user/permissions/repositories", 403, 1) }, wantKind: forgelink.Forbidden, wantReqs: 1},
		{name: "bad token", private: true, perm: "admin", setup: func(b *vcsfake.Bitbucket) { b.FailNext(http.MethodGet, "/user/permissions/repositories", 401, 1) }, wantKind: forgelink.Unauthorized, wantReqs: 1},
		{name: "repository read fails", private: false, perm: "-", setup: func(b *vcsfake.Bitbucket) { b.FailNext(http.MethodGet, "/repositories/"+repo, 500, 1) }, wantKind: forgelink.Transient, wantReqs: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := vcsfake.NewBitbucket(t)
			b.AddRepo(repo, "main", tc.private)
			b.AddRepo("octo-ws/other", "main", true)
			token := b.AddUser("hubot", hubotUUID, "Hu Bot")
			b.SetPermission("octo-ws/other", "hubot", "admin") // listed, never the answer
			if tc.perm != "-" {
				b.SetPermission(repo, "hubot", tc.perm)
			}
			if tc.original {
				token = b.Token
			}
			if tc.setup != nil {
				tc.setup(b)
			}
			s := slug
			if tc.slug != (forgelink.Slug{}) {
				s = tc.slug
			}
			got, err := identityForge(t, b, token, nil).Permission(context.Background(), s)
			if n := b.CountRequests("", ""); n != tc.wantReqs {
				t.Errorf("%d requests, want %d", n, tc.wantReqs)
			}
			if tc.wantKind != forgelink.Internal {
				readCheckErr(t, err, tc.wantKind, "")
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Permission = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// failPage makes the fake answer status to the request for page of a
// list whose path ends with suffix, and passes every request on.
type failPage struct {
	b      *vcsfake.Bitbucket
	suffix string
	page   string
	status int
	next   http.RoundTripper
}

func (f failPage) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, f.suffix) && r.URL.Query().Get("page") == f.page {
		f.b.FailNext(http.MethodGet, f.suffix, f.status, 1)
	}
	return f.next.RoundTrip(r)
}

func TestRepos(t *testing.T) {
	b := vcsfake.NewBitbucket(t)
	hubot := b.AddUser("hubot", hubotUUID, "Hu Bot")
	perms := []string{"admin", "write", "read", ""}
	var want []forgelink.UserRepo
	for i := range 160 {
		name := fmt.Sprintf("r%03d", i)
		branch := "main"
		if i%5 == 0 {
			branch = "trunk"
		}
		b.AddRepo("octo-ws/"+name, branch, i%2 == 0)
		b.SetPermission("octo-ws/"+name, "hubot", perms[i%4])
		if perms[i%4] != "" {
			want = append(want, forgelink.UserRepo{
				Slug:          forgelink.Slug{VCS: forgelink.Bitbucket, Org: "octo-ws", Repo: name},
				Private:       i%2 == 0,
				Admin:         perms[i%4] == "admin",
				DefaultBranch: branch,
			})
		}
	}
	b.AddRepo("other-ws/public", "main", false) // hubot sees it but is no member: not listed

	t.Run("all pages", func(t *testing.T) {
		got, err := identityForge(t, b, hubot, nil).Repos(context.Background())
		if err != nil {
			t.Fatalf("Repos: %v", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Repos (-want +got):\n%s", diff)
		}
		if n := b.CountRequests(http.MethodGet, "/2.0/repositories"); n != 2 {
			t.Errorf("%d pages of repositories, want 2 (120, 100 a page)", n)
		}
		if n := b.CountRequests(http.MethodGet, "/user/permissions/repositories"); n != 2 {
			t.Errorf("%d pages of permissions, want 2 (120, 100 a page)", n)
		}
	})
	t.Run("original user", func(t *testing.T) {
		got, err := identityForge(t, b, b.Token, nil).Repos(context.Background())
		if err != nil || len(got) != 161 || !got[0].Admin || !got[160].Admin {
			t.Errorf("Repos = %d repositories, %v; want 161, all admin", len(got), err)
		}
	})
	t.Run("no repositories", func(t *testing.T) {
		got, err := identityForge(t, b, b.AddUser("newbie", "{7}", ""), nil).Repos(context.Background())
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("Repos = %#v, %v; want an empty list", got, err)
		}
	})

	errTests := []struct {
		name     string
		token    string
		client   func() *http.Client
		wantKind forgelink.Kind
	}{
		{name: "bad token", token: "nope", wantKind: forgelink.Unauthorized},
		{name: "expired token", token: func() string { tok := b.AddUser("late", "{8}", ""); b.ExpireToken(tok); return tok }(), wantKind: forgelink.Unauthorized},
		{name: "second page of repositories fails", token: hubot, wantKind: forgelink.Transient, client: func() *http.Client {
			return &http.Client{Transport: failPage{b: b, suffix: "/2.0/repositories", page: "2", status: 502, next: b.Server.Client().Transport}}
		}},
		{name: "second page of permissions fails", token: hubot, wantKind: forgelink.Transient, client: func() *http.Client {
			return &http.Client{Transport: failPage{b: b, suffix: "/user/permissions/repositories", page: "2", status: 502, next: b.Server.Client().Transport}}
		}},
		{name: "token may not list permissions", token: hubot, wantKind: forgelink.Forbidden, client: func() *http.Client {
			return &http.Client{Transport: failPage{b: b, suffix: "/user/permissions/repositories", page: "", status: 403, next: b.Server.Client().Transport}}
		}},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			var hc *http.Client
			if tc.client != nil {
				hc = tc.client()
			}
			got, err := identityForge(t, b, tc.token, hc).Repos(context.Background())
			if got != nil {
				t.Errorf("Repos = %d repositories with the error", len(got))
			}
			readCheckErr(t, err, tc.wantKind, "")
		})
	}
}
