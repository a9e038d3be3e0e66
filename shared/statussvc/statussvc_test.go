package statussvc_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/bitbucket"
	"forgelink/shared/bolt"
	"forgelink/shared/forgelink"
	"forgelink/shared/forges"
	"forgelink/shared/github"
	"forgelink/shared/statussvc"
	"forgelink/shared/vcsfake"
)

const (
	ghRepo    = "octo-org/hello-world"
	bbRepo    = "team/repo"
	rev       = "366701fde727cb7a9e7f21eb88264f59f6f9b89c"
	publicURL = "https://ci.example.com/"
)

var (
	ghSlug = mustSlug("gh/" + ghRepo)
	bbSlug = mustSlug("bb/" + bbRepo)
)

func mustSlug(s string) forgelink.Slug {
	slug, err := forgelink.ParseSlug(s)
	if err != nil {
		panic(err)
	}
	return slug
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// requestLog is a statussvc.Requests that keeps every request; err, when
// set, refuses them.
type requestLog struct {
	mu   sync.Mutex
	reqs []forgelink.StatusRequest
	err  error
}

var _ statussvc.Requests = (*requestLog)(nil)

func (l *requestLog) Request(ctx context.Context, r *forgelink.StatusRequest) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	c := *r
	c.Workflows = slices.Clone(r.Workflows)
	l.reqs = append(l.reqs, c)
	return nil
}

func (l *requestLog) all() []forgelink.StatusRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}

// fixture is a Service over a bbolt store whose posters are the real
// GitHub and Bitbucket clients talking to the fakes.
type fixture struct {
	st   *bolt.Store
	gh   *vcsfake.GitHub
	bb   *vcsfake.Bitbucket
	reqs *requestLog
	svc  *statussvc.Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "forgelink.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	gh := vcsfake.NewGitHub(t)
	gh.AddRepo(ghRepo, "main", false)
	bb := vcsfake.NewBitbucket(t)
	bb.AddRepo(bbRepo, "main", true)
	vcs := func(ctx context.Context, v forgelink.VCS) (forgelink.Forge, error) {
		switch v {
		case forgelink.GitHub:
			return github.NewForge(gh.URL, gh.Token, gh.Server.Client())
		case forgelink.Bitbucket:
			return bitbucket.NewForge(bb.URL, bb.Token, bb.Server.Client())
		}
		return nil, forgelink.Errorf(forgelink.Invalid, "unknown vcs %q", v)
	}
	reqs := &requestLog{}
	f := &fixture{st: st, gh: gh, bb: bb, reqs: reqs, svc: &statussvc.Service{
		Store: st, Posters: forges.Posters(vcs), Requests: reqs, PublicURL: publicURL, Log: discard(),
	}}
	f.follow(t, ghSlug, true)
	f.follow(t, bbSlug, true)
	return f
}

