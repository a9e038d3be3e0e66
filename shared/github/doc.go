// Package github implements forgelink.Forge and forgelink.RepoReader on the
// REST API of github.com or GitHub Enterprise Server (go-github v60).
// Webhook deliveries are verified and parsed by package ghhook.
//
//	f, err := github.NewForge(apiURL, token, httpClient)
//	key, err := f.AddDeployKey(ctx, repo, title, publicKey)
package github
