package vcsfake

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"hash/crc32"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// GitHubDefaultScopes are the classic OAuth scopes of a GitHub fake token
// until SetScopes changes them: all that forgelink uses.
var GitHubDefaultScopes = []string{"admin:public_key", "admin:repo_hook", "repo", "user:email"}

// maxContentsSize is the largest file GitHub's contents API returns inline.
const maxContentsSize = 1 << 20

const ghContentsDoc = "https://docs.github.com/rest/repos/contents#get-repository-content"

type ghPull struct {
	number   int
	branch   string
	headRepo string // full name: the repository itself, or a fork
	open     bool
}

// missingKeyScope answers 404 to a /user/keys request whose token lacks
// the scope for it, as GitHub does, or nil. g.mu is held.
func missingKeyScope(r *http.Request, who *ghToken) *response {
	need := []string{"admin:public_key"}
	switch r.Method {
	case http.MethodGet:
		need = append(need, "write:public_key", "read:public_key")
	case http.MethodPost:
		need = append(need, "write:public_key")
	}
	if who.hasScope(need...) {
		return nil
	}
	resp := jsonResponse(http.StatusNotFound, ghNotFound)
	resp.header = http.Header{"X-Accepted-Oauth-Scopes": {strings.Join(need, ", ")}}
	return resp
}

// SetFile sets the content of path in the repository at ref, a commit sha
// or a branch name. Each ref has its own files: a file set at a branch is
// not at any sha, and the reverse. A ref exists once a file is set at it;
// the default branch always exists. A file over 1 MiB gets GitHub's 403
// too_large answer.
func (g *GitHub) SetFile(fullName, ref, path string, content []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	repo := g.mustRepo(fullName)
	if repo.files == nil {
		repo.files = map[string]map[string][]byte{}
	}
	if repo.files[ref] == nil {
		repo.files[ref] = map[string][]byte{}
	}
	repo.files[ref][strings.Trim(path, "/")] = slices.Clone(content)
}

// OpenPR opens pull request number from headBranch into the default
// branch, or reopens it with that head. headBranch is a branch of the
// repository itself, or "owner/repo:branch" for a branch of a fork.
func (g *GitHub) OpenPR(fullName string, number int, headBranch string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	repo := g.mustRepo(fullName)
	p := &ghPull{number: number, branch: headBranch, headRepo: repo.fullName, open: true}
	if fork, branch, ok := strings.Cut(headBranch, ":"); ok {
		p.headRepo, p.branch = fork, branch
	}
	if i := slices.IndexFunc(repo.pulls, func(q *ghPull) bool { return q.number == number }); i >= 0 {
		repo.pulls[i] = p
		return
	}
	repo.pulls = append(repo.pulls, p)
}

// ClosePR closes pull request number, failing the test when it was never
// opened.
func (g *GitHub) ClosePR(fullName string, number int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	repo := g.mustRepo(fullName)
	i := slices.IndexFunc(repo.pulls, func(q *ghPull) bool { return q.number == number })
	if i < 0 {
		g.t.Fatalf("vcsfake: GitHub repository %q has no pull request %d", fullName, number)
	}
	repo.pulls[i].open = false
}

// GitBlobSHA returns the git blob sha of content, which GitHub returns as
// a file's sha: the SHA-1 of "blob <len>\x00" and the content.
func GitBlobSHA(content []byte) string {
	h := sha1.New()
	h.Write([]byte("blob " + strconv.Itoa(len(content)) + "\x00"))
	h.Write(content)
	return hex.EncodeToString(h.Sum(nil))
}

// fakeSHA returns a stable fake 40-hex object name for parts.
func fakeSHA(parts ...string) string {
	sum := sha1.Sum([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])
}

// wrapBase64 encodes b as GitHub's contents API does: base64 in lines of
// 60 characters, each ending with a newline.
func wrapBase64(b []byte) string {
	enc := base64.StdEncoding.EncodeToString(b)
	var sb strings.Builder
	for len(enc) > 0 {
		n := min(60, len(enc))
		sb.WriteString(enc[:n])
		sb.WriteByte('\n')
		enc = enc[n:]
	}
	return sb.String()
}

