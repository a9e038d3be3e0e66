package forgelink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// CheckoutKeyType is the kind of a checkout key.
type CheckoutKeyType string

// The checkout key types. The values are CircleCI's v2 names; API v1.1
// calls a GitHub user key "github-user-key".
const (
	// CheckoutDeployKey is a key pair whose public half is a read-only
	// deploy key of the repository.
	CheckoutDeployKey CheckoutKeyType = "deploy-key"
	// CheckoutUserKey is a key pair whose public half is an SSH key of the
	// following user's account, so builds can clone every repository the
	// user can (submodules, private dependencies). On GitHub forgelink adds
	// it through the API; on Bitbucket, which has no API for it, the user
	// adds it by hand.
	CheckoutUserKey CheckoutKeyType = "user-key"
)

// CheckoutKey is a checkout key forgelink created for a project, beyond
// the deploy key every followed project has (Project.DeployKey). It is
// keyed by (Project, FingerprintMD5).
type CheckoutKey struct {
	// ID is CheckoutKeyID(FingerprintMD5); the sealed private key is bound
	// to Project.AAD(ID).
	ID                string          `json:"id"`
	Project           Slug            `json:"project"`
	Type              CheckoutKeyType `json:"type"`
	PublicKey         string          `json:"public_key"`         // authorized_keys format
	FingerprintMD5    string          `json:"fingerprint"`        // "aa:bb:...", no "MD5:"
	FingerprintSHA256 string          `json:"fingerprint_sha256"` // "SHA256:..."
	SealedPrivateKey  []byte          `json:"sealed_private_key"`
	// VCSID is the VCS's id of the installed deploy key or user key; ""
	// for a Bitbucket user key, which the user adds by hand.
	VCSID string `json:"vcs_id,omitempty"`
	// Login is the VCS account a user key belongs to ("" if unknown).
	Login     string    `json:"login,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// CheckoutKeyID returns the record id of the checkout key with the given
// MD5 fingerprint: "checkout-key/<fingerprint>".
func CheckoutKeyID(fingerprintMD5 string) string { return "checkout-key/" + fingerprintMD5 }

// AAD returns the additional authenticated data the key's private half is
// sealed with: the project and the record id.
func (k *CheckoutKey) AAD() []byte { return k.Project.AAD(CheckoutKeyID(k.FingerprintMD5)) }

// SSHKeyRecord is an additional SSH key a user gave a project for builds to
// reach another host (CircleCI's "Additional SSH Keys"). It is keyed by
// (Project, Hostname, FingerprintMD5): the same key may serve several hosts.
type SSHKeyRecord struct {
	Project Slug `json:"project"`
	// Hostname is the host the key is for; "" means every host.
	Hostname          string `json:"hostname"`
	PublicKey         string `json:"public_key"`
	FingerprintMD5    string `json:"fingerprint"`
	FingerprintSHA256 string `json:"fingerprint_sha256"`
	// SealedPrivateKey is the private key exactly as the user gave it,
	// sealed with AAD().
	SealedPrivateKey []byte    `json:"sealed_private_key"`
	CreatedAt        time.Time `json:"created_at"`
}

// SSHKeyID returns the record id of an additional SSH key:
// "ssh-key/<fingerprint>/<hostname>". The fingerprint has a fixed form, so
// the id is unambiguous whatever the hostname holds.
func SSHKeyID(hostname, fingerprintMD5 string) string {
	return "ssh-key/" + fingerprintMD5 + "/" + hostname
}

// AAD returns the additional authenticated data the key is sealed with.
func (k *SSHKeyRecord) AAD() []byte { return k.Project.AAD(SSHKeyID(k.Hostname, k.FingerprintMD5)) }

// RunnerToken is a credential scoped to one pipeline: a single-use
// checkout token for its checkout material, or (Executor) the executor's
// token for reporting its status, good until it expires. Only the SHA-256
// of the token is stored.
type RunnerToken struct {
	// Hash is HashRunnerToken of the token.
	Hash       string    `json:"hash"`
	PipelineID string    `json:"pipeline_id"`
	ExpiresAt  time.Time `json:"expires_at"`
	Used       bool      `json:"used"`
	// Executor marks a status-reporting token: CheckRunnerToken accepts
	// only these, ConsumeRunnerToken never.
	Executor bool `json:"executor,omitempty"`
}

// MaxTokensPerMint bounds MintRunnerTokens (DynamoDB writes them in one
// transaction).
const MaxTokensPerMint = 25

// ValidRunnerTokens checks tokens for MintRunnerTokens: one to
// MaxTokensPerMint, each with a hash and an expiry time, no hash twice.
func ValidRunnerTokens(ts []*RunnerToken) error {
	if len(ts) == 0 || len(ts) > MaxTokensPerMint {
		return Errorf(Invalid, "mint 1 to %d runner tokens at once, not %d", MaxTokensPerMint, len(ts))
	}
	seen := make(map[string]bool, len(ts))
	for _, t := range ts {
		if t == nil || t.Hash == "" || t.ExpiresAt.IsZero() {
			return Errorf(Invalid, "runner token needs a hash and an expiry time")
		}
		if seen[t.Hash] {
			return Errorf(Conflict, "runner token hash given twice")
		}
		seen[t.Hash] = true
	}
	return nil
}

// PipelineTokens are the tokens a pipeline's hand-off carries to its
// executor, in clear (the stores keep only their hashes).
type PipelineTokens struct {
	// Runner is the single-use checkout token.
	Runner          string
	RunnerExpiresAt time.Time
	// Executor is the status-reporting token; "" when none was minted.
	Executor          string
	ExecutorExpiresAt time.Time
}

// ExecutorTokenPrefix starts every executor token, so that an API can tell
// it from an API token without a store lookup.
const ExecutorTokenPrefix = "fle_"

// HashRunnerToken returns the hex SHA-256 of a runner token, the form in
// which stores keep it. The token is random, so a plain hash is enough.
func HashRunnerToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// KeyStore persists checkout keys, additional SSH keys and runner tokens.
// Creates are conditional, so concurrent callers get exactly one winner
// and the others a Conflict.
type KeyStore interface {
	// CreateCheckoutKey stores k unless the project has a checkout key with
	// k's FingerprintMD5 (Conflict).
	CreateCheckoutKey(ctx context.Context, k *CheckoutKey) error
	// ListCheckoutKeys returns the project's checkout keys, oldest first.
	ListCheckoutKeys(ctx context.Context, project Slug) ([]*CheckoutKey, error)
	// DeleteCheckoutKey removes a checkout key, or returns NotFound.
	DeleteCheckoutKey(ctx context.Context, project Slug, fingerprintMD5 string) error

	// CreateSSHKey stores k unless the project has a key with k's
	// (Hostname, FingerprintMD5) (Conflict).
	CreateSSHKey(ctx context.Context, k *SSHKeyRecord) error
	// ListSSHKeys returns the project's additional SSH keys, oldest first.
	ListSSHKeys(ctx context.Context, project Slug) ([]*SSHKeyRecord, error)
	// DeleteSSHKey removes an additional SSH key, or returns NotFound.
	DeleteSSHKey(ctx context.Context, project Slug, hostname, fingerprintMD5 string) error

	// MintRunnerTokens stores the tokens (each with Hash and ExpiresAt
	// set; Used is stored false) in one write, all or none: Conflict when
	// a token with one of their hashes exists. Stores may forget a token
	// after its ExpiresAt. A pipeline's hand-off mints its checkout and
	// executor tokens together.
	MintRunnerTokens(ctx context.Context, ts ...*RunnerToken) error
	// ConsumeRunnerToken marks the token with this hash used and returns
	// it, if it exists, is unused and has not expired at now; otherwise it
	// returns Unauthorized and changes nothing. Of concurrent callers with
	// one token, exactly one succeeds.
	//
	// An Executor token is never consumed: Unauthorized.
	ConsumeRunnerToken(ctx context.Context, hash string, now time.Time) (*RunnerToken, error)
	// CheckRunnerToken returns the Executor token with this hash if it
	// exists and has not expired at now, changing nothing; otherwise
	// Unauthorized.
	CheckRunnerToken(ctx context.Context, hash string, now time.Time) (*RunnerToken, error)
}
