package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"forgelink/infra/local/server"
	"forgelink/shared/config"
	"forgelink/shared/forgelink"
	"forgelink/shared/vcsfake"
)

const apiToken = "fl_e2e_token_0123456789"

// fakeVCS is what the end-to-end test needs of either fake.
type fakeVCS interface {
	DeployKeys(fullName string) []vcsfake.Key
	Hooks(fullName string) []vcsfake.Hook
	DeleteKeyDirect(fullName, id string) bool
	DeleteHookDirect(fullName, id string) bool
	FailNext(method, pathSuffix string, status, n int)
}

// stack is the one-process server wired to fake GitHub and Bitbucket APIs.
type stack struct {
	url      string
	gh       *vcsfake.GitHub
	bb       *vcsfake.Bitbucket
	mu       sync.Mutex
	consumed []*forgelink.Message
	arrived  chan struct{}
	srv      *server.Server
	// logs is everything the server logged (debug level and up); vcs is
	// every request the server made to the fakes.
	logs *syncBuffer
	vcs  *vcsLog
}

// newStack records intake's messages instead of running the trigger function.
func newStack(t *testing.T) *stack { return newStackWith(t, true) }

// newTriggerStack runs the trigger function on intake's messages, as make run does.
func newTriggerStack(t *testing.T) *stack { return newStackWith(t, false) }

func newStackWith(t *testing.T, record bool) *stack { return newStackEnv(t, record, nil) }

// newStackEnv is newStackWith with more of the server's environment, which
// may depend on the fakes and the server's URL (s.url).
func newStackEnv(t *testing.T, record bool, more func(s *stack) map[string]string) *stack {
	t.Helper()
	s := &stack{gh: vcsfake.NewGitHub(t), bb: vcsfake.NewBitbucket(t), arrived: make(chan struct{}, 100), logs: &syncBuffer{}, vcs: &vcsLog{}}
	s.gh.AddRepo("octo-org/hello-world", "main", false)
	s.bb.AddRepo("octo-org/hello-world", "master", true)

	var h http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	s.url = ts.URL
	env := map[string]string{
		"FORGELINK_PUBLIC_URL":     ts.URL,
		"FORGELINK_DATA":           t.TempDir(),
		"FORGELINK_API_TOKEN":      apiToken,
		"GITHUB_API_URL":           s.gh.URL,
		"GITHUB_TOKEN":             s.gh.Token,
		"BITBUCKET_API_URL":        s.bb.URL,
		"BITBUCKET_TOKEN":          s.bb.Token,
		"GITHUB_OAUTH_CLIENT_ID":   "Iv1.e2e0123456789",
		"FORGELINK_SWEEP_INTERVAL": "0", // sweeps run on demand here
	}
	if more != nil {
		maps.Copy(env, more(s))
	}
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	opts := server.Options{RetryBackoff: 10 * time.Millisecond, HTTPClient: &http.Client{Timeout: 20 * time.Second, Transport: s.vcs}}
	if record {
		opts.Consume = func(ctx context.Context, m *forgelink.Message) error {
			s.mu.Lock()
			s.consumed = append(s.consumed, m)
			s.mu.Unlock()
			s.arrived <- struct{}{}
			return nil
		}
	}
	srv, err := server.New(cfg, slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), opts)
	if err != nil {
		t.Fatal(err)
	}
	s.srv = srv
	t.Cleanup(func() { srv.Close() })
	h = srv.Handler()
	return s
}

// call sends an API request with the token and decodes the JSON answer.
func (s *stack) call(t *testing.T, method, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.url+path, nil)
	req.Header.Set("Circle-Token", apiToken)
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %q", req.Method, req.URL.Path, b)
	}
	return resp.StatusCode, body
}

// waitConsumed waits until n messages have been consumed in all.
func (s *stack) waitConsumed(t *testing.T, n int) []*forgelink.Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		got := append([]*forgelink.Message(nil), s.consumed...)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-s.arrived:
		case <-deadline:
			t.Fatalf("consumed %d messages, want %d", len(got), n)
		}
	}
}

func corpus(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "corpus", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

type provider struct {
	name       string
	slugPath   string // v1.1 path part
	fake       func(s *stack) fakeVCS
	deliver    func(hookURL, secret, event, id string, body []byte) *http.Request
	pushEvent  string
	pushCorpus string
	prEvent    string
	prCorpus   string
}

var providers = []provider{
	{
		name: "github", slugPath: "gh/octo-org/hello-world",
		fake: func(s *stack) fakeVCS { return s.gh },
		deliver: func(hookURL, secret, event, id string, body []byte) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, hookURL, bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("X-GitHub-Event", event)
			r.Header.Set("X-GitHub-Delivery", id)
			r.Header.Set("X-Hub-Signature-256", sign(secret, body))
			return r
		},
		pushEvent: "push", pushCorpus: "github/push.json", prEvent: "pull_request", prCorpus: "github/pull_request.opened.json",
	},
	{
		name: "bitbucket", slugPath: "bb/octo-org/hello-world",
		fake: func(s *stack) fakeVCS { return s.bb },
		deliver: func(hookURL, secret, event, id string, body []byte) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, hookURL, bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("X-Event-Key", event)
			r.Header.Set("X-Request-UUID", id)
			r.Header.Set("X-Hook-UUID", "{00000000-0000-0000-0000-000000000000}")
			r.Header.Set("X-Attempt-Number", "1")
			r.Header.Set("X-Hub-Signature", sign(secret, body))
			return r
		},
		pushEvent: "repo:push", pushCorpus: "bitbucket/repo-push.json", prEvent: "pullrequest:created", prCorpus: "bitbucket/pullrequest-created.json",
	},
}

