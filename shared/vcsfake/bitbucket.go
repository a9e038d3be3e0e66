package vcsfake

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BitbucketUsername is the username (and nickname) of the user of the
// token the Bitbucket fake is created with (Token). AddUser adds others.
const BitbucketUsername = "octocat"

// bitbucketPrefix is the path the Bitbucket Cloud API lives under.
const bitbucketPrefix = "/2.0"

// BitbucketHookEvents are the webhook events the Bitbucket fake accepts
// (Bitbucket answers 400 to others).
var BitbucketHookEvents = []string{
	"repo:push", "repo:fork", "repo:updated", "repo:commit_comment_created",
	"repo:commit_status_created", "repo:commit_status_updated", "repo:imported",
	"repo:deleted", "repo:transfer",
	"issue:created", "issue:updated", "issue:comment_created",
	"pullrequest:created", "pullrequest:updated", "pullrequest:approved",
	"pullrequest:unapproved", "pullrequest:fulfilled", "pullrequest:rejected",
	"pullrequest:comment_created", "pullrequest:comment_updated",
	"pullrequest:comment_deleted", "pullrequest:comment_resolved",
	"pullrequest:comment_reopened", "pullrequest:changes_request_created",
	"pullrequest:changes_request_removed",
}

// Bitbucket is a fake Bitbucket Cloud REST API 2.0, served under /2.0/,
// with the OAuth 2 web flow under WebURL + "/site/oauth2/".
type Bitbucket struct {
	// URL is the API base to configure (BITBUCKET_API_URL): Server.URL +
	// "/2.0/", with the trailing slash.
	URL string
	// WebURL is the web host (bitbucket.org's place): Server.URL, without
	// a trailing slash.
	WebURL string
	// Token is the access token of BitbucketUsername the fake accepts as
	// "Authorization: Bearer"; it does not expire. SetToken("user:app_password")
	// makes it accept that pair as basic auth instead. AddUser and the
	// OAuth flow make more.
	Token string
	// Server is the underlying server; it is closed when the test ends.
	Server *httptest.Server

	*core
	repos       map[string]*bbRepo // by lower-case full name
	accountKeys map[string]bool    // key material registered to accounts
	// workspaces are the token user's workspace permissions by lower-case
	// slug, set by SetWorkspacePermission; "" is not a member.
	workspaces map[string]string
	// statusPosts counts the build statuses POST accepted, in any
	// repository.
	statusPosts int
	// owner is BitbucketUsername, the user of Token; users are all users
	// by lower-case nickname, tokens what each token the fake accepts
	// stands for.
	owner  *bbUser
	users  map[string]*bbUser
	tokens map[string]*bbToken
	oauth2 bbOAuth
}

type bbRepo struct {
	uuid       string
	fullName   string
	mainBranch string
	private    bool
	// perms are the users' permissions set by SetPermission, by
	// lower-case nickname; see access for the defaults.
	perms     map[string]string
	keys      []*bbKey
	hooks     []*bbHook
	statuses  []*bbStatus                  // current: one per (commit, key), by first post
	statusLog []BuildStatus                // every accepted post, oldest first
	files     map[string]map[string][]byte // ref -> path -> content
	pulls     []*bbPull
}

type bbKey struct {
	Key
	comment string
	created time.Time
}

type bbHook struct {
	Hook
	description string
	created     time.Time
}

// NewBitbucket starts a fake Bitbucket Cloud API for the test.
func NewBitbucket(t testing.TB) *Bitbucket {
	t.Helper()
	owner := &bbUser{nickname: BitbucketUsername, uuid: BitbucketUserUUID, displayName: BitbucketDisplayName}
	b := &Bitbucket{
		Token:       "bbat_" + randomHex(18),
		core:        newCore(t),
		repos:       map[string]*bbRepo{},
		accountKeys: map[string]bool{},
		workspaces:  map[string]string{},
		owner:       owner,
		users:       map[string]*bbUser{lower(BitbucketUsername): owner},
		tokens:      map[string]*bbToken{},
		oauth2:      newBBOAuth(),
	}
	b.tokens[b.Token] = &bbToken{user: owner, scopes: slices.Clone(BitbucketDefaultScopes)}
	b.core.token = b.Token
	b.Server = httptest.NewServer(b)
	t.Cleanup(b.Server.Close)
	b.URL = b.Server.URL + bitbucketPrefix + "/"
	b.WebURL = b.Server.URL
	return b
}

