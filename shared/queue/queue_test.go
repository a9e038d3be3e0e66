package queue_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"forgelink/shared/bolt"
	"forgelink/shared/forgelink"
	"forgelink/shared/queue"
)

func openStore(t *testing.T, dir string) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(dir, "forgelink.db"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func delivery(project, id string) *forgelink.Delivery {
	now := time.Now().UTC()
	return &forgelink.Delivery{HookID: "hk-" + project, ID: id, Project: "gh/acme/" + project, Event: "push",
		Events: []forgelink.Event{{Type: forgelink.BranchPush, Branch: "main", Revision: id}},
		State:  forgelink.Received, ReceivedAt: now, ExpiresAt: now.Add(forgelink.DeliveryTTL)}
}

func discard() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func state(t *testing.T, st *bolt.Store, d *forgelink.Delivery) forgelink.DeliveryState {
	t.Helper()
	got, err := st.GetDelivery(context.Background(), d.HookID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got.State
}

func TestLocalRetriesThenDeadLettersThenRetry(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	var mu sync.Mutex
	tries, fail := 0, true
	consume := func(ctx context.Context, m *forgelink.Message) error {
		mu.Lock()
		defer mu.Unlock()
		tries++
		if fail {
			return forgelink.Errorf(forgelink.Transient, "github answered 502")
		}
		return nil
	}
	type dead struct {
		id       string
		attempts int
		err      string
	}
	deads := make(chan dead, 1)
	q, err := queue.NewLocal(t.Context(), st, consume, queue.LocalOptions{MaxReceives: 3, Backoff: time.Millisecond, Log: discard(),
		OnDead: func(ctx context.Context, m *forgelink.Message, attempts int, err error) {
			deads <- dead{m.DeliveryID, attempts, forgelink.MessageOf(err)}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	d := delivery("widget", "d1")
	if err := q.Accept(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	got := <-deads
	if want := (dead{"d1", 3, "github answered 502"}); got != want {
		t.Errorf("dead letter = %+v, want %+v", got, want)
	}
	if s := state(t, st, d); s != forgelink.Dead {
		t.Errorf("state = %s, want dead", s)
	}
	entries, err := st.QueueEntries(t.Context())
	if err != nil || len(entries) != 1 || !entries[0].Dead || entries[0].LastError != "github answered 502" {
		t.Fatalf("stored entries = %+v, %v; want one dead entry with the last error", entries, err)
	}
	// A second accept of the same id is a Conflict and changes nothing.
	if err := q.Accept(t.Context(), d); forgelink.KindOf(err) != forgelink.Conflict {
		t.Errorf("Accept(again) = %v, want Conflict", err)
	}

	mu.Lock()
	fail = false
	mu.Unlock()
	if err := q.Requeue(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the retried delivery to be decided", func() bool { return state(t, st, d) == forgelink.Decided })
	entries, _ = st.QueueEntries(t.Context())
	if len(entries) != 0 {
		t.Errorf("entries after success = %+v, want none", entries)
	}
	mu.Lock()
	defer mu.Unlock()
	if tries != 4 {
		t.Errorf("tries = %d, want 3 then 1 after the retry", tries)
	}
}

// TestLocalNoHeadOfLineBlocking: one project's deliveries hang (a VCS that
// does not answer) and another's wait for their retry; a healthy
// project's deliveries are still evaluated at once.
func TestLocalNoHeadOfLineBlocking(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	release := make(chan struct{})
	var mu sync.Mutex
	done := map[string]bool{}
	consume := func(ctx context.Context, m *forgelink.Message) error {
		switch m.Project {
		case "gh/acme/hanging":
			<-release
		case "gh/acme/failing":
			return forgelink.Errorf(forgelink.Transient, "github answered 503")
		}
		mu.Lock()
		done[m.DeliveryID] = true
		mu.Unlock()
		return nil
	}
	q, err := queue.NewLocal(t.Context(), st, consume, queue.LocalOptions{Workers: 4, Backoff: time.Hour, Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	defer close(release)
	for i := range 10 {
		for _, p := range []string{"hanging", "failing"} {
			if err := q.Accept(t.Context(), delivery(p, fmt.Sprintf("%s-%d", p, i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 20 {
		if err := q.Accept(t.Context(), delivery("healthy", fmt.Sprint("ok-", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the healthy project's deliveries", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(done) == 20
	})
}

// TestLocalResumesAfterRestart: deliveries accepted but not decided when
// the process stopped are evaluated by the next start, each once.
func TestLocalResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	block := make(chan struct{})
	q, err := queue.NewLocal(t.Context(), st, func(ctx context.Context, m *forgelink.Message) error {
		<-block
		return errors.New("stopped")
	}, queue.LocalOptions{Workers: 2, Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	for i := range n {
		if err := q.Accept(t.Context(), delivery("widget", fmt.Sprint("d", i))); err != nil {
			t.Fatal(err)
		}
	}
	close(block)
	q.Close()
	st.Close()

	st = openStore(t, dir)
	defer st.Close()
	var mu sync.Mutex
	seen := map[string]int{}
	q, err = queue.NewLocal(t.Context(), st, func(ctx context.Context, m *forgelink.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen[m.DeliveryID]++
		return nil
	}, queue.LocalOptions{Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	waitFor(t, "every accepted delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n
	})
	for i := range n {
		d := delivery("widget", fmt.Sprint("d", i))
		waitFor(t, "decided "+d.ID, func() bool { return state(t, st, d) == forgelink.Decided })
	}
	mu.Lock()
	defer mu.Unlock()
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s evaluated %d times after the restart, want 1", id, c)
		}
	}
}
