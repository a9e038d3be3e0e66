package sealer

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"forgelink/shared/forgelink"
)

// ContextKey is the KMS encryption context key under which KMS carries the
// base64 of the aad, so that KMS itself binds a data key to its record (and
// CloudTrail shows which record a Decrypt was for).
const ContextKey = "forgelink:aad"

// KMS is a DataKeys backed by an AWS KMS symmetric key: GenerateDataKey
// (AES_256) and Decrypt, both with the encryption context
// {ContextKey: base64(aad)}. It is safe for concurrent use.
type KMS struct {
	client *kms.Client
	keyID  string
}

var _ DataKeys = (*KMS)(nil)

// NewKMS returns a KMS that makes data keys under keyID (a key ID, key ARN,
// alias name or alias ARN) with client.
func NewKMS(client *kms.Client, keyID string) *KMS {
	return &KMS{client: client, keyID: keyID}
}

// encryptionContext returns the KMS encryption context for aad. Empty aad
// gets no context at all (KMS rejects empty values), which still differs
// from the context of any non-empty aad.
func encryptionContext(aad []byte) map[string]string {
	if len(aad) == 0 {
		return nil
	}
	return map[string]string{ContextKey: base64.StdEncoding.EncodeToString(aad)}
}

// GenerateDataKey asks KMS for a fresh AES-256 data key bound to aad.
// Throttling and KMS server errors are Transient.
func (k *KMS) GenerateDataKey(ctx context.Context, aad []byte) (plaintext, wrapped []byte, err error) {
	out, err := k.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(k.keyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: encryptionContext(aad),
	})
	if err != nil {
		return nil, nil, kmsError("generate data key", err)
	}
	if len(out.Plaintext) != keySize || len(out.CiphertextBlob) == 0 {
		clear(out.Plaintext)
		return nil, nil, forgelink.Errorf(forgelink.Internal, "sealer: kms generate data key: got a %d-byte key and a %d-byte blob", len(out.Plaintext), len(out.CiphertextBlob))
	}
	return out.Plaintext, out.CiphertextBlob, nil
}

// Decrypt asks KMS to unwrap a data key made by GenerateDataKey with the
// same aad. A blob KMS cannot authenticate (altered, other aad, other key)
// fails like a ciphertext that does not open; throttling and KMS server
// errors are Transient; anything else (access denied, a disabled key) is
// Internal.
func (k *KMS) Decrypt(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	out, err := k.client.Decrypt(ctx, &kms.DecryptInput{
		KeyId:             aws.String(k.keyID),
		CiphertextBlob:    wrapped,
		EncryptionContext: encryptionContext(aad),
	})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			switch ae.ErrorCode() {
			case "InvalidCiphertextException", "IncorrectKeyException":
				return nil, errOpen()
			}
		}
		return nil, kmsError("decrypt", err)
	}
	return out.Plaintext, nil
}

// kmsError attaches a Kind to an error from KMS. The SDK's error text holds
// the operation, status, request ID and KMS's message, never the request
// body, so no key material reaches logs through it.
func kmsError(op string, err error) error {
	kind := forgelink.Internal
	if transient(err) {
		kind = forgelink.Transient
	}
	return forgelink.E(kind, "sealer: kms "+op, err)
}

// transientCodes are KMS error codes that may pass on retry.
var transientCodes = map[string]bool{
	"ThrottlingException":        true,
	"ThrottledException":         true,
	"RequestLimitExceeded":       true,
	"TooManyRequestsException":   true,
	"KMSInternalException":       true,
	"DependencyTimeoutException": true,
	"KeyUnavailableException":    true,
	"ServiceUnavailable":         true,
	"InternalFailure":            true,
}

// transient reports whether err is throttling, a 5xx, a timeout or a
// failure to reach KMS at all. The SDK has already retried such errors by
// the time they get here; Transient tells the caller that retrying later
// (an SQS redelivery, a 503) may still work.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && transientCodes[ae.ErrorCode()] {
		return true
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && status.HTTPStatusCode() != 0 { // 0: no response
		code := status.HTTPStatusCode()
		return code >= 500 || code == http.StatusTooManyRequests
	}
	var send *smithyhttp.RequestSendError
	return errors.As(err, &send)
}
