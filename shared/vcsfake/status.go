package vcsfake

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// GitHubMaxStatuses is how many statuses GitHub keeps for one (commit,
// context): POST /repos/{o}/{r}/statuses/{sha} answers 422 to one more.
const GitHubMaxStatuses = 1000

// GitHubMaxStatusDescription is the longest status description, in
// characters, GitHub accepts.
const GitHubMaxStatusDescription = 140

// BitbucketMaxStatusKey is the longest build status key, in characters,
// Bitbucket accepts.
const BitbucketMaxStatusKey = 40

const ghStatusDoc = "https://docs.github.com/rest/commits/statuses#create-a-commit-status"

// ghStatus is a commit status as the GitHub fake stores it.
type ghStatus struct {
	Status
	id      int64
	created time.Time
}

// Statuses returns the commit statuses of the repository at sha ("" for
// every commit), in the order they were posted: GitHub keeps every status,
// so a context posted twice appears twice.
func (g *GitHub) Statuses(fullName, sha string) []Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Status
	for _, s := range g.mustRepo(fullName).statuses {
		if sha == "" || s.SHA == sha {
			out = append(out, s.Status)
		}
	}
	return out
}

// StatusPosts returns how many statuses POST /repos/{o}/{r}/statuses/{sha}
// accepted so far, in every repository. Refused posts, injected failures
// and AddStatusDirect do not count; CountRequests counts attempts.
func (g *GitHub) StatusPosts() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.statusPosts
}

// AddStatusDirect adds a commit status as another integration would,
// without validation or the per-context limit, e.g. to bring a context
// near GitHubMaxStatuses. An empty Context is "default", as on GitHub.
func (g *GitHub) AddStatusDirect(fullName string, s Status) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s.Context == "" {
		s.Context = "default"
	}
	r := g.mustRepo(fullName)
	r.statuses = append(r.statuses, ghStatus{Status: s, id: g.id(), created: time.Now().UTC().Truncate(time.Second)})
}

// ghStatusError is a 422 Validation Failed for a status field, in
// GitHub's shape.
func ghStatusError(field, message string) *response {
	e := map[string]string{"resource": "Status", "code": "custom", "message": message}
	if field != "" {
		e["field"] = field
	}
	return jsonResponse(http.StatusUnprocessableEntity, map[string]any{
		"message": "Validation Failed", "errors": []map[string]string{e}, "documentation_url": ghStatusDoc,
	})
}

// addStatus answers POST /repos/{o}/{r}/statuses/{sha} as GitHub does:
// the sha must name a commit (here: 40 lower-case hex digits), the state
// be one of GitHub's four, the description at most 140 characters, and a
// (sha, context) may have at most GitHubMaxStatuses statuses. g.mu is held.
func (g *GitHub) addStatus(r *http.Request, repo *ghRepo, sha string) *response {
	var in struct {
		State       string `json:"state"`
		TargetURL   string `json:"target_url"`
		Description string `json:"description"`
		Context     string `json:"context"`
	}
	if err := decode(r, &in); err != nil {
		return ghBadJSON()
	}
	if !isCommitHash(sha) {
		return jsonResponse(http.StatusUnprocessableEntity, map[string]string{
			"message": "No commit found for SHA: " + sha, "documentation_url": ghStatusDoc,
		})
	}
	switch in.State {
	case "pending", "success", "failure", "error":
	default:
		return ghStatusError("state", "state is not included in the list")
	}
	if n := utf8.RuneCountInString(in.Description); n > GitHubMaxStatusDescription {
		return ghStatusError("description", "description is too long (maximum is 140 characters)")
	}
	if in.Context == "" {
		in.Context = "default"
	}
	n := 0
	for _, s := range repo.statuses {
		if s.SHA == sha && s.Context == in.Context {
			n++
		}
	}
	if n >= GitHubMaxStatuses {
		return ghStatusError("", "This SHA and context has reached the maximum number of statuses.")
	}
	st := ghStatus{
		Status: Status{SHA: sha, State: in.State, Context: in.Context, TargetURL: in.TargetURL, Description: in.Description},
		id:     g.id(), created: time.Now().UTC().Truncate(time.Second),
	}
	repo.statuses = append(repo.statuses, st)
	g.statusPosts++
	resp := jsonResponse(http.StatusCreated, g.statusJSON(r, repo, st))
	resp.header = http.Header{"Location": {g.apiURL(r, "repos/"+repo.fullName+"/statuses/"+sha)}}
	return resp
}

