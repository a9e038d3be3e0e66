// Package statussvc closes the loop back to the VCS: it applies the
// executor's status reports to pipelines and posts each forward transition
// as a commit status on GitHub or Bitbucket, exactly once.
//
//	svc := &statussvc.Service{Store: st, Posters: posters, Requests: q, PublicURL: url}
//	p, err := svc.Report(ctx, pipelineID, statussvc.Report{State: forgelink.StatusRunning})
//	err = svc.Post(ctx, req) // the status queue's consumer; an error means: retry
//
// Report checks the transition against the pipeline's recorded states (a
// backwards one is a Conflict) and queues a request; Post keeps, per
// (project, revision, context), the last state posted with a conditional
// write, so a request handled twice, or late, posts nothing.
package statussvc

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"forgelink/shared/forgelink"
	"forgelink/shared/metrics"
)

// Store is what the status function needs of storage.
type Store interface {
	GetProject(ctx context.Context, slug forgelink.Slug) (*forgelink.Project, error)
	UpdateProject(ctx context.Context, p *forgelink.Project) error
	GetPipeline(ctx context.Context, id string) (*forgelink.Pipeline, error)
	forgelink.StatusStore
}

// Posters returns the StatusPoster of a project's VCS, authenticated as the
// user who followed it.
type Posters func(ctx context.Context, p *forgelink.Project) (forgelink.StatusPoster, error)

// Requests queues status requests for Post.
type Requests interface {
	Request(ctx context.Context, r *forgelink.StatusRequest) error
}

// DefaultClaimLease is how long a claimed, unconfirmed post keeps other
// consumers of the same status from posting it too.
const DefaultClaimLease = time.Minute

// Service applies reports and posts statuses.
type Service struct {
	Store    Store
	Posters  Posters
	Requests Requests
	// PublicURL is the base of default target URLs: PublicURL/pipelines/<id>.
	PublicURL string
	// Access, optional, is told of every refusal (org-access state).
	Access forgelink.AccessObserver
	// ClaimLease defaults to DefaultClaimLease.
	ClaimLease time.Duration
	Now        func() time.Time
	Log        *slog.Logger
	// Metrics counts posts, failures, refusals and requests given up;
	// nil: metrics.Default.
	Metrics *metrics.Registry
}

// Report is an executor's report on a pipeline.
type Report struct {
	State forgelink.StatusState
	// Workflow is the workflow reported on; "" means every workflow.
	Workflow    string
	TargetURL   string
	Description string
}

// updateAttempts bounds the re-reads after losing a conditional write.
const updateAttempts = 5

// Report applies r to the pipeline and queues a status request for the
// workflows that moved forward. It returns the pipeline as it now is and
// whether anything moved: the same state again moves nothing (and posts
// nothing). Unknown pipeline: NotFound; a workflow the pipeline does not
// run: Invalid; a backwards move: Conflict naming both states.
//
// The request is queued before the pipeline is updated: if the update
// then fails, the executor's retry finds the state not yet recorded and
// queues it again, which posts nothing twice; the other order could record
// a state that is never posted.
func (s *Service) Report(ctx context.Context, pipelineID string, r Report) (*forgelink.Pipeline, bool, error) {
	if r.TargetURL != "" {
		if err := checkTargetURL(r.TargetURL); err != nil {
			return nil, false, err
		}
	}
	if strings.TrimSpace(r.Description) != "" {
		// Only what is posted is queued: white space folded, cut to
		// MaxStatusDescription characters (a report may carry a whole
		// log's worth; GitHub keeps 140).
		r.Description = forgelink.StatusDescription(r.State, r.Workflow, r.Description)
	}
	for attempt := 1; ; attempt++ {
		p, err := s.Store.GetPipeline(ctx, pipelineID)
		if err != nil {
			return nil, false, fmt.Errorf("report on pipeline %s: %w", pipelineID, err)
		}
		moved, err := p.Report(r.Workflow, r.State)
		if err != nil {
			return p, false, err
		}
		if len(moved) == 0 {
			return p, false, nil
		}
		req := &forgelink.StatusRequest{
			PipelineID: p.ID, Project: p.Project, Revision: p.Revision, State: string(r.State),
			TargetURL: r.TargetURL, Description: r.Description, RequestedAt: s.now(),
		}
		if r.Workflow != "" || len(moved) < len(p.StatusWorkflows()) {
			req.Workflows = moved
		}
		if err := s.Requests.Request(ctx, req); err != nil {
			return nil, false, fmt.Errorf("report on pipeline %s: %w", pipelineID, err)
		}
		err = s.Store.UpdatePipelineStatus(ctx, p)
		if err == nil {
			s.log().InfoContext(ctx, "status reported", "pipeline", p.ID, "project", p.Project,
				"state", string(r.State), "workflows", moved, "pipeline_status", string(p.Status))
			return p, true, nil
		}
		if forgelink.KindOf(err) != forgelink.Conflict || attempt == updateAttempts {
			return nil, false, fmt.Errorf("report on pipeline %s: %w", pipelineID, err)
		}
		// Another report changed the pipeline meanwhile: decide again.
	}
}

