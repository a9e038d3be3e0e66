package forgelink

import (
	"context"
	"strings"
	"time"
)

// PipelineState is where a pipeline is in its life.
type PipelineState string

// Pipeline states. The trigger function creates pipelines Created (or
// Errored when the config cannot be used); the executor and the status
// function move them on.
const (
	PipelineCreated PipelineState = "created"
	PipelineErrored PipelineState = "errored"
)

// Pipeline is one triggered build of a project at a revision.
type Pipeline struct {
	// ID is a random UUID, as CircleCI's pipeline ids.
	ID      string `json:"id"`
	Project string `json:"project"` // slug string
	// Number counts the project's pipelines from 1, without gaps.
	Number int64         `json:"number"`
	State  PipelineState `json:"state"`
	// Trigger is TriggerPush, TriggerPullRequest or TriggerTag.
	Trigger        string   `json:"trigger"`
	Branch         string   `json:"branch,omitempty"`
	Tag            string   `json:"tag,omitempty"`
	Revision       string   `json:"revision"`
	PRNumber       int      `json:"pr_number,omitempty"`
	Fork           bool     `json:"fork"`
	SecretsExposed bool     `json:"secrets_exposed"`
	Workflows      []string `json:"workflows"`
	Actor          string   `json:"actor,omitempty"`
	// Errors holds why a pipeline is Errored (e.g. the config's parse error).
	Errors []string `json:"errors,omitempty"`
	// Status is the pipeline's overall state (Overall of WorkflowStatus).
	Status StatusState `json:"status,omitempty"`
	// WorkflowStatus is each workflow's last reported state ("" keys the
	// whole pipeline when it has no workflows).
	WorkflowStatus map[string]StatusState `json:"workflow_status,omitempty"`
	// StatusErrors says why commit statuses were not posted: a VCS refusal
	// (401, 403, 404, 422), or GitHub Status updates being off.
	StatusErrors []string `json:"status_errors,omitempty"`
	// StatusVersion increases with every status update; stores use it for
	// optimistic concurrency.
	StatusVersion int64 `json:"status_version,omitempty"`
	// HookID and DeliveryID name the delivery that created it.
	HookID     string    `json:"hook_id"`
	DeliveryID string    `json:"delivery_id"`
	CreatedAt  time.Time `json:"created_at"`
}

// RefKey is what makes a pipeline unique within a project with its
// revision: "branch/<name>" or "tag/<name>".
func (p *Pipeline) RefKey() string {
	if p.Tag != "" {
		return "tag/" + p.Tag
	}
	return "branch/" + p.Branch
}

// Validate checks what a store needs to key p and returns its project.
func (p *Pipeline) Validate() (Slug, error) {
	slug, err := ParseSlug(p.Project)
	if err != nil {
		return Slug{}, err
	}
	if p.Revision == "" {
		return Slug{}, Errorf(Invalid, "pipeline has no revision")
	}
	return slug, nil
}

// EventDecision records what the trigger function decided for one event
// of a delivery.
type EventDecision struct {
	Type     EventType `json:"type"`
	Branch   string    `json:"branch,omitempty"`
	Tag      string    `json:"tag,omitempty"`
	Revision string    `json:"revision,omitempty"`
	PRNumber int       `json:"pr_number,omitempty"`
	// Build is true when the event made (or matched an existing) pipeline.
	Build bool `json:"build"`
	// Reason is the rule that skipped it; "" when Build.
	Reason string `json:"reason,omitempty"`
	// PipelineID and PipelineNumber name the pipeline; for an event whose
	// revision already had one (rule 6), the existing pipeline.
	PipelineID     string `json:"pipeline_id,omitempty"`
	PipelineNumber int64  `json:"pipeline_number,omitempty"`
	// Duplicate is true when the pipeline already existed for this revision.
	Duplicate bool `json:"duplicate,omitempty"`
}

