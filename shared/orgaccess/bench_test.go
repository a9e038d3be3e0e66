package orgaccess_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"forgelink/shared/forgelink"
	"forgelink/shared/orgaccess"
)

// Shape of the sweep benchmark: followed GitHub projects, all healthy.
const (
	benchOrgs        = 10
	benchPerOrg      = 5
	benchProjects    = benchOrgs * benchPerOrg
	maxUnchangedCost = 0.05 // an unchanged sweep's share of a first sweep's rate-limited requests
)

// newSweepFixture follows benchProjects GitHub projects in benchOrgs orgs.
func newSweepFixture(tb testing.TB) *fixture {
	tb.Helper()
	f := newFixture(tb)
	for o := range benchOrgs {
		for p := range benchPerOrg {
			f.followRepo(tb, fmt.Sprintf("gh/org%02d/repo%02d", o, p))
		}
	}
	return f
}

// sweepCost is what one sweep cost on the GitHub fake.
type sweepCost struct {
	rateLimited int // requests that counted against the rate limit
	notModified int // 304s, which do not
}

// measure runs one full sweep and returns its cost, failing unless every
// project was checked and found ok. In a benchmark only the sweep is
// timed, not the counting.
func (f *fixture) measure(tb testing.TB) sweepCost {
	tb.Helper()
	b, _ := tb.(*testing.B)
	rl, nm := f.gh.RateLimitedRequests(), f.count304()
	if b != nil {
		b.StartTimer()
	}
	res, err := f.svc.Sweep(context.Background(), orgaccess.Scope{})
	if b != nil {
		b.StopTimer()
	}
	if err != nil {
		tb.Fatal(err)
	}
	cost := sweepCost{rateLimited: f.gh.RateLimitedRequests() - rl, notModified: f.count304() - nm}
	if res.Checked != benchProjects || res.Deferred != 0 {
		tb.Fatalf("sweep checked %d, deferred %d; want %d and 0", res.Checked, res.Deferred, benchProjects)
	}
	for _, o := range res.Orgs {
		if o.State != forgelink.AccessOK {
			tb.Fatalf("org %s is %s, want ok", o.Slug, o.State)
		}
	}
	return cost
}

func (f *fixture) count304() int {
	n := 0
	for _, r := range f.gh.Requests() {
		if r.Status == http.StatusNotModified {
			n++
		}
	}
	return n
}

// forget drops every project's access record: a fresh first sweep.
func (f *fixture) forget(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	ps, err := f.st.ListProjects(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range ps {
		p.Access = nil
		if err := f.st.UpdateProject(ctx, p); err != nil {
			tb.Fatal(err)
		}
	}
	f.gh.SetRateLimitRemaining(5000)
}

// TestUnchangedSweepCost: a sweep that finds nothing changed is answered
// by 304s and spends at most 5% of a first sweep's rate-limited requests.
func TestUnchangedSweepCost(t *testing.T) {
	f := newSweepFixture(t)
	first := f.measure(t)
	second := f.measure(t)
	t.Logf("rate-limited requests: first sweep %d, unchanged sweep %d; 304s %d and %d", first.rateLimited, second.rateLimited, first.notModified, second.notModified)
	if first.rateLimited < benchProjects {
		t.Fatalf("the first sweep made %d rate-limited requests for %d projects: it cannot have read them", first.rateLimited, benchProjects)
	}
	if float64(second.rateLimited) > maxUnchangedCost*float64(first.rateLimited) {
		t.Errorf("the unchanged sweep made %d rate-limited requests, over %.0f%% of the first's %d", second.rateLimited, 100*maxUnchangedCost, first.rateLimited)
	}
	if second.notModified < benchProjects {
		t.Errorf("the unchanged sweep got %d 304s for %d projects, want at least one each", second.notModified, benchProjects)
	}
}

// BenchmarkOrgAccessSweep sweeps 50 healthy GitHub projects in 10 orgs:
// "first" on fresh state (nothing known, every read unconditional),
// "second" with nothing changed since the previous sweep. ns/op is a
// sweep's wall time; rl-req/sweep the rate-limited requests it made on
// the GitHub fake, 304s/sweep the free ones. "second" also reports
// second/first, its share of a first sweep's rate-limited requests, and
// fails when that is over 5%.
func BenchmarkOrgAccessSweep(b *testing.B) {
	b.Run("first", func(b *testing.B) {
		f := newSweepFixture(b)
		var total sweepCost
		b.ResetTimer()
		b.StopTimer() // measure times the sweeps only
		for range b.N {
			f.forget(b)
			c := f.measure(b)
			total.rateLimited += c.rateLimited
			total.notModified += c.notModified
		}
		b.ReportMetric(float64(total.rateLimited)/float64(b.N), "rl-req/sweep")
		b.ReportMetric(float64(total.notModified)/float64(b.N), "304s/sweep")
	})
	b.Run("second", func(b *testing.B) {
		f := newSweepFixture(b)
		first := f.measure(b)
		var total sweepCost
		b.ResetTimer()
		b.StopTimer() // measure times the sweeps only
		for range b.N {
			c := f.measure(b)
			total.rateLimited += c.rateLimited
			total.notModified += c.notModified
		}
		perSweep := float64(total.rateLimited) / float64(b.N)
		ratio := perSweep / float64(first.rateLimited)
		b.ReportMetric(perSweep, "rl-req/sweep")
		b.ReportMetric(float64(total.notModified)/float64(b.N), "304s/sweep")
		b.ReportMetric(ratio, "second/first")
		if first.rateLimited < benchProjects || ratio > maxUnchangedCost {
			b.Fatalf("an unchanged sweep made %.1f rate-limited requests, %.1f%% of the first sweep's %d; want at most %.0f%%",
				perSweep, 100*ratio, first.rateLimited, 100*maxUnchangedCost)
		}
	})
}
