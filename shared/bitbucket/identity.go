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

var _ forgelink.Identity = (*Forge)(nil)

// account is what Account reads of GET /user.
type account struct {
	UUID        string `json:"uuid"`
	Username    string `json:"username"`
	Nickname    string `json:"nickname"`
	DisplayName string `json:"display_name"`
}

// Account returns the token's user from GET /user: the uuid (with braces)
// as ID, the username (else the nickname) as Login, the display name as
// Name, and the scopes of the X-OAuth-Scopes header, which Bitbucket sends
// to OAuth tokens; Scopes is nil without it.
func (f *Forge) Account(ctx context.Context) (*forgelink.Account, error) {
	var a account
	_, h, err := f.c.send(ctx, http.MethodGet, f.c.url("user"), "", nil, &a)
	if err != nil {
		return nil, fmt.Errorf("bitbucket: get the authenticated user: %w", classify(err, "the authenticated user"))
	}
	login := a.Username
	if login == "" {
		login = a.Nickname
	}
	if a.UUID == "" || login == "" {
		// Users are keyed by the uuid: never make one up.
		return nil, fmt.Errorf("bitbucket: get the authenticated user: %w",
			forgelink.Errorf(forgelink.Upstream, "Bitbucket sent a user without a uuid or name"))
	}
	return &forgelink.Account{ID: a.UUID, Login: login, Name: a.DisplayName, Scopes: headerScopes(h)}, nil
}

// headerScopes returns the scopes of an X-OAuth-Scopes header, separated
// by commas or spaces, or nil when there is none.
func headerScopes(h http.Header) []string {
	var scopes []string
	for _, v := range h.Values("X-OAuth-Scopes") {
		scopes = append(scopes, strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })...)
	}
	return scopes
}

// Permission returns the token user's permission on the repository from
// /user/permissions/repositories (as RepoAdmin reads it): admin is Admin,
// write or read Pull. Bitbucket lists there no public repository the user
// has no permission on, so a repository not listed is read: Pull if the
// user can see it (a public one), None with a nil error if Bitbucket
// answers 404 (hidden from the user, or no such repository).
func (f *Forge) Permission(ctx context.Context, slug forgelink.Slug) (forgelink.Permission, error) {
	perm, err := f.permissionOn(ctx, slug)
	if err != nil {
		return forgelink.PermissionNone, err
	}
	switch perm {
	case "admin":
		return forgelink.PermissionAdmin, nil
	case "write", "read":
		return forgelink.PermissionPull, nil
	}
	err = f.c.do(ctx, http.MethodGet, f.c.url("repositories", slug.Org, slug.Repo), nil, nil)
	switch {
	case err == nil:
		return forgelink.PermissionPull, nil
	case statusOf(err) == http.StatusNotFound:
		return forgelink.PermissionNone, nil
	}
	return forgelink.PermissionNone, fmt.Errorf("bitbucket: get repository %s: %w", slug.FullName(), classify(err, "repository "+slug.FullName()))
}

// Repos returns every repository the token's user is a member of
// (GET /repositories?role=member: read, write or admin), each with Admin
// from /user/permissions/repositories, all pages of both.
func (f *Forge) Repos(ctx context.Context) ([]forgelink.UserRepo, error) {
	admin := map[string]bool{}
	err := list(ctx, f.c, withPageLen(f.c.url("user", "permissions", "repositories")), func(p repositoryPermission) {
		if p.Permission == "admin" {
			admin[strings.ToLower(p.Repository.FullName)] = true
		}
	})
	if err != nil {
		return nil, fmt.Errorf("bitbucket: list the user's repository permissions: %w", classify(err, "the user's repository permissions"))
	}
	q := url.Values{"role": {"member"}, "pagelen": {strconv.Itoa(pageLen)}}
	out := []forgelink.UserRepo{}
	err = list(ctx, f.c, f.c.url("repositories")+"?"+q.Encode(), func(r repository) {
		ws, name, ok := strings.Cut(r.FullName, "/")
		if !ok {
			return
		}
		repo := forgelink.UserRepo{
			Slug:    forgelink.Slug{VCS: forgelink.Bitbucket, Org: ws, Repo: name},
			Private: r.IsPrivate,
			Admin:   admin[strings.ToLower(r.FullName)],
		}
		if r.MainBranch != nil {
			repo.DefaultBranch = r.MainBranch.Name
		}
		out = append(out, repo)
	})
	if err != nil {
		return nil, fmt.Errorf("bitbucket: list the user's repositories: %w", classify(err, "the user's repositories"))
	}
	return out, nil
}
