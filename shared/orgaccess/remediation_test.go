package orgaccess_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"forgelink/shared/forgelink"
	"forgelink/shared/orgaccess"
)

func TestRemediation(t *testing.T) {
	tests := []struct {
		name     string
		webURL   string
		clientID string
		role     string // SetOrgRole; "" leaves the fake's default (member)
		revoke   bool   // the token is revoked instead of the org restricted
		want     orgaccess.Remediation
		wantText []string
	}{
		{
			name: "member requests access", webURL: "https://github.com", clientID: "Iv1.abc",
			want:     orgaccess.Remediation{Action: "Request access", URL: "https://github.com/settings/connections/applications/Iv1.abc"},
			wantText: []string{`click "Request access"`, "an owner of acme must then approve it"},
		},
		{
			name: "admin grants access", webURL: "https://github.com", clientID: "Iv1.abc", role: "admin",
			want:     orgaccess.Remediation{Action: "Grant access", URL: "https://github.com/settings/connections/applications/Iv1.abc"},
			wantText: []string{"You are an owner of acme", `click "Grant access"`},
		},
		{
			name: "enterprise server", webURL: "https://ghe.example.com/", clientID: "Iv1.ghe",
			want: orgaccess.Remediation{Action: "Request access", URL: "https://ghe.example.com/settings/connections/applications/Iv1.ghe"},
		},
		{
			name: "no client id", webURL: "https://ghe.example.com",
			want:     orgaccess.Remediation{Action: "Request access", URL: "https://ghe.example.com/settings/applications"},
			wantText: []string{"Open https://ghe.example.com/settings/applications"},
		},
		{
			name: "default web url", clientID: "Iv1.abc", role: "admin",
			want: orgaccess.Remediation{Action: "Grant access", URL: "https://github.com/settings/connections/applications/Iv1.abc"},
		},
		{
			name: "token revoked", webURL: "https://github.com", clientID: "Iv1.abc", revoke: true,
			want:     orgaccess.Remediation{Action: "Sign in again"},
			wantText: []string{"GitHub no longer accepts the token"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.svc.GitHubWebURL, f.svc.OAuthClientID = tc.webURL, tc.clientID
			f.followRepo(t, "gh/acme/widget")
			if tc.role != "" {
				f.gh.SetOrgRole("acme", tc.role)
			}
			if tc.revoke {
				f.gh.SetToken("gho_rotated")
			} else {
				f.gh.SetOrgRestricted("acme", true)
			}
			res := f.sweep(t, orgaccess.Scope{})
			for _, org := range []orgaccess.Org{res.Orgs[0], f.org(t, "gh/acme")} {
				rem := org.Remediation
				if rem == nil {
					t.Fatalf("org %s (%s) has no remediation", org.Slug, org.State)
				}
				if rem.Action != tc.want.Action || rem.URL != tc.want.URL {
					t.Errorf("remediation %q %q, want %q %q", rem.Action, rem.URL, tc.want.Action, tc.want.URL)
				}
				if tc.want.URL != "" && !strings.Contains(rem.Text, tc.want.URL) {
					t.Errorf("text %q does not name %s", rem.Text, tc.want.URL)
				}
				for _, s := range tc.wantText {
					if !strings.Contains(rem.Text, s) {
						t.Errorf("text %q, want it to contain %q", rem.Text, s)
					}
				}
			}
		})
	}
}

// TestRemediationGoneWhenOK: a healthy org has nothing to do.
func TestRemediationGoneWhenOK(t *testing.T) {
	f := newFixture(t)
	f.followRepo(t, "gh/acme/widget")
	f.gh.SetOrgRestricted("acme", true)
	f.sweep(t, orgaccess.Scope{})
	f.gh.SetOrgRestricted("acme", false)
	f.sweep(t, orgaccess.Scope{})
	if org := f.org(t, "gh/acme"); org.State != forgelink.AccessOK || org.Remediation != nil || f.access(t, "gh/acme/widget").OrgRole != "" {
		t.Errorf("after recovery: %s, remediation %+v, role %q; want ok, none, none", org.State, org.Remediation, f.access(t, "gh/acme/widget").OrgRole)
	}
}

// TestOrgRoleReadOncePerRestriction: the follower's role is read when the
// org becomes restricted, not on every sweep while it stays so; a new
// restriction reads it again.
func TestOrgRoleReadOncePerRestriction(t *testing.T) {
	f := newFixture(t)
	f.followRepo(t, "gh/acme/widget")
	roleReads := func() int { return f.gh.CountRequests(http.MethodGet, "/user/memberships/orgs/acme") }

	f.gh.SetOrgRestricted("acme", true)
	f.sweep(t, orgaccess.Scope{})
	f.gh.SetOrgRole("acme", "admin") // promoted meanwhile: not seen while restricted
	f.clock.advance(time.Minute)
	f.sweep(t, orgaccess.Scope{})
	if n := roleReads(); n != 1 {
		t.Errorf("two sweeps of a restricted org read the role %d times, want 1", n)
	}
	if got := f.org(t, "gh/acme").Remediation.Action; got != "Request access" {
		t.Errorf("action %q, want Request access (the role read when restricted)", got)
	}

	f.gh.SetOrgRestricted("acme", false)
	f.sweep(t, orgaccess.Scope{})
	if n := roleReads(); n != 1 {
		t.Errorf("an ok sweep read the role (%d reads), want none", n)
	}
	f.gh.SetOrgRestricted("acme", true)
	f.sweep(t, orgaccess.Scope{})
	f.sweep(t, orgaccess.Scope{})
	if n := roleReads(); n != 2 {
		t.Errorf("a second restriction: %d role reads in all, want 2", n)
	}
	if got := f.org(t, "gh/acme").Remediation.Action; got != "Grant access" {
		t.Errorf("action %q, want Grant access (the role read anew)", got)
	}
}

// TestOrgRoleRetriedAfterFailure: a role read that failed is tried again
// on the next sweep rather than remembered as unknown.
func TestOrgRoleRetriedAfterFailure(t *testing.T) {
	f := newFixture(t)
	f.followRepo(t, "gh/acme/widget")
	f.gh.SetOrgRole("acme", "admin")
	f.gh.SetOrgRestricted("acme", true)
	f.gh.FailNext(http.MethodGet, "/user/memberships/orgs/acme", http.StatusBadGateway, 1)
	f.sweep(t, orgaccess.Scope{})
	if got := f.org(t, "gh/acme").Remediation.Action; got != "Request access" {
		t.Errorf("without the role: %q, want Request access", got)
	}
	f.sweep(t, orgaccess.Scope{})
	if got := f.org(t, "gh/acme").Remediation.Action; got != "Grant access" {
		t.Errorf("after the role was read: %q, want Grant access", got)
	}
	if n := f.gh.CountRequests(http.MethodGet, "/user/memberships/orgs/acme"); n != 2 {
		t.Errorf("%d role reads, want 2 (the failed one and its retry)", n)
	}
}