func (f *fixture) follow(t *testing.T, slug forgelink.Slug, setStatus bool) {
	t.Helper()
	settings := forgelink.DefaultSettings()
	settings.SetGitHubStatus = setStatus
	p := &forgelink.Project{Slug: slug, State: forgelink.Following, HookID: "hk-" + string(slug.VCS) + "-" + slug.Repo,
		DefaultBranch: "main", Settings: settings, CreatedAt: time.Now().UTC()}
	if err := f.st.CreateProject(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) project(t *testing.T, slug forgelink.Slug) *forgelink.Project {
	t.Helper()
	p, err := f.st.GetProject(t.Context(), slug)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newPipeline stores a new pipeline of slug at rev on branch main with its
// first states (InitStatus).
func (f *fixture) newPipeline(t *testing.T, slug forgelink.Slug, workflows ...string) *forgelink.Pipeline {
	t.Helper()
	return f.create(t, &forgelink.Pipeline{Project: slug.String(), State: forgelink.PipelineCreated,
		Trigger: forgelink.TriggerPush, Branch: "main", Revision: rev, Workflows: workflows})
}

func (f *fixture) create(t *testing.T, p *forgelink.Pipeline) *forgelink.Pipeline {
	t.Helper()
	p.CreatedAt = time.Now().UTC()
	p.InitStatus()
	got, err := f.st.CreatePipeline(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (f *fixture) pipeline(t *testing.T, id string) *forgelink.Pipeline {
	t.Helper()
	p, err := f.st.GetPipeline(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) posted(t *testing.T, slug forgelink.Slug, workflow string) *forgelink.PostedStatus {
	t.Helper()
	ps, err := f.st.GetPostedStatus(t.Context(), slug, rev, forgelink.StatusContext(workflow))
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// request is the status request for every workflow of p, as the trigger
// and Report make it.
func request(p *forgelink.Pipeline, state forgelink.StatusState, workflows ...string) *forgelink.StatusRequest {
	return &forgelink.StatusRequest{PipelineID: p.ID, Project: p.Project, Revision: p.Revision,
		State: string(state), Workflows: workflows, RequestedAt: time.Now().UTC()}
}

func (f *fixture) post(t *testing.T, req *forgelink.StatusRequest) {
	t.Helper()
	if err := f.svc.Post(t.Context(), req); err != nil {
		t.Fatalf("Post(%s %v): %v", req.State, req.Workflows, err)
	}
}

// ghStates lists the GitHub states posted for context on rev, oldest
// first.
func (f *fixture) ghStates(context string) []string {
	var out []string
	for _, s := range f.gh.Statuses(ghRepo, rev) {
		if s.Context == context {
			out = append(out, s.State)
		}
	}
	return out
}

func (f *fixture) statusPosts() int { return f.gh.CountRequests(http.MethodPost, "/statuses/"+rev) }

func TestReport(t *testing.T) {
	t.Run("forward moves queue a request and update the pipeline", func(t *testing.T) {
		f := newFixture(t)
		p := f.newPipeline(t, ghSlug, "build", "test")
		got, changed, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: forgelink.StatusRunning,
			TargetURL: "https://executor.example.com/runs/1", Description: "started"})
		if err != nil || !changed {
			t.Fatalf("Report(running) = changed %v, %v; want changed", changed, err)
		}
		want := map[string]forgelink.StatusState{"build": forgelink.StatusRunning, "test": forgelink.StatusRunning}
		if diff := cmp.Diff(want, got.WorkflowStatus); diff != "" || got.Status != forgelink.StatusRunning {
			t.Errorf("returned pipeline status %s, workflows (-want +got):\n%s", got.Status, diff)
		}
		stored := f.pipeline(t, p.ID)
		if diff := cmp.Diff(want, stored.WorkflowStatus); diff != "" || stored.Status != forgelink.StatusRunning {
			t.Errorf("stored pipeline status %s, workflows (-want +got):\n%s", stored.Status, diff)
		}
		reqs := f.reqs.all()
		if len(reqs) != 1 {
			t.Fatalf("requests = %+v, want one", reqs)
		}
		wantReq := forgelink.StatusRequest{PipelineID: p.ID, Project: "gh/" + ghRepo, Revision: rev, State: "running",
			TargetURL: "https://executor.example.com/runs/1", Description: "started"}
		if diff := cmp.Diff(wantReq, reqs[0], cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".RequestedAt" }, cmp.Ignore())); diff != "" {
			t.Errorf("request (-want +got):\n%s", diff)
		}
		if reqs[0].RequestedAt.IsZero() {
			t.Errorf("request has no RequestedAt")
		}

		// On to success: a second request, the pipeline passes.
		if _, changed, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: forgelink.StatusSuccess}); err != nil || !changed {
			t.Fatalf("Report(success) = changed %v, %v", changed, err)
		}
		if got := f.pipeline(t, p.ID).Status; got != forgelink.StatusSuccess {
			t.Errorf("status after success = %s", got)
		}
		if n := len(f.reqs.all()); n != 2 {
			t.Errorf("requests after success = %d, want 2", n)
		}
	})

	t.Run("the same state again changes nothing", func(t *testing.T) {
		f := newFixture(t)
		p := f.newPipeline(t, ghSlug, "build")
		if _, changed, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: forgelink.StatusRunning}); err != nil || !changed {
			t.Fatalf("first Report(running) = changed %v, %v", changed, err)
		}
		version := f.pipeline(t, p.ID).StatusVersion
		got, changed, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: forgelink.StatusRunning})
		if err != nil || changed {
			t.Fatalf("second Report(running) = changed %v, %v; want unchanged, no error", changed, err)
		}
		if got.WorkflowState("build") != forgelink.StatusRunning {
			t.Errorf("returned pipeline's build = %s, want running", got.WorkflowState("build"))
		}
		if n := len(f.reqs.all()); n != 1 {
			t.Errorf("requests = %d, want only the first", n)
		}
		if v := f.pipeline(t, p.ID).StatusVersion; v != version {
			t.Errorf("status version moved from %d to %d on a repeat", version, v)
		}
		// A late pending is stale, not a mistake: nothing moves.
		if _, changed, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: forgelink.StatusPending}); err != nil || changed {
			t.Errorf("Report(pending) after running = changed %v, %v; want unchanged, no error", changed, err)
		}
		if n := len(f.reqs.all()); n != 1 {
			t.Errorf("requests after a late pending = %d, want 1", n)
		}
	})

	t.Run("backwards is a conflict naming both states", func(t *testing.T) {
		f := newFixture(t)
		p := f.newPipeline(t, ghSlug, "build")
		if _, _, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: forgelink.StatusSuccess}); err != nil {
			t.Fatal(err)
		}
		before := f.pipeline(t, p.ID)
		for _, to := range []forgelink.StatusState{forgelink.StatusRunning, forgelink.StatusFailed} {
			_, changed, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: to})
			msg := forgelink.MessageOf(err)
			if forgelink.KindOf(err) != forgelink.Conflict || changed || !strings.Contains(msg, "success") || !strings.Contains(msg, string(to)) {
				t.Errorf("Report(%s) after success = changed %v, %v; want a Conflict naming success and %s", to, changed, err, to)
			}
		}
		if n := len(f.reqs.all()); n != 1 {
			t.Errorf("requests = %d, want only success's", n)
		}
		if diff := cmp.Diff(before, f.pipeline(t, p.ID)); diff != "" {
			t.Errorf("pipeline changed by refused reports (-before +after):\n%s", diff)
		}
	})

	t.Run("a backwards move of one of several workflows names it", func(t *testing.T) {
		f := newFixture(t)
		p := f.newPipeline(t, ghSlug, "build", "test")
		if _, _, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: forgelink.StatusSuccess, Workflow: "test"}); err != nil {
			t.Fatal(err)
		}
		_, _, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: forgelink.StatusRunning})
		if forgelink.KindOf(err) != forgelink.Conflict || !strings.Contains(forgelink.MessageOf(err), "test") {
			t.Errorf("Report(running) with test done = %v, want a Conflict naming workflow test", err)
		}
		if got := f.pipeline(t, p.ID).WorkflowState("build"); got != forgelink.StatusPending {
			t.Errorf("build = %s after a refused report, want still pending", got)
		}
	})

	for _, tc := range []struct {
		name     string
		pipeline string // "" is the fixture's pipeline
		report   statussvc.Report
		want     forgelink.Kind
	}{
		{"unknown workflow", "", statussvc.Report{State: forgelink.StatusRunning, Workflow: "deploy"}, forgelink.Invalid},
		{"unknown pipeline", "00000000-0000-4000-8000-000000000000", statussvc.Report{State: forgelink.StatusRunning}, forgelink.NotFound},
		{"unknown state", "", statussvc.Report{State: "done"}, forgelink.Invalid},
		{"ftp target URL", "", statussvc.Report{State: forgelink.StatusRunning, TargetURL: "ftp://ci.example.com/1"}, forgelink.Invalid},
		{"javascript target URL", "", statussvc.Report{State: forgelink.StatusRunning, TargetURL: "javascript:alert(1)"}, forgelink.Invalid},
		{"relative target URL", "", statussvc.Report{State: forgelink.StatusRunning, TargetURL: "/pipelines/1"}, forgelink.Invalid},
		{"target URL with a space", "", statussvc.Report{State: forgelink.StatusRunning, TargetURL: "https://ci.example.com/a b"}, forgelink.Invalid},
		{"target URL too long", "", statussvc.Report{State: forgelink.StatusRunning, TargetURL: "https://ci.example.com/" + strings.Repeat("a", 2048)}, forgelink.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			p := f.newPipeline(t, ghSlug, "build", "test")
			id := tc.pipeline
			if id == "" {
				id = p.ID
			}
			_, changed, err := f.svc.Report(t.Context(), id, tc.report)
			if forgelink.KindOf(err) != tc.want || changed {
				t.Errorf("Report = changed %v, %v; want %s", changed, err, tc.want)
			}
			if reqs := f.reqs.all(); len(reqs) != 0 {
				t.Errorf("requests = %+v, want none", reqs)
			}
			if diff := cmp.Diff(p, f.pipeline(t, p.ID)); diff != "" {
				t.Errorf("pipeline changed (-before +after):\n%s", diff)
			}
		})
	}

	t.Run("one workflow of two queues only that workflow", func(t *testing.T) {
		f := newFixture(t)
		p := f.newPipeline(t, ghSlug, "build", "test")
		got, changed, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: forgelink.StatusSuccess, Workflow: "build"})
		if err != nil || !changed {
			t.Fatalf("Report = changed %v, %v", changed, err)
		}
		want := map[string]forgelink.StatusState{"build": forgelink.StatusSuccess, "test": forgelink.StatusPending}
		if diff := cmp.Diff(want, f.pipeline(t, p.ID).WorkflowStatus); diff != "" {
			t.Errorf("workflow states (-want +got):\n%s", diff)
		}
		if got.Status != forgelink.StatusRunning {
			t.Errorf("overall status = %s, want running (one done, one pending)", got.Status)
		}
		reqs := f.reqs.all()
		if len(reqs) != 1 || !slices.Equal(reqs[0].Workflows, []string{"build"}) || reqs[0].State != "success" {
			t.Errorf("requests = %+v, want one success for [build]", reqs)
		}
		// Every workflow to running now moves only test (build is done, a
		// Conflict for it), so the report is refused as a whole.
		if _, _, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: forgelink.StatusRunning}); forgelink.KindOf(err) != forgelink.Conflict {
			t.Errorf("Report(running) for all = %v, want Conflict (build is done)", err)
		}
		// Every workflow to success moves only test: the request names it.
		if _, changed, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: forgelink.StatusSuccess}); err != nil || !changed {
			t.Fatalf("Report(success) for all = changed %v, %v", changed, err)
		}
		reqs = f.reqs.all()
		if len(reqs) != 2 || !slices.Equal(reqs[1].Workflows, []string{"test"}) {
			t.Errorf("second request = %+v, want workflows [test]", reqs[len(reqs)-1])
		}
		if got := f.pipeline(t, p.ID).Status; got != forgelink.StatusSuccess {
			t.Errorf("overall status = %s, want success", got)
		}
	})

	t.Run("a failed request leaves the pipeline as it was", func(t *testing.T) {
		f := newFixture(t)
		p := f.newPipeline(t, ghSlug, "build")
		f.reqs.err = forgelink.Errorf(forgelink.Transient, "queue unavailable")
		_, changed, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: forgelink.StatusRunning})
		if forgelink.KindOf(err) != forgelink.Transient || changed {
			t.Errorf("Report = changed %v, %v; want the Transient queue error", changed, err)
		}
		if diff := cmp.Diff(p, f.pipeline(t, p.ID)); diff != "" {
			t.Errorf("pipeline recorded a state that was never queued (-before +after):\n%s", diff)
		}
	})

	t.Run("concurrent equal reports: one changes the pipeline", func(t *testing.T) {
		f := newFixture(t)
		p := f.newPipeline(t, ghSlug, "build", "test")
		const n = 8
		var wg sync.WaitGroup
		changes := make(chan bool, n)
		errs := make(chan error, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, changed, err := f.svc.Report(context.Background(), p.ID, statussvc.Report{State: forgelink.StatusRunning})
				changes <- changed
				errs <- err
			}()
		}
		wg.Wait()
		close(changes)
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("Report: %v", err)
			}
		}
		got := 0
		for c := range changes {
			if c {
				got++
			}
		}
		if got != 1 {
			t.Errorf("%d of %d equal reports changed the pipeline, want 1", got, n)
		}
		stored := f.pipeline(t, p.ID)
		if stored.Status != forgelink.StatusRunning || stored.StatusVersion != 1 {
			t.Errorf("pipeline status %s version %d, want running written once", stored.Status, stored.StatusVersion)
		}
	})
}

