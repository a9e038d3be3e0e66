package forgelink

import (
	"context"
	"slices"
	"strings"
	"time"
)

// CommitStatus is one commit status forgelink posts on the VCS for one
// workflow of a pipeline.
type CommitStatus struct {
	Revision string
	// Workflow names the status: GitHub context StatusContext(Workflow),
	// Bitbucket key BitbucketStatusKey(Workflow). "" is the whole pipeline.
	Workflow string
	State    StatusState
	// TargetURL is where the status links to.
	TargetURL string
	// Description is already cut to MaxStatusDescription (StatusDescription).
	Description string
}

// StatusPoster posts commit statuses. Implementations map State with
// GitHubState or BitbucketState and attach error kinds as a Forge does:
// Transient (with RetryAfter when the VCS named a wait) for 5xx, timeouts
// and rate limits; Unauthorized, Forbidden, NotFound and Upstream for
// refusals that a retry would not change.
type StatusPoster interface {
	PostStatus(ctx context.Context, repo Slug, s CommitStatus) error
}

// MaxStatusesPerContext is how many statuses forgelink posts for one
// (revision, context) at most. GitHub keeps 1,000 and refuses more; the
// margin leaves room for statuses posted outside forgelink.
const MaxStatusesPerContext = 900

// PostedStatus is the last commit status forgelink posted, or is posting,
// for one (project, revision, context). Stores write it conditionally on
// Version, so that of two consumers handling the same status request one
// posts and the other sees it posted.
type PostedStatus struct {
	Project  string `json:"project"`
	Revision string `json:"revision"`
	// Context is StatusContext of the workflow.
	Context    string      `json:"context"`
	PipelineID string      `json:"pipeline_id"`
	State      StatusState `json:"state"`
	// Posted is false while a consumer has claimed State but the VCS has
	// not yet confirmed it.
	Posted    bool      `json:"posted"`
	ClaimedAt time.Time `json:"claimed_at"`
	// Count is how many statuses forgelink posted for the (revision,
	// context), to stay under GitHub's limit.
	Count int `json:"count"`
	// Version is 0 before the first write; each write increments it.
	Version int64 `json:"version"`
}

// StatusStore keeps posted commit statuses and pipelines' reported states.
type StatusStore interface {
	// GetPostedStatus returns the posted status of (project, revision,
	// context), or NotFound.
	GetPostedStatus(ctx context.Context, project Slug, revision, context string) (*PostedStatus, error)
	// PutPostedStatus stores s if the stored Version equals s.Version (0:
	// none stored), then increments s.Version. Conflict otherwise.
	PutPostedStatus(ctx context.Context, s *PostedStatus) error
	// UpdatePipelineStatus stores p's Status, WorkflowStatus and
	// StatusErrors if the stored pipeline's StatusVersion equals
	// p.StatusVersion, then increments p.StatusVersion. Conflict
	// otherwise, NotFound if there is no such pipeline. Nothing else of
	// the pipeline changes.
	UpdatePipelineStatus(ctx context.Context, p *Pipeline) error
}

// StatusWorkflows returns the workflows that get a commit status: the
// pipeline's workflows, or [""] (one status for the whole pipeline) when it
// has none, as an errored pipeline.
func (p *Pipeline) StatusWorkflows() []string {
	if len(p.Workflows) == 0 {
		return []string{""}
	}
	return p.Workflows
}

// InitStatus gives a new pipeline its first states: pending for each
// workflow, or error for an errored pipeline.
func (p *Pipeline) InitStatus() {
	first := StatusPending
	if p.State == PipelineErrored {
		first = StatusError
	}
	p.WorkflowStatus = make(map[string]StatusState, len(p.Workflows))
	for _, w := range p.StatusWorkflows() {
		p.WorkflowStatus[w] = first
	}
	p.Status = Overall(p.WorkflowStatus)
}

// WorkflowState returns the workflow's reported state: pending when none
// was recorded (a pipeline created before statuses existed).
func (p *Pipeline) WorkflowState(workflow string) StatusState {
	if s := p.WorkflowStatus[workflow]; s != "" {
		return s
	}
	if p.State == PipelineErrored {
		return StatusError
	}
	return StatusPending
}

// CurrentStatus is the pipeline's overall state: Status, or for a pipeline
// stored before statuses existed, what its workflows' states come to.
func (p *Pipeline) CurrentStatus() StatusState {
	if p.Status != "" {
		return p.Status
	}
	states := make(map[string]StatusState, len(p.Workflows))
	for _, w := range p.StatusWorkflows() {
		states[w] = p.WorkflowState(w)
	}
	return Overall(states)
}

// Report applies an executor's report that workflow ("" for every workflow
// of the pipeline) is now in state to. It returns the workflows whose state
// moved forward, in the pipeline's order - none when the report repeats
// what is known - and updates WorkflowStatus and Status. A workflow the
// pipeline does not run is Invalid; a backwards move for any workflow is a
// Conflict naming both states, and changes nothing.
func (p *Pipeline) Report(workflow string, to StatusState) ([]string, error) {
	targets := p.StatusWorkflows()
	if workflow != "" {
		if !slices.Contains(p.Workflows, workflow) {
			return nil, Errorf(Invalid, "pipeline %d has no workflow %q (it runs %s)", p.Number, workflow, strings.Join(quoted(p.Workflows), ", "))
		}
		targets = []string{workflow}
	}
	var moved []string
	for _, w := range targets {
		post, err := Transition(p.WorkflowState(w), to)
		if err != nil {
			if workflow == "" && len(p.Workflows) > 1 {
				return nil, Errorf(KindOf(err), "workflow %s: %s", w, MessageOf(err))
			}
			return nil, err
		}
		if post {
			moved = append(moved, w)
		}
	}
	if len(moved) == 0 {
		return nil, nil
	}
	if p.WorkflowStatus == nil {
		p.WorkflowStatus = make(map[string]StatusState)
	}
	for _, w := range p.StatusWorkflows() {
		p.WorkflowStatus[w] = p.WorkflowState(w)
	}
	for _, w := range moved {
		p.WorkflowStatus[w] = to
	}
	p.Status = Overall(p.WorkflowStatus)
	return moved, nil
}

func quoted(ss []string) []string {
	if len(ss) == 0 {
		return []string{"no workflows"}
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = `"` + s + `"`
	}
	return out
}
