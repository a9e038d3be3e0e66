package orgaccess_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"forgelink/shared/forgelink"
	"forgelink/shared/orgaccess"
)

// checkedIn returns the projects among slugs whose access was checked at
// t.
func (f *fixture) checkedIn(t *testing.T, at time.Time, slugs []string) []string {
	t.Helper()
	var out []string
	for _, s := range slugs {
		if p := f.project(t, s); p.Access != nil && p.Access.CheckedAt.Equal(at) {
			out = append(out, s)
		}
	}
	return out
}

// TestRateLimitDefersRestOfOrg: with the rate limit below MinRateLimit an
// org's sweep stops after its first project; the rest is deferred, and
// each later sweep starts with the projects checked longest ago (never
// checked first), so every project gets its turn.
func TestRateLimitDefersRestOfOrg(t *testing.T) {
	f := newFixture(t)
	var acme []string
	for i := 1; i <= 4; i++ {
		acme = append(acme, fmt.Sprintf("gh/acme/widget%d", i))
		f.followRepo(t, acme[i-1])
	}
	other := []string{"gh/other/a", "gh/other/b"}
	for _, s := range other {
		f.followRepo(t, s)
	}
	// Always "too few left": GitHub's 5,000 are below it.
	f.svc.MinRateLimit = 10_000

	var order []string
	for sweep := 1; sweep <= 4; sweep++ {
		at := f.clock.advance(time.Minute)
		res := f.sweep(t, orgaccess.Scope{})
		if res.Checked != 2 || res.Deferred != 4 {
			t.Fatalf("sweep %d: checked %d, deferred %d; want 2 (one per org) and 4", sweep, res.Checked, res.Deferred)
		}
		got := f.checkedIn(t, at, acme)
		if len(got) != 1 {
			t.Fatalf("sweep %d checked %v in acme, want one project", sweep, got)
		}
		if slices.Contains(order, got[0]) {
			t.Fatalf("sweep %d checked %s again before %v had a turn", sweep, got[0], acme)
		}
		order = append(order, got[0])
		if got := f.checkedIn(t, at, other); len(got) != 1 {
			t.Fatalf("sweep %d checked %v in other, want one project", sweep, got)
		}
	}
	// Everyone had a turn: now the one checked longest ago goes first.
	at := f.clock.advance(time.Minute)
	f.sweep(t, orgaccess.Scope{})
	if got := f.checkedIn(t, at, acme); !slices.Equal(got, order[:1]) {
		t.Errorf("fifth sweep checked %v, want %s (checked longest ago)", got, order[0])
	}
	// Deferred projects keep what was last found; the org lists them all.
	if org := f.org(t, "gh/acme"); len(org.Projects) != 4 || org.State != forgelink.AccessOK {
		t.Errorf("acme = %+v, want 4 projects, ok", org)
	}
}

// TestRateLimitRemainingLow: the fake's X-RateLimit-Remaining drops below
// the default MinRateLimit; one project is checked, the other three wait,
// and when the limit is back the next sweep checks those three first and
// the one already checked last.
func TestRateLimitRemainingLow(t *testing.T) {
	f := newFixture(t)
	slugs := []string{"gh/acme/a", "gh/acme/b", "gh/acme/c", "gh/acme/d"}
	for _, s := range slugs {
		f.followRepo(t, s)
	}
	f.gh.SetRateLimitRemaining(orgaccess.DefaultMinRateLimit + 3)
	at := f.clock.advance(time.Minute)
	res := f.sweep(t, orgaccess.Scope{})
	if res.Checked != 1 || res.Deferred != 3 {
		t.Fatalf("checked %d, deferred %d; want 1 and 3", res.Checked, res.Deferred)
	}
	first := f.checkedIn(t, at, slugs)
	if len(first) != 1 {
		t.Fatalf("checked %v, want one project", first)
	}
	if got := repoGets(f.gh); len(got) != 4+1 { // 4 follows, 1 check
		t.Errorf("repository reads %v, want the follows' and one check's", got)
	}

	f.gh.SetRateLimitRemaining(5000)
	before := len(repoGets(f.gh))
	f.clock.advance(time.Minute)
	if res := f.sweep(t, orgaccess.Scope{}); res.Checked != 4 || res.Deferred != 0 {
		t.Fatalf("with the limit back: checked %d, deferred %d; want 4 and 0", res.Checked, res.Deferred)
	}
	order := repoGets(f.gh)[before:]
	if len(order) != 4 || order[3] != strings.TrimPrefix(first[0], "gh/") {
		t.Errorf("checked in the order %v, want %s last", order, first[0])
	}
}

