package trigger_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"forgelink/shared/bolt"
	"forgelink/shared/forgelink"
	"forgelink/shared/github"
	"forgelink/shared/queue"
	"forgelink/shared/sshkeys"
	"forgelink/shared/trigger"
	"forgelink/shared/vcsfake"
)

const (
	repo   = "octo-org/hello-world"
	config = "workflows:\n  ci:\n    jobs: [build]\njobs:\n  build:\n    docker: [{image: cimg/base:stable}]\n    steps: [checkout]\n"
)

type env struct {
	store   *bolt.Store
	gh      *vcsfake.GitHub
	handoff *queue.LocalHandoff
	svc     *trigger.Service
	slug    forgelink.Slug
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "forgelink.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	gh := vcsfake.NewGitHub(t)
	gh.AddRepo(repo, "main", false)
	forge, err := github.NewForge(gh.URL, gh.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	slug, _ := forgelink.NewSlug("gh", "octo-org", "hello-world")
	key, _ := sshkeys.Generate(sshkeys.ED25519, rand.Reader)
	if err := st.CreateProject(context.Background(), &forgelink.Project{
		Slug: slug, State: forgelink.Following, HookID: "hk_t", DefaultBranch: "main",
		DeployKey: forgelink.SSHKey{PublicKey: key.AuthorizedKey}, Settings: forgelink.DefaultSettings(),
	}); err != nil {
		t.Fatal(err)
	}
	e := &env{store: st, gh: gh, handoff: &queue.LocalHandoff{}, slug: slug}
	e.svc = &trigger.Service{
		Store:   st,
		Readers: func(ctx context.Context, p *forgelink.Project) (forgelink.RepoReader, error) { return forge, nil },
		Handoff: e.handoff,
	}
	return e
}

func push(id, branch, rev string) *forgelink.Message {
	return &forgelink.Message{
		HookID: "hk_t", DeliveryID: id, Project: "gh/octo-org/hello-world", Event: "push",
		ReceivedAt: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		Events:     []forgelink.Event{{Type: forgelink.BranchPush, Branch: branch, Revision: rev, Message: "change"}},
	}
}

func (e *env) pipelines(t *testing.T) []*forgelink.Pipeline {
	t.Helper()
	ps, _, err := e.store.ListPipelines(context.Background(), e.slug, forgelink.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestHandleTwiceCreatesNothingTwice: a message SQS delivers twice (or a
// retried one) makes one pipeline and one delivery record, and is handed
// off again only by the delivery that created it.
func TestHandleTwiceCreatesNothingTwice(t *testing.T) {
	e := newEnv(t)
	e.gh.SetFile(repo, "aaa111", ".circleci/config.yml", []byte(config))
	m := push("d1", "main", "aaa111")
	for i := 0; i < 2; i++ {
		if err := e.svc.Handle(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if ps := e.pipelines(t); len(ps) != 1 || ps[0].Number != 1 {
		t.Fatalf("pipelines = %+v, want exactly #1", ps)
	}
	recs, _, err := e.store.ListDeliveryRecords(context.Background(), e.slug, forgelink.Page{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("delivery records = %v, %v; want one", recs, err)
	}
	// Another delivery naming the same revision (e.g. a redelivery with a new id) is not handed off again.
	if err := e.svc.Handle(context.Background(), push("d2", "main", "aaa111")); err != nil {
		t.Fatal(err)
	}
	if got := len(e.pipelines(t)); got != 1 {
		t.Errorf("pipelines after a second delivery of the same revision = %d, want 1", got)
	}
	if got := len(e.handoff.Pipelines()); got != 2 {
		t.Errorf("hand-offs = %d, want 2 (the first and its retry)", got)
	}
}

// TestVCSFailureIsRetried: a VCS 5xx while reading the config is Transient,
// nothing is recorded, and the retry succeeds.
func TestVCSFailureIsRetried(t *testing.T) {
	e := newEnv(t)
	e.gh.SetFile(repo, "bbb222", ".circleci/config.yml", []byte(config))
	e.gh.FailNext(http.MethodGet, "/contents/.circleci/config.yml", http.StatusBadGateway, 1)
	err := e.svc.Handle(context.Background(), push("d1", "main", "bbb222"))
	if forgelink.KindOf(err) != forgelink.Transient {
		t.Fatalf("Handle with GitHub 502 = %v (kind %v), want Transient", err, forgelink.KindOf(err))
	}
	if got := len(e.pipelines(t)); got != 0 {
		t.Fatalf("pipelines after failure = %d, want 0", got)
	}
	if recs, _, _ := e.store.ListDeliveryRecords(context.Background(), e.slug, forgelink.Page{}); len(recs) != 0 {
		t.Fatalf("delivery recorded despite the failure: %+v", recs)
	}
	if err := e.svc.Handle(context.Background(), push("d1", "main", "bbb222")); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := len(e.pipelines(t)); got != 1 {
		t.Errorf("pipelines after retry = %d, want 1", got)
	}
}

// TestSQSBatchReportsOnlyFailures runs the trigger function as Lambda does:
// one SQS batch, one message failing (GitHub 500) and one malformed; only
// those two are reported for redelivery.
func TestSQSBatchReportsOnlyFailures(t *testing.T) {
	e := newEnv(t)
	for _, rev := range []string{"r1", "r2", "r3"} {
		e.gh.SetFile(repo, rev, ".circleci/config.yml", []byte(config))
	}
	e.gh.FailNext(http.MethodGet, "/contents/.circleci/config.yml", http.StatusInternalServerError, 1)
	var batch events.SQSEvent
	for i, m := range []*forgelink.Message{push("d1", "main", "r1"), push("d2", "main", "r2"), push("d3", "main", "r3")} {
		b, _ := json.Marshal(m)
		batch.Records = append(batch.Records, events.SQSMessage{MessageId: fmt.Sprint("m", i+1), Body: string(b)})
	}
	batch.Records = append(batch.Records, events.SQSMessage{MessageId: "m-bad", Body: `{"delivery_id":`})
	handler := queue.SQSHandler(e.svc.Handle, queue.SQSOptions{Log: slogDiscard()})
	resp, err := handler(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	sort.Strings(failed)
	if fmt.Sprint(failed) != "[m-bad m1]" {
		t.Errorf("batch item failures = %v, want [m-bad m1]", failed)
	}
	if got := len(e.pipelines(t)); got != 2 {
		t.Errorf("pipelines = %d, want 2 (the messages that succeeded)", got)
	}
}

// TestConcurrentConsumersNumberWithoutGaps: several consumers at once, as
// Lambda runs them, give pipelines numbered 1..n.
func TestConcurrentConsumersNumberWithoutGaps(t *testing.T) {
	e := newEnv(t)
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		rev := fmt.Sprintf("c%02d", i)
		e.gh.SetFile(repo, rev, ".circleci/config.yml", []byte(config))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.svc.Handle(context.Background(), push("d-"+rev, "main", rev))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ps := e.pipelines(t)
	if len(ps) != n {
		t.Fatalf("pipelines = %d, want %d", len(ps), n)
	}
	for i, p := range ps { // newest first
		if want := int64(n - i); p.Number != want {
			t.Errorf("pipeline %d has number %d, want %d", i, p.Number, want)
		}
	}
}

// TestUnfollowedProjectIsDropped: a message for a project unfollowed since
// is done, not retried.
func TestUnfollowedProjectIsDropped(t *testing.T) {
	e := newEnv(t)
	if err := e.store.DeleteProject(context.Background(), e.slug); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Handle(context.Background(), push("d1", "main", "x")); err != nil {
		t.Errorf("Handle = %v, want nil (dropped)", err)
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }
