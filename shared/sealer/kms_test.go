package sealer_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"forgelink/shared/awslocal"
	"forgelink/shared/forgelink"
	"forgelink/shared/sealer"
)

// moto is the local AWS server the KMS tests share, started on first use.
var moto struct {
	once     sync.Once
	endpoint string
	stop     func()
	err      error
}

func TestMain(m *testing.M) {
	defer func() {
		if moto.stop != nil {
			moto.stop()
		}
	}()
	m.Run()
}

func newKMSClient(endpoint string, optFns ...func(*kms.Options)) *kms.Client {
	return kms.New(kms.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	}, optFns...)
}

// kmsClient returns a client of the shared moto_server, starting it first
// if needed. A missing moto_server fails the test: KMS code is not tested
// against mocks.
func kmsClient(t *testing.T) *kms.Client {
	t.Helper()
	moto.once.Do(func() {
		moto.endpoint, moto.stop, moto.err = awslocal.Start(context.Background())
	})
	if moto.err != nil {
		t.Fatal(moto.err)
	}
	return newKMSClient(moto.endpoint)
}

func createKMSKey(t *testing.T, c *kms.Client) string {
	t.Helper()
	out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{
		Description: aws.String("forgelink sealer test " + t.Name()),
	})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

// TestKMSBindsAAD checks that KMS itself, not only the envelope, binds a
// data key to its record through the encryption context.
func TestKMSBindsAAD(t *testing.T) {
	ctx := context.Background()
	c := kmsClient(t)
	keyID := createKMSKey(t, c)
	k := sealer.NewKMS(c, keyID)
	aad := []byte("project/acme/widgets")
	key, wrapped, err := k.GenerateDataKey(ctx, aad)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != 32 {
		t.Fatalf("data key is %d bytes, want 32", len(key))
	}

	out, err := c.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob:    wrapped,
		EncryptionContext: map[string]string{sealer.ContextKey: base64.StdEncoding.EncodeToString(aad)},
	})
	if err != nil {
		t.Fatalf("KMS Decrypt with the documented encryption context: %v", err)
	}
	if !bytes.Equal(out.Plaintext, key) {
		t.Error("KMS Decrypt returned another key")
	}
	if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wrapped}); err == nil {
		t.Error("KMS Decrypt without the encryption context succeeded")
	}

	got, err := k.Decrypt(ctx, wrapped, aad)
	if err != nil || !bytes.Equal(got, key) {
		t.Errorf("Decrypt = %d bytes, %v; want the data key", len(got), err)
	}
	_, err = k.Decrypt(ctx, wrapped, []byte("project/acme/gadgets"))
	if err == nil || err.Error() != wantOpenError {
		t.Errorf("Decrypt with other aad: err = %v, want %q", err, wantOpenError)
	}
}

func TestKMSOtherKey(t *testing.T) {
	ctx := context.Background()
	c := kmsClient(t)
	s1 := sealer.NewEnvelope(sealer.NewKMS(c, createKMSKey(t, c)))
	s2 := sealer.NewEnvelope(sealer.NewKMS(c, createKMSKey(t, c)))
	blob, err := s1.Seal(ctx, secret, []byte("r"))
	if err != nil {
		t.Fatal(err)
	}
	// Real KMS answers IncorrectKeyException, moto AccessDeniedException.
	if _, err := s2.Open(ctx, blob, []byte("r")); err == nil || forgelink.KindOf(err) != forgelink.Internal {
		t.Errorf("Open under another KMS key: err = %v, want an internal error", err)
	}
}

func TestKMSUnknownKey(t *testing.T) {
	c := kmsClient(t)
	s := sealer.NewEnvelope(sealer.NewKMS(c, "alias/forgelink-does-not-exist"))
	_, err := s.Seal(context.Background(), secret, nil)
	if err == nil || forgelink.KindOf(err) != forgelink.Internal {
		t.Fatalf("Seal with an unknown key: err = %v, want an internal error", err)
	}
	if !strings.HasPrefix(err.Error(), "sealer: kms generate data key: ") {
		t.Errorf("error = %q, want the sealer: kms prefix", err)
	}
}

// TestKMSErrorKinds runs the SDK against a server that answers every call
// with a canned KMS error, since moto cannot be made to throttle.
func TestKMSErrorKinds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		code    string // JSON __type; "" for no body
		want    forgelink.Kind
		wantMsg string // exact error text, if set
	}{
		{"throttling", 400, "ThrottlingException", forgelink.Transient, ""},
		{"internal", 500, "KMSInternalException", forgelink.Transient, ""},
		{"dependency timeout", 503, "DependencyTimeoutException", forgelink.Transient, ""},
		{"key unavailable", 500, "KeyUnavailableException", forgelink.Transient, ""},
		{"bare 502", 502, "", forgelink.Transient, ""},
		{"bare 429", 429, "", forgelink.Transient, ""},
		{"access denied", 400, "AccessDeniedException", forgelink.Internal, ""},
		{"disabled", 400, "DisabledException", forgelink.Internal, ""},
		{"not found", 400, "NotFoundException", forgelink.Internal, ""},
		{"invalid ciphertext", 400, "InvalidCiphertextException", forgelink.Internal, wantOpenError},
		{"incorrect key", 400, "IncorrectKeyException", forgelink.Internal, wantOpenError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(tc.status)
				if tc.code != "" {
					w.Write([]byte(`{"__type":"` + tc.code + `","message":"canned"}`))
				}
			}))
			defer srv.Close()
			k := sealer.NewKMS(newKMSClient(srv.URL, func(o *kms.Options) { o.RetryMaxAttempts = 1 }), "alias/test")
			_, err := k.Decrypt(context.Background(), []byte("wrapped"), []byte("aad"))
			if err == nil {
				t.Fatal("Decrypt succeeded")
			}
			if got := forgelink.KindOf(err); got != tc.want {
				t.Errorf("Decrypt error kind = %v, want %v: %v", got, tc.want, err)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Errorf("Decrypt error = %q, want %q", err, tc.wantMsg)
			}
			if tc.code == "InvalidCiphertextException" || tc.code == "IncorrectKeyException" {
				return // those are only an answer to Decrypt
			}
			_, _, err = k.GenerateDataKey(context.Background(), nil)
			if got := forgelink.KindOf(err); err == nil || got != tc.want {
				t.Errorf("GenerateDataKey error kind = %v, want %v: %v", got, tc.want, err)
			}
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close() // nothing listens on its address any more
		k := sealer.NewKMS(newKMSClient(srv.URL, func(o *kms.Options) { o.RetryMaxAttempts = 1 }), "alias/test")
		_, _, err := k.GenerateDataKey(context.Background(), nil)
		if got := forgelink.KindOf(err); err == nil || got != forgelink.Transient {
			t.Errorf("GenerateDataKey error kind = %v, want transient: %v", got, err)
		}
	})
}
