// Package sshkeys generates the SSH deploy keys forgelink hands to CI and
// checks the private keys users supply, with the fingerprints that CI and
// VCS hosts show for them.
//
//	kp, err := sshkeys.Generate(sshkeys.ED25519, nil)
//	if err != nil { ... }
//	// register kp.AuthorizedKey as a deploy key, seal and store kp.PrivatePEM,
//	// and tell CircleCI's add_ssh_keys about kp.FingerprintMD5.
//
//	kp, err = sshkeys.ParsePrivateKey(userPEM)
//	if forgelink.KindOf(err) == forgelink.Invalid {
//		// forgelink.MessageOf(err) says what is wrong, e.g. a passphrase
//	}
//
// Error messages never contain key material.
package sshkeys