func TestPostFirstPendingOncePerWorkflow(t *testing.T) {
	f := newFixture(t)
	p := f.newPipeline(t, ghSlug, "build", "test")
	req := request(p, forgelink.StatusPending)
	f.post(t, req)
	got := f.gh.Statuses(ghRepo, rev)
	target := "https://ci.example.com/pipelines/" + p.ID
	want := []vcsfake.Status{
		{SHA: rev, State: "pending", Context: "ci/forgelink: build", TargetURL: target, Description: "Workflow build is queued"},
		{SHA: rev, State: "pending", Context: "ci/forgelink: test", TargetURL: target, Description: "Workflow test is queued"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GitHub statuses (-want +got):\n%s", diff)
	}
	for _, w := range []string{"build", "test"} {
		ps := f.posted(t, ghSlug, w)
		if ps.State != forgelink.StatusPending || !ps.Posted || ps.Count != 1 || ps.PipelineID != p.ID {
			t.Errorf("posted status of %s = %+v, want pending posted once by the pipeline", w, ps)
		}
	}

	// The same request again (a queue redelivery) posts nothing.
	f.post(t, req)
	if n := f.statusPosts(); n != 2 {
		t.Errorf("status posts after a duplicate = %d, want 2", n)
	}
	// So does a request for one workflow with a given URL and description.
	one := request(p, forgelink.StatusPending, "test")
	one.TargetURL, one.Description = "https://elsewhere.example.com/", "again"
	f.post(t, one)
	if n := f.statusPosts(); n != 2 {
		t.Errorf("status posts after a duplicate for one workflow = %d, want 2", n)
	}
}

func TestPostGivenTargetAndDescription(t *testing.T) {
	f := newFixture(t)
	p := f.newPipeline(t, ghSlug, "build")
	req := request(p, forgelink.StatusFailed)
	req.TargetURL = "https://executor.example.com/runs/7"
	req.Description = "step \"make test\"\nexited   with 2\t" + strings.Repeat("x", 200)
	f.post(t, req)
	got := f.gh.Statuses(ghRepo, rev)
	if len(got) != 1 {
		t.Fatalf("statuses = %+v, want one", got)
	}
	want := forgelink.StatusDescription(forgelink.StatusFailed, "build", req.Description)
	if got[0].State != "failure" || got[0].TargetURL != req.TargetURL || got[0].Description != want {
		t.Errorf("status = %+v, want failure with the given URL and description %q", got[0], want)
	}
	if !strings.HasPrefix(got[0].Description, `step "make test" exited with 2 xxx`) || !strings.HasSuffix(got[0].Description, "…") {
		t.Errorf("description %q: want white space collapsed and the text cut with …", got[0].Description)
	}
}

func TestPostLatePendingAfterSuccess(t *testing.T) {
	f := newFixture(t)
	p := f.newPipeline(t, ghSlug, "build")
	f.post(t, request(p, forgelink.StatusSuccess))
	f.post(t, request(p, forgelink.StatusPending))
	f.post(t, request(p, forgelink.StatusRunning))
	if got := f.ghStates("ci/forgelink: build"); !slices.Equal(got, []string{"success"}) {
		t.Errorf("GitHub saw %v, want only success (late pending and running are stale)", got)
	}
	if ps := f.posted(t, ghSlug, "build"); ps.State != forgelink.StatusSuccess || ps.Count != 1 {
		t.Errorf("posted status = %+v, want success, count 1", ps)
	}
}

func TestPostRunningAfterPendingGitHub(t *testing.T) {
	f := newFixture(t)
	p := f.newPipeline(t, ghSlug, "build")
	f.post(t, request(p, forgelink.StatusPending))
	if _, _, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: forgelink.StatusRunning}); err != nil {
		t.Fatal(err)
	}
	f.post(t, &f.reqs.all()[0])
	if got := f.ghStates("ci/forgelink: build"); !slices.Equal(got, []string{"pending"}) {
		t.Errorf("GitHub saw %v after running, want only pending (running is GitHub's pending)", got)
	}
	ps := f.posted(t, ghSlug, "build")
	if ps.State != forgelink.StatusRunning || !ps.Posted || ps.Count != 1 {
		t.Errorf("posted status = %+v, want running recorded, posted, count still 1", ps)
	}
	if _, _, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: forgelink.StatusSuccess}); err != nil {
		t.Fatal(err)
	}
	f.post(t, &f.reqs.all()[1])
	if got := f.ghStates("ci/forgelink: build"); !slices.Equal(got, []string{"pending", "success"}) {
		t.Errorf("GitHub saw %v, want pending then success", got)
	}
	if ps := f.posted(t, ghSlug, "build"); ps.State != forgelink.StatusSuccess || ps.Count != 2 {
		t.Errorf("posted status = %+v, want success, count 2", ps)
	}
}

