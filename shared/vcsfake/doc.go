// Package vcsfake serves stateful fakes of the GitHub REST API and the
// Bitbucket Cloud REST API 2.0 from httptest servers, for tests. They keep
// repositories, deploy keys, hooks, user keys, commit statuses, files per
// ref (SetFile), pull requests (OpenPR, ClosePR) and the user's emails in
// memory, answer with the real error bodies from testdata/corpus, paginate,
// honour ETag / If-None-Match (a strong ETag on every GET 200), count
// requests (CountRequests), and can be told to fail. The GitHub fake also
// plays a classic token's OAuth scopes (SetScopes), organizations' OAuth
// App access restrictions (SetOrgRestricted) and the user's roles
// (SetOrgRole); the Bitbucket fake the user's workspace permissions
// (SetWorkspacePermission).
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
// GitHub's 304 answers cost no rate limit: RateLimitedRequests counts the
// requests that did, Requests lists every request with its Status (304
// included). The GitHub fake keeps each hook's recent deliveries
// (AddHookDelivery, FailedDelivery, Deliver, HookDeliveries), lists them
// with GitHub's cursor pagination, and really redelivers on
// POST .../deliveries/{id}/attempts: it POSTs the stored payload, signed
// with the hook's current secret, to the hook's URL before answering 202
// (Redeliveries lists the GUIDs).
//
// Each fake has several users. Token belongs to the original user
// (GitHubLogin, BitbucketUsername), an admin of every repository; AddUser
// adds a user and returns a token for it, and SetPermission sets a user's
// role on a repository ("" hides it: 404, as the VCS answers). GET /user
// answers the token's user, GitHub's /user/repos and Bitbucket's
// /repositories?role=member and /user/permissions/repositories list what
// the user may see, paginated. Every answer to a token lists its scopes in
// X-OAuth-Scopes (SetScopes).
//
// The fakes also play the VCSs' OAuth web flows on their own server (WebURL
// is GITHUB_WEB_URL, or bitbucket.org's place): GitHub's
// /login/oauth/authorize and /login/oauth/access_token (SetOAuthClient,
// SetAuthorizeUser, SetGrantedScopes; refusals are HTTP 200 with an
// "error", as GitHub answers), Bitbucket's /site/oauth2/authorize and
// /site/oauth2/access_token (SetOAuthConsumer; codes, refresh tokens,
// access tokens that expire after two hours or at ExpireToken, refresh
// token rotation with SetRefreshRotation). Codes are single-use;
// OAuthExchanges and OAuthExchangeLog tell what the token endpoint
// answered.
//
//	gh.SetOAuthClient("Iv1.client", "secret")
//	hubot := gh.AddUser("hubot", 583231, "Hubot") // a token for hubot
//	gh.SetPermission("octo-org/hello-world", "hubot", "pull")
//	gh.SetAuthorizeUser("hubot") // who signs in on the authorize page
//	conf := &oauth2.Config{ClientID: "Iv1.client", ClientSecret: "secret", Endpoint: oauth2.Endpoint{
//		AuthURL: gh.WebURL + "/login/oauth/authorize", TokenURL: gh.WebURL + "/login/oauth/access_token"}}
//
// The fakes are safe for concurrent use; the Direct methods change state as
// someone using the VCS's web interface would, without a request.
package vcsfake