// AddRepo adds a repository ("workspace/slug"), or changes its main branch
// and visibility if it exists. BitbucketUsername is its admin; other users
// see it only if it is public, or as SetPermission says.
func (b *Bitbucket) AddRepo(fullName, mainBranch string, private bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r, ok := b.repos[lower(fullName)]; ok {
		r.mainBranch, r.private = mainBranch, private
		return
	}
	b.repos[lower(fullName)] = &bbRepo{
		uuid: newUUID(), fullName: fullName, mainBranch: mainBranch, private: private,
	}
}

// RegisterAccountKey registers publicKey as some account's SSH key: adding
// it as a deploy key then fails as on Bitbucket ("Someone has already
// registered that SSH key.").
func (b *Bitbucket) RegisterAccountKey(publicKey string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.accountKeys[keyMaterial(publicKey)] = true
}

// DeployKeys returns the repository's deploy keys, oldest first.
func (b *Bitbucket) DeployKeys(fullName string) []Key {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Key
	for _, k := range b.mustRepo(fullName).keys {
		out = append(out, k.Key)
	}
	return out
}

// Hooks returns the repository's hooks, oldest first.
func (b *Bitbucket) Hooks(fullName string) []Hook {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Hook
	for _, h := range b.mustRepo(fullName).hooks {
		c := h.Hook
		c.Events = slices.Clone(h.Events)
		out = append(out, c)
	}
	return out
}

// AddKeyDirect adds a deploy key as someone on bitbucket.org would, and
// returns it.
func (b *Bitbucket) AddKeyDirect(fullName, label, publicKey string) Key {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.mustRepo(fullName)
	k := &bbKey{Key: Key{ID: strconv.FormatInt(b.id(), 10), Title: label, Key: keyMaterial(publicKey), ReadOnly: true},
		comment: keyComment(publicKey), created: time.Now().UTC()}
	r.keys = append(r.keys, k)
	return k.Key
}

// DeleteKeyDirect removes a deploy key as someone on bitbucket.org would.
// It reports whether the key existed.
func (b *Bitbucket) DeleteKeyDirect(fullName, id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.mustRepo(fullName)
	n := len(r.keys)
	r.keys = slices.DeleteFunc(r.keys, func(k *bbKey) bool { return k.ID == id })
	return len(r.keys) < n
}

// AddHookDirect adds a hook as someone on bitbucket.org would (Bitbucket
// allows several hooks with one URL), and returns it with its new uuid.
func (b *Bitbucket) AddHookDirect(fullName string, h Hook) Hook {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.mustRepo(fullName)
	h.ID = newUUID()
	h.Events = slices.Clone(h.Events)
	h.ContentType = ""
	r.hooks = append(r.hooks, &bbHook{Hook: h, created: time.Now().UTC()})
	return h
}

// EditHookDirect changes a hook as someone on bitbucket.org would. It
// reports whether the hook exists.
func (b *Bitbucket) EditHookDirect(fullName, id string, edit func(*Hook)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, h := range b.mustRepo(fullName).hooks {
		if h.ID == id {
			edit(&h.Hook)
			h.ID = id
			return true
		}
	}
	return false
}

// DeleteHookDirect removes a hook as someone on bitbucket.org would. It
// reports whether the hook existed.
func (b *Bitbucket) DeleteHookDirect(fullName, id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.mustRepo(fullName)
	n := len(r.hooks)
	r.hooks = slices.DeleteFunc(r.hooks, func(h *bbHook) bool { return h.ID == id })
	return len(r.hooks) < n
}

// mustRepo returns a repository for an accessor, failing the test when it
// was never added. b.mu must be held.
func (b *Bitbucket) mustRepo(fullName string) *bbRepo {
	r, ok := b.repos[lower(fullName)]
	if !ok {
		b.t.Fatalf("vcsfake: Bitbucket has no repository %q; call AddRepo first", fullName)
	}
	return r
}

