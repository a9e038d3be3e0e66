package accessapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"forgelink/shared/accessapi"
	"forgelink/shared/apiauth"
	"forgelink/shared/bitbucket"
	"forgelink/shared/bolt"
	"forgelink/shared/follow"
	"forgelink/shared/forgelink"
	"forgelink/shared/forges"
	"forgelink/shared/github"
	"forgelink/shared/orgaccess"
	"forgelink/shared/sealer"
	"forgelink/shared/vcsfake"
)

const token = "fl_test_token"

// followed are the projects every test starts with; gh/locked restricts
// OAuth Apps.
var followed = []string{"gh/acme/widget", "gh/acme/gadget", "gh/locked/app", "bb/acme/widget"}

// recorder is the API's Service: the real orgaccess.Service, with every
// call's scope recorded.
type recorder struct {
	svc   *orgaccess.Service
	mu    sync.Mutex
	calls []string
}

var _ accessapi.Service = (*recorder)(nil)

func describe(op string, sc orgaccess.Scope) string {
	switch {
	case sc.Project != nil:
		return op + " project " + sc.Project.String()
	case sc.Org != "":
		return op + " org " + sc.VCS.Short() + "/" + sc.Org
	}
	return op + " all"
}

func (r *recorder) record(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
}

// take returns the calls so far and forgets them.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

func (r *recorder) Sweep(ctx context.Context, sc orgaccess.Scope) (*orgaccess.Result, error) {
	r.record(describe("sweep", sc))
	return r.svc.Sweep(ctx, sc)
}

func (r *recorder) Status(ctx context.Context, sc orgaccess.Scope) ([]orgaccess.Org, error) {
	r.record(describe("status", sc))
	return r.svc.Status(ctx, sc)
}

type env struct {
	h   http.Handler
	svc *recorder
	gh  *vcsfake.GitHub
}

// newEnv follows the projects on the fakes over a bbolt store, runs one
// sweep and returns the API over it.
func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "forgelink.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek, err := sealer.OpenKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	gh, bb := vcsfake.NewGitHub(t), vcsfake.NewBitbucket(t)
	vcs := func(ctx context.Context, v forgelink.VCS) (forgelink.Forge, error) {
		if v == forgelink.Bitbucket {
			return bitbucket.NewForge(bb.URL, bb.Token, nil)
		}
		return github.NewForge(gh.URL, gh.Token, nil)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	fl := &follow.Service{Store: st, Sealer: sealer.NewEnvelope(kek), Forges: vcs, Log: log}
	for _, s := range followed {
		slug, _ := forgelink.ParseSlug(s)
		if slug.VCS == forgelink.Bitbucket {
			bb.AddRepo(slug.FullName(), "main", true)
		} else {
			gh.AddRepo(slug.FullName(), "main", false)
		}
		// Hooks post nowhere reachable: nothing in these tests delivers.
		if _, err := fl.Follow(t.Context(), slug, "octocat", "https://ci.example.com"); err != nil {
			t.Fatal(err)
		}
	}
	gh.SetOrgRestricted("locked", true)
	svc := &orgaccess.Service{
		Store: st, Checkers: forges.Checkers(vcs), Repair: fl.Repair, PublicURL: "https://ci.example.com",
		GitHubWebURL: "https://github.com", OAuthClientID: "Iv1.api", Log: log,
	}
	if _, err := svc.Sweep(t.Context(), orgaccess.Scope{}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{svc: svc}
	api := &accessapi.API{Service: rec, Auth: apiauth.NewStaticToken(token, apiauth.User{Login: "octocat"}), Log: log}
	return &env{h: api.Handler(), svc: rec, gh: gh}
}

// do serves one request with the token and decodes the JSON answer.
func (e *env) do(t *testing.T, method, target, body string) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.Header.Set("Circle-Token", token)
	return serve(t, e.h, req)
}

func serve(t *testing.T, h http.Handler, req *http.Request) (int, http.Header, map[string]any) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: %d, body is not a JSON object: %q", req.Method, req.URL, w.Code, w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q", req.Method, req.URL, ct)
	}
	return w.Code, w.Header(), out
}

