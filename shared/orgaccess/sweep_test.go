package orgaccess_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"forgelink/shared/forgelink"
	"forgelink/shared/orgaccess"
	"forgelink/shared/vcsfake"
)

// checkCase is one breakage of a followed project, what the first sweep
// must find and do about it, and whether the second sweep finds it healed.
type checkCase struct {
	name string
	// breakIt breaks the project on the fake, as someone on the VCS would.
	breakIt func(t *testing.T, f *fixture, p *forgelink.Project)
	want    forgelink.AccessState
	// wantDetail is part of the stored detail ("" for none).
	wantDetail string
	// wantRepairs are the prefixes of the recorded repairs, in order.
	wantRepairs []string
	// after checks the fake and the stored project after the first sweep;
	// before is the project as followed.
	after func(t *testing.T, f *fixture, before, now *forgelink.Project)
	// healed: forgelink repaired it, and the second sweep finds ok.
	healed bool
}

// runCheckCase follows slug on a fresh fixture, breaks it, sweeps twice
// and checks both sweeps.
func runCheckCase(t *testing.T, slug string, tc checkCase) {
	f := newFixture(t)
	before := f.followRepo(t, slug)
	if tc.breakIt != nil {
		tc.breakIt(t, f, before)
	}
	t1 := f.clock.Now()
	res := f.sweep(t, orgaccess.Scope{})
	if res.Checked != 1 || res.Deferred != 0 {
		t.Fatalf("first sweep checked %d, deferred %d; want 1 and 0", res.Checked, res.Deferred)
	}
	acc := f.access(t, slug)
	if acc.State != tc.want {
		t.Fatalf("state = %q (detail %q), want %q", acc.State, acc.Detail, tc.want)
	}
	if !acc.Since.Equal(t1) || !acc.CheckedAt.Equal(t1) {
		t.Errorf("since %v, checked_at %v; want both %v", acc.Since, acc.CheckedAt, t1)
	}
	if tc.wantDetail != "" && !strings.Contains(acc.Detail, tc.wantDetail) {
		t.Errorf("detail = %q, want it to contain %q", acc.Detail, tc.wantDetail)
	}
	if tc.wantDetail == "" && acc.Detail != "" {
		t.Errorf("detail = %q, want none", acc.Detail)
	}
	if len(acc.Repairs) != len(tc.wantRepairs) {
		t.Errorf("repairs = %q, want %q...", acc.Repairs, tc.wantRepairs)
	} else {
		for i, r := range tc.wantRepairs {
			if !strings.HasPrefix(acc.Repairs[i], r) {
				t.Errorf("repair %d = %q, want %q...", i, acc.Repairs[i], r)
			}
		}
	}
	if got := res.Orgs; len(got) != 1 || got[0].State != tc.want || got[0].Projects[0].State != tc.want {
		t.Errorf("result orgs = %+v, want one org in state %s", got, tc.want)
	}
	if tc.after != nil {
		tc.after(t, f, before, f.project(t, slug))
	}

	t2 := f.clock.advance(time.Minute)
	if res := f.sweep(t, orgaccess.Scope{}); res.Checked != 1 || res.Deferred != 0 {
		t.Fatalf("second sweep checked %d, deferred %d; want 1 and 0", res.Checked, res.Deferred)
	}
	acc = f.access(t, slug)
	switch {
	case tc.healed && tc.want == forgelink.AccessOK:
		if acc.State != forgelink.AccessOK || !acc.Since.Equal(t1) || !acc.CheckedAt.Equal(t2) {
			t.Errorf("second sweep: %s since %v checked %v; want ok since %v checked %v", acc.State, acc.Since, acc.CheckedAt, t1, t2)
		}
	case tc.healed:
		if acc.State != forgelink.AccessOK || !acc.Since.Equal(t2) || len(acc.Repairs) != 0 {
			t.Errorf("second sweep: %s since %v, repairs %q; want ok since %v, no repairs (the repair held)", acc.State, acc.Since, acc.Repairs, t2)
		}
	default:
		if acc.State != tc.want || !acc.Since.Equal(t1) || !acc.CheckedAt.Equal(t2) {
			t.Errorf("second sweep: %s since %v checked %v; want still %s since %v, checked %v", acc.State, acc.Since, acc.CheckedAt, tc.want, t1, t2)
		}
	}
}

