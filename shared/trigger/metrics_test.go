package trigger_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/forgelink"
	"forgelink/shared/metrics"
)

// TestTriggerMetrics: a build, the same message again (a retry: nothing
// counted twice), another delivery of the same revision (existing), a
// [ci skip] push and a branch without a config (skipped).
func TestTriggerMetrics(t *testing.T) {
	e := newEnv(t)
	reg := metrics.New()
	e.svc.Metrics = reg
	e.gh.SetFile(repo, "aaa111", ".circleci/config.yml", []byte(config))
	skip := push("d3", "main", "ccc333")
	skip.Events[0].Message = "docs [ci skip]"
	for _, m := range []*forgelink.Message{push("d1", "main", "aaa111"), push("d1", "main", "aaa111"), push("d2", "main", "aaa111"), skip, push("d4", "feature", "ddd444")} {
		if err := e.svc.Handle(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]int64{}
	for _, o := range []string{metrics.Created, metrics.Skipped, metrics.Existing} {
		got[o] = reg.Value(metrics.Pipelines, "github", o)
	}
	want := map[string]int64{metrics.Created: 1, metrics.Existing: 1, metrics.Skipped: 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pipeline counters (-want +got):\n%s", diff)
	}
	if n := len(e.pipelines(t)); n != 1 {
		t.Errorf("pipelines = %d, want 1", n)
	}
}
