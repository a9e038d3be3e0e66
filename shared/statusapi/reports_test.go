package statusapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/apiauth"
	"forgelink/shared/bolt"
	"forgelink/shared/forgelink"
	"forgelink/shared/statusapi"
	"forgelink/shared/statussvc"
)

const (
	reportAPIToken = "api-token-for-reports"
	reportRev      = "366701fde727cb7a9e7f21eb88264f59f6f9b89c"
	// Executor and runner tokens the fixture mints.
	execToken     = "fle_this-pipeline-executor-token"
	otherExec     = "fle_other-pipeline-executor-token"
	expiredExec   = "fle_expired-executor-token"
	checkoutToken = "fle_checkout-token-not-for-reports"
)

// statusQueue is a statussvc.Requests that keeps every request.
type statusQueue struct {
	mu   sync.Mutex
	reqs []forgelink.StatusRequest
}

func (q *statusQueue) Request(ctx context.Context, r *forgelink.StatusRequest) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reqs = append(q.reqs, *r)
	return nil
}

func (q *statusQueue) all() []forgelink.StatusRequest {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.reqs)
}

// reportCall is one call that reached the Reporter.
type reportCall struct {
	PipelineID string
	Report     statussvc.Report
}

// recordingReporter records each call and passes it on to next.
type recordingReporter struct {
	next statusapi.Reporter

	mu    sync.Mutex
	calls []reportCall
}

var _ statusapi.Reporter = (*recordingReporter)(nil)

func (r *recordingReporter) Report(ctx context.Context, id string, rep statussvc.Report) (*forgelink.Pipeline, bool, error) {
	r.mu.Lock()
	r.calls = append(r.calls, reportCall{id, rep})
	r.mu.Unlock()
	return r.next.Report(ctx, id, rep)
}

func (r *recordingReporter) all() []reportCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// reportFixture serves Reports over HTTP with the real statussvc.Service
// on a bbolt store holding two pipelines of one commit (a branch's with
// workflows build and test, a tag's) and their tokens.
type reportFixture struct {
	st       *bolt.Store
	queue    *statusQueue
	reporter *recordingReporter
	url      string
	this     *forgelink.Pipeline
	other    *forgelink.Pipeline
}

