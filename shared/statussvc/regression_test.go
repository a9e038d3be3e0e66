package statussvc_test

// Regression tests for bugs a review found in Post: a post overtaking one
// in flight, a late request of one pipeline undoing another's status on
// the same commit, and retryable failures recorded as VCS refusals.

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"forgelink/shared/bolt"
	"forgelink/shared/forgelink"
	"forgelink/shared/forges"
	"forgelink/shared/github"
	"forgelink/shared/statussvc"
)

// holdFirstStatus is an http.RoundTripper in front of the fake GitHub that
// holds the first commit status POST before it reaches GitHub until
// release is closed: a consumer whose post is slow on the wire.
type holdFirstStatus struct {
	base    http.RoundTripper
	once    sync.Once
	held    chan struct{} // closed once the first POST is being held
	release chan struct{}
}

func (h *holdFirstStatus) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/statuses/") {
		first := false
		h.once.Do(func() { first = true })
		if first {
			close(h.held)
			select {
			case <-h.release:
			case <-r.Context().Done():
				return nil, r.Context().Err()
			}
		}
	}
	return h.base.RoundTrip(r)
}

// holdFirstGitHubStatus makes f's GitHub poster (still the real client
// against the fake) go through a holdFirstStatus, and returns it.
func (f *fixture) holdFirstGitHubStatus(t *testing.T) *holdFirstStatus {
	t.Helper()
	h := &holdFirstStatus{base: f.gh.Server.Client().Transport, held: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(func() {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
	})
	client := &http.Client{Transport: h}
	f.svc.Posters = forges.Posters(func(ctx context.Context, v forgelink.VCS) (forgelink.Forge, error) {
		if v != forgelink.GitHub {
			return nil, forgelink.Errorf(forgelink.Invalid, "unknown vcs %q", v)
		}
		return github.NewForge(f.gh.URL, f.gh.Token, client)
	})
	return h
}

func (f *fixture) report(t *testing.T, id string, state forgelink.StatusState) {
	t.Helper()
	if _, changed, err := f.svc.Report(t.Context(), id, statussvc.Report{State: state}); err != nil || !changed {
		t.Fatalf("Report(%s) on %s = changed %v, %v; want changed", state, id, changed, err)
	}
}

// lastRequest is the request the latest Report queued.
func (f *fixture) lastRequest(t *testing.T) *forgelink.StatusRequest {
	t.Helper()
	reqs := f.reqs.all()
	if len(reqs) == 0 {
		t.Fatal("no request queued")
	}
	return &reqs[len(reqs)-1]
}

// TestPostWaitsForAPostInFlight: the old postOne let a request for another
// state through while a post for the same (revision, context) was claimed
// and not yet confirmed - it only waited for a claim of the same state. So
// success was posted while the pending post was still on the wire, the
// pending arrived after it, and GitHub showed the pipeline pending for
// good. Now any fresh claim makes the request wait out the lease's rest
// (Transient, forgelink.RetryAfter).
func TestPostWaitsForAPostInFlight(t *testing.T) {
	f := newFixture(t)
	const lease = 10 * time.Second
	f.svc.ClaimLease = lease
	hold := f.holdFirstGitHubStatus(t)
	p := f.newPipeline(t, ghSlug, "build")

	pendingDone := make(chan error, 1)
	go func() { pendingDone <- f.svc.Post(context.Background(), request(p, forgelink.StatusPending)) }()
	select {
	case <-hold.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the pending post never reached the transport")
	}
	claim := f.posted(t, ghSlug, "build")
	if claim.Posted || claim.ClaimedAt.IsZero() || claim.State != forgelink.StatusPending {
		t.Fatalf("posted status while pending is on the wire = %+v, want pending claimed, not posted", claim)
	}

	// The executor reports success meanwhile; its request is consumed.
	f.report(t, p.ID, forgelink.StatusSuccess)
	success := f.lastRequest(t)
	start := time.Now()
	err := f.svc.Post(t.Context(), success)
	end := time.Now()
	after, ok := forgelink.RetryAfter(err)
	// The lease's rest as seen at some moment during the call.
	lo, hi := claim.ClaimedAt.Add(lease).Sub(end), claim.ClaimedAt.Add(lease).Sub(start)
	if forgelink.KindOf(err) != forgelink.Transient || !ok || after < lo || after > hi {
		t.Errorf("Post(success) during the pending post = %v (retry after %v, %v); want Transient, retry after the lease's rest %v..%v", err, after, ok, lo, hi)
	}
	if n := f.statusPosts(); n != 0 {
		t.Errorf("GitHub got %d status POSTs while the pending post was held, want none (success must wait)", n)
	}
	if ps := f.posted(t, ghSlug, "build"); ps.Version != claim.Version || ps.State != forgelink.StatusPending {
		t.Errorf("posted status = %+v, want the pending claim untouched (%+v)", ps, claim)
	}

	close(hold.release)
	if err := <-pendingDone; err != nil {
		t.Fatalf("Post(pending): %v", err)
	}
	// The queue retries success after the wait.
	f.post(t, success)
	if got := f.ghStates("ci/forgelink: build"); !slices.Equal(got, []string{"pending", "success"}) {
		t.Errorf("GitHub saw %v, want pending then success (never pending after success)", got)
	}
	if ps := f.posted(t, ghSlug, "build"); ps.State != forgelink.StatusSuccess || !ps.Posted || ps.Count != 2 {
		t.Errorf("posted status = %+v, want success posted, count 2", ps)
	}
	if errs := f.pipeline(t, p.ID).StatusErrors; len(errs) != 0 {
		t.Errorf("status errors = %q, want none: waiting is no refusal", errs)
	}
	if prob := f.project(t, ghSlug).VCSProblem; prob != nil {
		t.Errorf("VCS problem = %+v, want none", prob)
	}
}

// TestPostClaimOfAnotherState: a claim written directly, as a consumer
// would leave it mid-post. The old code waited only for a claim of the
// requested state, so each held case below posted at once.
func TestPostClaimOfAnotherState(t *testing.T) {
	const lease = 30 * time.Second
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		claimed   forgelink.StatusState
		byTag     bool // the claim is another pipeline's of the same commit
		claimedAt time.Time
		request   forgelink.StatusState
		wantPost  bool
	}{
		{"pending held, success requested", forgelink.StatusPending, false, now.Add(-10 * time.Second), forgelink.StatusSuccess, false},
		{"running held, failed requested", forgelink.StatusRunning, false, now.Add(-time.Second), forgelink.StatusFailed, false},
		{"another pipeline's pending held", forgelink.StatusPending, true, now.Add(-29 * time.Second), forgelink.StatusSuccess, false},
		{"pending claim expired", forgelink.StatusPending, false, now.Add(-lease - time.Second), forgelink.StatusSuccess, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.svc.ClaimLease = lease
			f.svc.Now = func() time.Time { return now }
			p := f.newPipeline(t, ghSlug, "build")
			owner := p.ID
			if tc.byTag {
				owner = f.create(t, &forgelink.Pipeline{Project: ghSlug.String(), State: forgelink.PipelineCreated,
					Trigger: forgelink.TriggerTag, Tag: "v1.0.0", Revision: rev, Workflows: []string{"build"}}).ID
			}
			claim := &forgelink.PostedStatus{Project: ghSlug.String(), Revision: rev, Context: forgelink.StatusContext("build"),
				PipelineID: owner, State: tc.claimed, ClaimedAt: tc.claimedAt, Count: 1}
			if err := f.st.PutPostedStatus(t.Context(), claim); err != nil {
				t.Fatal(err)
			}
			err := f.svc.Post(t.Context(), request(p, tc.request))
			if tc.wantPost {
				if err != nil {
					t.Fatalf("Post: %v", err)
				}
				if got := f.ghStates("ci/forgelink: build"); len(got) != 1 || got[0] != forgelink.GitHubState(tc.request) {
					t.Errorf("GitHub saw %v, want the expired claim taken over and %s posted", got, tc.request)
				}
				return
			}
			after, ok := forgelink.RetryAfter(err)
			if want := tc.claimedAt.Add(lease).Sub(now); forgelink.KindOf(err) != forgelink.Transient || !ok || after != want {
				t.Errorf("Post(%s) = %v (retry after %v, %v); want Transient, retry after %v", tc.request, err, after, ok, want)
			}
			if n := f.statusPosts(); n != 0 {
				t.Errorf("posted %d statuses under a fresh %s claim, want none", n, tc.claimed)
			}
			if ps := f.posted(t, ghSlug, "build"); ps.Version != 1 || ps.State != tc.claimed || ps.PipelineID != owner {
				t.Errorf("posted status = %+v, want the %s claim untouched", ps, tc.claimed)
			}
			if errs := f.pipeline(t, p.ID).StatusErrors; len(errs) != 0 {
				t.Errorf("status errors = %q, want none", errs)
			}
		})
	}
}

