package intake

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/metrics"
	"forgelink/shared/queue"
)

// TestIntakeMetrics sends an accepted, a duplicate, a rejected (bad
// signature, unknown hook), an ignored (an event forgelink does not act
// on, a ping) and a failed (queue down) delivery, and reads each outcome's
// counter once, under its VCS.
func TestIntakeMetrics(t *testing.T) {
	env := newIntakeEnv(t)
	reg := metrics.New()
	in := &Intake{Store: env.store, Sealer: env.sealer, Inbox: &queue.SQSInbox{Deliveries: env.store, Queue: env.queue}, Log: slog.New(slog.DiscardHandler), Metrics: reg}
	h := in.Handler()
	push := corpus(t, "github/push.json")
	bbPush := corpus(t, "bitbucket/repo-push.json")
	steps := []struct {
		name string
		req  *http.Request
		want int
		fail bool // the queue is down
	}{
		{"accepted", ghDelivery("/hooks/github/"+ghHook, "push", "m-1", push, ghSecret), 202, false},
		{"duplicate", ghDelivery("/hooks/github/"+ghHook, "push", "m-1", push, ghSecret), 200, false},
		{"bad signature", ghDelivery("/hooks/github/"+ghHook, "push", "m-2", push, "wrong"), 401, false},
		{"unknown hook", ghDelivery("/hooks/github/hk_nope", "push", "m-3", push, ghSecret), 404, false},
		{"ignored event", ghDelivery("/hooks/github/"+ghHook, "issues", "m-4", push, ghSecret), 200, false},
		{"ping", ghDelivery("/hooks/github/"+ghHook, "ping", "m-5", corpus(t, "github/ping.json"), ghSecret), 200, false},
		{"queue down", ghDelivery("/hooks/github/"+ghHook, "push", "m-6", push, ghSecret), 503, true},
		{"bitbucket accepted", bbDelivery("/hooks/bitbucket/"+bbHook, "repo:push", "m-7", bbPush, bbSecret), 202, false},
	}
	for _, s := range steps {
		env.queue.fail = s.fail
		if status, body := serve(h, s.req); status != s.want {
			t.Fatalf("%s: status %d (%v), want %d", s.name, status, body, s.want)
		}
	}
	got := map[string]int64{}
	for _, vcs := range []string{"github", "bitbucket"} {
		for _, o := range []string{metrics.Accepted, metrics.Duplicate, metrics.Rejected, metrics.Ignored, metrics.Failed} {
			if v := reg.Value(metrics.Deliveries, vcs, o); v != 0 {
				got[vcs+" "+o] = v
			}
		}
	}
	want := map[string]int64{
		"github accepted": 1, "github duplicate": 1, "github rejected": 2, "github ignored": 2, "github failed": 1,
		"bitbucket accepted": 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delivery counters (-want +got):\n%s", diff)
	}
}
