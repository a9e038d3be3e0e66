package github

import (
	"context"
	"fmt"
	"unicode/utf8"

	gh "github.com/google/go-github/v60/github"

	"forgelink/shared/forgelink"
)

var _ forgelink.StatusPoster = (*Forge)(nil)

// PostStatus posts s as a commit status on s.Revision: state
// forgelink.GitHubState(s.State), context forgelink.StatusContext of the
// workflow, and the description and target URL when they are set.
//
// GitHub keeps every status it is sent, at most 1,000 per commit and
// context: the caller posts a state once (forgelink.Transition). Refusals
// keep GitHub's message: a 422 ("No commit found for SHA", "This SHA and
// context has reached the maximum number of statuses.") is Upstream, an
// organization's OAuth App access restrictions Forbidden (see
// OAuthAppRestricted), 5xx and rate limits Transient with RetryAfter.
func (f *Forge) PostStatus(ctx context.Context, slug forgelink.Slug, s forgelink.CommitStatus) error {
	fail := func(err error) error {
		return fmt.Errorf("github: post status for %s@%s: %w", slug.FullName(), shortSHA(s.Revision), err)
	}
	state := forgelink.GitHubState(s.State)
	switch {
	case s.Revision == "":
		return fail(forgelink.Errorf(forgelink.Invalid, "no revision given"))
	case state == "":
		return fail(forgelink.Errorf(forgelink.Invalid, "invalid status state %q", s.State))
	case utf8.RuneCountInString(s.Description) > forgelink.MaxStatusDescription:
		return fail(forgelink.Errorf(forgelink.Invalid, "the description has %d characters; GitHub allows %d",
			utf8.RuneCountInString(s.Description), forgelink.MaxStatusDescription))
	}
	status := &gh.RepoStatus{
		State:   gh.String(state),
		Context: gh.String(forgelink.StatusContext(s.Workflow)),
	}
	if s.Description != "" {
		status.Description = gh.String(s.Description)
	}
	if s.TargetURL != "" {
		status.TargetURL = gh.String(s.TargetURL)
	}
	if _, _, err := f.c.Repositories.CreateStatus(ctx, slug.Org, slug.Repo, s.Revision, status); err != nil {
		return fail(apiError(err, "repository "+slug.FullName()))
	}
	return nil
}

// shortSHA is a revision as messages show it: its first 7 characters.
func shortSHA(rev string) string {
	n := 0
	for i := range rev {
		if n == 7 {
			return rev[:i]
		}
		n++
	}
	return rev
}
