package vcsfake

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// GitHubLogin is the login of the user of the token the GitHub fake is
// created with (Token). AddUser adds others.
const GitHubLogin = "octocat"

// GitHubRateLimit is the X-RateLimit-Limit the GitHub fake reports.
const GitHubRateLimit = 5000

// gitHubPrefix is the path GitHub Enterprise Server serves its API under.
const gitHubPrefix = "/api/v3"

// GitHub is a fake GitHub REST API. It serves the API both under /api/v3/
// (GitHub Enterprise Server's form, which URL uses) and at the root
// (github.com's form: Server.URL + "/"), and the OAuth web flow at
// WebURL + "/login/oauth/...".
type GitHub struct {
	// URL is the API base to configure (GITHUB_API_URL): Server.URL +
	// "/api/v3/", with the trailing slash.
	URL string
	// WebURL is the web host to configure (GITHUB_WEB_URL): Server.URL,
	// without a trailing slash.
	WebURL string
	// Token is the token of GitHubLogin the fake accepts as
	// "Authorization: Bearer" or "token" (see SetToken). AddUser and the
	// OAuth web flow make more.
	Token string
	// Server is the underlying server; it is closed when the test ends.
	Server *httptest.Server

	*core
	bodies     gitHubBodies
	repos      map[string]*ghRepo // by lower-case full name
	restricted map[string]bool    // lower-case orgs with OAuth App access restrictions
	userKeys   []*Key
	// owner is GitHubLogin, the user of Token; users are all users by
	// lower-case login, tokens what each token the fake accepts stands
	// for.
	owner     *ghUser
	users     map[string]*ghUser
	tokens    map[string]*ghToken
	oauthApps ghOAuthApps
	remaining int
	reset     time.Time
	// charged counts the requests that counted against the rate limit.
	charged int
	// roles are the token user's roles by lower-case org, set by
	// SetOrgRole; "" is not a member.
	roles map[string]string
	// deliveries are each hook's delivery attempts by hook id (unique
	// across repositories), in the order they were recorded.
	deliveries map[string][]*HookDeliveryRecord
	// statusPosts counts the statuses POST accepted, in any repository.
	statusPosts int
}

type gitHubBodies struct {
	badCredentials, notFoundRepo, keyInUse, hookExists, secondaryLimit, restricted []byte
}

type ghRepo struct {
	id            int64
	fullName      string
	defaultBranch string
	private       bool
	// perms are the users' roles set by SetPermission (and SetAdmin), by
	// lower-case login; see role for the defaults.
	perms    map[string]string
	keys     []*Key
	hooks    []*ghHook
	statuses []ghStatus                   // oldest first
	files    map[string]map[string][]byte // ref -> path -> content
	pulls    []*ghPull
	// redelivered are the GUIDs POST .../attempts redelivered, oldest
	// first.
	redelivered []string
}

type ghHook struct {
	Hook
	insecureSSL string
	created     time.Time
	updated     time.Time
}

// NewGitHub starts a fake GitHub API for the test. It reads the error
// bodies from testdata/corpus/github/errors, found from the working
// directory up.
func NewGitHub(t testing.TB) *GitHub {
	t.Helper()
	read := func(name string) []byte { return corpus(t, "github/errors/"+name) }
	owner := &ghUser{login: GitHubLogin, id: GitHubUserID, name: GitHubUserName}
	g := &GitHub{
		Token: "gho_" + randomHex(18),
		core:  newCore(t),
		bodies: gitHubBodies{
			badCredentials: read("bad_credentials.401.json"),
			notFoundRepo:   read("not_found.repo.404.json"),
			keyInUse:       read("deploy_key_in_use.422.json"),
			hookExists:     read("hook_already_exists.422.json"),
			secondaryLimit: read("secondary_rate_limit.403.json"),
			restricted:     read("oauth_app_access_restrictions.403.json"),
		},
		repos:      map[string]*ghRepo{},
		restricted: map[string]bool{},
		roles:      map[string]string{},
		deliveries: map[string][]*HookDeliveryRecord{},
		remaining:  GitHubRateLimit,
		owner:      owner,
		users:      map[string]*ghUser{lower(GitHubLogin): owner},
		tokens:     map[string]*ghToken{},
		oauthApps:  ghOAuthApps{secrets: map[string]string{}, authorize: GitHubLogin, granted: map[string][]string{}},
		reset:      time.Now().Add(time.Hour).Truncate(time.Second),
	}
	g.tokens[g.Token] = &ghToken{user: owner, scopes: slices.Clone(GitHubDefaultScopes)}
	g.core.token = g.Token
	g.Server = httptest.NewServer(g)
	t.Cleanup(g.Server.Close)
	g.URL = g.Server.URL + gitHubPrefix + "/"
	g.WebURL = g.Server.URL
	return g
}

