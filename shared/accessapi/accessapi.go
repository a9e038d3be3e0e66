// Package accessapi serves the org-access routes: GET /api/v2/org-access
// (each organization's state, since when, what to do, its projects) and
// POST /api/v2/org-access/check (a sweep now, of everything, one org or
// one project).
//
//	api := &accessapi.API{Service: svc, Auth: auth, Log: log}
//	mux.Handle("/api/v2/org-access", api.Handler())
package accessapi

import (
	"context"
	"log/slog"
	"net/http"

	"forgelink/shared/apiauth"
	"forgelink/shared/forgelink"
	"forgelink/shared/httpjson"
	"forgelink/shared/orgaccess"
)

// Service is the org-access service (orgaccess.Service).
type Service interface {
	Sweep(ctx context.Context, scope orgaccess.Scope) (*orgaccess.Result, error)
	Status(ctx context.Context, scope orgaccess.Scope) ([]orgaccess.Org, error)
}

// API serves the routes; every one needs the API token.
type API struct {
	Service Service
	Auth    apiauth.Authenticator
	// Authz, when set, narrows what a signed-in user sees to the projects
	// the VCS lets the user pull, and what the user may check to those the
	// user administers. Local mode's environment user sees everything.
	Authz apiauth.Authorizer
	Log   *slog.Logger
}

// narrow limits scope to the projects r's user has need on.
func (a *API) narrow(r *http.Request, scope orgaccess.Scope, need forgelink.Permission) orgaccess.Scope {
	u := apiauth.UserFrom(r.Context())
	if a.Authz == nil || u == nil || u.Env() {
		return scope
	}
	ctx := r.Context()
	scope.Visible = func(slug forgelink.Slug) bool {
		return a.Authz.Authorize(ctx, u, slug, need) == nil
	}
	return scope
}

// maxCheckBody bounds the check request's JSON body.
const maxCheckBody = 4 << 10

// Handler serves the routes.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v2/org-access", a.list)
	mux.HandleFunc("/api/v2/org-access", httpjson.MethodNotAllowed(http.MethodGet))
	mux.HandleFunc("POST /api/v2/org-access/check", a.check)
	mux.HandleFunc("/api/v2/org-access/check", httpjson.MethodNotAllowed(http.MethodPost))
	return apiauth.Require(a.Auth, a.log(), mux)
}

type listResponse struct {
	Items []orgaccess.Org `json:"items"`
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	scope, err := orgaccess.ParseScope(r.URL.Query().Get("org"), r.URL.Query().Get("project"))
	if err != nil {
		httpjson.Error(w, r, a.log(), err)
		return
	}
	orgs, err := a.Service.Status(r.Context(), a.narrow(r, scope, forgelink.PermissionPull))
	if err != nil {
		httpjson.Error(w, r, a.log(), err)
		return
	}
	httpjson.Write(w, http.StatusOK, listResponse{Items: orgs})
}

// checkRequest narrows a check: an org ("gh/acme") or a project
// ("gh/acme/widget"); neither checks everything.
type checkRequest struct {
	Org     string `json:"org"`
	Project string `json:"project"`
}

func (a *API) check(w http.ResponseWriter, r *http.Request) {
	var req checkRequest
	if err := httpjson.Read(w, r, maxCheckBody, &req, true); err != nil {
		httpjson.Error(w, r, a.log(), err)
		return
	}
	scope, err := orgaccess.ParseScope(req.Org, req.Project)
	if err != nil {
		httpjson.Error(w, r, a.log(), err)
		return
	}
	res, err := a.Service.Sweep(r.Context(), a.narrow(r, scope, forgelink.PermissionAdmin))
	if err != nil {
		httpjson.Error(w, r, a.log(), err)
		return
	}
	httpjson.Write(w, http.StatusOK, res)
}

func (a *API) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}