// ServeHTTP answers one API request, or one of the OAuth flow.
func (b *Bitbucket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	api := !strings.HasPrefix(r.URL.Path, "/site/oauth2/")
	rec := &recorder{ResponseWriter: w, before: func(h http.Header, status int) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.log(r, status)
		// A response given to FailNextResponse keeps its own.
		if who, _ := b.caller(r); api && who != nil && len(who.scopes) > 0 && h.Values("X-OAuth-Scopes") == nil {
			h.Set("X-OAuth-Scopes", strings.Join(who.scopes, ", "))
		}
	}}
	if !api {
		write(rec, r, b.oauthAnswer(r))
		return
	}
	write(rec, r, b.answer(r))
}

// bbError is Bitbucket's error body.
func bbError(status int, message string, fields map[string][]string) *response {
	e := map[string]any{"message": message}
	if fields != nil {
		e["fields"] = fields
	}
	return jsonResponse(status, map[string]any{"type": "error", "error": e})
}

func (b *Bitbucket) answer(r *http.Request) *response {
	b.mu.Lock()
	defer b.mu.Unlock()
	who, expired := b.caller(r)
	switch {
	case expired:
		return bbError(http.StatusUnauthorized, "Access token expired.", nil)
	case who == nil:
		return bbError(http.StatusUnauthorized, "Token is invalid, expired, or not supported for this endpoint.", nil)
	}
	if f := b.takeFault(r); f != nil {
		return b.faultResponse(f)
	}
	if !strings.HasPrefix(r.URL.Path, bitbucketPrefix+"/") {
		return bbError(http.StatusNotFound, "Resource not found", nil)
	}
	return b.route(r, who, splitPath(strings.TrimPrefix(r.URL.Path, bitbucketPrefix)))
}

func (b *Bitbucket) faultResponse(f *fault) *response {
	var resp *response
	switch s := f.status; {
	case f.body != nil:
		resp = &response{status: s, body: f.body}
	case s == http.StatusUnauthorized:
		resp = bbError(s, "Token is invalid, expired, or not supported for this endpoint.", nil)
	case s == http.StatusForbidden:
		resp = bbError(s, "Your credentials lack one or more required privilege scopes.", nil)
	case s == http.StatusNotFound:
		resp = bbError(s, "Resource not found", nil)
	case s == http.StatusTooManyRequests:
		resp = bbError(s, "Rate limit for this resource has been exceeded", nil)
	case s >= 500:
		resp = bbError(s, "Something went wrong", nil)
	default:
		resp = bbError(s, http.StatusText(s), nil)
	}
	resp.header = f.header.Clone()
	if f.status == http.StatusTooManyRequests && f.body == nil && f.header.Get("Retry-After") == "" {
		if resp.header == nil {
			resp.header = http.Header{}
		}
		resp.header.Set("Retry-After", "1")
	}
	return resp
}

var bbQueryFullName = regexp.MustCompile(`repository\.full_name\s*=\s*"([^"]*)"`)

// route answers an authenticated request from who. b.mu is held.
func (b *Bitbucket) route(r *http.Request, who *bbToken, s []string) *response {
	m := r.Method
	switch {
	case len(s) == 1 && s[0] == "user" && m == http.MethodGet:
		return jsonResponse(http.StatusOK, bbUserJSON(who.user))
	case len(s) == 3 && s[0] == "user" && s[1] == "permissions" && s[2] == "repositories" && m == http.MethodGet:
		return b.permissions(r, who)
	case len(s) == 3 && s[0] == "user" && s[1] == "permissions" && s[2] == "workspaces" && m == http.MethodGet:
		return b.workspacePermissions(r, who)
	case len(s) == 2 && s[0] == "user" && s[1] == "emails" && m == http.MethodGet:
		return b.userEmails(r, who)
	case len(s) == 1 && s[0] == "repositories" && m == http.MethodGet:
		return b.listRepos(r, who)
	case len(s) >= 3 && s[0] == "repositories":
		repo, ok := b.repos[lower(s[1]+"/"+s[2])]
		perm, visible := "", false
		if ok {
			perm, visible = b.access(repo, who.user)
		}
		if !visible {
			// Hidden from this user: the same 404 as no repository.
			return bbError(http.StatusNotFound, "Repository "+s[1]+"/"+s[2]+" not found", nil)
		}
		return b.repoRoute(r, repo, perm, s[3:])
	}
	return bbError(http.StatusNotFound, "Resource not found", nil)
}

