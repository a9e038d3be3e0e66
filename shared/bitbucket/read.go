package bitbucket

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"forgelink/shared/forgelink"
)

var (
	_ forgelink.RepoReader  = (*Forge)(nil)
	_ forgelink.AccountKeys = (*Forge)(nil)
)

// maxFileSize is the largest file File returns, as on GitHub. A CI config
// is far smaller.
const maxFileSize = 1 << 20

// prPageLen is the page size of pull request lists: Bitbucket's maximum
// there is 50, not 100.
const prPageLen = 50

// noUserKeys is why AddUserKey and DeleteUserKey fail, with what to do.
const noUserKeys = "Bitbucket Cloud has no API to add a key to your account; add the public key by hand at https://bitbucket.org/account/settings/ssh-keys/"

// errTooLarge is a raw response over the size limit.
var errTooLarge = errors.New("response body over the size limit")

// File returns the raw content of path at ref and "sha256:" with the hex
// SHA-256 of it: the src endpoint gives no blob sha. ref "" is the main
// branch. Bitbucket's src endpoint cannot take a branch name with a slash
// (BCLOUD-14674), so such a branch is first resolved to its head commit: one
// more request. A directory or a file over 1 MiB is Invalid; a missing
// file, branch or commit is NotFound.
func (f *Forge) File(ctx context.Context, slug forgelink.Slug, path, ref string) ([]byte, string, error) {
	p := strings.Trim(path, "/")
	where := fmt.Sprintf("%s at %s in %s", p, refName(ref), slug.FullName())
	fail := func(err error) ([]byte, string, error) {
		return nil, "", fmt.Errorf("bitbucket: get file %s: %w", where, err)
	}
	if p == "" {
		return fail(forgelink.Errorf(forgelink.Invalid, "no file path given"))
	}
	commit, err := f.commitOf(ctx, slug, ref)
	if err != nil {
		return fail(err)
	}
	u := f.c.url("repositories", slug.Org, slug.Repo, "src", commit) + "/" + escapePath(p)
	b, err := f.c.getRaw(ctx, u, maxFileSize)
	switch {
	case errors.Is(err, errTooLarge):
		return fail(forgelink.E(forgelink.Invalid, fmt.Sprintf("%s is too large: forgelink reads files up to 1 MiB", p), err))
	case err != nil:
		return fail(classify(err, "file "+where))
	case isDirListing(b):
		return fail(forgelink.Errorf(forgelink.Invalid, "%s is not a file: it is a directory", p))
	}
	sum := sha256.Sum256(b)
	return b, "sha256:" + hex.EncodeToString(sum[:]), nil
}

// refName names ref in messages.
func refName(ref string) string {
	if ref == "" {
		return "the main branch"
	}
	return ref
}

// commitOf returns what the src endpoint can take for ref: ref itself,
// unless it is empty (the main branch) or a branch name with a slash, which
// are resolved to a commit.
func (f *Forge) commitOf(ctx context.Context, slug forgelink.Slug, ref string) (string, error) {
	if ref != "" && !strings.Contains(ref, "/") {
		return ref, nil
	}
	if ref == "" {
		var r repository
		if err := f.c.do(ctx, http.MethodGet, f.c.url("repositories", slug.Org, slug.Repo), nil, &r); err != nil {
			return "", fmt.Errorf("get repository: %w", classify(err, "repository "+slug.FullName()))
		}
		if r.MainBranch == nil || r.MainBranch.Name == "" {
			return "", forgelink.Errorf(forgelink.NotFound, "Bitbucket: repository %s has no main branch", slug.FullName())
		}
		ref = r.MainBranch.Name
		if !strings.Contains(ref, "/") {
			return ref, nil
		}
	}
	var b struct {
		Target struct {
			Hash string `json:"hash"`
		} `json:"target"`
	}
	u := f.c.url("repositories", slug.Org, slug.Repo, "refs", "branches") + "/" + escapePath(ref)
	if err := f.c.do(ctx, http.MethodGet, u, nil, &b); err != nil {
		return "", fmt.Errorf("get branch %s: %w", ref, classify(err, fmt.Sprintf("branch %s in repository %s", ref, slug.FullName())))
	}
	if b.Target.Hash == "" {
		return "", forgelink.Errorf(forgelink.Upstream, "Bitbucket sent branch %s without its head commit", ref)
	}
	return b.Target.Hash, nil
}