// checkTargetURL accepts only absolute http(s) URLs: the VCS shows the
// link to everyone who can see the commit.
func checkTargetURL(u string) error {
	if len(u) > 2048 || !(strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")) || strings.ContainsAny(u, " \t\r\n") {
		return forgelink.Errorf(forgelink.Invalid, "target_url must be an absolute http or https URL of at most 2048 characters")
	}
	return nil
}

// Post handles one status request: it posts the requested state for each
// of its workflows whose last posted state it moves forward, and records
// what it posted. It returns an error only when trying again may help (a
// Transient VCS or store failure, with forgelink.RetryAfter when the VCS
// named a wait); a refusal that a retry will not fix (401, 403, 404, 422)
// is recorded on the pipeline and the project, and the request is done.
func (s *Service) Post(ctx context.Context, req *forgelink.StatusRequest) error {
	log := s.log().With("pipeline", req.PipelineID, "project", req.Project, "state", req.State)
	state, err := forgelink.ParseStatusState(req.State)
	if err != nil {
		log.ErrorContext(ctx, "status request dropped: bad state", "err", err)
		return nil
	}
	p, err := s.Store.GetPipeline(ctx, req.PipelineID)
	if forgelink.KindOf(err) == forgelink.NotFound {
		log.WarnContext(ctx, "status request dropped: no such pipeline")
		return nil
	}
	if err != nil {
		return fmt.Errorf("post status for pipeline %s: %w", req.PipelineID, err)
	}
	slug, err := forgelink.ParseSlug(p.Project)
	if err != nil {
		return fmt.Errorf("post status for pipeline %s: %w", p.ID, err)
	}
	project, err := s.Store.GetProject(ctx, slug)
	if forgelink.KindOf(err) == forgelink.NotFound {
		log.InfoContext(ctx, "status request dropped: project no longer followed")
		return nil
	}
	if err != nil {
		return fmt.Errorf("post status for pipeline %s: %w", p.ID, err)
	}
	if !project.Settings.SetGitHubStatus {
		log.InfoContext(ctx, "status not posted: GitHub Status updates are off")
		return s.noteOnPipeline(ctx, p.ID, "GitHub Status updates are off (set_github_status: false): no commit status posted")
	}
	poster, err := s.Posters(ctx, project)
	if err != nil {
		if k := forgelink.KindOf(err); k == forgelink.Transient || k == forgelink.Internal {
			return fmt.Errorf("post status for pipeline %s: %w", p.ID, err)
		}
		return s.refused(ctx, project, p.ID, "post commit statuses", err)
	}
	workflows := req.Workflows
	if len(workflows) == 0 {
		workflows = p.StatusWorkflows()
	}
	for _, w := range workflows {
		cs := forgelink.CommitStatus{
			Revision:    p.Revision,
			Workflow:    w,
			State:       state,
			TargetURL:   req.TargetURL,
			Description: forgelink.StatusDescription(state, w, req.Description),
		}
		if cs.TargetURL == "" {
			cs.TargetURL = strings.TrimRight(s.PublicURL, "/") + "/pipelines/" + p.ID
		}
		refusal, err := s.postOne(ctx, log, slug, p, poster, cs, req.RequestedAt)
		if err != nil {
			return err
		}
		if refusal != nil {
			doing := "post status " + forgelink.StatusContext(w)
			if rerr := s.refused(ctx, project, p.ID, doing, refusal); rerr != nil {
				return rerr
			}
		}
	}
	return nil
}

