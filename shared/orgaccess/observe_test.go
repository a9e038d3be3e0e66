package orgaccess_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"forgelink/shared/forgelink"
	"forgelink/shared/orgaccess"
)

func TestObserve(t *testing.T) {
	f := newFixture(t)
	const slug = "gh/acme/widget"
	f.followRepo(t, slug)
	ctx := context.Background()
	version := func() int64 { return f.project(t, slug).Version }

	// Nothing that is not a refusal changes anything.
	v0 := version()
	for _, err := range []error{
		nil,
		forgelink.Errorf(forgelink.Transient, "GitHub is unavailable (HTTP 502); try again later"),
		forgelink.Errorf(forgelink.Forbidden, "Resource not accessible by integration"),
		errors.New("dial tcp: connection refused"),
	} {
		f.svc.Observe(ctx, mustSlug(slug), err)
	}
	if p := f.project(t, slug); p.Access != nil || p.Version != v0 {
		t.Fatalf("after non-refusals: access %+v, version %d→%d; want nothing stored", p.Access, v0, p.Version)
	}

	// A revoked token, met by a caller: marked at once.
	t1 := f.clock.advance(time.Minute)
	revoked := fmt.Errorf("github: get contents: %w", forgelink.Errorf(forgelink.Unauthorized, "GitHub rejected the token: Bad credentials"))
	f.svc.Observe(ctx, mustSlug(slug), revoked)
	acc := f.access(t, slug)
	want := forgelink.ProjectAccess{State: forgelink.AccessTokenRevoked, Since: t1, CheckedAt: t1, Detail: "GitHub rejected the token: Bad credentials"}
	if diff := cmp.Diff(want, *acc, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("after a 401 (-want +got):\n%s", diff)
	}
	if org := f.org(t, "gh/acme"); org.State != forgelink.AccessTokenRevoked || !org.Since.Equal(t1) || org.Remediation == nil || org.Remediation.Action != "Sign in again" {
		t.Errorf("org = %+v, want token_revoked since %v, Sign in again", org, t1)
	}

	// The same refusal again: since stays.
	f.clock.advance(time.Minute)
	v1 := version()
	f.svc.Observe(ctx, mustSlug(slug), revoked)
	if acc := f.access(t, slug); !acc.Since.Equal(t1) || !acc.CheckedAt.Equal(t1) || version() != v1 {
		t.Errorf("the same refusal again: since %v checked %v (version %d→%d); want since %v, nothing written", acc.Since, acc.CheckedAt, v1, version(), t1)
	}
	// The same state in other words: since stays, the detail and the time move.
	t3 := f.clock.advance(time.Minute)
	f.svc.Observe(ctx, mustSlug(slug), forgelink.Errorf(forgelink.Unauthorized, "GitHub rejected the token: token expired"))
	if acc := f.access(t, slug); !acc.Since.Equal(t1) || !acc.CheckedAt.Equal(t3) || acc.Detail != "GitHub rejected the token: token expired" {
		t.Errorf("same state, new detail: %+v; want since %v, checked %v, the new detail", acc, t1, t3)
	}
	// A transient failure now does not clear it.
	f.svc.Observe(ctx, mustSlug(slug), forgelink.Errorf(forgelink.Transient, "timeout"))
	if acc := f.access(t, slug); acc.State != forgelink.AccessTokenRevoked {
		t.Errorf("after a transient failure: %s, want still token_revoked", acc.State)
	}

	// Another refusal moves the state and its since.
	t4 := f.clock.advance(time.Minute)
	f.svc.Observe(ctx, mustSlug(slug), forgelink.E(forgelink.Forbidden, f.gh.OAuthRestrictedBody("acme"), nil))
	if acc := f.access(t, slug); acc.State != forgelink.AccessRestricted || !acc.Since.Equal(t4) {
		t.Errorf("after an OAuth restriction: %s since %v, want restricted since %v", acc.State, acc.Since, t4)
	}
	// A project that is not followed: nothing to record, and no panic.
	f.svc.Observe(ctx, mustSlug("gh/acme/nothing"), revoked)
	if n := len(f.logs.entries(t, "could not record an access refusal")); n != 1 {
		t.Errorf("%d warnings for an unknown project, want 1", n)
	}
}

// TestObserveThenSweepReadsRole: a restriction met by a caller has no
// role; the next sweep reads it, so the button is right.
func TestObserveThenSweepReadsRole(t *testing.T) {
	f := newFixture(t)
	f.followRepo(t, "gh/acme/widget")
	f.gh.SetOrgRole("acme", "admin")
	f.gh.SetOrgRestricted("acme", true)
	f.svc.Observe(context.Background(), mustSlug("gh/acme/widget"), forgelink.E(forgelink.Forbidden, f.gh.OAuthRestrictedBody("acme"), nil))
	if got := f.org(t, "gh/acme").Remediation.Action; got != "Request access" {
		t.Errorf("before a sweep: %q, want Request access (role unknown)", got)
	}
	f.sweep(t, orgaccess.Scope{})
	if got := f.org(t, "gh/acme").Remediation.Action; got != "Grant access" {
		t.Errorf("after a sweep: %q, want Grant access", got)
	}
}