// AddRepo adds a repository, or changes its default branch and visibility
// if it exists. GitHubLogin is its admin (see SetAdmin); other users see
// it only if it is public, or as SetPermission says.
func (g *GitHub) AddRepo(fullName, defaultBranch string, private bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r, ok := g.repos[lower(fullName)]; ok {
		r.defaultBranch, r.private = defaultBranch, private
		return
	}
	g.repos[lower(fullName)] = &ghRepo{id: g.id(), fullName: fullName, defaultBranch: defaultBranch, private: private}
}

// SetAdmin sets whether GitHubLogin is an admin of the repository or may
// only pull (SetPermission(fullName, GitHubLogin, "admin" or "pull")).
// Like GitHub, the fake answers 404 to key and hook calls of non-admins.
func (g *GitHub) SetAdmin(fullName string, admin bool) {
	role := "pull"
	if admin {
		role = "admin"
	}
	g.SetPermission(fullName, GitHubLogin, role)
}

// SetOrgRestricted turns on or off OAuth App access restrictions for org:
// while on, every /repos/{org}/... and /orgs/{org}/... call answers the
// corpus 403 with the org's name in the message. The token user's
// membership, GET /user/memberships/orgs/{org}, still answers, as on
// GitHub.
func (g *GitHub) SetOrgRestricted(org string, restricted bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.restricted[lower(org)] = restricted
}

// OAuthRestrictedBody returns the body of GitHub's 403 for an organization
// with OAuth App access restrictions, from the corpus, naming org. Use it
// with FailNextResponse to refuse only some requests that way; a plain
// FailNext 403 is a secondary rate limit.
func (g *GitHub) OAuthRestrictedBody(org string) string {
	return string(g.restrictedBody(org))
}

func (g *GitHub) restrictedBody(org string) []byte {
	return bytes.ReplaceAll(g.bodies.restricted, []byte("`unit-mesh`"), []byte("`"+org+"`"))
}

// SetRateLimitRemaining sets X-RateLimit-Remaining. At 0 every request
// answers 403 "API rate limit exceeded" until it is raised again.
func (g *GitHub) SetRateLimitRemaining(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.remaining = n
}

// DeployKeys returns the repository's deploy keys, oldest first.
func (g *GitHub) DeployKeys(fullName string) []Key {
	g.mu.Lock()
	defer g.mu.Unlock()
	return copyKeys(g.mustRepo(fullName).keys)
}

// UserKeys returns the SSH keys added with POST /user/keys, oldest first.
func (g *GitHub) UserKeys() []Key {
	g.mu.Lock()
	defer g.mu.Unlock()
	return copyKeys(g.userKeys)
}

// Hooks returns the repository's hooks, oldest first.
func (g *GitHub) Hooks(fullName string) []Hook {
	g.mu.Lock()
	defer g.mu.Unlock()
	var hs []Hook
	for _, h := range g.mustRepo(fullName).hooks {
		c := h.Hook
		c.Events = slices.Clone(h.Events)
		hs = append(hs, c)
	}
	return hs
}

// AddKeyDirect adds a deploy key as someone on github.com would, without
// the uniqueness check, and returns it.
func (g *GitHub) AddKeyDirect(fullName, title, publicKey string, readOnly bool) Key {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.mustRepo(fullName)
	k := &Key{ID: strconv.FormatInt(g.id(), 10), Title: title, Key: keyMaterial(publicKey), ReadOnly: readOnly}
	r.keys = append(r.keys, k)
	return *k
}