// dirEntry is one entry of a directory listing in a fake.
type dirEntry struct {
	name, path string
	dir        bool
	size       int
}

// listDir returns the entries directly under dir ("" for the root) among
// files, sorted by name. ok is false when dir is not a directory.
func listDir(files map[string][]byte, dir string) (entries []dirEntry, ok bool) {
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	seen := map[string]bool{}
	for p, content := range files {
		rest, found := strings.CutPrefix(p, prefix)
		if !found || rest == "" {
			continue
		}
		name, _, isDir := strings.Cut(rest, "/")
		if seen[name] {
			continue
		}
		seen[name] = true
		e := dirEntry{name: name, path: prefix + name, dir: isDir}
		if !isDir {
			e.size = len(content)
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b dirEntry) int { return strings.Compare(a.name, b.name) })
	return entries, dir == "" || len(entries) > 0
}

// contents answers GET /repos/{o}/{r}/contents/{p}?ref=. g.mu is held.
func (g *GitHub) contents(r *http.Request, repo *ghRepo, p string) *response {
	ref := r.URL.Query().Get("ref")
	if ref == "" {
		ref = repo.defaultBranch
	}
	files, known := repo.files[ref]
	if !known && ref != repo.defaultBranch {
		return jsonResponse(http.StatusNotFound, map[string]string{
			"message": "No commit found for the ref " + ref, "documentation_url": ghContentsDoc, "status": "404",
		})
	}
	links := func(p, sha, kind string, dir bool) map[string]any {
		self := g.apiURL(r, "repos/"+repo.fullName+"/contents/"+p) + "?ref=" + url.QueryEscape(ref)
		git := g.apiURL(r, "repos/"+repo.fullName+"/git/blobs/"+sha)
		html := "https://github.com/" + repo.fullName + "/blob/" + ref + "/" + p
		var download any = "https://raw.githubusercontent.com/" + repo.fullName + "/" + ref + "/" + p
		if dir {
			git = g.apiURL(r, "repos/"+repo.fullName+"/git/trees/"+sha)
			html = "https://github.com/" + repo.fullName + "/tree/" + ref + "/" + p
			download = nil
		}
		return map[string]any{
			"type": kind, "name": path.Base(p), "path": p, "sha": sha,
			"url": self, "git_url": git, "html_url": html, "download_url": download,
			"_links": map[string]string{"self": self, "git": git, "html": html},
		}
	}
	if content, ok := files[p]; ok && p != "" {
		if len(content) > maxContentsSize {
			return jsonResponse(http.StatusForbidden, map[string]any{
				"message":           "This API returns blobs up to 1 MB in size. The requested blob is too large to fetch via the API, but you can use the Git Data API to request blobs up to 100 MB in size.",
				"errors":            []map[string]string{{"resource": "Blob", "field": "data", "code": "too_large"}},
				"documentation_url": ghContentsDoc,
			})
		}
		body := links(p, GitBlobSHA(content), "file", false)
		body["size"] = len(content)
		body["encoding"] = "base64"
		body["content"] = wrapBase64(content)
		return jsonResponse(http.StatusOK, body)
	}
	entries, ok := listDir(files, p)
	if !ok {
		return jsonResponse(http.StatusNotFound, map[string]string{
			"message": "Not Found", "documentation_url": ghContentsDoc, "status": "404",
		})
	}
	out := make([]any, 0, len(entries))
	for _, e := range entries {
		if e.dir {
			item := links(e.path, fakeSHA("tree", repo.fullName, ref, e.path), "dir", true)
			item["size"] = 0
			out = append(out, item)
			continue
		}
		item := links(e.path, GitBlobSHA(files[e.path]), "file", false)
		item["size"] = e.size
		out = append(out, item)
	}
	return jsonResponse(http.StatusOK, out)
}

