package vcsfake

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// GitHubUserID and GitHubUserName are the id and name of GitHubLogin, the
// user of Token.
const (
	GitHubUserID   = 1
	GitHubUserName = "The Octocat"
)

// ghUser is a GitHub account.
type ghUser struct {
	login string
	id    int64
	name  string
}

// ghToken is what a GitHub token the fake accepts stands for.
type ghToken struct {
	user   *ghUser
	scopes []string // classic OAuth scopes, listed in X-OAuth-Scopes
}

// AddUser adds a GitHub account and returns a new token for it, with
// GitHubDefaultScopes. The user sees the public repositories (pull, not
// listed by GET /user/repos) and no private one until SetPermission says
// otherwise. A login or id already taken fails the test. The user's
// emails, SSH keys and organization roles are the fake's one set, shared
// by all users.
func (g *GitHub) AddUser(login string, id int64, name string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, u := range g.users {
		if strings.EqualFold(u.login, login) || u.id == id {
			g.t.Fatalf("vcsfake: GitHub already has a user with login %q or id %d", login, id)
		}
	}
	u := &ghUser{login: login, id: id, name: name}
	g.users[lower(login)] = u
	return g.issueToken(u, GitHubDefaultScopes)
}

// issueToken returns a new token for u with scopes. g.mu is held.
func (g *GitHub) issueToken(u *ghUser, scopes []string) string {
	tok := "gho_" + randomHex(18)
	g.tokens[tok] = &ghToken{user: u, scopes: append([]string{}, scopes...)}
	return tok
}

// SetPermission sets login's role on the repository: "admin", "maintain",
// "push", "triage" or "pull", or "" for none, which hides the repository
// from the user (404 on every /repos/{o}/{r}/... request, even for a
// public repository, and not listed by GET /user/repos). Unless set,
// GitHubLogin is an admin of every repository (SetAdmin) and other users
// see only public repositories, with pull. Like GitHub, the fake answers
// 404 to key and hook calls of anyone but an admin.
func (g *GitHub) SetPermission(fullName, login, role string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch role {
	case "admin", "maintain", "push", "triage", "pull", "":
	default:
		g.t.Fatalf("vcsfake: GitHub has no role %q; use admin, maintain, push, triage, pull or \"\"", role)
	}
	if g.users[lower(login)] == nil {
		g.t.Fatalf("vcsfake: GitHub has no user %q; call AddUser first", login)
	}
	r := g.mustRepo(fullName)
	if r.perms == nil {
		r.perms = map[string]string{}
	}
	r.perms[lower(login)] = role
}

// SetScopes sets a token's classic OAuth scopes, which every response to
// it then lists in X-OAuth-Scopes: SetScopes(token, scopes...) for token,
// any token the fake accepts (Token, AddUser's, an OAuth exchange's);
// when the first argument is no such token, all arguments are scopes of
// the current token of GitHubLogin (Token, or SetToken's). As on GitHub,
// the /user/keys endpoints answer 404 to a token without the scope they
// need (listing read:public_key, adding write:public_key, deleting
// admin:public_key, each implied by the ones after it), and /user/emails
// answers 404 without user:email or user. Other endpoints ignore the
// scopes.
func (g *GitHub) SetScopes(args ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	tok := g.tokens[g.core.token]
	if len(args) > 0 {
		if t, ok := g.tokens[args[0]]; ok {
			tok, args = t, args[1:]
		}
	}
	if tok == nil {
		g.t.Fatalf("vcsfake: GitHub's token of %s was revoked; name the token to set the scopes of", GitHubLogin)
	}
	tok.scopes = append([]string{}, args...)
}

// SetToken changes the token of GitHubLogin the fake was created with (or
// set last) to token, keeping its scopes; the old one then gets 401. The
// Token field keeps the token the fake was created with. Tokens of
// AddUser and of OAuth exchanges are not affected.
func (g *GitHub) SetToken(token string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.tokens[g.core.token]
	if t == nil {
		t = &ghToken{user: g.owner, scopes: slices.Clone(GitHubDefaultScopes)}
	}
	delete(g.tokens, g.core.token)
	g.tokens[token] = t
	g.core.token = token
}

