package sshkeys_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"forgelink/shared/forgelink"
	"forgelink/shared/sshkeys"
)

// sshKeygen returns the path of the real ssh-keygen. The tests compare
// against it and fail, not skip, without it.
func sshKeygen(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("ssh-keygen"); err == nil {
		return p
	}
	const p = "/usr/bin/ssh-keygen"
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("ssh-keygen is required (apt-get install openssh-client): %v", err)
	}
	return p
}

// keygen runs ssh-keygen with args and returns its standard output.
func keygen(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(sshKeygen(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", &keygenError{args: args, err: err, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

type keygenError struct {
	args   []string
	err    error
	stderr string
}

func (e *keygenError) Error() string {
	return "ssh-keygen " + strings.Join(e.args, " ") + ": " + e.err.Error() + ": " + strings.TrimSpace(e.stderr)
}

func mustKeygen(t testing.TB, args ...string) string {
	t.Helper()
	out, err := keygen(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newKey makes a key with ssh-keygen in a fresh directory and returns the
// path of the private key file. The .pub file is removed, so that later
// ssh-keygen -l and -y calls derive the public key from the private one.
func newKey(t testing.TB, passphrase string, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "id")
	mustKeygen(t, append([]string{"-q", "-N", passphrase, "-C", "forgelink-test", "-f", path}, args...)...)
	if err := os.Remove(path + ".pub"); err != nil {
		t.Fatal(err)
	}
	return path
}

// keygenFingerprints returns what ssh-keygen -l prints for the key in path:
// bits, MD5 (without "MD5:") and SHA-256 fingerprints.
func keygenFingerprints(t testing.TB, path string) (bits, md5, sha256 string) {
	t.Helper()
	m := strings.Fields(mustKeygen(t, "-l", "-E", "md5", "-f", path))
	s := strings.Fields(mustKeygen(t, "-l", "-E", "sha256", "-f", path))
	if len(m) < 2 || len(s) < 2 || !strings.HasPrefix(m[1], "MD5:") {
		t.Fatalf("unexpected ssh-keygen -l output: %q, %q", m, s)
	}
	return m[0], strings.TrimPrefix(m[1], "MD5:"), s[1]
}

// keygenPublic returns "type base64" of the public key ssh-keygen -y
// derives from the private key in path.
func keygenPublic(t testing.TB, path string) string {
	t.Helper()
	f := strings.Fields(mustKeygen(t, "-y", "-f", path))
	if len(f) < 2 {
		t.Fatalf("unexpected ssh-keygen -y output %q", f)
	}
	return f[0] + " " + f[1]
}

var md5Form = regexp.MustCompile(`^([0-9a-f]{2}:){15}[0-9a-f]{2}$`)

type fingerprints struct {
	Public, MD5, SHA256 string
}

// checkAgainstKeygen checks kp's public forms against ssh-keygen's reading
// of the private key file at path.
func checkAgainstKeygen(t *testing.T, kp *sshkeys.KeyPair, path string) {
	t.Helper()
	_, md5, sha256 := keygenFingerprints(t, path)
	want := fingerprints{Public: keygenPublic(t, path), MD5: md5, SHA256: sha256}
	got := fingerprints{Public: kp.AuthorizedKey, MD5: kp.FingerprintMD5, SHA256: kp.FingerprintSHA256}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("public forms differ from ssh-keygen's (-keygen +ours):\n%s", diff)
	}
	if !md5Form.MatchString(kp.FingerprintMD5) {
		t.Errorf("FingerprintMD5 = %q, want colon hex without prefix", kp.FingerprintMD5)
	}
	if strings.ContainsAny(kp.AuthorizedKey, "\r\n") {
		t.Errorf("AuthorizedKey %q is not one line", kp.AuthorizedKey)
	}
	m, s := sshkeys.Fingerprints(kp.PublicKey)
	if m != kp.FingerprintMD5 || s != kp.FingerprintSHA256 {
		t.Errorf("Fingerprints(PublicKey) = %s, %s; want the KeyPair's", m, s)
	}
}

func TestParsePrivateKeyFromSSHKeygen(t *testing.T) {
	sshKeygen(t)
	for _, tc := range []struct {
		name     string
		args     []string
		header   string
		wantType string
	}{
		{"ed25519", []string{"-t", "ed25519"}, "OPENSSH PRIVATE KEY", ssh.KeyAlgoED25519},
		{"ecdsa 256", []string{"-t", "ecdsa", "-b", "256"}, "OPENSSH PRIVATE KEY", ssh.KeyAlgoECDSA256},
		{"ecdsa 384", []string{"-t", "ecdsa", "-b", "384"}, "OPENSSH PRIVATE KEY", ssh.KeyAlgoECDSA384},
		{"ecdsa 521", []string{"-t", "ecdsa", "-b", "521"}, "OPENSSH PRIVATE KEY", ssh.KeyAlgoECDSA521},
		{"rsa 2048", []string{"-t", "rsa", "-b", "2048"}, "OPENSSH PRIVATE KEY", ssh.KeyAlgoRSA},
		{"rsa 4096", []string{"-t", "rsa", "-b", "4096"}, "OPENSSH PRIVATE KEY", ssh.KeyAlgoRSA},
		{"rsa 2048 PEM", []string{"-t", "rsa", "-b", "2048", "-m", "PEM"}, "RSA PRIVATE KEY", ssh.KeyAlgoRSA},
		{"rsa 4096 PEM", []string{"-t", "rsa", "-b", "4096", "-m", "PEM"}, "RSA PRIVATE KEY", ssh.KeyAlgoRSA},
		{"rsa 3072 PKCS8", []string{"-t", "rsa", "-b", "3072", "-m", "PKCS8"}, "PRIVATE KEY", ssh.KeyAlgoRSA},
		{"ecdsa 256 PEM", []string{"-t", "ecdsa", "-b", "256", "-m", "PEM"}, "EC PRIVATE KEY", ssh.KeyAlgoECDSA256},
		{"ecdsa 384 PEM", []string{"-t", "ecdsa", "-b", "384", "-m", "PEM"}, "EC PRIVATE KEY", ssh.KeyAlgoECDSA384},
		{"ecdsa 521 PEM", []string{"-t", "ecdsa", "-b", "521", "-m", "PEM"}, "EC PRIVATE KEY", ssh.KeyAlgoECDSA521},
		{"ecdsa 256 PKCS8", []string{"-t", "ecdsa", "-b", "256", "-m", "PKCS8"}, "PRIVATE KEY", ssh.KeyAlgoECDSA256},
		{"ecdsa 521 PKCS8", []string{"-t", "ecdsa", "-b", "521", "-m", "PKCS8"}, "PRIVATE KEY", ssh.KeyAlgoECDSA521},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := newKey(t, "", tc.args...)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if h := "-----BEGIN " + tc.header + "-----\n"; !bytes.HasPrefix(data, []byte(h)) {
				t.Fatalf("ssh-keygen wrote %.40q..., want %q", data, h)
			}
			kp, err := sshkeys.ParsePrivateKey(data)
			if err != nil {
				t.Fatalf("ParsePrivateKey: %v", err)
			}
			if !bytes.Equal(kp.PrivatePEM, data) {
				t.Error("PrivatePEM differs from the bytes given")
			}
			if got := kp.PublicKey.Type(); got != tc.wantType {
				t.Errorf("key type = %q, want %q", got, tc.wantType)
			}
			checkAgainstKeygen(t, kp, path)

			// CRLF line endings, as from a Windows editor or a web form.
			crlf := bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
			kp2, err := sshkeys.ParsePrivateKey(crlf)
			if err != nil {
				t.Fatalf("ParsePrivateKey(CRLF): %v", err)
			}
			if kp2.FingerprintSHA256 != kp.FingerprintSHA256 || !bytes.Equal(kp2.PrivatePEM, crlf) {
				t.Error("CRLF copy parsed to another key or was not kept as given")
			}
		})
	}
}

// TestParsePrivateKeyConverted covers formats this ssh-keygen does not
// write, made from keys it did write: the fingerprints must stay those
// ssh-keygen prints for the original.
func TestParsePrivateKeyConverted(t *testing.T) {
	t.Run("ed25519 PKCS8", func(t *testing.T) {
		path := newKey(t, "", "-t", "ed25519")
		raw := rawKey(t, path)
		der, err := x509.MarshalPKCS8PrivateKey(*raw.(*ed25519.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		kp, err := sshkeys.ParsePrivateKey(data)
		if err != nil {
			t.Fatalf("ParsePrivateKey: %v", err)
		}
		checkAgainstKeygen(t, kp, path)
	})
	t.Run("EC PARAMETERS then EC key", func(t *testing.T) {
		// As openssl ecparam -genkey -name prime256v1 writes it.
		path := newKey(t, "", "-t", "ecdsa", "-b", "256", "-m", "PEM")
		key, _ := os.ReadFile(path)
		params, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7})
		data := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: params}), key...)
		kp, err := sshkeys.ParsePrivateKey(data)
		if err != nil {
			t.Fatalf("ParsePrivateKey: %v", err)
		}
		if !bytes.Equal(kp.PrivatePEM, data) {
			t.Error("PrivatePEM differs from the bytes given")
		}
		checkAgainstKeygen(t, kp, path)
	})
}