func TestAuthRequired(t *testing.T) {
	e := newEnv(t)
	e.svc.take()
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/api/v2/org-access"},
		{http.MethodGet, "/api/v2/org-access?org=gh/acme"},
		{http.MethodPost, "/api/v2/org-access/check"},
		{http.MethodPut, "/api/v2/org-access"},
		{http.MethodGet, "/api/v2/org-access/check"},
	} {
		for _, tok := range []string{"", "fl_wrong", strings.ToUpper(token)} {
			req := httptest.NewRequest(r.method, r.path, nil)
			if tok != "" {
				req.Header.Set("Circle-Token", tok)
			}
			status, _, body := serve(t, e.h, req)
			if status != http.StatusUnauthorized || body["message"] == "" || body["message"] == nil {
				t.Errorf("%s %s with token %q: %d %v, want 401 with a message", r.method, r.path, tok, status, body)
			}
		}
	}
	if calls := e.svc.take(); len(calls) != 0 {
		t.Errorf("unauthenticated requests reached the service: %v", calls)
	}
	// The token's three places: header, query parameter, basic auth.
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/api/v2/org-access?circle-token="+token, nil),
		func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/api/v2/org-access", nil)
			r.SetBasicAuth(token, "")
			return r
		}(),
	} {
		if status, _, body := serve(t, e.h, req); status != http.StatusOK {
			t.Errorf("%s: %d %v, want 200", req.URL, status, body)
		}
	}
}

// orgsOf returns the items' org slugs and, by org, their project slugs.
func orgsOf(t *testing.T, body map[string]any) ([]string, map[string][]string, map[string]map[string]any) {
	t.Helper()
	items, ok := body["items"].([]any)
	if !ok {
		t.Fatalf("no items in %v", body)
	}
	var slugs []string
	projects := map[string][]string{}
	byOrg := map[string]map[string]any{}
	for _, it := range items {
		o := it.(map[string]any)
		slug := o["slug"].(string)
		slugs = append(slugs, slug)
		byOrg[slug] = o
		for _, p := range o["projects"].([]any) {
			projects[slug] = append(projects[slug], p.(map[string]any)["slug"].(string))
		}
	}
	return slugs, projects, byOrg
}

func TestList(t *testing.T) {
	e := newEnv(t)
	e.svc.take()
	tests := []struct {
		query    string
		call     string
		orgs     []string
		projects []string // of the first org
	}{
		{"", "status all", []string{"bb/acme", "gh/acme", "gh/locked"}, []string{"bb/acme/widget"}},
		{"?org=gh/acme", "status org gh/acme", []string{"gh/acme"}, []string{"gh/acme/gadget", "gh/acme/widget"}},
		{"?org=github/ACME", "status org gh/ACME", []string{"gh/acme"}, []string{"gh/acme/gadget", "gh/acme/widget"}},
		{"?org=bb/acme", "status org bb/acme", []string{"bb/acme"}, []string{"bb/acme/widget"}},
		{"?project=gh/acme/widget", "status project gh/acme/widget", []string{"gh/acme"}, []string{"gh/acme/widget"}},
		{"?org=", "status all", []string{"bb/acme", "gh/acme", "gh/locked"}, []string{"bb/acme/widget"}},
	}
	for _, tc := range tests {
		status, _, body := e.do(t, http.MethodGet, "/api/v2/org-access"+tc.query, "")
		if status != http.StatusOK {
			t.Errorf("GET %s: %d %v", tc.query, status, body)
			continue
		}
		orgs, projects, _ := orgsOf(t, body)
		if !slices.Equal(orgs, tc.orgs) || !slices.Equal(projects[orgs[0]], tc.projects) {
			t.Errorf("GET %s: orgs %v, projects %v; want %v, %v", tc.query, orgs, projects[orgs[0]], tc.orgs, tc.projects)
		}
		if calls := e.svc.take(); !slices.Equal(calls, []string{tc.call}) {
			t.Errorf("GET %s called %v, want %q", tc.query, calls, tc.call)
		}
	}
	// What an org's entry says.
	_, _, byOrg := orgsOf(t, func() map[string]any { _, _, b := e.do(t, http.MethodGet, "/api/v2/org-access", ""); return b }())
	locked := byOrg["gh/locked"]
	rem, _ := locked["remediation"].(map[string]any)
	if locked["state"] != "restricted" || locked["since"] == nil || locked["checked_at"] == nil || rem["action"] != "Request access" ||
		rem["url"] != "https://github.com/settings/connections/applications/Iv1.api" {
		t.Errorf("gh/locked = %v", locked)
	}
	if acme := byOrg["gh/acme"]; acme["state"] != "ok" || acme["remediation"] != nil {
		t.Errorf("gh/acme = %v, want ok without remediation", acme)
	}
}

