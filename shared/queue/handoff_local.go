package queue

import (
	"context"
	"log/slog"
	"sync"

	"forgelink/shared/forgelink"
)

// LocalHandoff is the one-process server's hand-off: it keeps the
// pipelines and status requests in memory, for the in-process executor
// and status consumer, and logs them.
type LocalHandoff struct {
	Log *slog.Logger

	mu        sync.Mutex
	pipelines []*forgelink.Pipeline
	statuses  []*forgelink.StatusRequest
}

// Handoff records p and its pending status request.
func (h *LocalHandoff) Handoff(ctx context.Context, p *forgelink.Pipeline) error {
	st := &forgelink.StatusRequest{PipelineID: p.ID, Project: p.Project, Revision: p.Revision, State: "pending"}
	if p.State == forgelink.PipelineErrored {
		st.State = "error"
	}
	h.mu.Lock()
	h.pipelines = append(h.pipelines, p)
	h.statuses = append(h.statuses, st)
	h.mu.Unlock()
	if h.Log != nil {
		h.Log.InfoContext(ctx, "pipeline handed off", "pipeline", p.ID, "project", p.Project, "number", p.Number, "delivery", p.DeliveryID, "status", st.State)
	}
	return nil
}

// Pipelines returns the pipelines handed off so far.
func (h *LocalHandoff) Pipelines() []*forgelink.Pipeline {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*forgelink.Pipeline(nil), h.pipelines...)
}

// StatusRequests returns the status requests made so far.
func (h *LocalHandoff) StatusRequests() []*forgelink.StatusRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*forgelink.StatusRequest(nil), h.statuses...)
}
