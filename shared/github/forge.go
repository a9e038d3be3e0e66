package github

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"forgelink/shared/forgelink"
)

// HookEvents are the events of the webhook forgelink installs.
var HookEvents = []string{"push", "pull_request", "create", "delete"}

// perPage is the page size of list calls: GitHub's maximum.
const perPage = 100

var _ forgelink.Forge = (*Forge)(nil)

// Forge is forgelink.Forge on the GitHub REST API (github.com or GitHub
// Enterprise Server), authenticated as one user.
type Forge struct {
	c    *gh.Client
	rate *rateTracker
}

// NewForge returns a Forge that calls the API at baseURL with token.
// baseURL is GITHUB_API_URL: "" or https://api.github.com/ for github.com,
// https://HOST/api/v3/ for GitHub Enterprise Server; a missing trailing slash
// is added. hc may be nil for a default client; its Transport is kept, and
// the token is added to every request as "Authorization: Bearer".
func NewForge(baseURL, token string, hc *http.Client) (*Forge, error) {
	base, err := apiBaseURL(baseURL)
	if err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	if strings.TrimSpace(token) == "" {
		return nil, fmt.Errorf("github: %w", forgelink.Errorf(forgelink.Invalid, "the GitHub token is empty"))
	}
	rate := &rateTracker{}
	c := gh.NewClient(rate.client(hc)).WithAuthToken(token)
	c.BaseURL = base
	c.UploadURL = uploadURL(base)
	c.UserAgent = "forgelink"
	return &Forge{c: c, rate: rate}, nil
}

// Repository returns the repository's default branch, visibility and
// whether the token's user is an admin of it.
func (f *Forge) Repository(ctx context.Context, slug forgelink.Slug) (*forgelink.Repository, error) {
	r, _, err := f.c.Repositories.Get(ctx, slug.Org, slug.Repo)
	if err != nil {
		return nil, fmt.Errorf("github: get repository %s: %w", slug.FullName(), apiError(err, "repository "+slug.FullName()))
	}
	name := r.GetFullName()
	if name == "" {
		name = slug.FullName()
	}
	return &forgelink.Repository{
		FullName:      name,
		DefaultBranch: r.GetDefaultBranch(),
		Private:       r.GetPrivate(),
		Admin:         r.GetPermissions()["admin"],
	}, nil
}

// EnsureDeployKey installs publicKey as a read-only deploy key titled title,
// unless the repository already has it (compared by key type and material,
// ignoring the comment). GitHub allows a key once across all repositories
// and user accounts: a key in use elsewhere is a Conflict.
func (f *Forge) EnsureDeployKey(ctx context.Context, slug forgelink.Slug, title, publicKey string) (string, error) {
	want := keyMaterial(publicKey)
	if want == "" {
		return "", fmt.Errorf("github: add deploy key to %s: %w", slug.FullName(),
			forgelink.Errorf(forgelink.Invalid, "the deploy key is not an OpenSSH public key"))
	}
	if id, err := f.findDeployKey(ctx, slug, want); err != nil || id != "" {
		return id, err
	}
	k, _, err := f.c.Repositories.CreateKey(ctx, slug.Org, slug.Repo, &gh.Key{
		Title:    gh.String(title),
		Key:      gh.String(strings.TrimSpace(publicKey)),
		ReadOnly: gh.Bool(true),
	})
	if err == nil {
		return strconv.FormatInt(k.GetID(), 10), nil
	}
	if !hasFieldError(err, "key is already in use") {
		return "", fmt.Errorf("github: add deploy key to %s: %w", slug.FullName(), apiError(err, "repository "+slug.FullName()))
	}
	// Added concurrently to this repository, or in use elsewhere.
	id, lerr := f.findDeployKey(ctx, slug, want)
	if lerr != nil || id != "" {
		return id, lerr
	}
	return "", fmt.Errorf("github: add deploy key to %s: %w", slug.FullName(), forgelink.E(forgelink.Conflict,
		"the deploy key is already in use on another repository or user account; GitHub allows a key only once", err))
}

// findDeployKey returns the id of the repository's deploy key with the given
// material, or "" when there is none.
func (f *Forge) findDeployKey(ctx context.Context, slug forgelink.Slug, material string) (string, error) {
	opts := &gh.ListOptions{PerPage: perPage}
	for {
		keys, resp, err := f.c.Repositories.ListKeys(ctx, slug.Org, slug.Repo, opts)
		if err != nil {
			return "", fmt.Errorf("github: list deploy keys of %s: %w", slug.FullName(), apiError(err, "repository "+slug.FullName()))
		}
		for _, k := range keys {
			if keyMaterial(k.GetKey()) == material {
				return strconv.FormatInt(k.GetID(), 10), nil
			}
		}
		if resp.NextPage == 0 {
			return "", nil
		}
		opts.Page = resp.NextPage
	}
}

// DeleteDeployKey removes a deploy key; a key already gone is not an error.
func (f *Forge) DeleteDeployKey(ctx context.Context, slug forgelink.Slug, id string) error {
	n, err := parseID(id)
	if err != nil {
		return fmt.Errorf("github: delete deploy key %q of %s: %w", id, slug.FullName(), err)
	}
	_, err = f.c.Repositories.DeleteKey(ctx, slug.Org, slug.Repo, n)
	if err = apiError(err, "deploy key "+id); err != nil && forgelink.KindOf(err) != forgelink.NotFound {
		return fmt.Errorf("github: delete deploy key %s of %s: %w", id, slug.FullName(), err)
	}
	return nil
}

