package statusapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"forgelink/shared/apiauth"
	"forgelink/shared/badge"
	"forgelink/shared/forgelink"
	"forgelink/shared/httpjson"
)

// ProjectGetter looks up a followed project; forgelink.Store is one.
type ProjectGetter interface {
	// GetProject returns the project, or a NotFound error.
	GetProject(ctx context.Context, slug forgelink.Slug) (*forgelink.Project, error)
}

// PipelineLister lists a project's pipelines newest first;
// forgelink.PipelineStore is one.
type PipelineLister interface {
	// ListPipelines returns one page of the project's pipelines, newest
	// first, and the next page's token ("" after the last page).
	ListPipelines(ctx context.Context, project forgelink.Slug, page forgelink.Page) ([]*forgelink.Pipeline, string, error)
}

var (
	_ ProjectGetter  = forgelink.Store(nil)
	_ PipelineLister = forgelink.PipelineStore(nil)
)

// Badges serves status badges on CircleCI's public badge routes:
//
//	GET /gh/{org}/{repo}.svg                  the default branch
//	GET /gh/{org}/{repo}/tree/{branch}.svg    a branch
//
// and the same under bb/ (and github/, bitbucket/). The branch may hold
// slashes, escaped (feature%2Fx) or not (feature/x). HEAD is answered as
// GET without the body; other methods get 405.
//
// A badge shows the state of the newest pipeline on the branch; pipelines
// for tags do not count. Only the 5 newest pages of 100 pipelines are
// searched, so a branch last built more than 500 pipelines ago shows
// "no builds". ?style=shield answers shields.io endpoint JSON instead of
// the SVG.
//
// A private project's badge needs an API token (the circle-token query
// parameter or the Circle-Token header) that Auth accepts. Without one,
// the answer is the 404 of an unknown project, byte for byte, so a badge
// URL reveals neither the state nor the existence of a private project.
// Whenever a token is sent it is checked before the project is looked up,
// for every project, so that the time taken does not tell either.
//
// Badges carry an ETag and Cache-Control: no-cache (private, no-cache for
// a private project), so that caches such as GitHub's image proxy ask
// again every time and usually get a 304.
type Badges struct {
	// Projects finds the project a badge names.
	Projects ProjectGetter
	// Pipelines lists its pipelines, newest first.
	Pipelines PipelineLister
	// Auth checks tokens for private projects. With none, every private
	// project's badge is 404.
	Auth apiauth.Authenticator
	// Authz, when set, also requires the token's user to have pull on a
	// private project's repository (signed-in users); else 404.
	Authz apiauth.Authorizer
	// Log receives failures; nil is slog.Default().
	Log *slog.Logger
}

// How far a badge looks back for its branch's newest pipeline.
const (
	badgePageSize = 100
	badgeMaxPages = 5
)

// badgeAllow is the Allow header of the badge routes.
const badgeAllow = "GET, HEAD"

// Handler returns the badge routes; any other path is answered 404.
func (b *Badges) Handler() http.Handler {
	return http.HandlerFunc(b.serve)
}

func (b *Badges) log() *slog.Logger {
	if b.Log != nil {
		return b.Log
	}
	return slog.Default()
}

// badgeRoute is a badge path split into its parts, not yet validated.
type badgeRoute struct {
	vcs, org, repo string
	// branch is "" for the project's default branch.
	branch string
}

// parseBadgePath splits an escaped URL path into a badge route. Segments
// are unescaped one by one after splitting, so a %2F in the branch is a
// slash in the branch name but a %2F in the org or repo makes that name
// invalid (404) rather than shifting the segments.
func parseBadgePath(escaped string) (badgeRoute, bool) {
	rest, ok := strings.CutPrefix(escaped, "/")
	if !ok {
		return badgeRoute{}, false
	}
	segs := strings.Split(rest, "/")
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil {
			return badgeRoute{}, false
		}
		segs[i] = u
	}
	if len(segs) < 3 {
		return badgeRoute{}, false
	}
	if _, err := forgelink.ParseVCS(segs[0]); err != nil {
		return badgeRoute{}, false
	}
	r := badgeRoute{vcs: segs[0], org: segs[1]}
	switch {
	case len(segs) == 3:
		r.repo, ok = strings.CutSuffix(segs[2], ".svg")
	case len(segs) >= 5 && segs[3] == "tree":
		r.repo = segs[2]
		r.branch, ok = strings.CutSuffix(strings.Join(segs[4:], "/"), ".svg")
		ok = ok && r.branch != ""
	default:
		ok = false
	}
	return r, ok
}

