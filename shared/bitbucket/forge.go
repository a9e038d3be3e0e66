package bitbucket

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"forgelink/shared/forgelink"
)

// HookEvents are the events of the webhook forgelink installs: Bitbucket's
// equivalents of GitHub's push, pull_request, create and delete (branch and
// tag creation and deletion arrive as repo:push).
var HookEvents = []string{
	"repo:push",
	"pullrequest:created",
	"pullrequest:updated",
	"pullrequest:fulfilled",
	"pullrequest:rejected",
}

// HookDescription is the description of the webhook forgelink installs.
const HookDescription = "forgelink"

// pageLen is the page size of list calls: Bitbucket's maximum.
const pageLen = 100

// maxPages bounds how many pages a list follows, against a `next` that
// never ends.
const maxPages = 1000

var _ forgelink.Forge = (*Forge)(nil)

// Forge is forgelink.Forge on the Bitbucket Cloud REST API 2.0,
// authenticated as one user.
type Forge struct {
	c *client
}

// NewForge returns a Forge that calls the API at baseURL (BITBUCKET_API_URL;
// "" means https://api.bitbucket.org/2.0/) with token: an access token sent
// as "Authorization: Bearer", or "user:app_password" sent as basic auth.
// hc may be nil for http.DefaultClient.
func NewForge(baseURL, token string, hc *http.Client) (*Forge, error) {
	c, err := newClient(baseURL, token, hc)
	if err != nil {
		return nil, fmt.Errorf("bitbucket: %w", err)
	}
	return &Forge{c: c}, nil
}

// page is one page of a Bitbucket list.
type page[T any] struct {
	Values []T    `json:"values"`
	Next   string `json:"next"`
}

// list calls visit with every value of the paginated list at u, following
// each page's next link.
func list[T any](ctx context.Context, c *client, u string, visit func(T)) error {
	for n := 0; u != ""; n++ {
		if n == maxPages {
			return forgelink.Errorf(forgelink.Upstream, "Bitbucket's list has more than %d pages", maxPages)
		}
		var p page[T]
		if err := c.do(ctx, http.MethodGet, u, nil, &p); err != nil {
			return err
		}
		for _, v := range p.Values {
			visit(v)
		}
		if p.Next != "" && !c.sameOrigin(p.Next) {
			// Never send the token anywhere a response body says.
			return forgelink.Errorf(forgelink.Upstream, "Bitbucket's next page link points outside the API")
		}
		u = p.Next
	}
	return nil
}

// withPageLen adds pagelen to a list URL.
func withPageLen(u string) string { return u + "?pagelen=" + strconv.Itoa(pageLen) }

type repository struct {
	FullName   string `json:"full_name"`
	IsPrivate  bool   `json:"is_private"`
	MainBranch *struct {
		Name string `json:"name"`
	} `json:"mainbranch"`
}

