package bitbucket

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"forgelink/shared/forgelink"
)

var _ forgelink.AccessChecker = (*Forge)(nil)

// noDeliveries is why RecentDeliveries and Redeliver fail.
const noDeliveries = "Bitbucket has no API to list or redeliver webhook deliveries"

// CheckRepository reads the repository, conditionally when etag is not
// "" (Bitbucket sends ETags on some resources; without one the Probe's
// ETag is ""). Unauthorized is a revoked token, Forbidden missing rights,
// NotFound a repository deleted, renamed away or out of the token's
// reach.
func (f *Forge) CheckRepository(ctx context.Context, slug forgelink.Slug, etag string) (forgelink.Probe, error) {
	p, err := f.c.conditional(ctx, http.MethodGet, f.c.url("repositories", slug.Org, slug.Repo), etag, nil, nil)
	if err != nil {
		return forgelink.Probe{}, fmt.Errorf("bitbucket: check repository %s: %w", slug.FullName(), classify(err, "repository "+slug.FullName()))
	}
	return p, nil
}

// webhook is what the access checks read of a webhook subscription.
type webhook struct {
	Description string   `json:"description"`
	URL         string   `json:"url"`
	Active      bool     `json:"active"`
	Events      []string `json:"events"`
}

// hookUpdate is the body of the PUT that reactivates a hook. It has no
// secret field: Bitbucket keeps the secret of a PUT that leaves it out
// (null would remove it).
type hookUpdate struct {
	Description string   `json:"description"`
	URL         string   `json:"url"`
	Active      bool     `json:"active"`
	Events      []string `json:"events"`
}

// CheckHook reads hook hookID (a uuid with braces), conditionally when
// etag is not "". Active is read only from a 200: on NotModified it is
// false and the hook is as it was when etag was returned. A deleted hook
// is NotFound; a user who is not an admin of the repository gets
// Forbidden.
func (f *Forge) CheckHook(ctx context.Context, slug forgelink.Slug, hookID, etag string) (forgelink.HookInfo, error) {
	var h webhook
	p, err := f.getHook(ctx, slug, hookID, etag, &h)
	if err != nil {
		return forgelink.HookInfo{}, fmt.Errorf("bitbucket: check hook %s of %s: %w", hookID, slug.FullName(), err)
	}
	return forgelink.HookInfo{Probe: p, Active: !p.NotModified && h.Active}, nil
}

func (f *Forge) getHook(ctx context.Context, slug forgelink.Slug, hookID, etag string, h *webhook) (forgelink.Probe, error) {
	if hookID == "" {
		return forgelink.Probe{}, forgelink.Errorf(forgelink.Invalid, "no hook id")
	}
	p, err := f.c.conditional(ctx, http.MethodGet, f.c.url("repositories", slug.Org, slug.Repo, "hooks", hookID), etag, nil, h)
	return p, classify(err, fmt.Sprintf("hook %s of %s", hookID, slug.FullName()))
}

// ActivateHook turns hook hookID on again: it reads the hook and PUTs its
// description, URL and events back with active true, leaving the secret
// out so that Bitbucket keeps it. A hook already active is left alone. A
// deleted hook is NotFound.
func (f *Forge) ActivateHook(ctx context.Context, slug forgelink.Slug, hookID string) error {
	fail := func(err error) error {
		return fmt.Errorf("bitbucket: activate hook %s of %s: %w", hookID, slug.FullName(), err)
	}
	var h webhook
	if _, err := f.getHook(ctx, slug, hookID, "", &h); err != nil {
		return fail(err)
	}
	if h.Active {
		return nil
	}
	body := hookUpdate{Description: h.Description, URL: h.URL, Active: true, Events: h.Events}
	if err := f.c.do(ctx, http.MethodPut, f.c.url("repositories", slug.Org, slug.Repo, "hooks", hookID), body, nil); err != nil {
		return fail(classify(err, fmt.Sprintf("hook %s of %s", hookID, slug.FullName())))
	}
	return nil
}

// CheckDeployKey reads deploy key keyID, conditionally when etag is not
// "". A deleted key is NotFound.
func (f *Forge) CheckDeployKey(ctx context.Context, slug forgelink.Slug, keyID, etag string) (forgelink.Probe, error) {
	fail := func(err error) (forgelink.Probe, error) {
		return forgelink.Probe{}, fmt.Errorf("bitbucket: check deploy key %s of %s: %w", keyID, slug.FullName(), err)
	}
	if keyID == "" {
		return fail(forgelink.Errorf(forgelink.Invalid, "no deploy key id"))
	}
	p, err := f.c.conditional(ctx, http.MethodGet, f.c.url("repositories", slug.Org, slug.Repo, "deploy-keys", keyID), etag, nil, nil)
	if err != nil {
		return fail(classify(err, fmt.Sprintf("deploy key %s of %s", keyID, slug.FullName())))
	}
	return p, nil
}

// RecentDeliveries always fails with Invalid: Bitbucket Cloud's API cannot
// list a webhook's deliveries (its web interface shows them only when
// history is turned on).
func (f *Forge) RecentDeliveries(ctx context.Context, slug forgelink.Slug, hookID string, since time.Time, etag string) ([]forgelink.HookDelivery, forgelink.Probe, error) {
	return nil, forgelink.Probe{}, fmt.Errorf("bitbucket: list deliveries of hook %s of %s: %w", hookID, slug.FullName(),
		forgelink.Errorf(forgelink.Invalid, "%s", noDeliveries))
}

// Redeliver always fails with Invalid, as RecentDeliveries does.
func (f *Forge) Redeliver(ctx context.Context, slug forgelink.Slug, hookID, id string) error {
	return fmt.Errorf("bitbucket: redeliver delivery %s of hook %s of %s: %w", id, hookID, slug.FullName(),
		forgelink.Errorf(forgelink.Invalid, "%s", noDeliveries))
}

// workspaceMembership is one value of /user/permissions/workspaces.
type workspaceMembership struct {
	Permission string `json:"permission"`
	Workspace  struct {
		Slug string `json:"slug"`
	} `json:"workspace"`
}

// OrgRole returns the token user's role in workspace from
// GET /user/permissions/workspaces?q=workspace.slug="{workspace}": "admin"
// for an owner, "member" for anyone else (a collaborator or a member). A
// workspace the user is not a member of is NotFound.
func (f *Forge) OrgRole(ctx context.Context, workspace string) (string, error) {
	q := `workspace.slug="` + bbqlEscape(workspace) + `"`
	u := f.c.url("user", "permissions", "workspaces") + "?q=" + url.QueryEscape(q)
	perm, found := "", false
	err := list(ctx, f.c, u, func(m workspaceMembership) {
		if strings.EqualFold(m.Workspace.Slug, workspace) {
			perm, found = m.Permission, true
		}
	})
	switch {
	case err != nil:
		return "", fmt.Errorf("bitbucket: get permission in workspace %s: %w", workspace, classify(err, "your permission in workspace "+workspace))
	case !found:
		return "", fmt.Errorf("bitbucket: get permission in workspace %s: %w", workspace,
			forgelink.Errorf(forgelink.NotFound, "Bitbucket: you are not a member of workspace %s", workspace))
	case perm == "owner":
		return "admin", nil
	}
	return "member", nil
}

// RateLimit returns -1 and the zero time: Bitbucket Cloud sends no
// remaining count or reset time for its hourly limits.
func (f *Forge) RateLimit() (int, time.Time) {
	return -1, time.Time{}
}
