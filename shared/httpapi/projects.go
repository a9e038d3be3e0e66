package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"forgelink/shared/apiauth"
	"forgelink/shared/follow"
	"forgelink/shared/forgelink"
	"forgelink/shared/httpjson"
)

// Projects serves the project API of the keys function: follow, unfollow
// and project lookup, on CircleCI's v1.1 and v2 paths.
type Projects struct {
	Store forgelink.Store
	// Pipelines serves the pipeline and delivery history; nil leaves those
	// routes out.
	Pipelines forgelink.PipelineStore
	Follow    *follow.Service
	// Inbox queues a dead delivery again (POST .../deliveries/{id}/retry);
	// nil leaves that route out.
	Inbox forgelink.Inbox
	Auth  apiauth.Authenticator
	// Authz checks the user's permission on the repository with the VCS:
	// pull to read, admin to change. Nil allows every authenticated user
	// (local mode's single user).
	Authz apiauth.Authorizer
	// PublicURL is the base of installed webhook URLs. Empty: the request's
	// own https://host, which is right behind API Gateway.
	PublicURL string
	Log       *slog.Logger
}

// Handler returns the routes, every one behind the API token.
func (p *Projects) Handler() http.Handler {
	mux := http.NewServeMux()
	project := func(pattern string, h http.HandlerFunc) {
		mux.HandleFunc(pattern, authorized(p.Authz, p.log(), h))
	}
	project("POST /api/v1.1/project/{vcs}/{org}/{repo}/follow", p.follow)
	project("DELETE /api/v1.1/project/{vcs}/{org}/{repo}/follow", p.unfollow)
	project("GET /api/v1.1/project/{vcs}/{org}/{repo}/follow", p.get)
	project("GET /api/v2/project/{vcs}/{org}/{repo}", p.get)
	project("POST /api/v2/project/{vcs}/{org}/{repo}/webhook-secret/rotate", p.rotateSecret)
	project("GET /api/v2/project/{vcs}/{org}/{repo}/settings", p.getSettings)
	project("PATCH /api/v2/project/{vcs}/{org}/{repo}/settings", p.patchSettings)
	if p.Pipelines != nil {
		project("GET /api/v2/project/{vcs}/{org}/{repo}/pipeline", p.listPipelines)
		project("GET /api/v2/project/{vcs}/{org}/{repo}/deliveries", p.listDeliveries)
		if p.Inbox != nil {
			project("POST /api/v2/project/{vcs}/{org}/{repo}/deliveries/{id}/retry", p.retryDelivery)
		}
		mux.HandleFunc("GET /api/v2/pipeline/{id}", p.getPipeline)
	}
	mux.HandleFunc("GET /api/v1.1/user/repos", p.userRepos)
	mux.HandleFunc("GET /api/v1.1/user/repos/{vcs}", p.userRepos)
	mux.HandleFunc("GET /api/v1.1/projects", p.listProjects)
	// A known path with another method: 405 naming the allowed ones, as
	// the keys routes answer, not the 404 of an unknown path.
	const v1, v2 = "/api/v1.1/project/{vcs}/{org}/{repo}", "/api/v2/project/{vcs}/{org}/{repo}"
	allowed := map[string]string{
		v1 + "/follow": "GET, POST, DELETE", v2: "GET", v2 + "/webhook-secret/rotate": "POST", v2 + "/settings": "GET, PATCH",
		"/api/v1.1/user/repos": "GET", "/api/v1.1/user/repos/{vcs}": "GET", "/api/v1.1/projects": "GET",
	}
	if p.Pipelines != nil {
		allowed[v2+"/pipeline"], allowed[v2+"/deliveries"], allowed["/api/v2/pipeline/{id}"] = "GET", "GET", "GET"
		if p.Inbox != nil {
			allowed[v2+"/deliveries/{id}/retry"] = "POST"
		}
	}
	for path, allow := range allowed {
		mux.Handle(path, httpjson.MethodNotAllowed(allow))
	}
	mux.HandleFunc("/", httpjson.NotFound)
	return apiauth.Require(p.Auth, p.log(), mux)
}

// authorized wraps the handler of a {vcs}/{org}/{repo} route with the
// user's permission check: pull to read, admin to change. A repository the
// VCS hides from the user is NotFound, as an unknown project.
func authorized(authz apiauth.Authorizer, log *slog.Logger, h http.HandlerFunc) http.HandlerFunc {
	if authz == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		slug, err := slugOf(r)
		if err == nil {
			err = authz.Authorize(r.Context(), apiauth.UserFrom(r.Context()), slug, apiauth.Need(r))
		}
		if err != nil {
			httpjson.Error(w, r, log, err)
			return
		}
		h(w, r)
	}
}

// slugOf reads {vcs}/{org}/{repo} from the path.
func slugOf(r *http.Request) (forgelink.Slug, error) {
	return forgelink.NewSlug(r.PathValue("vcs"), r.PathValue("org"), r.PathValue("repo"))
}