// postOne posts cs unless its (revision, context) already shows it or a
// later state. The post is claimed first with a conditional write, so of
// two consumers handling the same request only one posts, and posts for
// one context happen one at a time; a claim whose consumer died is taken
// over after the lease. It returns refusal for a VCS refusal that a retry
// will not fix, and err for anything worth retrying (a Transient VCS
// answer, a store failure).
func (s *Service) postOne(ctx context.Context, log *slog.Logger, slug forgelink.Slug, p *forgelink.Pipeline, poster forgelink.StatusPoster, cs forgelink.CommitStatus, requestedAt time.Time) (refusal, err error) {
	name := forgelink.StatusContext(cs.Workflow)
	log = log.With("context", name, "revision", p.Revision)
	storeErr := func(doing string, err error) error {
		if k := forgelink.KindOf(err); k != forgelink.Transient && k != forgelink.Internal {
			err = forgelink.E(forgelink.Transient, "the store is busy; try again", err)
		}
		return fmt.Errorf("post status %s for pipeline %s: %s: %w", name, p.ID, doing, err)
	}
	for attempt := 1; ; attempt++ {
		rec, err := s.Store.GetPostedStatus(ctx, slug, p.Revision, name)
		switch {
		case forgelink.KindOf(err) == forgelink.NotFound:
			rec = &forgelink.PostedStatus{Project: slug.String(), Revision: p.Revision, Context: name}
		case err != nil:
			return nil, storeErr("read", err)
		}
		now := s.now()
		if !rec.Posted && !rec.ClaimedAt.IsZero() {
			if left := rec.ClaimedAt.Add(s.lease()).Sub(now); left > 0 {
				// Another consumer is posting to this context right now:
				// wait for it, whatever it posts, so posts never overtake.
				return nil, forgelink.WithRetryAfter(forgelink.Errorf(forgelink.Transient, "a status for %s is being posted", name), left)
			}
		}
		from := rec.State
		if rec.PipelineID != p.ID {
			// Another pipeline of the same commit (a tag and a branch, say)
			// posted last: this pipeline's states start afresh - unless the
			// request is behind what this pipeline already reported (a
			// late redelivery), which must not undo the status.
			from = ""
			if !requestedAt.IsZero() && requestedAt.Before(rec.ClaimedAt) {
				// Requested before the other pipeline posted: a late
				// redelivery, which must not overwrite the newer status.
				log.InfoContext(ctx, "stale status request: another pipeline posted since", "other", rec.PipelineID)
				return nil, nil
			}
			if cur := p.WorkflowState(cs.Workflow); cur != cs.State {
				if post, err := forgelink.Transition(cur, cs.State); err != nil || !post {
					log.InfoContext(ctx, "stale status request: nothing posted", "reported", string(cur))
					return nil, nil
				}
			}
		}
		switch {
		case from == cs.State && rec.Posted:
			log.DebugContext(ctx, "status already posted")
			return nil, nil
		case from == cs.State:
			// Claimed before, never confirmed, lease over: post again.
		default:
			post, err := forgelink.Transition(from, cs.State)
			if err != nil || !post {
				log.InfoContext(ctx, "stale status request: nothing posted", "posted", string(from), "reason", fmt.Sprint(err))
				return nil, nil
			}
		}
		if from != "" && from != cs.State && rec.Posted && vcsState(slug.VCS, from) == vcsState(slug.VCS, cs.State) {
			// The VCS shows this already (running is GitHub's pending too):
			// record the state, post nothing.
			next := *rec
			next.State = cs.State
			if err := s.Store.PutPostedStatus(ctx, &next); err != nil {
				if forgelink.KindOf(err) == forgelink.Conflict && attempt < updateAttempts {
					continue
				}
				return nil, storeErr("record", err)
			}
			log.DebugContext(ctx, "the VCS already shows this state; nothing posted")
			return nil, nil
		}
		if rec.Count >= forgelink.MaxStatusesPerContext {
			return forgelink.Errorf(forgelink.Upstream, "%d statuses were posted for %s on %s; GitHub keeps at most 1,000, so forgelink posts no more", rec.Count, name, short(p.Revision)), nil
		}
		claim := *rec
		claim.PipelineID, claim.State, claim.Posted, claim.ClaimedAt = p.ID, cs.State, false, now
		if err := s.Store.PutPostedStatus(ctx, &claim); err != nil {
			if forgelink.KindOf(err) == forgelink.Conflict && attempt < updateAttempts {
				continue // someone else moved it: decide again
			}
			return nil, storeErr("claim", err)
		}
		if err := poster.PostStatus(ctx, slug, cs); err != nil {
			// Release the claim so the retry need not wait out the lease.
			claim.ClaimedAt = time.Time{}
			if rerr := s.Store.PutPostedStatus(ctx, &claim); rerr != nil {
				log.WarnContext(ctx, "could not release the status claim; the lease will", "err", rerr)
			}
			err = fmt.Errorf("post status %s for pipeline %s: %w", name, p.ID, err)
			if k := forgelink.KindOf(err); k == forgelink.Transient || k == forgelink.Internal {
				s.Metrics.StatusPost(string(slug.VCS), metrics.Failed)
				return nil, err
			}
			return err, nil // counted as refused by refused
		}
		claim.Posted, claim.Count = true, claim.Count+1
		s.Metrics.StatusPost(string(slug.VCS), metrics.Posted)
		if err := s.Store.PutPostedStatus(ctx, &claim); err != nil {
			// Posted, but not recorded as such: after the lease a duplicate
			// of this request posts the same state once more, which GitHub
			// shows as one.
			log.WarnContext(ctx, "status posted but not recorded", "err", err)
		}
		log.InfoContext(ctx, "status posted", "vcs_state", vcsState(slug.VCS, cs.State))
		return nil, nil
	}
}

