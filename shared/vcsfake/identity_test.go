package vcsfake_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/vcsfake"
)

// getJSON GETs u with token, decodes a 200's JSON body into v and returns
// the response.
func getJSON(t *testing.T, u, token string, v any) *http.Response {
	t.Helper()
	resp, body := call(t, http.MethodGet, u, token, "", nil)
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v in %s", u, err, body)
		}
	}
	return resp
}

func TestGitHubUsersAndTokens(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	hubot := g.AddUser("hubot", 42, "Hubot")
	mona := g.AddUser("mona", 43, "Mona Lisa")
	g.SetScopes(mona, "repo")
	g.SetScopes("repo", "user") // no token first: Token's, as before

	type user struct {
		Login string `json:"login"`
		ID    int64  `json:"id"`
		Name  string `json:"name"`
	}
	tests := []struct {
		name       string
		token      string
		want       user
		wantScopes string
	}{
		{"original user", g.Token, user{vcsfake.GitHubLogin, vcsfake.GitHubUserID, vcsfake.GitHubUserName}, "repo, user"},
		{"added user", hubot, user{"hubot", 42, "Hubot"}, strings.Join(vcsfake.GitHubDefaultScopes, ", ")},
		{"added user with scopes", mona, user{"mona", 43, "Mona Lisa"}, "repo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got user
			resp := getJSON(t, g.URL+"user", tc.token, &got)
			if resp.StatusCode != http.StatusOK || got != tc.want {
				t.Errorf("GET /user = %d %+v, want 200 %+v", resp.StatusCode, got, tc.want)
			}
			if s := resp.Header.Get("X-OAuth-Scopes"); s != tc.wantScopes {
				t.Errorf("X-OAuth-Scopes = %q, want %q", s, tc.wantScopes)
			}
		})
	}

	g.RevokeToken(hubot)
	resp, body := call(t, http.MethodGet, g.URL+"user", hubot, "", nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "Bad credentials") {
		t.Errorf("revoked token: %d %s, want 401 Bad credentials", resp.StatusCode, body)
	}
	if s := resp.Header.Values("X-OAuth-Scopes"); len(s) != 0 {
		t.Errorf("401 has X-OAuth-Scopes %q", s)
	}
	g.SetToken("gho_rotated")
	if resp, _ := call(t, http.MethodGet, g.URL+"user", g.Token, "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("old Token after SetToken: %d, want 401", resp.StatusCode)
	}
	var u user
	if resp := getJSON(t, g.URL+"user", "gho_rotated", &u); resp.StatusCode != 200 || u.Login != vcsfake.GitHubLogin || resp.Header.Get("X-OAuth-Scopes") != "repo, user" {
		t.Errorf("new token: %d %+v scopes %q, want octocat with the old token's scopes", resp.StatusCode, u, resp.Header.Get("X-OAuth-Scopes"))
	}
	if resp := getJSON(t, g.URL+"user", mona, nil); resp.StatusCode != 200 {
		t.Errorf("another user's token after SetToken: %d, want 200", resp.StatusCode)
	}
}

func TestGitHubPermissions(t *testing.T) {
	type perms struct {
		Admin, Maintain, Push, Triage, Pull bool
	}
	tests := []struct {
		name      string
		private   bool
		role      string // "-": not set
		wantRepo  int
		want      perms
		wantKeys  int
		wantOwner bool // the original user still admin
	}{
		{name: "admin", private: true, role: "admin", wantRepo: 200, want: perms{true, true, true, true, true}, wantKeys: 200},
		{name: "maintain", private: true, role: "maintain", wantRepo: 200, want: perms{false, true, true, true, true}, wantKeys: 404},
		{name: "push", private: true, role: "push", wantRepo: 200, want: perms{Push: true, Triage: true, Pull: true}, wantKeys: 404},
		{name: "triage", private: true, role: "triage", wantRepo: 200, want: perms{Triage: true, Pull: true}, wantKeys: 404},
		{name: "pull", private: true, role: "pull", wantRepo: 200, want: perms{Pull: true}, wantKeys: 404},
		{name: "none on a private repo", private: true, role: "", wantRepo: 404, wantKeys: 404},
		{name: "none on a public repo", private: false, role: "", wantRepo: 404, wantKeys: 404},
		{name: "unset on a private repo", private: true, role: "-", wantRepo: 404, wantKeys: 404},
		{name: "unset on a public repo", private: false, role: "-", wantRepo: 200, want: perms{Pull: true}, wantKeys: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := vcsfake.NewGitHub(t)
			g.AddRepo("o/r", "main", tc.private)
			hubot := g.AddUser("hubot", 42, "Hubot")
			if tc.role != "-" {
				g.SetPermission("o/r", "hubot", tc.role)
			}
			var repo struct {
				Permissions map[string]bool `json:"permissions"`
			}
			resp := getJSON(t, g.URL+"repos/o/r", hubot, &repo)
			if resp.StatusCode != tc.wantRepo {
				t.Fatalf("GET /repos/o/r = %d, want %d", resp.StatusCode, tc.wantRepo)
			}
			if tc.wantRepo == 200 {
				got := perms{repo.Permissions["admin"], repo.Permissions["maintain"], repo.Permissions["push"], repo.Permissions["triage"], repo.Permissions["pull"]}
				if got != tc.want {
					t.Errorf("permissions = %+v, want %+v", got, tc.want)
				}
			}
			if resp := getJSON(t, g.URL+"repos/o/r/keys", hubot, nil); resp.StatusCode != tc.wantKeys {
				t.Errorf("GET keys = %d, want %d", resp.StatusCode, tc.wantKeys)
			}
			if resp := getJSON(t, g.URL+"repos/o/r/hooks", g.Token, nil); resp.StatusCode != 200 {
				t.Errorf("original user's GET hooks = %d, want 200 (admin everywhere)", resp.StatusCode)
			}
		})
	}
}

