package sealer_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"forgelink/shared/forgelink"
	"forgelink/shared/sealer"
)

const wantOpenError = "sealer: open: message authentication failed"

// secret is a plaintext no error text may contain.
var secret = []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END OPENSSH PRIVATE KEY-----\n")

// keysCase names a DataKeys to run the envelope contract against.
type keysCase struct {
	name string
	new  func(t *testing.T) sealer.DataKeys
	// exact: every failed Open is exactly errOpen. KMS may instead answer
	// some corrupted blobs with an access error (moto does, when the key
	// ID inside its blob is damaged), which is Internal too.
	exact bool
}

func localKeys(t testing.TB) sealer.DataKeys {
	t.Helper()
	k, err := sealer.OpenKeyFile(t.TempDir() + "/kek")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keysCases() []keysCase {
	return []keysCase{
		{name: "local", new: func(t *testing.T) sealer.DataKeys { return localKeys(t) }, exact: true},
		{name: "kms", new: func(t *testing.T) sealer.DataKeys {
			c := kmsClient(t)
			return sealer.NewKMS(c, createKMSKey(t, c))
		}},
	}
}

func TestEnvelope(t *testing.T) {
	for _, kc := range keysCases() {
		t.Run(kc.name, func(t *testing.T) {
			s := sealer.NewEnvelope(kc.new(t))
			testEnvelope(t, s, kc.exact)
		})
	}
}

// testEnvelope is the contract every DataKeys must pass behind an Envelope.
func testEnvelope(t *testing.T, s *sealer.Envelope, exact bool) {
	ctx := context.Background()
	aadA := []byte("project/acme/widgets#deploy-key")
	aadB := []byte("project/acme/gadgets#deploy-key")

	t.Run("RoundTrip", func(t *testing.T) {
		big := bytes.Repeat([]byte{0x5a}, 64<<10)
		for _, tc := range []struct {
			name           string
			plaintext, aad []byte
		}{
			{"empty plaintext", nil, aadA},
			{"one byte", []byte{0}, aadA},
			{"private key", secret, aadA},
			{"64KiB", big, aadA},
			{"empty aad", secret, nil},
			{"binary aad", secret, []byte{0, 1, 2, 0xff}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				blob, err := s.Seal(ctx, tc.plaintext, tc.aad)
				if err != nil {
					t.Fatalf("Seal: %v", err)
				}
				if len(tc.plaintext) > 8 && bytes.Contains(blob, tc.plaintext) {
					t.Fatal("ciphertext contains the plaintext")
				}
				got, err := s.Open(ctx, blob, tc.aad)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if !bytes.Equal(got, tc.plaintext) {
					t.Errorf("Open = %d bytes, want the %d sealed", len(got), len(tc.plaintext))
				}
			})
		}
	})

	blobA := seal(t, s, secret, aadA)
	blobB := seal(t, s, secret, aadB)

	t.Run("OtherAAD", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			aad  []byte
		}{
			{"other record", aadB},
			{"empty", nil},
			{"prefix", aadA[:len(aadA)-1]},
			{"extended", append(append([]byte{}, aadA...), 'x')},
			{"case", bytes.ToUpper(aadA)},
		} {
			t.Run(tc.name, func(t *testing.T) { openFails(t, s, blobA, tc.aad, exact) })
		}
		emptyAAD := seal(t, s, secret, nil)
		openFails(t, s, emptyAAD, aadA, exact)
	})

	t.Run("MovedBetweenRecords", func(t *testing.T) {
		// Both records hold the same plaintext: only the binding differs.
		openFails(t, s, blobA, aadB, exact)
		openFails(t, s, blobB, aadA, exact)
		// Splice A's wrapped key with B's nonce and body, and the reverse.
		nA, nB := 3+int(blobA[1])<<8|int(blobA[2]), 3+int(blobB[1])<<8|int(blobB[2])
		spliced := append(append([]byte{}, blobA[:nA]...), blobB[nB:]...)
		openFails(t, s, spliced, aadA, exact)
		openFails(t, s, spliced, aadB, exact)
		spliced = append(append([]byte{}, blobB[:nB]...), blobA[nA:]...)
		openFails(t, s, spliced, aadA, exact)
		openFails(t, s, spliced, aadB, exact)
	})

	t.Run("FlipEveryByte", func(t *testing.T) {
		masks := []byte{0x01}
		if exact { // local is cheap: try every bit
			masks = []byte{0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80}
		}
		for i := range blobA {
			for _, m := range masks {
				bad := bytes.Clone(blobA)
				bad[i] ^= m
				openFails(t, s, bad, aadA, exact)
			}
		}
	})

	t.Run("Truncated", func(t *testing.T) {
		for n := range len(blobA) {
			openFails(t, s, blobA[:n], aadA, exact)
		}
	})

	t.Run("Extended", func(t *testing.T) {
		openFails(t, s, append(bytes.Clone(blobA), 0), aadA, exact)
	})

	t.Run("UnknownVersion", func(t *testing.T) {
		for _, v := range []byte{0, 2, 0xff} {
			bad := bytes.Clone(blobA)
			bad[0] = v
			openFails(t, s, bad, aadA, exact)
		}
	})

	t.Run("SealsDiffer", func(t *testing.T) {
		again := seal(t, s, secret, aadA)
		if bytes.Equal(again, blobA) {
			t.Fatal("two Seals of the same plaintext and aad are equal")
		}
		for _, blob := range [][]byte{blobA, again} {
			if got, err := s.Open(ctx, blob, aadA); err != nil || !bytes.Equal(got, secret) {
				t.Errorf("Open = %q, %v; want the plaintext", got, err)
			}
		}
	})
}

