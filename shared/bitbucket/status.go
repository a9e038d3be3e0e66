package bitbucket

import (
	"context"
	"fmt"
	"net/http"

	"forgelink/shared/forgelink"
)

var _ forgelink.StatusPoster = (*Forge)(nil)

// buildStatus is the body of POST .../commit/{sha}/statuses/build.
type buildStatus struct {
	Key         string `json:"key"`
	State       string `json:"state"`
	Name        string `json:"name"`
	URL         string `json:"url"`
	Description string `json:"description"`
}

// PostStatus posts s as a build status on s.Revision: key
// forgelink.BitbucketStatusKey of the workflow, state
// forgelink.BitbucketState(s.State), name forgelink.StatusContext of the
// workflow. Bitbucket keeps one status per commit and key, so each post
// replaces the workflow's previous one.
//
// Bitbucket requires a link: a status without TargetURL is Invalid and not
// sent. Refusals keep Bitbucket's message: a 400 is Upstream, 401
// Unauthorized, 403 Forbidden, 404 NotFound (the repository or the commit),
// 5xx and 429 Transient, the latter with RetryAfter.
func (f *Forge) PostStatus(ctx context.Context, slug forgelink.Slug, s forgelink.CommitStatus) error {
	commit := shortSHA(s.Revision)
	fail := func(err error) error {
		return fmt.Errorf("bitbucket: post status for %s@%s: %w", slug.FullName(), commit, err)
	}
	state := forgelink.BitbucketState(s.State)
	switch {
	case s.Revision == "":
		return fail(forgelink.Errorf(forgelink.Invalid, "no revision given"))
	case state == "":
		return fail(forgelink.Errorf(forgelink.Invalid, "invalid status state %q", s.State))
	case s.TargetURL == "":
		return fail(forgelink.Errorf(forgelink.Invalid, "a Bitbucket build status needs a link (target URL)"))
	}
	body := buildStatus{
		Key:         forgelink.BitbucketStatusKey(s.Workflow),
		State:       state,
		Name:        forgelink.StatusContext(s.Workflow),
		URL:         s.TargetURL,
		Description: s.Description,
	}
	u := f.c.url("repositories", slug.Org, slug.Repo, "commit", s.Revision, "statuses", "build")
	if err := f.c.do(ctx, http.MethodPost, u, body, nil); err != nil {
		return fail(classify(err, fmt.Sprintf("commit %s in repository %s", commit, slug.FullName())))
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
