package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"forgelink/shared/apiauth"
	"forgelink/shared/forgelink"
	"forgelink/shared/httpjson"
)

// pipelineJSON is CircleCI's v2 pipeline shape, plus what forgelink knows
// of the trigger (event, PR, fork, secrets, workflows).
type pipelineJSON struct {
	ID             string          `json:"id"`
	Errors         []pipelineError `json:"errors"`
	ProjectSlug    string          `json:"project_slug"`
	UpdatedAt      time.Time       `json:"updated_at"`
	Number         int64           `json:"number"`
	State          string          `json:"state"`
	CreatedAt      time.Time       `json:"created_at"`
	Trigger        triggerJSON     `json:"trigger"`
	VCS            pipelineVCS     `json:"vcs"`
	SecretsExposed bool            `json:"secrets_exposed"`
	Workflows      []string        `json:"workflows"`
	// Status is the pipeline's overall status (pending, running, success,
	// failed, error, canceled) and WorkflowStatus each workflow's, from
	// the executor's reports; StatusErrors says why a commit status could
	// not be posted.
	Status         string            `json:"status"`
	WorkflowStatus map[string]string `json:"workflow_status"`
	StatusErrors   []string          `json:"status_errors,omitempty"`
}

type pipelineError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type triggerJSON struct {
	Type       string    `json:"type"`  // "webhook", as CircleCI
	Event      string    `json:"event"` // push, pull_request, tag
	ReceivedAt time.Time `json:"received_at"`
	Actor      actorJSON `json:"actor"`
	DeliveryID string    `json:"delivery_id"`
}

type actorJSON struct {
	Login     string  `json:"login"`
	AvatarURL *string `json:"avatar_url"`
}

type pipelineVCS struct {
	ProviderName        string `json:"provider_name"`
	OriginRepositoryURL string `json:"origin_repository_url"`
	TargetRepositoryURL string `json:"target_repository_url"`
	Revision            string `json:"revision"`
	Branch              string `json:"branch,omitempty"`
	Tag                 string `json:"tag,omitempty"`
	ReviewID            string `json:"review_id,omitempty"`
	Fork                bool   `json:"fork"`
}

func toPipelineJSON(slug forgelink.Slug, p *forgelink.Pipeline) pipelineJSON {
	provider, url := vcsNames(slug)
	j := pipelineJSON{
		ID:             p.ID,
		Errors:         []pipelineError{},
		ProjectSlug:    p.Project,
		UpdatedAt:      p.CreatedAt,
		Number:         p.Number,
		State:          string(p.State),
		CreatedAt:      p.CreatedAt,
		StatusErrors:   p.StatusErrors,
		WorkflowStatus: map[string]string{},
		Trigger: triggerJSON{
			Type:       "webhook",
			Event:      p.Trigger,
			ReceivedAt: p.CreatedAt,
			Actor:      actorJSON{Login: p.Actor},
			DeliveryID: p.DeliveryID,
		},
		VCS: pipelineVCS{
			ProviderName:        provider,
			OriginRepositoryURL: url,
			TargetRepositoryURL: url,
			Revision:            p.Revision,
			Branch:              p.Branch,
			Tag:                 p.Tag,
			Fork:                p.Fork,
		},
		SecretsExposed: p.SecretsExposed,
		Workflows:      p.Workflows,
	}
	if p.PRNumber != 0 {
		j.VCS.ReviewID = strconv.Itoa(p.PRNumber)
	}
	for _, e := range p.Errors {
		j.Errors = append(j.Errors, pipelineError{Type: "config", Message: e})
	}
	if j.Workflows == nil {
		j.Workflows = []string{}
	}
	j.Status = string(p.CurrentStatus())
	for _, w := range p.StatusWorkflows() {
		j.WorkflowStatus[w] = string(p.WorkflowState(w))
	}
	return j
}