func TestPostConcurrentSameRequest(t *testing.T) {
	f := newFixture(t)
	p := f.newPipeline(t, ghSlug, "build")
	req := request(p, forgelink.StatusPending)
	const n = 8
	errs := make(chan error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := *req
			errs <- f.svc.Post(context.Background(), &r)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil {
			continue
		}
		// A consumer that found the post claimed by another waits for it.
		if _, ok := forgelink.RetryAfter(err); forgelink.KindOf(err) != forgelink.Transient || !ok {
			t.Errorf("Post = %v, want nil or Transient with RetryAfter", err)
		}
	}
	if got := f.statusPosts(); got != 1 {
		t.Errorf("%d concurrent posts of one request reached GitHub %d times, want 1", n, got)
	}
	if ps := f.posted(t, ghSlug, "build"); !ps.Posted || ps.Count != 1 {
		t.Errorf("posted status = %+v, want posted, count 1", ps)
	}
	// Losing the claim is no refusal by the VCS.
	if errs := f.pipeline(t, p.ID).StatusErrors; len(errs) != 0 {
		t.Errorf("status errors = %q, want none", errs)
	}
	if prob := f.project(t, ghSlug).VCSProblem; prob != nil {
		t.Errorf("VCS problem = %+v, want none", prob)
	}
}

