package queue_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"forgelink/shared/bolt"
	"forgelink/shared/forgelink"
	"forgelink/shared/queue"
)

func openStatusStore(t *testing.T, dir string) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(dir, "forgelink.db"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// statusRequest is a request for pipeline of gh/acme/<project>.
func statusRequest(project, pipeline string, state forgelink.StatusState) *forgelink.StatusRequest {
	return &forgelink.StatusRequest{PipelineID: pipeline, Project: "gh/acme/" + project,
		Revision: "366701fde727cb7a9e7f21eb88264f59f6f9b89c", State: string(state),
		TargetURL: "https://ci.example.com/pipelines/" + pipeline, RequestedAt: time.Now().UTC().Truncate(time.Millisecond)}
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func statusEntries(t *testing.T, st *bolt.Store) []*forgelink.StatusQueueEntry {
	t.Helper()
	es, err := st.StatusEntries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// consumed records the requests a consumer saw.
type consumed struct {
	mu   sync.Mutex
	reqs []forgelink.StatusRequest
	at   []time.Time
}

func (c *consumed) add(r *forgelink.StatusRequest) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, *r)
	c.at = append(c.at, time.Now())
	return len(c.reqs)
}

func (c *consumed) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.reqs)
}

func (c *consumed) all() []forgelink.StatusRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.reqs)
}