// TestFollowAndDeliver follows a repository on each VCS, checks what the
// fake VCS recorded, repairs a deleted key and hook, posts signed deliveries
// with the secret the VCS was given, and unfollows.
func TestFollowAndDeliver(t *testing.T) {
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			s := newStack(t)
			fake := p.fake(s)
			const repo = "octo-org/hello-world"
			followPath := "/api/v1.1/project/" + p.slugPath + "/follow"

			// No token, no follow.
			req, _ := http.NewRequest(http.MethodPost, s.url+followPath, nil)
			if status, _ := do(t, req); status != http.StatusUnauthorized {
				t.Fatalf("follow without token: %d, want 401", status)
			}

			status, body := s.call(t, http.MethodPost, followPath)
			if status != http.StatusCreated {
				t.Fatalf("follow: %d %v, want 201", status, body)
			}
			hookURL, _ := body["hook_url"].(string)
			pub := body["deploy_key"].(map[string]any)["public_key"].(string)
			keys, hooks := fake.DeployKeys(repo), fake.Hooks(repo)
			if len(keys) != 1 || !keys[0].ReadOnly || !bytes.HasPrefix([]byte(pub), []byte(keys[0].Key)) {
				t.Fatalf("deploy keys on the VCS = %+v, want one read-only key %q", keys, pub)
			}
			if len(hooks) != 1 || hooks[0].URL != hookURL || hooks[0].Secret == "" || !hooks[0].Active {
				t.Fatalf("hooks on the VCS = %+v, want one active hook to %s with a secret", hooks, hookURL)
			}
			secret := hooks[0].Secret

			// Following again creates nothing new.
			if status, body := s.call(t, http.MethodPost, followPath); status != http.StatusOK {
				t.Fatalf("second follow: %d %v, want 200", status, body)
			}
			if k, h := len(fake.DeployKeys(repo)), len(fake.Hooks(repo)); k != 1 || h != 1 {
				t.Fatalf("after second follow: %d keys, %d hooks, want 1 and 1", k, h)
			}

			// Someone deletes both on the VCS; following repairs them with the same key and secret.
			fake.DeleteKeyDirect(repo, keys[0].ID)
			fake.DeleteHookDirect(repo, hooks[0].ID)
			if status, body := s.call(t, http.MethodPost, followPath); status != http.StatusOK {
				t.Fatalf("repairing follow: %d %v, want 200", status, body)
			}
			keys, hooks = fake.DeployKeys(repo), fake.Hooks(repo)
			if len(keys) != 1 || len(hooks) != 1 || hooks[0].Secret != secret || hooks[0].URL != hookURL {
				t.Fatalf("after repair: keys %+v hooks %+v, want one each with the old secret and URL", keys, hooks)
			}

			// A signed push is accepted and reaches the queue consumer once.
			push := corpus(t, p.pushCorpus)
			if status, body := do(t, p.deliver(hookURL, secret, p.pushEvent, "e2e-1", push)); status != http.StatusAccepted || body["delivery"] != "e2e-1" {
				t.Fatalf("push delivery: %d %v, want 202 {delivery: e2e-1}", status, body)
			}
			if status, body := do(t, p.deliver(hookURL, secret, p.pushEvent, "e2e-1", push)); status != http.StatusOK || body["duplicate"] != true {
				t.Fatalf("redelivery: %d %v, want 200 {duplicate: true}", status, body)
			}
			if status, _ := do(t, p.deliver(hookURL, "not-the-secret", p.pushEvent, "e2e-bad", push)); status != http.StatusUnauthorized {
				t.Fatalf("badly signed delivery: %d, want 401", status)
			}
			pr := corpus(t, p.prCorpus)
			if status, body := do(t, p.deliver(hookURL, secret, p.prEvent, "e2e-2", pr)); status != http.StatusAccepted {
				t.Fatalf("pull request delivery: %d %v, want 202", status, body)
			}
			// Messages arrive in order: had the duplicate been enqueued, it would come second.
			got := s.waitConsumed(t, 2)
			if len(got) != 2 || got[0].DeliveryID != "e2e-1" || got[1].DeliveryID != "e2e-2" {
				t.Fatalf("consumed %+v, want e2e-1 then e2e-2", got)
			}
			if len(got[0].Events) == 0 || got[0].Events[0].Type != forgelink.BranchPush {
				t.Errorf("push message events = %+v, want a branch push", got[0].Events)
			}
			if len(got[1].Events) != 1 || got[1].Events[0].PR == nil || got[1].Events[0].PR.Action != forgelink.PROpened {
				t.Errorf("PR message events = %+v, want one opened PR", got[1].Events)
			}

			// Unfollow removes both from the VCS; the hook URL is dead.
			if status, body := s.call(t, http.MethodDelete, followPath); status != http.StatusOK || body["following"] != false {
				t.Fatalf("unfollow: %d %v, want 200 {following: false}", status, body)
			}
			if k, h := len(fake.DeployKeys(repo)), len(fake.Hooks(repo)); k != 0 || h != 0 {
				t.Fatalf("after unfollow: %d keys, %d hooks on the VCS, want none", k, h)
			}
			if status, _ := do(t, p.deliver(hookURL, secret, p.pushEvent, "e2e-3", push)); status != http.StatusNotFound {
				t.Errorf("delivery after unfollow: %d, want 404", status)
			}
			if status, _ := s.call(t, http.MethodDelete, followPath); status != http.StatusNotFound {
				t.Errorf("second unfollow: %d, want 404", status)
			}
		})
	}
}

// TestFollowFailingHalfwayLeavesNothing makes hook creation fail after the
// deploy key was added: the key is removed again, no project remains, and
// the next follow succeeds with exactly one key and one hook.
func TestFollowFailingHalfwayLeavesNothing(t *testing.T) {
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			s := newStack(t)
			fake := p.fake(s)
			const repo = "octo-org/hello-world"
			followPath := "/api/v1.1/project/" + p.slugPath + "/follow"

			fake.FailNext(http.MethodPost, "/hooks", http.StatusInternalServerError, 1)
			status, body := s.call(t, http.MethodPost, followPath)
			if status < 500 {
				t.Fatalf("follow with failing hook creation: %d %v, want a 5xx", status, body)
			}
			if msg, _ := body["message"].(string); msg == "" {
				t.Errorf("error answer %v has no message", body)
			}
			if k, h := len(fake.DeployKeys(repo)), len(fake.Hooks(repo)); k != 0 || h != 0 {
				t.Fatalf("after failed follow: %d keys, %d hooks on the VCS, want none", k, h)
			}
			if status, _ := s.call(t, http.MethodGet, "/api/v2/project/"+p.slugPath); status != http.StatusNotFound {
				t.Fatalf("project after failed follow: %d, want 404", status)
			}

			if status, body := s.call(t, http.MethodPost, followPath); status != http.StatusCreated {
				t.Fatalf("follow after recovery: %d %v, want 201", status, body)
			}
			if k, h := len(fake.DeployKeys(repo)), len(fake.Hooks(repo)); k != 1 || h != 1 {
				t.Fatalf("after recovery: %d keys, %d hooks, want 1 and 1", k, h)
			}
			status, body = s.call(t, http.MethodGet, "/api/v2/project/"+p.slugPath)
			if status != http.StatusOK || body["following"] != true {
				t.Fatalf("project: %d %v, want following", status, body)
			}
		})
	}
}