// permissions answers GET /2.0/user/permissions/repositories: one
// repository_permission for each repository who has a permission on (not
// the public ones it merely sees), filtered by
// q=repository.full_name="...". b.mu is held.
func (b *Bitbucket) permissions(r *http.Request, who *bbToken) *response {
	var want string
	if m := bbQueryFullName.FindStringSubmatch(r.URL.Query().Get("q")); m != nil {
		want = lower(m[1])
	}
	type item struct {
		repo *bbRepo
		perm string
	}
	var items []item
	for name, repo := range b.repos {
		if perm, _ := b.access(repo, who.user); perm != "" && (want == "" || name == want) {
			items = append(items, item{repo, perm})
		}
	}
	slices.SortFunc(items, func(x, y item) int { return strings.Compare(x.repo.fullName, y.repo.fullName) })
	return b.page(r, len(items), func(i int) any {
		return map[string]any{
			"type":       "repository_permission",
			"permission": items[i].perm,
			"repository": map[string]any{"type": "repository", "full_name": items[i].repo.fullName, "uuid": items[i].repo.uuid},
			"user":       bbUserRef(who.user),
		}
	})
}

// repoRoute answers a request under /repositories/{w}/{r} from a user
// with permission perm ("" for a public repository the user merely sees).
// b.mu is held.
func (b *Bitbucket) repoRoute(r *http.Request, repo *bbRepo, perm string, s []string) *response {
	m := r.Method
	switch {
	case len(s) == 0 && m == http.MethodGet:
		return jsonResponse(http.StatusOK, b.repoJSON(r, repo))
	case len(s) >= 1 && (s[0] == "deploy-keys" || s[0] == "hooks") && perm != "admin":
		return bbError(http.StatusForbidden, "You must be an administrator of this repository to perform this action.", nil)
	case len(s) == 1 && s[0] == "deploy-keys" && m == http.MethodGet:
		return b.page(r, len(repo.keys), func(i int) any { return b.keyJSON(r, repo, repo.keys[i]) })
	case len(s) == 1 && s[0] == "deploy-keys" && m == http.MethodPost:
		return b.addKey(r, repo)
	case len(s) == 2 && s[0] == "deploy-keys":
		i := slices.IndexFunc(repo.keys, func(k *bbKey) bool { return k.ID == s[1] })
		switch {
		case i < 0:
			return bbError(http.StatusNotFound, "Resource not found", nil)
		case m == http.MethodGet:
			return jsonResponse(http.StatusOK, b.keyJSON(r, repo, repo.keys[i]))
		case m == http.MethodDelete:
			repo.keys = slices.Delete(repo.keys, i, i+1)
			return &response{status: http.StatusNoContent}
		}
	case len(s) == 1 && s[0] == "hooks" && m == http.MethodGet:
		return b.page(r, len(repo.hooks), func(i int) any { return b.hookJSON(r, repo, repo.hooks[i]) })
	case len(s) == 1 && s[0] == "hooks" && m == http.MethodPost:
		return b.saveHook(r, repo, nil)
	case len(s) == 2 && s[0] == "hooks":
		i := slices.IndexFunc(repo.hooks, func(h *bbHook) bool { return h.ID == s[1] })
		switch {
		case i < 0:
			return bbError(http.StatusNotFound, "Resource not found", nil)
		case m == http.MethodGet:
			return jsonResponse(http.StatusOK, b.hookJSON(r, repo, repo.hooks[i]))
		case m == http.MethodPut:
			return b.saveHook(r, repo, repo.hooks[i])
		case m == http.MethodDelete:
			repo.hooks = slices.Delete(repo.hooks, i, i+1)
			return &response{status: http.StatusNoContent}
		}
	case len(s) == 4 && s[0] == "commit" && s[2] == "statuses" && s[3] == "build" && m == http.MethodPost:
		return b.addStatus(r, repo, s[1])
	case len(s) == 3 && s[0] == "commit" && s[2] == "statuses" && m == http.MethodGet:
		return b.listStatuses(r, repo, s[1])
	case len(s) == 5 && s[0] == "commit" && s[2] == "statuses" && s[3] == "build" && m == http.MethodGet:
		return b.getStatus(r, repo, s[1], s[4])
	case len(s) == 2 && s[0] == "commit" && m == http.MethodGet:
		return b.commit(repo, s[1])
	case len(s) >= 2 && s[0] == "src" && m == http.MethodGet:
		return b.src(r, repo, s[1], strings.Join(s[2:], "/"))
	case len(s) >= 3 && s[0] == "refs" && s[1] == "branches" && m == http.MethodGet:
		return b.branch(r, repo, strings.Join(s[2:], "/"))
	case len(s) == 1 && s[0] == "pullrequests" && m == http.MethodGet:
		return b.listPulls(r, repo)
	}
	return bbError(http.StatusNotFound, "Resource not found", nil)
}

