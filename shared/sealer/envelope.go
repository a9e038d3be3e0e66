package sealer

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"

	"forgelink/shared/forgelink"
)

// DataKeys hands out data keys and unwraps them. Both calls take the aad of
// the record being sealed, so that a wrapped key only unwraps for the record
// it was made for.
type DataKeys interface {
	// GenerateDataKey returns a fresh 32-byte data key and the same key
	// wrapped by the key-encryption key. The caller zeroes plaintext.
	GenerateDataKey(ctx context.Context, aad []byte) (plaintext, wrapped []byte, err error)
	// Decrypt unwraps a key made by GenerateDataKey with the same aad.
	Decrypt(ctx context.Context, wrapped, aad []byte) ([]byte, error)
}

// Layout of a sealed blob, version 1:
//
//	[0]                 version (1)
//	[1:3]               length n of the wrapped key, big endian
//	[3:3+n]             wrapped data key
//	[3+n:3+n+12]        AES-GCM nonce
//	[3+n+12:]           AES-256-GCM ciphertext of the plaintext, 16-byte tag last
const (
	version1   = 1
	headerSize = 3
	keySize    = 32
	nonceSize  = 12
	tagSize    = 16
	maxWrapped = 1<<16 - 1
)

// Envelope is a forgelink.Sealer that encrypts each plaintext with its own
// data key from a DataKeys and stores the wrapped key in the ciphertext.
// It is safe for concurrent use if its DataKeys is.
type Envelope struct {
	keys DataKeys
}

var _ forgelink.Sealer = (*Envelope)(nil)

// NewEnvelope returns an Envelope that gets its data keys from keys.
func NewEnvelope(keys DataKeys) *Envelope {
	return &Envelope{keys: keys}
}

// errOpen is the one error for a ciphertext that does not open: it says
// nothing about which check failed, and never carries key or plaintext bytes.
func errOpen() error {
	return forgelink.Errorf(forgelink.Internal, "sealer: open: message authentication failed")
}

// Seal encrypts plaintext under a fresh data key and binds it to aad.
func (e *Envelope) Seal(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	key, wrapped, err := e.keys.GenerateDataKey(ctx, aad)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	if len(key) != keySize {
		return nil, forgelink.Errorf(forgelink.Internal, "sealer: seal: data key is %d bytes, want %d", len(key), keySize)
	}
	if len(wrapped) == 0 || len(wrapped) > maxWrapped {
		return nil, forgelink.Errorf(forgelink.Internal, "sealer: seal: wrapped data key is %d bytes, want 1 to %d", len(wrapped), maxWrapped)
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, forgelink.E(forgelink.Internal, "sealer: seal", err)
	}
	n := headerSize + len(wrapped) + nonceSize
	out := make([]byte, n, n+len(plaintext)+tagSize)
	out[0] = version1
	binary.BigEndian.PutUint16(out[1:headerSize], uint16(len(wrapped)))
	copy(out[headerSize:], wrapped)
	nonce := out[headerSize+len(wrapped):]
	rand.Read(nonce) // never fails: crypto/rand crashes the program instead
	return aead.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts a ciphertext made by Seal with the same aad. A ciphertext
// that was altered, truncated, made for other aad or by an unknown version
// fails with an Internal error "sealer: open: message authentication
// failed"; errors from the DataKeys (a KMS outage, say) pass through.
func (e *Envelope) Open(ctx context.Context, ciphertext, aad []byte) ([]byte, error) {
	if len(ciphertext) < headerSize || ciphertext[0] != version1 {
		return nil, errOpen()
	}
	n := int(binary.BigEndian.Uint16(ciphertext[1:headerSize]))
	if n == 0 || len(ciphertext) < headerSize+n+nonceSize+tagSize {
		return nil, errOpen()
	}
	wrapped := ciphertext[headerSize : headerSize+n]
	nonce := ciphertext[headerSize+n : headerSize+n+nonceSize]
	body := ciphertext[headerSize+n+nonceSize:]

	key, err := e.keys.Decrypt(ctx, wrapped, aad)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	if len(key) != keySize {
		return nil, errOpen()
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, forgelink.E(forgelink.Internal, "sealer: open", err)
	}
	plaintext, err := aead.Open(nil, nonce, body, aad)
	if err != nil {
		return nil, errOpen()
	}
	return plaintext, nil
}

// newGCM returns AES-256-GCM with a 12-byte nonce under key. The key
// schedule it builds cannot be zeroed; the caller zeroes key itself.
func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
