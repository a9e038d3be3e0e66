package queue_test

// Regression tests for double enqueues: LocalStatus.Request and
// Local.Requeue used to check "already queued?" and mark the key queued in
// two steps with a durable write between them, so callers racing through
// the check all stored and scheduled the same entry.

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"forgelink/shared/bolt"
	"forgelink/shared/forgelink"
	"forgelink/shared/queue"
)

// slowStatusOutbox is the bolt store with a slow PutStatusEntry (a disk
// that takes its time to sync), which widens any gap between deciding to
// queue a request and marking it queued. failNext fails that many puts.
type slowStatusOutbox struct {
	*bolt.Store
	delay    time.Duration
	puts     atomic.Int32
	failNext atomic.Int32
}

func (o *slowStatusOutbox) PutStatusEntry(ctx context.Context, e *forgelink.StatusQueueEntry) error {
	o.puts.Add(1)
	time.Sleep(o.delay)
	if o.failNext.Add(-1) >= 0 {
		return forgelink.Errorf(forgelink.Transient, "disk full")
	}
	return o.Store.PutStatusEntry(ctx, e)
}

// all runs f from n goroutines released together and waits for them.
func all(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}

// TestLocalStatusConcurrentSameRequest: the old Request asked busy(key),
// then stored the entry, then scheduled it (which marked the key); 16
// callers at once all passed the check and the consumer ran the request
// 16 times. Now the key is reserved before the write: one stores it.
func TestLocalStatusConcurrentSameRequest(t *testing.T) {
	st := openStatusStore(t, t.TempDir())
	defer st.Close()
	outbox := &slowStatusOutbox{Store: st, delay: 50 * time.Millisecond}
	returned := make(chan struct{})
	var calls consumed
	q, err := queue.NewLocalStatus(t.Context(), outbox, func(ctx context.Context, r *forgelink.StatusRequest) error {
		calls.add(r)
		<-returned // hold the key in flight until every Request returned
		return nil
	}, nil, queue.LocalOptions{Workers: 4, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	r := statusRequest("widget", "p1", forgelink.StatusSuccess)
	r.Workflows = []string{"build"}
	const n = 16
	errs := make([]error, n)
	all(n, func(i int) {
		again := *r
		errs[i] = q.Request(context.Background(), &again)
	})
	close(returned)
	for i, err := range errs {
		if err != nil {
			t.Errorf("Request %d: %v", i, err)
		}
	}
	eventually(t, "the entry to be finished", func() bool { return len(statusEntries(t, st)) == 0 })
	time.Sleep(50 * time.Millisecond) // a second copy would run within a few ms
	if got := calls.count(); got != 1 {
		t.Errorf("%d concurrent equal requests were consumed %d times, want once", n, got)
	}
	if got := outbox.puts.Load(); got != 1 {
		t.Errorf("%d concurrent equal requests were stored %d times, want once", n, got)
	}
}

// TestLocalStatusRequestStoreFailureReleasesKey: a Request whose write
// fails must not leave its key reserved, or every later copy of the
// request would be dropped as "already queued" and never run.
func TestLocalStatusRequestStoreFailureReleasesKey(t *testing.T) {
	st := openStatusStore(t, t.TempDir())
	defer st.Close()
	outbox := &slowStatusOutbox{Store: st}
	outbox.failNext.Store(1)
	var calls consumed
	q, err := queue.NewLocalStatus(t.Context(), outbox, func(ctx context.Context, r *forgelink.StatusRequest) error {
		calls.add(r)
		return nil
	}, nil, queue.LocalOptions{Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	r := statusRequest("widget", "p1", forgelink.StatusSuccess)
	if err := q.Request(t.Context(), r); forgelink.KindOf(err) != forgelink.Transient {
		t.Fatalf("Request with the store failing = %v, want its Transient error", err)
	}
	time.Sleep(20 * time.Millisecond)
	if n := calls.count(); n != 0 {
		t.Fatalf("consumed %d requests that were never stored", n)
	}
	again := *r
	if err := q.Request(t.Context(), &again); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the request sent again", func() bool { return calls.count() == 1 })
	eventually(t, "the entry to be finished", func() bool { return len(statusEntries(t, st)) == 0 })
}

// TestLocalStatusSameRequestDuringRetry hammers Request with copies of a
// request from the moment its first try fails until its retry ran. The
// old worker dropped the key when a try failed and set it again when it
// scheduled the retry, after releasing the lock: a copy arriving in that
// gap was stored and queued beside the retry, and the request ran three
// times or more. The gap is a few instructions wide, so the test hammers
// it in 20 rounds (against the old code some round failed in every run
// tried); TestLocalStatusSameRequestOnce covers a copy arriving while the
// retry waits.
func TestLocalStatusSameRequestDuringRetry(t *testing.T) {
	st := openStatusStore(t, t.TempDir())
	defer st.Close()
	const rounds = 20
	failing := make(chan string, rounds) // a pipeline whose first try is failing now
	var mu sync.Mutex
	tries := map[string]int{}
	// The retry holds its key until the copies stop: a copy arriving
	// after the retry finished is a new request and rightly runs.
	hold := map[string]chan struct{}{}
	q, err := queue.NewLocalStatus(t.Context(), st, func(ctx context.Context, r *forgelink.StatusRequest) error {
		mu.Lock()
		tries[r.PipelineID]++
		n, held := tries[r.PipelineID], hold[r.PipelineID]
		mu.Unlock()
		if n == 1 {
			failing <- r.PipelineID
			return forgelink.WithRetryAfter(forgelink.Errorf(forgelink.Transient, "rate limited"), 20*time.Millisecond)
		}
		<-held
		return nil
	}, nil, queue.LocalOptions{Workers: 2, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := range rounds {
		id := "p" + string(rune('a'+i))
		held := make(chan struct{})
		mu.Lock()
		hold[id] = held
		mu.Unlock()
		r := statusRequest("widget", id, forgelink.StatusSuccess)
		if err := q.Request(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		if got := <-failing; got != id {
			t.Fatalf("first try of %s, want %s", got, id)
		}
		all(4, func(int) {
			for {
				mu.Lock()
				n := tries[id]
				mu.Unlock()
				if n >= 2 {
					return
				}
				again := *r
				if err := q.Request(context.Background(), &again); err != nil {
					t.Error(err)
					return
				}
			}
		})
		close(held)
	}
	eventually(t, "every entry to be finished", func() bool { return len(statusEntries(t, st)) == 0 })
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for id, n := range tries {
		if n != 2 {
			t.Errorf("%s ran %d times, want the failed try and one retry", id, n)
		}
	}
}

// slowOutbox is the bolt store with a slow PutQueueEntry.
type slowOutbox struct {
	*bolt.Store
	delay time.Duration
	puts  atomic.Int32
}

func (o *slowOutbox) PutQueueEntry(ctx context.Context, e *forgelink.QueueEntry, s forgelink.DeliveryState) error {
	o.puts.Add(1)
	time.Sleep(o.delay)
	return o.Store.PutQueueEntry(ctx, e, s)
}

// TestLocalConcurrentRequeue: the old Requeue asked busy(key), stored the
// entry, then scheduled it; many retries of one delivery at once (an
// operator's double click, two API calls) all passed the check, all
// answered success, and the delivery was evaluated once per call. Now
// exactly one call requeues it and the others are a Conflict.
func TestLocalConcurrentRequeue(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	outbox := &slowOutbox{Store: st, delay: 50 * time.Millisecond}
	var (
		mu    sync.Mutex
		tries int
	)
	// A delivery evaluated before this start: stored, decided, not queued.
	d := delivery("widget", "d1")
	if err := st.AcceptDelivery(t.Context(), d, &forgelink.QueueEntry{Message: *d.Message(), DueAt: d.ReceivedAt}); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishQueueEntry(t.Context(), d.HookID, d.ID); err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{})
	q, err := queue.NewLocal(t.Context(), outbox, func(ctx context.Context, m *forgelink.Message) error {
		mu.Lock()
		tries++
		mu.Unlock()
		<-returned // hold the key in flight until every Requeue returned
		return nil
	}, queue.LocalOptions{Workers: 4, Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if s := state(t, st, d); s != forgelink.Decided {
		t.Fatalf("state before the requeue = %s, want decided", s)
	}

	const n = 16
	errs := make([]error, n)
	all(n, func(i int) { errs[i] = q.Requeue(context.Background(), d) })
	if s := state(t, st, d); s != forgelink.Received {
		t.Errorf("state after the requeue = %s, want received", s)
	}
	close(returned)
	ok, conflicts := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case forgelink.KindOf(err) == forgelink.Conflict:
			conflicts++
		default:
			t.Errorf("Requeue: %v, want nil or Conflict", err)
		}
	}
	if ok != 1 || conflicts != n-1 {
		t.Errorf("%d concurrent Requeues: %d succeeded, %d Conflicts; want 1 and %d", n, ok, conflicts, n-1)
	}
	waitFor(t, "the requeued delivery to be decided", func() bool { return state(t, st, d) == forgelink.Decided })
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if tries != 1 {
		t.Errorf("evaluations after %d concurrent Requeues = %d, want 1", n, tries)
	}
	if got := outbox.puts.Load(); got != 1 {
		t.Errorf("requeue entries stored %d times, want once", got)
	}
}
