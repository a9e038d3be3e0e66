package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/forgelink"
)

// StatusPipelineStore keeps pipelines and their commit statuses: what
// RunStatus tests, since a pipeline's status needs a pipeline.
type StatusPipelineStore interface {
	forgelink.PipelineStore
	forgelink.StatusStore
}

// statusWriters is how many goroutines race for one status version.
const statusWriters = 8

// RunStatus runs the forgelink.StatusStore contract against the stores
// newStore returns. Every subtest gets a new, empty store.
//
//	func TestStatusStore(t *testing.T) {
//		storetest.RunStatus(t, func(t *testing.T) storetest.StatusPipelineStore { return newStore(t) })
//	}
func RunStatus(t *testing.T, newStore func(t *testing.T) StatusPipelineStore) {
	t.Run("PostedStatus", func(t *testing.T) { testPostedStatus(t, newStore) })
	t.Run("PostedStatusStale", func(t *testing.T) { testPostedStatusStale(t, newStore) })
	t.Run("PostedStatusKeys", func(t *testing.T) { testPostedStatusKeys(t, newStore) })
	t.Run("PostedStatusInvalid", func(t *testing.T) { testPostedStatusInvalid(t, newStore) })
	t.Run("UpdatePipelineStatus", func(t *testing.T) { testUpdatePipelineStatus(t, newStore) })
	t.Run("UpdatePipelineStatusRefused", func(t *testing.T) { testUpdatePipelineStatusRefused(t, newStore) })
	t.Run("UpdatePipelineStatusCreated", func(t *testing.T) { testUpdatePipelineStatusCreated(t, newStore) })
	t.Run("Concurrent", func(t *testing.T) {
		t.Run("PutPostedStatus", func(t *testing.T) { testConcurrentPutPostedStatus(t, newStore) })
		t.Run("UpdatePipelineStatus", func(t *testing.T) { testConcurrentUpdatePipelineStatus(t, newStore) })
	})
}

var statusProject = forgelink.Slug{VCS: forgelink.GitHub, Org: "octo-org", Repo: "status"}

// postedStatus returns an unstored (Version 0) posted status with every
// field set.
func postedStatus(revision, statusContext string) *forgelink.PostedStatus {
	return &forgelink.PostedStatus{
		Project:    statusProject.String(),
		Revision:   revision,
		Context:    statusContext,
		PipelineID: "5034460f-c7c4-4c43-9457-de07e2029e7b",
		State:      forgelink.StatusPending,
		ClaimedAt:  base.In(time.FixedZone("UTC+1", 3600)),
		Count:      1,
	}
}