// EnsureHook makes sure exactly one active hook posts forgelink's events to
// spec.URL as JSON, signed with spec.Secret, and returns its id. An
// existing hook with that URL is updated (GitHub never shows a hook's
// secret, so it is always set again); duplicates of it are removed.
func (f *Forge) EnsureHook(ctx context.Context, slug forgelink.Slug, spec forgelink.HookSpec) (string, error) {
	if spec.URL == "" || spec.Secret == "" {
		return "", fmt.Errorf("github: add hook to %s: %w", slug.FullName(),
			forgelink.Errorf(forgelink.Invalid, "a webhook needs a URL and a secret"))
	}
	id, err := f.findHook(ctx, slug, spec.URL)
	if err != nil {
		return "", err
	}
	if id != 0 {
		ok, err := f.editHook(ctx, slug, id, spec)
		if err != nil || ok {
			return strconv.FormatInt(id, 10), err
		}
		// Deleted between the list and the edit: create it.
	}
	h, _, err := f.c.Repositories.CreateHook(ctx, slug.Org, slug.Repo, hook(spec))
	if err == nil {
		return strconv.FormatInt(h.GetID(), 10), nil
	}
	if !hasFieldError(err, "hook already exists") {
		return "", fmt.Errorf("github: add hook to %s: %w", slug.FullName(), apiError(err, "repository "+slug.FullName()))
	}
	// Created concurrently: update that one.
	if id, err = f.findHook(ctx, slug, spec.URL); err != nil {
		return "", err
	}
	if id == 0 {
		return "", fmt.Errorf("github: add hook to %s: %w", slug.FullName(), forgelink.E(forgelink.Conflict,
			"GitHub says the hook already exists, but it is not in the repository's hook list", err))
	}
	ok, err := f.editHook(ctx, slug, id, spec)
	if err == nil && !ok {
		err = fmt.Errorf("github: update hook %d of %s: %w", id, slug.FullName(),
			forgelink.Errorf(forgelink.Conflict, "the hook was deleted while forgelink updated it; try again"))
	}
	return strconv.FormatInt(id, 10), err
}

// hook is the hook forgelink wants for spec.
func hook(spec forgelink.HookSpec) *gh.Hook {
	return &gh.Hook{
		Name:   gh.String("web"),
		Active: gh.Bool(true),
		Events: append([]string(nil), HookEvents...),
		Config: &gh.HookConfig{
			URL:         gh.String(spec.URL),
			ContentType: gh.String("json"),
			InsecureSSL: gh.String("0"),
			Secret:      gh.String(spec.Secret),
		},
	}
}

// editHook sets hook id to what spec wants. It reports false when the hook
// is gone.
func (f *Forge) editHook(ctx context.Context, slug forgelink.Slug, id int64, spec forgelink.HookSpec) (bool, error) {
	h := hook(spec)
	h.Name = nil // not editable
	_, _, err := f.c.Repositories.EditHook(ctx, slug.Org, slug.Repo, id, h)
	if err == nil {
		return true, nil
	}
	err = apiError(err, fmt.Sprintf("hook %d", id))
	if forgelink.KindOf(err) == forgelink.NotFound {
		return false, nil
	}
	return false, fmt.Errorf("github: update hook %d of %s: %w", id, slug.FullName(), err)
}

// findHook returns the id of the first hook posting to url, or 0, and
// deletes any further hooks posting to url so that deliveries are not
// doubled.
func (f *Forge) findHook(ctx context.Context, slug forgelink.Slug, url string) (int64, error) {
	var found []int64
	opts := &gh.ListOptions{PerPage: perPage}
	for {
		hooks, resp, err := f.c.Repositories.ListHooks(ctx, slug.Org, slug.Repo, opts)
		if err != nil {
			return 0, fmt.Errorf("github: list hooks of %s: %w", slug.FullName(), apiError(err, "repository "+slug.FullName()))
		}
		for _, h := range hooks {
			if h.GetConfig().GetURL() == url {
				found = append(found, h.GetID())
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if len(found) == 0 {
		return 0, nil
	}
	for _, dup := range found[1:] {
		if err := f.DeleteHook(ctx, slug, strconv.FormatInt(dup, 10)); err != nil {
			return 0, fmt.Errorf("github: remove duplicate hook: %w", err)
		}
	}
	return found[0], nil
}

// DeleteHook removes a hook; a hook already gone is not an error.
func (f *Forge) DeleteHook(ctx context.Context, slug forgelink.Slug, id string) error {
	n, err := parseID(id)
	if err != nil {
		return fmt.Errorf("github: delete hook %q of %s: %w", id, slug.FullName(), err)
	}
	_, err = f.c.Repositories.DeleteHook(ctx, slug.Org, slug.Repo, n)
	if err = apiError(err, "hook "+id); err != nil && forgelink.KindOf(err) != forgelink.NotFound {
		return fmt.Errorf("github: delete hook %s of %s: %w", id, slug.FullName(), err)
	}
	return nil
}

// parseID parses a GitHub key or hook id.
func parseID(id string) (int64, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return 0, forgelink.E(forgelink.Invalid, fmt.Sprintf("%q is not a GitHub id", id), err)
	}
	return n, nil
}
