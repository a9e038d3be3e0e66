package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"forgelink/shared/forgelink"
)

// writers is how many goroutines race for the same key in the concurrency
// tests.
const writers = 16

// Run runs the Store contract against the stores newStore returns. Every
// subtest gets a new, empty store.
func Run(t *testing.T, newStore func(t *testing.T) forgelink.Store) {
	t.Run("ProjectRoundTrip", func(t *testing.T) { testProjectRoundTrip(t, newStore) })
	t.Run("ProjectNotAliased", func(t *testing.T) { testProjectNotAliased(t, newStore) })
	t.Run("CreateProjectConflict", func(t *testing.T) { testCreateProjectConflict(t, newStore) })
	t.Run("CreateProjectInvalid", func(t *testing.T) { testCreateProjectInvalid(t, newStore) })
	t.Run("UpdateProject", func(t *testing.T) { testUpdateProject(t, newStore) })
	t.Run("UpdateProjectStale", func(t *testing.T) { testUpdateProjectStale(t, newStore) })
	t.Run("UpdateProjectHookID", func(t *testing.T) { testUpdateProjectHookID(t, newStore) })
	t.Run("DeleteProject", func(t *testing.T) { testDeleteProject(t, newStore) })
	t.Run("ListProjects", func(t *testing.T) { testListProjects(t, newStore) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, newStore) })
	t.Run("DeliveryRoundTrip", func(t *testing.T) { testDeliveryRoundTrip(t, newStore) })
	t.Run("CreateDeliveryDedup", func(t *testing.T) { testCreateDeliveryDedup(t, newStore) })
	t.Run("CreateDeliveryInvalid", func(t *testing.T) { testCreateDeliveryInvalid(t, newStore) })
	t.Run("ExpiredDelivery", func(t *testing.T) { testExpiredDelivery(t, newStore) })
	t.Run("SetDeliveryState", func(t *testing.T) { testSetDeliveryState(t, newStore) })
	t.Run("Concurrent", func(t *testing.T) {
		t.Run("CreateDelivery", func(t *testing.T) { testConcurrentCreateDelivery(t, newStore) })
		t.Run("CreateProjectSlug", func(t *testing.T) { testConcurrentCreateProjectSlug(t, newStore) })
		t.Run("CreateProjectHookID", func(t *testing.T) { testConcurrentCreateProjectHookID(t, newStore) })
		t.Run("UpdateProject", func(t *testing.T) { testConcurrentUpdateProject(t, newStore) })
		t.Run("DeleteProject", func(t *testing.T) { testConcurrentDeleteProject(t, newStore) })
	})
}

// cmpOpts compares stored values: a store need not keep nil and empty
// slices apart. time.Time is compared with its Equal method, so a store
// may return times in another location.
var cmpOpts = []cmp.Option{cmpopts.EquateEmpty()}

// base is a fixed time with milliseconds, the precision stores must keep.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

// project returns a project with every field set, named after repo.
func project(repo string) *forgelink.Project {
	return &forgelink.Project{
		Slug:          forgelink.Slug{VCS: forgelink.GitHub, Org: "octo-org", Repo: repo},
		State:         forgelink.Following,
		HookID:        "hook-" + repo,
		DefaultBranch: "main",
		Private:       true,
		FollowedBy:    "octocat",
		DeployKey: forgelink.SSHKey{
			PublicKey:         "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqDHpSQEIQczXkVx9q forgelink",
			FingerprintMD5:    "16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48",
			FingerprintSHA256: "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
			SealedPrivateKey:  []byte{0x00, 0x01, 0xfe, 0xff, 'k', 'e', 'y', 0x80},
			CreatedAt:         base.Add(-time.Hour),
		},
		DeployKeyVCSID: "1234567",
		WebhookVCSID:   "7654321",
		Secrets: []forgelink.WebhookSecret{
			{Sealed: []byte{0xde, 0xad, 0xbe, 0xef, 0x00}},
			{Sealed: []byte("older secret"), ExpiresAt: base.Add(24 * time.Hour)},
		},
		Settings: forgelink.Settings{
			BuildPRsOnly:              true,
			BuildForkPRs:              true,
			ForksReceiveSecretEnvVars: false,
			SetGitHubStatus:           true,
			AlwaysBuildBranches:       []string{"main", "release/*"},
		},
		// A non-UTC location: stores must keep the instant, not the zone.
		CreatedAt: base.Add(-2 * time.Hour).In(time.FixedZone("UTC+5:30", 5*3600+1800)),
		UpdatedAt: base,
	}
}

