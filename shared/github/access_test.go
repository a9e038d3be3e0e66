package github_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"forgelink/shared/forgelink"
	"forgelink/shared/github"
	"forgelink/shared/vcsfake"
)

const accessSecret = "hook-secret"

// received is one request a webhook receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is an httptest webhook receiver that answers status and keeps
// what it got.
type receiver struct {
	*httptest.Server

	mu     sync.Mutex
	status int
	got    []received
}

func newReceiver(t *testing.T, status int) *receiver {
	t.Helper()
	rc := &receiver{status: status}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: b})
		w.WriteHeader(rc.status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) setStatus(status int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.status = status
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// accessFixture is a fake GitHub whose repository has a hook posting to a
// receiver and a deploy key, and a Forge for it.
type accessFixture struct {
	g    *vcsfake.GitHub
	f    *github.Forge
	rc   *receiver
	hook vcsfake.Hook
	key  vcsfake.Key
}

func accessSetup(t *testing.T) *accessFixture {
	t.Helper()
	g, f := forgeSetup(t)
	rc := newReceiver(t, http.StatusOK)
	hook := g.AddHookDirect(forgeRepo, vcsfake.Hook{
		URL: rc.URL + "/hooks/github", Secret: accessSecret, Events: github.HookEvents, ContentType: "json", Active: true,
	})
	key := g.AddKeyDirect(forgeRepo, "forgelink", vcsfake.NewPublicKey("k"), true)
	return &accessFixture{g: g, f: f, rc: rc, hook: hook, key: key}
}

// count304 returns how many requests the fake answered 304.
func count304(g *vcsfake.GitHub) int {
	n := 0
	for _, r := range g.Requests() {
		if r.Status == http.StatusNotModified {
			n++
		}
	}
	return n
}

func TestAccessConditionalReads(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		read   func(x *accessFixture, etag string) (forgelink.Probe, error)
		change func(x *accessFixture) // nil: the resource cannot change in place
	}{
		{
			name: "repository",
			read: func(x *accessFixture, etag string) (forgelink.Probe, error) {
				return x.f.CheckRepository(ctx, forgeSlug, etag)
			},
			change: func(x *accessFixture) { x.g.AddRepo(forgeRepo, "trunk", true) },
		},
		{
			name: "hook",
			read: func(x *accessFixture, etag string) (forgelink.Probe, error) {
				h, err := x.f.CheckHook(ctx, forgeSlug, x.hook.ID, etag)
				return h.Probe, err
			},
			change: func(x *accessFixture) { x.g.SetHookActive(forgeRepo, x.hook.ID, false) },
		},
		{
			name: "deploy key",
			read: func(x *accessFixture, etag string) (forgelink.Probe, error) {
				return x.f.CheckDeployKey(ctx, forgeSlug, x.key.ID, etag)
			},
		},
		{
			name: "deliveries",
			read: func(x *accessFixture, etag string) (forgelink.Probe, error) {
				_, p, err := x.f.RecentDeliveries(ctx, forgeSlug, x.hook.ID, time.Time{}, etag)
				return p, err
			},
			change: func(x *accessFixture) {
				x.g.FailedDelivery(forgeRepo, x.hook.ID, "guid-new", "push", []byte(`{}`), 502)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := accessSetup(t)
			x.g.FailedDelivery(forgeRepo, x.hook.ID, "guid-old", "push", []byte(`{}`), 200)
			charged := x.g.RateLimitedRequests()

			first, err := tc.read(x, "")
			if err != nil {
				t.Fatalf("unconditional read: %v", err)
			}
			if first.ETag == "" || first.NotModified {
				t.Fatalf("unconditional read = %+v, want an ETag and not NotModified", first)
			}
			if got := x.g.RateLimitedRequests(); got != charged+1 {
				t.Errorf("rate-limited requests after the 200 = %d, want %d", got, charged+1)
			}

			before304 := count304(x.g)
			second, err := tc.read(x, first.ETag)
			if err != nil {
				t.Fatalf("conditional read: %v", err)
			}
			if want := (forgelink.Probe{ETag: first.ETag, NotModified: true}); second != want {
				t.Errorf("conditional read = %+v, want %+v", second, want)
			}
			if got := x.g.RateLimitedRequests(); got != charged+1 {
				t.Errorf("rate-limited requests after the 304 = %d, want still %d", got, charged+1)
			}
			if got := count304(x.g); got != before304+1 {
				t.Errorf("304 answers = %d, want %d", got, before304+1)
			}

			if tc.change == nil {
				return
			}
			tc.change(x)
			third, err := tc.read(x, first.ETag)
			if err != nil {
				t.Fatalf("conditional read after a change: %v", err)
			}
			if third.NotModified || third.ETag == "" || third.ETag == first.ETag {
				t.Errorf("conditional read after a change = %+v, want a new ETag (old %s)", third, first.ETag)
			}
			if got := x.g.RateLimitedRequests(); got != charged+2 {
				t.Errorf("rate-limited requests after the second 200 = %d, want %d", got, charged+2)
			}
		})
	}
}