func TestPostClaims(t *testing.T) {
	const lease = 30 * time.Second
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		claimedAt time.Time
		wantPost  bool
	}{
		{"held by another consumer", now.Add(-10 * time.Second), false},
		{"just claimed", now, false},
		{"expired", now.Add(-lease - time.Second), true},
		{"released after a failure", time.Time{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.svc.ClaimLease = lease
			f.svc.Now = func() time.Time { return now }
			p := f.newPipeline(t, ghSlug, "build")
			claim := &forgelink.PostedStatus{Project: ghSlug.String(), Revision: rev, Context: forgelink.StatusContext("build"),
				PipelineID: p.ID, State: forgelink.StatusPending, ClaimedAt: tc.claimedAt}
			if err := f.st.PutPostedStatus(t.Context(), claim); err != nil {
				t.Fatal(err)
			}
			err := f.svc.Post(t.Context(), request(p, forgelink.StatusPending))
			if tc.wantPost {
				if err != nil {
					t.Fatalf("Post: %v", err)
				}
				if got := f.ghStates("ci/forgelink: build"); !slices.Equal(got, []string{"pending"}) {
					t.Errorf("GitHub saw %v, want the claim taken over and pending posted once", got)
				}
				if ps := f.posted(t, ghSlug, "build"); !ps.Posted || ps.Count != 1 || !ps.ClaimedAt.Equal(now) {
					t.Errorf("posted status = %+v, want posted by this consumer at %s", ps, now)
				}
				return
			}
			after, ok := forgelink.RetryAfter(err)
			wantAfter := tc.claimedAt.Add(lease).Sub(now)
			if forgelink.KindOf(err) != forgelink.Transient || !ok || after != wantAfter {
				t.Errorf("Post = %v (retry after %v, %v); want Transient, retry after %v", err, after, ok, wantAfter)
			}
			if n := f.statusPosts(); n != 0 {
				t.Errorf("posted %d statuses under another's claim", n)
			}
			if ps := f.posted(t, ghSlug, "build"); ps.Posted || !ps.ClaimedAt.Equal(tc.claimedAt) || ps.Version != 1 {
				t.Errorf("posted status = %+v, want the other's claim untouched", ps)
			}
		})
	}
}

func TestPostServerErrorThenRetry(t *testing.T) {
	f := newFixture(t)
	p := f.newPipeline(t, ghSlug, "build")
	req := request(p, forgelink.StatusPending)
	f.gh.FailNext(http.MethodPost, "/statuses/"+rev, http.StatusBadGateway, 1)
	err := f.svc.Post(t.Context(), req)
	if forgelink.KindOf(err) != forgelink.Transient {
		t.Fatalf("Post with a 502 = %v, want Transient", err)
	}
	ps := f.posted(t, ghSlug, "build")
	if ps.Posted || !ps.ClaimedAt.IsZero() || ps.Count != 0 {
		t.Errorf("posted status after a 502 = %+v, want unposted with the claim released", ps)
	}
	if errs := f.pipeline(t, p.ID).StatusErrors; len(errs) != 0 {
		t.Errorf("status errors after a 502 = %q, want none (it is retried)", errs)
	}
	f.post(t, req)
	f.post(t, req)
	if got := f.ghStates("ci/forgelink: build"); !slices.Equal(got, []string{"pending"}) {
		t.Errorf("GitHub saw %v, want pending once", got)
	}
	if n := f.statusPosts(); n != 2 {
		t.Errorf("POSTs = %d, want the 502 and one retry", n)
	}
}

