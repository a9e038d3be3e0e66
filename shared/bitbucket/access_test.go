package bitbucket_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/bitbucket"
	"forgelink/shared/forgelink"
	"forgelink/shared/vcsfake"
)

// accessFixture is a fake Bitbucket whose repository has a hook and a
// deploy key, and a Forge for it.
type accessFixture struct {
	b    *vcsfake.Bitbucket
	f    *bitbucket.Forge
	hook vcsfake.Hook
	key  vcsfake.Key
}

func accessSetup(t *testing.T) *accessFixture {
	t.Helper()
	b, f := forgeSetup(t)
	hook := b.AddHookDirect(forgeRepo, vcsfake.Hook{
		URL: "https://ci.example.com/hooks/bitbucket", Secret: "hook-secret", Events: bitbucket.HookEvents, Active: true,
	})
	key := b.AddKeyDirect(forgeRepo, "forgelink", vcsfake.NewPublicKey("k"))
	return &accessFixture{b: b, f: f, hook: hook, key: key}
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
			change: func(x *accessFixture) { x.b.AddRepo(forgeRepo, "trunk", true) },
		},
		{
			name: "hook",
			read: func(x *accessFixture, etag string) (forgelink.Probe, error) {
				h, err := x.f.CheckHook(ctx, forgeSlug, x.hook.ID, etag)
				return h.Probe, err
			},
			change: func(x *accessFixture) { x.b.SetHookActive(forgeRepo, x.hook.ID, false) },
		},
		{
			name: "deploy key",
			read: func(x *accessFixture, etag string) (forgelink.Probe, error) {
				return x.f.CheckDeployKey(ctx, forgeSlug, x.key.ID, etag)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := accessSetup(t)
			first, err := tc.read(x, "")
			if err != nil {
				t.Fatalf("unconditional read: %v", err)
			}
			if first.ETag == "" || first.NotModified {
				t.Fatalf("unconditional read = %+v, want an ETag and not NotModified", first)
			}
			second, err := tc.read(x, first.ETag)
			if want := (forgelink.Probe{ETag: first.ETag, NotModified: true}); err != nil || second != want {
				t.Errorf("conditional read = %+v, %v; want %+v", second, err, want)
			}
			reqs := x.b.Requests()
			if last := reqs[len(reqs)-1]; last.Status != http.StatusNotModified {
				t.Errorf("the fake answered the conditional read %d, want 304", last.Status)
			}
			if tc.change == nil {
				return
			}
			tc.change(x)
			third, err := tc.read(x, first.ETag)
			if err != nil || third.NotModified || third.ETag == "" || third.ETag == first.ETag {
				t.Errorf("conditional read after a change = %+v, %v; want a new ETag (old %s)", third, err, first.ETag)
			}
		})
	}
}

func TestAccessCheckHook(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		setup      func(x *accessFixture) string // the hook id to check
		wantActive bool
		wantKind   forgelink.Kind // Internal: no error
	}{
		{name: "active", setup: func(x *accessFixture) string { return x.hook.ID }, wantActive: true, wantKind: forgelink.Internal},
		{
			name: "inactive", wantKind: forgelink.Internal,
			setup: func(x *accessFixture) string {
				x.b.SetHookActive(forgeRepo, x.hook.ID, false)
				return x.hook.ID
			},
		},
		{
			name: "deleted", wantKind: forgelink.NotFound,
			setup: func(x *accessFixture) string {
				x.b.DeleteHookDirect(forgeRepo, x.hook.ID)
				return x.hook.ID
			},
		},
		{
			name: "not an admin", wantKind: forgelink.Forbidden,
			setup: func(x *accessFixture) string {
				x.b.SetPermission(forgeRepo, vcsfake.BitbucketUsername, "write")
				return x.hook.ID
			},
		},
		{name: "no id", setup: func(x *accessFixture) string { return "" }, wantKind: forgelink.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := accessSetup(t)
			id := tc.setup(x)
			got, err := x.f.CheckHook(ctx, forgeSlug, id, "")
			if tc.wantKind != forgelink.Internal {
				if forgelink.KindOf(err) != tc.wantKind || !strings.HasPrefix(err.Error(), "bitbucket: check hook "+id+" of "+forgeRepo+": ") {
					t.Errorf("CheckHook = %v (kind %v), want kind %v", err, forgelink.KindOf(err), tc.wantKind)
				}
				return
			}
			if err != nil || got.Active != tc.wantActive || got.ETag == "" || got.NotModified {
				t.Errorf("CheckHook = %+v, %v; want Active %v with an ETag", got, err, tc.wantActive)
			}
		})
	}
}

