package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"

	"forgelink/shared/forgelink"
)

var _ forgelink.AccessChecker = (*Forge)(nil)

// maxDeliveryPages bounds how many pages of 100 deliveries
// RecentDeliveries reads. GitHub keeps three days of deliveries; a hook
// busier than this loses its oldest ones from the sweep, not the newest.
const maxDeliveryPages = 30

// CheckRepository reads the repository, conditionally when etag is not
// "": a 304 costs no rate limit. Unauthorized is a revoked token,
// Forbidden with GitHub's message an organization's OAuth App access
// restrictions (OAuthAppRestricted), NotFound a repository deleted,
// renamed away or out of the token's reach.
func (f *Forge) CheckRepository(ctx context.Context, slug forgelink.Slug, etag string) (forgelink.Probe, error) {
	p, _, err := f.get(ctx, repoPath(slug), etag, nil)
	if err != nil {
		return forgelink.Probe{}, fmt.Errorf("github: check repository %s: %w", slug.FullName(), apiError(err, "repository "+slug.FullName()))
	}
	return p, nil
}

// CheckHook reads hook hookID, conditionally when etag is not "". Active
// is read only from a 200: on NotModified the hook is as it was when etag
// was returned, and Active is false. A deleted hook is NotFound.
func (f *Forge) CheckHook(ctx context.Context, slug forgelink.Slug, hookID, etag string) (forgelink.HookInfo, error) {
	fail := func(err error) (forgelink.HookInfo, error) {
		return forgelink.HookInfo{}, fmt.Errorf("github: check hook %s of %s: %w", hookID, slug.FullName(), err)
	}
	id, err := parseID(hookID)
	if err != nil {
		return fail(err)
	}
	var h gh.Hook
	p, _, err := f.get(ctx, fmt.Sprintf("%s/hooks/%d", repoPath(slug), id), etag, &h)
	if err != nil {
		return fail(apiError(err, fmt.Sprintf("hook %d of %s", id, slug.FullName())))
	}
	return forgelink.HookInfo{Probe: p, Active: !p.NotModified && h.GetActive()}, nil
}

// ActivateHook turns hook hookID on again with PATCH {"active": true},
// leaving its URL, secret and events as they are. A deleted hook is
// NotFound.
func (f *Forge) ActivateHook(ctx context.Context, slug forgelink.Slug, hookID string) error {
	id, err := parseID(hookID)
	if err == nil {
		_, _, err = f.c.Repositories.EditHook(ctx, slug.Org, slug.Repo, id, &gh.Hook{Active: gh.Bool(true)})
		err = apiError(err, fmt.Sprintf("hook %d of %s", id, slug.FullName()))
	}
	if err != nil {
		return fmt.Errorf("github: activate hook %s of %s: %w", hookID, slug.FullName(), err)
	}
	return nil
}

// CheckDeployKey reads deploy key keyID, conditionally when etag is not
// "". A deleted key is NotFound.
func (f *Forge) CheckDeployKey(ctx context.Context, slug forgelink.Slug, keyID, etag string) (forgelink.Probe, error) {
	fail := func(err error) (forgelink.Probe, error) {
		return forgelink.Probe{}, fmt.Errorf("github: check deploy key %s of %s: %w", keyID, slug.FullName(), err)
	}
	id, err := parseID(keyID)
	if err != nil {
		return fail(err)
	}
	p, _, err := f.get(ctx, fmt.Sprintf("%s/keys/%d", repoPath(slug), id), etag, nil)
	if err != nil {
		return fail(apiError(err, fmt.Sprintf("deploy key %d of %s", id, slug.FullName())))
	}
	return p, nil
}

// RecentDeliveries lists the hook's deliveries at or after since, newest
// first (GitHub's times have whole seconds: the caller tells the ones it
// saw in since's second): GET .../hooks/{id}/deliveries?per_page=100,
// following the cursor of each page's Link rel="next" until a delivery
// before since appears
// or there is no next page (at most maxDeliveryPages pages). etag applies
// to the first page, whose ETag the Probe carries; NotModified returns no
// deliveries.
func (f *Forge) RecentDeliveries(ctx context.Context, slug forgelink.Slug, hookID string, since time.Time, etag string) ([]forgelink.HookDelivery, forgelink.Probe, error) {
	fail := func(err error) ([]forgelink.HookDelivery, forgelink.Probe, error) {
		return nil, forgelink.Probe{}, fmt.Errorf("github: list deliveries of hook %s of %s: %w", hookID, slug.FullName(), err)
	}
	id, err := parseID(hookID)
	if err != nil {
		return fail(err)
	}
	base := fmt.Sprintf("%s/hooks/%d/deliveries?per_page=%d", repoPath(slug), id, perPage)
	var (
		out   []forgelink.HookDelivery
		first forgelink.Probe
		u     = base
	)
	for page := 0; page < maxDeliveryPages; page++ {
		tag := ""
		if page == 0 {
			tag = etag
		}
		var ds []*gh.HookDelivery
		p, resp, err := f.get(ctx, u, tag, &ds)
		if err != nil {
			return fail(apiError(err, fmt.Sprintf("hook %d of %s", id, slug.FullName())))
		}
		if page == 0 {
			first = p
			if p.NotModified {
				return nil, p, nil
			}
		}
		for _, d := range ds {
			at := d.GetDeliveredAt().Time
			if at.Before(since) {
				return out, first, nil
			}
			out = append(out, forgelink.HookDelivery{
				ID:          strconv.FormatInt(d.GetID(), 10),
				GUID:        d.GetGUID(),
				Event:       d.GetEvent(),
				DeliveredAt: at,
				StatusCode:  d.GetStatusCode(),
				Redelivery:  d.GetRedelivery(),
			})
		}
		if resp.Cursor == "" {
			break
		}
		u = base + "&cursor=" + url.QueryEscape(resp.Cursor)
	}
	return out, first, nil
}

