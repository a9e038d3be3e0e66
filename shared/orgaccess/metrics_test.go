package orgaccess_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/metrics"
	"forgelink/shared/orgaccess"
)

// TestSweepMetrics: a full sweep counts each project's check by the state
// found and sets the orgs per state (zero for the others); a sweep of one
// project counts its check and leaves the org gauges alone.
func TestSweepMetrics(t *testing.T) {
	f := newFixture(t)
	reg := metrics.New()
	f.svc.Metrics = reg
	f.followRepo(t, "gh/acme/widget")
	f.followRepo(t, "gh/acme/gadget")
	f.followRepo(t, "gh/locked/vault")
	f.followRepo(t, "bb/team/repo")
	f.gh.SetOrgRestricted("locked", true)
	f.sweep(t, orgaccess.Scope{})

	values := func(d *metrics.Desc) map[string]int64 {
		out := map[string]int64{}
		for _, s := range reg.Snapshot() {
			if s.Desc == d && s.Value != 0 {
				out[s.Values[0]+" "+s.Values[1]] = s.Value
			}
		}
		return out
	}
	if diff := cmp.Diff(map[string]int64{"github ok": 2, "github restricted": 1, "bitbucket ok": 1}, values(metrics.AccessChecks)); diff != "" {
		t.Errorf("checks after a full sweep (-want +got):\n%s", diff)
	}
	wantOrgs := map[string]int64{"github ok": 1, "github restricted": 1, "bitbucket ok": 1}
	if diff := cmp.Diff(wantOrgs, values(metrics.AccessOrgs)); diff != "" {
		t.Errorf("orgs after a full sweep (-want +got):\n%s", diff)
	}

	scope, err := orgaccess.ParseScope("", "gh/acme/widget")
	if err != nil {
		t.Fatal(err)
	}
	f.gh.SetOrgRestricted("locked", false)
	f.sweep(t, scope)
	if got := reg.Value(metrics.AccessChecks, "github", "ok"); got != 3 {
		t.Errorf("github ok checks after a project sweep = %d, want 3", got)
	}
	if diff := cmp.Diff(wantOrgs, values(metrics.AccessOrgs)); diff != "" {
		t.Errorf("orgs after a project sweep (-want +got):\n%s", diff)
	}
	// Every state of both VCSs was set: a state no org is in reads 0,
	// not "never reported".
	for _, s := range reg.Snapshot() {
		if s.Desc == metrics.AccessOrgs && s.Values[0] != metrics.Other && s.Seq == 0 {
			t.Errorf("access_orgs %v never set by the full sweep", s.Values)
		}
	}
}
