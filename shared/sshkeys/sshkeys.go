package sshkeys

import (
	"crypto/ed25519"
	cryptorand "crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"

	"forgelink/shared/forgelink"
)

// Type is a kind of key Generate makes.
type Type string

// The key types Generate makes.
const (
	ED25519 Type = "ed25519" // the default: small, fast, accepted everywhere forgelink runs
	RSA     Type = "rsa"     // RSABits bits, for hosts that still refuse ed25519
)

// RSABits is the size of the RSA keys Generate makes.
const RSABits = 4096

// MinRSABits is the smallest RSA key ParsePrivateKey accepts.
const MinRSABits = 2048

// KeyPair is a private key with the public forms forgelink needs.
type KeyPair struct {
	// PublicKey is the public half.
	PublicKey ssh.PublicKey
	// PrivatePEM is the private key, unencrypted. Generate writes the
	// OpenSSH format ("-----BEGIN OPENSSH PRIVATE KEY-----");
	// ParsePrivateKey keeps the bytes exactly as given.
	PrivatePEM []byte
	// AuthorizedKey is the public key as one authorized_keys line without
	// comment or newline: "ssh-ed25519 AAAA...". VCS deploy-key APIs take it.
	AuthorizedKey string
	// FingerprintMD5 is the legacy fingerprint as colon-separated hex
	// without the "MD5:" prefix ("1f:2e:..."), the form CircleCI's
	// add_ssh_keys step takes.
	FingerprintMD5 string
	// FingerprintSHA256 is "SHA256:" and the unpadded base64 of the
	// SHA-256 of the public key, as ssh-keygen -l prints it.
	FingerprintSHA256 string
}

// AuthorizedKeyWithComment returns AuthorizedKey followed by a space and
// comment (which some hosts show as the key's label). Line breaks in
// comment become spaces, so the result stays one line.
func (k *KeyPair) AuthorizedKeyWithComment(comment string) string {
	comment = strings.Join(strings.Fields(comment), " ")
	if comment == "" {
		return k.AuthorizedKey
	}
	return k.AuthorizedKey + " " + comment
}

// Generate makes a new key pair of type t; "" means ED25519. random is the
// source of randomness, crypto/rand's when nil. Since Go 1.26 RSA key
// generation always uses crypto/rand's source and ignores random; ed25519
// reads its 32-byte seed from random.
func Generate(t Type, random io.Reader) (*KeyPair, error) {
	if random == nil {
		random = cryptorand.Reader
	}
	var priv any
	switch t {
	case ED25519, "":
		_, k, err := ed25519.GenerateKey(random)
		if err != nil {
			return nil, forgelink.E(forgelink.Internal, "sshkeys: generate ed25519 key", err)
		}
		priv = k
	case RSA:
		k, err := rsa.GenerateKey(random, RSABits)
		if err != nil {
			return nil, forgelink.E(forgelink.Internal, "sshkeys: generate rsa key", err)
		}
		priv = k
	default:
		return nil, forgelink.Errorf(forgelink.Invalid, "sshkeys: unknown key type %.32q; want %q or %q", string(t), ED25519, RSA)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, forgelink.E(forgelink.Internal, "sshkeys: marshal private key", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, forgelink.E(forgelink.Internal, "sshkeys: public key", err)
	}
	return newKeyPair(pem.EncodeToMemory(block), signer.PublicKey()), nil
}

func newKeyPair(privatePEM []byte, pub ssh.PublicKey) *KeyPair {
	md5, sha256 := Fingerprints(pub)
	return &KeyPair{
		PublicKey:         pub,
		PrivatePEM:        privatePEM,
		AuthorizedKey:     strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n"),
		FingerprintMD5:    md5,
		FingerprintSHA256: sha256,
	}
}

// Fingerprints returns pub's fingerprints as ssh-keygen -l -E md5 and -E
// sha256 print them, except that md5 lacks the "MD5:" prefix:
// "1f:2e:...:9a" and "SHA256:base64-without-padding".
func Fingerprints(pub ssh.PublicKey) (md5, sha256 string) {
	return ssh.FingerprintLegacyMD5(pub), ssh.FingerprintSHA256(pub)
}