func rawKey(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Reasons ParsePrivateKey must give.
const (
	reasonPassphrase = "the key is protected by a passphrase; remove it with ssh-keygen -p"
	reasonPublic     = "this is a public key"
	reasonDSA        = "DSA keys are not supported"
	reasonShortRSA   = "RSA keys shorter than 2048 bits are not accepted"
	reasonNotPEM     = "not a PEM-encoded private key"
	reasonMalformed  = "malformed key"
	reasonEmpty      = "the key is empty"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePrivateKeyRejects(t *testing.T) {
	sshKeygen(t)
	for _, tc := range []struct {
		name string
		key  func(t *testing.T) []byte
		want string // in the error message
	}{
		{"passphrase ed25519", keyFile("secret", "-t", "ed25519"), reasonPassphrase},
		{"passphrase ecdsa", keyFile("secret", "-t", "ecdsa"), reasonPassphrase},
		{"passphrase rsa", keyFile("secret", "-t", "rsa", "-b", "2048"), reasonPassphrase},
		{"passphrase rsa PEM", keyFile("secret", "-t", "rsa", "-b", "2048", "-m", "PEM"), reasonPassphrase},
		{"passphrase rsa PKCS8", keyFile("secret", "-t", "rsa", "-b", "2048", "-m", "PKCS8"), reasonPassphrase},
		{"passphrase ecdsa PEM", keyFile("secret", "-t", "ecdsa", "-m", "PEM"), reasonPassphrase},
		{"public key", publicKey("-t", "ed25519"), reasonPublic},
		{"public key rsa", publicKey("-t", "rsa", "-b", "2048"), reasonPublic},
		{"public key PKCS8 PEM", exportedPublicKey("PKCS8"), reasonPublic},
		{"public key RFC4716", exportedPublicKey("RFC4716"), reasonPublic},
		{"certificate", certificate, reasonPublic},
		{"dsa", dsaKey(""), reasonDSA},
		{"dsa PEM", dsaKey("PEM"), reasonDSA},
		{"dsa PKCS8", dsaKey("PKCS8"), reasonDSA},
		{"rsa 1024", keyFile("", "-t", "rsa", "-b", "1024"), reasonShortRSA},
		{"rsa 1024 PEM", keyFile("", "-t", "rsa", "-b", "1024", "-m", "PEM"), "the RSA key has 1024 bits"},
		{"rsa 1024 PKCS8", keyFile("", "-t", "rsa", "-b", "1024", "-m", "PKCS8"), reasonShortRSA},
		{"empty", literal(""), reasonEmpty},
		{"whitespace", literal(" \n\t\r\n"), reasonEmpty},
		{"garbage", literal("hello, I am not a key"), reasonNotPEM},
		{"binary", literal("\x00\x01\xff\xfe"), reasonNotPEM},
		{"cut in half", cut(func(b []byte) []byte { return b[:len(b)/2] }), reasonNotPEM},
		{"no END line", cut(func(b []byte) []byte { return b[:bytes.Index(b, []byte("-----END"))] }), "cut short"},
		{"middle lines lost", cut(func(b []byte) []byte {
			lines := bytes.SplitAfter(b, []byte("\n"))
			return bytes.Join(append(lines[:2:2], lines[len(lines)-3:]...), nil)
		}), reasonMalformed},
		{"bad base64", cut(func(b []byte) []byte {
			b = bytes.Clone(b)
			b[bytes.IndexByte(b, '\n')+5] = '*'
			return b
		}), reasonMalformed},
		{"text before", cut(func(b []byte) []byte { return append([]byte("my key:\n"), b...) }), "unexpected text before"},
		{"text after", cut(func(b []byte) []byte { return append(bytes.Clone(b), "thanks\n"...) }), "unexpected text after"},
		{"two keys", cut(func(b []byte) []byte { return append(bytes.Clone(b), b...) }), "more than one key"},
		{"PuTTY", literal("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n"), "PuTTY keys are not supported"},
		{"X.509 certificate", literal("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), "certificate, not a private key"},
		{"unknown PEM block", literal("-----BEGIN PGP PRIVATE KEY BLOCK-----\nMIIB\n-----END PGP PRIVATE KEY BLOCK-----\n"), `unsupported PEM block "PGP PRIVATE KEY BLOCK"`},
		{"ed25519 with a foreign public half", mismatchedEd25519, reasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := tc.key(t)
			kp, err := sshkeys.ParsePrivateKey(data)
			if err == nil {
				t.Fatalf("ParsePrivateKey succeeded (%s), want an error", kp.AuthorizedKey)
			}
			checkInvalid(t, err, data, tc.want)
		})
	}
}

// checkInvalid checks that err is Invalid, gives reason and quotes nothing
// of data.
func checkInvalid(t *testing.T, err error, data []byte, reason string) {
	t.Helper()
	if got := forgelink.KindOf(err); got != forgelink.Invalid {
		t.Errorf("error kind = %v, want invalid: %v", got, err)
	}
	if msg := forgelink.MessageOf(err); !strings.Contains(msg, reason) || !strings.HasPrefix(msg, "sshkeys: ") {
		t.Errorf("error = %q, want it to say %q", msg, reason)
	}
	if err.Error() != forgelink.MessageOf(err) {
		t.Errorf("error %q carries a cause beyond its message", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); len(line) >= 12 && !strings.HasPrefix(line, "-----") && strings.Contains(err.Error(), line[:12]) {
			t.Errorf("error %q quotes the input", err)
		}
	}
}

// TestParsePrivateKeyTruncated cuts keys at every length: each prefix must
// be refused as Invalid, never accepted and never a panic.
func TestParsePrivateKeyTruncated(t *testing.T) {
	for _, args := range [][]string{
		{"-t", "ed25519"},
		{"-t", "ecdsa", "-b", "256", "-m", "PEM"},
		{"-t", "rsa", "-b", "2048", "-m", "PEM"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			data := bytes.TrimSpace(readFile(t, newKey(t, "", args...)))
			for n := range len(data) {
				kp, err := sshkeys.ParsePrivateKey(data[:n])
				if err == nil {
					t.Fatalf("ParsePrivateKey(first %d of %d bytes) succeeded (%s)", n, len(data), kp.AuthorizedKey)
				}
				if got := forgelink.KindOf(err); got != forgelink.Invalid {
					t.Fatalf("ParsePrivateKey(first %d bytes): kind %v, want invalid: %v", n, got, err)
				}
			}
		})
	}
}

func literal(s string) func(*testing.T) []byte {
	return func(*testing.T) []byte { return []byte(s) }
}

func keyFile(passphrase string, args ...string) func(*testing.T) []byte {
	return func(t *testing.T) []byte { return readFile(t, newKey(t, passphrase, args...)) }
}

// cut returns a function that alters an ed25519 key from ssh-keygen.
func cut(f func([]byte) []byte) func(*testing.T) []byte {
	return func(t *testing.T) []byte { return f(readFile(t, newKey(t, "", "-t", "ed25519"))) }
}

func publicKey(args ...string) func(*testing.T) []byte {
	return func(t *testing.T) []byte {
		path := filepath.Join(t.TempDir(), "id")
		mustKeygen(t, append([]string{"-q", "-N", "", "-f", path}, args...)...)
		return readFile(t, path+".pub")
	}
}

// exportedPublicKey returns an RSA public key as ssh-keygen -e exports it
// in format (PKCS8: "BEGIN PUBLIC KEY"; RFC4716: "BEGIN SSH2 PUBLIC KEY").
func exportedPublicKey(format string) func(*testing.T) []byte {
	return func(t *testing.T) []byte {
		path := filepath.Join(t.TempDir(), "id")
		mustKeygen(t, "-q", "-N", "", "-t", "rsa", "-b", "2048", "-f", path)
		return []byte(mustKeygen(t, "-e", "-m", format, "-f", path+".pub"))
	}
}

// certificate returns an OpenSSH user certificate (id-cert.pub).
func certificate(t *testing.T) []byte {
	dir := t.TempDir()
	ca, id := filepath.Join(dir, "ca"), filepath.Join(dir, "id")
	mustKeygen(t, "-q", "-N", "", "-t", "ed25519", "-f", ca)
	mustKeygen(t, "-q", "-N", "", "-t", "ed25519", "-f", id)
	mustKeygen(t, "-q", "-s", ca, "-I", "forgelink-test", id+".pub")
	return readFile(t, id+"-cert.pub")
}

// dsaKey returns a DSA key from ssh-keygen in format ("" for OpenSSH). If
// this ssh-keygen no longer makes DSA keys (OpenSSH 9.8 and later), it
// falls back to a DSA key built with crypto/dsa for the PEM formats.
func dsaKey(format string) func(*testing.T) []byte {
	return func(t *testing.T) []byte {
		args := []string{"-t", "dsa"}
		if format != "" {
			args = append(args, "-m", format)
		}
		path := filepath.Join(t.TempDir(), "id")
		if _, err := keygen(t, append([]string{"-q", "-N", "", "-f", path}, args...)...); err == nil {
			return readFile(t, path)
		} else {
			t.Logf("%v; building the DSA key with crypto/dsa", err)
		}
		return goDSAKey(t, format)
	}
}

// mismatchedEd25519 returns an OpenSSH ed25519 key whose stored public
// half belongs to another key.
func mismatchedEd25519(t *testing.T) []byte {
	_, a, _ := ed25519.GenerateKey(nil)
	b, _, _ := ed25519.GenerateKey(nil)
	bad := append(append(ed25519.PrivateKey{}, a.Seed()...), b...)
	block, err := ssh.MarshalPrivateKey(bad, "")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

// TestGenerate checks our keys with ssh-keygen: it must load the private
// key and derive the same public key and fingerprints.
func TestGenerate(t *testing.T) {
	sshKeygen(t)
	for _, tc := range []struct {
		typ      sshkeys.Type
		wantType string
		wantBits string
	}{
		{"", ssh.KeyAlgoED25519, "256"},
		{sshkeys.ED25519, ssh.KeyAlgoED25519, "256"},
		{sshkeys.RSA, ssh.KeyAlgoRSA, "4096"},
	} {
		t.Run(string(tc.typ), func(t *testing.T) {
			t.Parallel()
			kp, err := sshkeys.Generate(tc.typ, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(kp.PrivatePEM, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n")) {
				t.Errorf("PrivatePEM starts %.40q, want the OpenSSH format", kp.PrivatePEM)
			}
			if !strings.HasPrefix(kp.AuthorizedKey, tc.wantType+" AAAA") || strings.Count(kp.AuthorizedKey, " ") != 1 {
				t.Errorf("AuthorizedKey = %q, want %q, a space, base64 and no comment", kp.AuthorizedKey, tc.wantType)
			}
			path := filepath.Join(t.TempDir(), "id")
			if err := os.WriteFile(path, kp.PrivatePEM, 0o600); err != nil {
				t.Fatal(err)
			}
			checkAgainstKeygen(t, kp, path)
			if bits, _, _ := keygenFingerprints(t, path); bits != tc.wantBits {
				t.Errorf("ssh-keygen -l says %s bits, want %s", bits, tc.wantBits)
			}

			// Our own parser accepts what we generate.
			again, err := sshkeys.ParsePrivateKey(kp.PrivatePEM)
			if err != nil {
				t.Fatalf("ParsePrivateKey(Generate output): %v", err)
			}
			if diff := cmp.Diff(publicForms(kp), publicForms(again)); diff != "" {
				t.Errorf("parsed key differs (-generated +parsed):\n%s", diff)
			}
		})
	}
}

func publicForms(kp *sshkeys.KeyPair) fingerprints {
	return fingerprints{Public: kp.AuthorizedKey, MD5: kp.FingerprintMD5, SHA256: kp.FingerprintSHA256}
}

func TestGenerateFresh(t *testing.T) {
	a, err := sshkeys.Generate(sshkeys.ED25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sshkeys.Generate(sshkeys.ED25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.AuthorizedKey == b.AuthorizedKey {
		t.Error("two generated keys are equal")
	}
}

func TestGenerateED25519UsesRandom(t *testing.T) {
	seed := bytes.Repeat([]byte{42}, 32)
	a, err := sshkeys.Generate(sshkeys.ED25519, bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	b, err := sshkeys.Generate(sshkeys.ED25519, bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	if a.AuthorizedKey != b.AuthorizedKey {
		t.Error("the same seed gave two keys")
	}
	if _, err := sshkeys.Generate(sshkeys.ED25519, bytes.NewReader(seed[:5])); err == nil {
		t.Error("Generate with a short random source succeeded")
	}
}

func TestGenerateUnknownType(t *testing.T) {
	for _, typ := range []sshkeys.Type{"dsa", "ecdsa", "ED25519 "} {
		_, err := sshkeys.Generate(typ, nil)
		if got := forgelink.KindOf(err); err == nil || got != forgelink.Invalid {
			t.Errorf("Generate(%q): err = %v, want invalid", typ, err)
		}
	}
}

func TestAuthorizedKeyWithComment(t *testing.T) {
	kp, err := sshkeys.Generate(sshkeys.ED25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ comment, want string }{
		{"", kp.AuthorizedKey},
		{"forgelink acme/widgets", kp.AuthorizedKey + " forgelink acme/widgets"},
		{" two\nlines\r\n", kp.AuthorizedKey + " two lines"},
	} {
		if got := kp.AuthorizedKeyWithComment(tc.comment); got != tc.want {
			t.Errorf("AuthorizedKeyWithComment(%q) = %q, want %q", tc.comment, got, tc.want)
		}
	}
}

func BenchmarkGenerateED25519(b *testing.B) {
	for b.Loop() {
		if _, err := sshkeys.Generate(sshkeys.ED25519, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerateRSA4096(b *testing.B) {
	for b.Loop() {
		if _, err := sshkeys.Generate(sshkeys.RSA, nil); err != nil {
			b.Fatal(err)
		}
	}
}