func TestAccessActivateHook(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		inactive bool
		wantPuts int
	}{
		{name: "inactive hook is turned on", inactive: true, wantPuts: 1},
		{name: "active hook is left alone", inactive: false, wantPuts: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := accessSetup(t)
			x.b.EditHookDirect(forgeRepo, x.hook.ID, func(h *vcsfake.Hook) { h.Events = []string{"repo:push"} })
			want := x.b.Hooks(forgeRepo)
			if tc.inactive {
				x.b.SetHookActive(forgeRepo, x.hook.ID, false)
			}
			if err := x.f.ActivateHook(ctx, forgeSlug, x.hook.ID); err != nil {
				t.Fatalf("ActivateHook: %v", err)
			}
			// Active again, with its URL, events and secret kept.
			if diff := cmp.Diff(want, x.b.Hooks(forgeRepo)); diff != "" {
				t.Errorf("hooks after ActivateHook (-want +got):\n%s", diff)
			}
			if n := forgeCount(x.b, http.MethodPut, "/hooks/"+x.hook.ID); n != tc.wantPuts {
				t.Errorf("%d PUT requests, want %d", n, tc.wantPuts)
			}
		})
	}

	x := accessSetup(t)
	x.b.DeleteHookDirect(forgeRepo, x.hook.ID)
	err := x.f.ActivateHook(ctx, forgeSlug, x.hook.ID)
	if forgelink.KindOf(err) != forgelink.NotFound || !strings.HasPrefix(err.Error(), "bitbucket: activate hook "+x.hook.ID+" of "+forgeRepo+": ") {
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
				x.b.DeleteKeyDirect(forgeRepo, x.key.ID)
			}
			p, err := x.f.CheckDeployKey(ctx, forgeSlug, x.key.ID, "")
			switch {
			case tc.wantKind == forgelink.Internal && (err != nil || p.ETag == ""):
				t.Errorf("CheckDeployKey = %+v, %v; want an ETag and no error", p, err)
			case tc.wantKind != forgelink.Internal && forgelink.KindOf(err) != tc.wantKind:
				t.Errorf("CheckDeployKey = %v (kind %v), want kind %v", err, forgelink.KindOf(err), tc.wantKind)
			case tc.wantKind != forgelink.Internal && !strings.HasPrefix(err.Error(), "bitbucket: check deploy key "+x.key.ID+" of "+forgeRepo+": "):
				t.Errorf("error = %q, want it to name the deploy key", err)
			}
		})
	}
}

func TestAccessNoDeliveriesAPI(t *testing.T) {
	ctx := context.Background()
	x := accessSetup(t)
	tests := []struct {
		name string
		call func() error
	}{
		{"RecentDeliveries", func() error {
			ds, p, err := x.f.RecentDeliveries(ctx, forgeSlug, x.hook.ID, time.Time{}, "")
			if ds != nil || p != (forgelink.Probe{}) {
				t.Errorf("RecentDeliveries = %v, %+v; want nothing", ds, p)
			}
			return err
		}},
		{"Redeliver", func() error { return x.f.Redeliver(ctx, forgeSlug, x.hook.ID, "1") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(x.b.Requests())
			err := tc.call()
			if forgelink.KindOf(err) != forgelink.Invalid || !strings.Contains(forgelink.MessageOf(err), "Bitbucket has no API to list or redeliver webhook deliveries") {
				t.Errorf("err = %v (kind %v), want Invalid saying Bitbucket has no such API", err, forgelink.KindOf(err))
			}
			if n := len(x.b.Requests()) - before; n != 0 {
				t.Errorf("%d requests, want none", n)
			}
		})
	}
}