// DeleteKeyDirect removes a deploy key as someone on github.com would. It
// reports whether the key existed.
func (g *GitHub) DeleteKeyDirect(fullName, id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.mustRepo(fullName)
	n := len(r.keys)
	r.keys = slices.DeleteFunc(r.keys, func(k *Key) bool { return k.ID == id })
	return len(r.keys) < n
}

// AddHookDirect adds a hook as someone on github.com would, without the
// duplicate check, and returns it with its new ID. An empty ContentType
// means "form".
func (g *GitHub) AddHookDirect(fullName string, h Hook) Hook {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.mustRepo(fullName)
	now := time.Now().UTC().Truncate(time.Second)
	h.ID = strconv.FormatInt(g.id(), 10)
	h.Events = slices.Clone(h.Events)
	if h.ContentType == "" {
		h.ContentType = "form"
	}
	r.hooks = append(r.hooks, &ghHook{Hook: h, insecureSSL: "0", created: now, updated: now})
	return h
}

// EditHookDirect changes a hook as someone on github.com would (e.g.
// deactivate it). It reports whether the hook exists.
func (g *GitHub) EditHookDirect(fullName, id string, edit func(*Hook)) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, h := range g.mustRepo(fullName).hooks {
		if h.ID == id {
			edit(&h.Hook)
			h.ID = id
			h.updated = time.Now().UTC().Truncate(time.Second)
			return true
		}
	}
	return false
}

// DeleteHookDirect removes a hook as someone on github.com would. It
// reports whether the hook existed.
func (g *GitHub) DeleteHookDirect(fullName, id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.mustRepo(fullName)
	n := len(r.hooks)
	r.hooks = slices.DeleteFunc(r.hooks, func(h *ghHook) bool { return h.ID == id })
	return len(r.hooks) < n
}

// mustRepo returns a repository for an accessor, failing the test when it
// was never added. g.mu must be held.
func (g *GitHub) mustRepo(fullName string) *ghRepo {
	r, ok := g.repos[lower(fullName)]
	if !ok {
		g.t.Fatalf("vcsfake: GitHub has no repository %q; call AddRepo first", fullName)
	}
	return r
}

func copyKeys(ks []*Key) []Key {
	var out []Key
	for _, k := range ks {
		out = append(out, *k)
	}
	return out
}

// ServeHTTP answers one API request, or one of the OAuth web flow.
func (g *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/login/oauth/") {
		g.serveOAuth(w, r)
		return
	}
	rec := &recorder{ResponseWriter: w, before: func(h http.Header, status int) { g.sent(r, h, status) }}
	rec.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
	rec.Header().Set("X-GitHub-Request-Id", strings.ToUpper(randomHex(8)))
	resp := g.answer(r)
	if resp.then != nil {
		resp = resp.then()
	}
	write(rec, r, resp)
}

