// Package github is forgelink's GitHub adapter: it verifies and normalizes
// webhook deliveries, and implements forgelink.Forge on the REST API of
// github.com or GitHub Enterprise Server.
//
// A webhook handler verifies the signature over the exact body received
// before it decodes anything, then normalizes the event:
//
//	if err := github.VerifySignature(body, r.Header.Get(github.SignatureHeader), secrets...); err != nil {
//		return err // forgelink.Unauthorized
//	}
//	events, err := github.ParseEvent(r.Header.Get(github.EventHeader), body)
//	if err != nil {
//		return err // forgelink.Invalid
//	}
//	if events == nil {
//		// a ping, or an event forgelink does not act on: answer 2xx
//	}
package github