func newReportFixture(t *testing.T, publicURL string) *reportFixture {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "forgelink.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := t.Context()
	newPipeline := func(p *forgelink.Pipeline) *forgelink.Pipeline {
		p.Project, p.State, p.Revision, p.CreatedAt = "gh/octo-org/hello-world", forgelink.PipelineCreated, reportRev, time.Now().UTC()
		p.InitStatus()
		got, err := st.CreatePipeline(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	f := &reportFixture{st: st, queue: &statusQueue{}}
	f.this = newPipeline(&forgelink.Pipeline{Trigger: forgelink.TriggerPush, Branch: "main", Workflows: []string{"build", "test"}})
	f.other = newPipeline(&forgelink.Pipeline{Trigger: forgelink.TriggerTag, Tag: "v1.0.0", Workflows: []string{"build"}})
	now := time.Now()
	for _, tok := range []struct {
		token    string
		pipeline string
		expires  time.Time
		executor bool
	}{
		{execToken, f.this.ID, now.Add(time.Hour), true},
		{otherExec, f.other.ID, now.Add(time.Hour), true},
		{expiredExec, f.this.ID, now.Add(-time.Minute), true},
		{checkoutToken, f.this.ID, now.Add(time.Hour), false},
	} {
		rt := &forgelink.RunnerToken{Hash: forgelink.HashRunnerToken(tok.token), PipelineID: tok.pipeline, ExpiresAt: tok.expires, Executor: tok.executor}
		if err := st.MintRunnerTokens(ctx, rt); err != nil {
			t.Fatal(err)
		}
	}
	svc := &statussvc.Service{Store: st, Requests: f.queue, PublicURL: "https://unused.example.com", Log: discardLog()}
	f.reporter = &recordingReporter{next: svc}
	h := &statusapi.Reports{Reporter: f.reporter, Tokens: st, Auth: apiauth.NewStaticToken(reportAPIToken, apiauth.User{Login: "octocat"}),
		PublicURL: publicURL, Log: discardLog()}
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// reportAnswer is an answer of the report route.
type reportAnswer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a reportAnswer) message() string { m, _ := a.body["message"].(string); return m }

// send sends a report with the token in the Circle-Token header ("" for
// none); edit may change the request first.
func (f *reportFixture) send(t *testing.T, method, pipelineID, token string, body io.Reader, edit ...func(*http.Request)) reportAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.url+"/api/v2/pipeline/"+pipelineID+"/status", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Circle-Token", token)
	}
	for _, e := range edit {
		e(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := reportAnswer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("%s %s: %d with a body that is not a JSON object: %q", method, pipelineID, resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want JSON", ct)
	}
	return a
}

func (f *reportFixture) report(t *testing.T, pipelineID, token, body string) reportAnswer {
	t.Helper()
	return f.send(t, http.MethodPost, pipelineID, token, strings.NewReader(body))
}

func (f *reportFixture) pipeline(t *testing.T, id string) *forgelink.Pipeline {
	t.Helper()
	p, err := f.st.GetPipeline(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// unchanged checks that nothing reached the service and both pipelines are
// as created.
func (f *reportFixture) unchanged(t *testing.T) {
	t.Helper()
	if calls := f.reporter.all(); len(calls) != 0 {
		t.Errorf("reports that reached the service: %+v, want none", calls)
	}
	if reqs := f.queue.all(); len(reqs) != 0 {
		t.Errorf("status requests queued: %+v, want none", reqs)
	}
	for _, p := range []*forgelink.Pipeline{f.this, f.other} {
		if diff := cmp.Diff(p, f.pipeline(t, p.ID)); diff != "" {
			t.Errorf("pipeline %s changed (-before +after):\n%s", p.ID, diff)
		}
	}
}

func TestReportAuth(t *testing.T) {
	for _, tc := range []struct {
		name     string
		token    string
		edit     func(*http.Request)
		pipeline string // "other" for the other pipeline, "unknown" for none; "" this one
		want     int
	}{
		{name: "missing token", want: http.StatusUnauthorized},
		{name: "bad API token", token: "not-the-api-token", want: http.StatusUnauthorized},
		{name: "API token", token: reportAPIToken, want: http.StatusOK},
		{name: "API token in the query", edit: func(r *http.Request) {
			r.URL.RawQuery = "circle-token=" + reportAPIToken
		}, want: http.StatusOK},
		{name: "API token as basic auth", edit: func(r *http.Request) { r.SetBasicAuth(reportAPIToken, "") }, want: http.StatusOK},
		{name: "API token on another pipeline", token: reportAPIToken, pipeline: "other", want: http.StatusOK},
		{name: "executor token of this pipeline", token: execToken, want: http.StatusOK},
		{name: "executor token of another pipeline", token: otherExec, want: http.StatusForbidden},
		{name: "executor token on an unknown pipeline", token: execToken, pipeline: "unknown", want: http.StatusForbidden},
		{name: "unknown executor token", token: "fle_never-minted", want: http.StatusUnauthorized},
		{name: "expired executor token", token: expiredExec, want: http.StatusUnauthorized},
		{name: "checkout token with the executor prefix", token: checkoutToken, want: http.StatusUnauthorized},
		{name: "bare executor prefix", token: "fle_", want: http.StatusUnauthorized},
		{name: "executor token without its prefix", token: strings.TrimPrefix(execToken, "fle_"), want: http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newReportFixture(t, "https://ci.example.com")
			target := f.this
			switch tc.pipeline {
			case "other":
				target = f.other
			case "unknown":
				target = &forgelink.Pipeline{ID: "00000000-0000-4000-8000-000000000000"}
			}
			var edits []func(*http.Request)
			if tc.edit != nil {
				edits = append(edits, tc.edit)
			}
			got := f.send(t, http.MethodPost, target.ID, tc.token, strings.NewReader(`{"state":"running"}`), edits...)
			if got.status != tc.want {
				t.Fatalf("status = %d %s, want %d", got.status, got.raw, tc.want)
			}
			if tc.want != http.StatusOK {
				if got.message() == "" {
					t.Errorf("body %s has no message", got.raw)
				}
				if strings.Contains(got.raw, tc.token) && tc.token != "" {
					t.Errorf("answer %s repeats the token", got.raw)
				}
				f.unchanged(t)
				return
			}
			if got.body["changed"] != true || got.body["status"] != "running" || got.body["id"] != target.ID {
				t.Errorf("answer = %s, want changed, running, id %s", got.raw, target.ID)
			}
			if p := f.pipeline(t, target.ID); p.Status != forgelink.StatusRunning {
				t.Errorf("stored status = %s, want running", p.Status)
			}
			if reqs := f.queue.all(); len(reqs) != 1 || reqs[0].PipelineID != target.ID {
				t.Errorf("requests = %+v, want one for %s", reqs, target.ID)
			}
		})
	}
}

func TestReportBadRequests(t *testing.T) {
	chunked := func(s string) io.Reader { return io.MultiReader(strings.NewReader(s)) } // no length: sent chunked
	big := `{"state":"running","description":"` + strings.Repeat("x", 64<<10) + `"}`
	for _, tc := range []struct {
		name    string
		body    io.Reader
		want    int
		message string // a part of the answer's message
	}{
		{"truncated JSON", strings.NewReader(`{"state":`), http.StatusBadRequest, "invalid JSON"},
		{"not an object", strings.NewReader(`["running"]`), http.StatusBadRequest, "not array"},
		{"empty body", strings.NewReader(""), http.StatusBadRequest, "empty body"},
		{"unknown field", strings.NewReader(`{"state":"running","colour":"green"}`), http.StatusBadRequest, "colour"},
		{"wrong type", strings.NewReader(`{"state":1}`), http.StatusBadRequest, "state"},
		{"data after the object", strings.NewReader(`{"state":"running"}{"state":"failed"}`), http.StatusBadRequest, "after the object"},
		{"pending", strings.NewReader(`{"state":"pending"}`), http.StatusBadRequest, `invalid state "pending"`},
		{"unknown state", strings.NewReader(`{"state":"passed"}`), http.StatusBadRequest, "want one of running, success, failed, error, canceled"},
		{"upper-case state", strings.NewReader(`{"state":"RUNNING"}`), http.StatusBadRequest, "invalid state"},
		{"no state", strings.NewReader(`{"workflow":"build"}`), http.StatusBadRequest, "invalid state"},
		{"unknown workflow", strings.NewReader(`{"state":"running","workflow":"deploy"}`), http.StatusBadRequest, `no workflow "deploy"`},
		{"target URL not http", strings.NewReader(`{"state":"running","target_url":"javascript:alert(1)"}`), http.StatusBadRequest, "target_url"},
		{"body over 64 KiB", strings.NewReader(big), http.StatusRequestEntityTooLarge, "limit"},
		{"chunked body over 64 KiB", chunked(big), http.StatusRequestEntityTooLarge, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newReportFixture(t, "https://ci.example.com")
			got := f.send(t, http.MethodPost, f.this.ID, execToken, tc.body)
			if got.status != tc.want || !strings.Contains(got.message(), tc.message) {
				t.Errorf("answer = %d %s, want %d with a message containing %q", got.status, got.raw, tc.want, tc.message)
			}
			if calls := f.reporter.all(); len(calls) > 0 && tc.want == http.StatusRequestEntityTooLarge {
				t.Errorf("an oversized body reached the service: %+v", calls)
			}
			if reqs := f.queue.all(); len(reqs) != 0 {
				t.Errorf("status requests queued: %+v, want none", reqs)
			}
			if diff := cmp.Diff(f.this, f.pipeline(t, f.this.ID)); diff != "" {
				t.Errorf("pipeline changed (-before +after):\n%s", diff)
			}
		})
	}
	// Just under the limit is accepted.
	f := newReportFixture(t, "https://ci.example.com")
	desc := strings.Repeat("y", 64<<10-len(`{"state":"running","description":""}`))
	if got := f.report(t, f.this.ID, execToken, `{"state":"running","description":"`+desc+`"}`); got.status != http.StatusOK {
		t.Errorf("a body of exactly 64 KiB: %d %s, want 200", got.status, got.message())
	}
	// Only what is posted is queued: the description cut to 140 characters.
	reqs := f.queue.all()
	if n := len(reqs); n == 0 {
		t.Fatal("no status request queued")
	}
	if got := reqs[len(reqs)-1].Description; utf8.RuneCountInString(got) != forgelink.MaxStatusDescription || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "yyy") {
		t.Errorf("queued description = %d characters (%.20q…), want %d ending in …", utf8.RuneCountInString(got), got, forgelink.MaxStatusDescription)
	}
}

func TestReportOutcomes(t *testing.T) {
	f := newReportFixture(t, "https://ci.example.com")
	id := f.this.ID

	got := f.report(t, "00000000-0000-4000-8000-000000000000", reportAPIToken, `{"state":"running"}`)
	if got.status != http.StatusNotFound || got.message() == "" {
		t.Errorf("unknown pipeline: %d %s, want 404 with a message", got.status, got.raw)
	}

	got = f.report(t, id, execToken, `{"state":"running"}`)
	want := map[string]any{"id": id, "number": float64(f.this.Number), "status": "running",
		"workflow_status": map[string]any{"build": "running", "test": "running"}, "changed": true}
	if got.status != http.StatusOK || !cmp.Equal(want, got.body) {
		t.Errorf("running: %d, body (-want +got):\n%s", got.status, cmp.Diff(want, got.body))
	}

	got = f.report(t, id, execToken, `{"state":"running"}`)
	want["changed"] = false
	if got.status != http.StatusOK || !cmp.Equal(want, got.body) {
		t.Errorf("running again: %d, body (-want +got):\n%s", got.status, cmp.Diff(want, got.body))
	}
	if n := len(f.queue.all()); n != 1 {
		t.Errorf("requests after a repeat = %d, want 1", n)
	}

	got = f.report(t, id, execToken, `{"state":"success","workflow":"build"}`)
	want = map[string]any{"id": id, "number": float64(f.this.Number), "status": "running",
		"workflow_status": map[string]any{"build": "success", "test": "running"}, "changed": true}
	if got.status != http.StatusOK || !cmp.Equal(want, got.body) {
		t.Errorf("build success: %d, body (-want +got):\n%s", got.status, cmp.Diff(want, got.body))
	}

	before := f.pipeline(t, id)
	got = f.report(t, id, execToken, `{"state":"running","workflow":"build"}`)
	if got.status != http.StatusConflict || !strings.Contains(got.message(), "success") || !strings.Contains(got.message(), "running") {
		t.Errorf("backwards: %d %s, want 409 naming success and running", got.status, got.raw)
	}
	got = f.report(t, id, execToken, `{"state":"failed","workflow":"build"}`)
	if got.status != http.StatusConflict || !strings.Contains(got.message(), "cannot go from success to failed") {
		t.Errorf("terminal to terminal: %d %s, want 409 naming success and failed", got.status, got.raw)
	}
	if diff := cmp.Diff(before, f.pipeline(t, id)); diff != "" {
		t.Errorf("refused reports changed the pipeline (-before +after):\n%s", diff)
	}
	if n := len(f.queue.all()); n != 2 {
		t.Errorf("requests = %d, want running and build's success", n)
	}

	got = f.report(t, id, execToken, `{"state":"failed","workflow":"test","description":"2 tests failed"}`)
	if got.status != http.StatusOK || got.body["status"] != "failed" {
		t.Errorf("test failed: %d %s, want 200 with the pipeline failed", got.status, got.raw)
	}
	reqs := f.queue.all()
	last := reqs[len(reqs)-1]
	if last.State != "failed" || !slices.Equal(last.Workflows, []string{"test"}) || last.Description != "2 tests failed" {
		t.Errorf("last request = %+v, want failed for [test] with the description", last)
	}
}

func TestReportTargetURL(t *testing.T) {
	for _, tc := range []struct {
		name      string
		publicURL string
		host      string
		body      string
		want      string // %s is the pipeline id
	}{
		{"public URL", "https://ci.example.com", "", `{"state":"running"}`, "https://ci.example.com/pipelines/%s"},
		{"public URL with a slash", "https://ci.example.com/forgelink/", "", `{"state":"running"}`, "https://ci.example.com/forgelink/pipelines/%s"},
		{"no public URL: the request's host", "", "abc123.execute-api.eu-west-1.amazonaws.com", `{"state":"running"}`,
			"https://abc123.execute-api.eu-west-1.amazonaws.com/pipelines/%s"},
		{"given", "https://ci.example.com", "", `{"state":"running","target_url":"https://executor.example.com/runs/42"}`, "https://executor.example.com/runs/42"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newReportFixture(t, tc.publicURL)
			got := f.send(t, http.MethodPost, f.this.ID, execToken, strings.NewReader(tc.body), func(r *http.Request) {
				if tc.host != "" {
					r.Host = tc.host
				}
			})
			if got.status != http.StatusOK {
				t.Fatalf("report: %d %s", got.status, got.raw)
			}
			want := tc.want
			if strings.Contains(want, "%s") {
				want = strings.ReplaceAll(want, "%s", f.this.ID)
			}
			calls := f.reporter.all()
			wantCall := []reportCall{{f.this.ID, statussvc.Report{State: forgelink.StatusRunning, TargetURL: want}}}
			if diff := cmp.Diff(wantCall, calls); diff != "" {
				t.Errorf("reports (-want +got):\n%s", diff)
			}
			if reqs := f.queue.all(); len(reqs) != 1 || reqs[0].TargetURL != want {
				t.Errorf("requests = %+v, want one linking to %s", reqs, want)
			}
		})
	}
}

