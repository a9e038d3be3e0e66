package sshkeys_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"forgelink/shared/forgelink"
	"forgelink/shared/sshkeys"
)

// fuzzKeySeeds are private keys in every format ParsePrivateKey takes, and
// near misses it must refuse with a reason: a passphrase, a public key,
// text around the block, two blocks.
func fuzzKeySeeds(f *testing.F) [][]byte {
	f.Helper()
	must := func(b []byte, err error) []byte {
		f.Helper()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	openssh := func(k any) []byte {
		f.Helper()
		b, err := ssh.MarshalPrivateKey(k, "seed")
		if err != nil {
			f.Fatal(err)
		}
		return pem.EncodeToMemory(b)
	}
	block := func(typ string, der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	}
	ed := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	sec1 := must(x509.MarshalECPrivateKey(p256))
	params := block("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})
	encrypted, err := ssh.MarshalPrivateKeyWithPassphrase(ed, "seed", []byte("secret"))
	if err != nil {
		f.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(ed.Public())
	if err != nil {
		f.Fatal(err)
	}
	edPEM := openssh(ed)
	return [][]byte{
		edPEM,
		openssh(p256),
		openssh(p384),
		openssh(rsa2048),
		block("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa2048)),
		block("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(ed))),
		block("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(p384))),
		block("EC PRIVATE KEY", sec1),
		append(params, block("EC PRIVATE KEY", sec1)...),
		pem.EncodeToMemory(encrypted),
		ssh.MarshalAuthorizedKey(pub),
		append([]byte("my key:\n"), edPEM...),
		append(bytes.Clone(edPEM), edPEM...),
		edPEM[:len(edPEM)/2],
		[]byte(strings.Replace(string(edPEM), "\n", `\n`, -1)),
		[]byte("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n"),
		[]byte("-----BEGIN DSA PRIVATE KEY-----\nMIIBuwIBAAKBgQ==\n-----END DSA PRIVATE KEY-----\n"),
		[]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"),
	}
}

// FuzzParsePrivateKey checks what users paste as a private key: no input
// panics; every refusal is Invalid, says "sshkeys: " and quotes no line of
// the input (a key is a secret); every key accepted is the input as given,
// with public forms that agree with each other and with a second parse.
//
//	go test -run '^$' -fuzz '^FuzzParsePrivateKey$' -fuzztime 30s ./shared/sshkeys
func FuzzParsePrivateKey(f *testing.F) {
	for _, seed := range fuzzKeySeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kp, err := sshkeys.ParsePrivateKey(data)
		if err != nil {
			if kp != nil {
				t.Fatalf("ParsePrivateKey returned a key and an error: %v", err)
			}
			if k := forgelink.KindOf(err); k != forgelink.Invalid {
				t.Fatalf("ParsePrivateKey: kind %v, want %v: %v", k, forgelink.Invalid, err)
			}
			msg := forgelink.MessageOf(err)
			if !strings.HasPrefix(msg, "sshkeys: ") {
				t.Fatalf("message %q lacks the package prefix", msg)
			}
			// An unsupported block or key type is named when it is short
			// and printable; nothing else of the input may show.
			if i, j := strings.IndexByte(msg, '"'), strings.LastIndexByte(msg, '"'); i >= 0 && j > i {
				if name, err := strconv.Unquote(msg[i : j+1]); err != nil || len(name) > 40 {
					t.Fatalf("message quotes more than a short name: %q", msg)
				}
				msg = msg[:i] + msg[j+1:]
			}
			for _, line := range bytes.Split(data, []byte("\n")) {
				if line = bytes.TrimSpace(line); len(line) >= 12 && strings.Contains(msg, string(line)) {
					t.Fatalf("message %q contains the input line %q", msg, line)
				}
			}
			return
		}
		if !bytes.Equal(kp.PrivatePEM, data) {
			t.Fatal("PrivatePEM is not the input as given")
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(kp.AuthorizedKey))
		if err != nil {
			t.Fatalf("AuthorizedKey %q does not parse: %v", kp.AuthorizedKey, err)
		}
		if !bytes.Equal(pub.Marshal(), kp.PublicKey.Marshal()) {
			t.Fatal("AuthorizedKey and PublicKey differ")
		}
		if md5, sha := sshkeys.Fingerprints(pub); md5 != kp.FingerprintMD5 || sha != kp.FingerprintSHA256 {
			t.Fatalf("fingerprints %s %s, want %s %s", kp.FingerprintMD5, kp.FingerprintSHA256, md5, sha)
		}
		again, err := sshkeys.ParsePrivateKey(bytes.Clone(data))
		if err != nil || again.FingerprintSHA256 != kp.FingerprintSHA256 {
			t.Fatalf("second parse = %v, %v; want the same key", again, err)
		}
	})
}
