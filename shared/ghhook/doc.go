// Package ghhook verifies and normalizes GitHub webhook deliveries. It is
// apart from the GitHub API client (package github) so that webhook intake,
// the function on GitHub's 10-second clock, links no API client.
//
// A webhook handler verifies the signature over the exact body received
// before it decodes anything, then normalizes the event:
//
//	if err := ghhook.VerifySignature(body, r.Header.Get(ghhook.SignatureHeader), secrets...); err != nil {
//		return err // forgelink.Unauthorized
//	}
//	events, err := ghhook.ParseEvent(r.Header.Get(ghhook.EventHeader), body)
//	if err != nil {
//		return err // forgelink.Invalid
//	}
//	if events == nil {
//		// a ping, or an event forgelink does not act on: answer 2xx
//	}
package ghhook