// TestPostLateRequestAfterAnotherPipeline: a branch pipeline and a tag
// pipeline on one commit post to the same contexts. The old postOne
// treated every request of a pipeline other than the one that posted last
// as starting afresh, so the branch pipeline's pending (or running)
// request, redelivered after the tag pipeline's success, posted pending
// over it and GitHub showed the commit pending for good. Now a request
// behind what its own pipeline reported posts nothing.
func TestPostLateRequestAfterAnotherPipeline(t *testing.T) {
	f := newFixture(t)
	branch := f.newPipeline(t, ghSlug, "build")
	branchPending := request(branch, forgelink.StatusPending)
	f.post(t, branchPending)
	f.report(t, branch.ID, forgelink.StatusRunning)
	branchRunning := f.lastRequest(t)
	f.post(t, branchRunning)
	f.report(t, branch.ID, forgelink.StatusSuccess)
	f.post(t, f.lastRequest(t))
	if got := f.pipeline(t, branch.ID).WorkflowState("build"); got != forgelink.StatusSuccess {
		t.Fatalf("branch pipeline's build = %s, want success", got)
	}

	tag := f.create(t, &forgelink.Pipeline{Project: ghSlug.String(), State: forgelink.PipelineCreated,
		Trigger: forgelink.TriggerTag, Tag: "v1.0.0", Revision: rev, Workflows: []string{"build"}})
	f.post(t, request(tag, forgelink.StatusPending))
	f.report(t, tag.ID, forgelink.StatusSuccess)
	f.post(t, f.lastRequest(t))
	want := []string{"pending", "success", "pending", "success"}
	if got := f.ghStates("ci/forgelink: build"); !slices.Equal(got, want) {
		t.Fatalf("GitHub saw %v before the redelivery, want %v", got, want)
	}
	before := f.posted(t, ghSlug, "build")

	// The branch pipeline's earlier requests come again (queue redelivery).
	for _, req := range []*forgelink.StatusRequest{branchPending, branchRunning} {
		r := *req
		f.post(t, &r)
	}
	if got := f.ghStates("ci/forgelink: build"); !slices.Equal(got, want) {
		t.Errorf("GitHub saw %v after late branch requests, want still %v (nothing posted)", got, want)
	}
	if n := f.statusPosts(); n != len(want) {
		t.Errorf("status POSTs = %d, want %d", n, len(want))
	}
	statuses := f.gh.Statuses(ghRepo, rev)
	if last := statuses[len(statuses)-1]; last.State != "success" || last.TargetURL != "https://ci.example.com/pipelines/"+tag.ID {
		t.Errorf("GitHub's last status = %+v, want the tag pipeline's success", last)
	}
	if ps := f.posted(t, ghSlug, "build"); ps.PipelineID != tag.ID || ps.State != forgelink.StatusSuccess || ps.Version != before.Version {
		t.Errorf("posted status = %+v, want the tag pipeline's success untouched (%+v)", ps, before)
	}
}

