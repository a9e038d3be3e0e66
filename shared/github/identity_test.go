package github_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/forgelink"
	"forgelink/shared/github"
	"forgelink/shared/vcsfake"
)

// identityForge returns a Forge for token on g.
func identityForge(t *testing.T, g *vcsfake.GitHub, token string) *github.Forge {
	t.Helper()
	f, err := github.NewForge(g.URL, token, g.Server.Client())
	if err != nil {
		t.Fatalf("NewForge: %v", err)
	}
	return f
}

func TestAccount(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the token to ask with.
		setup    func(g *vcsfake.GitHub) string
		want     *forgelink.Account
		wantKind forgelink.Kind // Internal: no error
	}{
		{
			name:  "original user",
			setup: func(g *vcsfake.GitHub) string { return g.Token },
			want:  &forgelink.Account{ID: "1", Login: "octocat", Name: "The Octocat", Scopes: vcsfake.GitHubDefaultScopes},
		},
		{
			name:  "another user",
			setup: func(g *vcsfake.GitHub) string { return g.AddUser("hubot", 583231, "Hubot") },
			want:  &forgelink.Account{ID: "583231", Login: "hubot", Name: "Hubot", Scopes: vcsfake.GitHubDefaultScopes},
		},
		{
			name: "fewer scopes",
			setup: func(g *vcsfake.GitHub) string {
				tok := g.AddUser("hubot", 583231, "Hubot")
				g.SetScopes(tok, "repo", "user:email")
				return tok
			},
			want: &forgelink.Account{ID: "583231", Login: "hubot", Name: "Hubot", Scopes: []string{"repo", "user:email"}},
		},
		{
			name: "no scopes",
			setup: func(g *vcsfake.GitHub) string {
				g.SetScopes(g.Token)
				return g.Token
			},
			want: &forgelink.Account{ID: "1", Login: "octocat", Name: "The Octocat"},
		},
		{
			name: "revoked token",
			setup: func(g *vcsfake.GitHub) string {
				tok := g.AddUser("hubot", 583231, "Hubot")
				g.RevokeToken(tok)
				return tok
			},
			wantKind: forgelink.Unauthorized,
		},
		{
			name: "GitHub down",
			setup: func(g *vcsfake.GitHub) string {
				g.FailNext(http.MethodGet, "/user", 502, 1)
				return g.Token
			},
			wantKind: forgelink.Transient,
		},
		{
			name: "a user without an id",
			setup: func(g *vcsfake.GitHub) string {
				g.FailNextResponse(http.MethodGet, "/user", 1, 200, nil, `{"login":"ghost"}`)
				return g.Token
			},
			wantKind: forgelink.Upstream,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := vcsfake.NewGitHub(t)
			f := identityForge(t, g, tc.setup(g))
			got, err := f.Account(context.Background())
			if tc.wantKind != forgelink.Internal {
				readCheckErr(t, err, tc.wantKind, "")
				return
			}
			if err != nil {
				t.Fatalf("Account: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Account (-want +got):\n%s", diff)
			}
			if n := g.CountRequests("", ""); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestPermission(t *testing.T) {
	const repo = "octo-org/hello-world"
	slug := forgelink.Slug{VCS: forgelink.GitHub, Org: "octo-org", Repo: "hello-world"}
	tests := []struct {
		name     string
		private  bool
		role     string // hubot's; "-": not set
		original bool   // ask as the original user instead
		setup    func(g *vcsfake.GitHub)
		slug     forgelink.Slug
		want     forgelink.Permission
		wantKind forgelink.Kind // Internal: no error
	}{
		{name: "admin", private: true, role: "admin", want: forgelink.PermissionAdmin},
		{name: "maintain", private: true, role: "maintain", want: forgelink.PermissionPull},
		{name: "push", private: true, role: "push", want: forgelink.PermissionPull},
		{name: "pull", private: true, role: "pull", want: forgelink.PermissionPull},
		{name: "hidden", private: true, role: "", want: forgelink.PermissionNone},
		{name: "hidden public", private: false, role: "", want: forgelink.PermissionNone},
		{name: "private, not a collaborator", private: true, role: "-", want: forgelink.PermissionNone},
		{name: "public, not a collaborator", private: false, role: "-", want: forgelink.PermissionPull},
		{name: "no such repository", private: true, role: "admin", slug: forgelink.Slug{VCS: forgelink.GitHub, Org: "octo-org", Repo: "nope"}, want: forgelink.PermissionNone},
		{name: "original user", private: true, role: "-", original: true, want: forgelink.PermissionAdmin},
		{name: "original user demoted", private: true, role: "-", original: true, setup: func(g *vcsfake.GitHub) { g.SetAdmin(repo, false) }, want: forgelink.PermissionPull},
		{name: "org restricts OAuth Apps", private: true, role: "admin", setup: func(g *vcsfake.GitHub) { g.SetOrgRestricted("octo-org", true) }, wantKind: forgelink.Forbidden},
		{name: "bad token", private: true, role: "admin", setup: func(g *vcsfake.GitHub) { g.FailNext(http.MethodGet, "/repos/"+repo, 401, 1) }, wantKind: forgelink.Unauthorized},
		{name: "GitHub down", private: true, role: "admin", setup: func(g *vcsfake.GitHub) { g.FailNext(http.MethodGet, "/repos/"+repo, 503, 1) }, wantKind: forgelink.Transient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := vcsfake.NewGitHub(t)
			g.AddRepo(repo, "main", tc.private)
			token := g.AddUser("hubot", 583231, "Hubot")
			if tc.role != "-" {
				g.SetPermission(repo, "hubot", tc.role)
			}
			if tc.original {
				token = g.Token
			}
			if tc.setup != nil {
				tc.setup(g)
			}
			s := slug
			if tc.slug != (forgelink.Slug{}) {
				s = tc.slug
			}
			got, err := identityForge(t, g, token).Permission(context.Background(), s)
			if n := g.CountRequests("", ""); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
			if tc.wantKind != forgelink.Internal {
				readCheckErr(t, err, tc.wantKind, "")
				if tc.wantKind == forgelink.Forbidden && !github.OAuthAppRestricted(err) {
					t.Errorf("OAuthAppRestricted(%v) = false", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Permission = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// failPage makes the fake answer 502 to the request for page of
// /user/repos, and passes every request on to the fake.
type failPage struct {
	g    *vcsfake.GitHub
	page string
	next http.RoundTripper
}

func (f failPage) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/user/repos") && r.URL.Query().Get("page") == f.page {
		f.g.FailNext(http.MethodGet, "/user/repos", 502, 1)
	}
	return f.next.RoundTrip(r)
}

func TestRepos(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	hubot := g.AddUser("hubot", 583231, "Hubot")
	roles := []string{"admin", "push", "pull", ""}
	var want []forgelink.UserRepo
	for i := range 160 {
		name := fmt.Sprintf("r%03d", i)
		branch := "main"
		if i%5 == 0 {
			branch = "trunk"
		}
		g.AddRepo("octo-org/"+name, branch, i%2 == 0)
		g.SetPermission("octo-org/"+name, "hubot", roles[i%4])
		if roles[i%4] != "" {
			want = append(want, forgelink.UserRepo{
				Slug:          forgelink.Slug{VCS: forgelink.GitHub, Org: "octo-org", Repo: name},
				Private:       i%2 == 0,
				Admin:         roles[i%4] == "admin",
				DefaultBranch: branch,
			})
		}
	}
	g.AddRepo("other-org/public", "main", false) // hubot sees it but is no member: not listed

	t.Run("all pages", func(t *testing.T) {
		got, err := identityForge(t, g, hubot).Repos(context.Background())
		if err != nil {
			t.Fatalf("Repos: %v", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Repos (-want +got):\n%s", diff)
		}
		if n := g.CountRequests(http.MethodGet, "/user/repos"); n != 2 {
			t.Errorf("%d pages read, want 2 (120 repositories, 100 a page)", n)
		}
	})
	t.Run("original user", func(t *testing.T) {
		got, err := identityForge(t, g, g.Token).Repos(context.Background())
		if err != nil || len(got) != 161 || !got[0].Admin || got[160].Slug.FullName() != "other-org/public" {
			t.Errorf("Repos = %d repositories, %v; want 161, all admin", len(got), err)
		}
	})
	t.Run("no repositories", func(t *testing.T) {
		got, err := identityForge(t, g, g.AddUser("newbie", 7, "")).Repos(context.Background())
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("Repos = %#v, %v; want an empty list", got, err)
		}
	})

	errTests := []struct {
		name      string
		token     string
		client    func() *http.Client
		wantKind  forgelink.Kind
		wantPages int
	}{
		{name: "bad token", token: "gho_nope", wantKind: forgelink.Unauthorized, wantPages: 1},
		{name: "second page fails", token: hubot, wantKind: forgelink.Transient, wantPages: 2, client: func() *http.Client {
			return &http.Client{Transport: failPage{g: g, page: "2", next: g.Server.Client().Transport}}
		}},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			hc := g.Server.Client()
			if tc.client != nil {
				hc = tc.client()
			}
			f, err := github.NewForge(g.URL, tc.token, hc)
			if err != nil {
				t.Fatal(err)
			}
			before := g.CountRequests(http.MethodGet, "/user/repos")
			got, err := f.Repos(context.Background())
			if got != nil {
				t.Errorf("Repos = %d repositories with the error", len(got))
			}
			readCheckErr(t, err, tc.wantKind, "")
			if n := g.CountRequests(http.MethodGet, "/user/repos") - before; n != tc.wantPages {
				t.Errorf("%d pages asked for, want %d", n, tc.wantPages)
			}
		})
	}
}
