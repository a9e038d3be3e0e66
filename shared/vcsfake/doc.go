// Package vcsfake serves stateful fakes of the GitHub REST API and the
// Bitbucket Cloud REST API 2.0 from httptest servers, for tests. They keep
// repositories, deploy keys, hooks, user keys, commit statuses, files per
// ref (SetFile), pull requests (OpenPR, ClosePR) and the user's emails in
// memory, answer with the real error bodies from testdata/corpus, paginate,
// honour ETag / If-None-Match, count requests (CountRequests), and can be
// told to fail. The GitHub fake also plays a classic token's OAuth scopes
// (SetScopes).
//
//	gh := vcsfake.NewGitHub(t)
//	gh.AddRepo("octo-org/hello-world", "main", true)
//	forge, _ := github.NewForge(gh.URL, gh.Token, nil)
//	id, err := forge.EnsureDeployKey(ctx, slug, "forgelink", pub)
//	keys := gh.DeployKeys("octo-org/hello-world") // one Key, ID == id
//
//	gh.FailNext("POST", "/keys", 502, 1) // the next POST .../keys answers 502
//
// Commit statuses behave as on each VCS: GitHub keeps every status (at most
// GitHubMaxStatuses per commit and context; Statuses lists them in posting
// order), Bitbucket keeps one per commit and key, updated by each post
// (Statuses lists the current ones, BuildStatuses every post). FailNext
// matches them by path suffix like any request: "/statuses/"+sha for a
// GitHub post, "/statuses/build" for a Bitbucket one.
//
// The fakes are safe for concurrent use; the Direct methods change state as
// someone using the VCS's web interface would, without a request.
package vcsfake