// accessLog is a statussvc.AccessObserver that records each call and, as
// orgaccess.Service does, writes what it learned on the project.
type accessLog struct {
	st    *bolt.Store
	mu    sync.Mutex
	calls []error
}

func (a *accessLog) Observe(ctx context.Context, slug forgelink.Slug, cause error) {
	a.mu.Lock()
	a.calls = append(a.calls, cause)
	a.mu.Unlock()
	p, err := a.st.GetProject(ctx, slug)
	if err != nil {
		return
	}
	p.Access = &forgelink.ProjectAccess{State: forgelink.AccessTokenRevoked, Detail: forgelink.MessageOf(cause), CheckedAt: time.Now().UTC()}
	_ = a.st.UpdateProject(ctx, p)
}

func (a *accessLog) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.calls)
}

// TestPostPostersFailureIsRetried: the old Post recorded any error of
// Posters (the VCS client for the project) as a refusal - a note on the
// pipeline, a VCS problem on the project - and dropped the request, even
// when it was Transient (a token store that timed out) or Internal. Now
// those are returned, so the queue retries.
func TestPostPostersFailureIsRetried(t *testing.T) {
	for _, kind := range []forgelink.Kind{forgelink.Transient, forgelink.Internal} {
		t.Run(kind.String(), func(t *testing.T) {
			f := newFixture(t)
			access := &accessLog{st: f.st}
			f.svc.Access = access
			var calls atomic.Int32
			f.svc.Posters = func(ctx context.Context, p *forgelink.Project) (forgelink.StatusPoster, error) {
				calls.Add(1)
				return nil, forgelink.Errorf(kind, "the token store did not answer")
			}
			p := f.newPipeline(t, ghSlug, "build")
			err := f.svc.Post(t.Context(), request(p, forgelink.StatusPending))
			if err == nil || forgelink.KindOf(err) != kind {
				t.Errorf("Post with Posters failing %s = %v, want that error returned (retry)", kind, err)
			}
			if calls.Load() != 1 {
				t.Errorf("Posters called %d times, want 1", calls.Load())
			}
			if errs := f.pipeline(t, p.ID).StatusErrors; len(errs) != 0 {
				t.Errorf("status errors = %q, want none: a retry may still post", errs)
			}
			proj := f.project(t, ghSlug)
			if proj.VCSProblem != nil {
				t.Errorf("VCS problem = %+v, want none", proj.VCSProblem)
			}
			if proj.Access != nil || access.count() != 0 {
				t.Errorf("project access = %+v after %d observer calls, want nil and none", proj.Access, access.count())
			}
			if n := len(f.gh.Requests()); n != 0 {
				t.Errorf("GitHub got %d requests", n)
			}
		})
	}

	// A refusal from Posters is still recorded and not retried, which is
	// what the assertions above tell apart.
	t.Run("Unauthorized is a refusal", func(t *testing.T) {
		f := newFixture(t)
		access := &accessLog{st: f.st}
		f.svc.Access = access
		f.svc.Posters = func(ctx context.Context, p *forgelink.Project) (forgelink.StatusPoster, error) {
			return nil, forgelink.Errorf(forgelink.Unauthorized, "the follower's token was revoked")
		}
		p := f.newPipeline(t, ghSlug, "build")
		if err := f.svc.Post(t.Context(), request(p, forgelink.StatusPending)); err != nil {
			t.Errorf("Post = %v, want nil (a refusal is not retried)", err)
		}
		errs := f.pipeline(t, p.ID).StatusErrors
		if len(errs) != 1 || !strings.Contains(errs[0], "could not post commit statuses: the follower's token was revoked") {
			t.Errorf("status errors = %q, want the refusal noted", errs)
		}
		proj := f.project(t, ghSlug)
		if proj.VCSProblem == nil || proj.VCSProblem.Kind != "unauthorized" {
			t.Errorf("VCS problem = %+v, want the refusal", proj.VCSProblem)
		}
		if proj.Access == nil || access.count() != 1 {
			t.Errorf("project access = %+v after %d observer calls, want it set by one", proj.Access, access.count())
		}
	})
}