func TestAccessCheckHook(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		setup      func(x *accessFixture) string // returns the hook id to check
		want       forgelink.HookInfo            // ETag is only checked to be set
		wantKind   forgelink.Kind                // for errors
		wantPrefix string
	}{
		{
			name:  "active",
			setup: func(x *accessFixture) string { return x.hook.ID },
			want:  forgelink.HookInfo{Active: true},
		},
		{
			name: "inactive",
			setup: func(x *accessFixture) string {
				x.g.SetHookActive(forgeRepo, x.hook.ID, false)
				return x.hook.ID
			},
			want: forgelink.HookInfo{Active: false},
		},
		{
			name: "deleted",
			setup: func(x *accessFixture) string {
				x.g.DeleteHookDirect(forgeRepo, x.hook.ID)
				return x.hook.ID
			},
			wantKind: forgelink.NotFound, wantPrefix: "github: check hook ",
		},
		{
			name:     "not an id",
			setup:    func(x *accessFixture) string { return "abc" },
			wantKind: forgelink.Invalid, wantPrefix: "github: check hook abc of " + forgeRepo + ": ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := accessSetup(t)
			id := tc.setup(x)
			got, err := x.f.CheckHook(ctx, forgeSlug, id, "")
			if tc.wantPrefix != "" {
				if forgelink.KindOf(err) != tc.wantKind || !strings.HasPrefix(err.Error(), tc.wantPrefix) {
					t.Fatalf("CheckHook = %v (kind %v), want kind %v and prefix %q", err, forgelink.KindOf(err), tc.wantKind, tc.wantPrefix)
				}
				if tc.wantKind == forgelink.NotFound {
					if state, _ := forgelink.AccessStateOf(err); state != forgelink.AccessRepoMissing {
						t.Errorf("AccessStateOf = %q, want %q (a missing hook reads as NotFound)", state, forgelink.AccessRepoMissing)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckHook: %v", err)
			}
			if got.Active != tc.want.Active || got.NotModified || got.ETag == "" {
				t.Errorf("CheckHook = %+v, want Active %v with an ETag", got, tc.want.Active)
			}
			// A 304 says nothing about Active.
			again, err := x.f.CheckHook(ctx, forgeSlug, id, got.ETag)
			if err != nil || !again.NotModified || again.Active {
				t.Errorf("conditional CheckHook = %+v, %v; want NotModified and Active false", again, err)
			}
		})
	}
}

