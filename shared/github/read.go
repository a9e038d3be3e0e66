package github

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"forgelink/shared/forgelink"
)

var (
	_ forgelink.RepoReader  = (*Forge)(nil)
	_ forgelink.AccountKeys = (*Forge)(nil)
)

// maxFileSize is the largest file File returns: the most GitHub's contents
// API sends inline. A CI config is far smaller.
const maxFileSize = 1 << 20

// userKeyScope is the classic token scope that may add and delete the
// user's SSH keys (write:public_key may only add them).
const userKeyScope = "admin:public_key"

// File returns the content of path at ref ("" for the default branch) and
// its git blob sha. A directory, a symlink to outside the repository, a
// submodule or a file over 1 MiB is Invalid; a missing file or ref is
// NotFound.
func (f *Forge) File(ctx context.Context, slug forgelink.Slug, path, ref string) ([]byte, string, error) {
	p := strings.Trim(path, "/")
	where := fmt.Sprintf("%s at %s in %s", p, refName(ref), slug.FullName())
	fail := func(err error) ([]byte, string, error) {
		return nil, "", fmt.Errorf("github: get file %s: %w", where, err)
	}
	if p == "" {
		return fail(forgelink.Errorf(forgelink.Invalid, "no file path given"))
	}
	file, _, _, err := f.c.Repositories.GetContents(ctx, slug.Org, slug.Repo, p, &gh.RepositoryContentGetOptions{Ref: ref})
	switch {
	case errors.Is(err, gh.ErrPathForbidden):
		return fail(forgelink.E(forgelink.Invalid, fmt.Sprintf("%s is not a file: GitHub allows no '..' in a path", p), err))
	case hasErrorCode(err, "too_large"):
		// GitHub answers 403 for a blob over 1 MB; it is not a lack of rights.
		return fail(forgelink.E(forgelink.Invalid, fmt.Sprintf("%s is too large: GitHub returns files up to 1 MiB", p), err))
	case err != nil:
		return fail(apiError(err, "file "+where))
	case file == nil:
		return fail(forgelink.Errorf(forgelink.Invalid, "%s is not a file: it is a directory", p))
	case file.GetType() != "file":
		return fail(forgelink.Errorf(forgelink.Invalid, "%s is not a file: it is a %s", p, file.GetType()))
	case file.GetEncoding() == "none" || file.GetSize() > maxFileSize:
		return fail(forgelink.Errorf(forgelink.Invalid, "%s is too large: GitHub returns files up to 1 MiB", p))
	}
	content, err := file.GetContent()
	if err != nil {
		return fail(forgelink.E(forgelink.Upstream, "GitHub sent file content forgelink could not decode", err))
	}
	b := []byte(content)
	key := file.GetSHA()
	if key == "" {
		sum := sha256.Sum256(b)
		key = "sha256:" + hex.EncodeToString(sum[:])
	}
	return b, key, nil
}

// refName names ref in messages.
func refName(ref string) string {
	if ref == "" {
		return "the default branch"
	}
	return ref
}

