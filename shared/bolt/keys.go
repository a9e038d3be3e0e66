package bolt

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"forgelink/shared/forgelink"
)

var _ forgelink.KeyStore = (*Store)(nil)

// The key buckets, created by the first write that needs them like the
// pipeline buckets; reads treat a missing bucket as empty. Checkout and
// SSH keys live in one sub-bucket per project.
var (
	checkoutKeysBucket = []byte("checkout_keys") // slug / fingerprint → JSON forgelink.CheckoutKey
	sshKeysBucket      = []byte("ssh_keys")      // slug / sshKeyKey → JSON forgelink.SSHKeyRecord
	runnerTokensBucket = []byte("runner_tokens") // token hash → JSON forgelink.RunnerToken
)

// sshKeyKey is the key of an SSH key in its project's bucket.
func sshKeyKey(hostname, fingerprint string) []byte {
	return appendPart(appendPart(nil, fingerprint), hostname)
}

// CreateCheckoutKey stores k unless its project has a checkout key with
// its fingerprint, in which case it returns a Conflict.
func (s *Store) CreateCheckoutKey(ctx context.Context, k *forgelink.CheckoutKey) error {
	if k.FingerprintMD5 == "" {
		return fmt.Errorf("bolt: create checkout key of %s: %w", k.Project, forgelink.Errorf(forgelink.Invalid, "checkout key has no fingerprint"))
	}
	v, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("bolt: create checkout key %s of %s: %w", k.FingerprintMD5, k.Project, err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		b, err := projectBucket(tx, checkoutKeysBucket, k.Project.String(), true)
		if err != nil {
			return err
		}
		key := []byte(k.FingerprintMD5)
		if b.Get(key) != nil {
			return forgelink.Errorf(forgelink.Conflict, "project %s already has checkout key %s", k.Project, k.FingerprintMD5)
		}
		return b.Put(key, v)
	})
	if err != nil {
		return fmt.Errorf("bolt: create checkout key %s of %s: %w", k.FingerprintMD5, k.Project, err)
	}
	return nil
}

// ListCheckoutKeys returns the project's checkout keys, oldest first.
func (s *Store) ListCheckoutKeys(ctx context.Context, project forgelink.Slug) ([]*forgelink.CheckoutKey, error) {
	keys, err := listProjectBucket[forgelink.CheckoutKey](s, checkoutKeysBucket, project)
	if err != nil {
		return nil, fmt.Errorf("bolt: list checkout keys of %s: %w", project, err)
	}
	slices.SortStableFunc(keys, func(a, b *forgelink.CheckoutKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.FingerprintMD5, b.FingerprintMD5))
	})
	return keys, nil
}

// DeleteCheckoutKey removes a checkout key, or returns NotFound.
func (s *Store) DeleteCheckoutKey(ctx context.Context, project forgelink.Slug, fingerprint string) error {
	err := s.deleteFromProject(checkoutKeysBucket, project, []byte(fingerprint),
		forgelink.Errorf(forgelink.NotFound, "project %s has no checkout key %s", project, fingerprint))
	if err != nil {
		return fmt.Errorf("bolt: delete checkout key %s of %s: %w", fingerprint, project, err)
	}
	return nil
}

// CreateSSHKey stores k unless its project has a key with its (hostname,
// fingerprint), in which case it returns a Conflict.
func (s *Store) CreateSSHKey(ctx context.Context, k *forgelink.SSHKeyRecord) error {
	if k.FingerprintMD5 == "" {
		return fmt.Errorf("bolt: create ssh key of %s: %w", k.Project, forgelink.Errorf(forgelink.Invalid, "ssh key has no fingerprint"))
	}
	v, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("bolt: create ssh key %s of %s: %w", k.FingerprintMD5, k.Project, err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		b, err := projectBucket(tx, sshKeysBucket, k.Project.String(), true)
		if err != nil {
			return err
		}
		key := sshKeyKey(k.Hostname, k.FingerprintMD5)
		if b.Get(key) != nil {
			return forgelink.Errorf(forgelink.Conflict, "project %s already has ssh key %s for host %q", k.Project, k.FingerprintMD5, k.Hostname)
		}
		return b.Put(key, v)
	})
	if err != nil {
		return fmt.Errorf("bolt: create ssh key %s of %s: %w", k.FingerprintMD5, k.Project, err)
	}
	return nil
}

// ListSSHKeys returns the project's additional SSH keys, oldest first.
func (s *Store) ListSSHKeys(ctx context.Context, project forgelink.Slug) ([]*forgelink.SSHKeyRecord, error) {
	keys, err := listProjectBucket[forgelink.SSHKeyRecord](s, sshKeysBucket, project)
	if err != nil {
		return nil, fmt.Errorf("bolt: list ssh keys of %s: %w", project, err)
	}
	slices.SortStableFunc(keys, func(a, b *forgelink.SSHKeyRecord) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.Hostname, b.Hostname), cmp.Compare(a.FingerprintMD5, b.FingerprintMD5))
	})
	return keys, nil
}

// DeleteSSHKey removes an additional SSH key, or returns NotFound.
func (s *Store) DeleteSSHKey(ctx context.Context, project forgelink.Slug, hostname, fingerprint string) error {
	err := s.deleteFromProject(sshKeysBucket, project, sshKeyKey(hostname, fingerprint),
		forgelink.Errorf(forgelink.NotFound, "project %s has no ssh key %s for host %q", project, fingerprint, hostname))
	if err != nil {
		return fmt.Errorf("bolt: delete ssh key %s of %s: %w", fingerprint, project, err)
	}
	return nil
}