// checkPostedStatus checks that the store holds want for want's key.
func checkPostedStatus(t *testing.T, s forgelink.StatusStore, want *forgelink.PostedStatus) {
	t.Helper()
	got, err := s.GetPostedStatus(t.Context(), statusProject, want.Revision, want.Context)
	if err != nil {
		t.Fatalf("GetPostedStatus(%s, %q): %v", want.Revision, want.Context, err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("GetPostedStatus(%s, %q) mismatch (-want +got):\n%s", want.Revision, want.Context, diff)
	}
}

// checkNoPostedStatus checks that the store holds nothing for the key.
func checkNoPostedStatus(t *testing.T, s forgelink.StatusStore, project forgelink.Slug, revision, statusContext string) {
	t.Helper()
	got, err := s.GetPostedStatus(t.Context(), project, revision, statusContext)
	if err == nil {
		t.Errorf("GetPostedStatus(%s, %s, %q) = %+v, want NotFound", project, revision, statusContext, got)
		return
	}
	wantKind(t, fmt.Sprintf("GetPostedStatus(%s, %s, %q)", project, revision, statusContext), err, forgelink.NotFound)
}

// mustPutPostedStatus stores ps and checks that its Version went up by one.
func mustPutPostedStatus(t *testing.T, s forgelink.StatusStore, ps *forgelink.PostedStatus) {
	t.Helper()
	before := ps.Version
	if err := s.PutPostedStatus(t.Context(), ps); err != nil {
		t.Fatalf("PutPostedStatus(%s, %q, version %d): %v", ps.Revision, ps.Context, before, err)
	}
	if ps.Version != before+1 {
		t.Fatalf("after PutPostedStatus, Version = %d, want %d", ps.Version, before+1)
	}
}

func testPostedStatus(t *testing.T, newStore func(*testing.T) StatusPipelineStore) {
	s := newStore(t)
	statusCtx := forgelink.StatusContext("build")
	checkNoPostedStatus(t, s, statusProject, revision(1), statusCtx)

	ps := postedStatus(revision(1), statusCtx)
	mustPutPostedStatus(t, s, ps)
	checkPostedStatus(t, s, ps)

	// A consumer confirms what it claimed, from the version it read.
	read, err := s.GetPostedStatus(t.Context(), statusProject, revision(1), statusCtx)
	if err != nil {
		t.Fatal(err)
	}
	read.Posted = true
	read.Count = 2
	mustPutPostedStatus(t, s, read)
	if read.Version != 2 {
		t.Errorf("second PutPostedStatus left Version %d, want 2", read.Version)
	}
	checkPostedStatus(t, s, read)

	// The next state, claimed and not yet posted.
	read.State, read.Posted, read.ClaimedAt = forgelink.StatusSuccess, false, base.Add(time.Minute)
	mustPutPostedStatus(t, s, read)
	checkPostedStatus(t, s, read)
}

func testPostedStatusStale(t *testing.T, newStore func(*testing.T) StatusPipelineStore) {
	s := newStore(t)
	statusCtx := forgelink.StatusContext("")
	stored := postedStatus(revision(1), statusCtx)
	mustPutPostedStatus(t, s, stored) // version 1
	stored.Posted = true
	mustPutPostedStatus(t, s, stored) // version 2
	want := *stored

	tests := []struct {
		name    string
		version int64
	}{
		{"as if new", 0},
		{"stale", 1},
		{"ahead", 3},
		{"negative", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps := postedStatus(revision(1), statusCtx)
			ps.State, ps.Count, ps.Version = forgelink.StatusFailed, 99, tc.version
			wantKind(t, fmt.Sprintf("PutPostedStatus(version %d over 2)", tc.version), s.PutPostedStatus(t.Context(), ps), forgelink.Conflict)
			if ps.Version != tc.version {
				t.Errorf("a refused PutPostedStatus changed Version from %d to %d", tc.version, ps.Version)
			}
			checkPostedStatus(t, s, &want)
		})
	}

	t.Run("none stored", func(t *testing.T) {
		ps := postedStatus(revision(2), statusCtx)
		ps.Version = 1
		wantKind(t, "PutPostedStatus(version 1, none stored)", s.PutPostedStatus(t.Context(), ps), forgelink.Conflict)
		checkNoPostedStatus(t, s, statusProject, revision(2), statusCtx)
	})
}

// testPostedStatusKeys checks that every part of the key tells statuses
// apart, also when naive concatenation of the parts would not.
func testPostedStatusKeys(t *testing.T, newStore func(*testing.T) StatusPipelineStore) {
	s := newStore(t)
	other := forgelink.Slug{VCS: forgelink.Bitbucket, Org: "octo-org", Repo: "status"}
	tests := []struct {
		name    string
		project forgelink.Slug
		rev     string
		context string
	}{
		{"base", statusProject, "a", "ci/forgelink: build"},
		{"other context", statusProject, "a", "ci/forgelink: test"},
		{"other revision", statusProject, "b", "ci/forgelink: build"},
		{"other project", other, "a", "ci/forgelink: build"},
		{"separator in revision", statusProject, "a#ci/forgelink", "build"},
		{"separator in context", statusProject, "a", "ci/forgelink#build"},
		{"split elsewhere", statusProject, "a#ci", "forgelink#build"},
		{"escape in context", statusProject, "a", "ci/forgelink%23build"},
		{"empty-looking", statusProject, "a#", "#"},
	}
	stored := make([]*forgelink.PostedStatus, len(tests))
	for i, tc := range tests {
		ps := postedStatus(tc.rev, tc.context)
		ps.Project = tc.project.String()
		ps.Count = i
		mustPutPostedStatus(t, s, ps)
		stored[i] = ps
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.GetPostedStatus(t.Context(), tc.project, tc.rev, tc.context)
			if err != nil {
				t.Fatalf("GetPostedStatus: %v", err)
			}
			if diff := cmp.Diff(stored[i], got, cmpOpts...); diff != "" {
				t.Errorf("GetPostedStatus mismatch (-want +got):\n%s", diff)
			}
		})
	}
	checkNoPostedStatus(t, s, statusProject, "a", "ci/forgelink")
	checkNoPostedStatus(t, s, statusProject, "a#ci/forgelink: build", "")
	checkNoPostedStatus(t, s, other, "b", "ci/forgelink: build")
}