// DeliveryRecord is the lasting record of a processed delivery and its
// decisions. Unlike Delivery (kept for de-duplication only), it is kept
// for the project's history.
type DeliveryRecord struct {
	Project     string          `json:"project"`
	HookID      string          `json:"hook_id"`
	DeliveryID  string          `json:"delivery_id"`
	Event       string          `json:"event"`
	ReceivedAt  time.Time       `json:"received_at"`
	ProcessedAt time.Time       `json:"processed_at"`
	Decisions   []EventDecision `json:"decisions"`
	// State is Decided (also when empty), Dead when evaluation failed every
	// attempt, or Received once a dead delivery is queued again.
	State DeliveryState `json:"state,omitempty"`
	// Error is why a Dead delivery's last attempt failed.
	Error string `json:"error,omitempty"`
	// Attempts is how often evaluation was tried, for a Dead delivery.
	Attempts int `json:"attempts,omitempty"`
}

// Validate checks what a store needs to key r and returns its project.
func (r *DeliveryRecord) Validate() (Slug, error) {
	slug, err := ParseSlug(r.Project)
	if err != nil {
		return Slug{}, err
	}
	if r.HookID == "" || r.DeliveryID == "" {
		return Slug{}, Errorf(Invalid, "delivery record needs a hook id and a delivery id")
	}
	return slug, nil
}

// Page asks for one page of a newest-first listing.
type Page struct {
	// Token is the NextToken of the previous page; "" for the first page.
	Token string
	// Limit is the page size; stores cap it at 100 and default it to 20.
	Limit int
}

// PipelineStore keeps pipelines, delivery records and the open-PR index.
type PipelineStore interface {
	// CreatePipeline stores p, giving it the project's next Number (no gaps,
	// no duplicates, under concurrent callers). If the project already has a
	// pipeline for p's (RefKey, Revision), nothing is written and it returns
	// that pipeline with a Conflict error.
	CreatePipeline(ctx context.Context, p *Pipeline) (*Pipeline, error)
	// GetPipeline returns the pipeline with this id, or NotFound.
	GetPipeline(ctx context.Context, id string) (*Pipeline, error)
	// ListPipelines returns the project's pipelines newest first and the
	// token of the next page ("" when there is none).
	ListPipelines(ctx context.Context, project Slug, page Page) ([]*Pipeline, string, error)

	// PutDeliveryRecord stores r, replacing a record with the same
	// (Project, HookID, DeliveryID) so re-processing a message is harmless.
	PutDeliveryRecord(ctx context.Context, r *DeliveryRecord) error
	// ListDeliveryRecords returns the project's records newest first (by
	// ReceivedAt) and the next page's token.
	ListDeliveryRecords(ctx context.Context, project Slug, page Page) ([]*DeliveryRecord, string, error)

	// OpenPRs returns the numbers of the open pull requests whose head is
	// branch, and known=false when the index has never heard of the branch.
	OpenPRs(ctx context.Context, project Slug, branch string) (prs []int, known bool, err error)
	// SetPROpen records that pull request pr (head branch) is open or not.
	// It makes the branch known.
	SetPROpen(ctx context.Context, project Slug, branch string, pr int, open bool) error
	// SetOpenPRs replaces the branch's open PRs (e.g. with the VCS's answer)
	// and makes the branch known, even with none.
	SetOpenPRs(ctx context.Context, project Slug, branch string, prs []int) error
}

// StatusRequest asks the status function to post commit statuses for a
// pipeline: the trigger function requests "pending" (or "error") for every
// new one, and each accepted executor report requests its new state.
type StatusRequest struct {
	PipelineID string `json:"pipeline_id"`
	Project    string `json:"project"`
	Revision   string `json:"revision"`
	State      string `json:"state"`
	// Workflows names the workflows to post for; empty means every
	// workflow of the pipeline.
	Workflows   []string `json:"workflows,omitempty"`
	TargetURL   string   `json:"target_url,omitempty"`
	Description string   `json:"description,omitempty"`
	// RequestedAt is when the request was made.
	RequestedAt time.Time `json:"requested_at,omitzero"`
}

// Key identifies the request for de-duplication in a queue.
func (r *StatusRequest) Key() string {
	return r.PipelineID + "\x00" + r.State + "\x00" + strings.Join(r.Workflows, "\x00")
}
