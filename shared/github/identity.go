package github

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"forgelink/shared/forgelink"
)

var _ forgelink.Identity = (*Forge)(nil)

// Account returns the token's user from GET /user and the token's granted
// scopes from the X-OAuth-Scopes header of that answer. A token without
// the header (a fine-grained token, a GitHub App's) has no Scopes.
func (f *Forge) Account(ctx context.Context) (*forgelink.Account, error) {
	u, resp, err := f.c.Users.Get(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("github: get the authenticated user: %w", apiError(err, "the authenticated user"))
	}
	if u.GetID() == 0 || u.GetLogin() == "" {
		// Users are keyed by the id: never make one up.
		return nil, fmt.Errorf("github: get the authenticated user: %w",
			forgelink.Errorf(forgelink.Upstream, "GitHub sent a user without an id or login"))
	}
	scopes, _ := oauthScopes(resp)
	return &forgelink.Account{
		ID:     strconv.FormatInt(u.GetID(), 10),
		Login:  u.GetLogin(),
		Name:   u.GetName(),
		Scopes: scopes,
	}, nil
}

// Permission returns the token user's permission on the repository from
// the permissions GitHub returns with it (GET /repos/{o}/{r}): admin is
// Admin; anything less is Pull, as GitHub shows a repository only to
// those who may pull it (anyone, for a public one). A repository GitHub
// hides from the user, or that does not exist, is None with a nil error;
// other refusals (a revoked token, an organization's OAuth App access
// restrictions) are errors.
func (f *Forge) Permission(ctx context.Context, slug forgelink.Slug) (forgelink.Permission, error) {
	r, _, err := f.c.Repositories.Get(ctx, slug.Org, slug.Repo)
	if err != nil {
		err = apiError(err, "repository "+slug.FullName())
		if forgelink.KindOf(err) == forgelink.NotFound {
			return forgelink.PermissionNone, nil
		}
		return forgelink.PermissionNone, fmt.Errorf("github: get permission on %s: %w", slug.FullName(), err)
	}
	if r.GetPermissions()["admin"] {
		return forgelink.PermissionAdmin, nil
	}
	return forgelink.PermissionPull, nil
}

// Repos returns every repository GET /user/repos lists for the token's
// user (owned, collaborated on, or reached through an organization), 100
// a page, following go-github's pagination to the last page.
func (f *Forge) Repos(ctx context.Context) ([]forgelink.UserRepo, error) {
	opts := &gh.RepositoryListByAuthenticatedUserOptions{ListOptions: gh.ListOptions{PerPage: perPage}}
	out := []forgelink.UserRepo{}
	for {
		repos, resp, err := f.c.Repositories.ListByAuthenticatedUser(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("github: list the user's repositories: %w", apiError(err, "the user's repositories"))
		}
		for _, r := range repos {
			org, name, ok := strings.Cut(r.GetFullName(), "/")
			if !ok {
				org, name = r.GetOwner().GetLogin(), r.GetName()
			}
			out = append(out, forgelink.UserRepo{
				Slug:          forgelink.Slug{VCS: forgelink.GitHub, Org: org, Repo: name},
				Private:       r.GetPrivate(),
				Admin:         r.GetPermissions()["admin"],
				DefaultBranch: r.GetDefaultBranch(),
			})
		}
		if resp.NextPage == 0 || resp.NextPage <= opts.Page {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}