func seal(t *testing.T, s *sealer.Envelope, plaintext, aad []byte) []byte {
	t.Helper()
	blob, err := s.Seal(context.Background(), plaintext, aad)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return blob
}

// openFails checks that blob does not open with aad, with an Internal error
// that reveals nothing of the plaintext.
func openFails(t *testing.T, s *sealer.Envelope, blob, aad []byte, exact bool) {
	t.Helper()
	got, err := s.Open(context.Background(), blob, aad)
	if err == nil {
		t.Fatalf("Open(%d-byte blob) succeeded, want an error", len(blob))
	}
	if got != nil {
		t.Errorf("Open returned %d bytes with its error", len(got))
	}
	if k := forgelink.KindOf(err); k != forgelink.Internal {
		t.Errorf("Open error kind = %v, want internal: %v", k, err)
	}
	if exact && err.Error() != wantOpenError {
		t.Errorf("Open error = %q, want %q", err, wantOpenError)
	}
	if strings.Contains(err.Error(), string(secret[36:60])) {
		t.Errorf("Open error contains the plaintext: %v", err)
	}
}

// recordingKeys hands out LocalKeys' data keys and remembers them, to check
// that the Envelope zeroes them after use.
type recordingKeys struct {
	sealer.DataKeys
	mu   sync.Mutex
	keys [][]byte
}

func (r *recordingKeys) record(k []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, k)
}

func (r *recordingKeys) GenerateDataKey(ctx context.Context, aad []byte) ([]byte, []byte, error) {
	k, w, err := r.DataKeys.GenerateDataKey(ctx, aad)
	r.record(k)
	return k, w, err
}

func (r *recordingKeys) Decrypt(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	k, err := r.DataKeys.Decrypt(ctx, wrapped, aad)
	r.record(k)
	return k, err
}

func TestEnvelopeZeroesDataKeys(t *testing.T) {
	keys := &recordingKeys{DataKeys: localKeys(t)}
	s := sealer.NewEnvelope(keys)
	blob := seal(t, s, secret, []byte("r"))
	if _, err := s.Open(context.Background(), blob, []byte("r")); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(blob)
	bad[len(bad)-1] ^= 1
	if _, err := s.Open(context.Background(), bad, []byte("r")); err == nil {
		t.Fatal("Open of a damaged blob succeeded")
	}
	if len(keys.keys) != 3 {
		t.Fatalf("saw %d data keys, want 3", len(keys.keys))
	}
	for i, k := range keys.keys {
		if len(k) != 32 {
			t.Fatalf("data key %d is %d bytes", i, len(k))
		}
		if !bytes.Equal(k, make([]byte, 32)) {
			t.Errorf("data key %d was not zeroed after use", i)
		}
	}
}

// badKeys returns a data key of the wrong size.
type badKeys struct{ sealer.DataKeys }

func (badKeys) GenerateDataKey(context.Context, []byte) ([]byte, []byte, error) {
	return make([]byte, 16), []byte("wrapped"), nil
}

func TestEnvelopeRejectsShortDataKey(t *testing.T) {
	_, err := sealer.NewEnvelope(badKeys{}).Seal(context.Background(), secret, nil)
	if forgelink.KindOf(err) != forgelink.Internal || err == nil {
		t.Fatalf("Seal with a 16-byte data key: err = %v, want an internal error", err)
	}
}

// ed25519PEM returns an OpenSSH ed25519 private key PEM, the typical
// plaintext forgelink seals.
func ed25519PEM(tb testing.TB) []byte {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func BenchmarkSeal(b *testing.B) {
	s := sealer.NewEnvelope(localKeys(b))
	plaintext, aad := ed25519PEM(b), []byte("project/acme/widgets#deploy-key")
	ctx := context.Background()
	b.SetBytes(int64(len(plaintext)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seal(ctx, plaintext, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	s := sealer.NewEnvelope(localKeys(b))
	plaintext, aad := ed25519PEM(b), []byte("project/acme/widgets#deploy-key")
	ctx := context.Background()
	blob, err := s.Seal(ctx, plaintext, aad)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(plaintext)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Open(ctx, blob, aad); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareAESGCMSeal is the baseline for BenchmarkSeal: the same
// plaintext sealed with one fixed key and a fresh random nonce, no data key.
func BenchmarkBareAESGCMSeal(b *testing.B) {
	plaintext, aad := ed25519PEM(b), []byte("project/acme/widgets#deploy-key")
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	nonce := make([]byte, aead.NonceSize())
	b.SetBytes(int64(len(plaintext)))
	b.ReportAllocs()
	for b.Loop() {
		rand.Read(nonce)
		out := make([]byte, 0, len(nonce)+len(plaintext)+aead.Overhead())
		out = append(out, nonce...)
		_ = aead.Seal(out, nonce, plaintext, aad)
	}
}