func TestGitHubUserRepos(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	hubot := g.AddUser("hubot", 42, "Hubot")
	roles := []string{"admin", "push", "pull", ""}
	for i := range 12 {
		name := fmt.Sprintf("o/r%02d", i)
		g.AddRepo(name, "main", i%2 == 0)
		g.SetPermission(name, "hubot", roles[i%4])
	}
	g.AddRepo("o/public-unset", "trunk", false) // seen, not listed

	type repo struct {
		FullName      string          `json:"full_name"`
		Private       bool            `json:"private"`
		DefaultBranch string          `json:"default_branch"`
		Permissions   map[string]bool `json:"permissions"`
	}
	list := func(t *testing.T, token, query string) ([]repo, int) {
		t.Helper()
		var all []repo
		pages := 0
		for next := g.URL + "user/repos?" + query; next != ""; pages++ {
			var page []repo
			resp := getJSON(t, next, token, &page)
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s = %d", next, resp.StatusCode)
			}
			all = append(all, page...)
			next = ""
			for _, l := range strings.Split(resp.Header.Get("Link"), ",") {
				if u, rel, ok := strings.Cut(l, ";"); ok && strings.Contains(rel, `rel="next"`) {
					next = strings.Trim(strings.TrimSpace(u), "<>")
				}
			}
		}
		return all, pages
	}

	got, pages := list(t, hubot, "per_page=4")
	var names []string
	for _, r := range got {
		names = append(names, r.FullName)
		i := 0
		fmt.Sscanf(r.FullName, "o/r%02d", &i)
		if r.Private != (i%2 == 0) || r.DefaultBranch != "main" || r.Permissions["admin"] != (roles[i%4] == "admin") || !r.Permissions["pull"] {
			t.Errorf("%s = %+v, want private %v admin %v", r.FullName, r, i%2 == 0, roles[i%4] == "admin")
		}
	}
	want := []string{"o/r00", "o/r01", "o/r02", "o/r04", "o/r05", "o/r06", "o/r08", "o/r09", "o/r10"}
	if diff := cmp.Diff(want, names); diff != "" || pages != 3 {
		t.Errorf("hubot's repos over %d pages (-want +got):\n%s", pages, diff)
	}

	got, _ = list(t, hubot, "visibility=private&sort=created")
	names = nil
	for _, r := range got {
		names = append(names, r.FullName)
	}
	if diff := cmp.Diff([]string{"o/r10", "o/r08", "o/r06", "o/r04", "o/r02", "o/r00"}, names); diff != "" {
		t.Errorf("private, newest first (-want +got):\n%s", diff)
	}

	got, _ = list(t, g.Token, "per_page=100")
	if len(got) != 13 || got[0].FullName != "o/public-unset" || !got[0].Permissions["admin"] {
		t.Errorf("the original user's repos: %d, first %+v; want all 13, admin", len(got), got[0])
	}
	if resp, _ := call(t, http.MethodGet, g.URL+"user/repos?visibility=secret", hubot, "", nil); resp.StatusCode != 422 {
		t.Errorf("bad visibility = %d, want 422", resp.StatusCode)
	}
}