func TestReportPassesFieldsThrough(t *testing.T) {
	f := newReportFixture(t, "https://ci.example.com")
	got := f.report(t, f.this.ID, execToken, `{"state":"canceled","workflow":"test","target_url":"http://executor.local/x","description":"stopped by octocat"}`)
	if got.status != http.StatusOK {
		t.Fatalf("report: %d %s", got.status, got.raw)
	}
	want := []reportCall{{f.this.ID, statussvc.Report{State: forgelink.StatusCanceled, Workflow: "test",
		TargetURL: "http://executor.local/x", Description: "stopped by octocat"}}}
	if diff := cmp.Diff(want, f.reporter.all()); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
}

func TestReportMethods(t *testing.T) {
	f := newReportFixture(t, "https://ci.example.com")
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		got := f.send(t, m, f.this.ID, reportAPIToken, strings.NewReader(`{"state":"running"}`))
		if got.status != http.StatusMethodNotAllowed || got.header.Get("Allow") != http.MethodPost || got.message() == "" {
			t.Errorf("%s: %d Allow %q %s, want 405 allowing POST", m, got.status, got.header.Get("Allow"), got.raw)
		}
	}
	f.unchanged(t)
}

// stubReporter answers every report with err.
type stubReporter struct{ err error }

func (s stubReporter) Report(ctx context.Context, id string, r statussvc.Report) (*forgelink.Pipeline, bool, error) {
	return nil, false, s.err
}

func TestReportServiceErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		want       int
		message    string
		retryAfter string
	}{
		{"internal", io.ErrUnexpectedEOF, http.StatusInternalServerError, "internal error", ""},
		{"transient", forgelink.Errorf(forgelink.Transient, "queue unavailable"), http.StatusServiceUnavailable, "queue unavailable", "5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newReportFixture(t, "https://ci.example.com")
			h := &statusapi.Reports{Reporter: stubReporter{tc.err}, Tokens: f.st,
				Auth: apiauth.NewStaticToken(reportAPIToken, apiauth.User{Login: "octocat"}), Log: discardLog()}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/api/v2/pipeline/"+f.this.ID+"/status", strings.NewReader(`{"state":"running"}`))
			req.Header.Set("Circle-Token", execToken)
			h.Handler().ServeHTTP(rec, req)
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			if rec.Code != tc.want || body["message"] != tc.message || rec.Header().Get("Retry-After") != tc.retryAfter {
				t.Errorf("answer = %d %v Retry-After %q, want %d %q Retry-After %q", rec.Code, body, rec.Header().Get("Retry-After"), tc.want, tc.message, tc.retryAfter)
			}
		})
	}
}