// conflictingStore is a statussvc.Store whose PutPostedStatus always loses
// the conditional write, as under a storm of concurrent consumers.
type conflictingStore struct {
	*bolt.Store
	puts atomic.Int32
}

func (s *conflictingStore) PutPostedStatus(ctx context.Context, ps *forgelink.PostedStatus) error {
	s.puts.Add(1)
	return forgelink.Errorf(forgelink.Conflict, "posted status %s changed", ps.Context)
}

// TestPostStoreFailureIsRetried: the old postOne returned a store failure
// with the store's kind, and Post recorded every kind but Transient and
// Internal as a VCS refusal: after losing the conditional write every
// attempt (Conflict), the request was dropped with a note on the pipeline
// and a VCS problem on the project, and the status never posted. Now a
// store failure is Transient and the request retried.
func TestPostStoreFailureIsRetried(t *testing.T) {
	check := func(t *testing.T, f *fixture, st *conflictingStore, p *forgelink.Pipeline, err error, posts int) {
		t.Helper()
		if forgelink.KindOf(err) != forgelink.Transient {
			t.Errorf("Post with the store conflicting = %v, want Transient (retry)", err)
		}
		if n := st.puts.Load(); n < 2 {
			t.Errorf("PutPostedStatus tried %d times, want the write re-decided after a Conflict", n)
		}
		if n := f.statusPosts(); n != posts {
			t.Errorf("status POSTs = %d, want %d", n, posts)
		}
		if errs := f.pipeline(t, p.ID).StatusErrors; len(errs) != 0 {
			t.Errorf("status errors = %q, want none: the store, not the VCS, failed", errs)
		}
		if prob := f.project(t, ghSlug).VCSProblem; prob != nil {
			t.Errorf("VCS problem = %+v, want none", prob)
		}
	}
	t.Run("claim", func(t *testing.T) {
		f := newFixture(t)
		st := &conflictingStore{Store: f.st}
		f.svc.Store = st
		p := f.newPipeline(t, ghSlug, "build")
		err := f.svc.Post(t.Context(), request(p, forgelink.StatusPending))
		check(t, f, st, p, err, 0)
		if _, gerr := f.st.GetPostedStatus(t.Context(), ghSlug, rev, forgelink.StatusContext("build")); forgelink.KindOf(gerr) != forgelink.NotFound {
			t.Errorf("posted status after failed claims: %v, want none stored", gerr)
		}
	})
	t.Run("record a state the VCS shows already", func(t *testing.T) {
		f := newFixture(t)
		p := f.newPipeline(t, ghSlug, "build")
		f.post(t, request(p, forgelink.StatusPending))
		st := &conflictingStore{Store: f.st}
		f.svc.Store = st
		err := f.svc.Post(t.Context(), request(p, forgelink.StatusRunning))
		check(t, f, st, p, err, 1)
		if ps := f.posted(t, ghSlug, "build"); ps.State != forgelink.StatusPending {
			t.Errorf("posted status = %+v, want pending as it was", ps)
		}
	})
}