func testPostedStatusInvalid(t *testing.T, newStore func(*testing.T) StatusPipelineStore) {
	tests := []struct {
		name string
		edit func(ps *forgelink.PostedStatus)
	}{
		{"empty project", func(ps *forgelink.PostedStatus) { ps.Project = "" }},
		{"bad project", func(ps *forgelink.PostedStatus) { ps.Project = "gh/octo-org" }},
		{"empty revision", func(ps *forgelink.PostedStatus) { ps.Revision = "" }},
		{"empty context", func(ps *forgelink.PostedStatus) { ps.Context = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			ps := postedStatus(revision(1), forgelink.StatusContext("build"))
			tc.edit(ps)
			wantKind(t, "PutPostedStatus", s.PutPostedStatus(t.Context(), ps), forgelink.Invalid)
			if ps.Version != 0 {
				t.Errorf("an invalid PutPostedStatus set Version %d, want 0", ps.Version)
			}
		})
	}
}

// statusPipeline returns a pipeline of statusProject with its first
// statuses, as the trigger function creates it.
func statusPipeline(rev string) *forgelink.Pipeline {
	p := branchPipeline(statusProject, "main", rev)
	p.InitStatus()
	return p
}

// withStatus returns a copy of p with the status fields of from.
func withStatus(p, from *forgelink.Pipeline) *forgelink.Pipeline {
	c := clonePipeline(p)
	c.Status = from.Status
	c.WorkflowStatus = clonePipeline(from).WorkflowStatus
	c.StatusErrors = clonePipeline(from).StatusErrors
	c.StatusVersion = from.StatusVersion
	return c
}

func testUpdatePipelineStatus(t *testing.T, newStore func(*testing.T) StatusPipelineStore) {
	s := newStore(t)
	created := mustCreatePipeline(t, s, statusPipeline(revision(1)), 1)
	neighbour := mustCreatePipeline(t, s, statusPipeline(revision(2)), 2)

	steps := []struct {
		name     string
		status   forgelink.StatusState
		workflow map[string]forgelink.StatusState
		errors   []string
	}{
		{"running", forgelink.StatusRunning, map[string]forgelink.StatusState{"build": forgelink.StatusRunning, "test": forgelink.StatusPending}, nil},
		{"refused by the VCS", forgelink.StatusRunning, map[string]forgelink.StatusState{"build": forgelink.StatusSuccess, "test": forgelink.StatusRunning}, []string{"github: 403 Resource not accessible by integration"}},
		{"done, errors cleared", forgelink.StatusFailed, map[string]forgelink.StatusState{"build": forgelink.StatusSuccess, "test": forgelink.StatusFailed}, nil},
	}
	want := created
	for i, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			read, err := s.GetPipeline(t.Context(), created.ID)
			if err != nil {
				t.Fatal(err)
			}
			u := clonePipeline(read)
			u.Status, u.WorkflowStatus, u.StatusErrors = step.status, step.workflow, step.errors
			// Nothing but the status fields is written.
			u.State, u.Branch, u.Revision, u.Number = forgelink.PipelineErrored, "other", revision(9), 42
			u.Workflows, u.Errors, u.Actor = []string{"deploy"}, []string{"changed"}, "hubot"
			if err := s.UpdatePipelineStatus(t.Context(), u); err != nil {
				t.Fatalf("UpdatePipelineStatus: %v", err)
			}
			if u.StatusVersion != int64(i+1) {
				t.Errorf("after UpdatePipelineStatus, StatusVersion = %d, want %d", u.StatusVersion, i+1)
			}
			want = withStatus(created, u)
			// The store keeps no reference to the caller's map or slice.
			u.WorkflowStatus["build"] = forgelink.StatusCanceled
			if len(u.StatusErrors) > 0 {
				u.StatusErrors[0] = "changed"
			}
			checkPipeline(t, s, want)
			checkPipelines(t, s, statusProject, []*forgelink.Pipeline{want, neighbour})
		})
	}
	if want.StatusVersion != int64(len(steps)) {
		t.Fatalf("after %d updates the pipeline has StatusVersion %d", len(steps), want.StatusVersion)
	}
	checkPipeline(t, s, neighbour)
}