func TestAccessActivateHook(t *testing.T) {
	ctx := context.Background()
	x := accessSetup(t)
	x.g.SetHookActive(forgeRepo, x.hook.ID, false)
	if err := x.f.ActivateHook(ctx, forgeSlug, x.hook.ID); err != nil {
		t.Fatalf("ActivateHook: %v", err)
	}
	want := x.hook // as added: active, same URL, secret and events
	if diff := cmp.Diff([]vcsfake.Hook{want}, x.g.Hooks(forgeRepo)); diff != "" {
		t.Errorf("hooks after ActivateHook (-want +got):\n%s", diff)
	}
	if n := forgeCount(x.g, http.MethodPatch, "/hooks/"+x.hook.ID); n != 1 {
		t.Errorf("%d PATCH requests, want 1", n)
	}
	h, err := x.f.CheckHook(ctx, forgeSlug, x.hook.ID, "")
	if err != nil || !h.Active {
		t.Errorf("CheckHook after ActivateHook = %+v, %v; want active", h, err)
	}

	x.g.DeleteHookDirect(forgeRepo, x.hook.ID)
	err = x.f.ActivateHook(ctx, forgeSlug, x.hook.ID)
	if forgelink.KindOf(err) != forgelink.NotFound || !strings.HasPrefix(err.Error(), "github: activate hook "+x.hook.ID+" of "+forgeRepo+": ") {
		t.Errorf("ActivateHook of a deleted hook = %v (kind %v), want NotFound", err, forgelink.KindOf(err))
	}
}

func TestAccessCheckDeployKey(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		deleted  bool
		wantKind forgelink.Kind // Internal: no error
	}{
		{name: "present", wantKind: forgelink.Internal},
		{name: "deleted", deleted: true, wantKind: forgelink.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := accessSetup(t)
			if tc.deleted {
				x.g.DeleteKeyDirect(forgeRepo, x.key.ID)
			}
			p, err := x.f.CheckDeployKey(ctx, forgeSlug, x.key.ID, "")
			switch {
			case tc.wantKind == forgelink.Internal && (err != nil || p.ETag == ""):
				t.Errorf("CheckDeployKey = %+v, %v; want an ETag and no error", p, err)
			case tc.wantKind != forgelink.Internal && forgelink.KindOf(err) != tc.wantKind:
				t.Errorf("CheckDeployKey = %v (kind %v), want kind %v", err, forgelink.KindOf(err), tc.wantKind)
			case tc.wantKind == forgelink.NotFound && !strings.Contains(forgelink.MessageOf(err), "deploy key "+x.key.ID+" of "+forgeRepo):
				t.Errorf("message = %q, want it to name the deploy key", forgelink.MessageOf(err))
			}
		})
	}
}

func TestAccessRecentDeliveries(t *testing.T) {
	ctx := context.Background()
	const n = 260 // three pages of 100
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	tests := []struct {
		name      string
		since     time.Time
		wantN     int // the newest wantN deliveries
		wantPages int
	}{
		{name: "zero since reads every page", since: time.Time{}, wantN: n, wantPages: 3},
		{name: "since before all", since: at(-1), wantN: n, wantPages: 3},
		{name: "stops on the third page", since: at(10), wantN: n - 10, wantPages: 3},
		{name: "stops on the second page", since: at(n - 150), wantN: 150, wantPages: 2},
		{name: "stops on the first page", since: at(n - 60), wantN: 60, wantPages: 1},
		{name: "only the one at since", since: at(n - 1), wantN: 1, wantPages: 1},
		{name: "nothing new", since: at(n), wantN: 0, wantPages: 1},
	}
	x := accessSetup(t)
	for i := range n {
		x.g.AddHookDelivery(forgeRepo, x.hook.ID, vcsfake.HookDeliveryRecord{
			Event: []string{"push", "pull_request"}[i%2], DeliveredAt: at(i),
			StatusCode: []int{200, 502, 0}[i%3], Redelivery: i%7 == 0, Payload: []byte(`{"action":"opened"}`),
		})
	}
	var all []forgelink.HookDelivery
	for _, d := range x.g.HookDeliveries(forgeRepo, x.hook.ID) {
		all = append(all, forgelink.HookDelivery{
			ID: d.ID, GUID: d.GUID, Event: d.Event, DeliveredAt: d.DeliveredAt, StatusCode: d.StatusCode, Redelivery: d.Redelivery,
		})
	}
	if len(all) != n || !all[0].DeliveredAt.Equal(at(n-1)) {
		t.Fatalf("fake has %d deliveries, newest at %v; want %d, newest at %v", len(all), all[0].DeliveredAt, n, at(n-1))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(x.g.Requests())
			got, p, err := x.f.RecentDeliveries(ctx, forgeSlug, x.hook.ID, tc.since, "")
			if err != nil {
				t.Fatalf("RecentDeliveries: %v", err)
			}
			if p.ETag == "" || p.NotModified {
				t.Errorf("probe = %+v, want the first page's ETag", p)
			}
			if diff := cmp.Diff(all[:tc.wantN], got, cmpopts.EquateEmpty(), cmpopts.EquateApproxTime(0)); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
			var queries []string
			for _, r := range x.g.Requests()[before:] {
				queries = append(queries, r.Query)
			}
			if len(queries) != tc.wantPages {
				t.Fatalf("requests = %q, want %d pages", queries, tc.wantPages)
			}
			for i, q := range queries {
				if !strings.Contains(q, "per_page=100") || (i == 0) == strings.Contains(q, "cursor=") {
					t.Errorf("page %d query = %q, want per_page=100 and a cursor after the first page", i+1, q)
				}
			}
		})
	}
}