// sent logs the request and adds the X-RateLimit headers (and, for a
// valid token, X-OAuth-Scopes) just before the response goes out; a 304
// does not count against the limit, as on GitHub.
// A response that already has X-RateLimit-Remaining (FailNextResponse
// playing a spent primary limit) keeps its own.
func (g *GitHub) sent(r *http.Request, h http.Header, status int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.log(r, status)
	if status != http.StatusNotModified {
		g.charged++
		if g.remaining > 0 {
			g.remaining--
		}
	}
	if who := g.caller(r); who != nil && h.Values("X-OAuth-Scopes") == nil {
		h.Set("X-OAuth-Scopes", strings.Join(who.scopes, ", "))
	}
	if h.Get("X-RateLimit-Remaining") != "" {
		return
	}
	h.Set("X-RateLimit-Limit", strconv.Itoa(GitHubRateLimit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(g.remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(g.reset.Unix(), 10))
	h.Set("X-RateLimit-Used", strconv.Itoa(GitHubRateLimit-g.remaining))
	h.Set("X-RateLimit-Resource", "core")
}

func (g *GitHub) answer(r *http.Request) *response {
	g.mu.Lock()
	defer g.mu.Unlock()
	who, resp := g.authenticate(r)
	if resp != nil {
		return resp
	}
	if f := g.takeFault(r); f != nil {
		return g.faultResponse(f)
	}
	if g.remaining <= 0 {
		return jsonResponse(http.StatusForbidden, map[string]string{
			"message":           "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
			"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
		})
	}
	p := strings.TrimPrefix(r.URL.Path, gitHubPrefix)
	return g.route(r, who, splitPath(p))
}

// authenticate returns what the request's token stands for, or the 401 to
// answer. g.mu is held.
func (g *GitHub) authenticate(r *http.Request) (*ghToken, *response) {
	if r.Header.Get("Authorization") == "" {
		return nil, jsonResponse(http.StatusUnauthorized, map[string]string{
			"message":           "Requires authentication",
			"documentation_url": "https://docs.github.com/rest",
		})
	}
	who := g.caller(r)
	if who == nil {
		return nil, &response{status: http.StatusUnauthorized, body: g.bodies.badCredentials}
	}
	return who, nil
}

func (g *GitHub) faultResponse(f *fault) *response {
	resp := &response{status: f.status, header: f.header.Clone(), body: f.body}
	if resp.header == nil {
		resp.header = http.Header{}
	}
	if f.body != nil {
		return resp
	}
	switch s := f.status; {
	case s == http.StatusUnauthorized:
		resp.body = g.bodies.badCredentials
	case s == http.StatusForbidden, s == http.StatusTooManyRequests:
		resp.body = g.bodies.secondaryLimit
		if resp.header.Get("Retry-After") == "" {
			resp.header.Set("Retry-After", "1")
		}
	case s == http.StatusNotFound:
		resp.body = g.bodies.notFoundRepo
	case s == http.StatusUnprocessableEntity:
		resp.body = ghValidation(nil)
	case s >= 500:
		resp.body = map[string]string{"message": "Server Error", "documentation_url": "https://docs.github.com/rest"}
	default:
		resp.body = map[string]string{"message": http.StatusText(s), "documentation_url": "https://docs.github.com/rest"}
	}
	return resp
}

var ghNotFound = map[string]string{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}

func ghValidation(errs []map[string]string) map[string]any {
	if errs == nil {
		errs = []map[string]string{}
	}
	return map[string]any{"message": "Validation Failed", "errors": errs, "documentation_url": "https://docs.github.com/rest"}
}

func ghBadJSON() *response {
	return jsonResponse(http.StatusBadRequest, map[string]string{
		"message":           "Problems parsing JSON",
		"documentation_url": "https://docs.github.com/rest",
	})
}

// route answers an authenticated request from who. g.mu is held.
func (g *GitHub) route(r *http.Request, who *ghToken, s []string) *response {
	m := r.Method
	switch {
	case len(s) == 1 && s[0] == "user" && m == http.MethodGet:
		return jsonResponse(http.StatusOK, userJSON(who.user))
	case len(s) == 2 && s[0] == "user" && s[1] == "repos" && m == http.MethodGet:
		return g.userRepos(r, who)
	case len(s) == 2 && s[0] == "user" && s[1] == "emails" && m == http.MethodGet:
		return g.userEmails(r, who)
	case len(s) >= 2 && s[0] == "user" && s[1] == "keys":
		if resp := missingKeyScope(r, who); resp != nil {
			return resp
		}
		return g.userKeysRoute(r, s[2:])
	case len(s) == 4 && s[0] == "user" && s[1] == "memberships" && s[2] == "orgs" && m == http.MethodGet:
		// Answers even when the org restricts OAuth Apps, as on GitHub.
		return g.membership(r, who, s[3])
	case len(s) >= 2 && s[0] == "orgs":
		if g.restricted[lower(s[1])] {
			return &response{status: http.StatusForbidden, body: g.restrictedBody(s[1])}
		}
		return jsonResponse(http.StatusNotFound, ghNotFound)
	case len(s) >= 3 && s[0] == "repos":
		if g.restricted[lower(s[1])] {
			return &response{status: http.StatusForbidden, body: g.restrictedBody(s[1])}
		}
		repo, ok := g.repos[lower(s[1]+"/"+s[2])]
		if !ok {
			return &response{status: http.StatusNotFound, body: g.bodies.notFoundRepo}
		}
		role, _ := g.role(repo, who.user)
		if role == "" {
			// Hidden from this user: the same 404 as no repository.
			return &response{status: http.StatusNotFound, body: g.bodies.notFoundRepo}
		}
		return g.repoRoute(r, repo, role, s[3:])
	}
	return jsonResponse(http.StatusNotFound, ghNotFound)
}

// repoRoute answers a request under /repos/{o}/{r} from a user with role
// on it. g.mu is held.
func (g *GitHub) repoRoute(r *http.Request, repo *ghRepo, role string, s []string) *response {
	m := r.Method
	switch {
	case len(s) == 0 && m == http.MethodGet:
		return jsonResponse(http.StatusOK, g.repoJSON(r, repo, role))
	case len(s) >= 1 && (s[0] == "keys" || s[0] == "hooks") && role != "admin":
		// GitHub hides keys and hooks from non-admins behind a 404.
		return jsonResponse(http.StatusNotFound, ghNotFound)
	case len(s) == 1 && s[0] == "keys" && m == http.MethodGet:
		return g.page(r, len(repo.keys), func(i int) any { return g.keyJSON(r, repo, repo.keys[i]) })
	case len(s) == 1 && s[0] == "keys" && m == http.MethodPost:
		return g.addDeployKey(r, repo)
	case len(s) == 2 && s[0] == "keys":
		i := slices.IndexFunc(repo.keys, func(k *Key) bool { return k.ID == s[1] })
		switch {
		case i < 0:
			return jsonResponse(http.StatusNotFound, ghNotFound)
		case m == http.MethodGet:
			return jsonResponse(http.StatusOK, g.keyJSON(r, repo, repo.keys[i]))
		case m == http.MethodDelete:
			repo.keys = slices.Delete(repo.keys, i, i+1)
			return &response{status: http.StatusNoContent}
		}
	case len(s) == 1 && s[0] == "hooks" && m == http.MethodGet:
		return g.page(r, len(repo.hooks), func(i int) any { return g.hookJSON(r, repo, repo.hooks[i]) })
	case len(s) == 1 && s[0] == "hooks" && m == http.MethodPost:
		return g.addHook(r, repo)
	case len(s) == 2 && s[0] == "hooks":
		i := slices.IndexFunc(repo.hooks, func(h *ghHook) bool { return h.ID == s[1] })
		switch {
		case i < 0:
			return jsonResponse(http.StatusNotFound, ghNotFound)
		case m == http.MethodGet:
			return jsonResponse(http.StatusOK, g.hookJSON(r, repo, repo.hooks[i]))
		case m == http.MethodPatch:
			return g.editHook(r, repo, repo.hooks[i])
		case m == http.MethodDelete:
			repo.hooks = slices.Delete(repo.hooks, i, i+1)
			return &response{status: http.StatusNoContent}
		}
	case len(s) >= 3 && s[0] == "hooks" && s[2] == "deliveries":
		i := slices.IndexFunc(repo.hooks, func(h *ghHook) bool { return h.ID == s[1] })
		if i < 0 {
			return jsonResponse(http.StatusNotFound, ghNotFound)
		}
		return g.deliveriesRoute(r, repo, repo.hooks[i], s[3:])
	case len(s) == 2 && s[0] == "statuses" && m == http.MethodPost:
		return g.addStatus(r, repo, s[1])
	case len(s) == 3 && s[0] == "commits" && s[2] == "statuses" && m == http.MethodGet:
		return g.listStatuses(r, repo, s[1])
	case len(s) >= 1 && s[0] == "contents" && m == http.MethodGet:
		return g.contents(r, repo, strings.Join(s[1:], "/"))
	case len(s) == 1 && s[0] == "pulls" && m == http.MethodGet:
		return g.listPulls(r, repo)
	}
	return jsonResponse(http.StatusNotFound, ghNotFound)
}

// page answers page per_page/page of a list of n items, with GitHub's Link
// header.
func (g *GitHub) page(r *http.Request, n int, item func(i int) any) *response {
	q := r.URL.Query()
	per, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || per <= 0 {
		per = 30
	}
	per = min(per, 100)
	pg, err := strconv.Atoi(q.Get("page"))
	if err != nil || pg <= 0 {
		pg = 1
	}
	lo, hi := pageBounds(pg, per, n)
	items := make([]any, 0, hi-lo)
	for i := lo; i < hi; i++ {
		items = append(items, item(i))
	}
	resp := jsonResponse(http.StatusOK, items)
	last := max((n+per-1)/per, 1)
	link := func(p int, rel string) string {
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
		v := r.URL.Query()
		v.Set("page", strconv.Itoa(p))
		u.RawQuery = v.Encode()
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var links []string
	if pg > 1 {
		links = append(links, link(pg-1, "prev"))
	}
	if pg < last {
		links = append(links, link(pg+1, "next"), link(last, "last"))
	}
	if pg > 1 {
		links = append(links, link(1, "first"))
	}
	if len(links) > 0 {
		resp.header = http.Header{"Link": {strings.Join(links, ", ")}}
	}
	return resp
}

func (g *GitHub) apiURL(r *http.Request, path string) string {
	prefix := ""
	if strings.HasPrefix(r.URL.Path, gitHubPrefix+"/") {
		prefix = gitHubPrefix
	}
	return "http://" + r.Host + prefix + "/" + path
}

// repoJSON is the repository as a user with role sees it.
func (g *GitHub) repoJSON(r *http.Request, repo *ghRepo, role string) map[string]any {
	owner, name, _ := strings.Cut(repo.fullName, "/")
	visibility := "public"
	if repo.private {
		visibility = "private"
	}
	return map[string]any{
		"id":             repo.id,
		"name":           name,
		"full_name":      repo.fullName,
		"private":        repo.private,
		"visibility":     visibility,
		"fork":           false,
		"owner":          map[string]any{"login": owner, "type": "Organization"},
		"html_url":       "https://github.com/" + repo.fullName,
		"url":            g.apiURL(r, "repos/"+repo.fullName),
		"hooks_url":      g.apiURL(r, "repos/"+repo.fullName+"/hooks"),
		"keys_url":       g.apiURL(r, "repos/"+repo.fullName+"/keys{/key_id}"),
		"ssh_url":        "git@github.com:" + repo.fullName + ".git",
		"clone_url":      "https://github.com/" + repo.fullName + ".git",
		"default_branch": repo.defaultBranch,
		"permissions":    permissionsJSON(role),
	}
}

func (g *GitHub) keyJSON(r *http.Request, repo *ghRepo, k *Key) map[string]any {
	return map[string]any{
		"id":         mustInt(k.ID),
		"key":        k.Key,
		"url":        g.apiURL(r, "repos/"+repo.fullName+"/keys/"+k.ID),
		"title":      k.Title,
		"verified":   true,
		"created_at": "2024-01-01T00:00:00Z",
		"read_only":  k.ReadOnly,
		"added_by":   GitHubLogin,
		"last_used":  nil,
	}
}

func (g *GitHub) hookJSON(r *http.Request, repo *ghRepo, h *ghHook) map[string]any {
	config := map[string]any{"content_type": h.ContentType, "insecure_ssl": h.insecureSSL, "url": h.URL}
	if h.Secret != "" {
		config["secret"] = "********"
	}
	self := g.apiURL(r, "repos/"+repo.fullName+"/hooks/"+h.ID)
	events := h.Events
	if events == nil {
		events = []string{}
	}
	return map[string]any{
		"type":           "Repository",
		"id":             mustInt(h.ID),
		"name":           "web",
		"active":         h.Active,
		"events":         events,
		"config":         config,
		"created_at":     h.created.Format(time.RFC3339),
		"updated_at":     h.updated.Format(time.RFC3339),
		"url":            self,
		"test_url":       self + "/test",
		"ping_url":       self + "/pings",
		"deliveries_url": self + "/deliveries",
		"last_response":  map[string]any{"code": nil, "status": "unused", "message": nil},
	}
}

func mustInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// keyInUse reports whether any repository's deploy key or any user key has
// the material, as GitHub allows a key only once. g.mu is held.
func (g *GitHub) keyInUse(material string) bool {
	for _, repo := range g.repos {
		for _, k := range repo.keys {
			if k.Key == material {
				return true
			}
		}
	}
	for _, k := range g.userKeys {
		if k.Key == material {
			return true
		}
	}
	return false
}

type ghKeyIn struct {
	Title    string `json:"title"`
	Key      string `json:"key"`
	ReadOnly *bool  `json:"read_only"`
}

// newKey validates a key request and returns the key to store, or the
// error response.
func (g *GitHub) newKey(r *http.Request) (*Key, *response) {
	var in ghKeyIn
	if err := decode(r, &in); err != nil {
		return nil, ghBadJSON()
	}
	material := keyMaterial(in.Key)
	if material == "" {
		return nil, jsonResponse(http.StatusUnprocessableEntity, ghValidation([]map[string]string{{
			"resource": "PublicKey", "code": "custom", "field": "key",
			"message": "key is invalid. You must supply a key in OpenSSH public key format",
		}}))
	}
	if g.keyInUse(material) {
		return nil, &response{status: http.StatusUnprocessableEntity, body: g.bodies.keyInUse}
	}
	title := in.Title
	if title == "" {
		title = keyComment(in.Key)
	}
	return &Key{ID: strconv.FormatInt(g.id(), 10), Title: title, Key: material, ReadOnly: in.ReadOnly == nil || *in.ReadOnly}, nil
}

func (g *GitHub) addDeployKey(r *http.Request, repo *ghRepo) *response {
	k, errResp := g.newKey(r)
	if errResp != nil {
		return errResp
	}
	repo.keys = append(repo.keys, k)
	resp := jsonResponse(http.StatusCreated, g.keyJSON(r, repo, k))
	resp.header = http.Header{"Location": {g.apiURL(r, "repos/"+repo.fullName+"/keys/"+k.ID)}}
	return resp
}

func (g *GitHub) userKeysRoute(r *http.Request, s []string) *response {
	userKeyJSON := func(k *Key) map[string]any {
		return map[string]any{
			"id": mustInt(k.ID), "key": k.Key, "title": k.Title, "verified": true, "read_only": false,
			"url": g.apiURL(r, "user/keys/"+k.ID), "created_at": "2024-01-01T00:00:00Z",
		}
	}
	switch {
	case len(s) == 0 && r.Method == http.MethodGet:
		return g.page(r, len(g.userKeys), func(i int) any { return userKeyJSON(g.userKeys[i]) })
	case len(s) == 0 && r.Method == http.MethodPost:
		k, errResp := g.newKey(r)
		if errResp != nil {
			return errResp
		}
		k.ReadOnly = false
		g.userKeys = append(g.userKeys, k)
		return jsonResponse(http.StatusCreated, userKeyJSON(k))
	case len(s) == 1:
		i := slices.IndexFunc(g.userKeys, func(k *Key) bool { return k.ID == s[0] })
		switch {
		case i < 0:
			return jsonResponse(http.StatusNotFound, ghNotFound)
		case r.Method == http.MethodGet:
			return jsonResponse(http.StatusOK, userKeyJSON(g.userKeys[i]))
		case r.Method == http.MethodDelete:
			g.userKeys = slices.Delete(g.userKeys, i, i+1)
			return &response{status: http.StatusNoContent}
		}
	}
	return jsonResponse(http.StatusNotFound, ghNotFound)
}

// ghHookIn is the body of POST and PATCH .../hooks; pointers tell absent
// fields from empty ones.
type ghHookIn struct {
	Name         *string         `json:"name"`
	Active       *bool           `json:"active"`
	Events       *[]string       `json:"events"`
	AddEvents    []string        `json:"add_events"`
	RemoveEvents []string        `json:"remove_events"`
	Config       *map[string]any `json:"config"`
}

func configString(c map[string]any, key string) string {
	switch v := c[key].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// hookURLTaken reports whether another hook of repo posts to u. g.mu is held.
func hookURLTaken(repo *ghRepo, u string, except *ghHook) bool {
	for _, h := range repo.hooks {
		if h != except && h.URL == u {
			return true
		}
	}
	return false
}

// applyConfig replaces h's config, as PATCH does: a secret left out is
// removed. It returns an error response for an invalid config.
func applyConfig(h *ghHook, c map[string]any) *response {
	u := configString(c, "url")
	if pu, err := url.Parse(u); u == "" || err != nil || (pu.Scheme != "http" && pu.Scheme != "https") {
		return jsonResponse(http.StatusUnprocessableEntity, ghValidation([]map[string]string{{
			"resource": "Hook", "code": "custom", "message": "Config must contain a valid URL",
		}}))
	}
	ct := configString(c, "content_type")
	switch ct {
	case "":
		ct = "form"
	case "json", "form":
	default:
		return jsonResponse(http.StatusUnprocessableEntity, ghValidation([]map[string]string{{
			"resource": "Hook", "code": "custom", "message": "Content type must be json or form",
		}}))
	}
	insecure := configString(c, "insecure_ssl")
	if insecure == "" {
		insecure = "0"
	}
	h.URL, h.ContentType, h.insecureSSL, h.Secret = u, ct, insecure, configString(c, "secret")
	return nil
}

func (g *GitHub) addHook(r *http.Request, repo *ghRepo) *response {
	var in ghHookIn
	if err := decode(r, &in); err != nil {
		return ghBadJSON()
	}
	if in.Name != nil && *in.Name != "web" {
		return jsonResponse(http.StatusUnprocessableEntity, ghValidation([]map[string]string{{
			"resource": "Hook", "code": "custom", "field": "name", "message": "Name must be web",
		}}))
	}
	if in.Config == nil {
		return jsonResponse(http.StatusUnprocessableEntity, ghValidation([]map[string]string{{
			"resource": "Hook", "code": "custom", "message": "Config must contain a valid URL",
		}}))
	}
	now := time.Now().UTC().Truncate(time.Second)
	h := &ghHook{Hook: Hook{Active: true, Events: []string{"push"}}, created: now, updated: now}
	if errResp := applyConfig(h, *in.Config); errResp != nil {
		return errResp
	}
	if in.Events != nil && len(*in.Events) > 0 {
		h.Events = slices.Clone(*in.Events)
	}
	if in.Active != nil {
		h.Active = *in.Active
	}
	if hookURLTaken(repo, h.URL, nil) {
		return &response{status: http.StatusUnprocessableEntity, body: g.bodies.hookExists}
	}
	h.ID = strconv.FormatInt(g.id(), 10)
	repo.hooks = append(repo.hooks, h)
	resp := jsonResponse(http.StatusCreated, g.hookJSON(r, repo, h))
	resp.header = http.Header{"Location": {g.apiURL(r, "repos/"+repo.fullName+"/hooks/"+h.ID)}}
	return resp
}

func (g *GitHub) editHook(r *http.Request, repo *ghRepo, h *ghHook) *response {
	var in ghHookIn
	if err := decode(r, &in); err != nil {
		return ghBadJSON()
	}
	next := *h
	next.Events = slices.Clone(h.Events)
	if in.Config != nil {
		if errResp := applyConfig(&next, *in.Config); errResp != nil {
			return errResp
		}
		if hookURLTaken(repo, next.URL, h) {
			return &response{status: http.StatusUnprocessableEntity, body: g.bodies.hookExists}
		}
	}
	if in.Events != nil {
		next.Events = slices.Clone(*in.Events)
	}
	for _, e := range in.AddEvents {
		if !slices.Contains(next.Events, e) {
			next.Events = append(next.Events, e)
		}
	}
	next.Events = slices.DeleteFunc(next.Events, func(e string) bool { return slices.Contains(in.RemoveEvents, e) })
	if in.Active != nil {
		next.Active = *in.Active
	}
	next.updated = time.Now().UTC().Truncate(time.Second)
	*h = next
	return jsonResponse(http.StatusOK, g.hookJSON(r, repo, h))
}
