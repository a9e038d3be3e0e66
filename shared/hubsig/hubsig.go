// Package hubsig verifies "X-Hub-Signature"-style webhook signatures,
// "sha256=" followed by the hex HMAC-SHA256 of the body, which GitHub and
// Bitbucket Cloud both send. There is no SHA-1 fallback and an empty
// secret never matches.
//
//	err := hubsig.Verify("github", "X-Hub-Signature-256", body, r.Header.Get("X-Hub-Signature-256"), secret)
package hubsig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"forgelink/shared/forgelink"
)

// Prefix starts every signature value.
const Prefix = "sha256="

// Verify reports whether signature (the value of header) is Prefix and the
// hex HMAC-SHA256 of body under one of secrets, compared in constant time.
// Several secrets allow rotating one without losing deliveries. Every
// failure is of kind forgelink.Unauthorized, its message prefixed with vcs.
func Verify(vcs, header string, body []byte, signature string, secrets ...[]byte) error {
	if signature == "" {
		return forgelink.Errorf(forgelink.Unauthorized, "%s: missing %s", vcs, header)
	}
	hexSum, ok := strings.CutPrefix(signature, Prefix)
	if !ok {
		return forgelink.Errorf(forgelink.Unauthorized, "%s: %s must start with %q", vcs, header, Prefix)
	}
	if len(hexSum) != hex.EncodedLen(sha256.Size) {
		return forgelink.Errorf(forgelink.Unauthorized, "%s: %s must be %q and %d hex digits", vcs, header, Prefix, hex.EncodedLen(sha256.Size))
	}
	var want [sha256.Size]byte
	if _, err := hex.Decode(want[:], []byte(hexSum)); err != nil {
		return forgelink.Errorf(forgelink.Unauthorized, "%s: %s is not hex", vcs, header)
	}
	tried := false
	for _, secret := range secrets {
		if len(secret) == 0 {
			continue
		}
		tried = true
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		if hmac.Equal(mac.Sum(nil), want[:]) {
			return nil
		}
	}
	if !tried {
		return forgelink.Errorf(forgelink.Unauthorized, "%s: no webhook secret configured", vcs)
	}
	return forgelink.Errorf(forgelink.Unauthorized, "%s: signature does not match", vcs)
}