// signature is X-Hub-Signature-256 of body with secret.
func signature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func TestAccessRedeliver(t *testing.T) {
	ctx := context.Background()
	payload, err := os.ReadFile("../../testdata/corpus/github/push.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		status     int    // the receiver's answer
		closed     bool   // the receiver is gone
		newSecret  string // the hook's secret was changed before the redelivery
		wantStatus int    // recorded for the redelivery
	}{
		{name: "receiver accepts", status: http.StatusOK, wantStatus: http.StatusOK},
		{name: "receiver refuses", status: http.StatusInternalServerError, wantStatus: http.StatusInternalServerError},
		{name: "signed with the current secret", status: http.StatusAccepted, newSecret: "rotated", wantStatus: http.StatusAccepted},
		{name: "receiver unreachable", closed: true, wantStatus: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := accessSetup(t)
			x.rc.setStatus(tc.status)
			secret := accessSecret
			if tc.newSecret != "" {
				secret = tc.newSecret
				x.g.EditHookDirect(forgeRepo, x.hook.ID, func(h *vcsfake.Hook) { h.Secret = tc.newSecret })
			}
			failed := x.g.FailedDelivery(forgeRepo, x.hook.ID, "guid-1", "push", payload, http.StatusBadGateway)
			if got := x.rc.requests(); len(got) != 0 {
				t.Fatalf("FailedDelivery sent %d requests, want none", len(got))
			}
			if tc.closed {
				x.rc.Close()
			}

			ds, _, err := x.f.RecentDeliveries(ctx, forgeSlug, x.hook.ID, time.Time{}, "")
			if err != nil || len(ds) != 1 || !ds[0].Failed() || ds[0].ID != failed.ID || ds[0].GUID != "guid-1" || ds[0].StatusCode != http.StatusBadGateway {
				t.Fatalf("RecentDeliveries = %+v, %v; want the failed delivery %s", ds, err, failed.ID)
			}
			if err := x.f.Redeliver(ctx, forgeSlug, x.hook.ID, ds[0].ID); err != nil {
				t.Fatalf("Redeliver: %v", err)
			}

			if got := x.g.Redeliveries(forgeRepo); !cmp.Equal(got, []string{"guid-1"}) {
				t.Errorf("Redeliveries = %q, want [guid-1]", got)
			}
			if !tc.closed {
				got := x.rc.requests()
				if len(got) != 1 {
					t.Fatalf("receiver got %d requests, want 1", len(got))
				}
				r := got[0]
				if string(r.body) != string(payload) {
					t.Errorf("redelivered body differs from the stored payload (%d bytes, want %d)", len(r.body), len(payload))
				}
				wantHeader := map[string]string{
					"X-Hub-Signature-256": signature(secret, payload),
					"X-GitHub-Delivery":   "guid-1",
					"X-GitHub-Event":      "push",
					"X-GitHub-Hook-ID":    x.hook.ID,
					"Content-Type":        "application/json",
				}
				for k, v := range wantHeader {
					if r.header.Get(k) != v {
						t.Errorf("%s = %q, want %q", k, r.header.Get(k), v)
					}
				}
			}

			ds, _, err = x.f.RecentDeliveries(ctx, forgeSlug, x.hook.ID, time.Time{}, "")
			if err != nil || len(ds) != 2 {
				t.Fatalf("RecentDeliveries after the redelivery = %+v, %v; want 2", ds, err)
			}
			newest := ds[0]
			if !newest.Redelivery || newest.GUID != "guid-1" || newest.StatusCode != tc.wantStatus || newest.ID == failed.ID {
				t.Errorf("newest delivery = %+v, want a redelivery of guid-1 with status %d", newest, tc.wantStatus)
			}
		})
	}
}