func testUpdatePipelineStatusRefused(t *testing.T, newStore func(*testing.T) StatusPipelineStore) {
	s := newStore(t)
	created := mustCreatePipeline(t, s, statusPipeline(revision(1)), 1)
	first := clonePipeline(created)
	first.Status = forgelink.StatusRunning
	first.WorkflowStatus = map[string]forgelink.StatusState{"build": forgelink.StatusRunning, "test": forgelink.StatusPending}
	if err := s.UpdatePipelineStatus(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	want := withStatus(created, first) // StatusVersion 1

	tests := []struct {
		name     string
		id       string
		version  int64
		wantKind forgelink.Kind
	}{
		{"stale", created.ID, 0, forgelink.Conflict},
		{"ahead", created.ID, 2, forgelink.Conflict},
		{"unknown id", "00000000-0000-4000-8000-000000000000", 0, forgelink.NotFound},
		{"unknown id, other version", created.ID + "x", 1, forgelink.NotFound},
		{"empty id", "", 0, forgelink.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := clonePipeline(want)
			u.ID, u.StatusVersion = tc.id, tc.version
			u.Status = forgelink.StatusCanceled
			u.WorkflowStatus = map[string]forgelink.StatusState{"build": forgelink.StatusCanceled, "test": forgelink.StatusCanceled}
			u.StatusErrors = []string{"must not be stored"}
			wantKind(t, fmt.Sprintf("UpdatePipelineStatus(%q, version %d)", tc.id, tc.version), s.UpdatePipelineStatus(t.Context(), u), tc.wantKind)
			if u.StatusVersion != tc.version {
				t.Errorf("a refused UpdatePipelineStatus changed StatusVersion from %d to %d", tc.version, u.StatusVersion)
			}
			checkPipeline(t, s, want)
		})
	}
}

// testUpdatePipelineStatusCreated checks that the StatusVersion a pipeline
// was created with is the one its first update must name.
func testUpdatePipelineStatusCreated(t *testing.T, newStore func(*testing.T) StatusPipelineStore) {
	s := newStore(t)
	p := statusPipeline(revision(1))
	p.StatusVersion = 5
	created := mustCreatePipeline(t, s, p, 1)

	u := clonePipeline(created)
	u.StatusVersion = 0
	u.Status = forgelink.StatusRunning
	wantKind(t, "UpdatePipelineStatus(version 0 of a pipeline created with 5)", s.UpdatePipelineStatus(t.Context(), u), forgelink.Conflict)
	checkPipeline(t, s, created)

	u.StatusVersion = 5
	if err := s.UpdatePipelineStatus(t.Context(), u); err != nil {
		t.Fatalf("UpdatePipelineStatus(version 5): %v", err)
	}
	if u.StatusVersion != 6 {
		t.Errorf("after UpdatePipelineStatus, StatusVersion = %d, want 6", u.StatusVersion)
	}
	checkPipeline(t, s, withStatus(created, u))
}

func testConcurrentPutPostedStatus(t *testing.T, newStore func(*testing.T) StatusPipelineStore) {
	s := newStore(t)
	statusCtx := forgelink.StatusContext("build")
	// First from nothing stored, then from the winner's version.
	for round, from := range []int64{0, 1} {
		ps := make([]*forgelink.PostedStatus, statusWriters)
		for i := range ps {
			ps[i] = postedStatus(revision(1), statusCtx)
			ps[i].PipelineID = fmt.Sprintf("round-%d-writer-%d", round, i)
			ps[i].Version = from
		}
		errs := race(statusWriters, func(i int) error { return s.PutPostedStatus(t.Context(), ps[i]) })
		w := oneWinner(t, errs, forgelink.Conflict)
		for i, p := range ps {
			want := from
			if i == w {
				want++
			}
			if p.Version != want {
				t.Errorf("round %d, writer %d: Version = %d, want %d", round, i, p.Version, want)
			}
		}
		checkPostedStatus(t, s, ps[w])
	}
}

func testConcurrentUpdatePipelineStatus(t *testing.T, newStore func(*testing.T) StatusPipelineStore) {
	s := newStore(t)
	created := mustCreatePipeline(t, s, statusPipeline(revision(1)), 1)
	// First from the created pipeline, then from the winner's version.
	for round, from := range []int64{0, 1} {
		us := make([]*forgelink.Pipeline, statusWriters)
		for i := range us {
			us[i] = clonePipeline(created)
			us[i].StatusVersion = from
			us[i].Status = forgelink.StatusRunning
			us[i].WorkflowStatus = map[string]forgelink.StatusState{"build": forgelink.StatusRunning, "test": forgelink.StatusPending}
			us[i].StatusErrors = []string{fmt.Sprintf("round-%d-writer-%d", round, i)}
		}
		errs := race(statusWriters, func(i int) error { return s.UpdatePipelineStatus(t.Context(), us[i]) })
		w := oneWinner(t, errs, forgelink.Conflict)
		for i, u := range us {
			want := from
			if i == w {
				want++
			}
			if u.StatusVersion != want {
				t.Errorf("round %d, writer %d: StatusVersion = %d, want %d", round, i, u.StatusVersion, want)
			}
		}
		checkPipeline(t, s, withStatus(created, us[w]))
	}
}
