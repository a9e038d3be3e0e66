// Package keysvc manages a followed project's SSH keys: checkout keys
// (read-only deploy keys and user keys), additional SSH keys for other
// hosts, and the single-use runner tokens with which a build fetches the
// private halves.
//
//	svc := &keysvc.Service{Store: st, Keys: st, Pipelines: st, Sealer: sl, Forges: forges}
//	key, err := svc.CreateCheckoutKey(ctx, "octocat", slug, forgelink.CheckoutUserKey, sshkeys.ED25519)
//	token, _, err := svc.MintRunnerToken(ctx, "octocat", pipelineID)
//	material, err := svc.Checkout(ctx, pipelineID, token) // once: the token is then used
//
// Private keys are generated or parsed here, sealed at once with the
// record's id as additional authenticated data, and opened only by
// Checkout. No value this package returns, logs or puts in an error holds
// a private key, except the Checkout material itself.
package keysvc
