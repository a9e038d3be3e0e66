// Package bitbucket is forgelink's Bitbucket Cloud adapter: it verifies and
// normalizes webhook deliveries, and implements forgelink.Forge on the
// Bitbucket Cloud REST API.
//
// A webhook handler verifies the signature over the exact body received
// before it decodes anything, then normalizes the event; one repo:push may
// give several events, one per ref it changed:
//
//	if err := bitbucket.VerifySignature(body, r.Header.Get(bitbucket.SignatureHeader), secrets...); err != nil {
//		return err // forgelink.Unauthorized
//	}
//	events, err := bitbucket.ParseEvent(r.Header.Get(bitbucket.EventHeader), body)
//	if err != nil {
//		return err // forgelink.Invalid
//	}
//	for _, e := range events {
//		// decide and enqueue
//	}
package bitbucket
