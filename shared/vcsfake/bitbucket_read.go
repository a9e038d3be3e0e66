package vcsfake

import (
	"crypto/sha1"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

type bbPull struct {
	id         int
	branch     string
	sourceRepo string // full name: the repository itself, or a fork
	state      string // OPEN, MERGED, DECLINED
}

// SetFile sets the content of path in the repository at ref, a commit hash
// or a branch name. Each ref has its own files. A ref exists once a file is
// set at it; the main branch always exists. As on Bitbucket, /src/{ref}/
// cannot take a branch name with a slash: resolve it to its head commit
// with /refs/branches/{name}, whose hash /src accepts.
func (b *Bitbucket) SetFile(fullName, ref, path string, content []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	repo := b.mustRepo(fullName)
	if repo.files == nil {
		repo.files = map[string]map[string][]byte{}
	}
	if repo.files[ref] == nil {
		repo.files[ref] = map[string][]byte{}
	}
	repo.files[ref][strings.Trim(path, "/")] = slices.Clone(content)
}

// OpenPR opens pull request id from headBranch into the main branch, or
// reopens it with that source. headBranch is a branch of the repository
// itself, or "workspace/repo:branch" for a branch of a fork.
func (b *Bitbucket) OpenPR(fullName string, id int, headBranch string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	repo := b.mustRepo(fullName)
	p := &bbPull{id: id, branch: headBranch, sourceRepo: repo.fullName, state: "OPEN"}
	if fork, branch, ok := strings.Cut(headBranch, ":"); ok {
		p.sourceRepo, p.branch = fork, branch
	}
	if i := slices.IndexFunc(repo.pulls, func(q *bbPull) bool { return q.id == id }); i >= 0 {
		repo.pulls[i] = p
		return
	}
	repo.pulls = append(repo.pulls, p)
}

// ClosePR declines pull request id, failing the test when it was never
// opened.
func (b *Bitbucket) ClosePR(fullName string, id int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	repo := b.mustRepo(fullName)
	i := slices.IndexFunc(repo.pulls, func(q *bbPull) bool { return q.id == id })
	if i < 0 {
		b.t.Fatalf("vcsfake: Bitbucket repository %q has no pull request %d", fullName, id)
	}
	repo.pulls[i].state = "DECLINED"
}

// isCommitHash reports whether ref looks like a full commit hash.
func isCommitHash(ref string) bool {
	if len(ref) != 40 {
		return false
	}
	for _, c := range ref {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// branches returns the repository's branch names: the main branch and
// every ref with files that is not a commit hash. b.mu is held.
func (repo *bbRepo) branches() []string {
	names := []string{repo.mainBranch}
	for ref := range repo.files {
		if !isCommitHash(ref) && ref != repo.mainBranch {
			names = append(names, ref)
		}
	}
	return names
}

// branchHash is the fake head commit of a branch.
func (repo *bbRepo) branchHash(name string) string {
	return fakeSHA("branch", lower(repo.fullName), name)
}

// resolve returns the ref whose files /src/{rev}/ shows, or false.
func (repo *bbRepo) resolve(rev string) (string, bool) {
	if _, ok := repo.files[rev]; ok || rev == repo.mainBranch {
		return rev, true
	}
	for _, name := range repo.branches() {
		if repo.branchHash(name) == rev {
			return name, true
		}
	}
	return "", false
}

// src answers GET /repositories/{w}/{r}/src/{rev}/{p}: a file's raw
// content, or a directory's paged listing. b.mu is held.
func (b *Bitbucket) src(r *http.Request, repo *bbRepo, rev, p string) *response {
	ref, ok := repo.resolve(rev)
	if !ok {
		return jsonResponse(http.StatusNotFound, map[string]any{
			"type":  "error",
			"error": map[string]any{"message": "Commit not found", "data": map[string]any{"shas": []string{rev}}},
			"data":  map[string]any{"shas": []string{rev}},
		})
	}
	files := repo.files[ref]
	commit := map[string]any{"type": "commit", "hash": rev}
	if !isCommitHash(rev) {
		commit["hash"] = repo.branchHash(ref)
	}
	if content, ok := files[p]; ok && p != "" {
		ctype := "text/plain"
		if path.Ext(p) == ".json" {
			ctype = "application/json"
		}
		return &response{status: http.StatusOK, header: http.Header{"Content-Type": {ctype}}, body: slices.Clone(content)}
	}
	entries, ok := listDir(files, p)
	if !ok {
		return bbError(http.StatusNotFound, "No such file or directory: "+p, nil)
	}
	return b.page(r, len(entries), func(i int) any {
		e := entries[i]
		if e.dir {
			return map[string]any{"type": "commit_directory", "path": e.path, "commit": commit}
		}
		return map[string]any{
			"type": "commit_file", "path": e.path, "size": e.size, "commit": commit,
			"escaped_path": e.path, "attributes": []string{},
		}
	})
}

// branch answers GET /repositories/{w}/{r}/refs/branches/{name}. b.mu is
// held.
func (b *Bitbucket) branch(r *http.Request, repo *bbRepo, name string) *response {
	if !slices.Contains(repo.branches(), name) {
		return bbError(http.StatusNotFound, fmt.Sprintf("Branch %q doesn't exist", name), nil)
	}
	return jsonResponse(http.StatusOK, map[string]any{
		"type": "branch", "name": name,
		"target": map[string]any{
			"type": "commit", "hash": repo.branchHash(name),
			"repository": map[string]any{"type": "repository", "full_name": repo.fullName, "uuid": repo.uuid},
		},
		"links": map[string]any{"self": map[string]string{"href": b.apiURL(r, "repositories/"+repo.fullName+"/refs/branches/"+name)}},
	})
}

// bbqlClause is one `field = "value"` of a Bitbucket query.
var bbqlClause = regexp.MustCompile(`^\s*([a-z_.]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:AND\s+|$)`)

// parseQuery parses a Bitbucket query made of `field = "value"` clauses
// joined by AND, the only form the fake understands; ok is false for any
// other.
func parseQuery(q string) (map[string]string, bool) {
	out := map[string]string{}
	for rest := strings.TrimSpace(q); rest != ""; {
		m := bbqlClause.FindStringSubmatch(rest)
		if m == nil {
			return nil, false
		}
		var v strings.Builder
		for i := 0; i < len(m[2]); i++ {
			if m[2][i] == '\\' && i+1 < len(m[2]) {
				i++
			}
			v.WriteByte(m[2][i])
		}
		out[m[1]] = v.String()
		rest = rest[len(m[0]):]
	}
	return out, true
}

// nameUUID is a stable fake uuid for a repository known only by name.
func nameUUID(name string) string {
	s := sha1.Sum([]byte(lower(name)))
	return fmt.Sprintf("{%x-%x-%x-%x-%x}", s[0:4], s[4:6], s[6:8], s[8:10], s[10:16])
}

// listPulls answers GET /repositories/{w}/{r}/pullrequests with the state
// parameter (OPEN by default; repeatable) and a q filter on
// source.branch.name, source.repository.full_name, destination.branch.name
// or state, newest first. b.mu is held.
func (b *Bitbucket) listPulls(r *http.Request, repo *bbRepo) *response {
	states := r.URL.Query()["state"]
	if len(states) == 0 {
		states = []string{"OPEN"}
	}
	for _, s := range states {
		if !slices.Contains([]string{"OPEN", "MERGED", "DECLINED", "SUPERSEDED"}, s) {
			return bbError(http.StatusBadRequest, "Invalid state: "+s, nil)
		}
	}
	filter, ok := parseQuery(r.URL.Query().Get("q"))
	if !ok {
		return bbError(http.StatusBadRequest, "Invalid query: "+r.URL.Query().Get("q"), nil)
	}
	fieldsOf := func(p *bbPull) map[string]string {
		return map[string]string{
			"source.branch.name":          p.branch,
			"source.repository.full_name": p.sourceRepo,
			"destination.branch.name":     repo.mainBranch,
			"state":                       p.state,
		}
	}
	for k := range filter {
		if _, known := fieldsOf(&bbPull{})[k]; !known {
			return bbError(http.StatusBadRequest, "Invalid field name: "+k, nil)
		}
	}
	var pulls []*bbPull
	for _, p := range repo.pulls {
		fields := fieldsOf(p)
		match := slices.Contains(states, p.state)
		for k, v := range filter {
			match = match && fields[k] == v
		}
		if match {
			pulls = append(pulls, p)
		}
	}
	slices.SortFunc(pulls, func(x, y *bbPull) int { return y.id - x.id })
	return b.page(r, len(pulls), func(i int) any { return b.pullJSON(r, repo, pulls[i]) })
}

func (b *Bitbucket) pullJSON(r *http.Request, repo *bbRepo, p *bbPull) map[string]any {
	srcUUID := repo.uuid
	if p.sourceRepo != repo.fullName {
		srcUUID = nameUUID(p.sourceRepo)
	}
	repoJSON := func(fullName, uuid string) map[string]any {
		_, name, _ := strings.Cut(fullName, "/")
		return map[string]any{"type": "repository", "full_name": fullName, "name": name, "uuid": uuid}
	}
	return map[string]any{
		"type": "pullrequest", "id": p.id, "title": "Pull request " + strconv.Itoa(p.id), "state": p.state,
		"author": map[string]any{"type": "user", "nickname": BitbucketUsername},
		"source": map[string]any{
			"branch":     map[string]any{"name": p.branch},
			"commit":     map[string]any{"type": "commit", "hash": fakeSHA("branch", lower(p.sourceRepo), p.branch)[:12]},
			"repository": repoJSON(p.sourceRepo, srcUUID),
		},
		"destination": map[string]any{
			"branch":     map[string]any{"name": repo.mainBranch},
			"commit":     map[string]any{"type": "commit", "hash": repo.branchHash(repo.mainBranch)[:12]},
			"repository": repoJSON(repo.fullName, repo.uuid),
		},
		"links": map[string]any{"self": map[string]string{"href": b.apiURL(r, "repositories/"+repo.fullName+"/pullrequests/"+strconv.Itoa(p.id))}},
	}
}

// userEmails answers GET /user/emails: 403 to a token with scopes but not
// email, as Bitbucket answers. The addresses are the fake's one set,
// whoever asks. b.mu is held.
func (b *Bitbucket) userEmails(r *http.Request, who *bbToken) *response {
	if len(who.scopes) > 0 && !slices.Contains(who.scopes, "email") {
		return bbError(http.StatusForbidden, "Your credentials lack one or more required privilege scopes.", nil)
	}
	return b.page(r, len(b.emails), func(i int) any {
		e := b.emails[i]
		return map[string]any{
			"type": "email", "email": e.Address, "is_primary": e.Primary, "is_confirmed": e.Verified,
			"links": map[string]any{"self": map[string]string{"href": b.apiURL(r, "user/emails/"+e.Address)}},
		}
	})
}

// commit answers GET .../commit/{node}: the one full commit hash, among
// the refs that have files (see SetFile), that node abbreviates.
func (b *Bitbucket) commit(repo *bbRepo, node string) *response {
	var found []string
	for ref := range repo.files {
		if len(ref) == 40 && len(node) >= 7 && strings.HasPrefix(ref, node) {
			found = append(found, ref)
		}
	}
	if len(found) != 1 {
		return bbError(http.StatusNotFound, "Commit not found", nil)
	}
	return jsonResponse(http.StatusOK, map[string]any{"type": "commit", "hash": found[0]})
}