func vcsState(vcs forgelink.VCS, s forgelink.StatusState) string {
	if vcs == forgelink.Bitbucket {
		return forgelink.BitbucketState(s)
	}
	return forgelink.GitHubState(s)
}

func short(rev string) string {
	if len(rev) > 7 {
		return rev[:7]
	}
	return rev
}

// refused records a refusal that a retry will not fix on the pipeline (why
// its status is missing) and on the project (for the org-access check).
func (s *Service) refused(ctx context.Context, project *forgelink.Project, pipelineID, doing string, cause error) error {
	msg := forgelink.MessageOf(cause)
	if msg == "" {
		msg = cause.Error()
	}
	s.log().WarnContext(ctx, "status not posted: the VCS refused", "pipeline", pipelineID, "project", project.Slug.String(),
		"doing", doing, "kind", forgelink.KindOf(cause).String(), "err", cause)
	s.Metrics.StatusPost(string(project.Slug.VCS), metrics.Refused)
	if err := s.noteOnPipeline(ctx, pipelineID, "could not "+doing+": "+msg); err != nil {
		return err
	}
	if s.Access != nil {
		s.Access.Observe(ctx, project.Slug, cause)
	}
	problem := &forgelink.VCSProblem{At: s.now(), Kind: forgelink.KindOf(cause).String(), Doing: doing, Message: msg}
	for attempt := 1; attempt <= updateAttempts; attempt++ {
		project.VCSProblem = problem
		err := s.Store.UpdateProject(ctx, project)
		if err == nil || forgelink.KindOf(err) == forgelink.NotFound {
			return nil
		}
		if forgelink.KindOf(err) != forgelink.Conflict {
			return fmt.Errorf("record VCS refusal on %s: %w", project.Slug, err)
		}
		fresh, gerr := s.Store.GetProject(ctx, project.Slug)
		if gerr != nil {
			return fmt.Errorf("record VCS refusal on %s: %w", project.Slug, gerr)
		}
		project = fresh
	}
	return forgelink.Errorf(forgelink.Transient, "project %s kept changing while recording a VCS refusal", project.Slug)
}

// noteOnPipeline adds note to the pipeline's StatusErrors, once.
func (s *Service) noteOnPipeline(ctx context.Context, pipelineID, note string) error {
	for attempt := 1; attempt <= updateAttempts; attempt++ {
		p, err := s.Store.GetPipeline(ctx, pipelineID)
		if err != nil {
			return fmt.Errorf("note on pipeline %s: %w", pipelineID, err)
		}
		for _, n := range p.StatusErrors {
			if n == note {
				return nil
			}
		}
		p.StatusErrors = append(p.StatusErrors, note)
		if len(p.StatusErrors) > maxStatusErrors {
			p.StatusErrors = p.StatusErrors[len(p.StatusErrors)-maxStatusErrors:]
		}
		err = s.Store.UpdatePipelineStatus(ctx, p)
		if err == nil {
			return nil
		}
		if forgelink.KindOf(err) != forgelink.Conflict {
			return fmt.Errorf("note on pipeline %s: %w", pipelineID, err)
		}
	}
	return forgelink.Errorf(forgelink.Transient, "pipeline %s kept changing while noting a status error", pipelineID)
}

// maxStatusErrors bounds the notes a pipeline keeps.
const maxStatusErrors = 20

// GiveUp records on the pipeline that a request failed every attempt: the
// queues' dead-letter hook, so nothing is dropped silently.
func (s *Service) GiveUp(ctx context.Context, req *forgelink.StatusRequest, attempts int, cause error) {
	msg := forgelink.MessageOf(cause)
	if msg == "" {
		msg = cause.Error()
	}
	note := fmt.Sprintf("gave up posting %s after %d attempts: %s", req.State, attempts, msg)
	vcs := metrics.Other
	if slug, err := forgelink.ParseSlug(req.Project); err == nil {
		vcs = string(slug.VCS)
	}
	s.Metrics.StatusPost(vcs, metrics.GaveUp)
	if err := s.noteOnPipeline(ctx, req.PipelineID, note); err != nil {
		s.log().ErrorContext(ctx, "could not record a dead status request", "pipeline", req.PipelineID, "err", err)
	}
}

func (s *Service) lease() time.Duration {
	if s.ClaimLease > 0 {
		return s.ClaimLease
	}
	return DefaultClaimLease
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}