// unchanged checks that the sweep left the project's hook and key alone.
func unchangedOnGitHub(t *testing.T, f *fixture, before, now *forgelink.Project) {
	t.Helper()
	const repo = "acme/widget"
	if hooks := f.gh.Hooks(repo); len(hooks) != 1 || hooks[0].ID != before.WebhookVCSID {
		t.Errorf("hooks = %+v, want only %s", hooks, before.WebhookVCSID)
	}
	if keys := f.gh.DeployKeys(repo); len(keys) != 1 || keys[0].ID != before.DeployKeyVCSID {
		t.Errorf("deploy keys = %+v, want only %s", keys, before.DeployKeyVCSID)
	}
	if now.WebhookVCSID != before.WebhookVCSID || now.DeployKeyVCSID != before.DeployKeyVCSID {
		t.Errorf("stored ids changed: hook %s→%s key %s→%s", before.WebhookVCSID, now.WebhookVCSID, before.DeployKeyVCSID, now.DeployKeyVCSID)
	}
	if n := f.gh.CountRequests(http.MethodPost, "/hooks") + f.gh.CountRequests(http.MethodPost, "/keys") + f.gh.CountRequests(http.MethodPatch, ""); n != 2 {
		// Following posted the key and the hook, once each.
		t.Errorf("%d writes to GitHub, want only the follow's 2", n)
	}
}

// keyMaterial is the "type base64" of an authorized_keys line.
func keyMaterial(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return line
	}
	return f[0] + " " + f[1]
}

