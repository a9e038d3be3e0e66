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
// The fakes are safe for concurrent use; the Direct methods change state as
// someone using the VCS's web interface would, without a request.
package vcsfake
