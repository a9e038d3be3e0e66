// Package github implements forgelink.Forge, forgelink.RepoReader and
// forgelink.StatusPoster on the REST API of github.com or GitHub Enterprise
// Server (go-github v60).
// Webhook deliveries are verified and parsed by package ghhook.
//
//	f, err := github.NewForge(apiURL, token, httpClient)
//	id, err := f.EnsureDeployKey(ctx, repo, title, publicKey)
//	err = f.PostStatus(ctx, repo, forgelink.CommitStatus{Revision: sha, Workflow: "build", State: forgelink.StatusRunning, TargetURL: link})
package github