// RevokeToken makes token invalid, as a user revoking an OAuth App's
// access does: every request with it then gets 401 Bad credentials.
func (g *GitHub) RevokeToken(token string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.tokens, token)
}

// caller returns what the request's token stands for, or nil when it has
// no valid token. g.mu is held.
func (g *GitHub) caller(r *http.Request) *ghToken {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || (!strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "token")) {
		return nil
	}
	return g.tokens[tok]
}

// hasScope reports whether who's token has one of scopes. g.mu is held.
func (who *ghToken) hasScope(scopes ...string) bool {
	return slices.ContainsFunc(who.scopes, func(s string) bool { return slices.Contains(scopes, s) })
}

// role returns u's role on repo, "" when the repository is hidden from u,
// and whether GET /user/repos lists it. g.mu is held.
func (g *GitHub) role(repo *ghRepo, u *ghUser) (role string, listed bool) {
	if p, ok := repo.perms[lower(u.login)]; ok {
		return p, p != ""
	}
	switch {
	case u == g.owner:
		return "admin", true
	case !repo.private:
		return "pull", false
	}
	return "", false
}

// permissionsJSON is a repository's "permissions" object for a role.
func permissionsJSON(role string) map[string]bool {
	rank := map[string]int{"pull": 1, "triage": 2, "push": 3, "maintain": 4, "admin": 5}[role]
	return map[string]bool{
		"admin":    rank >= 5,
		"maintain": rank >= 4,
		"push":     rank >= 3,
		"triage":   rank >= 2,
		"pull":     rank >= 1,
	}
}

// userJSON is GET /user's answer for u.
func userJSON(u *ghUser) map[string]any {
	return map[string]any{
		"login": u.login, "id": u.id, "node_id": "U_" + strconv.FormatInt(u.id, 36), "type": "User",
		"site_admin": false, "name": u.name, "email": nil,
		"html_url":   "https://github.com/" + u.login,
		"avatar_url": "https://avatars.githubusercontent.com/u/" + strconv.FormatInt(u.id, 10) + "?v=4",
	}
}

// userRepos answers GET /user/repos: the repositories the user owns,
// collaborates on or reaches through an organization, each with the
// user's permissions. visibility (all, public, private) filters; sort is
// full_name (the default, ascending) or created, updated or pushed
// (descending by default, by the order repositories were added);
// direction overrides. g.mu is held.
func (g *GitHub) userRepos(r *http.Request, who *ghToken) *response {
	q := r.URL.Query()
	visibility := cmp.Or(q.Get("visibility"), "all")
	if visibility != "all" && visibility != "public" && visibility != "private" {
		return jsonResponse(http.StatusUnprocessableEntity, ghValidation([]map[string]string{{
			"resource": "Repository", "field": "visibility", "code": "invalid",
		}}))
	}
	type item struct {
		repo *ghRepo
		role string
	}
	var items []item
	for _, repo := range g.repos {
		role, listed := g.role(repo, who.user)
		if !listed || (visibility == "public" && repo.private) || (visibility == "private" && !repo.private) {
			continue
		}
		items = append(items, item{repo, role})
	}
	byName := func(a, b item) int { return strings.Compare(lower(a.repo.fullName), lower(b.repo.fullName)) }
	byAge := func(a, b item) int { return cmp.Compare(a.repo.id, b.repo.id) }
	order, desc := byName, false
	if s := q.Get("sort"); s == "created" || s == "updated" || s == "pushed" {
		order, desc = byAge, true
	}
	switch q.Get("direction") {
	case "asc":
		desc = false
	case "desc":
		desc = true
	}
	slices.SortFunc(items, order)
	if desc {
		slices.Reverse(items)
	}
	return g.page(r, len(items), func(i int) any { return g.repoJSON(r, items[i].repo, items[i].role) })
}
