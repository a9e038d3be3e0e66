package statusapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"forgelink/shared/apiauth"
	"forgelink/shared/badge"
	"forgelink/shared/forgelink"
	"forgelink/shared/statusapi"

	"github.com/google/go-cmp/cmp"
)

// fakeStore keeps projects and pipelines in memory and pages pipelines as
// the stores do: newest first, Limit capped at 100 and defaulting to 20.
type fakeStore struct {
	mu        sync.Mutex
	projects  map[forgelink.Slug]*forgelink.Project
	pipelines map[forgelink.Slug][]*forgelink.Pipeline // newest first
	getErr    error                                    // returned by GetProject when set
	listErr   error                                    // returned by ListPipelines when set
	lists     []forgelink.Page                         // every ListPipelines call's page
}

var (
	_ statusapi.ProjectGetter  = (*fakeStore)(nil)
	_ statusapi.PipelineLister = (*fakeStore)(nil)
)

func (s *fakeStore) GetProject(ctx context.Context, slug forgelink.Slug) (*forgelink.Project, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.getErr != nil {
		return nil, s.getErr
	}
	p, ok := s.projects[slug]
	if !ok {
		return nil, forgelink.Errorf(forgelink.NotFound, "no project %s", slug)
	}
	c := *p
	return &c, nil
}

func (s *fakeStore) ListPipelines(ctx context.Context, project forgelink.Slug, page forgelink.Page) ([]*forgelink.Pipeline, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists = append(s.lists, page)
	if s.listErr != nil {
		return nil, "", s.listErr
	}
	if _, ok := s.projects[project]; !ok {
		return nil, "", forgelink.Errorf(forgelink.NotFound, "no project %s", project)
	}
	limit := page.Limit
	switch {
	case limit <= 0:
		limit = 20
	case limit > 100:
		limit = 100
	}
	start := 0
	if page.Token != "" {
		n, err := strconv.Atoi(page.Token)
		if err != nil {
			return nil, "", forgelink.Errorf(forgelink.Invalid, "bad page token")
		}
		start = n
	}
	all := s.pipelines[project]
	end := min(start+limit, len(all))
	if start > end {
		start = end
	}
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	out := make([]*forgelink.Pipeline, 0, end-start)
	for _, p := range all[start:end] {
		c := *p
		out = append(out, &c)
	}
	return out, next, nil
}

// Fixtures: a public GitHub project, a public Bitbucket one and a private
// GitHub one, all with default branch main.
var (
	public    = mustSlug("gh/octo-org/hello-world")
	bitbucket = mustSlug("bb/team/repo")
	private   = mustSlug("gh/octo-org/secret")
)

const token = "s3cret-token"

func mustSlug(s string) forgelink.Slug {
	slug, err := forgelink.ParseSlug(s)
	if err != nil {
		panic(err)
	}
	return slug
}

func newStore() *fakeStore {
	s := &fakeStore{
		projects:  map[forgelink.Slug]*forgelink.Project{},
		pipelines: map[forgelink.Slug][]*forgelink.Pipeline{},
	}
	for _, slug := range []forgelink.Slug{public, bitbucket, private} {
		s.projects[slug] = &forgelink.Project{Slug: slug, State: forgelink.Following, DefaultBranch: "main", Private: slug == private}
	}
	return s
}

// on returns a branch pipeline in the given state.
func on(branch string, state forgelink.StatusState) *forgelink.Pipeline {
	return &forgelink.Pipeline{Branch: branch, Trigger: "push", Revision: "abc123", Status: state, Workflows: []string{"build"}}
}

// tagged returns a tag pipeline in the given state.
func tagged(tag string, state forgelink.StatusState) *forgelink.Pipeline {
	return &forgelink.Pipeline{Tag: tag, Trigger: "tag", Revision: "abc123", Status: state, Workflows: []string{"build"}}
}

// repeat returns n pipelines on branch.
func repeat(n int, branch string) []*forgelink.Pipeline {
	out := make([]*forgelink.Pipeline, n)
	for i := range out {
		out[i] = on(branch, forgelink.StatusFailed)
	}
	return out
}