// OpenPullRequests returns the numbers, in ascending order, of the open
// pull requests whose head is branch in the repository itself (not a fork
// with a branch of the same name).
func (f *Forge) OpenPullRequests(ctx context.Context, slug forgelink.Slug, branch string) ([]int, error) {
	if branch == "" {
		return nil, fmt.Errorf("github: list open pull requests of %s: %w", slug.FullName(),
			forgelink.Errorf(forgelink.Invalid, "no branch given"))
	}
	opts := &gh.PullRequestListOptions{
		State:       "open",
		Head:        slug.Org + ":" + branch,
		ListOptions: gh.ListOptions{PerPage: perPage},
	}
	nums := []int{}
	for {
		prs, resp, err := f.c.PullRequests.List(ctx, slug.Org, slug.Repo, opts)
		if err != nil {
			return nil, fmt.Errorf("github: list open pull requests of %s for branch %s: %w",
				slug.FullName(), branch, apiError(err, "repository "+slug.FullName()))
		}
		for _, pr := range prs {
			if pr.GetHead().GetRef() == branch && sameRepo(pr.GetHead().GetRepo(), pr.GetBase().GetRepo()) {
				nums = append(nums, pr.GetNumber())
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	slices.Sort(nums)
	return slices.Compact(nums), nil
}

// sameRepo reports whether a pull request's head and base repositories are
// one: by id, which survives renames, else by full name. A head whose
// repository was deleted (nil) is a fork's.
func sameRepo(head, base *gh.Repository) bool {
	switch {
	case head == nil || base == nil:
		return false
	case head.GetID() != 0 && base.GetID() != 0:
		return head.GetID() == base.GetID()
	}
	return strings.EqualFold(head.GetFullName(), base.GetFullName())
}

// Me returns the token user's login and primary verified email. The email
// is "" when the user has none or the token may not read it (a classic
// token without the user:email scope gets 404 from /user/emails).
func (f *Forge) Me(ctx context.Context) (string, string, error) {
	u, _, err := f.c.Users.Get(ctx, "")
	if err != nil {
		return "", "", fmt.Errorf("github: get the authenticated user: %w", apiError(err, "the authenticated user"))
	}
	email, err := f.primaryEmail(ctx)
	if err != nil {
		return "", "", err
	}
	return u.GetLogin(), email, nil
}

// primaryEmail returns the user's primary verified email, or "".
func (f *Forge) primaryEmail(ctx context.Context) (string, error) {
	opts := &gh.ListOptions{PerPage: perPage}
	for {
		emails, resp, err := f.c.Users.ListEmails(ctx, opts)
		if err != nil {
			err = apiError(err, "the user's emails")
			switch forgelink.KindOf(err) {
			case forgelink.NotFound, forgelink.Forbidden:
				return "", nil // the token lacks user:email
			}
			return "", fmt.Errorf("github: list the user's emails: %w", err)
		}
		for _, e := range emails {
			if e.GetPrimary() && e.GetVerified() {
				return e.GetEmail(), nil
			}
		}
		if resp.NextPage == 0 {
			return "", nil
		}
		opts.Page = resp.NextPage
	}
}

// AddUserKey adds publicKey to the token user's account as an SSH key
// titled title and returns its id. GitHub answers 404 or 403 to a token
// without the admin:public_key (or write:public_key) scope: that is
// Forbidden, naming the scope. GitHub allows a key once across all
// repositories and accounts: a key already in use is a Conflict.
func (f *Forge) AddUserKey(ctx context.Context, title, publicKey string) (string, error) {
	if keyMaterial(publicKey) == "" {
		return "", fmt.Errorf("github: add key to the user's account: %w",
			forgelink.Errorf(forgelink.Invalid, "the key is not an OpenSSH public key"))
	}
	k, _, err := f.c.Users.CreateKey(ctx, &gh.Key{
		Title: gh.String(title),
		Key:   gh.String(strings.TrimSpace(publicKey)),
	})
	if err == nil {
		return strconv.FormatInt(k.GetID(), 10), nil
	}
	kerr := apiError(err, "the user's keys")
	switch {
	case hasFieldError(err, "key is already in use"):
		kerr = forgelink.E(forgelink.Conflict,
			"the key is already in use on a repository or user account; GitHub allows a key only once", err)
	case forgelink.KindOf(kerr) == forgelink.NotFound, forgelink.KindOf(kerr) == forgelink.Forbidden:
		kerr = forgelink.E(forgelink.Forbidden,
			"GitHub refused to add the key to your account: the token needs the "+userKeyScope+" scope", err)
	}
	return "", fmt.Errorf("github: add key to the user's account: %w", kerr)
}

// DeleteUserKey removes an SSH key from the token user's account; a key
// already gone is not an error. GitHub answers 404 both for a key that is
// gone and for a token without the admin:public_key scope; a classic token
// says its scopes in X-OAuth-Scopes, which tells the two apart.
func (f *Forge) DeleteUserKey(ctx context.Context, id string) error {
	n, err := parseID(id)
	if err != nil {
		return fmt.Errorf("github: delete key %q from the user's account: %w", id, err)
	}
	resp, err := f.c.Users.DeleteKey(ctx, n)
	if err == nil {
		return nil
	}
	kerr := apiError(err, "key "+id)
	kind := forgelink.KindOf(kerr)
	scopes, classic := oauthScopes(resp)
	switch {
	case (kind == forgelink.NotFound || kind == forgelink.Forbidden) && classic && !slices.Contains(scopes, userKeyScope):
		kerr = forgelink.E(forgelink.Forbidden,
			"GitHub refused to delete the key from your account: the token needs the "+userKeyScope+" scope", err)
	case kind == forgelink.NotFound:
		return nil
	}
	return fmt.Errorf("github: delete key %s from the user's account: %w", id, kerr)
}

// oauthScopes returns the scopes a response's X-OAuth-Scopes header lists,
// and whether it has the header (classic tokens only).
func oauthScopes(resp *gh.Response) ([]string, bool) {
	if resp == nil || resp.Response == nil {
		return nil, false
	}
	vals := resp.Header.Values("X-OAuth-Scopes")
	if len(vals) == 0 {
		return nil, false
	}
	var scopes []string
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				scopes = append(scopes, s)
			}
		}
	}
	return scopes, true
}

// RepoAdmin reports whether the token user has admin rights on the
// repository, from the permissions GitHub returns with it.
func (f *Forge) RepoAdmin(ctx context.Context, slug forgelink.Slug) (bool, error) {
	r, err := f.Repository(ctx, slug)
	if err != nil {
		return false, err
	}
	return r.Admin, nil
}

// hasErrorCode reports whether err is a GitHub error response with a field
// error of the given code ("too_large", "already_exists").
func hasErrorCode(err error, code string) bool {
	var resp *gh.ErrorResponse
	if !errors.As(err, &resp) || resp.Response == nil {
		return false
	}
	return slices.ContainsFunc(resp.Errors, func(e gh.Error) bool { return e.Code == code })
}