// Redeliver asks GitHub to send delivery id of the hook again:
// POST .../hooks/{hook_id}/deliveries/{id}/attempts, which GitHub accepts
// with 202 and carries out soon after, under the delivery's GUID.
func (f *Forge) Redeliver(ctx context.Context, slug forgelink.Slug, hookID, id string) error {
	fail := func(err error) error {
		return fmt.Errorf("github: redeliver delivery %s of hook %s of %s: %w", id, hookID, slug.FullName(), err)
	}
	hook, err := parseID(hookID)
	if err != nil {
		return fail(err)
	}
	delivery, err := parseID(id)
	if err != nil {
		return fail(err)
	}
	req, err := f.c.NewRequest(http.MethodPost, fmt.Sprintf("%s/hooks/%d/deliveries/%d/attempts", repoPath(slug), hook, delivery), nil)
	if err == nil {
		_, err = f.c.Do(ctx, req, nil)
	}
	var accepted *gh.AcceptedError
	if err != nil && !errors.As(err, &accepted) {
		return fail(apiError(err, fmt.Sprintf("delivery %d of hook %d of %s", delivery, hook, slug.FullName())))
	}
	return nil
}

// OrgRole returns the token user's role in org from
// GET /user/memberships/orgs/{org}: "admin", or "member" for any other
// (a billing manager included). GitHub answers it even while the org's
// OAuth App access restrictions refuse everything else; an org the user
// is not a member of is NotFound.
func (f *Forge) OrgRole(ctx context.Context, org string) (string, error) {
	m, _, err := f.c.Organizations.GetOrgMembership(ctx, "", url.PathEscape(org))
	if err != nil {
		return "", fmt.Errorf("github: get membership in %s: %w", org, apiError(err, "your membership in organization "+org))
	}
	if m.GetRole() == "admin" {
		return "admin", nil
	}
	return "member", nil
}

// RateLimit returns X-RateLimit-Remaining and X-RateLimit-Reset of the
// latest answer that had them (a 304 has them too), from any of the
// Forge's calls; remaining is -1 before any.
func (f *Forge) RateLimit() (int, time.Time) {
	return f.rate.get()
}

// repoPath is the API path of the repository.
func repoPath(slug forgelink.Slug) string {
	return "repos/" + url.PathEscape(slug.Org) + "/" + url.PathEscape(slug.Repo)
}

// get sends GET path, with If-None-Match: etag when etag is not "", and
// decodes a 200's body into v (when not nil). A 304 is
// Probe{NotModified: true, ETag: etag} and no error: go-github reports it
// as an *ErrorResponse.
func (f *Forge) get(ctx context.Context, path, etag string, v any) (forgelink.Probe, *gh.Response, error) {
	req, err := f.c.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		return forgelink.Probe{}, nil, err
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := f.c.Do(ctx, req, v)
	var eresp *gh.ErrorResponse
	switch {
	case errors.As(err, &eresp) && eresp.Response != nil && eresp.Response.StatusCode == http.StatusNotModified:
		return forgelink.Probe{ETag: etag, NotModified: true}, resp, nil
	case err != nil:
		return forgelink.Probe{}, resp, err
	}
	return forgelink.Probe{ETag: resp.Header.Get("ETag")}, resp, nil
}

// rateTracker keeps the rate limit headers of the latest answer. It is
// safe for concurrent use.
type rateTracker struct {
	mu        sync.Mutex
	known     bool
	remaining int
	reset     time.Time
}

// client returns a copy of hc (nil: a default client) whose transport
// records the rate limit headers of every answer.
func (t *rateTracker) client(hc *http.Client) *http.Client {
	c := &http.Client{}
	if hc != nil {
		*c = *hc
	}
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = rateTransport{next: next, t: t}
	return c
}

func (t *rateTracker) observe(h http.Header) {
	remaining, err := strconv.Atoi(h.Get("X-RateLimit-Remaining"))
	if err != nil {
		return
	}
	var reset time.Time
	if s, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
		reset = time.Unix(s, 0)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.known, t.remaining, t.reset = true, remaining, reset
}

func (t *rateTracker) get() (int, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.known {
		return -1, time.Time{}
	}
	return t.remaining, t.reset
}

// rateTransport is the http.RoundTripper of rateTracker.client.
type rateTransport struct {
	next http.RoundTripper
	t    *rateTracker
}

func (r rateTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if resp != nil {
		r.t.observe(resp.Header)
	}
	return resp, err
}
