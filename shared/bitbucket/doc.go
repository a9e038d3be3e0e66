// Package bitbucket implements forgelink.Forge, forgelink.RepoReader,
// forgelink.StatusPoster and forgelink.AccessChecker (without deliveries,
// which Bitbucket's API cannot list or redeliver) on the Bitbucket Cloud
// REST API 2.0. Webhook deliveries are verified and parsed by package
// bbhook.
//
//	f, err := bitbucket.NewForge(apiURL, token, httpClient)
//	id, err := f.EnsureDeployKey(ctx, repo, title, publicKey)
//	err = f.PostStatus(ctx, repo, forgelink.CommitStatus{Revision: sha, Workflow: "build", State: forgelink.StatusRunning, TargetURL: link})
package bitbucket