func TestAccessRedeliverErrors(t *testing.T) {
	ctx := context.Background()
	x := accessSetup(t)
	tests := []struct {
		name, hookID, id string
		wantKind         forgelink.Kind
	}{
		{"unknown delivery", x.hook.ID, "999999", forgelink.NotFound},
		{"unknown hook", "999999", "1", forgelink.NotFound},
		{"not an id", x.hook.ID, "guid-1", forgelink.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := x.f.Redeliver(ctx, forgeSlug, tc.hookID, tc.id)
			if forgelink.KindOf(err) != tc.wantKind || !strings.HasPrefix(err.Error(), "github: redeliver delivery "+tc.id+" of hook "+tc.hookID+" of "+forgeRepo+": ") {
				t.Errorf("Redeliver = %v (kind %v), want kind %v", err, forgelink.KindOf(err), tc.wantKind)
			}
		})
	}
	if got := x.g.Redeliveries(forgeRepo); len(got) != 0 {
		t.Errorf("Redeliveries = %q, want none", got)
	}
}

func TestAccessOrgRole(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		org        string
		setup      func(g *vcsfake.GitHub)
		want       string
		wantKind   forgelink.Kind // when an error is wanted
		restricted bool
	}{
		{name: "admin", org: "octo-org", setup: func(g *vcsfake.GitHub) { g.SetOrgRole("octo-org", "admin") }, want: "admin"},
		{name: "member", org: "octo-org", setup: func(g *vcsfake.GitHub) { g.SetOrgRole("octo-org", "member") }, want: "member"},
		{name: "member by default", org: "octo-org", want: "member"},
		{name: "billing manager is a member", org: "octo-org", setup: func(g *vcsfake.GitHub) { g.SetOrgRole("octo-org", "billing_manager") }, want: "member"},
		{name: "admin of a restricted org", org: "octo-org", setup: func(g *vcsfake.GitHub) { g.SetOrgRole("octo-org", "admin") }, restricted: true, want: "admin"},
		{name: "not a member", org: "octo-org", setup: func(g *vcsfake.GitHub) { g.SetOrgRole("octo-org", "") }, wantKind: forgelink.NotFound},
		{name: "unknown org", org: "elsewhere", wantKind: forgelink.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, f := forgeSetup(t)
			if tc.setup != nil {
				tc.setup(g)
			}
			g.SetOrgRestricted("octo-org", tc.restricted)
			got, err := f.OrgRole(ctx, tc.org)
			if tc.want == "" {
				if forgelink.KindOf(err) != tc.wantKind || !strings.HasPrefix(err.Error(), "github: get membership in "+tc.org+": ") {
					t.Errorf("OrgRole = %q, %v (kind %v); want kind %v", got, err, forgelink.KindOf(err), tc.wantKind)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("OrgRole = %q, %v; want %q", got, err, tc.want)
			}
			if n := forgeCount(g, http.MethodGet, "/user/memberships/orgs/"+tc.org); n != 1 {
				t.Errorf("%d membership requests, want 1", n)
			}
		})
	}
}

// accessCall is an AccessChecker call that touches the repository, with
// the start of its error.
type accessCall struct {
	name, prefix string
	call         func(ctx context.Context) error
}