func TestListNotCallingVCS(t *testing.T) {
	e := newEnv(t)
	before := len(e.gh.Requests())
	e.do(t, http.MethodGet, "/api/v2/org-access", "")
	if n := len(e.gh.Requests()) - before; n != 0 {
		t.Errorf("GET org-access made %d GitHub requests, want none (it reports what is stored)", n)
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t)
	e.svc.take()
	all := []string{"bb/acme", "gh/acme", "gh/locked"}
	tests := []struct {
		body    string
		call    string
		checked int
		orgs    []string
		ghRepos int // GitHub repositories read: the GitHub projects in scope
	}{
		{`{"org":"gh/acme"}`, "sweep org gh/acme", 2, []string{"gh/acme"}, 2},
		{`{"org":"bb/acme"}`, "sweep org bb/acme", 1, []string{"bb/acme"}, 0},
		{`{"project":"gh/acme/widget"}`, "sweep project gh/acme/widget", 1, []string{"gh/acme"}, 1},
		{``, "sweep all", 4, all, 3},
		{" \n ", "sweep all", 4, all, 3},
		{`{}`, "sweep all", 4, all, 3},
		{`{"org":"","project":""}`, "sweep all", 4, all, 3},
	}
	for _, tc := range tests {
		before := repoReads(e.gh)
		status, _, body := e.do(t, http.MethodPost, "/api/v2/org-access/check", tc.body)
		if status != http.StatusOK {
			t.Errorf("check %q: %d %v", tc.body, status, body)
			continue
		}
		orgs, _, _ := orgsOf(t, map[string]any{"items": body["orgs"]})
		if body["checked"] != float64(tc.checked) || body["deferred"] != float64(0) || !slices.Equal(orgs, tc.orgs) ||
			body["started_at"] == nil || body["finished_at"] == nil {
			t.Errorf("check %q: %v; want %d checked in %v", tc.body, body, tc.checked, tc.orgs)
		}
		if calls := e.svc.take(); !slices.Equal(calls, []string{tc.call}) {
			t.Errorf("check %q called %v, want %q", tc.body, calls, tc.call)
		}
		if got := repoReads(e.gh) - before; got != tc.ghRepos {
			t.Errorf("check %q read %d GitHub repositories, want %d", tc.body, got, tc.ghRepos)
		}
	}
}

// repoReads counts GET /repos/{o}/{r} on the fake.
func repoReads(gh *vcsfake.GitHub) int {
	n := 0
	for _, r := range gh.Requests() {
		rest, ok := strings.CutPrefix(r.Path, "/api/v3/repos/")
		if ok && r.Method == http.MethodGet && strings.Count(rest, "/") == 1 {
			n++
		}
	}
	return n
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	e.svc.take()
	tests := []struct {
		method, target, body string
		status               int
		message              string // part of the answer's message
	}{
		{"GET", "/api/v2/org-access?org=gh", "", 400, `org "gh": want vcs/org, e.g. gh/acme`},
		{"GET", "/api/v2/org-access?org=gh/acme/widget", "", 400, "want vcs/org"},
		{"GET", "/api/v2/org-access?org=gl/acme", "", 400, `unknown vcs "gl"`},
		{"GET", "/api/v2/org-access?project=gh/acme", "", 400, "want vcs/org/repo"},
		{"GET", "/api/v2/org-access?org=gh/acme&project=gh/acme/widget", "", 400, "give org or project, not both"},
		{"POST", "/api/v2/org-access/check", `{"org":"gh"}`, 400, "want vcs/org"},
		{"POST", "/api/v2/org-access/check", `{"project":"gh/x"}`, 400, "want vcs/org/repo"},
		{"POST", "/api/v2/org-access/check", `{"org":"gh/a","project":"gh/a/b"}`, 400, "give org or project, not both"},
		{"POST", "/api/v2/org-access/check", `{"org":`, 400, "invalid JSON"},
		{"POST", "/api/v2/org-access/check", `{"orgs":"gh/acme"}`, 400, `unknown field "orgs"`},
		{"POST", "/api/v2/org-access/check", `{"org":1}`, 400, `field "org" must be a string`},
		{"POST", "/api/v2/org-access/check", `["gh/acme"]`, 400, "body must be a JSON object"},
		{"POST", "/api/v2/org-access/check", `{"org":"gh/acme"} {}`, 400, "data after the object"},

		{"GET", "/api/v2/org-access?org=gh/nobody", "", 404, "no followed projects in gh/nobody"},
		{"GET", "/api/v2/org-access?project=gh/acme/nothing", "", 404, "project gh/acme/nothing is not followed"},
		{"POST", "/api/v2/org-access/check", `{"org":"gh/nobody"}`, 404, "no followed projects in gh/nobody"},
		{"POST", "/api/v2/org-access/check", `{"org":"bb/locked"}`, 404, "no followed projects in bb/locked"},
		{"POST", "/api/v2/org-access/check", `{"project":"gh/acme/nothing"}`, 404, "is not followed"},
	}
	for _, tc := range tests {
		status, _, body := e.do(t, tc.method, tc.target, tc.body)
		msg, _ := body["message"].(string)
		if status != tc.status || !strings.Contains(msg, tc.message) {
			t.Errorf("%s %s %s: %d %q, want %d with %q", tc.method, tc.target, tc.body, status, msg, tc.status, tc.message)
		}
	}
	// Bad scopes never reach the service; unknown orgs do, and are refused there.
	want := []string{
		"status org gh/nobody", "status project gh/acme/nothing",
		"sweep org gh/nobody", "sweep org bb/locked", "sweep project gh/acme/nothing",
	}
	if calls := e.svc.take(); !slices.Equal(calls, want) {
		t.Errorf("service calls %v, want %v", calls, want)
	}
}