func TestSweepGitHub(t *testing.T) {
	const repo = "acme/widget"
	tests := []checkCase{
		{
			name:   "healthy",
			want:   forgelink.AccessOK,
			after:  unchangedOnGitHub,
			healed: true,
		},
		{
			name:       "token_revoked",
			breakIt:    func(t *testing.T, f *fixture, _ *forgelink.Project) { f.gh.SetToken("gho_rotated") },
			want:       forgelink.AccessTokenRevoked,
			wantDetail: "GitHub rejected the token: Bad credentials",
			after: func(t *testing.T, f *fixture, before, now *forgelink.Project) {
				f.gh.SetToken(f.gh.Token) // to read the fake; revoked again below
				unchangedOnGitHub(t, f, before, now)
				f.gh.SetToken("gho_rotated")
			},
		},
		{
			name: "repo_missing",
			// The fake cannot delete a repository: its GET answers GitHub's
			// 404 for the rest of the test, as a deleted one does.
			breakIt: func(t *testing.T, f *fixture, _ *forgelink.Project) {
				f.gh.FailNextResponse(http.MethodGet, "/repos/"+repo, 1000, http.StatusNotFound, nil, "")
			},
			want:       forgelink.AccessRepoMissing,
			wantDetail: "repository acme/widget not found",
			after:      unchangedOnGitHub,
		},
		{
			name:       "restricted",
			breakIt:    func(t *testing.T, f *fixture, _ *forgelink.Project) { f.gh.SetOrgRestricted("acme", true) },
			want:       forgelink.AccessRestricted,
			wantDetail: "the `acme` organization has enabled OAuth App access restrictions",
			after: func(t *testing.T, f *fixture, before, now *forgelink.Project) {
				if now.Access.OrgRole != "member" {
					t.Errorf("org role = %q, want member", now.Access.OrgRole)
				}
				f.gh.SetOrgRestricted("acme", false)
				unchangedOnGitHub(t, f, before, now)
				f.gh.SetOrgRestricted("acme", true)
			},
		},
		{
			name: "hook_missing",
			breakIt: func(t *testing.T, f *fixture, p *forgelink.Project) {
				if !f.gh.DeleteHookDirect(repo, p.WebhookVCSID) {
					t.Fatal("no hook to delete")
				}
			},
			want:        forgelink.AccessHookMissing,
			wantDetail:  "The webhook was deleted.",
			wantRepairs: []string{"reinstalled the webhook (id "},
			after: func(t *testing.T, f *fixture, before, now *forgelink.Project) {
				hooks := f.gh.Hooks(repo)
				if len(hooks) != 1 {
					t.Fatalf("hooks = %+v, want exactly one", hooks)
				}
				h := hooks[0]
				if h.ID == before.WebhookVCSID || now.WebhookVCSID != h.ID || h.URL != before.HookURL || !h.Active || h.ContentType != "json" {
					t.Errorf("hook %+v, stored id %s; want a new active json hook at %s, stored", h, now.WebhookVCSID, before.HookURL)
				}
				if want := "reinstalled the webhook (id " + h.ID + ")"; now.Access.Repairs[0] != want {
					t.Errorf("repair = %q, want %q", now.Access.Repairs[0], want)
				}
				secret, err := f.follow.Sealer.Open(t.Context(), now.Secrets[0].Sealed, now.Slug.AAD(forgelink.PurposeWebhookSecret))
				if err != nil || h.Secret != string(secret) || h.Secret == "" {
					t.Errorf("hook secret %q, project secret %q (%v): want the project's", h.Secret, secret, err)
				}
				if keys := f.gh.DeployKeys(repo); len(keys) != 1 || keys[0].ID != before.DeployKeyVCSID {
					t.Errorf("deploy keys = %+v, want the one followed", keys)
				}
			},
			healed: true,
		},
		{
			name: "hook_inactive",
			breakIt: func(t *testing.T, f *fixture, p *forgelink.Project) {
				f.gh.SetHookActive(repo, p.WebhookVCSID, false)
			},
			want:        forgelink.AccessHookInactive,
			wantDetail:  "The webhook was deactivated.",
			wantRepairs: []string{"reactivated the webhook"},
			after: func(t *testing.T, f *fixture, before, now *forgelink.Project) {
				hooks := f.gh.Hooks(repo)
				if len(hooks) != 1 || hooks[0].ID != before.WebhookVCSID || !hooks[0].Active {
					t.Errorf("hooks = %+v, want hook %s active again", hooks, before.WebhookVCSID)
				}
				if n := f.gh.CountRequests(http.MethodPatch, "/hooks/"+before.WebhookVCSID); n != 1 {
					t.Errorf("%d PATCHes of the hook, want 1", n)
				}
			},
			healed: true,
		},
		{
			name: "deploy_key_missing",
			breakIt: func(t *testing.T, f *fixture, p *forgelink.Project) {
				if !f.gh.DeleteKeyDirect(repo, p.DeployKeyVCSID) {
					t.Fatal("no key to delete")
				}
			},
			want:        forgelink.AccessDeployKeyMissing,
			wantDetail:  "The deploy key was deleted.",
			wantRepairs: []string{"re-added the deploy key (id "},
			after: func(t *testing.T, f *fixture, before, now *forgelink.Project) {
				keys := f.gh.DeployKeys(repo)
				if len(keys) != 1 {
					t.Fatalf("deploy keys = %+v, want exactly one", keys)
				}
				k := keys[0]
				if k.ID == before.DeployKeyVCSID || now.DeployKeyVCSID != k.ID || k.Key != keyMaterial(before.DeployKey.PublicKey) || !k.ReadOnly {
					t.Errorf("key %+v, stored id %s; want the project's key, read-only, under a new stored id", k, now.DeployKeyVCSID)
				}
				if want := "re-added the deploy key (id " + k.ID + ")"; now.Access.Repairs[0] != want {
					t.Errorf("repair = %q, want %q", now.Access.Repairs[0], want)
				}
				if hooks := f.gh.Hooks(repo); len(hooks) != 1 || hooks[0].ID != before.WebhookVCSID {
					t.Errorf("hooks = %+v, want the one followed", hooks)
				}
			},
			healed: true,
		},
		{
			name: "deliveries_failing",
			breakIt: func(t *testing.T, f *fixture, p *forgelink.Project) {
				f.gh.FailedDelivery(repo, p.WebhookVCSID, "g-lost", "push", []byte(`{"ref":"refs/heads/main"}`), http.StatusBadGateway)
				f.gh.AddHookDelivery(repo, p.WebhookVCSID, vcsfake.HookDeliveryRecord{GUID: "g-fine", Event: "push", Payload: []byte(`{}`), StatusCode: 202})
			},
			want:        forgelink.AccessDeliveriesFailing,
			wantDetail:  "1 deliveries failed since ",
			wantRepairs: []string{"redelivered 1 failed deliveries"},
			after: func(t *testing.T, f *fixture, before, now *forgelink.Project) {
				if got := f.gh.Redeliveries(repo); !slices.Equal(got, []string{"g-lost"}) {
					t.Errorf("redelivered %v, want g-lost once", got)
				}
				if got := f.receiver.deliveries(); !slices.Equal(got, []string{"g-lost"}) {
					t.Errorf("the receiver got %v, want g-lost", got)
				}
			},
			healed: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runCheckCase(t, "gh/"+repo, tc)
		})
	}
}