func TestBitbucketUsersAndTokens(t *testing.T) {
	b := vcsfake.NewBitbucket(t)
	hubot := b.AddUser("hubot", "00000000-0000-4000-8000-000000000042", "Hu Bot")
	mona := b.AddUser("mona", "{00000000-0000-4000-8000-000000000043}", "Mona")
	b.SetScopes(mona)

	type user struct {
		UUID        string `json:"uuid"`
		Username    string `json:"username"`
		Nickname    string `json:"nickname"`
		DisplayName string `json:"display_name"`
	}
	tests := []struct {
		name       string
		token      string
		want       user
		wantScopes []string // nil: no header
	}{
		{"original user", b.Token, user{vcsfake.BitbucketUserUUID, "octocat", "octocat", vcsfake.BitbucketDisplayName}, []string{strings.Join(vcsfake.BitbucketDefaultScopes, ", ")}},
		{"added user", hubot, user{"{00000000-0000-4000-8000-000000000042}", "hubot", "hubot", "Hu Bot"}, []string{strings.Join(vcsfake.BitbucketDefaultScopes, ", ")}},
		{"no scopes", mona, user{"{00000000-0000-4000-8000-000000000043}", "mona", "mona", "Mona"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got user
			resp := getJSON(t, b.URL+"user", tc.token, &got)
			if resp.StatusCode != http.StatusOK || got != tc.want {
				t.Errorf("GET /user = %d %+v, want 200 %+v", resp.StatusCode, got, tc.want)
			}
			if diff := cmp.Diff(tc.wantScopes, resp.Header.Values("X-OAuth-Scopes")); diff != "" {
				t.Errorf("X-OAuth-Scopes (-want +got):\n%s", diff)
			}
		})
	}
	// Without the email scope, /user/emails is refused.
	b.SetScopes(hubot, "account", "repository")
	if resp, _ := call(t, http.MethodGet, b.URL+"user/emails", hubot, "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("emails without the email scope = %d, want 403", resp.StatusCode)
	}
	if resp, _ := call(t, http.MethodGet, b.URL+"user/emails", mona, "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("emails of a token without scopes = %d, want 200", resp.StatusCode)
	}

	b.ExpireToken(hubot)
	resp, body := call(t, http.MethodGet, b.URL+"user", hubot, "", nil)
	if resp.StatusCode != 401 || !strings.Contains(string(body), "Access token expired.") || resp.Header.Get("X-OAuth-Scopes") != "" {
		t.Errorf("expired token: %d %s scopes %q; want 401 Access token expired., no scopes", resp.StatusCode, body, resp.Header.Get("X-OAuth-Scopes"))
	}
	b.RevokeToken(mona)
	if resp, body := call(t, http.MethodGet, b.URL+"user", mona, "", nil); resp.StatusCode != 401 || !strings.Contains(string(body), "Token is invalid") {
		t.Errorf("revoked token: %d %s; want 401 Token is invalid", resp.StatusCode, body)
	}
	b.SetToken("octocat:app-password")
	req, _ := http.NewRequest(http.MethodGet, b.URL+"user", nil)
	req.SetBasicAuth("octocat", "app-password")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 200 {
		t.Errorf("app password after SetToken = %d, want 200", r2.StatusCode)
	}
}