func TestWrongMethods(t *testing.T) {
	e := newEnv(t)
	e.svc.take()
	for _, tc := range []struct {
		method, path, allow string
	}{
		{http.MethodPost, "/api/v2/org-access", "GET"},
		{http.MethodPut, "/api/v2/org-access", "GET"},
		{http.MethodDelete, "/api/v2/org-access", "GET"},
		{http.MethodPatch, "/api/v2/org-access", "GET"},
		{http.MethodGet, "/api/v2/org-access/check", "POST"},
		{http.MethodPut, "/api/v2/org-access/check", "POST"},
		{http.MethodDelete, "/api/v2/org-access/check", "POST"},
	} {
		status, hdr, body := e.do(t, tc.method, tc.path, `{}`)
		if status != http.StatusMethodNotAllowed || hdr.Get("Allow") != tc.allow || !strings.Contains(fmt.Sprint(body["message"]), "use "+tc.allow) {
			t.Errorf("%s %s: %d Allow %q %v, want 405 Allow %s", tc.method, tc.path, status, hdr.Get("Allow"), body, tc.allow)
		}
	}
	if calls := e.svc.take(); len(calls) != 0 {
		t.Errorf("wrong methods reached the service: %v", calls)
	}
}

func TestOversizedBody(t *testing.T) {
	e := newEnv(t)
	e.svc.take()
	// Valid JSON, padded past 4 KiB.
	big := `{"org":"gh/acme"` + strings.Repeat(" ", 5<<10) + `}`
	for _, known := range []bool{true, false} {
		req := httptest.NewRequest(http.MethodPost, "/api/v2/org-access/check", strings.NewReader(big))
		req.Header.Set("Circle-Token", token)
		if !known {
			req.ContentLength = -1 // chunked: only the read can tell
		}
		status, _, body := serve(t, e.h, req)
		if status != http.StatusRequestEntityTooLarge || !strings.Contains(fmt.Sprint(body["message"]), "limit") {
			t.Errorf("5 KiB body (length known: %v): %d %v, want 413", known, status, body)
		}
	}
	if calls := e.svc.take(); len(calls) != 0 {
		t.Errorf("oversized bodies reached the service: %v", calls)
	}
	// Just under the limit is fine.
	ok := `{"org":"gh/acme"` + strings.Repeat(" ", 4<<10-len(`{"org":"gh/acme"}`)) + `}`
	if status, _, body := e.do(t, http.MethodPost, "/api/v2/org-access/check", ok); status != http.StatusOK {
		t.Errorf("a 4 KiB body: %d %v, want 200", status, body)
	}
}
