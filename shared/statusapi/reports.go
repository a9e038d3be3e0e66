package statusapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"forgelink/shared/apiauth"
	"forgelink/shared/forgelink"
	"forgelink/shared/httpjson"
	"forgelink/shared/statussvc"
)

// Reporter applies executor reports (statussvc.Service).
type Reporter interface {
	Report(ctx context.Context, pipelineID string, r statussvc.Report) (*forgelink.Pipeline, bool, error)
}

// ExecutorTokens checks pipeline-scoped executor tokens (the key store).
type ExecutorTokens interface {
	CheckRunnerToken(ctx context.Context, hash string, now time.Time) (*forgelink.RunnerToken, error)
}

// Reports serves POST /api/v2/pipeline/{id}/status, the executor's
// progress reports, authenticated by the API token or by the pipeline's
// own executor token.
type Reports struct {
	Reporter Reporter
	Tokens   ExecutorTokens
	Auth     apiauth.Authenticator
	// Authz, when set, requires a user (not an executor token) to have
	// admin on the pipeline's repository: a status is posted with the
	// follower's token, so reading is not enough.
	Authz apiauth.Authorizer
	// Pipelines finds the pipeline's project for Authz.
	Pipelines interface {
		GetPipeline(ctx context.Context, id string) (*forgelink.Pipeline, error)
	}
	// PublicURL is the base of a report's default target URL,
	// PublicURL/pipelines/{id}; empty uses the request's own host (https),
	// as behind API Gateway.
	PublicURL string
	Now       func() time.Time
	Log       *slog.Logger
}

// maxReportBody bounds a report's JSON body.
const maxReportBody = 64 << 10

// reportRequest is the body of a status report.
type reportRequest struct {
	State       string `json:"state"`
	Workflow    string `json:"workflow"`
	TargetURL   string `json:"target_url"`
	Description string `json:"description"`
}

// reportResponse is the pipeline's state after a report.
type reportResponse struct {
	ID             string            `json:"id"`
	Number         int64             `json:"number"`
	Status         string            `json:"status"`
	WorkflowStatus map[string]string `json:"workflow_status"`
	// Changed is false when the report repeated what was known (nothing
	// is posted then).
	Changed bool `json:"changed"`
}

// Handler serves the report route.
func (h *Reports) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v2/pipeline/{id}/status", h.report)
	mux.HandleFunc("/api/v2/pipeline/{id}/status", httpjson.MethodNotAllowed(http.MethodPost))
	return mux
}

func (h *Reports) report(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	log := h.log().With("pipeline", id)
	if err := h.authorize(r, id); err != nil {
		httpjson.Error(w, r, log, err)
		return
	}
	var req reportRequest
	if err := httpjson.Read(w, r, maxReportBody, &req, false); err != nil {
		httpjson.Error(w, r, log, err)
		return
	}
	state, err := forgelink.ParseExecutorState(req.State)
	if err != nil {
		httpjson.Error(w, r, log, err)
		return
	}
	if req.TargetURL == "" {
		base := strings.TrimRight(h.PublicURL, "/")
		if base == "" {
			base = "https://" + r.Host
		}
		req.TargetURL = base + "/pipelines/" + id
	}
	p, changed, err := h.Reporter.Report(r.Context(), id, statussvc.Report{
		State: state, Workflow: req.Workflow, TargetURL: req.TargetURL, Description: req.Description,
	})
	if err != nil {
		httpjson.Error(w, r, log, err)
		return
	}
	out := reportResponse{ID: p.ID, Number: p.Number, Status: string(p.CurrentStatus()), WorkflowStatus: map[string]string{}, Changed: changed}
	for _, wf := range p.StatusWorkflows() {
		out.WorkflowStatus[wf] = string(p.WorkflowState(wf))
	}
	httpjson.Write(w, http.StatusOK, out)
}

// authorize accepts the API token, or an executor token minted for this
// pipeline: another pipeline's is Forbidden.
func (h *Reports) authorize(r *http.Request, pipelineID string) error {
	tok, err := apiauth.Token(r)
	if err != nil {
		return err
	}
	if tok == "" {
		return forgelink.Errorf(forgelink.Unauthorized, "missing token: send the Circle-Token header with the API token or the pipeline's executor token")
	}
	if !strings.HasPrefix(tok, forgelink.ExecutorTokenPrefix) {
		u, err := h.Auth.Authenticate(r.Context(), tok)
		if err != nil || h.Authz == nil || h.Pipelines == nil {
			return err
		}
		p, err := h.Pipelines.GetPipeline(r.Context(), pipelineID)
		if err != nil {
			return err
		}
		slug, err := forgelink.ParseSlug(p.Project)
		if err != nil {
			return err
		}
		if err := h.Authz.Authorize(r.Context(), u, slug, forgelink.PermissionAdmin); err != nil {
			if forgelink.KindOf(err) == forgelink.NotFound {
				return forgelink.Errorf(forgelink.NotFound, "pipeline %s not found", pipelineID)
			}
			return err
		}
		return nil
	}
	t, err := h.Tokens.CheckRunnerToken(r.Context(), forgelink.HashRunnerToken(tok), h.now())
	if err != nil {
		return err
	}
	if t.PipelineID != pipelineID {
		return forgelink.Errorf(forgelink.Forbidden, "this executor token belongs to another pipeline")
	}
	return nil
}

func (h *Reports) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Reports) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}