// delivery returns a delivery with every field set that expires in
// forgelink.DeliveryTTL.
func delivery(hookID, id string) *forgelink.Delivery {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &forgelink.Delivery{
		HookID:  hookID,
		ID:      id,
		Project: "gh/octo-org/hello",
		Event:   "push",
		Events: []forgelink.Event{
			{
				Type:          forgelink.BranchPush,
				Branch:        "main",
				Revision:      "6dcb09b5b57875f334f61aebed695e2e4193db5e",
				Before:        "0000000000000000000000000000000000000000",
				Message:       "Fix all the bugs [ci skip]",
				Actor:         "octocat",
				DefaultBranch: "main",
			},
			{
				Type:     forgelink.PullRequest,
				Branch:   "feature",
				Revision: "b5e6dcb09b57875f334f61aebed695e2e4193db5",
				Actor:    "hubot",
				PR: &forgelink.PR{
					Number:     42,
					Action:     forgelink.PRSynchronize,
					BaseBranch: "main",
					HeadRepo:   "hubot/hello",
					Fork:       true,
				},
			},
		},
		State:      forgelink.Received,
		ReceivedAt: now,
		ExpiresAt:  now.Add(forgelink.DeliveryTTL),
	}
}

func wantKind(t *testing.T, what string, err error, want forgelink.Kind) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got nil error, want kind %v", what, want)
		return
	}
	if got := forgelink.KindOf(err); got != want {
		t.Errorf("%s: got kind %v (%v), want %v", what, got, err, want)
	}
}

func mustCreateProject(t *testing.T, s forgelink.Store, p *forgelink.Project) {
	t.Helper()
	if err := s.CreateProject(t.Context(), p); err != nil {
		t.Fatalf("CreateProject(%s): %v", p.Slug, err)
	}
}

func mustGetProject(t *testing.T, s forgelink.Store, slug forgelink.Slug) *forgelink.Project {
	t.Helper()
	p, err := s.GetProject(t.Context(), slug)
	if err != nil {
		t.Fatalf("GetProject(%s): %v", slug, err)
	}
	return p
}

func mustCreateDelivery(t *testing.T, s forgelink.Store, d *forgelink.Delivery) {
	t.Helper()
	if err := s.CreateDelivery(t.Context(), d); err != nil {
		t.Fatalf("CreateDelivery(%s, %s): %v", d.HookID, d.ID, err)
	}
}