// TestOrgAccessChangedLoggedOnce: every change of an org's state is logged
// once, by the sweep that saw it, with the old and new states; sweeps that
// find the same state log nothing.
func TestOrgAccessChangedLoggedOnce(t *testing.T) {
	f := newFixture(t)
	f.followRepo(t, "gh/acme/a")
	f.followRepo(t, "gh/acme/b")
	f.followRepo(t, "gh/fine/c")
	changes := func() []string {
		var out []string
		for _, e := range f.logs.entries(t, "org_access_changed") {
			out = append(out, fmt.Sprintf("%v %v→%v", e["org"], e["old"], e["new"]))
		}
		return out
	}

	f.sweep(t, orgaccess.Scope{})
	if got := changes(); len(got) != 0 {
		t.Errorf("first sweep of healthy orgs logged %v, want nothing", got)
	}
	f.gh.SetOrgRestricted("acme", true)
	f.sweep(t, orgaccess.Scope{})
	f.sweep(t, orgaccess.Scope{})
	want := []string{"gh/acme ok→restricted"}
	if diff := cmp.Diff(want, changes()); diff != "" {
		t.Errorf("restriction (-want +got):\n%s", diff)
	}
	f.gh.SetOrgRestricted("acme", false)
	f.sweep(t, orgaccess.Scope{})
	f.sweep(t, orgaccess.Scope{})
	want = append(want, "gh/acme restricted→ok")
	if diff := cmp.Diff(want, changes()); diff != "" {
		t.Errorf("recovery (-want +got):\n%s", diff)
	}
	// An org-scoped check sees a change as a full sweep does, once.
	f.gh.SetOrgRestricted("acme", true)
	f.sweep(t, orgaccess.Scope{VCS: forgelink.GitHub, Org: "acme"})
	f.sweep(t, orgaccess.Scope{})
	want = append(want, "gh/acme ok→restricted")
	if diff := cmp.Diff(want, changes()); diff != "" {
		t.Errorf("org-scoped check (-want +got):\n%s", diff)
	}
	if n := len(f.logs.entries(t, "project_access_changed")); n != 6 {
		t.Errorf("%d project_access_changed, want 6 (two projects, three changes)", n)
	}
}