type repositoryPermission struct {
	Permission string `json:"permission"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
}

// Repository returns the repository's main branch and visibility, and
// whether the token's user is an admin of it. Bitbucket says the latter
// only at /user/permissions/repositories, which workspace and repository
// access tokens may not call: when it answers 401, 403 or 404, Admin is
// true and adding the key or hook will say whether it really is.
func (f *Forge) Repository(ctx context.Context, slug forgelink.Slug) (*forgelink.Repository, error) {
	var r repository
	if err := f.c.do(ctx, http.MethodGet, f.c.url("repositories", slug.Org, slug.Repo), nil, &r); err != nil {
		return nil, fmt.Errorf("bitbucket: get repository %s: %w", slug.FullName(), classify(err, "repository "+slug.FullName()))
	}
	repo := &forgelink.Repository{FullName: r.FullName, Private: r.IsPrivate, Admin: true}
	if repo.FullName == "" {
		repo.FullName = slug.FullName()
	}
	if r.MainBranch != nil {
		repo.DefaultBranch = r.MainBranch.Name
	}

	q := fmt.Sprintf("repository.full_name=%q", slug.FullName())
	u := f.c.url("user", "permissions", "repositories") + "?q=" + url.QueryEscape(q)
	var perm string
	err := list(ctx, f.c, u, func(p repositoryPermission) {
		if strings.EqualFold(p.Repository.FullName, slug.FullName()) {
			perm = p.Permission
		}
	})
	switch statusOf(err) {
	case 0:
		if err != nil {
			return nil, fmt.Errorf("bitbucket: get permission on %s: %w", slug.FullName(), classify(err, "repository "+slug.FullName()))
		}
		repo.Admin = perm == "admin"
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		// Not askable with this token; see above.
	default:
		return nil, fmt.Errorf("bitbucket: get permission on %s: %w", slug.FullName(), classify(err, "repository "+slug.FullName()))
	}
	return repo, nil
}

type deployKey struct {
	ID  int64  `json:"id"`
	Key string `json:"key"`
}

type newDeployKey struct {
	Key   string `json:"key"`
	Label string `json:"label"`
}

// EnsureDeployKey installs publicKey as a deploy key labelled title,
// unless the repository already has it (compared by key type and material,
// ignoring the comment). Bitbucket deploy keys are always read-only, and
// one key may serve several repositories; a key that is some account's SSH
// key is a Conflict.
func (f *Forge) EnsureDeployKey(ctx context.Context, slug forgelink.Slug, title, publicKey string) (string, error) {
	want := keyMaterial(publicKey)
	if want == "" {
		return "", fmt.Errorf("bitbucket: add deploy key to %s: %w", slug.FullName(),
			forgelink.Errorf(forgelink.Invalid, "the deploy key is not an OpenSSH public key"))
	}
	if id, err := f.findDeployKey(ctx, slug, want); err != nil || id != "" {
		return id, err
	}
	var k deployKey
	err := f.c.do(ctx, http.MethodPost, f.c.url("repositories", slug.Org, slug.Repo, "deploy-keys"),
		newDeployKey{Key: strings.TrimSpace(publicKey), Label: title}, &k)
	if err == nil {
		return strconv.FormatInt(k.ID, 10), nil
	}
	kerr := classify(err, "repository "+slug.FullName())
	if statusOf(err) != http.StatusBadRequest {
		return "", fmt.Errorf("bitbucket: add deploy key to %s: %w", slug.FullName(), kerr)
	}
	// Perhaps added concurrently to this repository.
	id, lerr := f.findDeployKey(ctx, slug, want)
	if lerr != nil || id != "" {
		return id, lerr
	}
	if msg := forgelink.MessageOf(kerr); strings.Contains(strings.ToLower(msg), "already") {
		kerr = forgelink.E(forgelink.Conflict, "the deploy key is already in use on Bitbucket: "+msg, err)
	}
	return "", fmt.Errorf("bitbucket: add deploy key to %s: %w", slug.FullName(), kerr)
}

// findDeployKey returns the id of the repository's deploy key with the given
// material, or "" when there is none.
func (f *Forge) findDeployKey(ctx context.Context, slug forgelink.Slug, material string) (string, error) {
	id := ""
	err := list(ctx, f.c, withPageLen(f.c.url("repositories", slug.Org, slug.Repo, "deploy-keys")), func(k deployKey) {
		if id == "" && keyMaterial(k.Key) == material {
			id = strconv.FormatInt(k.ID, 10)
		}
	})
	if err != nil {
		return "", fmt.Errorf("bitbucket: list deploy keys of %s: %w", slug.FullName(), classify(err, "repository "+slug.FullName()))
	}
	return id, nil
}

// DeleteDeployKey removes a deploy key; a key already gone is not an error.
func (f *Forge) DeleteDeployKey(ctx context.Context, slug forgelink.Slug, id string) error {
	if id == "" {
		return fmt.Errorf("bitbucket: delete deploy key of %s: %w", slug.FullName(), forgelink.Errorf(forgelink.Invalid, "no deploy key id"))
	}
	err := f.c.do(ctx, http.MethodDelete, f.c.url("repositories", slug.Org, slug.Repo, "deploy-keys", id), nil, nil)
	if err != nil && statusOf(err) != http.StatusNotFound {
		return fmt.Errorf("bitbucket: delete deploy key %s of %s: %w", id, slug.FullName(), classify(err, "deploy key "+id))
	}
	return nil
}

type hookRequest struct {
	Description string   `json:"description"`
	URL         string   `json:"url"`
	Active      bool     `json:"active"`
	Secret      string   `json:"secret"`
	Events      []string `json:"events"`
}

type hookResponse struct {
	UUID string `json:"uuid"`
	URL  string `json:"url"`
}

// EnsureHook makes sure exactly one active hook posts forgelink's events to
// spec.URL, signed with spec.Secret, and returns its uuid (with braces). An
// existing hook with that URL is updated; duplicates of it are removed
// (Bitbucket, unlike GitHub, allows several hooks with one URL).
func (f *Forge) EnsureHook(ctx context.Context, slug forgelink.Slug, spec forgelink.HookSpec) (string, error) {
	if spec.URL == "" || spec.Secret == "" {
		return "", fmt.Errorf("bitbucket: add hook to %s: %w", slug.FullName(),
			forgelink.Errorf(forgelink.Invalid, "a webhook needs a URL and a secret"))
	}
	body := hookRequest{
		Description: HookDescription,
		URL:         spec.URL,
		Active:      true,
		Secret:      spec.Secret,
		Events:      append([]string(nil), HookEvents...),
	}
	id, err := f.findHook(ctx, slug, spec.URL)
	if err != nil {
		return "", err
	}
	if id != "" {
		err := f.c.do(ctx, http.MethodPut, f.c.url("repositories", slug.Org, slug.Repo, "hooks", id), body, nil)
		if err == nil {
			return id, nil
		}
		if statusOf(err) != http.StatusNotFound {
			return "", fmt.Errorf("bitbucket: update hook %s of %s: %w", id, slug.FullName(), classify(err, "hook "+id))
		}
		// Deleted between the list and the update: create it.
	}
	var h hookResponse
	if err := f.c.do(ctx, http.MethodPost, f.c.url("repositories", slug.Org, slug.Repo, "hooks"), body, &h); err != nil {
		return "", fmt.Errorf("bitbucket: add hook to %s: %w", slug.FullName(), classify(err, "repository "+slug.FullName()))
	}
	return h.UUID, nil
}

// findHook returns the uuid of the first hook posting to u, or "", and
// deletes any further hooks posting to u so deliveries are not doubled.
func (f *Forge) findHook(ctx context.Context, slug forgelink.Slug, u string) (string, error) {
	var found []string
	err := list(ctx, f.c, withPageLen(f.c.url("repositories", slug.Org, slug.Repo, "hooks")), func(h hookResponse) {
		if h.URL == u {
			found = append(found, h.UUID)
		}
	})
	if err != nil {
		return "", fmt.Errorf("bitbucket: list hooks of %s: %w", slug.FullName(), classify(err, "repository "+slug.FullName()))
	}
	if len(found) == 0 {
		return "", nil
	}
	for _, dup := range found[1:] {
		if err := f.DeleteHook(ctx, slug, dup); err != nil {
			return "", fmt.Errorf("bitbucket: remove duplicate hook: %w", err)
		}
	}
	return found[0], nil
}

// DeleteHook removes a hook by uuid; a hook already gone is not an error.
func (f *Forge) DeleteHook(ctx context.Context, slug forgelink.Slug, id string) error {
	if id == "" {
		return fmt.Errorf("bitbucket: delete hook of %s: %w", slug.FullName(), forgelink.Errorf(forgelink.Invalid, "no hook id"))
	}
	err := f.c.do(ctx, http.MethodDelete, f.c.url("repositories", slug.Org, slug.Repo, "hooks", id), nil, nil)
	if err != nil && statusOf(err) != http.StatusNotFound {
		return fmt.Errorf("bitbucket: delete hook %s of %s: %w", id, slug.FullName(), classify(err, "hook "+id))
	}
	return nil
}