func TestBitbucketPermissions(t *testing.T) {
	tests := []struct {
		name     string
		private  bool
		perm     string // "-": not set
		wantRepo int
		wantKeys int
		wantPerm string // in /user/permissions/repositories; "" not listed
	}{
		{name: "admin", private: true, perm: "admin", wantRepo: 200, wantKeys: 200, wantPerm: "admin"},
		{name: "write", private: true, perm: "write", wantRepo: 200, wantKeys: 403, wantPerm: "write"},
		{name: "read", private: true, perm: "read", wantRepo: 200, wantKeys: 403, wantPerm: "read"},
		{name: "none on a public repo", private: false, perm: "", wantRepo: 404, wantKeys: 404},
		{name: "unset on a private repo", private: true, perm: "-", wantRepo: 404, wantKeys: 404},
		{name: "unset on a public repo", private: false, perm: "-", wantRepo: 200, wantKeys: 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := vcsfake.NewBitbucket(t)
			b.AddRepo("ws/r", "main", tc.private)
			b.AddRepo("ws/other", "main", true)
			hubot := b.AddUser("hubot", "{00000000-0000-4000-8000-000000000042}", "Hu Bot")
			if tc.perm != "-" {
				b.SetPermission("ws/r", "hubot", tc.perm)
			}
			if resp := getJSON(t, b.URL+"repositories/ws/r", hubot, nil); resp.StatusCode != tc.wantRepo {
				t.Errorf("GET repository = %d, want %d", resp.StatusCode, tc.wantRepo)
			}
			if resp := getJSON(t, b.URL+"repositories/ws/r/deploy-keys", hubot, nil); resp.StatusCode != tc.wantKeys {
				t.Errorf("GET deploy-keys = %d, want %d", resp.StatusCode, tc.wantKeys)
			}
			var page struct {
				Values []struct {
					Permission string `json:"permission"`
					Repository struct {
						FullName string `json:"full_name"`
					} `json:"repository"`
					User struct {
						Nickname string `json:"nickname"`
					} `json:"user"`
				} `json:"values"`
			}
			getJSON(t, b.URL+"user/permissions/repositories?q="+url.QueryEscape(`repository.full_name="ws/r"`), hubot, &page)
			got := ""
			for _, v := range page.Values {
				if v.Repository.FullName != "ws/r" || v.User.Nickname != "hubot" {
					t.Errorf("listed %+v", v)
				}
				got = v.Permission
			}
			if got != tc.wantPerm || len(page.Values) > 1 {
				t.Errorf("permission listed = %q (%d values), want %q", got, len(page.Values), tc.wantPerm)
			}
			if resp := getJSON(t, b.URL+"repositories/ws/r/hooks", b.Token, nil); resp.StatusCode != 200 {
				t.Errorf("original user's GET hooks = %d, want 200 (admin everywhere)", resp.StatusCode)
			}
		})
	}
}

func TestBitbucketRepositoriesByRole(t *testing.T) {
	b := vcsfake.NewBitbucket(t)
	hubot := b.AddUser("hubot", "{00000000-0000-4000-8000-000000000042}", "Hu Bot")
	perms := []string{"admin", "write", "read", ""}
	for i := range 12 {
		name := fmt.Sprintf("ws/r%02d", i)
		b.AddRepo(name, "main", i%2 == 0)
		b.SetPermission(name, "hubot", perms[i%4])
	}
	b.AddRepo("ws/public-unset", "main", false)

	list := func(t *testing.T, u string) ([]string, int) {
		t.Helper()
		var names []string
		pages := 0
		for ; u != ""; pages++ {
			var page struct {
				Values []struct {
					FullName string `json:"full_name"`
				} `json:"values"`
				Next string `json:"next"`
			}
			if resp := getJSON(t, u, hubot, &page); resp.StatusCode != 200 {
				t.Fatalf("GET %s = %d", u, resp.StatusCode)
			}
			for _, v := range page.Values {
				names = append(names, v.FullName)
			}
			u = page.Next
		}
		return names, pages
	}
	tests := []struct {
		role      string
		want      []string
		wantPages int
	}{
		{"member", []string{"ws/r00", "ws/r01", "ws/r02", "ws/r04", "ws/r05", "ws/r06", "ws/r08", "ws/r09", "ws/r10"}, 3},
		{"contributor", []string{"ws/r00", "ws/r01", "ws/r04", "ws/r05", "ws/r08", "ws/r09"}, 2},
		{"admin", []string{"ws/r00", "ws/r04", "ws/r08"}, 1},
		{"", []string{"ws/public-unset", "ws/r01", "ws/r05", "ws/r09"}, 1},
	}
	for _, tc := range tests {
		t.Run("role "+tc.role, func(t *testing.T) {
			got, pages := list(t, b.URL+"repositories?pagelen=4&role="+tc.role)
			if diff := cmp.Diff(tc.want, got); diff != "" || pages != tc.wantPages {
				t.Errorf("%d pages, want %d (-want +got):\n%s", pages, tc.wantPages, diff)
			}
		})
	}
	if resp, _ := call(t, http.MethodGet, b.URL+"repositories?role=boss", hubot, "", nil); resp.StatusCode != 400 {
		t.Errorf("unknown role = %d, want 400", resp.StatusCode)
	}
	// The permissions listing pages too, and lists only hubot's.
	var page struct {
		Size int    `json:"size"`
		Next string `json:"next"`
	}
	getJSON(t, b.URL+"user/permissions/repositories?pagelen=5", hubot, &page)
	if page.Size != 9 || page.Next == "" {
		t.Errorf("permissions: size %d next %q, want 9 and a next page", page.Size, page.Next)
	}
}
