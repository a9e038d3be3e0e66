package accessapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"forgelink/shared/accessapi"
	"forgelink/shared/apiauth"
	"forgelink/shared/forgelink"
	"forgelink/shared/orgaccess"
)

// fuzzService records the scope of each sweep and answers an empty
// result: the fuzz target checks the request body's way to a scope, and a
// real sweep (tens of VCS requests) per execution would leave the fuzzer
// a few executions a second. accessapi_test runs the real sweeps.
type fuzzService struct {
	mu     sync.Mutex
	scopes []orgaccess.Scope
}

func (s *fuzzService) Sweep(ctx context.Context, sc orgaccess.Scope) (*orgaccess.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes = append(s.scopes, sc)
	return &orgaccess.Result{Orgs: []orgaccess.Org{}}, nil
}

func (s *fuzzService) Status(ctx context.Context, sc orgaccess.Scope) ([]orgaccess.Org, error) {
	return nil, forgelink.Errorf(forgelink.Internal, "fuzz: no status")
}

func (s *fuzzService) take() []orgaccess.Scope {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.scopes
	s.scopes = nil
	return out
}

// FuzzCheck sends fuzzed bodies to POST /api/v2/org-access/check: never a
// 5xx; a 200 swept exactly once, the scope the body names (an org, a
// project whose slug reads back the same, or everything); a refusal swept
// nothing and has a message.
//
//	go test -run '^$' -fuzz '^FuzzCheck$' -fuzztime 30s ./shared/accessapi
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{"org":"gh/acme"}`, `{"project":"gh/acme/widget"}`, `{"project":"bb/acme/widget"}`, `{}`, ``,
		`{"org":"gh/acme","project":"gh/acme/widget"}`, `{"org":"acme"}`, `{"org":"gh/acme/x"}`,
		`{"project":"github/acme/widget"}`, `{"project":"gh/../widget"}`, `{"project":"gh/acme/wid\u0000get"}`,
		`{"org":"xx/acme"}`, `{"org":1}`, `{"scope":"all"}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	svc := &fuzzService{}
	h := (&accessapi.API{Service: svc, Auth: apiauth.NewStaticToken(token, apiauth.User{Login: "local"}),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler()

	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/api/v2/org-access/check", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Circle-Token", token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%d: answer is not JSON: %q", w.Code, w.Body)
		}
		swept := svc.take()
		if w.Code >= 500 {
			t.Fatalf("%q: %d %s", body, w.Code, w.Body)
		}
		if w.Code != http.StatusOK {
			if msg, _ := out["message"].(string); msg == "" || len(swept) != 0 {
				t.Fatalf("%q: %d %s, and %d sweeps; want a message and none", body, w.Code, w.Body, len(swept))
			}
			return
		}
		if len(swept) != 1 {
			t.Fatalf("%q: 200 after %d sweeps, want 1", body, len(swept))
		}
		var req struct{ Org, Project string }
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &req); err != nil {
				t.Fatalf("%q accepted but it is not a JSON object: %v", body, err)
			}
		}
		want, err := orgaccess.ParseScope(req.Org, req.Project)
		if err != nil {
			t.Fatalf("%q accepted, but ParseScope refuses it: %v", body, err)
		}
		got := swept[0]
		if got.VCS != want.VCS || got.Org != want.Org || (got.Project == nil) != (want.Project == nil) || got.Project != nil && *got.Project != *want.Project {
			t.Fatalf("%q: swept %+v, want %+v", body, got, want)
		}
		if p := got.Project; p != nil {
			again, err := forgelink.ParseSlug(p.String())
			if err != nil || again != *p {
				t.Fatalf("project %+v reads back as %+v, %v", *p, again, err)
			}
		}
	})
}