// followResponse is CircleCI's v1.1 follow answer, plus what forgelink
// installed so the user can check it on the VCS.
type followResponse struct {
	Following  bool       `json:"following"`
	FirstBuild *struct{}  `json:"first_build"`
	Project    string     `json:"project"`
	Created    bool       `json:"created"`
	HookURL    string     `json:"hook_url"`
	DeployKey  publicKey  `json:"deploy_key"`
	FollowedAt *time.Time `json:"followed_at,omitempty"`
}

type publicKey struct {
	PublicKey         string    `json:"public_key"`
	Type              string    `json:"type"`
	Fingerprint       string    `json:"fingerprint"`
	FingerprintSHA256 string    `json:"fingerprint_sha256"`
	Preferred         bool      `json:"preferred"`
	Time              time.Time `json:"time"`
}

func (p *Projects) follow(w http.ResponseWriter, r *http.Request) {
	slug, err := slugOf(r)
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	user := apiauth.UserFrom(r.Context())
	res, err := p.Follow.Follow(r.Context(), slug, user.Login, p.publicURL(r))
	if err != nil {
		httpjson.Error(w, r, p.log().With("project", slug.String()), err)
		return
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	pr := res.Project
	httpjson.Write(w, status, followResponse{
		Following:  true,
		Project:    pr.Slug.String(),
		Created:    res.Created,
		HookURL:    res.HookURL,
		DeployKey:  deployKeyJSON(pr),
		FollowedAt: &pr.CreatedAt,
	})
}

func deployKeyJSON(pr *forgelink.Project) publicKey {
	return publicKey{
		PublicKey:         pr.DeployKey.PublicKey,
		Type:              "deploy-key",
		Fingerprint:       pr.DeployKey.FingerprintMD5,
		FingerprintSHA256: pr.DeployKey.FingerprintSHA256,
		Preferred:         true,
		Time:              pr.DeployKey.CreatedAt,
	}
}

func (p *Projects) unfollow(w http.ResponseWriter, r *http.Request) {
	slug, err := slugOf(r)
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	if err := p.Follow.Unfollow(r.Context(), slug); err != nil {
		if forgelink.KindOf(err) == forgelink.NotFound {
			err = forgelink.E(forgelink.NotFound, "project "+slug.String()+" is not followed", err)
		}
		httpjson.Error(w, r, p.log().With("project", slug.String()), err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"following": false, "project": slug.String()})
}

// projectResponse is CircleCI's v2 project shape plus follow state.
type projectResponse struct {
	Slug             string    `json:"slug"`
	Name             string    `json:"name"`
	OrganizationName string    `json:"organization_name"`
	VCSInfo          vcsInfo   `json:"vcs_info"`
	Following        bool      `json:"following"`
	State            string    `json:"state"`
	DeployKey        publicKey `json:"deploy_key"`
}

type vcsInfo struct {
	VCSURL        string `json:"vcs_url"`
	Provider      string `json:"provider"`
	DefaultBranch string `json:"default_branch"`
}

func (p *Projects) get(w http.ResponseWriter, r *http.Request) {
	slug, err := slugOf(r)
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	pr, err := p.Store.GetProject(r.Context(), slug)
	if err != nil {
		if forgelink.KindOf(err) == forgelink.NotFound {
			err = forgelink.E(forgelink.NotFound, "project "+slug.String()+" is not followed", err)
		}
		httpjson.Error(w, r, p.log(), err)
		return
	}
	provider, repoURL := vcsNames(slug)
	httpjson.Write(w, http.StatusOK, projectResponse{
		Slug:             slug.String(),
		Name:             slug.Repo,
		OrganizationName: slug.Org,
		VCSInfo:          vcsInfo{VCSURL: repoURL, Provider: provider, DefaultBranch: pr.DefaultBranch},
		Following:        pr.State == forgelink.Following,
		State:            string(pr.State),
		DeployKey:        deployKeyJSON(pr),
	})
}

func (p *Projects) rotateSecret(w http.ResponseWriter, r *http.Request) {
	slug, _, err := p.followedSlug(r)
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	pr, err := p.Follow.RotateSecret(r.Context(), slug, p.publicURL(r))
	if err != nil {
		httpjson.Error(w, r, p.log().With("project", slug.String()), err)
		return
	}
	resp := map[string]any{"project": slug.String(), "rotated": true}
	if len(pr.Secrets) > 1 {
		resp["previous_secret_valid_until"] = pr.Secrets[1].ExpiresAt
	}
	httpjson.Write(w, http.StatusOK, resp)
}

func (p *Projects) publicURL(r *http.Request) string {
	if p.PublicURL != "" {
		return p.PublicURL
	}
	return "https://" + r.Host
}

func (p *Projects) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}