// page answers page `page` of `pagelen` items with Bitbucket's paged JSON
// and its next/previous links.
func (b *Bitbucket) page(r *http.Request, n int, item func(i int) any) *response {
	q := r.URL.Query()
	per, err := strconv.Atoi(q.Get("pagelen"))
	if err != nil || per <= 0 {
		per = 10
	}
	per = min(per, 100)
	pg, err := strconv.Atoi(q.Get("page"))
	if err != nil || pg <= 0 {
		pg = 1
	}
	lo, hi := pageBounds(pg, per, n)
	values := make([]any, 0, hi-lo)
	for i := lo; i < hi; i++ {
		values = append(values, item(i))
	}
	link := func(p int) string {
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
		v := r.URL.Query()
		v.Set("page", strconv.Itoa(p))
		v.Set("pagelen", strconv.Itoa(per))
		u.RawQuery = v.Encode()
		return u.String()
	}
	body := map[string]any{"pagelen": per, "size": n, "page": pg, "values": values}
	if hi < n {
		body["next"] = link(pg + 1)
	}
	if pg > 1 {
		body["previous"] = link(pg - 1)
	}
	return jsonResponse(http.StatusOK, body)
}

func (b *Bitbucket) apiURL(r *http.Request, path string) string {
	return "http://" + r.Host + bitbucketPrefix + "/" + path
}

func (b *Bitbucket) repoJSON(r *http.Request, repo *bbRepo) map[string]any {
	ws, slug, _ := strings.Cut(repo.fullName, "/")
	return map[string]any{
		"type":       "repository",
		"uuid":       repo.uuid,
		"full_name":  repo.fullName,
		"name":       slug,
		"slug":       slug,
		"is_private": repo.private,
		"scm":        "git",
		"mainbranch": map[string]any{"type": "branch", "name": repo.mainBranch},
		"workspace":  map[string]any{"type": "workspace", "slug": ws},
		"links": map[string]any{
			"self":  map[string]string{"href": b.apiURL(r, "repositories/"+repo.fullName)},
			"html":  map[string]string{"href": "https://bitbucket.org/" + repo.fullName},
			"hooks": map[string]string{"href": b.apiURL(r, "repositories/"+repo.fullName+"/hooks")},
			"clone": []map[string]string{
				{"name": "https", "href": "https://bitbucket.org/" + repo.fullName + ".git"},
				{"name": "ssh", "href": "git@bitbucket.org:" + repo.fullName + ".git"},
			},
		},
	}
}

func (b *Bitbucket) keyJSON(r *http.Request, repo *bbRepo, k *bbKey) map[string]any {
	return map[string]any{
		"type":       "deploy_key",
		"id":         mustInt(k.ID),
		"key":        k.Key.Key,
		"label":      k.Title,
		"comment":    k.comment,
		"created_on": k.created.Format(time.RFC3339Nano),
		"last_used":  nil,
		"repository": map[string]any{"type": "repository", "full_name": repo.fullName, "uuid": repo.uuid},
		"links":      map[string]any{"self": map[string]string{"href": b.apiURL(r, "repositories/"+repo.fullName+"/deploy-keys/"+k.ID)}},
	}
}