func TestLocalStatusStoredAndResumed(t *testing.T) {
	dir := t.TempDir()
	st := openStatusStore(t, dir)
	release := make(chan struct{})
	q, err := queue.NewLocalStatus(t.Context(), st, func(ctx context.Context, r *forgelink.StatusRequest) error {
		<-release
		return forgelink.WithRetryAfter(errors.New("process stopping"), time.Millisecond)
	}, nil, queue.LocalOptions{Workers: 2, MaxReceives: 1000, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	reqs := []*forgelink.StatusRequest{
		statusRequest("widget", "p1", forgelink.StatusPending),
		statusRequest("widget", "p1", forgelink.StatusRunning),
		statusRequest("gadget", "p2", forgelink.StatusSuccess),
	}
	reqs[2].Workflows = []string{"build", "test"}
	reqs[2].Description = "all green"
	for i, r := range reqs {
		if err := q.Request(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		// Stored once Request returns, while the consumer still hangs.
		if n := len(statusEntries(t, st)); n != i+1 {
			t.Fatalf("stored entries after %d requests = %d", i+1, n)
		}
	}
	for _, e := range statusEntries(t, st) {
		if e.Dead {
			t.Errorf("entry %+v is dead", e)
		}
	}
	close(release)
	q.Close()
	if n := len(statusEntries(t, st)); n != len(reqs) {
		t.Fatalf("stored entries after Close = %d, want %d (every request failed)", n, len(reqs))
	}
	st.Close()

	st = openStatusStore(t, dir)
	defer st.Close()
	var seen consumed
	q, err = queue.NewLocalStatus(t.Context(), st, func(ctx context.Context, r *forgelink.StatusRequest) error {
		seen.add(r)
		return nil
	}, nil, queue.LocalOptions{Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	eventually(t, "the resumed requests", func() bool { return seen.count() == len(reqs) })
	eventually(t, "the entries to be finished", func() bool { return len(statusEntries(t, st)) == 0 })
	time.Sleep(20 * time.Millisecond)
	got := seen.all()
	key := func(r forgelink.StatusRequest) string { return r.Key() }
	slices.SortFunc(got, func(a, b forgelink.StatusRequest) int { return cmpString(key(a), key(b)) })
	var want []forgelink.StatusRequest
	for _, r := range reqs {
		want = append(want, *r)
	}
	slices.SortFunc(want, func(a, b forgelink.StatusRequest) int { return cmpString(key(a), key(b)) })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resumed requests (-want +got):\n%s", diff)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestLocalStatusHonoursRetryAfter(t *testing.T) {
	st := openStatusStore(t, t.TempDir())
	defer st.Close()
	const retryAfter = 250 * time.Millisecond
	var (
		mu       sync.Mutex
		failedAt time.Time
		retryAt  time.Time
	)
	done := make(chan struct{})
	var calls consumed
	q, err := queue.NewLocalStatus(t.Context(), st, func(ctx context.Context, r *forgelink.StatusRequest) error {
		mu.Lock()
		defer mu.Unlock()
		if calls.add(r) == 1 {
			failedAt = time.Now()
			return forgelink.WithRetryAfter(forgelink.Errorf(forgelink.Transient, "GitHub rate limit exceeded"), retryAfter)
		}
		retryAt = time.Now()
		close(done)
		return nil
	}, nil, queue.LocalOptions{Backoff: time.Millisecond, MaxBackoff: time.Millisecond, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Request(t.Context(), statusRequest("widget", "p1", forgelink.StatusSuccess)); err != nil {
		t.Fatal(err)
	}
	// While it waits, the entry records the failed try and when it is due.
	eventually(t, "the failed try to be recorded", func() bool {
		es := statusEntries(t, st)
		return len(es) == 1 && es[0].Attempts == 1
	})
	mu.Lock()
	first := failedAt
	mu.Unlock()
	if es := statusEntries(t, st); len(es) == 1 {
		e := es[0]
		if e.LastError != "GitHub rate limit exceeded" || e.DueAt.Before(first.Add(retryAfter-10*time.Millisecond)) || e.Dead {
			t.Errorf("waiting entry = %+v, want attempt 1, the error, due %v after the failure", e, retryAfter)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the request was not retried")
	}
	mu.Lock()
	gap := retryAt.Sub(failedAt)
	mu.Unlock()
	if gap < retryAfter-5*time.Millisecond {
		t.Errorf("retried %v after the failure, want no sooner than the Retry-After %v (backoff alone is 1ms)", gap, retryAfter)
	}
	eventually(t, "the entry to be finished", func() bool { return len(statusEntries(t, st)) == 0 })
	if n := calls.count(); n != 2 {
		t.Errorf("consumer calls = %d, want 2", n)
	}
}

func TestLocalStatusNoHeadOfLineBlocking(t *testing.T) {
	st := openStatusStore(t, t.TempDir())
	defer st.Close()
	release := make(chan struct{})
	var (
		mu               sync.Mutex
		hanging, maxHang int
	)
	var healthy consumed
	q, err := queue.NewLocalStatus(t.Context(), st, func(ctx context.Context, r *forgelink.StatusRequest) error {
		if r.Project == "gh/acme/hanging" {
			mu.Lock()
			hanging++
			maxHang = max(maxHang, hanging)
			mu.Unlock()
			<-release
			mu.Lock()
			hanging--
			mu.Unlock()
			return nil
		}
		healthy.add(r)
		return nil
	}, nil, queue.LocalOptions{Workers: 4, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	defer close(release)
	for i := range 8 {
		if err := q.Request(t.Context(), statusRequest("hanging", fmt.Sprint("h", i), forgelink.StatusPending)); err != nil {
			t.Fatal(err)
		}
	}
	const n = 12
	for i := range n {
		if err := q.Request(t.Context(), statusRequest("healthy", fmt.Sprint("ok", i), forgelink.StatusPending)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the healthy project's requests", func() bool { return healthy.count() == n })
	mu.Lock()
	defer mu.Unlock()
	if maxHang > 2 {
		t.Errorf("the hanging project held %d of 4 workers, want at most half", maxHang)
	}
	if maxHang == 0 {
		t.Errorf("the hanging project's requests never ran")
	}
}

func TestLocalStatusDeadLetter(t *testing.T) {
	dir := t.TempDir()
	st := openStatusStore(t, dir)
	type dead struct {
		pipeline string
		attempts int
		message  string
	}
	deads := make(chan dead, 10)
	var calls consumed
	q, err := queue.NewLocalStatus(t.Context(), st, func(ctx context.Context, r *forgelink.StatusRequest) error {
		calls.add(r)
		return forgelink.Errorf(forgelink.Transient, "GitHub is unavailable (HTTP 502)")
	}, func(ctx context.Context, r *forgelink.StatusRequest, attempts int, err error) {
		deads <- dead{r.PipelineID, attempts, forgelink.MessageOf(err)}
	}, queue.LocalOptions{MaxReceives: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Request(t.Context(), statusRequest("widget", "p1", forgelink.StatusFailed)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-deads:
		if want := (dead{"p1", 3, "GitHub is unavailable (HTTP 502)"}); got != want {
			t.Errorf("dead letter = %+v, want %+v", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no dead letter")
	}
	time.Sleep(50 * time.Millisecond) // a further try would come within a few ms
	if n := calls.count(); n != 3 {
		t.Errorf("consumer calls = %d, want MaxReceives (3)", n)
	}
	if n := len(deads); n != 0 {
		t.Errorf("%d more dead letters, want the one", n)
	}
	es := statusEntries(t, st)
	if len(es) != 1 || !es[0].Dead || es[0].Attempts != 3 || es[0].LastError != "GitHub is unavailable (HTTP 502)" || es[0].Message.PipelineID != "p1" {
		t.Fatalf("stored entries = %+v, want the dead one with its attempts and last error", es)
	}
	q.Close()
	st.Close()

	// A restart does not resume the dead letter.
	st = openStatusStore(t, dir)
	defer st.Close()
	var after consumed
	q, err = queue.NewLocalStatus(t.Context(), st, func(ctx context.Context, r *forgelink.StatusRequest) error {
		after.add(r)
		return nil
	}, nil, queue.LocalOptions{Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Request(t.Context(), statusRequest("widget", "p2", forgelink.StatusPending)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a live request after the restart", func() bool { return after.count() == 1 })
	time.Sleep(20 * time.Millisecond)
	if got := after.all(); len(got) != 1 || got[0].PipelineID != "p2" {
		t.Errorf("consumed after the restart: %+v, want only p2 (the dead letter stays dead)", got)
	}
	if es := statusEntries(t, st); len(es) != 1 || !es[0].Dead {
		t.Errorf("stored entries after the restart = %+v, want the dead letter kept", es)
	}
}

func TestLocalStatusSameRequestOnce(t *testing.T) {
	t.Run("in flight", func(t *testing.T) {
		st := openStatusStore(t, t.TempDir())
		defer st.Close()
		entered, release := make(chan struct{}, 10), make(chan struct{})
		var calls consumed
		q, err := queue.NewLocalStatus(t.Context(), st, func(ctx context.Context, r *forgelink.StatusRequest) error {
			calls.add(r)
			entered <- struct{}{}
			<-release
			return nil
		}, nil, queue.LocalOptions{Workers: 4, Log: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		r := statusRequest("widget", "p1", forgelink.StatusRunning)
		r.Workflows = []string{"build"}
		if err := q.Request(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		<-entered
		for range 3 {
			again := *r
			if err := q.Request(t.Context(), &again); err != nil {
				t.Fatal(err)
			}
		}
		// Another workflow or state is another request.
		other := *r
		other.Workflows = []string{"test"}
		if err := q.Request(t.Context(), &other); err != nil {
			t.Fatal(err)
		}
		<-entered
		close(release)
		eventually(t, "the entries to be finished", func() bool { return len(statusEntries(t, st)) == 0 })
		time.Sleep(20 * time.Millisecond)
		got := calls.all()
		if len(got) != 2 || !slices.Equal(got[0].Workflows, []string{"build"}) || !slices.Equal(got[1].Workflows, []string{"test"}) {
			t.Errorf("consumed %+v, want build's request once and test's once", got)
		}
	})

	t.Run("waiting for its retry", func(t *testing.T) {
		st := openStatusStore(t, t.TempDir())
		defer st.Close()
		const retryAfter = 200 * time.Millisecond
		var calls consumed
		q, err := queue.NewLocalStatus(t.Context(), st, func(ctx context.Context, r *forgelink.StatusRequest) error {
			if calls.add(r) == 1 {
				return forgelink.WithRetryAfter(forgelink.Errorf(forgelink.Transient, "rate limited"), retryAfter)
			}
			return nil
		}, nil, queue.LocalOptions{Backoff: time.Millisecond, Log: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		r := statusRequest("widget", "p1", forgelink.StatusSuccess)
		if err := q.Request(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the failed try to be recorded", func() bool {
			es := statusEntries(t, st)
			return len(es) == 1 && es[0].Attempts == 1
		})
		again := *r
		if err := q.Request(t.Context(), &again); err != nil {
			t.Fatal(err)
		}
		if es := statusEntries(t, st); len(es) != 1 || es[0].Attempts != 1 {
			t.Errorf("stored entries after a duplicate = %+v, want the waiting one untouched (attempt 1)", es)
		}
		time.Sleep(retryAfter / 2)
		if n := calls.count(); n != 1 {
			t.Errorf("consumer calls before the retry is due = %d, want 1 (the duplicate ran at once)", n)
		}
		eventually(t, "the retry", func() bool { return calls.count() == 2 })
		eventually(t, "the entry to be finished", func() bool { return len(statusEntries(t, st)) == 0 })
		time.Sleep(20 * time.Millisecond)
		if n := calls.count(); n != 2 {
			t.Errorf("consumer calls = %d, want the failure and one retry", n)
		}
	})
}

// visibilityLog is a queue.SQSVisibilityAPI that records its calls.
type visibilityLog struct {
	mu    sync.Mutex
	calls []sqs.ChangeMessageVisibilityInput
	err   error
}

var _ queue.SQSVisibilityAPI = (*visibilityLog)(nil)

func (v *visibilityLog) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, *in)
	return &sqs.ChangeMessageVisibilityOutput{}, v.err
}

func (v *visibilityLog) all() []sqs.ChangeMessageVisibilityInput {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.calls)
}

const statusQueueURL = "https://sqs.eu-west-1.amazonaws.com/123456789012/forgelink-status"

func sqsRecord(id, body string, receives int) events.SQSMessage {
	return events.SQSMessage{MessageId: id, ReceiptHandle: "rh-" + id, Body: body,
		Attributes: map[string]string{"ApproximateReceiveCount": fmt.Sprint(receives)}}
}

func requestBody(pipeline string) string {
	return `{"pipeline_id":"` + pipeline + `","project":"gh/acme/widget","revision":"366701fde727cb7a9e7f21eb88264f59f6f9b89c","state":"success"}`
}

func failedIDs(resp events.SQSEventResponse) []string {
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

func TestSQSStatusHandlerRetries(t *testing.T) {
	transient := forgelink.Errorf(forgelink.Transient, "GitHub is unavailable (HTTP 502)")
	for _, tc := range []struct {
		name     string
		err      error
		receives int
		backoff  time.Duration
		min, max int32 // visibility timeout bounds, seconds
	}{
		{"Retry-After", forgelink.WithRetryAfter(transient, 30*time.Second), 1, 0, 30, 30},
		{"Retry-After on a later receive", forgelink.WithRetryAfter(transient, 90*time.Second), 4, 0, 90, 90},
		{"Retry-After over an hour is capped", forgelink.WithRetryAfter(transient, 3*time.Hour), 1, 0, 3600, 3600},
		// Rounded up: a claim's remaining lease of 300ms must not make the
		// message visible at once, burning receives until it is dead.
		{"sub-second Retry-After rounds up", forgelink.WithRetryAfter(transient, 300*time.Millisecond), 1, 0, 1, 1},
		{"fractional Retry-After rounds up", forgelink.WithRetryAfter(transient, 59700*time.Millisecond), 2, 0, 60, 60},
		{"backoff, first receive", transient, 1, 0, 3, 5},
		{"backoff doubles per receive", transient, 3, 0, 10, 20},
		{"backoff is capped at 15 minutes", transient, 4, 10 * time.Minute, 450, 900},
		{"no receive count", transient, 0, 0, 3, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 20 { // the backoff is jittered
				vis := &visibilityLog{}
				var calls consumed
				deads := 0
				h := queue.SQSStatusHandler(func(ctx context.Context, r *forgelink.StatusRequest) error {
					calls.add(r)
					return tc.err
				}, queue.SQSStatusOptions{Visibility: vis, QueueURL: statusQueueURL, Backoff: tc.backoff, MaxReceives: 5, Log: quietLog(),
					OnDead: func(ctx context.Context, r *forgelink.StatusRequest, attempts int, err error) { deads++ }})
				rec := sqsRecord("m1", requestBody("p1"), tc.receives)
				if tc.receives == 0 {
					rec.Attributes = nil
				}
				resp, err := h(t.Context(), events.SQSEvent{Records: []events.SQSMessage{rec}})
				if err != nil {
					t.Fatalf("handler: %v", err)
				}
				if got := failedIDs(resp); !slices.Equal(got, []string{"m1"}) {
					t.Fatalf("failures = %v, want [m1]", got)
				}
				got := vis.all()
				if len(got) != 1 {
					t.Fatalf("visibility changes = %+v, want one", got)
				}
				c := got[0]
				if *c.QueueUrl != statusQueueURL || *c.ReceiptHandle != "rh-m1" || c.VisibilityTimeout < tc.min || c.VisibilityTimeout > tc.max {
					t.Fatalf("visibility change = queue %s handle %s timeout %d, want the message's, %d..%d s",
						*c.QueueUrl, *c.ReceiptHandle, c.VisibilityTimeout, tc.min, tc.max)
				}
				if calls.count() != 1 || deads != 0 {
					t.Fatalf("consumer calls %d, dead letters %d; want 1 and 0", calls.count(), deads)
				}
			}
		})
	}
}

func TestSQSStatusHandlerBatch(t *testing.T) {
	vis := &visibilityLog{}
	var calls consumed
	type dead struct {
		pipeline string
		attempts int
		message  string
	}
	var deads []dead
	h := queue.SQSStatusHandler(func(ctx context.Context, r *forgelink.StatusRequest) error {
		calls.add(r)
		switch r.PipelineID {
		case "ok":
			return nil
		case "refused-forever":
			return forgelink.Errorf(forgelink.Transient, "still failing")
		}
		return forgelink.WithRetryAfter(forgelink.Errorf(forgelink.Transient, "rate limited"), 7*time.Second)
	}, queue.SQSStatusOptions{Visibility: vis, QueueURL: statusQueueURL, Log: quietLog(), // MaxReceives defaults to 5
		OnDead: func(ctx context.Context, r *forgelink.StatusRequest, attempts int, err error) {
			deads = append(deads, dead{r.PipelineID, attempts, forgelink.MessageOf(err)})
		}})
	resp, err := h(t.Context(), events.SQSEvent{Records: []events.SQSMessage{
		sqsRecord("m-ok", requestBody("ok"), 1),
		sqsRecord("m-limited", requestBody("limited"), 2),
		sqsRecord("m-dead", requestBody("refused-forever"), 5),
		sqsRecord("m-past-dead", requestBody("refused-forever"), 6),
		sqsRecord("m-garbage", "not json", 1),
		sqsRecord("m-empty", "{}", 1),
		sqsRecord("m-wrong-type", `{"pipeline_id":7}`, 1),
	}})
	if err != nil {
		t.Fatalf("handler: %v", err)
	}
	want := []string{"m-limited", "m-dead", "m-past-dead", "m-garbage", "m-empty", "m-wrong-type"}
	if diff := cmp.Diff(want, failedIDs(resp)); diff != "" {
		t.Errorf("batch item failures (-want +got):\n%s", diff)
	}
	var consumedIDs []string
	for _, r := range calls.all() {
		consumedIDs = append(consumedIDs, r.PipelineID)
	}
	if diff := cmp.Diff([]string{"ok", "limited", "refused-forever", "refused-forever"}, consumedIDs); diff != "" {
		t.Errorf("consumed (-want +got); malformed messages must not reach the consumer:\n%s", diff)
	}
	if diff := cmp.Diff([]dead{{"refused-forever", 5, "still failing"}, {"refused-forever", 6, "still failing"}}, deads, cmp.AllowUnexported(dead{})); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	got := vis.all()
	if len(got) != 1 || *got[0].ReceiptHandle != "rh-m-limited" || got[0].VisibilityTimeout != 7 {
		t.Errorf("visibility changes = %+v, want one: m-limited for 7 s (dead and malformed ones are left alone)", got)
	}
}

func TestSQSStatusHandlerVisibilityOptional(t *testing.T) {
	failing := func(ctx context.Context, r *forgelink.StatusRequest) error {
		return forgelink.WithRetryAfter(forgelink.Errorf(forgelink.Transient, "rate limited"), time.Minute)
	}
	t.Run("no visibility API", func(t *testing.T) {
		h := queue.SQSStatusHandler(failing, queue.SQSStatusOptions{QueueURL: statusQueueURL, Log: quietLog()})
		resp, err := h(t.Context(), events.SQSEvent{Records: []events.SQSMessage{sqsRecord("m1", requestBody("p1"), 1)}})
		if err != nil || !slices.Equal(failedIDs(resp), []string{"m1"}) {
			t.Errorf("handler = %v, %v; want m1 reported", failedIDs(resp), err)
		}
	})
	t.Run("visibility change fails", func(t *testing.T) {
		vis := &visibilityLog{err: errors.New("AccessDenied")}
		h := queue.SQSStatusHandler(failing, queue.SQSStatusOptions{Visibility: vis, QueueURL: statusQueueURL, Log: quietLog()})
		resp, err := h(t.Context(), events.SQSEvent{Records: []events.SQSMessage{sqsRecord("m1", requestBody("p1"), 1)}})
		if err != nil || !slices.Equal(failedIDs(resp), []string{"m1"}) || len(vis.all()) != 1 {
			t.Errorf("handler = %v, %v after %d visibility calls; want m1 reported after one", failedIDs(resp), err, len(vis.all()))
		}
	})
	t.Run("no queue URL", func(t *testing.T) {
		vis := &visibilityLog{}
		h := queue.SQSStatusHandler(failing, queue.SQSStatusOptions{Visibility: vis, Log: quietLog()})
		resp, err := h(t.Context(), events.SQSEvent{Records: []events.SQSMessage{sqsRecord("m1", requestBody("p1"), 1)}})
		if err != nil || !slices.Equal(failedIDs(resp), []string{"m1"}) || len(vis.all()) != 0 {
			t.Errorf("handler = %v, %v, %d visibility calls; want m1 reported and no call without a queue URL", failedIDs(resp), err, len(vis.all()))
		}
	})
	t.Run("success", func(t *testing.T) {
		vis := &visibilityLog{}
		var calls consumed
		h := queue.SQSStatusHandler(func(ctx context.Context, r *forgelink.StatusRequest) error {
			calls.add(r)
			return nil
		}, queue.SQSStatusOptions{Visibility: vis, QueueURL: statusQueueURL, Log: quietLog()})
		resp, err := h(t.Context(), events.SQSEvent{Records: []events.SQSMessage{sqsRecord("m1", requestBody("p1"), 1), sqsRecord("m2", requestBody("p2"), 3)}})
		if err != nil || len(resp.BatchItemFailures) != 0 || len(vis.all()) != 0 || calls.count() != 2 {
			t.Errorf("handler = %v, %v, %d visibility calls, %d consumed; want no failures, no calls, 2 consumed",
				failedIDs(resp), err, len(vis.all()), calls.count())
		}
		want := forgelink.StatusRequest{PipelineID: "p1", Project: "gh/acme/widget", Revision: "366701fde727cb7a9e7f21eb88264f59f6f9b89c", State: "success"}
		if diff := cmp.Diff(want, calls.all()[0]); diff != "" {
			t.Errorf("decoded request (-want +got):\n%s", diff)
		}
	})
}
