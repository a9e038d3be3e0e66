package sshkeys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"

	"forgelink/shared/forgelink"
)

// MaxKeySize bounds the input of ParsePrivateKey; a 16384-bit RSA key in
// OpenSSH format is about 13 KiB.
const MaxKeySize = 64 << 10

// The reasons ParsePrivateKey gives, all of kind forgelink.Invalid. None
// quotes the input: it is a secret.
var (
	errEmpty      = invalid("the key is empty")
	errTooLarge   = invalid(fmt.Sprintf("the key is larger than %d KiB; is it a private key?", MaxKeySize>>10))
	errPassphrase = invalid("the key is protected by a passphrase; remove it with ssh-keygen -p")
	errPublic     = invalid("this is a public key; supply the private key (the file without .pub)")
	errDSA        = invalid("DSA keys are not supported; use ed25519, ECDSA or RSA")
	errNotPEM     = invalid("not a PEM-encoded private key; supply the whole file, from -----BEGIN to -----END")
	errTruncated  = invalid("not a PEM-encoded private key: it has a -----BEGIN line but no matching -----END line; was it cut short?")
	errMalformed  = invalid("malformed key; supply the private key file exactly as ssh-keygen wrote it")
	errBefore     = invalid("unexpected text before the -----BEGIN line")
	errAfter      = invalid("unexpected text after the -----END line")
	errTwoKeys    = invalid("the input holds more than one key; supply one")
	errPuTTY      = invalid("PuTTY keys are not supported; export the key in OpenSSH format (puttygen key.ppk -O private-openssh -o key)")
	errCert       = invalid("this is a certificate, not a private key")
)

func invalid(reason string) error {
	return forgelink.Errorf(forgelink.Invalid, "sshkeys: %s", reason)
}

// ParsePrivateKey checks a private key a user supplies and returns it with
// its public forms. It accepts unencrypted ed25519, ECDSA (P-256, P-384,
// P-521) and RSA (at least MinRSABits) keys in the OpenSSH format, PKCS#1
// ("RSA PRIVATE KEY", as from ssh-keygen -m PEM), SEC 1 ("EC PRIVATE KEY",
// optionally after an "EC PARAMETERS" block) and PKCS#8 ("PRIVATE KEY").
// The KeyPair's PrivatePEM is a copy of data exactly as given.
//
// Every error is of kind forgelink.Invalid with a message that tells the
// user what to fix: a passphrase, a public key, DSA, a short RSA key, a
// truncated or garbled file. No error contains any part of data.
func ParsePrivateKey(data []byte) (*KeyPair, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errEmpty
	}
	if len(data) > MaxKeySize {
		return nil, errTooLarge
	}
	block, err := keyBlock(data)
	if err != nil {
		return nil, err
	}
	key, err := parseBlock(block)
	if err != nil {
		return nil, err
	}
	pub, err := checkKey(key)
	if err != nil {
		return nil, err
	}
	return newKeyPair(bytes.Clone(data), pub), nil
}

// keyBlock returns the one private key block in data, skipping an EC
// PARAMETERS block as openssl ecparam -genkey writes before the key.
func keyBlock(data []byte) (*pem.Block, error) {
	rest := bytes.TrimSpace(data)
	if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
		return nil, notPEM(rest)
	}
	var key *pem.Block
	for len(rest) > 0 {
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			return nil, errAfter
		}
		b, r := pem.Decode(rest)
		if b == nil {
			if key == nil {
				if bytes.Contains(rest, []byte("-----END ")) {
					return nil, errMalformed
				}
				return nil, errTruncated
			}
			return nil, errAfter
		}
		rest = bytes.TrimSpace(r)
		if b.Type == "EC PARAMETERS" {
			continue
		}
		if key != nil {
			return nil, errTwoKeys
		}
		key = b
	}
	if key == nil {
		return nil, errNotPEM
	}
	return key, nil
}

// notPEM explains input that does not start with a PEM block.
func notPEM(in []byte) error {
	switch {
	case bytes.HasPrefix(in, []byte("PuTTY-User-Key-File-")):
		return errPuTTY
	case bytes.HasPrefix(in, []byte("---- BEGIN SSH2 PUBLIC KEY ----")):
		return errPublic
	case bytes.Contains(in, []byte("-----BEGIN ")):
		return errBefore
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey(in); err == nil {
		return errPublic
	}
	return errNotPEM
}

// parseBlock decodes the private key in block, telling apart the cases a
// user can fix before handing it to x/crypto/ssh.
func parseBlock(block *pem.Block) (any, error) {
	if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, errPassphrase
	}
	switch block.Type {
	case "OPENSSH PRIVATE KEY":
		if err := checkOpenSSHHeader(block.Bytes); err != nil {
			return nil, err
		}
	case "RSA PRIVATE KEY", "EC PRIVATE KEY":
	case "PRIVATE KEY":
		if isPKCS8DSA(block.Bytes) {
			return nil, errDSA
		}
	case "ENCRYPTED PRIVATE KEY":
		return nil, errPassphrase
	case "DSA PRIVATE KEY":
		return nil, errDSA
	case "PUBLIC KEY", "RSA PUBLIC KEY", "SSH2 PUBLIC KEY", "EC PUBLIC KEY":
		return nil, errPublic
	case "CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE":
		return nil, errCert
	default:
		return nil, unsupported("PEM block", block.Type, "want an OpenSSH, RSA, EC or PKCS#8 private key")
	}
	// Re-encode without headers or neighbouring blocks: x/crypto/ssh
	// decodes only the first block of its input.
	key, err := ssh.ParseRawPrivateKey(pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: block.Bytes}))
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, errPassphrase
		}
		return nil, errMalformed
	}
	return key, nil
}