func TestSweepBitbucket(t *testing.T) {
	const repo = "acme/widget"
	tests := []checkCase{
		{
			// Bitbucket has no deliveries API: its Invalid is not a failure.
			name: "healthy",
			want: forgelink.AccessOK,
			after: func(t *testing.T, f *fixture, before, now *forgelink.Project) {
				if hooks := f.bb.Hooks(repo); len(hooks) != 1 || hooks[0].ID != before.WebhookVCSID {
					t.Errorf("hooks = %+v", hooks)
				}
				if n := f.bb.CountRequests(http.MethodPost, "") + f.bb.CountRequests(http.MethodPut, ""); n != 2 {
					t.Errorf("%d writes to Bitbucket, want only the follow's 2", n)
				}
			},
			healed: true,
		},
		{
			name:       "token_revoked",
			breakIt:    func(t *testing.T, f *fixture, _ *forgelink.Project) { f.bb.SetToken("bbat_rotated") },
			want:       forgelink.AccessTokenRevoked,
			wantDetail: "Token is invalid",
		},
		{
			name: "hook_missing",
			breakIt: func(t *testing.T, f *fixture, p *forgelink.Project) {
				if !f.bb.DeleteHookDirect(repo, p.WebhookVCSID) {
					t.Fatal("no hook to delete")
				}
			},
			want:        forgelink.AccessHookMissing,
			wantRepairs: []string{"reinstalled the webhook (id {"},
			wantDetail:  "The webhook was deleted.",
			after: func(t *testing.T, f *fixture, before, now *forgelink.Project) {
				hooks := f.bb.Hooks(repo)
				if len(hooks) != 1 || hooks[0].ID != now.WebhookVCSID || hooks[0].ID == before.WebhookVCSID || hooks[0].URL != before.HookURL || !hooks[0].Active {
					t.Errorf("hooks = %+v, stored id %s: want one new active hook at %s, stored", hooks, now.WebhookVCSID, before.HookURL)
				}
				secret, err := f.follow.Sealer.Open(t.Context(), now.Secrets[0].Sealed, now.Slug.AAD(forgelink.PurposeWebhookSecret))
				if err != nil || len(hooks) != 1 || hooks[0].Secret != string(secret) {
					t.Errorf("hook secret is not the project's (%v)", err)
				}
			},
			healed: true,
		},
		{
			name: "hook_inactive",
			breakIt: func(t *testing.T, f *fixture, p *forgelink.Project) {
				f.bb.SetHookActive(repo, p.WebhookVCSID, false)
			},
			want:        forgelink.AccessHookInactive,
			wantDetail:  "The webhook was deactivated.",
			wantRepairs: []string{"reactivated the webhook"},
			after: func(t *testing.T, f *fixture, before, now *forgelink.Project) {
				hooks := f.bb.Hooks(repo)
				if len(hooks) != 1 || hooks[0].ID != before.WebhookVCSID || !hooks[0].Active || hooks[0].Secret == "" {
					t.Errorf("hooks = %+v, want hook %s active again, with its secret", hooks, before.WebhookVCSID)
				}
			},
			healed: true,
		},
		{
			name: "deploy_key_missing",
			breakIt: func(t *testing.T, f *fixture, p *forgelink.Project) {
				if !f.bb.DeleteKeyDirect(repo, p.DeployKeyVCSID) {
					t.Fatal("no key to delete")
				}
			},
			want:        forgelink.AccessDeployKeyMissing,
			wantDetail:  "The deploy key was deleted.",
			wantRepairs: []string{"re-added the deploy key (id "},
			after: func(t *testing.T, f *fixture, before, now *forgelink.Project) {
				keys := f.bb.DeployKeys(repo)
				if len(keys) != 1 || keys[0].ID != now.DeployKeyVCSID || keys[0].ID == before.DeployKeyVCSID || keys[0].Key != keyMaterial(before.DeployKey.PublicKey) {
					t.Errorf("keys = %+v, stored id %s: want exactly the project's key, re-added", keys, now.DeployKeyVCSID)
				}
			},
			healed: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runCheckCase(t, "bb/"+repo, tc)
		})
	}
}