// listProjectBucket decodes every value of the project's sub-bucket of name.
func listProjectBucket[T any](s *Store, name []byte, project forgelink.Slug) ([]*T, error) {
	var out []*T
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, err := projectBucket(tx, name, project.String(), false)
		if err != nil || b == nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			item := new(T)
			if err := json.Unmarshal(v, item); err != nil {
				return fmt.Errorf("decode %s/%q: %w", name, k, err)
			}
			out = append(out, item)
			return nil
		})
	})
	return out, err
}

// deleteFromProject deletes key from the project's sub-bucket of name, or
// returns notFound.
func (s *Store) deleteFromProject(name []byte, project forgelink.Slug, key []byte, notFound error) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, err := projectBucket(tx, name, project.String(), false)
		if err != nil {
			return err
		}
		if b == nil || b.Get(key) == nil {
			return notFound
		}
		return b.Delete(key)
	})
}

// MintRunnerTokens stores the tokens in one transaction, all or none:
// Conflict when a token with one of their hashes exists. At most every
// runnerSweepEvery it also deletes the tokens that expired, so the bucket
// holds few dead ones without a full scan on every mint.
func (s *Store) MintRunnerTokens(ctx context.Context, ts ...*forgelink.RunnerToken) error {
	if err := forgelink.ValidRunnerTokens(ts); err != nil {
		return fmt.Errorf("bolt: mint runner tokens: %w", err)
	}
	values := make([][]byte, len(ts))
	for i, t := range ts {
		rec := *t
		rec.Used = false
		v, err := json.Marshal(&rec)
		if err != nil {
			return fmt.Errorf("bolt: mint runner token for pipeline %s: %w", t.PipelineID, err)
		}
		values[i] = v
	}
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(runnerTokensBucket)
		if err != nil {
			return err
		}
		if now := s.now(); s.sweepDue(now) {
			if err := sweepRunnerTokens(b, now); err != nil {
				return err
			}
		}
		for _, t := range ts {
			if b.Get([]byte(t.Hash)) != nil {
				return forgelink.Errorf(forgelink.Conflict, "runner token exists")
			}
		}
		for i, t := range ts {
			if err := b.Put([]byte(t.Hash), values[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: mint runner tokens for pipeline %s: %w", ts[0].PipelineID, err)
	}
	return nil
}

// runnerSweepEvery is how often minting sweeps expired runner tokens.
const runnerSweepEvery = 10 * time.Minute

// sweepDue reports whether the runner tokens are due for a sweep at now,
// and if so notes that one is made.
func (s *Store) sweepDue(now time.Time) bool {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	if !s.lastSweep.IsZero() && now.Sub(s.lastSweep) < runnerSweepEvery {
		return false
	}
	s.lastSweep = now
	return true
}

// sweepRunnerTokens deletes the tokens that expired before now.
func sweepRunnerTokens(b *bbolt.Bucket, now time.Time) error {
	var expired [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var t forgelink.RunnerToken
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("sweep runner tokens: decode: %w", err)
		}
		// A margin keeps tokens a caller with a slower clock may still use.
		if t.ExpiresAt.Before(now.Add(-time.Hour)) {
			expired = append(expired, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range expired {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("sweep runner tokens: %w", err)
		}
	}
	return nil
}

// ConsumeRunnerToken marks the token used and returns it, or returns
// Unauthorized when it is unknown, used, expired at now or an Executor
// token (which only CheckRunnerToken accepts).
func (s *Store) ConsumeRunnerToken(ctx context.Context, hash string, now time.Time) (*forgelink.RunnerToken, error) {
	var tok forgelink.RunnerToken
	err := s.db.Update(func(tx *bbolt.Tx) error {
		refused := forgelink.Errorf(forgelink.Unauthorized, "invalid, used or expired runner token")
		b := tx.Bucket(runnerTokensBucket)
		if b == nil {
			return refused
		}
		v := b.Get([]byte(hash))
		if v == nil {
			return refused
		}
		if err := json.Unmarshal(v, &tok); err != nil {
			return fmt.Errorf("decode runner token: %w", err)
		}
		if tok.Used || tok.Executor || !now.Before(tok.ExpiresAt) {
			return refused
		}
		tok.Used = true
		v, err := json.Marshal(&tok)
		if err != nil {
			return err
		}
		return b.Put([]byte(hash), v)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: consume runner token: %w", err)
	}
	return &tok, nil
}

// CheckRunnerToken returns the Executor token with this hash, or returns
// Unauthorized when it is unknown, expired at now or not an Executor
// token. It changes nothing, so a token checks any number of times.
func (s *Store) CheckRunnerToken(ctx context.Context, hash string, now time.Time) (*forgelink.RunnerToken, error) {
	var tok forgelink.RunnerToken
	err := s.db.View(func(tx *bbolt.Tx) error {
		refused := forgelink.Errorf(forgelink.Unauthorized, "invalid or expired executor token")
		b := tx.Bucket(runnerTokensBucket)
		if b == nil {
			return refused
		}
		v := b.Get([]byte(hash))
		if v == nil {
			return refused
		}
		if err := json.Unmarshal(v, &tok); err != nil {
			return fmt.Errorf("decode runner token: %w", err)
		}
		if !tok.Executor || !now.Before(tok.ExpiresAt) {
			return refused
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: check runner token: %w", err)
	}
	return &tok, nil
}