// checkProject checks that the store holds want under its slug and its
// hook id.
func checkProject(t *testing.T, s forgelink.Store, want *forgelink.Project) {
	t.Helper()
	got, err := s.GetProject(t.Context(), want.Slug)
	if err != nil {
		t.Fatalf("GetProject(%s): %v", want.Slug, err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("GetProject(%s) mismatch (-want +got):\n%s", want.Slug, diff)
	}
	got, err = s.GetProjectByHookID(t.Context(), want.HookID)
	if err != nil {
		t.Fatalf("GetProjectByHookID(%s): %v", want.HookID, err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("GetProjectByHookID(%s) mismatch (-want +got):\n%s", want.HookID, diff)
	}
}

func checkDelivery(t *testing.T, s forgelink.Store, want *forgelink.Delivery) {
	t.Helper()
	got, err := s.GetDelivery(t.Context(), want.HookID, want.ID)
	if err != nil {
		t.Fatalf("GetDelivery(%s, %s): %v", want.HookID, want.ID, err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("GetDelivery(%s, %s) mismatch (-want +got):\n%s", want.HookID, want.ID, diff)
	}
}

func testProjectRoundTrip(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	tests := []struct {
		name string
		p    *forgelink.Project
	}{
		{"full", project("full")},
		{"minimal", &forgelink.Project{
			Slug:   forgelink.Slug{VCS: forgelink.Bitbucket, Org: "ws", Repo: "minimal"},
			State:  forgelink.Pending,
			HookID: "hook-minimal",
		}},
		{"pending with one secret", func() *forgelink.Project {
			p := project("pending")
			p.Slug.VCS = forgelink.Bitbucket
			p.State = forgelink.Pending
			p.DeployKeyVCSID, p.WebhookVCSID = "", ""
			p.Secrets = p.Secrets[:1]
			p.Settings = forgelink.DefaultSettings()
			return p
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			want := tc.p.Clone()
			want.Version = 1
			tc.p.Version = 99 // the store sets it, whatever the caller had
			mustCreateProject(t, s, tc.p)
			if tc.p.Version != 1 {
				t.Errorf("after CreateProject, p.Version = %d, want 1", tc.p.Version)
			}
			checkProject(t, s, want)
		})
	}
}

// testProjectNotAliased checks that the store keeps no reference to the
// caller's project and hands out copies.
func testProjectNotAliased(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	s := newStore(t)
	p := project("alias")
	mustCreateProject(t, s, p)
	want := p.Clone()

	p.Secrets[0].Sealed[0] ^= 0xff
	p.DeployKey.SealedPrivateKey[0] ^= 0xff
	p.Settings.AlwaysBuildBranches[0] = "changed"
	p.FollowedBy = "changed"

	// Twice: a store may hand out copies of what it decoded before.
	for range 2 {
		got := mustGetProject(t, s, want.Slug)
		got.Secrets[0].Sealed[0] ^= 0xff
		got.DeployKey.SealedPrivateKey[0] ^= 0xff
		got.Settings.AlwaysBuildBranches[0] = "changed too"
		got.FollowedBy = "changed too"
		byHook, err := s.GetProjectByHookID(t.Context(), want.HookID)
		if err != nil {
			t.Fatalf("GetProjectByHookID: %v", err)
		}
		byHook.Secrets[0].Sealed[0] ^= 0xff
		byHook.Settings.AlwaysBuildBranches = append(byHook.Settings.AlwaysBuildBranches[:0], "changed by hook")
	}

	checkProject(t, s, want)
}

func testCreateProjectConflict(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	tests := []struct {
		name string
		edit func(p *forgelink.Project) // turns a copy of the stored project into the rival
	}{
		{"same slug", func(p *forgelink.Project) {
			p.HookID = "hook-rival"
			p.FollowedBy = "rival"
		}},
		{"same hook id", func(p *forgelink.Project) {
			p.Slug.Repo = "rival"
			p.FollowedBy = "rival"
		}},
		{"same slug and hook id", func(p *forgelink.Project) {
			p.FollowedBy = "rival"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			first := project("first")
			mustCreateProject(t, s, first)
			want := first.Clone()

			rival := first.Clone()
			rival.Version = 0
			tc.edit(rival)
			wantKind(t, "CreateProject(rival)", s.CreateProject(t.Context(), rival), forgelink.Conflict)
			if rival.Version != 0 {
				t.Errorf("after a failed CreateProject, p.Version = %d, want it unchanged (0)", rival.Version)
			}

			// The first project is untouched, and nothing of the rival was written.
			checkProject(t, s, want)
			if rival.Slug != want.Slug {
				_, err := s.GetProject(t.Context(), rival.Slug)
				wantKind(t, "GetProject(rival slug)", err, forgelink.NotFound)
			}
			if rival.HookID != want.HookID {
				_, err := s.GetProjectByHookID(t.Context(), rival.HookID)
				wantKind(t, "GetProjectByHookID(rival hook id)", err, forgelink.NotFound)
			}
		})
	}
}

func testCreateProjectInvalid(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	s := newStore(t)
	p := project("nohook")
	p.HookID = ""
	wantKind(t, "CreateProject(empty hook id)", s.CreateProject(t.Context(), p), forgelink.Invalid)
	_, err := s.GetProject(t.Context(), p.Slug)
	wantKind(t, "GetProject after invalid create", err, forgelink.NotFound)
}

func testUpdateProject(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	s := newStore(t)
	mustCreateProject(t, s, project("update"))

	p := mustGetProject(t, s, project("update").Slug)
	p.State = forgelink.Pending
	p.DefaultBranch = "trunk"
	p.Private = false
	p.FollowedBy = "hubot"
	p.DeployKey.SealedPrivateKey = []byte("resealed")
	p.DeployKeyVCSID = ""
	p.Secrets = []forgelink.WebhookSecret{{Sealed: []byte("newest")}}
	p.Settings = forgelink.Settings{AlwaysBuildBranches: []string{"trunk"}}
	p.UpdatedAt = base.Add(time.Minute)
	want := p.Clone()
	want.Version = 2

	if err := s.UpdateProject(t.Context(), p); err != nil {
		t.Fatalf("UpdateProject: %v", err)
	}
	if p.Version != 2 {
		t.Errorf("after UpdateProject, p.Version = %d, want 2", p.Version)
	}
	checkProject(t, s, want)

	// A second update from the returned Version succeeds too.
	p.FollowedBy = "octocat"
	if err := s.UpdateProject(t.Context(), p); err != nil {
		t.Fatalf("second UpdateProject: %v", err)
	}
	want.FollowedBy, want.Version = "octocat", 3
	if p.Version != 3 {
		t.Errorf("after second UpdateProject, p.Version = %d, want 3", p.Version)
	}
	checkProject(t, s, want)
}

func testUpdateProjectStale(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	s := newStore(t)
	mustCreateProject(t, s, project("stale"))
	slug := project("stale").Slug

	fresh := mustGetProject(t, s, slug)
	stale := mustGetProject(t, s, slug)
	fresh.FollowedBy = "fresh"
	if err := s.UpdateProject(t.Context(), fresh); err != nil {
		t.Fatalf("UpdateProject(fresh): %v", err)
	}
	want := fresh.Clone()

	tests := []struct {
		name    string
		version int64
	}{
		{"older", 1},
		{"zero", 0},
		{"newer", 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := stale.Clone()
			p.Version = tc.version
			p.FollowedBy = "stale"
			wantKind(t, "UpdateProject(stale)", s.UpdateProject(t.Context(), p), forgelink.Conflict)
			if p.Version != tc.version {
				t.Errorf("after a failed UpdateProject, p.Version = %d, want it unchanged (%d)", p.Version, tc.version)
			}
			checkProject(t, s, want)
		})
	}
}

func testUpdateProjectHookID(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	s := newStore(t)
	mustCreateProject(t, s, project("hook"))
	want := mustGetProject(t, s, project("hook").Slug)

	p := want.Clone()
	p.HookID = "hook-changed"
	wantKind(t, "UpdateProject(changed hook id)", s.UpdateProject(t.Context(), p), forgelink.Invalid)
	checkProject(t, s, want)
	_, err := s.GetProjectByHookID(t.Context(), "hook-changed")
	wantKind(t, "GetProjectByHookID(changed hook id)", err, forgelink.NotFound)
}

func testListProjects(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	s := newStore(t)
	got, err := s.ListProjects(t.Context())
	if err != nil || len(got) != 0 {
		t.Fatalf("ListProjects of an empty store = %v, %v; want none", got, err)
	}
	var want []*forgelink.Project
	for _, repo := range []string{"zeta", "alpha", "mid", "gone"} {
		p := project(repo)
		mustCreateProject(t, s, p)
		if repo == "gone" {
			if err := s.DeleteProject(t.Context(), p.Slug); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want = append(want, mustGetProject(t, s, p.Slug))
	}
	bb := project("alpha")
	bb.Slug.VCS, bb.HookID = forgelink.Bitbucket, "hook-bb-alpha"
	mustCreateProject(t, s, bb)
	want = append(want, mustGetProject(t, s, bb.Slug))
	slices.SortFunc(want, func(a, b *forgelink.Project) int { return strings.Compare(a.Slug.String(), b.Slug.String()) })
	got, err = s.ListProjects(t.Context())
	if err != nil {
		t.Fatalf("ListProjects: %v", err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("ListProjects (-want +got):\n%s", diff)
	}
}

func testDeleteProject(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	s := newStore(t)
	p := project("delete")
	mustCreateProject(t, s, p)
	other := project("other")
	mustCreateProject(t, s, other)
	wantOther := mustGetProject(t, s, other.Slug)

	if err := s.DeleteProject(t.Context(), p.Slug); err != nil {
		t.Fatalf("DeleteProject: %v", err)
	}
	_, err := s.GetProject(t.Context(), p.Slug)
	wantKind(t, "GetProject after delete", err, forgelink.NotFound)
	_, err = s.GetProjectByHookID(t.Context(), p.HookID)
	wantKind(t, "GetProjectByHookID after delete", err, forgelink.NotFound)
	wantKind(t, "DeleteProject again", s.DeleteProject(t.Context(), p.Slug), forgelink.NotFound)
	stale := p.Clone()
	wantKind(t, "UpdateProject after delete", s.UpdateProject(t.Context(), stale), forgelink.NotFound)

	// Other projects are untouched.
	checkProject(t, s, wantOther)

	// The hook id is free for another project, and the slug for a new one.
	reuse := project("reuse")
	reuse.HookID = p.HookID
	mustCreateProject(t, s, reuse)
	again := project("delete")
	again.HookID = "hook-again"
	again.Version = 5
	mustCreateProject(t, s, again)
	if again.Version != 1 {
		t.Errorf("re-created project has Version %d, want 1", again.Version)
	}
	checkProject(t, s, reuse)
	checkProject(t, s, again)
}

func testNotFound(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	s := newStore(t)
	// Something is stored, so a store that answers any key with it fails.
	mustCreateProject(t, s, project("present"))
	mustCreateDelivery(t, s, delivery("hook-present", "present"))

	missing := project("missing")
	missing.Version = 1
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"GetProject", func(ctx context.Context) error {
			_, err := s.GetProject(ctx, missing.Slug)
			return err
		}},
		{"GetProject other vcs", func(ctx context.Context) error {
			slug := project("present").Slug
			slug.VCS = forgelink.Bitbucket
			_, err := s.GetProject(ctx, slug)
			return err
		}},
		{"GetProjectByHookID", func(ctx context.Context) error {
			_, err := s.GetProjectByHookID(ctx, missing.HookID)
			return err
		}},
		{"UpdateProject", func(ctx context.Context) error { return s.UpdateProject(ctx, missing.Clone()) }},
		{"DeleteProject", func(ctx context.Context) error { return s.DeleteProject(ctx, missing.Slug) }},
		{"GetDelivery", func(ctx context.Context) error {
			_, err := s.GetDelivery(ctx, "hook-present", "missing")
			return err
		}},
		{"GetDelivery other hook", func(ctx context.Context) error {
			_, err := s.GetDelivery(ctx, "hook-missing", "present")
			return err
		}},
		{"SetDeliveryState", func(ctx context.Context) error {
			return s.SetDeliveryState(ctx, "hook-present", "missing", forgelink.Decided)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantKind(t, tc.name, tc.call(t.Context()), forgelink.NotFound)
		})
	}
	// A SetDeliveryState on a missing delivery creates nothing.
	_, err := s.GetDelivery(t.Context(), "hook-present", "missing")
	wantKind(t, "GetDelivery after SetDeliveryState on a missing delivery", err, forgelink.NotFound)
}

func testDeliveryRoundTrip(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	tests := []struct {
		name string
		d    *forgelink.Delivery
	}{
		{"full", delivery("hook-1", "72d3162e-cc78-11e3-81ab-4c9367dc0958")},
		{"no events", func() *forgelink.Delivery {
			d := delivery("hook-1", "ping")
			d.Event, d.Events = "ping", nil
			return d
		}()},
		{"enqueued", func() *forgelink.Delivery {
			d := delivery("hook-2", "{5a1b2c3d-bitbucket-uuid}")
			d.Event, d.State = "repo:push", forgelink.Decided
			return d
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			want := *tc.d
			mustCreateDelivery(t, s, tc.d)
			checkDelivery(t, s, &want)
		})
	}
}

func testCreateDeliveryDedup(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	s := newStore(t)
	first := delivery("hook-a", "d1")
	mustCreateDelivery(t, s, first)

	tests := []struct {
		name    string
		d       *forgelink.Delivery
		wantErr bool
	}{
		{"same hook and id", delivery("hook-a", "d1"), true},
		{"same key, other content", func() *forgelink.Delivery {
			d := delivery("hook-a", "d1")
			d.Event, d.State = "pull_request", forgelink.Decided
			return d
		}(), true},
		{"same id, other hook", delivery("hook-b", "d1"), false},
		{"other id, same hook", delivery("hook-a", "d2"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CreateDelivery(t.Context(), tc.d)
			if tc.wantErr {
				wantKind(t, "CreateDelivery", err, forgelink.Conflict)
				return
			}
			if err != nil {
				t.Fatalf("CreateDelivery: %v", err)
			}
			checkDelivery(t, s, tc.d)
		})
	}
	// The duplicates did not overwrite the first.
	checkDelivery(t, s, first)
}

func testCreateDeliveryInvalid(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	tests := []struct {
		name string
		edit func(d *forgelink.Delivery)
	}{
		{"empty hook id", func(d *forgelink.Delivery) { d.HookID = "" }},
		{"empty id", func(d *forgelink.Delivery) { d.ID = "" }},
		{"zero ExpiresAt", func(d *forgelink.Delivery) { d.ExpiresAt = time.Time{} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			d := delivery("hook-invalid", "invalid")
			tc.edit(d)
			wantKind(t, "CreateDelivery", s.CreateDelivery(t.Context(), d), forgelink.Invalid)
			if d.HookID != "" && d.ID != "" {
				_, err := s.GetDelivery(t.Context(), d.HookID, d.ID)
				wantKind(t, "GetDelivery after invalid create", err, forgelink.NotFound)
			}
		})
	}
}

func testExpiredDelivery(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	s := newStore(t)
	old := delivery("hook-x", "expired")
	old.ReceivedAt = time.Now().UTC().Add(-forgelink.DeliveryTTL - time.Hour).Truncate(time.Millisecond)
	old.ExpiresAt = time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	mustCreateDelivery(t, s, old)

	// A live delivery next to it stays visible.
	live := delivery("hook-x", "live")
	mustCreateDelivery(t, s, live)

	_, err := s.GetDelivery(t.Context(), old.HookID, old.ID)
	wantKind(t, "GetDelivery(expired)", err, forgelink.NotFound)
	wantKind(t, "SetDeliveryState(expired)", s.SetDeliveryState(t.Context(), old.HookID, old.ID, forgelink.Decided), forgelink.NotFound)
	checkDelivery(t, s, live)

	// An expired delivery is absent: the same key can be created again.
	again := delivery("hook-x", "expired")
	again.Event = "redelivered"
	if err := s.CreateDelivery(t.Context(), again); err != nil {
		t.Fatalf("CreateDelivery over an expired delivery: %v", err)
	}
	checkDelivery(t, s, again)
	wantKind(t, "CreateDelivery over the re-created delivery", s.CreateDelivery(t.Context(), delivery("hook-x", "expired")), forgelink.Conflict)
}

func testSetDeliveryState(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	s := newStore(t)
	d := delivery("hook-s", "s1")
	mustCreateDelivery(t, s, d)
	other := delivery("hook-s", "s2")
	mustCreateDelivery(t, s, other)

	tests := []struct {
		state forgelink.DeliveryState
	}{
		{forgelink.Decided},
		{forgelink.Received},
		{forgelink.Decided},
	}
	for _, tc := range tests {
		t.Run(string(tc.state), func(t *testing.T) {
			if err := s.SetDeliveryState(t.Context(), d.HookID, d.ID, tc.state); err != nil {
				t.Fatalf("SetDeliveryState(%s): %v", tc.state, err)
			}
			want := *d
			want.State = tc.state
			checkDelivery(t, s, &want)
		})
	}
	checkDelivery(t, s, other)
	// The state change did not make the delivery new again.
	wantKind(t, "CreateDelivery after SetDeliveryState", s.CreateDelivery(t.Context(), delivery("hook-s", "s1")), forgelink.Conflict)
}

// race runs f(0) … f(n-1) in goroutines released together and returns
// their errors.
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one error is nil and every other has kind
// loser, and returns the winner's index (-1 if none).
func oneWinner(t *testing.T, errs []error, loser forgelink.Kind) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case forgelink.KindOf(err) != loser:
			t.Errorf("writer %d: got kind %v (%v), want %v", i, forgelink.KindOf(err), err, loser)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer of %d won", len(errs))
	}
	return winner
}