// listStatuses answers GET /repos/{o}/{r}/commits/{ref}/statuses: the
// statuses of ref, newest first, paginated. The fake does not know which
// commit a branch or tag points to: only a sha lists anything. g.mu is
// held.
func (g *GitHub) listStatuses(r *http.Request, repo *ghRepo, ref string) *response {
	var list []ghStatus
	for i := len(repo.statuses) - 1; i >= 0; i-- {
		if repo.statuses[i].SHA == ref {
			list = append(list, repo.statuses[i])
		}
	}
	return g.page(r, len(list), func(i int) any { return g.statusJSON(r, repo, list[i]) })
}

func (g *GitHub) statusJSON(r *http.Request, repo *ghRepo, s ghStatus) map[string]any {
	created := s.created.Format(time.RFC3339)
	return map[string]any{
		"url":         g.apiURL(r, "repos/"+repo.fullName+"/statuses/"+s.SHA),
		"avatar_url":  nil,
		"id":          s.id,
		"node_id":     "SC_" + strconv.FormatInt(s.id, 10),
		"state":       s.State,
		"description": nullable(s.Description),
		"target_url":  nullable(s.TargetURL),
		"context":     s.Context,
		"created_at":  created,
		"updated_at":  created,
		"creator":     map[string]any{"login": GitHubLogin, "id": 1, "type": "User"},
	}
}

// nullable is s, or JSON null for "", as GitHub writes absent strings.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// BuildStatus is one build status post accepted by the Bitbucket fake.
type BuildStatus struct {
	SHA         string
	Key         string
	Name        string
	State       string
	URL         string
	Description string
}

// bbStatus is a build status as the Bitbucket fake keeps it: the latest
// post for its (commit, key).
type bbStatus struct {
	BuildStatus
	uuid             string
	created, updated time.Time
}

// Statuses returns the current build statuses of the repository at sha
// ("" for every commit), in the order their keys were first posted: a post
// with an existing commit and key updates that status, as on Bitbucket.
// Context is the key. BuildStatuses has every post.
func (b *Bitbucket) Statuses(fullName, sha string) []Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Status
	for _, s := range b.mustRepo(fullName).statuses {
		if sha == "" || s.SHA == sha {
			out = append(out, Status{SHA: s.SHA, State: s.State, Context: s.Key, TargetURL: s.URL, Description: s.Description})
		}
	}
	return out
}

// BuildStatuses returns every build status post the repository accepted
// for sha ("" for every commit), oldest first: the history, including the
// posts that updated an existing key.
func (b *Bitbucket) BuildStatuses(fullName, sha string) []BuildStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []BuildStatus
	for _, s := range b.mustRepo(fullName).statusLog {
		if sha == "" || s.SHA == sha {
			out = append(out, s)
		}
	}
	return out
}

// StatusPosts returns how many build status posts the fake accepted so
// far, in every repository. Refused posts and injected failures do not
// count; CountRequests counts attempts.
func (b *Bitbucket) StatusPosts() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.statusPosts
}