func (b *Badges) serve(w http.ResponseWriter, r *http.Request) {
	route, ok := parseBadgePath(r.URL.EscapedPath())
	if !ok {
		httpjson.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpjson.MethodNotAllowed(badgeAllow)(w, r)
		return
	}
	ctx := r.Context()

	// The token is checked before the lookup, and a failing check fails
	// every request that sent one, so neither the answer nor its timing
	// depends on whether a private project exists.
	authorized := false
	var user *apiauth.User
	tok, err := apiauth.Token(r)
	if err != nil {
		httpjson.Error(w, r, b.log(), err)
		return
	}
	if tok != "" && b.Auth != nil {
		u, err := b.Auth.Authenticate(ctx, tok)
		switch kind := forgelink.KindOf(err); {
		case err == nil:
			authorized, user = true, u
		case kind == forgelink.Unauthorized || kind == forgelink.Forbidden:
		default:
			b.fail(w, r, fmt.Errorf("statusapi: badge: authenticate: %w", err))
			return
		}
	}

	slug, err := forgelink.NewSlug(route.vcs, route.org, route.repo)
	if err != nil {
		b.projectNotFound(w, r)
		return
	}
	project, err := b.Projects.GetProject(ctx, slug)
	switch {
	case forgelink.KindOf(err) == forgelink.NotFound:
		b.projectNotFound(w, r)
		return
	case err != nil:
		b.fail(w, r, fmt.Errorf("statusapi: badge: get project %s: %w", slug, err))
		return
	case project.Private && !authorized:
		b.projectNotFound(w, r)
		return
	case project.Private && b.Authz != nil:
		// A user may see the badge of a private repository the VCS shows
		// the user, no other.
		if err := b.Authz.Authorize(ctx, user, slug, forgelink.PermissionPull); err != nil {
			if k := forgelink.KindOf(err); k == forgelink.NotFound || k == forgelink.Forbidden || k == forgelink.Unauthorized {
				b.projectNotFound(w, r)
				return
			}
			b.fail(w, r, fmt.Errorf("statusapi: badge: authorize on %s: %w", slug, err))
			return
		}
	}

	branch := route.branch
	if branch == "" {
		branch = project.DefaultBranch
	}
	state, err := b.latestState(ctx, slug, branch)
	switch {
	case forgelink.KindOf(err) == forgelink.NotFound: // unfollowed meanwhile
		b.projectNotFound(w, r)
		return
	case err != nil:
		b.fail(w, r, fmt.Errorf("statusapi: badge: list pipelines of %s: %w", slug, err))
		return
	}

	message, color := badge.For(badge.StatusOf(state))
	body, contentType := badge.SVG(badge.DefaultLabel, message, color), badge.SVGContentType
	if r.URL.Query().Get("style") == "shield" {
		body, contentType = badge.Shield(badge.DefaultLabel, message, color), badge.ShieldContentType
	}
	etag := badge.ETag(body)
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	if project.Private {
		h.Set("Cache-Control", "private, no-cache")
	}
	h.Set("ETag", etag)
	if badge.NotModified(strings.Join(r.Header.Values("If-None-Match"), ","), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// latestState returns the state of the newest pipeline built for branch,
// or "" when none is among the newest badgeMaxPages pages (or branch is
// "", as for a project whose default branch is unknown).
func (b *Badges) latestState(ctx context.Context, slug forgelink.Slug, branch string) (forgelink.StatusState, error) {
	if branch == "" {
		return "", nil
	}
	page := forgelink.Page{Limit: badgePageSize}
	for range badgeMaxPages {
		pipelines, next, err := b.Pipelines.ListPipelines(ctx, slug, page)
		if err != nil {
			return "", err
		}
		for _, p := range pipelines {
			if p.Tag == "" && p.Branch == branch {
				return pipelineState(p), nil
			}
		}
		if next == "" {
			break
		}
		page.Token = next
	}
	return "", nil
}

// pipelineState is p's overall state. A pipeline from before statuses
// were recorded has none: its workflows count as pending (error for an
// errored pipeline), as Pipeline.WorkflowState says.
func pipelineState(p *forgelink.Pipeline) forgelink.StatusState {
	if p.Status != "" {
		return p.Status
	}
	workflows := make(map[string]forgelink.StatusState)
	for _, w := range p.StatusWorkflows() {
		workflows[w] = p.WorkflowState(w)
	}
	return forgelink.Overall(workflows)
}

// errProjectNotFound answers unknown projects, invalid names and private
// projects without a valid token alike.
var errProjectNotFound = forgelink.Errorf(forgelink.NotFound, "project not found")

func (b *Badges) projectNotFound(w http.ResponseWriter, r *http.Request) {
	httpjson.Error(w, r, b.log(), errProjectNotFound)
}

// fail answers a failure of a dependency: 503 (with Retry-After) when it
// may pass, else 500; never with the cause's message, which is logged.
func (b *Badges) fail(w http.ResponseWriter, r *http.Request, err error) {
	if forgelink.KindOf(err) == forgelink.Transient {
		err = forgelink.E(forgelink.Transient, "temporarily unavailable; try again", err)
	} else {
		err = forgelink.E(forgelink.Internal, "", err)
	}
	httpjson.Error(w, r, b.log(), err)
}