func testConcurrentCreateDelivery(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	s := newStore(t)
	ds := make([]*forgelink.Delivery, writers)
	for i := range ds {
		ds[i] = delivery("hook-c", "same")
		ds[i].Event = fmt.Sprintf("writer-%d", i)
	}
	errs := race(writers, func(i int) error { return s.CreateDelivery(t.Context(), ds[i]) })
	w := oneWinner(t, errs, forgelink.Conflict)
	checkDelivery(t, s, ds[w])
}

func testConcurrentCreateProjectSlug(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	s := newStore(t)
	ps := make([]*forgelink.Project, writers)
	for i := range ps {
		ps[i] = project("same")
		ps[i].HookID = fmt.Sprintf("hook-%d", i)
	}
	errs := race(writers, func(i int) error { return s.CreateProject(t.Context(), ps[i]) })
	w := oneWinner(t, errs, forgelink.Conflict)
	checkProject(t, s, ps[w])
	for i, p := range ps {
		if i == w {
			continue
		}
		_, err := s.GetProjectByHookID(t.Context(), p.HookID)
		wantKind(t, fmt.Sprintf("GetProjectByHookID(loser %d)", i), err, forgelink.NotFound)
	}
}

func testConcurrentCreateProjectHookID(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	s := newStore(t)
	ps := make([]*forgelink.Project, writers)
	for i := range ps {
		ps[i] = project(fmt.Sprintf("repo-%d", i))
		ps[i].HookID = "hook-same"
	}
	errs := race(writers, func(i int) error { return s.CreateProject(t.Context(), ps[i]) })
	w := oneWinner(t, errs, forgelink.Conflict)
	checkProject(t, s, ps[w])
	for i, p := range ps {
		if i == w {
			continue
		}
		_, err := s.GetProject(t.Context(), p.Slug)
		wantKind(t, fmt.Sprintf("GetProject(loser %d)", i), err, forgelink.NotFound)
	}
}