// listPulls answers GET /repos/{o}/{r}/pulls with GitHub's state, head
// ("owner:branch"; a head without the owner matches nothing) and base
// filters, newest first. g.mu is held.
func (g *GitHub) listPulls(r *http.Request, repo *ghRepo) *response {
	q := r.URL.Query()
	state := q.Get("state")
	switch state {
	case "":
		state = "open"
	case "open", "closed", "all":
	default:
		return jsonResponse(http.StatusUnprocessableEntity, ghValidation([]map[string]string{{
			"resource": "Issue", "field": "state", "code": "invalid",
		}}))
	}
	var pulls []*ghPull
	for _, p := range repo.pulls {
		headOwner, _, _ := strings.Cut(p.headRepo, "/")
		switch {
		case state == "open" && !p.open, state == "closed" && p.open:
			continue
		case q.Has("base") && q.Get("base") != repo.defaultBranch:
			continue
		case q.Has("head"):
			owner, branch, ok := strings.Cut(q.Get("head"), ":")
			if !ok || !strings.EqualFold(owner, headOwner) || branch != p.branch {
				continue
			}
		}
		pulls = append(pulls, p)
	}
	slices.SortFunc(pulls, func(a, b *ghPull) int { return b.number - a.number })
	return g.page(r, len(pulls), func(i int) any { return g.pullJSON(r, repo, pulls[i]) })
}

func (g *GitHub) pullJSON(r *http.Request, repo *ghRepo, p *ghPull) map[string]any {
	owner, _, _ := strings.Cut(repo.fullName, "/")
	headOwner, headName, _ := strings.Cut(p.headRepo, "/")
	headID := repo.id
	if p.headRepo != repo.fullName {
		headID = 1_000_000 + int64(crc32.ChecksumIEEE([]byte(lower(p.headRepo))))
	}
	repoJSON := func(id int64, owner, name string) map[string]any {
		return map[string]any{
			"id": id, "name": name, "full_name": owner + "/" + name,
			"owner": map[string]any{"login": owner}, "url": g.apiURL(r, "repos/"+owner+"/"+name),
		}
	}
	_, name, _ := strings.Cut(repo.fullName, "/")
	state := "closed"
	if p.open {
		state = "open"
	}
	self := g.apiURL(r, "repos/"+repo.fullName+"/pulls/"+strconv.Itoa(p.number))
	return map[string]any{
		"url": self, "id": 100_000 + p.number, "number": p.number, "state": state,
		"title": "Pull request " + strconv.Itoa(p.number), "user": map[string]any{"login": GitHubLogin},
		"html_url": "https://github.com/" + repo.fullName + "/pull/" + strconv.Itoa(p.number),
		"head": map[string]any{
			"label": headOwner + ":" + p.branch, "ref": p.branch, "sha": fakeSHA("head", p.headRepo, p.branch),
			"repo": repoJSON(headID, headOwner, headName),
		},
		"base": map[string]any{
			"label": owner + ":" + repo.defaultBranch, "ref": repo.defaultBranch,
			"sha":  fakeSHA("head", repo.fullName, repo.defaultBranch),
			"repo": repoJSON(repo.id, owner, name),
		},
	}
}

// userEmails answers GET /user/emails; without user:email (or user) it is
// 404, as on GitHub. g.mu is held.
func (g *GitHub) userEmails(r *http.Request, who *ghToken) *response {
	if !who.hasScope("user", "user:email") {
		resp := jsonResponse(http.StatusNotFound, ghNotFound)
		resp.header = http.Header{"X-Accepted-Oauth-Scopes": {"user, user:email"}}
		return resp
	}
	return g.page(r, len(g.emails), func(i int) any {
		e := g.emails[i]
		var visibility any
		if e.Primary {
			visibility = "private"
		}
		return map[string]any{"email": e.Address, "primary": e.Primary, "verified": e.Verified, "visibility": visibility}
	})
}
