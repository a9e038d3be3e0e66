// Package bbhook verifies and normalizes Bitbucket Cloud webhook
// deliveries. It is apart from the Bitbucket API client (package
// bitbucket) so that webhook intake links no API client.
//
// A webhook handler verifies the signature over the exact body received
// before it decodes anything, then normalizes the event; one repo:push may
// give several events, one per ref it changed:
//
//	if err := bbhook.VerifySignature(body, r.Header.Get(bbhook.SignatureHeader), secrets...); err != nil {
//		return err // forgelink.Unauthorized
//	}
//	events, err := bbhook.ParseEvent(r.Header.Get(bbhook.EventHeader), body)
//	if err != nil {
//		return err // forgelink.Invalid
//	}
//	for _, e := range events {
//		// decide and enqueue
//	}
package bbhook