func testConcurrentUpdateProject(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	s := newStore(t)
	mustCreateProject(t, s, project("contended"))
	read := mustGetProject(t, s, project("contended").Slug)

	ps := make([]*forgelink.Project, writers)
	for i := range ps {
		ps[i] = read.Clone()
		ps[i].FollowedBy = fmt.Sprintf("writer-%d", i)
	}
	errs := race(writers, func(i int) error { return s.UpdateProject(t.Context(), ps[i]) })
	w := oneWinner(t, errs, forgelink.Conflict)
	for i, p := range ps {
		want := read.Version
		if i == w {
			want++
		}
		if p.Version != want {
			t.Errorf("writer %d: p.Version = %d, want %d", i, p.Version, want)
		}
	}
	checkProject(t, s, ps[w])
}

func testConcurrentDeleteProject(t *testing.T, newStore func(*testing.T) forgelink.Store) {
	s := newStore(t)
	p := project("deleted")
	mustCreateProject(t, s, p)
	errs := race(writers, func(int) error { return s.DeleteProject(t.Context(), p.Slug) })
	oneWinner(t, errs, forgelink.NotFound)
	_, err := s.GetProject(t.Context(), p.Slug)
	wantKind(t, "GetProject after delete", err, forgelink.NotFound)
	_, err = s.GetProjectByHookID(t.Context(), p.HookID)
	wantKind(t, "GetProjectByHookID after delete", err, forgelink.NotFound)
}
