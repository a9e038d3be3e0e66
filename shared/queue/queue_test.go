package queue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"forgelink/shared/forgelink"
)

func TestLocalRetriesThenDeadLetters(t *testing.T) {
	tests := []struct {
		name      string
		failures  int // how many times the consumer fails before succeeding
		wantCalls int
		wantDead  int
	}{
		{name: "succeeds first time", failures: 0, wantCalls: 1, wantDead: 0},
		{name: "succeeds on third receive", failures: 2, wantCalls: 3, wantDead: 0},
		{name: "fails every receive", failures: 100, wantCalls: 3, wantDead: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			calls := 0
			done := make(chan struct{}, 10)
			q := NewLocal(func(ctx context.Context, m *forgelink.Message) error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				done <- struct{}{}
				if calls <= tc.failures {
					return errors.New("vcs 502")
				}
				return nil
			}, LocalOptions{MaxReceives: 3, Backoff: time.Millisecond})
			if err := q.Publish(context.Background(), &forgelink.Message{DeliveryID: "d1"}); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tc.wantCalls; i++ {
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					t.Fatalf("consumer called %d times, want %d", i, tc.wantCalls)
				}
			}
			q.Close()
			mu.Lock()
			defer mu.Unlock()
			if calls != tc.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tc.wantCalls)
			}
			if got := len(q.DeadLetters()); got != tc.wantDead {
				t.Errorf("dead letters = %d, want %d", got, tc.wantDead)
			}
		})
	}
}

func TestLocalCloseDrainsAndRefuses(t *testing.T) {
	var mu sync.Mutex
	var got []string
	q := NewLocal(func(ctx context.Context, m *forgelink.Message) error {
		mu.Lock()
		got = append(got, m.DeliveryID)
		mu.Unlock()
		return nil
	}, LocalOptions{})
	for _, id := range []string{"a", "b", "c"} {
		if err := q.Publish(context.Background(), &forgelink.Message{DeliveryID: id}); err != nil {
			t.Fatal(err)
		}
	}
	q.Close()
	if len(got) != 3 {
		t.Errorf("delivered %v, want all 3", got)
	}
	err := q.Publish(context.Background(), &forgelink.Message{DeliveryID: "late"})
	if forgelink.KindOf(err) != forgelink.Transient {
		t.Errorf("Publish after Close: %v, want a Transient error", err)
	}
}
