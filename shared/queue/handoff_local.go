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
// the pipeline, and a single-use runner token for GET CheckoutURL, which
// answers the clone URL, revision, known_hosts and the private keys.
type PipelineMessage struct {
	Pipeline             *forgelink.Pipeline `json:"pipeline"`
	RunnerToken          string              `json:"runner_token,omitempty"`
	RunnerTokenExpiresAt *time.Time          `json:"runner_token_expires_at,omitempty"`
	CheckoutURL          string              `json:"checkout_url,omitempty"`
}

// RunnerAccess mints runner tokens for hand-offs.
type RunnerAccess struct {
	// Mint returns a single-use token for the pipeline and its expiry.
	Mint func(ctx context.Context, pipelineID string) (string, time.Time, error)
	// PublicURL is the base of the checkout URL.
	PublicURL string
}

// message builds the executor's message; a nil RunnerAccess adds no token.
func (a *RunnerAccess) message(ctx context.Context, p *forgelink.Pipeline) (*PipelineMessage, error) {
	m := &PipelineMessage{Pipeline: p}
	if a == nil || a.Mint == nil || p.State == forgelink.PipelineErrored {
		return m, nil
	}
	tok, exp, err := a.Mint(ctx, p.ID)
	if err != nil {
		return nil, fmt.Errorf("mint runner token: %w", err)
	}
	m.RunnerToken, m.RunnerTokenExpiresAt = tok, &exp
	m.CheckoutURL = strings.TrimRight(a.PublicURL, "/") + "/api/v2/pipeline/" + p.ID + "/checkout"
	return m, nil
}

// LocalHandoff is the one-process server's hand-off: it keeps the
// pipelines and status requests in memory, for the in-process executor
// and status consumer, and logs them.
type LocalHandoff struct {
	Log    *slog.Logger
	Runner *RunnerAccess

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
	st := &forgelink.StatusRequest{PipelineID: p.ID, Project: p.Project, Revision: p.Revision, State: "pending"}
	if p.State == forgelink.PipelineErrored {
		st.State = "error"
	}
	h.mu.Lock()
	h.pipelines = append(h.pipelines, msg)
	h.statuses = append(h.statuses, st)
	h.mu.Unlock()
	if h.Log != nil {
		h.Log.InfoContext(ctx, "pipeline handed off", "pipeline", p.ID, "project", p.Project, "number", p.Number, "delivery", p.DeliveryID, "status", st.State)
	}
	return nil
}

// Pipelines returns the executor messages handed off so far.
func (h *LocalHandoff) Pipelines() []*PipelineMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*PipelineMessage(nil), h.pipelines...)
}

// StatusRequests returns the status requests made so far.
func (h *LocalHandoff) StatusRequests() []*forgelink.StatusRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*forgelink.StatusRequest(nil), h.statuses...)
}
