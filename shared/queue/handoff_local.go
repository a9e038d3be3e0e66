package queue

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"forgelink/shared/forgelink"
)

// PipelineMessage is what the executor receives for a created pipeline:
// the pipeline; a single-use runner token for GET CheckoutURL, which
// answers the clone URL, revision, known_hosts and the private keys; and
// the executor token for POST StatusURL, which reports the pipeline's
// progress (running, success, ...) until it ends.
type PipelineMessage struct {
	Pipeline               *forgelink.Pipeline `json:"pipeline"`
	RunnerToken            string              `json:"runner_token,omitempty"`
	RunnerTokenExpiresAt   *time.Time          `json:"runner_token_expires_at,omitempty"`
	CheckoutURL            string              `json:"checkout_url,omitempty"`
	ExecutorToken          string              `json:"executor_token,omitempty"`
	ExecutorTokenExpiresAt *time.Time          `json:"executor_token_expires_at,omitempty"`
	StatusURL              string              `json:"status_url,omitempty"`
}

// RunnerAccess mints the pipeline-scoped tokens of hand-offs.
type RunnerAccess struct {
	// Mint returns the pipeline's single-use checkout token and its
	// executor token (optional: "" when none), minted in one store write.
	Mint func(ctx context.Context, pipelineID string) (forgelink.PipelineTokens, error)
	// PublicURL is the base of the checkout and status URLs.
	PublicURL string
}

// message builds the executor's message; a nil RunnerAccess adds no
// tokens, and an errored pipeline (nothing to run) gets none.
func (a *RunnerAccess) message(ctx context.Context, p *forgelink.Pipeline) (*PipelineMessage, error) {
	m := &PipelineMessage{Pipeline: p}
	if a == nil || a.Mint == nil || p.State == forgelink.PipelineErrored {
		return m, nil
	}
	base := strings.TrimRight(a.PublicURL, "/") + "/api/v2/pipeline/" + p.ID
	toks, err := a.Mint(ctx, p.ID)
	if err != nil {
		return nil, fmt.Errorf("mint pipeline tokens: %w", err)
	}
	m.RunnerToken, m.RunnerTokenExpiresAt, m.CheckoutURL = toks.Runner, &toks.RunnerExpiresAt, base+"/checkout"
	if toks.Executor != "" {
		m.ExecutorToken, m.ExecutorTokenExpiresAt, m.StatusURL = toks.Executor, &toks.ExecutorExpiresAt, base+"/status"
	}
	return m, nil
}

// firstStatus is the status request of a new pipeline: pending, or error
// with the config's message for an errored one. Its target URL is the
// pipeline's page under the RunnerAccess's PublicURL, when there is one
// (the status function may not know its public URL in AWS).
func (a *RunnerAccess) firstStatus(p *forgelink.Pipeline) *forgelink.StatusRequest {
	r := &forgelink.StatusRequest{
		PipelineID: p.ID, Project: p.Project, Revision: p.Revision,
		State: string(forgelink.StatusPending), RequestedAt: p.CreatedAt,
	}
	if a != nil && a.PublicURL != "" {
		r.TargetURL = strings.TrimRight(a.PublicURL, "/") + "/pipelines/" + p.ID
	}
	if p.State == forgelink.PipelineErrored {
		r.State = string(forgelink.StatusError)
		if len(p.Errors) > 0 {
			r.Description = p.Errors[0]
		}
	}
	return r
}

// LocalHandoff is the one-process server's hand-off: it keeps the most
// recent executor messages in memory (there is no executor in-process;
// tests and the log read them), and queues each pipeline's first status
// request on Statuses.
type LocalHandoff struct {
	Log    *slog.Logger
	Runner *RunnerAccess
	// Statuses receives the first status request of every pipeline.
	// Optional: nil only records it.
	Statuses StatusRequester
	// Keep is how many of the latest hand-offs Pipelines and
	// StatusRequests return; 0 means 1,000. Older ones are dropped, so a
	// long-running server's memory does not grow with every pipeline.
	Keep int

	mu        sync.Mutex
	pipelines []*PipelineMessage
	statuses  []*forgelink.StatusRequest
}

// Handoff records p and its pending status request.
func (h *LocalHandoff) Handoff(ctx context.Context, p *forgelink.Pipeline) error {
	msg, err := h.Runner.message(ctx, p)
	if err != nil {
		return fmt.Errorf("hand off pipeline %s: %w", p.ID, err)
	}
	st := h.Runner.firstStatus(p)
	if h.Statuses != nil {
		if err := h.Statuses.Request(ctx, st); err != nil {
			return fmt.Errorf("hand off pipeline %s: %w", p.ID, err)
		}
	}
	h.mu.Lock()
	h.pipelines = trim(append(h.pipelines, msg), h.keep())
	h.statuses = trim(append(h.statuses, st), h.keep())
	h.mu.Unlock()
	if h.Log != nil {
		h.Log.InfoContext(ctx, "pipeline handed off", "pipeline", p.ID, "project", p.Project, "number", p.Number, "delivery", p.DeliveryID, "status", st.State)
	}
	return nil
}

func (h *LocalHandoff) keep() int {
	if h.Keep <= 0 {
		return 1000
	}
	return h.Keep
}

// trim returns s, or once s holds twice keep, a copy of its last keep
// elements: dropping the oldest costs O(1) per append, amortised.
func trim[T any](s []T, keep int) []T {
	if len(s) < 2*keep {
		return s
	}
	return append([]T(nil), s[len(s)-keep:]...)
}

// last returns a copy of the last keep elements of s.
func last[T any](s []T, keep int) []T {
	return append([]T(nil), s[max(0, len(s)-keep):]...)
}

// Pipelines returns the executor messages of the latest Keep hand-offs,
// oldest first.
func (h *LocalHandoff) Pipelines() []*PipelineMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return last(h.pipelines, h.keep())
}

// StatusRequests returns the first status requests of the latest Keep
// hand-offs, oldest first.
func (h *LocalHandoff) StatusRequests() []*forgelink.StatusRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return last(h.statuses, h.keep())
}