func TestPostRateLimited(t *testing.T) {
	secondary := string(readCorpus(t, "github/errors/secondary_rate_limit.403.json"))
	for _, tc := range []struct {
		name      string
		fail      func(f *fixture)
		min, max  time.Duration
		bitbucket bool
	}{
		{"429 with Retry-After", func(f *fixture) {
			f.gh.FailNext(http.MethodPost, "/statuses/"+rev, http.StatusTooManyRequests, 1)
		}, time.Second, time.Second, false},
		{"secondary rate limit 403 with Retry-After", func(f *fixture) {
			f.gh.FailNext(http.MethodPost, "/statuses/"+rev, http.StatusForbidden, 1)
		}, time.Second, time.Second, false},
		{"secondary rate limit 403 with Retry-After: 30", func(f *fixture) {
			f.gh.FailNextResponse(http.MethodPost, "/statuses/"+rev, 1, http.StatusForbidden, http.Header{"Retry-After": {"30"}}, secondary)
		}, 30 * time.Second, 30 * time.Second, false},
		{"secondary rate limit 403 without Retry-After", func(f *fixture) {
			f.gh.FailNextResponse(http.MethodPost, "/statuses/"+rev, 1, http.StatusForbidden, nil, secondary)
		}, time.Minute, time.Minute, false},
		{"primary rate limit spent", func(f *fixture) {
			f.gh.SetRateLimitRemaining(0)
		}, 50 * time.Minute, time.Hour, false},
		{"Bitbucket 429", func(f *fixture) {
			f.bb.FailNext(http.MethodPost, "/statuses/build", http.StatusTooManyRequests, 1)
		}, time.Second, time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			slug := ghSlug
			if tc.bitbucket {
				slug = bbSlug
			}
			p := f.newPipeline(t, slug, "build")
			tc.fail(f)
			err := f.svc.Post(t.Context(), request(p, forgelink.StatusPending))
			after, ok := forgelink.RetryAfter(err)
			if forgelink.KindOf(err) != forgelink.Transient || !ok || after < tc.min || after > tc.max {
				t.Errorf("Post = %v (retry after %v, %v); want Transient, retry after %v..%v", err, after, ok, tc.min, tc.max)
			}
			if n := f.gh.StatusPosts() + f.bb.StatusPosts(); n != 0 {
				t.Errorf("%d statuses accepted, want none", n)
			}
			if ps := f.posted(t, slug, "build"); ps.Posted || !ps.ClaimedAt.IsZero() {
				t.Errorf("posted status = %+v, want unposted with the claim released", ps)
			}
			if p := f.project(t, slug); p.VCSProblem != nil {
				t.Errorf("VCS problem = %+v, want none for a rate limit", p.VCSProblem)
			}
		})
	}
}

// readCorpus reads testdata/corpus/rel, found from the working directory
// up, as the fakes do.
func readCorpus(t *testing.T, rel string) []byte {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "testdata", "corpus", rel))
		if err == nil {
			return b
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testdata/corpus/%s not found above the working directory", rel)
		}
		dir = parent
	}
}

func TestPostRefused(t *testing.T) {
	for _, tc := range []struct {
		name     string
		refuse   func(f *fixture)
		revision string // "" is rev
		kind     string
		message  string
	}{
		{"401 revoked token", func(f *fixture) { f.gh.SetToken("gho_rotated") },
			"", "unauthorized", "GitHub rejected the token: Bad credentials"},
		{"401 injected", func(f *fixture) { f.gh.FailNext(http.MethodPost, "/statuses/"+rev, http.StatusUnauthorized, 1) },
			"", "unauthorized", "Bad credentials"},
		{"403 OAuth App access restrictions", func(f *fixture) { f.gh.SetOrgRestricted("octo-org", true) },
			"", "forbidden", "`octo-org` organization has enabled OAuth App access restrictions"},
		{"403 OAuth restriction injected", func(f *fixture) {
			f.gh.FailNextResponse(http.MethodPost, "/statuses/"+rev, 1, http.StatusForbidden, nil, f.gh.OAuthRestrictedBody("octo-org"))
		}, "", "forbidden", "OAuth App access restrictions"},
		{"404", func(f *fixture) { f.gh.FailNext(http.MethodPost, "/statuses/"+rev, http.StatusNotFound, 1) },
			"", "not found", "repository octo-org/hello-world not found"},
		{"422 injected", func(f *fixture) { f.gh.FailNext(http.MethodPost, "/statuses/"+rev, http.StatusUnprocessableEntity, 1) },
			"", "upstream", "GitHub refused the request (HTTP 422)"},
		{"422 no such commit", func(f *fixture) {}, "not-a-commit", "upstream", "No commit found for SHA: not-a-commit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			revision := rev
			if tc.revision != "" {
				revision = tc.revision
			}
			p := f.create(t, &forgelink.Pipeline{Project: ghSlug.String(), State: forgelink.PipelineCreated,
				Trigger: forgelink.TriggerPush, Branch: "main", Revision: revision, Workflows: []string{"build"}})
			tc.refuse(f)
			if err := f.svc.Post(t.Context(), request(p, forgelink.StatusPending)); err != nil {
				t.Fatalf("Post = %v, want nil: a refusal is not retried", err)
			}
			if n := f.gh.CountRequests(http.MethodPost, "/statuses/"+revision); n != 1 {
				t.Errorf("POSTs = %d, want 1", n)
			}
			if n := f.gh.StatusPosts(); n != 0 {
				t.Errorf("%d statuses accepted, want none", n)
			}
			errs := f.pipeline(t, p.ID).StatusErrors
			if len(errs) != 1 || !strings.Contains(errs[0], "could not post status ci/forgelink: build") || !strings.Contains(errs[0], tc.message) {
				t.Errorf("status errors = %q, want one naming the context and %q", errs, tc.message)
			}
			prob := f.project(t, ghSlug).VCSProblem
			if prob == nil || prob.Kind != tc.kind || prob.Doing != "post status ci/forgelink: build" || !strings.Contains(prob.Message, tc.message) || prob.At.IsZero() {
				t.Errorf("project VCS problem = %+v, want kind %q doing the post, message with %q", prob, tc.kind, tc.message)
			}
			// A refusal again adds no second note.
			tc.refuse(f)
			if err := f.svc.Post(t.Context(), request(p, forgelink.StatusPending)); err != nil {
				t.Fatalf("second Post = %v", err)
			}
			if errs := f.pipeline(t, p.ID).StatusErrors; len(errs) != 1 {
				t.Errorf("status errors after a second refusal = %q, want the one note", errs)
			}
		})
	}
}