// TestTransientFailureDefersOnlyThatOrg: GitHub answers 502 for one org's
// repositories; those projects are deferred with nothing recorded, the
// other orgs are checked, and the next sweep checks the deferred ones.
func TestTransientFailureDefersOnlyThatOrg(t *testing.T) {
	f := newFixture(t)
	good := []string{"gh/good/a", "gh/good/b", "gh/fine/x"}
	bad := []string{"gh/flaky/a", "gh/flaky/b"}
	for _, s := range append(slices.Clone(good), bad...) {
		f.followRepo(t, s)
	}
	f.gh.FailNext(http.MethodGet, "/repos/flaky/a", http.StatusBadGateway, 1)
	// flaky/b fails halfway: its repository answers, its hook does not.
	f.gh.FailNext(http.MethodGet, "/repos/flaky/b/hooks/"+f.project(t, "gh/flaky/b").WebhookVCSID, http.StatusBadGateway, 1)
	at := f.clock.advance(time.Minute)
	res := f.sweep(t, orgaccess.Scope{})
	if res.Checked != 3 || res.Deferred != 2 {
		t.Errorf("checked %d, deferred %d; want 3 and 2", res.Checked, res.Deferred)
	}
	if got := f.checkedIn(t, at, good); len(got) != 3 {
		t.Errorf("checked %v of the good orgs, want all", got)
	}
	for _, s := range bad {
		if p := f.project(t, s); p.Access != nil {
			t.Errorf("%s: access %+v recorded on a 502, want none", s, p.Access)
		}
	}
	var slugs []string
	for _, o := range res.Orgs {
		slugs = append(slugs, o.Slug)
	}
	if !slices.Equal(slugs, []string{"gh/fine", "gh/flaky", "gh/good"}) {
		t.Errorf("result orgs %v, want all three, sorted", slugs)
	}
	at = f.clock.advance(time.Minute)
	if res := f.sweep(t, orgaccess.Scope{}); res.Checked != 5 || res.Deferred != 0 {
		t.Errorf("next sweep: checked %d, deferred %d; want 5 and 0", res.Checked, res.Deferred)
	}
	if got := f.checkedIn(t, at, bad); len(got) != 2 {
		t.Errorf("next sweep checked %v of flaky, want both", got)
	}
}

// stallingProxy forwards to the GitHub fake but holds, until the client
// gives up, every request whose path contains one of stall.
type stallingProxy struct {
	URL     string
	mu      sync.Mutex
	stalled int
}

func newStallingProxy(t *testing.T, target string, stall ...string) *stallingProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	p := &stallingProxy{}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, s := range stall {
			if strings.Contains(r.URL.Path, s) {
				p.mu.Lock()
				p.stalled++
				p.mu.Unlock()
				select {
				case <-r.Context().Done():
				case <-release:
				}
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: frees any handler still waiting
	p.URL = srv.URL + u.Path
	return p
}

func (p *stallingProxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stalled
}

// TestOrgTimeout: GitHub hangs on one org's repositories; that org's sweep
// ends at OrgTimeout with its projects deferred, and the other orgs are
// checked within the same time.
func TestOrgTimeout(t *testing.T) {
	f := newFixture(t)
	fast := []string{"gh/fast/a", "gh/fast/b", "gh/quick/a"}
	slow := []string{"gh/slow/a", "gh/slow/b"}
	for _, s := range append(slices.Clone(fast), slow...) {
		f.followRepo(t, s)
	}
	proxy := newStallingProxy(t, f.gh.URL, "/repos/slow/")
	f.ghURL = proxy.URL
	// Long enough for the healthy orgs on a loaded machine, short for a test.
	const timeout = time.Second
	f.svc.OrgTimeout = timeout

	type outcome struct {
		res *orgaccess.Result
		err error
	}
	done := make(chan outcome, 1)
	start := time.Now()
	at := f.clock.advance(time.Minute)
	go func() {
		res, err := f.svc.Sweep(context.Background(), orgaccess.Scope{})
		done <- outcome{res, err}
	}()
	var out outcome
	select {
	case out = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the sweep did not end 20 s after it began: OrgTimeout does not bound a hanging org")
	}
	elapsed := time.Since(start)
	if out.err != nil {
		t.Fatal(out.err)
	}
	if elapsed > timeout+5*time.Second {
		t.Errorf("the sweep took %v with an org timeout of %v", elapsed, timeout)
	}
	if out.res.Checked != 3 || out.res.Deferred != 2 {
		t.Errorf("checked %d, deferred %d; want 3 and 2", out.res.Checked, out.res.Deferred)
	}
	if got := f.checkedIn(t, at, fast); len(got) != 3 {
		t.Errorf("checked %v of the other orgs, want all three", got)
	}
	if n := proxy.count(); n != 1 {
		t.Errorf("%d requests to the hanging org, want 1 (the rest of the org waits for the next sweep)", n)
	}
	for _, s := range slow {
		if p := f.project(t, s); p.Access != nil {
			t.Errorf("%s: access %+v recorded after a timeout, want none", s, p.Access)
		}
	}
}