// accessCalls returns the calls on x's hook, key and delivery deliveryID.
func accessCalls(x *accessFixture, deliveryID string) []accessCall {
	return []accessCall{
		{"CheckRepository", "github: check repository " + forgeRepo + ": ", func(ctx context.Context) error {
			_, err := x.f.CheckRepository(ctx, forgeSlug, "")
			return err
		}},
		{"CheckHook", "github: check hook " + x.hook.ID + " of " + forgeRepo + ": ", func(ctx context.Context) error {
			_, err := x.f.CheckHook(ctx, forgeSlug, x.hook.ID, "")
			return err
		}},
		{"ActivateHook", "github: activate hook " + x.hook.ID + " of " + forgeRepo + ": ", func(ctx context.Context) error {
			return x.f.ActivateHook(ctx, forgeSlug, x.hook.ID)
		}},
		{"CheckDeployKey", "github: check deploy key " + x.key.ID + " of " + forgeRepo + ": ", func(ctx context.Context) error {
			_, err := x.f.CheckDeployKey(ctx, forgeSlug, x.key.ID, "")
			return err
		}},
		{"RecentDeliveries", "github: list deliveries of hook " + x.hook.ID + " of " + forgeRepo + ": ", func(ctx context.Context) error {
			_, _, err := x.f.RecentDeliveries(ctx, forgeSlug, x.hook.ID, time.Time{}, "")
			return err
		}},
		{"Redeliver", "github: redeliver delivery " + deliveryID + " of hook " + x.hook.ID + " of " + forgeRepo + ": ", func(ctx context.Context) error {
			return x.f.Redeliver(ctx, forgeSlug, x.hook.ID, deliveryID)
		}},
	}
}

func TestAccessErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		setup      func(x *accessFixture)
		wantKind   forgelink.Kind
		wantState  forgelink.AccessState // "": AccessStateOf says nothing
		restricted bool
	}{
		{
			name: "OAuth App access restrictions", setup: func(x *accessFixture) { x.g.SetOrgRestricted("octo-org", true) },
			wantKind: forgelink.Forbidden, wantState: forgelink.AccessRestricted, restricted: true,
		},
		{
			name: "revoked token", setup: func(x *accessFixture) { x.g.SetToken("gho_other") },
			wantKind: forgelink.Unauthorized, wantState: forgelink.AccessTokenRevoked,
		},
		{
			name: "server error", setup: func(x *accessFixture) { x.g.FailNext("", "", http.StatusBadGateway, 1) },
			wantKind: forgelink.Transient,
		},
		{
			name: "secondary rate limit", setup: func(x *accessFixture) { x.g.FailNext("", "", http.StatusForbidden, 1) },
			wantKind: forgelink.Transient,
		},
	}
	names := []string{"CheckRepository", "CheckHook", "ActivateHook", "CheckDeployKey", "RecentDeliveries", "Redeliver"}
	for _, tc := range tests {
		for _, name := range names {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				x := accessSetup(t)
				d := x.g.FailedDelivery(forgeRepo, x.hook.ID, "guid-1", "push", []byte(`{}`), 502)
				calls := accessCalls(x, d.ID)
				c := calls[slices.IndexFunc(calls, func(c accessCall) bool { return c.name == name })]
				tc.setup(x)
				err := c.call(ctx)
				if got := forgelink.KindOf(err); got != tc.wantKind {
					t.Fatalf("err = %v (kind %v), want kind %v", err, got, tc.wantKind)
				}
				if !strings.HasPrefix(err.Error(), c.prefix) {
					t.Errorf("error = %q, want prefix %q", err, c.prefix)
				}
				if got := forgelink.IsOAuthRestricted(err); got != tc.restricted {
					t.Errorf("IsOAuthRestricted = %v, want %v", got, tc.restricted)
				}
				if got := github.OAuthAppRestricted(err); got != tc.restricted {
					t.Errorf("OAuthAppRestricted = %v, want %v", got, tc.restricted)
				}
				if tc.restricted && !strings.Contains(forgelink.MessageOf(err), "the `octo-org` organization has enabled OAuth App access restrictions") {
					t.Errorf("message = %q, want GitHub's, naming octo-org", forgelink.MessageOf(err))
				}
				state, ok := forgelink.AccessStateOf(err)
				if tc.wantState != "" && (!ok || state != tc.wantState) || tc.wantState == "" && ok {
					t.Errorf("AccessStateOf = %q, %v; want %q", state, ok, tc.wantState)
				}
				if strings.Contains(err.Error(), x.g.Token) {
					t.Errorf("error %q contains the token", err)
				}
				if got := x.g.Redeliveries(forgeRepo); len(got) != 0 {
					t.Errorf("Redeliveries = %q, want none", got)
				}
			})
		}
	}
}

