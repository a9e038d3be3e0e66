package queue

import (
	"fmt"
	"testing"
	"time"

	"forgelink/shared/forgelink"
)

// TestLocalHandoffKeepsTheLatest hands off more pipelines than Keep: the
// oldest are dropped, the latest Keep are returned in order, and the
// memory held stays under twice Keep.
func TestLocalHandoffKeepsTheLatest(t *testing.T) {
	h := &LocalHandoff{Keep: 3}
	for i := range 10 {
		p := &forgelink.Pipeline{ID: fmt.Sprint("p", i), Project: "gh/acme/widget", Revision: "abc", CreatedAt: time.Now()}
		if err := h.Handoff(t.Context(), p); err != nil {
			t.Fatal(err)
		}
		if len(h.pipelines) >= 2*h.Keep || len(h.statuses) >= 2*h.Keep {
			t.Fatalf("after %d hand-offs it holds %d messages and %d requests; want fewer than %d", i+1, len(h.pipelines), len(h.statuses), 2*h.Keep)
		}
	}
	msgs, reqs := h.Pipelines(), h.StatusRequests()
	if len(msgs) != 3 || len(reqs) != 3 {
		t.Fatalf("got %d messages and %d requests, want the latest 3", len(msgs), len(reqs))
	}
	for i, want := range []string{"p7", "p8", "p9"} {
		if msgs[i].Pipeline.ID != want || reqs[i].PipelineID != want {
			t.Errorf("hand-off %d = %s / %s, want %s", i, msgs[i].Pipeline.ID, reqs[i].PipelineID, want)
		}
	}
}
