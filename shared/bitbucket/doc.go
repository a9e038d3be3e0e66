// Package bitbucket implements forgelink.Forge, forgelink.RepoReader,
// forgelink.StatusPoster, forgelink.AccessChecker (without deliveries,
// which Bitbucket's API cannot list or redeliver) and forgelink.Identity
// (the signed-in user's account, scopes, permissions and repositories) on
// the Bitbucket Cloud REST API 2.0. Webhook deliveries are verified and parsed by package
// bbhook.
//
//	f, err := bitbucket.NewForge(apiURL, token, httpClient)
//	id, err := f.EnsureDeployKey(ctx, repo, title, publicKey)
//	err = f.PostStatus(ctx, repo, forgelink.CommitStatus{Revision: sha, Workflow: "build", State: forgelink.StatusRunning, TargetURL: link})
//	perm, err := f.Permission(ctx, repo) // PermissionNone when Bitbucket hides it
package bitbucket
