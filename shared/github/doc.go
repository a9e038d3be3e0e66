// Package github implements forgelink.Forge, forgelink.RepoReader,
// forgelink.StatusPoster, forgelink.AccessChecker and forgelink.Identity
// (the signed-in user's account, scopes, permissions and repositories) on
// the REST API of github.com or GitHub Enterprise Server (go-github v60). The access
// checks read conditionally (If-None-Match), so that a sweep with nothing
// changed costs almost no rate limit, and RateLimit reports what the
// latest answer said is left.
// Webhook deliveries are verified and parsed by package ghhook.
//
//	f, err := github.NewForge(apiURL, token, httpClient)
//	id, err := f.EnsureDeployKey(ctx, repo, title, publicKey)
//	err = f.PostStatus(ctx, repo, forgelink.CommitStatus{Revision: sha, Workflow: "build", State: forgelink.StatusRunning, TargetURL: link})
//	hook, err := f.CheckHook(ctx, repo, hookID, lastETag) // hook.NotModified: a free 304
//	perm, err := f.Permission(ctx, repo) // PermissionNone when GitHub hides it
package github