func TestPostStatusUpdatesOff(t *testing.T) {
	f := newFixture(t)
	slug := mustSlug("gh/octo-org/quiet")
	f.gh.AddRepo("octo-org/quiet", "main", false)
	f.follow(t, slug, false)
	p := f.newPipeline(t, slug, "build")
	f.post(t, request(p, forgelink.StatusPending))
	f.post(t, request(p, forgelink.StatusSuccess))
	if n := len(f.gh.Requests()); n != 0 {
		t.Errorf("GitHub got %d requests with status updates off, want none", n)
	}
	errs := f.pipeline(t, p.ID).StatusErrors
	if len(errs) != 1 || !strings.Contains(errs[0], "set_github_status: false") {
		t.Errorf("status errors = %q, want one note about set_github_status", errs)
	}
	if prob := f.project(t, slug).VCSProblem; prob != nil {
		t.Errorf("VCS problem = %+v, want none: the VCS refused nothing", prob)
	}
}

func TestPostStatusLimit(t *testing.T) {
	f := newFixture(t)
	p := f.newPipeline(t, ghSlug, "build")
	full := &forgelink.PostedStatus{Project: ghSlug.String(), Revision: rev, Context: forgelink.StatusContext("build"),
		PipelineID: p.ID, State: forgelink.StatusPending, Posted: true, Count: forgelink.MaxStatusesPerContext}
	if err := f.st.PutPostedStatus(t.Context(), full); err != nil {
		t.Fatal(err)
	}
	f.post(t, request(p, forgelink.StatusSuccess))
	if n := f.statusPosts(); n != 0 {
		t.Errorf("POSTs at the limit = %d, want none", n)
	}
	errs := f.pipeline(t, p.ID).StatusErrors
	if len(errs) != 1 || !strings.Contains(errs[0], "900 statuses were posted for ci/forgelink: build") {
		t.Errorf("status errors = %q, want the limit named", errs)
	}
	if ps := f.posted(t, ghSlug, "build"); ps.State != forgelink.StatusPending || ps.Count != forgelink.MaxStatusesPerContext {
		t.Errorf("posted status = %+v, want it as it was", ps)
	}
	// One below the limit still posts.
	g := newFixture(t)
	q := g.newPipeline(t, ghSlug, "build")
	full.PipelineID, full.Count, full.Version = q.ID, forgelink.MaxStatusesPerContext-1, 0
	if err := g.st.PutPostedStatus(t.Context(), full); err != nil {
		t.Fatal(err)
	}
	g.post(t, request(q, forgelink.StatusSuccess))
	if ps := g.posted(t, ghSlug, "build"); g.statusPosts() != 1 || ps.Count != forgelink.MaxStatusesPerContext {
		t.Errorf("below the limit: %d posts, posted status %+v; want one post, count at the limit", g.statusPosts(), ps)
	}
}

func TestPostErroredPipeline(t *testing.T) {
	f := newFixture(t)
	parse := "config: .circleci/config.yml:\n  line 3: mapping values\n\tare not allowed here"
	p := f.create(t, &forgelink.Pipeline{Project: ghSlug.String(), State: forgelink.PipelineErrored,
		Trigger: forgelink.TriggerPush, Branch: "main", Revision: rev, Errors: []string{parse}})
	req := request(p, forgelink.StatusError)
	req.Description = p.Errors[0]
	f.post(t, req)
	want := []vcsfake.Status{{SHA: rev, State: "error", Context: "ci/forgelink", TargetURL: "https://ci.example.com/pipelines/" + p.ID,
		Description: "config: .circleci/config.yml: line 3: mapping values are not allowed here"}}
	if diff := cmp.Diff(want, f.gh.Statuses(ghRepo, rev)); diff != "" {
		t.Errorf("GitHub statuses (-want +got):\n%s", diff)
	}
	// A report on it has nothing to move.
	if _, _, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: forgelink.StatusRunning}); forgelink.KindOf(err) != forgelink.Conflict {
		t.Errorf("Report(running) on an errored pipeline = %v, want Conflict", err)
	}
}

