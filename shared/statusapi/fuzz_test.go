package statusapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"forgelink/shared/apiauth"
	"forgelink/shared/bolt"
	"forgelink/shared/forgelink"
	"forgelink/shared/statusapi"
	"forgelink/shared/statussvc"
)

// fuzzRequests drops status requests: the fuzz target checks the report
// route, and a million reports must not fill a slice.
type fuzzRequests struct{}

func (fuzzRequests) Request(ctx context.Context, r *forgelink.StatusRequest) error { return nil }

// fuzzPipelines hands out the pipeline reports go to: a new one (a new
// commit), with its own executor token, once the last one's workflows are
// all final, so the fuzzer keeps reaching transitions and not only
// "nothing changed".
type fuzzPipelines struct {
	st      *bolt.Store
	current *forgelink.Pipeline
	n       int
}

func (f *fuzzPipelines) next(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	p := &forgelink.Pipeline{Project: "gh/octo-org/hello-world", State: forgelink.PipelineCreated, Trigger: forgelink.TriggerPush,
		Branch: "main", Revision: fmt.Sprintf("%040x", f.n), Workflows: []string{"build", "test"}, CreatedAt: time.Now().UTC()}
	p.InitStatus()
	got, err := f.st.CreatePipeline(ctx, p)
	if err != nil {
		tb.Fatal(err)
	}
	f.n++
	rt := &forgelink.RunnerToken{Hash: forgelink.HashRunnerToken(f.token()), PipelineID: got.ID, ExpiresAt: time.Now().Add(24 * time.Hour), Executor: true}
	if err := f.st.MintRunnerTokens(ctx, rt); err != nil {
		tb.Fatal(err)
	}
	f.current = got
}

// token is the current pipeline's executor token.
func (f *fuzzPipelines) token() string {
	return forgelink.ExecutorTokenPrefix + "fuzz-pipeline-" + strconv.Itoa(f.n)
}

// FuzzReport sends fuzzed report bodies to POST /api/v2/pipeline/{id}/status
// - the real handler and statussvc on bbolt - with the API token, the
// pipeline's executor token, another pipeline's, or none: never a 5xx; a
// 200 answers the pipeline's state as stored; a workflow's final state
// never changes; refusals have a message and change nothing.
//
//	go test -run '^$' -fuzz '^FuzzReport$' -fuzztime 30s ./shared/statusapi
func FuzzReport(f *testing.F) {
	for _, s := range []string{
		`{"state":"running"}`, `{"state":"success","workflow":"build"}`, `{"state":"failed","workflow":"test","description":"2 tests failed"}`,
		`{"state":"canceled","target_url":"https://ci.example.com/p/1"}`, `{"state":"error","workflow":"deploy"}`,
		`{"state":"pending"}`, `{"state":"done"}`, `{"state":1}`, `{}`, ``, `{"state":"running","extra":1}`,
		`{"state":"success","target_url":"javascript:alert(1)"}`,
	} {
		f.Add([]byte(s), uint8(0), false)
		f.Add([]byte(s), uint8(1), false)
	}
	f.Add([]byte(`{"state":"running"}`), uint8(2), false)
	f.Add([]byte(`{"state":"running"}`), uint8(3), false)
	f.Add([]byte(`{"state":"running"}`), uint8(0), true)

	st, err := bolt.Open(filepath.Join(f.TempDir(), "forgelink.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	pipes := &fuzzPipelines{st: st}
	pipes.next(f)
	other := forgelink.ExecutorTokenPrefix + "fuzz-other-pipeline"
	if err := st.MintRunnerTokens(context.Background(), &forgelink.RunnerToken{Hash: forgelink.HashRunnerToken(other), PipelineID: "0d6f7b0e-56a7-4e0b-9d3c-3c2c6f1a9d11", ExpiresAt: time.Now().Add(24 * time.Hour), Executor: true}); err != nil {
		f.Fatal(err)
	}
	svc := &statussvc.Service{Store: st, Requests: fuzzRequests{}, PublicURL: "https://ci.example.com", Log: discardLog()}
	h := (&statusapi.Reports{Reporter: svc, Tokens: st, Auth: apiauth.NewStaticToken(reportAPIToken, apiauth.User{Login: "octocat"}),
		PublicURL: "https://ci.example.com", Log: discardLog()}).Handler()

	f.Fuzz(func(t *testing.T, body []byte, auth uint8, unknown bool) {
		ctx := context.Background()
		id := pipes.current.ID
		if unknown {
			id = "5034460f-c7c4-4c43-9457-de07e2029e7b"
		}
		before, err := st.GetPipeline(ctx, pipes.current.ID)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/api/v2/pipeline/"+id+"/status", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		token := []string{reportAPIToken, pipes.token(), other, "", "not-a-token"}[int(auth)%5]
		if token != "" {
			r.Header.Set("Circle-Token", token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var out struct {
			ID             string            `json:"id"`
			Status         string            `json:"status"`
			WorkflowStatus map[string]string `json:"workflow_status"`
			Message        string            `json:"message"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%d: answer is not JSON: %q", w.Code, w.Body)
		}
		after, err := st.GetPipeline(ctx, pipes.current.ID)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case w.Code >= 500:
			t.Fatalf("%q: %d %s", body, w.Code, w.Body)
		case w.Code == http.StatusOK:
			if unknown || token == other || token == "" || token == "not-a-token" {
				t.Fatalf("%q with token %q on %s: 200 %s", body, token, id, w.Body)
			}
			if out.ID != id || out.Status != string(after.CurrentStatus()) {
				t.Fatalf("answered %+v; stored status %s", out, after.CurrentStatus())
			}
			for _, wf := range after.StatusWorkflows() {
				if out.WorkflowStatus[wf] != string(after.WorkflowState(wf)) {
					t.Fatalf("answered %+v; stored %s: %s", out, wf, after.WorkflowState(wf))
				}
			}
		default:
			if out.Message == "" {
				t.Fatalf("%d without a message: %s", w.Code, w.Body)
			}
			if after.CurrentStatus() != before.CurrentStatus() {
				t.Fatalf("%q refused (%d) but the status moved from %s to %s", body, w.Code, before.CurrentStatus(), after.CurrentStatus())
			}
		}
		final := true
		for _, wf := range before.StatusWorkflows() {
			if s := before.WorkflowState(wf); s.Terminal() && after.WorkflowState(wf) != s {
				t.Fatalf("%q: workflow %s was %s, now %s", body, wf, s, after.WorkflowState(wf))
			}
			final = final && after.WorkflowState(wf).Terminal()
		}
		if final {
			pipes.next(t)
		}
	})
}