func concat(lists ...[]*forgelink.Pipeline) []*forgelink.Pipeline {
	var out []*forgelink.Pipeline
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// newServer returns the badge handler over s, with a logger that writes
// to the test's log.
func newServer(t *testing.T, s *fakeStore, auth apiauth.Authenticator) http.Handler {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	b := &statusapi.Badges{Projects: s, Pipelines: s, Auth: auth, Log: log}
	return b.Handler()
}

// testWriter writes to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// response is what the tests look at in an answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do serves method path (escaped, with any query) with the given headers
// through a recorder, which keeps whatever the handler writes (a server
// would drop the body of a HEAD or a 304).
func do(t *testing.T, h http.Handler, method, path string, header map[string]string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: body}
}

// svgTitle parses body as an SVG document and returns its <title>.
func svgTitle(t *testing.T, body []byte) string {
	t.Helper()
	var doc struct {
		XMLName xml.Name `xml:"http://www.w3.org/2000/svg svg"`
		Title   string   `xml:"title"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("badge is not an SVG document: %v\n%s", err, body)
	}
	return doc.Title
}

// checkBadge checks that res is a 200 SVG badge saying message, with its
// headers.
func checkBadge(t *testing.T, res response, message, cacheControl string) {
	t.Helper()
	if res.status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", res.status, res.body)
	}
	if got, want := svgTitle(t, res.body), badge.DefaultLabel+": "+message; got != want {
		t.Errorf("badge title = %q, want %q", got, want)
	}
	if got, want := res.header.Get("Content-Type"), badge.SVGContentType; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	if !strings.HasPrefix(res.header.Get("Content-Type"), "image/svg+xml") {
		t.Errorf("Content-Type = %q, want image/svg+xml", res.header.Get("Content-Type"))
	}
	if got, want := res.header.Get("Cache-Control"), cacheControl; got != want {
		t.Errorf("Cache-Control = %q, want %q", got, want)
	}
	if got, want := res.header.Get("ETag"), badge.ETag(res.body); got != want {
		t.Errorf("ETag = %s, want %s", got, want)
	}
}

func TestBadgeState(t *testing.T) {
	erroredOld := &forgelink.Pipeline{Branch: "main", Revision: "abc", State: forgelink.PipelineErrored}
	pendingOld := &forgelink.Pipeline{Branch: "main", Revision: "abc", State: forgelink.PipelineCreated, Workflows: []string{"build", "test"}}
	halfDone := &forgelink.Pipeline{Branch: "main", Revision: "abc", Workflows: []string{"build", "test"},
		WorkflowStatus: map[string]forgelink.StatusState{"build": forgelink.StatusSuccess}}
	tests := []struct {
		name      string
		slug      forgelink.Slug
		pipelines []*forgelink.Pipeline
		path      string
		want      string // badge message
		wantLists int    // ListPipelines calls; 0: don't check
	}{
		{name: "passing", pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusSuccess)},
			path: "/gh/octo-org/hello-world.svg", want: "passing"},
		{name: "failed is failing", pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusFailed)},
			path: "/gh/octo-org/hello-world.svg", want: "failing"},
		{name: "error is failing", pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusError)},
			path: "/gh/octo-org/hello-world.svg", want: "failing"},
		{name: "canceled is failing", pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusCanceled)},
			path: "/gh/octo-org/hello-world.svg", want: "failing"},
		{name: "running", pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusRunning)},
			path: "/gh/octo-org/hello-world.svg", want: "running"},
		{name: "pending is running", pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusPending)},
			path: "/gh/octo-org/hello-world.svg", want: "running"},
		{name: "old pipeline without status is pending", pipelines: []*forgelink.Pipeline{pendingOld},
			path: "/gh/octo-org/hello-world.svg", want: "running"},
		{name: "old errored pipeline without status is failing", pipelines: []*forgelink.Pipeline{erroredOld},
			path: "/gh/octo-org/hello-world.svg", want: "failing"},
		{name: "no status but workflow states: their overall", pipelines: []*forgelink.Pipeline{halfDone},
			path: "/gh/octo-org/hello-world.svg", want: "running"},
		{name: "no pipelines", path: "/gh/octo-org/hello-world.svg", want: "no builds"},
		{name: "only other branches", pipelines: []*forgelink.Pipeline{on("develop", forgelink.StatusSuccess), on("feature/x", forgelink.StatusFailed)},
			path: "/gh/octo-org/hello-world.svg", want: "no builds"},
		{name: "newest pipeline wins",
			pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusFailed), on("main", forgelink.StatusSuccess)},
			path:      "/gh/octo-org/hello-world.svg", want: "failing"},
		{name: "newest pipeline wins, the other way",
			pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusSuccess), on("main", forgelink.StatusFailed)},
			path:      "/gh/octo-org/hello-world.svg", want: "passing"},
		{name: "tag pipelines are ignored",
			pipelines: []*forgelink.Pipeline{tagged("v1.0.0", forgelink.StatusFailed), on("main", forgelink.StatusSuccess)},
			path:      "/gh/octo-org/hello-world.svg", want: "passing"},
		{name: "a tag pipeline naming the branch is ignored",
			pipelines: []*forgelink.Pipeline{func() *forgelink.Pipeline {
				p := tagged("v1.0.0", forgelink.StatusFailed)
				p.Branch = "main"
				return p
			}(), on("main", forgelink.StatusSuccess)},
			path: "/gh/octo-org/hello-world.svg", want: "passing"},
		{name: "only tag pipelines", pipelines: []*forgelink.Pipeline{tagged("v1.0.0", forgelink.StatusSuccess)},
			path: "/gh/octo-org/hello-world.svg", want: "no builds"},
		{name: "named branch with %2F",
			pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusSuccess), on("feature/x", forgelink.StatusFailed)},
			path:      "/gh/octo-org/hello-world/tree/feature%2Fx.svg", want: "failing"},
		{name: "named branch with a literal slash",
			pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusSuccess), on("feature/x", forgelink.StatusFailed)},
			path:      "/gh/octo-org/hello-world/tree/feature/x.svg", want: "failing"},
		{name: "named branch with lower-case %2f and two levels",
			pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusSuccess), on("a/b/c", forgelink.StatusRunning)},
			path:      "/gh/octo-org/hello-world/tree/a%2fb/c.svg", want: "running"},
		{name: "named branch with other escapes",
			pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusSuccess), on("fix#1 ü", forgelink.StatusFailed)},
			path:      "/gh/octo-org/hello-world/tree/fix%231%20%C3%BC.svg", want: "failing"},
		{name: "named branch ending in .svg",
			pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusSuccess), on("logo.svg", forgelink.StatusFailed)},
			path:      "/gh/octo-org/hello-world/tree/logo.svg.svg", want: "failing"},
		{name: "named branch called tree",
			pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusSuccess), on("tree", forgelink.StatusFailed)},
			path:      "/gh/octo-org/hello-world/tree/tree.svg", want: "failing"},
		{name: "named branch without builds",
			pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusSuccess)},
			path:      "/gh/octo-org/hello-world/tree/feature%2Fx.svg", want: "no builds"},
		{name: "named branch is not a prefix match",
			pipelines: []*forgelink.Pipeline{on("feature/xy", forgelink.StatusSuccess), on("feature", forgelink.StatusSuccess)},
			path:      "/gh/octo-org/hello-world/tree/feature/x.svg", want: "no builds"},
		{name: "latest found on a later page",
			pipelines: concat(repeat(150, "develop"), []*forgelink.Pipeline{on("main", forgelink.StatusSuccess)}),
			path:      "/gh/octo-org/hello-world.svg", want: "passing", wantLists: 2},
		{name: "found on the fifth page",
			pipelines: concat(repeat(499, "develop"), []*forgelink.Pipeline{on("main", forgelink.StatusSuccess)}),
			path:      "/gh/octo-org/hello-world.svg", want: "passing", wantLists: 5},
		{name: "not looked for past five pages",
			pipelines: concat(repeat(500, "develop"), []*forgelink.Pipeline{on("main", forgelink.StatusSuccess)}),
			path:      "/gh/octo-org/hello-world.svg", want: "no builds", wantLists: 5},
		{name: "stops at the last page",
			pipelines: repeat(120, "develop"),
			path:      "/gh/octo-org/hello-world.svg", want: "no builds", wantLists: 2},
		{name: "bitbucket", slug: bitbucket, pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusSuccess)},
			path: "/bb/team/repo.svg", want: "passing"},
		{name: "bitbucket branch", slug: bitbucket, pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusSuccess), on("feature/x", forgelink.StatusRunning)},
			path: "/bb/team/repo/tree/feature/x.svg", want: "running"},
		{name: "github long name", pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusFailed)},
			path: "/github/octo-org/hello-world.svg", want: "failing"},
		{name: "bitbucket long name", slug: bitbucket, pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusFailed)},
			path: "/bitbucket/team/repo.svg", want: "failing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			slug := tc.slug
			if slug == (forgelink.Slug{}) {
				slug = public
			}
			s.pipelines[slug] = tc.pipelines
			h := newServer(t, s, nil)

			res := do(t, h, http.MethodGet, tc.path, nil)
			checkBadge(t, res, tc.want, "no-cache")
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, p := range s.lists {
				if p.Limit != 100 {
					t.Errorf("ListPipelines page size = %d, want 100", p.Limit)
				}
			}
			if tc.wantLists != 0 && len(s.lists) != tc.wantLists {
				t.Errorf("ListPipelines called %d times, want %d", len(s.lists), tc.wantLists)
			}
		})
	}
}

func TestBadgeDefaultBranch(t *testing.T) {
	tests := []struct {
		name          string
		defaultBranch string
		want          string
	}{
		{name: "develop", defaultBranch: "develop", want: "failing"},
		{name: "main", defaultBranch: "main", want: "passing"},
		{name: "unknown", defaultBranch: "", want: "no builds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			s.projects[public].DefaultBranch = tc.defaultBranch
			s.pipelines[public] = []*forgelink.Pipeline{on("develop", forgelink.StatusFailed), on("main", forgelink.StatusSuccess)}
			h := newServer(t, s, nil)
			checkBadge(t, do(t, h, http.MethodGet, "/gh/octo-org/hello-world.svg", nil), tc.want, "no-cache")
		})
	}
}

// notFoundBody is the body of every badge 404 that names a project.
const notFoundBody = `{"message":"project not found"}`

func TestBadgeNotFound(t *testing.T) {
	s := newStore()
	s.pipelines[private] = []*forgelink.Pipeline{on("main", forgelink.StatusSuccess), on("feature/x", forgelink.StatusFailed)}
	h := newServer(t, s, apiauth.NewStaticToken(token, apiauth.User{Login: "octocat"}))

	// The reference: a project nobody follows.
	unknown := do(t, h, http.MethodGet, "/gh/octo-org/nobody-follows.svg", nil)
	if unknown.status != http.StatusNotFound {
		t.Fatalf("unknown project: status = %d, want 404", unknown.status)
	}
	var msg struct{ Message string }
	if err := json.Unmarshal(unknown.body, &msg); err != nil || msg.Message != "project not found" {
		t.Fatalf("unknown project: body = %s (%v), want %s", unknown.body, err, notFoundBody)
	}

	passingETag := badge.ETag(badge.SVG(badge.DefaultLabel, "passing", "brightgreen"))
	tests := []struct {
		name   string
		path   string
		header map[string]string
	}{
		{name: "unknown project on a branch", path: "/gh/octo-org/nobody-follows/tree/main.svg"},
		{name: "unknown bitbucket project", path: "/bb/octo-org/hello-world.svg"},
		{name: "private without a token", path: "/gh/octo-org/secret.svg"},
		{name: "private branch without a token", path: "/gh/octo-org/secret/tree/feature%2Fx.svg"},
		{name: "private with a wrong query token", path: "/gh/octo-org/secret.svg?circle-token=wrong"},
		{name: "private with a wrong header token", path: "/gh/octo-org/secret.svg", header: map[string]string{"Circle-Token": "wrong"}},
		{name: "private with an empty token", path: "/gh/octo-org/secret.svg?circle-token="},
		{name: "private shield without a token", path: "/gh/octo-org/secret.svg?style=shield"},
		{name: "private without a token but a matching If-None-Match", path: "/gh/octo-org/secret.svg",
			header: map[string]string{"If-None-Match": passingETag}},
		{name: "private without a token but If-None-Match *", path: "/gh/octo-org/secret.svg",
			header: map[string]string{"If-None-Match": "*"}},
		{name: "dot-dot org", path: "/gh/../hello-world.svg"},
		{name: "escaped slash in org", path: "/gh/octo-org%2Fx/hello-world.svg"},
		{name: "escaped slash in repo", path: "/gh/octo-org/hello%2Fworld.svg"},
		{name: "space in repo", path: "/gh/octo-org/hello%20world.svg"},
		{name: "empty repo", path: "/gh/octo-org/.svg"},
		{name: "name too long", path: "/gh/octo-org/" + strings.Repeat("a", 101) + ".svg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := do(t, h, http.MethodGet, tc.path, tc.header)
			if got.status != unknown.status {
				t.Errorf("status = %d, want %d", got.status, unknown.status)
			}
			if !bytes.Equal(got.body, unknown.body) {
				t.Errorf("body = %q, want the unknown project's %q", got.body, unknown.body)
			}
			for _, h := range []string{"Content-Type", "Cache-Control", "ETag", "Content-Length"} {
				if g, w := got.header.Get(h), unknown.header.Get(h); g != w {
					t.Errorf("%s = %q, want the unknown project's %q", h, g, w)
				}
			}
		})
	}
}

func TestBadgeNoRoute(t *testing.T) {
	s := newStore()
	s.pipelines[public] = []*forgelink.Pipeline{on("main", forgelink.StatusSuccess)}
	h := newServer(t, s, nil)
	for _, path := range []string{
		"/",
		"/gh/octo-org/hello-world",
		"/gh/octo-org/hello-world.png",
		"/gh/octo-org.svg",
		"/gl/octo-org/hello-world.svg",
		"/gh/octo-org/hello-world/branch/main.svg",
		"/gh/octo-org/hello-world/tree/.svg",
		"/gh/octo-org/hello-world/tree/main",
		"/gh/octo-org/hello-world/tree.svg/x",
	} {
		t.Run(path, func(t *testing.T) {
			res := do(t, h, http.MethodGet, path, nil)
			if res.status != http.StatusNotFound {
				t.Errorf("status = %d, want 404", res.status)
			}
			if got := res.header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
				t.Errorf("Content-Type = %q, want JSON", got)
			}
			if bytes.Contains(res.body, []byte("passing")) {
				t.Errorf("body %s shows a state", res.body)
			}
			if res := do(t, h, http.MethodPost, path, nil); res.status != http.StatusNotFound {
				t.Errorf("POST: status = %d, want 404", res.status)
			}
		})
	}
}

func TestBadgePrivate(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		header map[string]string
		want   string
	}{
		{name: "query token", path: "/gh/octo-org/secret.svg?circle-token=" + token, want: "passing"},
		{name: "header token", path: "/gh/octo-org/secret.svg", header: map[string]string{"Circle-Token": token}, want: "passing"},
		{name: "branch with query token", path: "/gh/octo-org/secret/tree/feature%2Fx.svg?circle-token=" + token, want: "failing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			s.pipelines[private] = []*forgelink.Pipeline{on("main", forgelink.StatusSuccess), on("feature/x", forgelink.StatusFailed)}
			h := newServer(t, s, apiauth.NewStaticToken(token, apiauth.User{Login: "octocat"}))
			checkBadge(t, do(t, h, http.MethodGet, tc.path, tc.header), tc.want, "private, no-cache")
		})
	}

	t.Run("no authenticator", func(t *testing.T) {
		s := newStore()
		s.pipelines[private] = []*forgelink.Pipeline{on("main", forgelink.StatusSuccess)}
		h := newServer(t, s, nil)
		res := do(t, h, http.MethodGet, "/gh/octo-org/secret.svg?circle-token="+token, nil)
		if res.status != http.StatusNotFound || string(bytes.TrimSpace(res.body)) != notFoundBody {
			t.Errorf("got %d %s, want 404 %s", res.status, res.body, notFoundBody)
		}
	})

	t.Run("a token does not change a public badge", func(t *testing.T) {
		s := newStore()
		s.pipelines[public] = []*forgelink.Pipeline{on("main", forgelink.StatusSuccess)}
		h := newServer(t, s, apiauth.NewStaticToken(token, apiauth.User{Login: "octocat"}))
		checkBadge(t, do(t, h, http.MethodGet, "/gh/octo-org/hello-world.svg?circle-token=wrong", nil), "passing", "no-cache")
	})
}

func TestBadgeConditional(t *testing.T) {
	s := newStore()
	s.pipelines[public] = []*forgelink.Pipeline{on("main", forgelink.StatusSuccess)}
	s.pipelines[private] = []*forgelink.Pipeline{on("main", forgelink.StatusSuccess)}
	h := newServer(t, s, apiauth.NewStaticToken(token, apiauth.User{Login: "octocat"}))

	const path = "/gh/octo-org/hello-world.svg"
	first := do(t, h, http.MethodGet, path, nil)
	checkBadge(t, first, "passing", "no-cache")
	etag := first.header.Get("ETag")
	shieldETag := do(t, h, http.MethodGet, path+"?style=shield", nil).header.Get("ETag")
	if shieldETag == "" || shieldETag == etag {
		t.Fatalf("shield ETag %q: want one, and not the SVG's %q", shieldETag, etag)
	}
	failingETag := badge.ETag(badge.SVG(badge.DefaultLabel, "failing", "red"))

	tests := []struct {
		name        string
		path        string
		ifNoneMatch string
		want        int
		wantCache   string
	}{
		{name: "same ETag", path: path, ifNoneMatch: etag, want: http.StatusNotModified, wantCache: "no-cache"},
		{name: "weak form", path: path, ifNoneMatch: "W/" + etag, want: http.StatusNotModified, wantCache: "no-cache"},
		{name: "in a list", path: path, ifNoneMatch: `"other", ` + etag, want: http.StatusNotModified, wantCache: "no-cache"},
		{name: "star", path: path, ifNoneMatch: "*", want: http.StatusNotModified, wantCache: "no-cache"},
		{name: "another state's ETag", path: path, ifNoneMatch: failingETag, want: http.StatusOK, wantCache: "no-cache"},
		{name: "SVG ETag for the shield", path: path + "?style=shield", ifNoneMatch: etag, want: http.StatusOK, wantCache: "no-cache"},
		{name: "shield ETag", path: path + "?style=shield", ifNoneMatch: shieldETag, want: http.StatusNotModified, wantCache: "no-cache"},
		{name: "private with token", path: "/gh/octo-org/secret.svg?circle-token=" + token, ifNoneMatch: etag,
			want: http.StatusNotModified, wantCache: "private, no-cache"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, h, http.MethodGet, tc.path, map[string]string{"If-None-Match": tc.ifNoneMatch})
			if res.status != tc.want {
				t.Fatalf("status = %d, want %d; body %s", res.status, tc.want, res.body)
			}
			if got, want := res.header.Get("Cache-Control"), tc.wantCache; got != want {
				t.Errorf("Cache-Control = %q, want %q", got, want)
			}
			if res.header.Get("ETag") == "" {
				t.Error("no ETag")
			}
			if tc.want == http.StatusNotModified && len(res.body) != 0 {
				t.Errorf("304 has a body: %q", res.body)
			}
			if tc.want == http.StatusOK && len(res.body) == 0 {
				t.Error("200 has no body")
			}
		})
	}

	t.Run("the ETag changes with the state", func(t *testing.T) {
		s.mu.Lock()
		s.pipelines[public] = []*forgelink.Pipeline{on("main", forgelink.StatusFailed)}
		s.mu.Unlock()
		res := do(t, h, http.MethodGet, path, map[string]string{"If-None-Match": etag})
		checkBadge(t, res, "failing", "no-cache")
		if got := res.header.Get("ETag"); got != failingETag {
			t.Errorf("ETag = %s, want %s", got, failingETag)
		}
	})
}

func TestBadgeShield(t *testing.T) {
	tests := []struct {
		name      string
		pipelines []*forgelink.Pipeline
		path      string
		header    map[string]string
		want      map[string]any
		wantCache string
	}{
		{name: "passing", pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusSuccess)},
			path: "/gh/octo-org/hello-world.svg?style=shield",
			want: map[string]any{"schemaVersion": 1.0, "label": badge.DefaultLabel, "message": "passing", "color": "brightgreen"}, wantCache: "no-cache"},
		{name: "failing branch", pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusSuccess), on("feature/x", forgelink.StatusFailed)},
			path: "/gh/octo-org/hello-world/tree/feature%2Fx.svg?style=shield",
			want: map[string]any{"schemaVersion": 1.0, "label": badge.DefaultLabel, "message": "failing", "color": "red"}, wantCache: "no-cache"},
		{name: "running", pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusRunning)},
			path: "/gh/octo-org/hello-world.svg?style=shield",
			want: map[string]any{"schemaVersion": 1.0, "label": badge.DefaultLabel, "message": "running", "color": "yellow"}, wantCache: "no-cache"},
		{name: "no builds",
			path: "/gh/octo-org/hello-world.svg?style=shield",
			want: map[string]any{"schemaVersion": 1.0, "label": badge.DefaultLabel, "message": "no builds", "color": "lightgrey"}, wantCache: "no-cache"},
		{name: "private", pipelines: []*forgelink.Pipeline{on("main", forgelink.StatusSuccess)},
			path: "/gh/octo-org/secret.svg?style=shield&circle-token=" + token,
			want: map[string]any{"schemaVersion": 1.0, "label": badge.DefaultLabel, "message": "passing", "color": "brightgreen"}, wantCache: "private, no-cache"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			s.pipelines[public] = tc.pipelines
			s.pipelines[private] = tc.pipelines
			h := newServer(t, s, apiauth.NewStaticToken(token, apiauth.User{Login: "octocat"}))
			res := do(t, h, http.MethodGet, tc.path, tc.header)
			if res.status != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", res.status, res.body)
			}
			var got map[string]any
			if err := json.Unmarshal(res.body, &got); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, res.body)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("shield JSON (-want +got):\n%s", diff)
			}
			if got, want := res.header.Get("Content-Type"), "application/json"; got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
			if got, want := res.header.Get("Cache-Control"), tc.wantCache; got != want {
				t.Errorf("Cache-Control = %q, want %q", got, want)
			}
			if got, want := res.header.Get("ETag"), badge.ETag(res.body); got != want {
				t.Errorf("ETag = %s, want %s", got, want)
			}
		})
	}

	t.Run("other styles are the SVG", func(t *testing.T) {
		s := newStore()
		s.pipelines[public] = []*forgelink.Pipeline{on("main", forgelink.StatusSuccess)}
		h := newServer(t, s, nil)
		checkBadge(t, do(t, h, http.MethodGet, "/gh/octo-org/hello-world.svg?style=svg", nil), "passing", "no-cache")
	})
}

func TestBadgeMethods(t *testing.T) {
	s := newStore()
	s.pipelines[public] = []*forgelink.Pipeline{on("main", forgelink.StatusSuccess)}
	h := newServer(t, s, nil)

	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		for _, path := range []string{"/gh/octo-org/hello-world.svg", "/bb/team/repo/tree/feature/x.svg", "/gh/octo-org/nobody-follows.svg"} {
			t.Run(method+" "+path, func(t *testing.T) {
				res := do(t, h, method, path, nil)
				if res.status != http.StatusMethodNotAllowed {
					t.Errorf("status = %d, want 405", res.status)
				}
				if got, want := res.header.Get("Allow"), "GET, HEAD"; got != want {
					t.Errorf("Allow = %q, want %q", got, want)
				}
			})
		}
	}

	t.Run("HEAD", func(t *testing.T) {
		get := do(t, h, http.MethodGet, "/gh/octo-org/hello-world.svg", nil)
		head := do(t, h, http.MethodHead, "/gh/octo-org/hello-world.svg", nil)
		if head.status != http.StatusOK {
			t.Fatalf("status = %d, want 200", head.status)
		}
		if len(head.body) != 0 {
			t.Errorf("HEAD has a body: %q", head.body)
		}
		for _, h := range []string{"Content-Type", "Cache-Control", "ETag", "Content-Length"} {
			if g, w := head.header.Get(h), get.header.Get(h); g != w || g == "" {
				t.Errorf("HEAD %s = %q, want GET's %q", h, g, w)
			}
		}
		if got, want := head.header.Get("Content-Length"), strconv.Itoa(len(get.body)); got != want {
			t.Errorf("Content-Length = %s, want %s", got, want)
		}
	})
}

// failingAuth fails every check with err.
type failingAuth struct{ err error }

func (a failingAuth) Authenticate(ctx context.Context, token string) (*apiauth.User, error) {
	return nil, a.err
}

func TestBadgeErrors(t *testing.T) {
	const secret = "dynamodb: table forgelink-prod throttled at 10.0.0.7"
	transient := forgelink.E(forgelink.Transient, "store busy "+secret, errors.New(secret))
	internal := fmt.Errorf("bolt: %s", secret)
	tests := []struct {
		name    string
		getErr  error
		listErr error
		auth    apiauth.Authenticator
		path    string
		want    int
	}{
		{name: "get project transient", getErr: transient, path: "/gh/octo-org/hello-world.svg", want: http.StatusServiceUnavailable},
		{name: "get project internal", getErr: internal, path: "/gh/octo-org/hello-world.svg", want: http.StatusInternalServerError},
		{name: "get project invalid", getErr: forgelink.Errorf(forgelink.Invalid, "bad key "+secret), path: "/gh/octo-org/hello-world.svg", want: http.StatusInternalServerError},
		{name: "list pipelines transient", listErr: transient, path: "/gh/octo-org/hello-world.svg", want: http.StatusServiceUnavailable},
		{name: "list pipelines internal", listErr: internal, path: "/gh/octo-org/hello-world/tree/main.svg", want: http.StatusInternalServerError},
		{name: "list pipelines not found", listErr: forgelink.Errorf(forgelink.NotFound, "gone "+secret), path: "/gh/octo-org/hello-world.svg", want: http.StatusNotFound},
		{name: "authenticator down, public project", auth: failingAuth{transient},
			path: "/gh/octo-org/hello-world.svg?circle-token=x", want: http.StatusServiceUnavailable},
		{name: "authenticator down, unknown project", auth: failingAuth{transient},
			path: "/gh/octo-org/nobody-follows.svg?circle-token=x", want: http.StatusServiceUnavailable},
		{name: "authenticator down, private project", auth: failingAuth{transient},
			path: "/gh/octo-org/secret.svg?circle-token=x", want: http.StatusServiceUnavailable},
		{name: "authenticator broken", auth: failingAuth{internal},
			path: "/gh/octo-org/secret.svg?circle-token=x", want: http.StatusInternalServerError},
		{name: "authenticator forbids", auth: failingAuth{forgelink.Errorf(forgelink.Forbidden, "no "+secret)},
			path: "/gh/octo-org/secret.svg?circle-token=x", want: http.StatusNotFound},
		{name: "authenticator down, no token sent", auth: failingAuth{transient},
			path: "/gh/octo-org/hello-world.svg", want: http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			s.pipelines[public] = []*forgelink.Pipeline{on("main", forgelink.StatusSuccess)}
			s.getErr, s.listErr = tc.getErr, tc.listErr
			h := newServer(t, s, tc.auth)
			res := do(t, h, http.MethodGet, tc.path, nil)
			if res.status != tc.want {
				t.Errorf("status = %d, want %d; body %s", res.status, tc.want, res.body)
			}
			if bytes.Contains(res.body, []byte("10.0.0.7")) || bytes.Contains(res.body, []byte("forgelink-prod")) {
				t.Errorf("body leaks the cause: %s", res.body)
			}
			if tc.want == http.StatusNotFound && string(bytes.TrimSpace(res.body)) != notFoundBody {
				t.Errorf("body = %s, want %s", res.body, notFoundBody)
			}
			if tc.want >= 500 && !strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
				t.Errorf("Content-Type = %q, want JSON", res.header.Get("Content-Type"))
			}
			if tc.want == http.StatusServiceUnavailable && res.header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
}

// TestBadgeOverHTTP serves the badges from a real server, so that the
// path arrives as a client sends it: %2F kept, literal slashes as they are.
func TestBadgeOverHTTP(t *testing.T) {
	s := newStore()
	s.pipelines[public] = []*forgelink.Pipeline{on("main", forgelink.StatusSuccess), on("feature/x", forgelink.StatusFailed)}
	srv := httptest.NewServer(newServer(t, s, nil))
	t.Cleanup(srv.Close)

	tests := []struct {
		method, path string
		want         string // badge message; "" for no body
	}{
		{method: http.MethodGet, path: "/gh/octo-org/hello-world.svg", want: "passing"},
		{method: http.MethodGet, path: "/gh/octo-org/hello-world/tree/feature%2Fx.svg", want: "failing"},
		{method: http.MethodGet, path: "/gh/octo-org/hello-world/tree/feature/x.svg", want: "failing"},
		{method: http.MethodHead, path: "/gh/octo-org/hello-world/tree/feature%2Fx.svg"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if res.StatusCode != http.StatusOK || len(body) != 0 || res.Header.Get("ETag") == "" {
					t.Errorf("HEAD: got %d, %d bytes, ETag %q; want 200, no body, an ETag", res.StatusCode, len(body), res.Header.Get("ETag"))
				}
				return
			}
			checkBadge(t, response{status: res.StatusCode, header: res.Header, body: body}, tc.want, "no-cache")
		})
	}
}
