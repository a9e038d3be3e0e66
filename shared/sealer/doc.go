// Package sealer encrypts small secrets for storage with envelope
// encryption: every Seal uses a fresh AES-256-GCM data key, which a
// key-encryption key (a local key file or AWS KMS) wraps and which is stored,
// wrapped, next to the ciphertext.
//
//	keys, err := sealer.OpenKeyFile("/var/lib/forgelink/kek") // or sealer.NewKMS(client, keyID)
//	if err != nil { ... }
//	s := sealer.NewEnvelope(keys)
//	blob, err := s.Seal(ctx, privateKeyPEM, []byte("project/acme/widgets"))
//	pem, err := s.Open(ctx, blob, []byte("project/acme/widgets"))
//
// The aad passed to Seal binds the ciphertext to its record: Open with any
// other aad fails, so a ciphertext copied into another record is useless.
package sealer
