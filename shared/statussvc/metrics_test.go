package statussvc_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/forgelink"
	"forgelink/shared/metrics"
)

// TestStatusMetrics: a 502 (failed), its retry (posted), the same request
// again (nothing), a 404 on failed (refused) and a request given up, each counted
// once under github.
func TestStatusMetrics(t *testing.T) {
	f := newFixture(t)
	reg := metrics.New()
	f.svc.Metrics = reg
	p := f.newPipeline(t, ghSlug, "build")
	req := request(p, forgelink.StatusPending)
	f.gh.FailNext(http.MethodPost, "/statuses/"+rev, http.StatusBadGateway, 1)
	if err := f.svc.Post(t.Context(), req); forgelink.KindOf(err) != forgelink.Transient {
		t.Fatalf("Post with a 502 = %v, want Transient", err)
	}
	f.post(t, req)
	f.post(t, req)
	f.gh.FailNext(http.MethodPost, "/statuses/"+rev, http.StatusNotFound, 1)
	f.post(t, request(p, forgelink.StatusFailed))
	f.svc.GiveUp(t.Context(), request(p, forgelink.StatusSuccess), 5, io.ErrUnexpectedEOF)

	got := map[string]int64{}
	for _, o := range []string{metrics.Posted, metrics.Failed, metrics.Refused, metrics.GaveUp} {
		got[o] = reg.Value(metrics.StatusPosts, "github", o)
	}
	want := map[string]int64{metrics.Posted: 1, metrics.Failed: 1, metrics.Refused: 1, metrics.GaveUp: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status post counters (-want +got):\n%s", diff)
	}
}