// unsupported names what is unsupported; the name comes from the input,
// so it is shown only if it is short and plainly a name.
func unsupported(what, name, want string) error {
	if len(name) > 40 || strings.IndexFunc(name, func(r rune) bool { return r < ' ' || r > '~' }) >= 0 {
		return invalid(fmt.Sprintf("unsupported %s; %s", what, want))
	}
	return invalid(fmt.Sprintf("unsupported %s %q; %s", what, name, want))
}

// openSSHMagic starts the OpenSSH private key format (PROTOCOL.key).
const openSSHMagic = "openssh-key-v1\x00"

// checkOpenSSHHeader reads the unencrypted header of an OpenSSH private key
// (cipher, KDF and public key) to refuse passphrases, DSA and key types
// x/crypto/ssh does not know with a reason rather than "malformed".
func checkOpenSSHHeader(der []byte) error {
	if !bytes.HasPrefix(der, []byte(openSSHMagic)) {
		return errMalformed
	}
	var h struct {
		CipherName, KDFName, KDFOptions string
		NumKeys                         uint32
		PubKey                          []byte
		Rest                            []byte `ssh:"rest"`
	}
	if err := ssh.Unmarshal(der[len(openSSHMagic):], &h); err != nil {
		return errMalformed
	}
	if h.CipherName != "none" || h.KDFName != "none" {
		return errPassphrase
	}
	if h.NumKeys != 1 {
		return errTwoKeys
	}
	var pub struct {
		Type string
		Rest []byte `ssh:"rest"`
	}
	if err := ssh.Unmarshal(h.PubKey, &pub); err != nil {
		return errMalformed
	}
	switch pub.Type {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoRSA, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		return nil
	case ssh.InsecureKeyAlgoDSA:
		return errDSA
	case ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
		return invalid("security-key (FIDO, -sk) keys are not supported: CI has no security key to touch; use ed25519, ECDSA or RSA")
	}
	return unsupported("key type", pub.Type, "use ed25519, ECDSA or RSA")
}

// oidDSA is the PKCS#8 algorithm of a DSA key (RFC 3279).
var oidDSA = asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1}

// isPKCS8DSA reports whether der is a PKCS#8 DSA key, which crypto/x509
// only calls an "unknown algorithm".
func isPKCS8DSA(der []byte) bool {
	var p8 struct {
		Version    int
		Algo       pkix.AlgorithmIdentifier
		PrivateKey []byte
		Attributes asn1.RawValue `asn1:"optional"`
	}
	_, err := asn1.Unmarshal(der, &p8)
	return err == nil && p8.Algo.Algorithm.Equal(oidDSA)
}

// checkKey applies forgelink's policy to a decoded key and returns its
// public key.
func checkKey(key any) (ssh.PublicKey, error) {
	var signer crypto.Signer
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < MinRSABits {
			return nil, invalid(fmt.Sprintf("the RSA key has %d bits; RSA keys shorter than %d bits are not accepted", bits, MinRSABits))
		}
		if k.Validate() != nil {
			return nil, errMalformed
		}
		signer = k
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return nil, unsupported("ECDSA curve", k.Curve.Params().Name, "use P-256, P-384 or P-521")
		}
		signer = k
	case *ed25519.PrivateKey:
		return checkKey(*k)
	case ed25519.PrivateKey:
		// The OpenSSH format stores the public half separately; make sure
		// it belongs to the seed, or fingerprints would name another key.
		if len(k) != ed25519.PrivateKeySize || !bytes.Equal(ed25519.NewKeyFromSeed(k.Seed()), k) {
			return nil, errMalformed
		}
		signer = k
	default:
		// For instance an X25519 key in PKCS#8, which cannot sign.
		return nil, invalid("unsupported key algorithm; use ed25519, ECDSA or RSA")
	}
	pub, err := ssh.NewPublicKey(signer.Public())
	if err != nil {
		return nil, errMalformed
	}
	return pub, nil
}