// TestFollowErrors checks the answers for requests the VCS or forgelink refuse.
func TestFollowErrors(t *testing.T) {
	s := newStack(t)
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
	}{
		{"unknown repository", http.MethodPost, "/api/v1.1/project/gh/octo-org/nope/follow", http.StatusNotFound},
		{"unknown vcs", http.MethodPost, "/api/v1.1/project/gitlab/octo-org/hello-world/follow", http.StatusBadRequest},
		{"bad repo name", http.MethodPost, "/api/v1.1/project/gh/octo-org/..%2Fetc/follow", http.StatusBadRequest},
		{"unfollow of a project never followed", http.MethodDelete, "/api/v1.1/project/gh/octo-org/hello-world/follow", http.StatusNotFound},
		{"unknown route", http.MethodGet, "/api/v1.1/nope", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.call(t, tc.method, tc.path)
			if status != tc.wantStatus {
				t.Errorf("%s %s: %d %v, want %d", tc.method, tc.path, status, body, tc.wantStatus)
			}
			if _, ok := body["message"]; !ok {
				t.Errorf("answer %v has no message", body)
			}
		})
	}
}

// TestRotateWebhookSecret rotates a project's secret: the hook gets the new
// one, deliveries signed with either verify during the grace period, and a
// VCS refusal leaves the old secret alone.
func TestRotateWebhookSecret(t *testing.T) {
	s := newStack(t)
	const repo, slug = "octo-org/hello-world", "gh/octo-org/hello-world"
	status, body := s.call(t, http.MethodPost, "/api/v1.1/project/"+slug+"/follow")
	if status != http.StatusCreated {
		t.Fatalf("follow: %d %v", status, body)
	}
	hookURL := body["hook_url"].(string)
	oldSecret := s.gh.Hooks(repo)[0].Secret

	status, body = s.call(t, http.MethodPost, "/api/v2/project/"+slug+"/webhook-secret/rotate")
	if status != http.StatusOK || body["previous_secret_valid_until"] == nil {
		t.Fatalf("rotate: %d %v", status, body)
	}
	hooks := s.gh.Hooks(repo)
	if len(hooks) != 1 || hooks[0].Secret == oldSecret || hooks[0].Secret == "" {
		t.Fatalf("hooks after rotation = %+v, want one hook with a new secret", hooks)
	}
	push := corpus(t, "github/push.json")
	for i, secret := range []string{hooks[0].Secret, oldSecret} {
		if status, body := do(t, providers[0].deliver(hookURL, secret, "push", fmt.Sprint("rot-", i), push)); status != http.StatusAccepted {
			t.Errorf("delivery signed with secret %d: %d %v, want 202", i, status, body)
		}
	}

	// GitHub refuses the next rotation: the current secret stays the only valid new one.
	current := hooks[0].Secret
	s.gh.FailNext(http.MethodPatch, "/hooks/"+hooks[0].ID, http.StatusInternalServerError, 1)
	if status, _ := s.call(t, http.MethodPost, "/api/v2/project/"+slug+"/webhook-secret/rotate"); status < 500 {
		t.Fatalf("rotate with GitHub failing: %d, want 5xx", status)
	}
	if got := s.gh.Hooks(repo)[0].Secret; got != current {
		t.Errorf("hook secret changed despite the failure")
	}
	if status, body := do(t, providers[0].deliver(hookURL, current, "push", "rot-after-failure", push)); status != http.StatusAccepted {
		t.Errorf("delivery with the current secret after a failed rotation: %d %v", status, body)
	}
}
