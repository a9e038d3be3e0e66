package intake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"forgelink/shared/bolt"
	"forgelink/shared/forgelink"
	"forgelink/shared/queue"
	"forgelink/shared/sealer"
	"forgelink/shared/sshkeys"
)

const (
	ghSecret = "gh-test-secret"
	bbSecret = "bb-test-secret"
	ghHook   = "hk_gh"
	bbHook   = "hk_bb"
)

// recordingQueue records published messages and fails while fail is set.
type recordingQueue struct {
	mu   sync.Mutex
	msgs []*forgelink.Message
	fail bool
}

func (q *recordingQueue) Publish(ctx context.Context, m *forgelink.Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail {
		return forgelink.E(forgelink.Transient, "queue down", errors.New("connection refused"))
	}
	q.msgs = append(q.msgs, m)
	return nil
}

func (q *recordingQueue) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

type intakeEnv struct {
	store  *bolt.Store
	sealer forgelink.Sealer
	queue  *recordingQueue
	h      http.Handler
	logs   *bytes.Buffer
	now    time.Time
}

func newIntakeEnv(t *testing.T) *intakeEnv { return newIntakeEnvB(t) }

func newIntakeEnvB(t testing.TB) *intakeEnv {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "forgelink.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, err := sealer.OpenKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	env := &intakeEnv{store: st, sealer: sealer.NewEnvelope(keys), queue: &recordingQueue{}, logs: &bytes.Buffer{}, now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	env.addProject(t, "github", "hello-world", ghHook, ghSecret)
	env.addProject(t, "bitbucket", "hello-world", bbHook, bbSecret)
	in := &Intake{
		Store:  st,
		Sealer: env.sealer,
		Inbox:  &queue.SQSInbox{Deliveries: st, Queue: env.queue},
		Now:    func() time.Time { return env.now },
		Log:    slog.New(slog.NewJSONHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	env.h = in.Handler()
	return env
}

func (e *intakeEnv) addProject(t testing.TB, vcs, repo, hookID string, secrets ...string) {
	t.Helper()
	ctx := context.Background()
	slug, err := forgelink.NewSlug(vcs, "octo-org", repo)
	if err != nil {
		t.Fatal(err)
	}
	key, err := sshkeys.Generate(sshkeys.ED25519, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &forgelink.Project{Slug: slug, State: forgelink.Following, HookID: hookID, DefaultBranch: "main",
		DeployKey: forgelink.SSHKey{PublicKey: key.AuthorizedKey}, CreatedAt: e.now, UpdatedAt: e.now}
	for _, s := range secrets {
		sealed, err := e.sealer.Seal(ctx, []byte(s), slug.AAD(forgelink.PurposeWebhookSecret))
		if err != nil {
			t.Fatal(err)
		}
		p.Secrets = append(p.Secrets, forgelink.WebhookSecret{Sealed: sealed})
	}
	if err := e.store.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
}

func corpus(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "corpus", name))
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

// delivery builds a signed GitHub delivery request.
func ghDelivery(path, event, id string, body []byte, secret string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-GitHub-Event", event)
	r.Header.Set("X-GitHub-Delivery", id)
	if secret != "" {
		r.Header.Set("X-Hub-Signature-256", sign(secret, body))
	}
	return r
}

func bbDelivery(path, event, id string, body []byte, secret string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Event-Key", event)
	r.Header.Set("X-Request-UUID", id)
	r.Header.Set("X-Hook-UUID", "{hook}")
	if secret != "" {
		r.Header.Set("X-Hub-Signature", sign(secret, body))
	}
	return r
}

func serve(h http.Handler, r *http.Request) (int, map[string]any) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var body map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	return w.Code, body
}

func TestIntake(t *testing.T) {
	push := corpus(t, "github/push.json")
	bbPush := corpus(t, "bitbucket/repo-push.json")
	form := []byte("payload=" + url.QueryEscape(string(push)))
	tests := []struct {
		name       string
		req        func() *http.Request
		wantStatus int
		wantStored bool // a delivery with the request's id is stored
		wantQueued int
		wantField  string // a key the JSON answer must have
	}{
		{"github push", func() *http.Request { return ghDelivery("/hooks/github/"+ghHook, "push", "d-1", push, ghSecret) }, 202, true, 1, "delivery"},
		{"bitbucket push", func() *http.Request {
			return bbDelivery("/hooks/bitbucket/"+bbHook, "repo:push", "d-1", bbPush, bbSecret)
		}, 202, true, 1, "delivery"},
		{"github form-encoded", func() *http.Request {
			r := ghDelivery("/hooks/github/"+ghHook, "push", "d-1", form, ghSecret)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, 202, true, 1, "delivery"},
		{"bad signature", func() *http.Request { return ghDelivery("/hooks/github/"+ghHook, "push", "d-1", push, "wrong") }, 401, false, 0, "message"},
		{"missing signature", func() *http.Request { return ghDelivery("/hooks/github/"+ghHook, "push", "d-1", push, "") }, 401, false, 0, "message"},
		{"sha1 signature only", func() *http.Request {
			r := ghDelivery("/hooks/github/"+ghHook, "push", "d-1", push, "")
			r.Header.Set("X-Hub-Signature", "sha1=0123456789012345678901234567890123456789")
			return r
		}, 401, false, 0, "message"},
		{"bitbucket signed with github's secret", func() *http.Request {
			return bbDelivery("/hooks/bitbucket/"+bbHook, "repo:push", "d-1", bbPush, ghSecret)
		}, 401, false, 0, "message"},
		{"unknown hook", func() *http.Request { return ghDelivery("/hooks/github/hk_nope", "push", "d-1", push, ghSecret) }, 404, false, 0, "message"},
		{"github hook id under bitbucket path", func() *http.Request {
			return bbDelivery("/hooks/bitbucket/"+ghHook, "repo:push", "d-1", bbPush, ghSecret)
		}, 404, false, 0, "message"},
		{"hook URL without id", func() *http.Request { return ghDelivery("/hooks/github", "push", "d-1", push, ghSecret) }, 404, false, 0, "message"},
		{"truncated JSON", func() *http.Request {
			return ghDelivery("/hooks/github/"+ghHook, "push", "d-1", push[:len(push)/2], ghSecret)
		}, 400, false, 0, "message"},
		{"text/plain body", func() *http.Request {
			r := ghDelivery("/hooks/github/"+ghHook, "push", "d-1", push, ghSecret)
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, 400, false, 0, "message"},
		{"bitbucket form-encoded", func() *http.Request {
			r := bbDelivery("/hooks/bitbucket/"+bbHook, "repo:push", "d-1", form, bbSecret)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, 400, false, 0, "message"},
		{"event forgelink does not act on", func() *http.Request { return ghDelivery("/hooks/github/"+ghHook, "issues", "d-1", push, ghSecret) }, 200, false, 0, "ignored"},
		{"invalid event name", func() *http.Request {
			return ghDelivery("/hooks/github/"+ghHook, "issues<script>", "d-1", push, ghSecret)
		}, 400, false, 0, "message"},
		{"missing delivery id", func() *http.Request { return ghDelivery("/hooks/github/"+ghHook, "push", "", push, ghSecret) }, 400, false, 0, "message"},
		{"github ping", func() *http.Request {
			return ghDelivery("/hooks/github/"+ghHook, "ping", "d-1", corpus(t, "github/ping.json"), ghSecret)
		}, 200, false, 0, "ping"},
		{"bitbucket ping", func() *http.Request {
			return bbDelivery("/hooks/bitbucket/"+bbHook, "diagnostics:ping", "d-1", []byte(`{}`), bbSecret)
		}, 200, false, 0, "ping"},
		{"create event is covered by push", func() *http.Request {
			return ghDelivery("/hooks/github/"+ghHook, "create", "d-1", corpus(t, "github/create.tag.json"), ghSecret)
		}, 200, false, 0, "ignored"},
		{"GET is not allowed", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/hooks/github/"+ghHook, nil) }, 405, false, 0, "message"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newIntakeEnv(t)
			req := tc.req()
			id := req.Header.Get("X-GitHub-Delivery") + req.Header.Get("X-Request-UUID")
			hook := strings.TrimPrefix(strings.TrimPrefix(req.URL.Path, "/hooks/github/"), "/hooks/bitbucket/")
			status, body := serve(env.h, req)
			if status != tc.wantStatus {
				t.Fatalf("status = %d (%v), want %d", status, body, tc.wantStatus)
			}
			if tc.wantField != "" {
				if _, ok := body[tc.wantField]; !ok {
					t.Errorf("answer %v has no %q", body, tc.wantField)
				}
			}
			_, err := env.store.GetDelivery(context.Background(), hook, id)
			if stored := err == nil; stored != tc.wantStored {
				t.Errorf("delivery stored = %v (%v), want %v", stored, err, tc.wantStored)
			}
			if got := env.queue.count(); got != tc.wantQueued {
				t.Errorf("queued %d messages, want %d", got, tc.wantQueued)
			}
		})
	}
}

func TestIntakeDuplicates(t *testing.T) {
	env := newIntakeEnv(t)
	push := corpus(t, "github/push.json")
	status, _ := serve(env.h, ghDelivery("/hooks/github/"+ghHook, "push", "same-id", push, ghSecret))
	if status != http.StatusAccepted {
		t.Fatalf("first delivery: status %d, want 202", status)
	}
	// Not yet decided: a redelivery queues it again (evaluation is idempotent).
	status, body := serve(env.h, ghDelivery("/hooks/github/"+ghHook, "push", "same-id", push, ghSecret))
	if status != http.StatusOK || body["duplicate"] != true || body["requeued"] != true {
		t.Fatalf("redelivery before the decision: %d %v, want 200 {duplicate: true, requeued: true}", status, body)
	}
	if got := env.queue.count(); got != 2 {
		t.Errorf("queued %d messages, want 2", got)
	}
	// Decided: a redelivery is dropped.
	if err := env.store.SetDeliveryState(context.Background(), ghHook, "same-id", forgelink.Decided); err != nil {
		t.Fatal(err)
	}
	status, body = serve(env.h, ghDelivery("/hooks/github/"+ghHook, "push", "same-id", push, ghSecret))
	if status != http.StatusOK || body["duplicate"] != true || body["requeued"] != nil {
		t.Fatalf("redelivery after the decision: %d %v, want 200 {duplicate: true}", status, body)
	}
	if got := env.queue.count(); got != 2 {
		t.Errorf("queued %d messages, want still 2", got)
	}
	// The same delivery id for another hook is another delivery.
	env.addProject(t, "github", "other-repo", "hk_other", ghSecret)
	if status, body := serve(env.h, ghDelivery("/hooks/github/hk_other", "push", "same-id", push, ghSecret)); status != http.StatusAccepted {
		t.Errorf("same id, other hook: %d %v, want 202", status, body)
	}
	// The id is remembered for the dedup window (the store forgets it after; see storetest).
	d, err := env.store.GetDelivery(context.Background(), ghHook, "same-id")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.ExpiresAt.Sub(d.ReceivedAt), forgelink.DeliveryTTL; got != want {
		t.Errorf("delivery kept for %s, want %s", got, want)
	}
}

func TestIntakeQueueFailureLosesNothing(t *testing.T) {
	env := newIntakeEnv(t)
	push := corpus(t, "github/push.json")
	env.queue.fail = true
	status, body := serve(env.h, ghDelivery("/hooks/github/"+ghHook, "push", "d-q", push, ghSecret))
	if status != http.StatusServiceUnavailable {
		t.Fatalf("queue down: %d %v, want 503", status, body)
	}
	d, err := env.store.GetDelivery(context.Background(), ghHook, "d-q")
	if err != nil || d.State != forgelink.Received {
		t.Fatalf("stored delivery = %+v, %v; want state received", d, err)
	}
	env.queue.fail = false
	status, body = serve(env.h, ghDelivery("/hooks/github/"+ghHook, "push", "d-q", push, ghSecret))
	if status != http.StatusOK || body["requeued"] != true {
		t.Fatalf("redelivery after recovery: %d %v, want 200 {requeued: true}", status, body)
	}
	if got := env.queue.count(); got != 1 {
		t.Errorf("queued %d, want 1", got)
	}
}

func TestIntakeSecretRotation(t *testing.T) {
	env := newIntakeEnv(t)
	ctx := context.Background()
	slug, _ := forgelink.NewSlug("github", "octo-org", "hello-world")
	p, err := env.store.GetProject(ctx, slug)
	if err != nil {
		t.Fatal(err)
	}
	newSealed, _ := env.sealer.Seal(ctx, []byte("new-secret"), slug.AAD(forgelink.PurposeWebhookSecret))
	p.Secrets[0].ExpiresAt = env.now.Add(time.Hour) // the old secret's grace period
	p.Secrets = append([]forgelink.WebhookSecret{{Sealed: newSealed}}, p.Secrets...)
	if err := env.store.UpdateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	push := corpus(t, "github/push.json")
	for i, secret := range []string{"new-secret", ghSecret} {
		if status, body := serve(env.h, ghDelivery("/hooks/github/"+ghHook, "push", "rot-"+secret, push, secret)); status != http.StatusAccepted {
			t.Errorf("secret %d during grace: %d %v, want 202", i, status, body)
		}
	}
	env.now = env.now.Add(2 * time.Hour)
	if status, _ := serve(env.h, ghDelivery("/hooks/github/"+ghHook, "push", "rot-late", push, ghSecret)); status != http.StatusUnauthorized {
		t.Errorf("old secret after grace: %d, want 401", status)
	}
}

func TestIntakeBodyLimit(t *testing.T) {
	env := newIntakeEnv(t)
	big := bytes.Repeat([]byte(" "), MaxWebhookBody+1)
	// With a Content-Length over the limit, and streamed without one.
	for _, streamed := range []bool{false, true} {
		var r *http.Request
		if streamed {
			r = ghDelivery("/hooks/github/"+ghHook, "push", "big", nil, "")
			r.Body = io.NopCloser(bytes.NewReader(big))
			r.ContentLength = -1
		} else {
			r = ghDelivery("/hooks/github/"+ghHook, "push", "big", big, ghSecret)
		}
		r.Header.Set("X-Hub-Signature-256", sign(ghSecret, big))
		if status, body := serve(env.h, r); status != http.StatusRequestEntityTooLarge {
			t.Errorf("streamed=%v: %d %v, want 413", streamed, status, body)
		}
	}
	if got := env.queue.count(); got != 0 {
		t.Errorf("queued %d, want 0", got)
	}
}

func TestIntakeLogs(t *testing.T) {
	env := newIntakeEnv(t)
	push := corpus(t, "github/push.json")
	serve(env.h, ghDelivery("/hooks/github/"+ghHook, "push", "log-1", push, ghSecret))
	serve(env.h, ghDelivery("/hooks/github/"+ghHook, "push", "log-2", push, "wrong"))
	lines := strings.Split(strings.TrimSpace(env.logs.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("want a log line per delivery, got %q", env.logs.String())
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if rec["delivery"] != "log-1" && rec["delivery"] != "log-2" {
			t.Errorf("log line without the delivery id: %q", l)
		}
		if strings.Contains(l, ghSecret) {
			t.Errorf("log line contains the webhook secret: %q", l)
		}
	}
}