func (b *Bitbucket) hookJSON(r *http.Request, repo *bbRepo, h *bbHook) map[string]any {
	events := h.Events
	if events == nil {
		events = []string{}
	}
	return map[string]any{
		"type":                   "webhook_subscription",
		"uuid":                   h.ID,
		"url":                    h.URL,
		"description":            h.description,
		"subject_type":           "repository",
		"subject":                map[string]any{"type": "repository", "full_name": repo.fullName, "uuid": repo.uuid},
		"active":                 h.Active,
		"created_at":             h.created.Format(time.RFC3339Nano),
		"events":                 events,
		"secret_set":             h.Secret != "",
		"skip_cert_verification": false,
		"links":                  map[string]any{"self": map[string]string{"href": b.apiURL(r, "repositories/"+repo.fullName+"/hooks/"+url.PathEscape(h.ID))}},
	}
}

func (b *Bitbucket) addKey(r *http.Request, repo *bbRepo) *response {
	var in struct {
		Key   string `json:"key"`
		Label string `json:"label"`
	}
	if err := decode(r, &in); err != nil {
		return bbError(http.StatusBadRequest, "Bad request", nil)
	}
	material := keyMaterial(in.Key)
	switch {
	case material == "":
		return bbError(http.StatusBadRequest, "Bad request", map[string][]string{"key": {"Invalid SSH key"}})
	case b.accountKeys[material]:
		return bbError(http.StatusBadRequest, "Someone has already registered that SSH key.", nil)
	case slices.ContainsFunc(repo.keys, func(k *bbKey) bool { return k.Key.Key == material }):
		return bbError(http.StatusBadRequest, "Bad request", map[string][]string{"key": {"This key has already been added to this repository."}})
	}
	k := &bbKey{Key: Key{ID: strconv.FormatInt(b.id(), 10), Title: in.Label, Key: material, ReadOnly: true},
		comment: keyComment(in.Key), created: time.Now().UTC()}
	repo.keys = append(repo.keys, k)
	return jsonResponse(http.StatusOK, b.keyJSON(r, repo, k))
}

// saveHook creates a hook (h == nil, POST) or updates h (PUT: fields left
// out keep their value; "secret": null removes the secret).
func (b *Bitbucket) saveHook(r *http.Request, repo *bbRepo, h *bbHook) *response {
	var in map[string]json.RawMessage
	if err := decode(r, &in); err != nil {
		return bbError(http.StatusBadRequest, "Bad request", nil)
	}
	next := bbHook{Hook: Hook{Active: true}, created: time.Now().UTC()}
	if h != nil {
		next = *h
		next.Events = slices.Clone(h.Events)
	}
	fields := map[string][]string{}
	str := func(name string, dst *string) {
		if raw, ok := in[name]; ok {
			if string(raw) == "null" {
				*dst = ""
			} else if json.Unmarshal(raw, dst) != nil {
				fields[name] = append(fields[name], "Not a string.")
			}
		}
	}
	str("url", &next.URL)
	str("description", &next.description)
	str("secret", &next.Secret)
	if raw, ok := in["active"]; ok && json.Unmarshal(raw, &next.Active) != nil {
		fields["active"] = append(fields["active"], "Not a boolean.")
	}
	if raw, ok := in["events"]; ok && json.Unmarshal(raw, &next.Events) != nil {
		fields["events"] = append(fields["events"], "Not a list.")
	}
	if u, err := url.Parse(next.URL); next.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		fields["url"] = append(fields["url"], "Enter a valid URL.")
	}
	if len(next.Events) == 0 {
		fields["events"] = append(fields["events"], "This field is required.")
	}
	for _, e := range next.Events {
		if !slices.Contains(BitbucketHookEvents, e) {
			fields["events"] = append(fields["events"], "Invalid event: "+e)
		}
	}
	if len(fields) > 0 {
		return bbError(http.StatusBadRequest, "Bad request", fields)
	}
	if h != nil {
		*h = next
		return jsonResponse(http.StatusOK, b.hookJSON(r, repo, h))
	}
	next.ID = newUUID()
	repo.hooks = append(repo.hooks, &next)
	return jsonResponse(http.StatusCreated, b.hookJSON(r, repo, &next))
}