func TestAccessOrgRole(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		workspace string
		perm      string // "-": leave unset
		want      string
		wantKind  forgelink.Kind // when want is ""
	}{
		{name: "owner is admin", workspace: "octo-ws", perm: "owner", want: "admin"},
		{name: "owner, other case", workspace: "Octo-WS", perm: "owner", want: "admin"},
		{name: "collaborator is member", workspace: "octo-ws", perm: "collaborator", want: "member"},
		{name: "member", workspace: "octo-ws", perm: "member", want: "member"},
		{name: "member by default", workspace: "octo-ws", perm: "-", want: "member"},
		{name: "not a member", workspace: "octo-ws", perm: "", wantKind: forgelink.NotFound},
		{name: "unknown workspace", workspace: "elsewhere", perm: "-", wantKind: forgelink.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := accessSetup(t)
			x.b.SetWorkspacePermission("other-ws", "owner") // never the answer
			if tc.perm != "-" {
				x.b.SetWorkspacePermission("octo-ws", tc.perm)
			}
			got, err := x.f.OrgRole(ctx, tc.workspace)
			if tc.want == "" {
				if forgelink.KindOf(err) != tc.wantKind || !strings.HasPrefix(err.Error(), "bitbucket: get permission in workspace "+tc.workspace+": ") {
					t.Errorf("OrgRole = %q, %v (kind %v); want kind %v", got, err, forgelink.KindOf(err), tc.wantKind)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("OrgRole = %q, %v; want %q", got, err, tc.want)
			}
			reqs := x.b.Requests()
			if last := reqs[len(reqs)-1]; !strings.HasSuffix(last.Path, "/user/permissions/workspaces") || !strings.Contains(last.Query, "workspace.slug") {
				t.Errorf("request = %+v, want /user/permissions/workspaces?q=workspace.slug=...", last)
			}
		})
	}
}

func TestAccessErrors(t *testing.T) {
	ctx := context.Background()
	calls := []struct {
		name, prefix string
		call         func(x *accessFixture) error
	}{
		{"CheckRepository", "bitbucket: check repository ", func(x *accessFixture) error {
			_, err := x.f.CheckRepository(ctx, forgeSlug, "")
			return err
		}},
		{"CheckHook", "bitbucket: check hook ", func(x *accessFixture) error {
			_, err := x.f.CheckHook(ctx, forgeSlug, x.hook.ID, "")
			return err
		}},
		{"ActivateHook", "bitbucket: activate hook ", func(x *accessFixture) error { return x.f.ActivateHook(ctx, forgeSlug, x.hook.ID) }},
		{"CheckDeployKey", "bitbucket: check deploy key ", func(x *accessFixture) error {
			_, err := x.f.CheckDeployKey(ctx, forgeSlug, x.key.ID, "")
			return err
		}},
		{"OrgRole", "bitbucket: get permission in workspace ", func(x *accessFixture) error {
			_, err := x.f.OrgRole(ctx, "octo-ws")
			return err
		}},
	}
	tests := []struct {
		name      string
		setup     func(b *vcsfake.Bitbucket)
		wantKind  forgelink.Kind
		wantState forgelink.AccessState // "": AccessStateOf says nothing
	}{
		{"revoked token", func(b *vcsfake.Bitbucket) { b.SetToken("bbat_other") }, forgelink.Unauthorized, forgelink.AccessTokenRevoked},
		{"repository gone", func(b *vcsfake.Bitbucket) { b.FailNext("", "", http.StatusNotFound, 1) }, forgelink.NotFound, forgelink.AccessRepoMissing},
		{"rate limited", func(b *vcsfake.Bitbucket) { b.FailNext("", "", http.StatusTooManyRequests, 1) }, forgelink.Transient, ""},
		{"server error", func(b *vcsfake.Bitbucket) { b.FailNext("", "", http.StatusBadGateway, 1) }, forgelink.Transient, ""},
	}
	for _, tc := range tests {
		for _, c := range calls {
			t.Run(tc.name+"/"+c.name, func(t *testing.T) {
				x := accessSetup(t)
				x.b.SetHookActive(forgeRepo, x.hook.ID, false) // so ActivateHook writes
				tc.setup(x.b)
				err := c.call(x)
				if got := forgelink.KindOf(err); got != tc.wantKind {
					t.Fatalf("err = %v (kind %v), want kind %v", err, got, tc.wantKind)
				}
				if !strings.HasPrefix(err.Error(), c.prefix) {
					t.Errorf("error = %q, want prefix %q", err, c.prefix)
				}
				if c.name == "OrgRole" {
					return // a workspace is not a repository
				}
				state, ok := forgelink.AccessStateOf(err)
				if tc.wantState != "" && (!ok || state != tc.wantState) || tc.wantState == "" && ok {
					t.Errorf("AccessStateOf = %q, %v; want %q", state, ok, tc.wantState)
				}
				if forgelink.IsOAuthRestricted(err) {
					t.Errorf("IsOAuthRestricted = true for Bitbucket")
				}
			})
		}
	}
}

func TestAccessRateLimit(t *testing.T) {
	x := accessSetup(t)
	if _, err := x.f.CheckRepository(context.Background(), forgeSlug, ""); err != nil {
		t.Fatal(err)
	}
	if left, reset := x.f.RateLimit(); left != -1 || !reset.IsZero() {
		t.Errorf("RateLimit = %d, %v; want -1 and the zero time", left, reset)
	}
}
