// Package bitbucket implements forgelink.Forge and forgelink.RepoReader on
// the Bitbucket Cloud REST API 2.0. Webhook deliveries are verified and
// parsed by package bbhook.
//
//	f, err := bitbucket.NewForge(apiURL, token, httpClient)
//	key, err := f.AddDeployKey(ctx, repo, title, publicKey)
package bitbucket