// escapePath escapes each segment of a slash-separated path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// getRaw GETs u and returns the body, at most limit bytes: more is
// errTooLarge. A non-2xx answer is an *apiError.
func (c *client) getRaw(ctx context.Context, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("User-Agent", "forgelink")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newAPIError(req, resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, nil
}

// isDirListing reports whether a src answer is a directory listing rather
// than a file's content: a page of commit_file and commit_directory
// entries. A listing is JSON like a JSON file may be, so it is told by its
// shape, not by its Content-Type.
func isDirListing(b []byte) bool {
	var l struct {
		Pagelen *int `json:"pagelen"`
		Values  []struct {
			Type string  `json:"type"`
			Path *string `json:"path"`
		} `json:"values"`
	}
	if json.Unmarshal(b, &l) != nil || l.Pagelen == nil || len(l.Values) == 0 {
		return false
	}
	for _, v := range l.Values {
		if (v.Type != "commit_file" && v.Type != "commit_directory") || v.Path == nil {
			return false
		}
	}
	return true
}

type prRepository struct {
	FullName string `json:"full_name"`
	UUID     string `json:"uuid"`
}

type pullRequest struct {
	ID     int `json:"id"`
	Source struct {
		Branch struct {
			Name string `json:"name"`
		} `json:"branch"`
		Repository *prRepository `json:"repository"`
	} `json:"source"`
	Destination struct {
		Repository *prRepository `json:"repository"`
	} `json:"destination"`
}

// OpenPullRequests returns the ids, in ascending order, of the open pull
// requests whose source is branch in the repository itself (not a fork
// with a branch of the same name).
func (f *Forge) OpenPullRequests(ctx context.Context, slug forgelink.Slug, branch string) ([]int, error) {
	if branch == "" {
		return nil, fmt.Errorf("bitbucket: list open pull requests of %s: %w", slug.FullName(),
			forgelink.Errorf(forgelink.Invalid, "no branch given"))
	}
	q := url.Values{
		"state":   {"OPEN"},
		"q":       {`source.branch.name="` + bbqlEscape(branch) + `"`},
		"pagelen": {strconv.Itoa(prPageLen)},
	}
	u := f.c.url("repositories", slug.Org, slug.Repo, "pullrequests") + "?" + q.Encode()
	ids := []int{}
	err := list(ctx, f.c, u, func(pr pullRequest) {
		if pr.Source.Branch.Name == branch && sameRepo(pr.Source.Repository, pr.Destination.Repository) {
			ids = append(ids, pr.ID)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("bitbucket: list open pull requests of %s for branch %s: %w",
			slug.FullName(), branch, classify(err, "repository "+slug.FullName()))
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// bbqlEscape escapes s for a double-quoted string in a Bitbucket query.
func bbqlEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// sameRepo reports whether a pull request's source and destination
// repositories are one: by uuid, which survives renames, else by full
// name. A source whose repository was deleted (nil) is a fork's.
func sameRepo(src, dst *prRepository) bool {
	switch {
	case src == nil || dst == nil:
		return false
	case src.UUID != "" && dst.UUID != "":
		return src.UUID == dst.UUID
	}
	return strings.EqualFold(src.FullName, dst.FullName)
}

// Me returns the token user's nickname (or username, for old accounts
// without one) and primary confirmed email. The email is "" when the
// user has none or the token may not read it (no email scope: 403).
func (f *Forge) Me(ctx context.Context) (string, string, error) {
	var u struct {
		Nickname string `json:"nickname"`
		Username string `json:"username"`
	}
	if err := f.c.do(ctx, http.MethodGet, f.c.url("user"), nil, &u); err != nil {
		return "", "", fmt.Errorf("bitbucket: get the authenticated user: %w", classify(err, "the authenticated user"))
	}
	login := u.Nickname
	if login == "" {
		login = u.Username
	}
	type email struct {
		Email       string `json:"email"`
		IsPrimary   bool   `json:"is_primary"`
		IsConfirmed bool   `json:"is_confirmed"`
	}
	address := ""
	err := list(ctx, f.c, withPageLen(f.c.url("user", "emails")), func(e email) {
		if address == "" && e.IsPrimary && e.IsConfirmed {
			address = e.Email
		}
	})
	switch statusOf(err) {
	case http.StatusForbidden, http.StatusNotFound:
		return login, "", nil // the token lacks the email scope
	case 0:
		if err == nil {
			return login, address, nil
		}
	}
	return "", "", fmt.Errorf("bitbucket: list the user's emails: %w", classify(err, "the user's emails"))
}

// AddUserKey always fails with Invalid: forgelink cannot add a key to a
// Bitbucket account, and the message says how to add it by hand.
func (f *Forge) AddUserKey(ctx context.Context, title, publicKey string) (string, error) {
	return "", fmt.Errorf("bitbucket: add key to the user's account: %w", forgelink.Errorf(forgelink.Invalid, "%s", noUserKeys))
}

// DeleteUserKey always fails with Invalid, as AddUserKey does.
func (f *Forge) DeleteUserKey(ctx context.Context, id string) error {
	return fmt.Errorf("bitbucket: delete key %s from the user's account: %w", id, forgelink.Errorf(forgelink.Invalid, "%s", noUserKeys))
}

// RepoAdmin reports whether the token user's permission on the repository
// is "admin", from /user/permissions/repositories. Unlike Repository, it
// does not guess: a token that may not ask (workspace and repository
// access tokens) gets the error.
func (f *Forge) RepoAdmin(ctx context.Context, slug forgelink.Slug) (bool, error) {
	perm, err := f.permissionOn(ctx, slug)
	if err != nil {
		return false, err
	}
	return perm == "admin", nil
}

// permissionOn returns the token user's permission on the repository as
// /user/permissions/repositories?q=repository.full_name="..." lists it
// ("admin", "write", "read"), or "" when it is not listed.
func (f *Forge) permissionOn(ctx context.Context, slug forgelink.Slug) (string, error) {
	q := `repository.full_name="` + bbqlEscape(slug.FullName()) + `"`
	u := f.c.url("user", "permissions", "repositories") + "?q=" + url.QueryEscape(q)
	perm := ""
	err := list(ctx, f.c, u, func(p repositoryPermission) {
		if strings.EqualFold(p.Repository.FullName, slug.FullName()) {
			perm = p.Permission
		}
	})
	if err != nil {
		return "", fmt.Errorf("bitbucket: get permission on %s: %w", slug.FullName(), classify(err, "permission on repository "+slug.FullName()))
	}
	return perm, nil
}

var _ forgelink.RevisionResolver = (*Forge)(nil)

// FullRevision expands an abbreviated commit hash with
// GET /repositories/{w}/{r}/commit/{rev}.
func (f *Forge) FullRevision(ctx context.Context, slug forgelink.Slug, rev string) (string, error) {
	if len(rev) == 40 {
		return rev, nil
	}
	if rev == "" || len(rev) > 40 || strings.Trim(rev, "0123456789abcdefABCDEF") != "" {
		return "", fmt.Errorf("bitbucket: expand commit %q: %w", rev, forgelink.Errorf(forgelink.Invalid, "not a commit hash"))
	}
	var c struct {
		Hash string `json:"hash"`
	}
	u := f.c.url("repositories", slug.Org, slug.Repo, "commit", rev)
	if err := f.c.do(ctx, http.MethodGet, u, nil, &c); err != nil {
		return "", fmt.Errorf("bitbucket: expand commit %s of %s: %w", rev, slug.FullName(), classify(err, fmt.Sprintf("commit %s in repository %s", rev, slug.FullName())))
	}
	if len(c.Hash) != 40 || !strings.HasPrefix(c.Hash, strings.ToLower(rev)) {
		return "", fmt.Errorf("bitbucket: expand commit %s of %s: %w", rev, slug.FullName(), forgelink.Errorf(forgelink.Upstream, "Bitbucket answered commit %q for %s", c.Hash, rev))
	}
	return c.Hash, nil
}
