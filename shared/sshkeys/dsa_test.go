package sshkeys_test

import (
	"crypto/dsa" // deprecated, but the tests need a DSA key to refuse
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"testing"

	"forgelink/shared/sshkeys"
)

// goDSAKey builds a DSA private key in the PEM format ("PEM": OpenSSL's
// "DSA PRIVATE KEY"; "PKCS8": "PRIVATE KEY"), for when ssh-keygen no longer
// makes DSA keys. The OpenSSH format ("") falls back to PEM.
func goDSAKey(t *testing.T, format string) []byte {
	t.Helper()
	var k dsa.PrivateKey
	if err := dsa.GenerateParameters(&k.Parameters, rand.Reader, dsa.L1024N160); err != nil {
		t.Fatal(err)
	}
	if err := dsa.GenerateKey(&k, rand.Reader); err != nil {
		t.Fatal(err)
	}
	if format == "PKCS8" {
		params, err := asn1.Marshal(struct{ P, Q, G *big.Int }{k.P, k.Q, k.G})
		if err != nil {
			t.Fatal(err)
		}
		x, err := asn1.Marshal(k.X)
		if err != nil {
			t.Fatal(err)
		}
		der, err := asn1.Marshal(struct {
			Version    int
			Algo       pkix.AlgorithmIdentifier
			PrivateKey []byte
		}{0, pkix.AlgorithmIdentifier{
			Algorithm:  asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1},
			Parameters: asn1.RawValue{FullBytes: params},
		}, x})
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	der, err := asn1.Marshal(struct {
		Version       int
		P, Q, G, Y, X *big.Int
	}{0, k.P, k.Q, k.G, k.Y, k.X})
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "DSA PRIVATE KEY", Bytes: der})
}

// TestGoDSAKeyRefused runs the fallback DSA keys too, so that the test
// still means something once ssh-keygen drops DSA.
func TestGoDSAKeyRefused(t *testing.T) {
	for _, format := range []string{"PEM", "PKCS8"} {
		t.Run(format, func(t *testing.T) {
			data := goDSAKey(t, format)
			_, err := sshkeys.ParsePrivateKey(data)
			checkInvalid(t, err, data, reasonDSA)
		})
	}
}