// addStatus answers POST .../commit/{sha}/statuses/build: key (at most
// BitbucketMaxStatusKey characters), state and url are required; a new key
// is 201 Created, an existing one is updated, 200. b.mu is held.
func (b *Bitbucket) addStatus(r *http.Request, repo *bbRepo, sha string) *response {
	var in struct {
		Key         string `json:"key"`
		State       string `json:"state"`
		URL         string `json:"url"`
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	if err := decode(r, &in); err != nil {
		return bbError(http.StatusBadRequest, "Bad request", nil)
	}
	fields := map[string][]string{}
	switch n := utf8.RuneCountInString(in.Key); {
	case n == 0:
		fields["key"] = []string{"This field is required."}
	case n > BitbucketMaxStatusKey:
		fields["key"] = []string{"Ensure this value has at most " + strconv.Itoa(BitbucketMaxStatusKey) + " characters (it has " + strconv.Itoa(n) + ")."}
	}
	switch in.State {
	case "INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED":
	case "":
		fields["state"] = []string{"This field is required."}
	default:
		fields["state"] = []string{"Invalid state: must be one of INPROGRESS, SUCCESSFUL, FAILED, STOPPED."}
	}
	if in.URL == "" {
		fields["url"] = []string{"This field is required."}
	}
	if len(fields) > 0 {
		return bbError(http.StatusBadRequest, "Bad request", fields)
	}
	post := BuildStatus{SHA: sha, Key: in.Key, Name: in.Name, State: in.State, URL: in.URL, Description: in.Description}
	now := time.Now().UTC()
	status := http.StatusOK
	i := slices.IndexFunc(repo.statuses, func(s *bbStatus) bool { return s.SHA == sha && s.Key == in.Key })
	if i < 0 {
		status = http.StatusCreated
		repo.statuses = append(repo.statuses, &bbStatus{uuid: newUUID(), created: now})
		i = len(repo.statuses) - 1
	}
	st := repo.statuses[i]
	st.BuildStatus, st.updated = post, now
	repo.statusLog = append(repo.statusLog, post)
	b.statusPosts++
	return jsonResponse(status, b.statusJSON(r, repo, st))
}

// listStatuses answers GET .../commit/{sha}/statuses: the commit's current
// build statuses, paginated, in the order their keys were first posted.
// b.mu is held.
func (b *Bitbucket) listStatuses(r *http.Request, repo *bbRepo, sha string) *response {
	var list []*bbStatus
	for _, s := range repo.statuses {
		if s.SHA == sha {
			list = append(list, s)
		}
	}
	return b.page(r, len(list), func(i int) any { return b.statusJSON(r, repo, list[i]) })
}

// getStatus answers GET .../commit/{sha}/statuses/build/{key}. b.mu is
// held.
func (b *Bitbucket) getStatus(r *http.Request, repo *bbRepo, sha, key string) *response {
	i := slices.IndexFunc(repo.statuses, func(s *bbStatus) bool { return s.SHA == sha && s.Key == key })
	if i < 0 {
		return bbError(http.StatusNotFound, "Resource not found", nil)
	}
	return jsonResponse(http.StatusOK, b.statusJSON(r, repo, repo.statuses[i]))
}

func (b *Bitbucket) statusJSON(r *http.Request, repo *bbRepo, s *bbStatus) map[string]any {
	commit := "repositories/" + repo.fullName + "/commit/" + s.SHA
	return map[string]any{
		"type":        "build",
		"uuid":        s.uuid,
		"key":         s.Key,
		"name":        s.Name,
		"state":       s.State,
		"url":         s.URL,
		"description": s.Description,
		"refname":     nil,
		"created_on":  s.created.Format(time.RFC3339Nano),
		"updated_on":  s.updated.Format(time.RFC3339Nano),
		"commit":      map[string]any{"type": "commit", "hash": s.SHA},
		"repository":  map[string]any{"type": "repository", "full_name": repo.fullName, "uuid": repo.uuid},
		"links": map[string]any{
			"self":   map[string]string{"href": b.apiURL(r, commit+"/statuses/build/"+url.PathEscape(s.Key))},
			"commit": map[string]string{"href": b.apiURL(r, commit)},
		},
	}
}