func TestAccessRateLimit(t *testing.T) {
	ctx := context.Background()
	x := accessSetup(t)
	if left, reset := x.f.RateLimit(); left != -1 || !reset.IsZero() {
		t.Fatalf("RateLimit before any answer = %d, %v; want -1 and the zero time", left, reset)
	}
	now := time.Now()
	steps := []struct {
		name string
		do   func(etag string) (string, error) // returns the ETag to send next
		want int
	}{
		{"first answer", func(string) (string, error) {
			p, err := x.f.CheckRepository(ctx, forgeSlug, "")
			return p.ETag, err
		}, vcsfake.GitHubRateLimit - 1},
		{"304 costs nothing", func(etag string) (string, error) {
			p, err := x.f.CheckRepository(ctx, forgeSlug, etag)
			if err == nil && !p.NotModified {
				t.Errorf("second read = %+v, want NotModified", p)
			}
			return etag, err
		}, vcsfake.GitHubRateLimit - 1},
		{"after the limit was lowered", func(etag string) (string, error) {
			x.g.SetRateLimitRemaining(42)
			_, err := x.f.CheckDeployKey(ctx, forgeSlug, x.key.ID, "")
			return etag, err
		}, 41},
		{"an error answer counts", func(etag string) (string, error) {
			_, err := x.f.CheckHook(ctx, forgeSlug, "999999", "")
			if forgelink.KindOf(err) != forgelink.NotFound {
				t.Errorf("CheckHook of a missing hook = %v, want NotFound", err)
			}
			return etag, nil
		}, 40},
		{"spent", func(etag string) (string, error) {
			x.g.SetRateLimitRemaining(0)
			_, err := x.f.CheckRepository(ctx, forgeSlug, "")
			if forgelink.KindOf(err) != forgelink.Transient {
				t.Errorf("CheckRepository with the limit spent = %v, want Transient", err)
			}
			return etag, nil
		}, 0},
	}
	etag := ""
	for _, s := range steps {
		var err error
		if etag, err = s.do(etag); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		left, reset := x.f.RateLimit()
		if left != s.want {
			t.Errorf("%s: remaining = %d, want %d", s.name, left, s.want)
		}
		if !reset.After(now) || reset.After(now.Add(time.Hour+time.Second)) {
			t.Errorf("%s: reset = %v, want within the next hour", s.name, reset)
		}
	}
}

func TestAccessRateLimitConcurrent(t *testing.T) {
	ctx := context.Background()
	x := accessSetup(t)
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := x.f.CheckRepository(ctx, forgeSlug, ""); err != nil {
				t.Error(err)
			}
			x.f.RateLimit()
		}()
	}
	wg.Wait()
	left, _ := x.f.RateLimit()
	if left < vcsfake.GitHubRateLimit-n || left >= vcsfake.GitHubRateLimit {
		t.Errorf("remaining after %d concurrent reads = %d, want in [%d, %d)", n, left, vcsfake.GitHubRateLimit-n, vcsfake.GitHubRateLimit)
	}
	if got := x.g.RateLimitedRequests(); got != n {
		t.Errorf("rate-limited requests = %d, want %d", got, n)
	}
}