func TestParseScope(t *testing.T) {
	widget := mustSlug("gh/acme/widget")
	bbRepo := mustSlug("bb/team/repo")
	tests := []struct {
		org, project string
		want         orgaccess.Scope
		wantErr      string // part of the message; "" for success
	}{
		{"", "", orgaccess.Scope{}, ""},
		{"gh/acme", "", orgaccess.Scope{VCS: forgelink.GitHub, Org: "acme"}, ""},
		{"github/acme", "", orgaccess.Scope{VCS: forgelink.GitHub, Org: "acme"}, ""},
		{"bb/team", "", orgaccess.Scope{VCS: forgelink.Bitbucket, Org: "team"}, ""},
		{"GH/Acme", "", orgaccess.Scope{VCS: forgelink.GitHub, Org: "Acme"}, ""},
		{"", "gh/acme/widget", orgaccess.Scope{VCS: forgelink.GitHub, Org: "acme", Project: &widget}, ""},
		{"", "bitbucket/team/repo", orgaccess.Scope{VCS: forgelink.Bitbucket, Org: "team", Project: &bbRepo}, ""},
		{"gh/acme", "gh/acme/widget", orgaccess.Scope{}, "give org or project, not both"},
		{"gh", "", orgaccess.Scope{}, "want vcs/org, e.g. gh/acme"},
		{"gh/", "", orgaccess.Scope{}, "invalid repository"},
		{"/acme", "", orgaccess.Scope{}, "unknown vcs"},
		{"gh/acme/widget", "", orgaccess.Scope{}, "want vcs/org"},
		{"gl/acme", "", orgaccess.Scope{}, "unknown vcs \"gl\""},
		{"gh/ac me", "", orgaccess.Scope{}, "invalid repository"},
		{"gh/..", "", orgaccess.Scope{}, "invalid repository"},
		{"", "gh/acme", orgaccess.Scope{}, "want vcs/org/repo"},
		{"", "gh/acme/widget/x", orgaccess.Scope{}, "want vcs/org/repo"},
		{"", "gh/acme/", orgaccess.Scope{}, "invalid repository"},
		{"", "svn/acme/widget", orgaccess.Scope{}, "unknown vcs"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("org=%q,project=%q", tc.org, tc.project), func(t *testing.T) {
			got, err := orgaccess.ParseScope(tc.org, tc.project)
			if tc.wantErr != "" {
				if forgelink.KindOf(err) != forgelink.Invalid || !containsMessage(err, tc.wantErr) {
					t.Fatalf("err = %v (kind %v), want Invalid with %q", err, forgelink.KindOf(err), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("scope (-want +got):\n%s", diff)
			}
		})
	}
}

func containsMessage(err error, s string) bool {
	return err != nil && strings.Contains(forgelink.MessageOf(err), s)
}

// TestSweepScope: a scoped sweep checks only its org or project, and one
// with nothing followed in it is NotFound.
func TestSweepScope(t *testing.T) {
	f := newFixture(t)
	for _, s := range []string{"gh/acme/a", "gh/acme/b", "gh/other/c", "bb/acme/d"} {
		f.followRepo(t, s)
	}
	all := []string{"gh/acme/a", "gh/acme/b", "gh/other/c", "bb/acme/d"}
	tests := []struct {
		org, project string
		want         []string
	}{
		{"gh/acme", "", []string{"gh/acme/a", "gh/acme/b"}},
		{"gh/ACME", "", []string{"gh/acme/a", "gh/acme/b"}},
		{"bb/acme", "", []string{"bb/acme/d"}},
		{"", "gh/acme/b", []string{"gh/acme/b"}},
		{"", "", all},
	}
	for _, tc := range tests {
		scope, err := orgaccess.ParseScope(tc.org, tc.project)
		if err != nil {
			t.Fatal(err)
		}
		at := f.clock.advance(time.Minute)
		res := f.sweep(t, scope)
		if got := f.checkedIn(t, at, all); !cmp.Equal(got, tc.want) || res.Checked != len(tc.want) {
			t.Errorf("scope %q %q checked %v (%d), want %v", tc.org, tc.project, got, res.Checked, tc.want)
		}
	}
	for _, sc := range [][2]string{{"gh/nobody", ""}, {"", "gh/acme/zzz"}, {"bb/other", ""}} {
		scope, _ := orgaccess.ParseScope(sc[0], sc[1])
		if _, err := f.svc.Sweep(context.Background(), scope); forgelink.KindOf(err) != forgelink.NotFound {
			t.Errorf("sweep of %v: %v, want NotFound", sc, err)
		}
		if _, err := f.svc.Status(context.Background(), scope); forgelink.KindOf(err) != forgelink.NotFound {
			t.Errorf("status of %v: %v, want NotFound", sc, err)
		}
	}
}

// TestOrgChangeJudgedOnWholeOrg: a check of one project judges its org
// from all the org's projects (the old code logged acme ok→hook_missing
// and back while acme stayed restricted on its other project), and a
// refusal recorded by Observe logs the org's change at once (the old code
// never logged it).
func TestOrgChangeJudgedOnWholeOrg(t *testing.T) {
	f := newFixture(t)
	f.followRepo(t, "gh/acme/a")
	f.followRepo(t, "gh/acme/b")
	f.sweep(t, orgaccess.Scope{})
	changes := func() []string {
		var out []string
		for _, e := range f.logs.entries(t, "org_access_changed") {
			out = append(out, fmt.Sprintf("%v %v→%v", e["org"], e["old"], e["new"]))
		}
		return out
	}
	// b's token is refused by a caller: acme turns token_revoked now.
	f.svc.Observe(context.Background(), mustSlug("gh/acme/b"), forgelink.Errorf(forgelink.Unauthorized, "Bad credentials"))
	if diff := cmp.Diff([]string{"gh/acme ok→token_revoked"}, changes()); diff != "" {
		t.Errorf("after Observe (-want +got):\n%s", diff)
	}
	// a's hook is deleted and only a is checked: acme stays token_revoked.
	a := f.project(t, "gh/acme/a")
	f.gh.DeleteHookDirect("acme/a", a.WebhookVCSID)
	slug := mustSlug("gh/acme/a")
	res := f.sweep(t, orgaccess.Scope{VCS: forgelink.GitHub, Org: "acme", Project: &slug})
	if len(res.Orgs) != 1 || res.Orgs[0].State != forgelink.AccessTokenRevoked || len(res.Orgs[0].Projects) != 2 {
		t.Errorf("project-scoped check answered %+v, want acme token_revoked with both projects", res.Orgs)
	}
	if got := changes(); len(got) != 1 {
		t.Errorf("org changes after a project-scoped check = %v, want only the first", got)
	}
}