// TestSweepBitbucketForbiddenIsNotRestricted: OAuth App restrictions are
// GitHub's; a Bitbucket 403 says nothing about access, so the project is
// deferred, not marked.
func TestSweepBitbucketForbiddenIsNotRestricted(t *testing.T) {
	f := newFixture(t)
	f.followRepo(t, "bb/acme/widget")
	f.bb.FailNext(http.MethodGet, "/repositories/acme/widget", http.StatusForbidden, 1)
	res := f.sweep(t, orgaccess.Scope{})
	if res.Checked != 0 || res.Deferred != 1 {
		t.Errorf("checked %d, deferred %d; want 0 and 1", res.Checked, res.Deferred)
	}
	if p := f.project(t, "bb/acme/widget"); p.Access != nil {
		t.Errorf("access = %+v, want none recorded", p.Access)
	}
	if n := f.bb.CountRequests(http.MethodGet, "/user/permissions/workspaces"); n != 0 {
		t.Errorf("read the workspace role %d times, want 0", n)
	}
	if res := f.sweep(t, orgaccess.Scope{}); res.Checked != 1 || f.access(t, "bb/acme/widget").State != forgelink.AccessOK {
		t.Errorf("the next sweep: checked %d, state %s; want 1, ok", res.Checked, f.access(t, "bb/acme/widget").State)
	}
}

// TestRedeliveryRetriedAfterTransientFailure: GitHub refuses a redelivery
// with a 502; the project is deferred with nothing recorded, so the next
// sweep still sees the failed delivery and redelivers it, once.
func TestRedeliveryRetriedAfterTransientFailure(t *testing.T) {
	f := newFixture(t)
	p := f.followRepo(t, "gh/acme/widget")
	f.gh.FailedDelivery("acme/widget", p.WebhookVCSID, "g-lost", "push", []byte(`{}`), 0)
	f.gh.FailNext(http.MethodPost, "/attempts", http.StatusBadGateway, 1)
	if res := f.sweep(t, orgaccess.Scope{}); res.Checked != 0 || res.Deferred != 1 {
		t.Fatalf("checked %d, deferred %d; want 0 and 1", res.Checked, res.Deferred)
	}
	if got := f.gh.Redeliveries("acme/widget"); len(got) != 0 {
		t.Fatalf("redelivered %v through a 502", got)
	}
	f.sweep(t, orgaccess.Scope{})
	if got := f.gh.Redeliveries("acme/widget"); !slices.Equal(got, []string{"g-lost"}) {
		t.Errorf("redelivered %v, want g-lost once", got)
	}
	if acc := f.access(t, "gh/acme/widget"); acc.State != forgelink.AccessDeliveriesFailing || !slices.Equal(acc.Repairs, []string{"redelivered 1 failed deliveries"}) {
		t.Errorf("access %s %q, want deliveries_failing, redelivered 1", acc.State, acc.Repairs)
	}
	f.sweep(t, orgaccess.Scope{})
	if got := f.gh.Redeliveries("acme/widget"); len(got) != 1 {
		t.Errorf("a third sweep redelivered again: %v", got)
	}
}

// TestDeliveryInTheSameSecondAsTheLastCheck: GitHub's delivery times have
// whole seconds. A delivery that fails in the same second as the newest
// one the last sweep looked at, but after that sweep read the list, is
// still redelivered by the next sweep; the one already handled is not.
func TestDeliveryInTheSameSecondAsTheLastCheck(t *testing.T) {
	f := newFixture(t)
	p := f.followRepo(t, "gh/acme/widget")
	second := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	f.gh.AddHookDelivery("acme/widget", p.WebhookVCSID, vcsfake.HookDeliveryRecord{GUID: "g-first", Event: "push", Payload: []byte(`{}`), StatusCode: http.StatusBadGateway, DeliveredAt: second})
	f.sweep(t, orgaccess.Scope{})
	if got := f.gh.Redeliveries("acme/widget"); !slices.Equal(got, []string{"g-first"}) {
		t.Fatalf("first sweep redelivered %v, want g-first", got)
	}
	f.gh.AddHookDelivery("acme/widget", p.WebhookVCSID, vcsfake.HookDeliveryRecord{GUID: "g-same-second", Event: "push", Payload: []byte(`{}`), StatusCode: http.StatusBadGateway, DeliveredAt: second})
	f.sweep(t, orgaccess.Scope{})
	if got := f.gh.Redeliveries("acme/widget"); !slices.Equal(got, []string{"g-first", "g-same-second"}) {
		t.Errorf("after the second sweep redelivered %v, want g-first then g-same-second, each once", got)
	}
	f.sweep(t, orgaccess.Scope{})
	if got := f.gh.Redeliveries("acme/widget"); len(got) != 2 {
		t.Errorf("a third sweep redelivered again: %v", got)
	}
}