func vcsNames(slug forgelink.Slug) (provider, repoURL string) {
	if slug.VCS == forgelink.Bitbucket {
		return slug.VCS.Name(), "https://bitbucket.org/" + slug.FullName()
	}
	return slug.VCS.Name(), "https://github.com/" + slug.FullName()
}

// listPage is CircleCI's v2 paginated list.
type listPage[T any] struct {
	Items         []T     `json:"items"`
	NextPageToken *string `json:"next_page_token"`
}

func pageOf(r *http.Request) (forgelink.Page, error) {
	p := forgelink.Page{Token: r.URL.Query().Get("page-token"), Limit: 20}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return p, forgelink.Errorf(forgelink.Invalid, "limit must be a number from 1 to 100")
		}
		p.Limit = n
	}
	return p, nil
}

func nextToken(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// followedSlug reads the slug from the path and checks the project is followed.
func (p *Projects) followedSlug(r *http.Request) (forgelink.Slug, *forgelink.Project, error) {
	slug, err := slugOf(r)
	if err != nil {
		return slug, nil, err
	}
	pr, err := p.Store.GetProject(r.Context(), slug)
	if forgelink.KindOf(err) == forgelink.NotFound {
		return slug, nil, forgelink.E(forgelink.NotFound, "project "+slug.String()+" is not followed", err)
	}
	return slug, pr, err
}

func (p *Projects) listPipelines(w http.ResponseWriter, r *http.Request) {
	slug, _, err := p.followedSlug(r)
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	page, err := pageOf(r)
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	items, next, err := p.Pipelines.ListPipelines(r.Context(), slug, page)
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	out := listPage[pipelineJSON]{Items: make([]pipelineJSON, 0, len(items)), NextPageToken: nextToken(next)}
	for _, it := range items {
		out.Items = append(out.Items, toPipelineJSON(slug, it))
	}
	httpjson.Write(w, http.StatusOK, out)
}

func (p *Projects) getPipeline(w http.ResponseWriter, r *http.Request) {
	pl, err := p.Pipelines.GetPipeline(r.Context(), r.PathValue("id"))
	if err != nil {
		if forgelink.KindOf(err) == forgelink.NotFound {
			err = forgelink.E(forgelink.NotFound, "pipeline not found", err)
		}
		httpjson.Error(w, r, p.log(), err)
		return
	}
	slug, err := forgelink.ParseSlug(pl.Project)
	if err == nil && p.Authz != nil {
		err = p.Authz.Authorize(r.Context(), apiauth.UserFrom(r.Context()), slug, forgelink.PermissionPull)
		if forgelink.KindOf(err) == forgelink.NotFound {
			err = forgelink.Errorf(forgelink.NotFound, "pipeline not found")
		}
	}
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	httpjson.Write(w, http.StatusOK, toPipelineJSON(slug, pl))
}

// deliveryJSON is one processed delivery with its decisions.
type deliveryJSON struct {
	ID          string    `json:"id"`
	HookID      string    `json:"hook_id"`
	Event       string    `json:"event"`
	ReceivedAt  time.Time `json:"received_at"`
	ProcessedAt time.Time `json:"processed_at"`
	// State is decided, dead (evaluation failed every attempt; see Error)
	// or received (queued again by a retry).
	State     forgelink.DeliveryState   `json:"state"`
	Error     string                    `json:"error,omitempty"`
	Attempts  int                       `json:"attempts,omitempty"`
	Decisions []forgelink.EventDecision `json:"decisions"`
}

func (p *Projects) listDeliveries(w http.ResponseWriter, r *http.Request) {
	slug, _, err := p.followedSlug(r)
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	page, err := pageOf(r)
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	recs, next, err := p.Pipelines.ListDeliveryRecords(r.Context(), slug, page)
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	out := listPage[deliveryJSON]{Items: make([]deliveryJSON, 0, len(recs)), NextPageToken: nextToken(next)}
	for _, d := range recs {
		decisions := d.Decisions
		if decisions == nil {
			decisions = []forgelink.EventDecision{}
		}
		state := d.State
		if state == "" {
			state = forgelink.Decided
		}
		out.Items = append(out.Items, deliveryJSON{ID: d.DeliveryID, HookID: d.HookID, Event: d.Event, ReceivedAt: d.ReceivedAt, ProcessedAt: d.ProcessedAt,
			State: state, Error: d.Error, Attempts: d.Attempts, Decisions: decisions})
	}
	httpjson.Write(w, http.StatusOK, out)
}

// retryDelivery queues a delivery that was not decided (a dead letter)
// for evaluation again.
func (p *Projects) retryDelivery(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	slug, pr, err := p.followedSlug(r)
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	id := r.PathValue("id")
	d, err := p.Store.GetDelivery(ctx, pr.HookID, id)
	if forgelink.KindOf(err) == forgelink.NotFound {
		err = forgelink.E(forgelink.NotFound, "delivery "+id+" not found (deliveries are kept 8 days)", err)
	}
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	if d.State == forgelink.Decided {
		httpjson.Error(w, r, p.log(), forgelink.Errorf(forgelink.Conflict, "delivery %s was decided; there is nothing to retry", id))
		return
	}
	if err := p.Inbox.Requeue(ctx, d); err != nil {
		httpjson.Error(w, r, p.log(), fmt.Errorf("retry delivery %s of %s: %w", id, slug, err))
		return
	}
	rec := &forgelink.DeliveryRecord{Project: slug.String(), HookID: d.HookID, DeliveryID: d.ID, Event: d.Event,
		ReceivedAt: d.ReceivedAt, ProcessedAt: time.Now().UTC(), State: forgelink.Received}
	if err := p.Pipelines.PutDeliveryRecord(ctx, rec); err != nil {
		p.log().WarnContext(ctx, "retry: could not update the delivery record", "delivery", id, "err", err)
	}
	p.log().InfoContext(ctx, "delivery queued again", "delivery", id, "hook_id", d.HookID, "project", slug.String())
	httpjson.Write(w, http.StatusAccepted, map[string]any{"delivery": id, "state": forgelink.Received})
}

// settingsJSON is CircleCI's v2 project settings document, plus what the
// org-access check last found for the project.
type settingsJSON struct {
	Advanced  forgelink.Settings `json:"advanced"`
	OrgAccess *orgAccessJSON     `json:"org_access,omitempty"`
}

// orgAccessJSON is a project's access state (GET /api/v2/org-access has
// the org's, with the remediation).
type orgAccessJSON struct {
	State     forgelink.AccessState `json:"state"`
	Since     time.Time             `json:"since"`
	CheckedAt time.Time             `json:"checked_at"`
	Detail    string                `json:"detail,omitempty"`
	Repairs   []string              `json:"repairs,omitempty"`
}

func settingsOf(p *forgelink.Project) settingsJSON {
	out := settingsJSON{Advanced: withLists(p.Settings)}
	if a := p.Access; a != nil {
		out.OrgAccess = &orgAccessJSON{State: a.State, Since: a.Since, CheckedAt: a.CheckedAt, Detail: a.Detail, Repairs: a.Repairs}
	}
	return out
}

// settingsPatch has a pointer per field so that absent fields stay as they are.
type settingsPatch struct {
	Advanced *struct {
		BuildPRsOnly              *bool     `json:"build_prs_only"`
		BuildForkPRs              *bool     `json:"build_fork_prs"`
		ForksReceiveSecretEnvVars *bool     `json:"forks_receive_secret_env_vars"`
		SetGitHubStatus           *bool     `json:"set_github_status"`
		PROnlyBranchOverrides     *[]string `json:"pr_only_branch_overrides"`
	} `json:"advanced"`
}

func (p *Projects) getSettings(w http.ResponseWriter, r *http.Request) {
	_, pr, err := p.followedSlug(r)
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	httpjson.Write(w, http.StatusOK, settingsOf(pr))
}

func withLists(s forgelink.Settings) forgelink.Settings {
	if s.AlwaysBuildBranches == nil {
		s.AlwaysBuildBranches = []string{}
	}
	return s
}

// MaxSettingsBody bounds a settings PATCH body.
const MaxSettingsBody = 64 << 10

func (p *Projects) patchSettings(w http.ResponseWriter, r *http.Request) {
	slug, _, err := p.followedSlug(r)
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	var patch settingsPatch
	if err := httpjson.Read(w, r, MaxSettingsBody, &patch, false); err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	if patch.Advanced == nil {
		httpjson.Error(w, r, p.log(), forgelink.Errorf(forgelink.Invalid, `body must be {"advanced": {...}}`))
		return
	}
	a := patch.Advanced
	pr, err := UpdateSettings(r.Context(), p.Store, slug, SettingsChange{
		BuildPRsOnly: a.BuildPRsOnly, BuildForkPRs: a.BuildForkPRs, ForksReceiveSecretEnvVars: a.ForksReceiveSecretEnvVars,
		SetGitHubStatus: a.SetGitHubStatus, AlwaysBuildBranches: a.PROnlyBranchOverrides,
	})
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	httpjson.Write(w, http.StatusOK, settingsOf(pr))
}

// SettingsChange changes a project's advanced settings; a nil field stays
// as it is.
type SettingsChange struct {
	BuildPRsOnly              *bool
	BuildForkPRs              *bool
	ForksReceiveSecretEnvVars *bool
	SetGitHubStatus           *bool
	// AlwaysBuildBranches replaces the always-build branch patterns
	// (pr_only_branch_overrides).
	AlwaysBuildBranches *[]string
}

// ProjectUpdater reads and conditionally updates projects;
// forgelink.Store is one.
type ProjectUpdater interface {
	GetProject(ctx context.Context, slug forgelink.Slug) (*forgelink.Project, error)
	UpdateProject(ctx context.Context, p *forgelink.Project) error
}

// UpdateSettings applies c to the followed project's settings and returns
// the project as stored. Patterns are checked before anything is written
// (Invalid); the update is a read-modify-write under the store's
// optimistic check, retried when another writer won. It is the one
// settings change of the API (PATCH .../settings) and the settings page.
func UpdateSettings(ctx context.Context, st ProjectUpdater, slug forgelink.Slug, c SettingsChange) (*forgelink.Project, error) {
	if c.AlwaysBuildBranches != nil {
		for _, s := range *c.AlwaysBuildBranches {
			if _, err := forgelink.ParsePattern(s); err != nil {
				return nil, err
			}
		}
	}
	for attempt := 0; ; attempt++ {
		pr, err := st.GetProject(ctx, slug)
		if forgelink.KindOf(err) == forgelink.NotFound {
			return nil, forgelink.E(forgelink.NotFound, "project "+slug.String()+" is not followed", err)
		}
		if err != nil {
			return nil, err
		}
		s := &pr.Settings
		set := func(dst *bool, v *bool) {
			if v != nil {
				*dst = *v
			}
		}
		set(&s.BuildPRsOnly, c.BuildPRsOnly)
		set(&s.BuildForkPRs, c.BuildForkPRs)
		set(&s.ForksReceiveSecretEnvVars, c.ForksReceiveSecretEnvVars)
		set(&s.SetGitHubStatus, c.SetGitHubStatus)
		if c.AlwaysBuildBranches != nil {
			s.AlwaysBuildBranches = append([]string(nil), (*c.AlwaysBuildBranches)...)
		}
		pr.UpdatedAt = time.Now().UTC()
		err = st.UpdateProject(ctx, pr)
		if forgelink.KindOf(err) == forgelink.Conflict && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("update settings of %s: %w", slug, err)
		}
		return pr, nil
	}
}