// TestPostLateFinalStateOfAnotherPipeline: the branch pipeline succeeded,
// then a tag pipeline on the same commit failed; a redelivery of the
// branch's success request (requested before the tag's post) must not turn
// GitHub's status back to success. The previous code posted it: the
// request was not behind its own pipeline's state.
func TestPostLateFinalStateOfAnotherPipeline(t *testing.T) {
	f := newFixture(t)
	branch := f.newPipeline(t, ghSlug, "build")
	f.post(t, request(branch, forgelink.StatusPending))
	f.report(t, branch.ID, forgelink.StatusSuccess)
	branchSuccess := f.lastRequest(t)
	f.post(t, branchSuccess)

	time.Sleep(2 * time.Millisecond) // the tag's posts come strictly later
	tag := f.create(t, &forgelink.Pipeline{Project: ghSlug.String(), State: forgelink.PipelineCreated,
		Trigger: forgelink.TriggerTag, Tag: "v1.0.1", Revision: rev, Workflows: []string{"build"}})
	f.post(t, request(tag, forgelink.StatusPending))
	f.report(t, tag.ID, forgelink.StatusFailed)
	f.post(t, f.lastRequest(t))
	want := []string{"pending", "success", "pending", "failure"}
	if got := f.ghStates("ci/forgelink: build"); !slices.Equal(got, want) {
		t.Fatalf("GitHub saw %v, want %v", got, want)
	}

	late := *branchSuccess
	f.post(t, &late)
	if got := f.ghStates("ci/forgelink: build"); !slices.Equal(got, want) {
		t.Errorf("GitHub saw %v after the branch's late success, want still %v", got, want)
	}

	// A new report of the branch pipeline, made after the tag's post, is
	// posted: the latest writer wins.
	f.post(t, &forgelink.StatusRequest{PipelineID: branch.ID, Project: branch.Project, Revision: rev,
		State: string(forgelink.StatusSuccess), RequestedAt: time.Now().UTC()})
	if got := f.ghStates("ci/forgelink: build"); !slices.Equal(got, append(want, "success")) {
		t.Errorf("GitHub saw %v after a new branch request, want the success posted", got)
	}
}