func TestPostAnotherPipelineSameRevision(t *testing.T) {
	f := newFixture(t)
	branch := f.newPipeline(t, ghSlug, "build")
	f.post(t, request(branch, forgelink.StatusPending))
	f.post(t, request(branch, forgelink.StatusSuccess))
	tag := f.create(t, &forgelink.Pipeline{Project: ghSlug.String(), State: forgelink.PipelineCreated,
		Trigger: forgelink.TriggerTag, Tag: "v1.0.0", Revision: rev, Workflows: []string{"build"}})
	f.post(t, request(tag, forgelink.StatusPending))
	if got := f.ghStates("ci/forgelink: build"); !slices.Equal(got, []string{"pending", "success", "pending"}) {
		t.Errorf("GitHub saw %v, want the tag pipeline's pending after the branch's", got)
	}
	last := f.gh.Statuses(ghRepo, rev)[2]
	if last.TargetURL != "https://ci.example.com/pipelines/"+tag.ID {
		t.Errorf("tag pipeline's status links to %s", last.TargetURL)
	}
	ps := f.posted(t, ghSlug, "build")
	if ps.PipelineID != tag.ID || ps.State != forgelink.StatusPending || ps.Count != 3 {
		t.Errorf("posted status = %+v, want the tag pipeline's pending, count 3", ps)
	}
	f.post(t, request(tag, forgelink.StatusSuccess))
	if got := f.ghStates("ci/forgelink: build"); len(got) != 4 || got[3] != "success" {
		t.Errorf("GitHub saw %v, want the tag pipeline's success last", got)
	}
}

func TestPostBitbucket(t *testing.T) {
	f := newFixture(t)
	const odd = "deploy to prod ☃"
	p := f.newPipeline(t, bbSlug, "build", odd)
	f.post(t, request(p, forgelink.StatusPending))
	for _, st := range []forgelink.StatusState{forgelink.StatusRunning, forgelink.StatusSuccess} {
		if _, _, err := f.svc.Report(t.Context(), p.ID, statussvc.Report{State: st}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range f.reqs.all() {
		f.post(t, &r)
	}
	target := "https://ci.example.com/pipelines/" + p.ID
	var want []vcsfake.BuildStatus
	for _, state := range []string{"INPROGRESS", "SUCCESSFUL"} {
		for _, w := range []string{"build", odd} {
			desc := "Workflow " + w + " is queued"
			if state == "SUCCESSFUL" {
				desc = "Workflow " + w + " passed"
			}
			want = append(want, vcsfake.BuildStatus{SHA: rev, Key: forgelink.BitbucketStatusKey(w), Name: forgelink.StatusContext(w),
				State: state, URL: target, Description: desc})
		}
	}
	if diff := cmp.Diff(want, f.bb.BuildStatuses(bbRepo, rev)); diff != "" {
		t.Errorf("Bitbucket build statuses (-want +got):\n%s", diff)
	}
	if key := forgelink.BitbucketStatusKey(odd); key == "forgelink-"+odd {
		t.Errorf("key %q keeps characters Bitbucket keys should not have", key)
	}
	if n := len(f.bb.Statuses(bbRepo, rev)); n != 2 {
		t.Errorf("current Bitbucket statuses = %d, want one per workflow", n)
	}
}

func TestPostDroppedRequests(t *testing.T) {
	f := newFixture(t)
	p := f.newPipeline(t, ghSlug, "build")
	unfollowed := &forgelink.StatusRequest{PipelineID: p.ID, Project: p.Project, Revision: rev, State: "pending"}
	for _, tc := range []struct {
		name string
		req  *forgelink.StatusRequest
	}{
		{"bad state", &forgelink.StatusRequest{PipelineID: p.ID, Project: p.Project, Revision: rev, State: "done"}},
		{"unknown pipeline", &forgelink.StatusRequest{PipelineID: "00000000-0000-4000-8000-000000000000", Project: p.Project, Revision: rev, State: "pending"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.svc.Post(t.Context(), tc.req); err != nil {
				t.Errorf("Post = %v, want nil (dropped, a retry cannot help)", err)
			}
			if n := len(f.gh.Requests()); n != 0 {
				t.Errorf("GitHub got %d requests", n)
			}
		})
	}
	t.Run("project no longer followed", func(t *testing.T) {
		if err := f.st.DeleteProject(t.Context(), ghSlug); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Post(t.Context(), unfollowed); err != nil {
			t.Errorf("Post = %v, want nil", err)
		}
		if n := len(f.gh.Requests()); n != 0 {
			t.Errorf("GitHub got %d requests", n)
		}
	})
}

func TestGiveUp(t *testing.T) {
	f := newFixture(t)
	p := f.newPipeline(t, ghSlug, "build")
	req := request(p, forgelink.StatusSuccess)
	cause := forgelink.E(forgelink.Transient, "GitHub is unavailable (HTTP 502); try again later", io.ErrUnexpectedEOF)
	f.svc.GiveUp(t.Context(), req, 5, cause)
	f.svc.GiveUp(t.Context(), req, 5, cause)
	want := []string{"gave up posting success after 5 attempts: GitHub is unavailable (HTTP 502); try again later"}
	if diff := cmp.Diff(want, f.pipeline(t, p.ID).StatusErrors); diff != "" {
		t.Errorf("status errors (-want +got):\n%s", diff)
	}
	// A cause without a kind is named by its text.
	f.svc.GiveUp(t.Context(), request(p, forgelink.StatusFailed), 3, io.EOF)
	errs := f.pipeline(t, p.ID).StatusErrors
	if len(errs) != 2 || errs[1] != "gave up posting failed after 3 attempts: EOF" {
		t.Errorf("status errors = %q, want a second note with the plain error", errs)
	}
	// An unknown pipeline is logged, not a panic.
	f.svc.GiveUp(t.Context(), &forgelink.StatusRequest{PipelineID: "gone", State: "success"}, 5, cause)
}
