package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"forgelink/shared/forgelink"
)

var _ forgelink.UserStore = (*Store)(nil)

// The user buckets, created by the first write that needs them like the
// pipeline buckets; reads treat a missing bucket as empty. Every index is
// written in the transaction that writes what it indexes, so the two never
// disagree.
var (
	usersBucket         = []byte("users")              // user id → JSON forgelink.User
	sessionsBucket      = []byte("sessions")           // hash → JSON forgelink.Session
	sessionExpiryBucket = []byte("session_expiry")     // instantKey(ExpiresAt) + hash → nothing, to sweep
	apiTokensBucket     = []byte("api_tokens")         // hash → JSON forgelink.APIToken
	apiTokenIDsBucket   = []byte("api_token_ids")      // id → hash
	userAPITokensBucket = []byte("user_api_tokens")    // user id / instantKey(CreatedAt) + id → hash
	oauthStatesBucket   = []byte("oauth_states")       // hash → instantKey(expiry)
	oauthExpiryBucket   = []byte("oauth_state_expiry") // instantKey(expiry) + hash → nothing, to sweep
)

// instantKeyLen is the length of an instantKey.
const instantKeyLen = 12

// instantKey encodes t so that keys sort by time: seconds with the sign
// bit flipped, then nanoseconds, big-endian (as recordKey does).
func instantKey(t time.Time) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, instantKeyLen), uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(k, uint32(t.Nanosecond()))
}

// instantOf decodes the instantKey at the start of k.
func instantOf(k []byte) time.Time {
	sec := int64(binary.BigEndian.Uint64(k) ^ (1 << 63))
	return time.Unix(sec, int64(binary.BigEndian.Uint32(k[8:instantKeyLen])))
}

// expirySweepMargin is how long after their expiry, by the store's clock,
// sessions and OAuth states are swept: reads decide on the caller's clock,
// which may be behind.
const expirySweepMargin = time.Hour

// sweepExpiry deletes the entries of the expiry index ix that expired
// before cutoff, and the items of main they index. Each write that adds to
// ix calls it, so a sweep removes what expired since the last one, without
// a scan of main.
func sweepExpiry(ix, main *bbolt.Bucket, cutoff time.Time) error {
	var expired [][]byte
	c := ix.Cursor()
	for k, _ := c.First(); k != nil && len(k) >= instantKeyLen && instantOf(k).Before(cutoff); k, _ = c.Next() {
		expired = append(expired, k) // k is valid for the life of the transaction
	}
	// Deleting while iterating can skip keys, so delete afterwards.
	for _, k := range expired {
		if err := main.Delete(k[instantKeyLen:]); err != nil {
			return fmt.Errorf("sweep expired: %w", err)
		}
		if err := ix.Delete(k); err != nil {
			return fmt.Errorf("sweep expired: %w", err)
		}
	}
	return nil
}

// createBuckets returns the named top-level buckets, creating them.
func createBuckets(tx *bbolt.Tx, names ...[]byte) ([]*bbolt.Bucket, error) {
	out := make([]*bbolt.Bucket, len(names))
	for i, name := range names {
		b, err := tx.CreateBucketIfNotExists(name)
		if err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", name, err)
		}
		out[i] = b
	}
	return out, nil
}

// getJSON decodes the value of key in bucket name into v and reports
// whether there was one.
func getJSON(tx *bbolt.Tx, name, key []byte, v any) (bool, error) {
	b := tx.Bucket(name)
	if b == nil {
		return false, nil
	}
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("decode %s/%q: %w", name, key, err)
	}
	return true, nil
}

// PutUser stores u, creating it or replacing the stored user whatever its
// Version, and sets u.Version to the stored version: one more than the
// replaced user's, or 1.
func (s *Store) PutUser(ctx context.Context, u *forgelink.User) error {
	if u.ID == "" {
		return fmt.Errorf("bolt: put user: %w", forgelink.Errorf(forgelink.Invalid, "user has no id"))
	}
	rec := *u
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var old forgelink.User
		found, err := getJSON(tx, usersBucket, []byte(u.ID), &old)
		if err != nil {
			return err
		}
		rec.Version = 1
		if found {
			rec.Version = old.Version + 1
		}
		return putUser(tx, &rec)
	})
	if err != nil {
		return fmt.Errorf("bolt: put user %s: %w", u.ID, err)
	}
	u.Version = rec.Version
	return nil
}

// putUser writes u under its id.
func putUser(tx *bbolt.Tx, u *forgelink.User) error {
	v, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encode user: %w", err)
	}
	b, err := tx.CreateBucketIfNotExists(usersBucket)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", usersBucket, err)
	}
	return b.Put([]byte(u.ID), v)
}

// GetUser returns the user, or NotFound.
func (s *Store) GetUser(ctx context.Context, id string) (*forgelink.User, error) {
	var u forgelink.User
	err := s.db.View(func(tx *bbolt.Tx) error {
		found, err := getJSON(tx, usersBucket, []byte(id), &u)
		if err == nil && !found {
			err = forgelink.Errorf(forgelink.NotFound, "user %s not found", id)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get user %s: %w", id, err)
	}
	return &u, nil
}

// UpdateUser replaces the user if its stored Version equals u.Version,
// then increments u.Version. It returns NotFound when the user is absent
// and Conflict when it changed meanwhile.
func (s *Store) UpdateUser(ctx context.Context, u *forgelink.User) error {
	if u.ID == "" {
		return fmt.Errorf("bolt: update user: %w", forgelink.Errorf(forgelink.Invalid, "user has no id"))
	}
	rec := *u
	rec.Version++
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var old forgelink.User
		found, err := getJSON(tx, usersBucket, []byte(u.ID), &old)
		switch {
		case err != nil:
			return err
		case !found:
			return forgelink.Errorf(forgelink.NotFound, "user %s not found", u.ID)
		case old.Version != u.Version:
			return forgelink.Errorf(forgelink.Conflict, "user %s changed meanwhile", u.ID)
		}
		return putUser(tx, &rec)
	})
	if err != nil {
		return fmt.Errorf("bolt: update user %s: %w", u.ID, err)
	}
	u.Version = rec.Version
	return nil
}

// sessionExpiryKey is the key of session hash, expiring at expiresAt, in
// the session_expiry bucket.
func sessionExpiryKey(hash string, expiresAt time.Time) []byte {
	return append(instantKey(expiresAt), hash...)
}

// CreateSession stores s, or returns a Conflict when its hash exists. It
// also sweeps the sessions that expired well before now.
func (s *Store) CreateSession(ctx context.Context, sess *forgelink.Session) error {
	if sess.Hash == "" || sess.UserID == "" || sess.ExpiresAt.IsZero() {
		return fmt.Errorf("bolt: create session: %w", forgelink.Errorf(forgelink.Invalid, "session needs a hash, a user id and an expiry time"))
	}
	v, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("bolt: create session of user %s: %w", sess.UserID, err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		bs, err := createBuckets(tx, sessionsBucket, sessionExpiryBucket)
		if err != nil {
			return err
		}
		sessions, expiry := bs[0], bs[1]
		if err := sweepExpiry(expiry, sessions, s.now().Add(-expirySweepMargin)); err != nil {
			return err
		}
		if sessions.Get([]byte(sess.Hash)) != nil {
			return forgelink.Errorf(forgelink.Conflict, "session exists")
		}
		if err := sessions.Put([]byte(sess.Hash), v); err != nil {
			return err
		}
		return expiry.Put(sessionExpiryKey(sess.Hash, sess.ExpiresAt), nil)
	})
	if err != nil {
		return fmt.Errorf("bolt: create session of user %s: %w", sess.UserID, err)
	}
	return nil
}

// GetSession returns the session with this hash, or Unauthorized when
// there is none or it has expired at now.
func (s *Store) GetSession(ctx context.Context, hash string, now time.Time) (*forgelink.Session, error) {
	var sess forgelink.Session
	err := s.db.View(func(tx *bbolt.Tx) error {
		found, err := getJSON(tx, sessionsBucket, []byte(hash), &sess)
		if err == nil && (!found || !now.Before(sess.ExpiresAt)) {
			err = forgelink.Errorf(forgelink.Unauthorized, "invalid or expired session")
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get session: %w", err)
	}
	return &sess, nil
}

// ExtendSession sets the session's expiry, or returns NotFound when it is
// gone.
func (s *Store) ExtendSession(ctx context.Context, hash string, expiresAt time.Time) error {
	if expiresAt.IsZero() {
		return fmt.Errorf("bolt: extend session: %w", forgelink.Errorf(forgelink.Invalid, "no expiry time"))
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var sess forgelink.Session
		found, err := getJSON(tx, sessionsBucket, []byte(hash), &sess)
		switch {
		case err != nil:
			return err
		case !found:
			return forgelink.Errorf(forgelink.NotFound, "session not found")
		}
		expiry, err := tx.CreateBucketIfNotExists(sessionExpiryBucket)
		if err != nil {
			return err
		}
		if err := expiry.Delete(sessionExpiryKey(hash, sess.ExpiresAt)); err != nil {
			return err
		}
		sess.ExpiresAt = expiresAt
		v, err := json.Marshal(&sess)
		if err != nil {
			return fmt.Errorf("encode session: %w", err)
		}
		if err := tx.Bucket(sessionsBucket).Put([]byte(hash), v); err != nil {
			return err
		}
		return expiry.Put(sessionExpiryKey(hash, expiresAt), nil)
	})
	if err != nil {
		return fmt.Errorf("bolt: extend session: %w", err)
	}
	return nil
}

// DeleteSession removes the session; a missing one is not an error.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var sess forgelink.Session
		found, err := getJSON(tx, sessionsBucket, []byte(hash), &sess)
		if err != nil || !found {
			return err
		}
		if err := tx.Bucket(sessionsBucket).Delete([]byte(hash)); err != nil {
			return err
		}
		if expiry := tx.Bucket(sessionExpiryBucket); expiry != nil {
			return expiry.Delete(sessionExpiryKey(hash, sess.ExpiresAt))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: delete session: %w", err)
	}
	return nil
}

// userTokenKey is the key of token t in its user's user_api_tokens bucket:
// by creation time, so the bucket lists oldest first, then by id.
func userTokenKey(t *forgelink.APIToken) []byte {
	return append(instantKey(t.CreatedAt), t.ID...)
}

// CreateAPIToken stores t and its indexes, or returns a Conflict when its
// hash or its id exists.
func (s *Store) CreateAPIToken(ctx context.Context, t *forgelink.APIToken) error {
	if t.ID == "" || t.Hash == "" || t.UserID == "" {
		return fmt.Errorf("bolt: create api token: %w", forgelink.Errorf(forgelink.Invalid, "api token needs an id, a hash and a user id"))
	}
	v, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("bolt: create api token %s of user %s: %w", t.ID, t.UserID, err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		bs, err := createBuckets(tx, apiTokensBucket, apiTokenIDsBucket)
		if err != nil {
			return err
		}
		tokens, ids := bs[0], bs[1]
		if tokens.Get([]byte(t.Hash)) != nil {
			return forgelink.Errorf(forgelink.Conflict, "api token exists")
		}
		if ids.Get([]byte(t.ID)) != nil {
			return forgelink.Errorf(forgelink.Conflict, "api token id %s is in use", t.ID)
		}
		mine, err := projectBucket(tx, userAPITokensBucket, t.UserID, true)
		if err != nil {
			return err
		}
		if err := tokens.Put([]byte(t.Hash), v); err != nil {
			return err
		}
		if err := ids.Put([]byte(t.ID), []byte(t.Hash)); err != nil {
			return err
		}
		return mine.Put(userTokenKey(t), []byte(t.Hash))
	})
	if err != nil {
		return fmt.Errorf("bolt: create api token %s of user %s: %w", t.ID, t.UserID, err)
	}
	return nil
}

// GetAPIToken returns the token with this hash, or Unauthorized.
func (s *Store) GetAPIToken(ctx context.Context, hash string) (*forgelink.APIToken, error) {
	var t forgelink.APIToken
	err := s.db.View(func(tx *bbolt.Tx) error {
		found, err := getJSON(tx, apiTokensBucket, []byte(hash), &t)
		if err == nil && !found {
			err = forgelink.Errorf(forgelink.Unauthorized, "invalid api token")
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get api token: %w", err)
	}
	return &t, nil
}

// ListAPITokens returns the user's tokens, oldest first (then by id).
func (s *Store) ListAPITokens(ctx context.Context, userID string) ([]*forgelink.APIToken, error) {
	var out []*forgelink.APIToken
	err := s.db.View(func(tx *bbolt.Tx) error {
		mine, err := projectBucket(tx, userAPITokensBucket, userID, false)
		if err != nil || mine == nil {
			return err
		}
		return mine.ForEach(func(k, hash []byte) error {
			var t forgelink.APIToken
			found, err := getJSON(tx, apiTokensBucket, hash, &t)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("index entry %q names no api token", k)
			}
			out = append(out, &t)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list api tokens of user %s: %w", userID, err)
	}
	return out, nil
}

// DeleteAPIToken removes the user's token id and its indexes, or returns
// NotFound when the user has no such token.
func (s *Store) DeleteAPIToken(ctx context.Context, userID, id string) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		notFound := forgelink.Errorf(forgelink.NotFound, "user %s has no api token %s", userID, id)
		ids := tx.Bucket(apiTokenIDsBucket)
		if ids == nil {
			return notFound
		}
		hash := ids.Get([]byte(id))
		if hash == nil {
			return notFound
		}
		hash = append([]byte(nil), hash...) // valid only until the next write
		var t forgelink.APIToken
		found, err := getJSON(tx, apiTokensBucket, hash, &t)
		switch {
		case err != nil:
			return err
		case !found:
			return fmt.Errorf("api token id %s names no api token", id)
		case t.UserID != userID:
			return notFound
		}
		mine, err := projectBucket(tx, userAPITokensBucket, userID, false)
		if err != nil {
			return err
		}
		if mine != nil {
			if err := mine.Delete(userTokenKey(&t)); err != nil {
				return err
			}
		}
		if err := ids.Delete([]byte(id)); err != nil {
			return err
		}
		return tx.Bucket(apiTokensBucket).Delete(hash)
	})
	if err != nil {
		return fmt.Errorf("bolt: delete api token %s of user %s: %w", id, userID, err)
	}
	return nil
}

// CreateOAuthState stores the state's hash until expiresAt, or returns a
// Conflict when the hash exists. It also sweeps the states that expired
// well before now.
func (s *Store) CreateOAuthState(ctx context.Context, hash string, expiresAt time.Time) error {
	if hash == "" || expiresAt.IsZero() {
		return fmt.Errorf("bolt: create oauth state: %w", forgelink.Errorf(forgelink.Invalid, "oauth state needs a hash and an expiry time"))
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		bs, err := createBuckets(tx, oauthStatesBucket, oauthExpiryBucket)
		if err != nil {
			return err
		}
		states, expiry := bs[0], bs[1]
		if err := sweepExpiry(expiry, states, s.now().Add(-expirySweepMargin)); err != nil {
			return err
		}
		if states.Get([]byte(hash)) != nil {
			return forgelink.Errorf(forgelink.Conflict, "oauth state exists")
		}
		ik := instantKey(expiresAt)
		if err := states.Put([]byte(hash), ik); err != nil {
			return err
		}
		return expiry.Put(append(ik, hash...), nil)
	})
	if err != nil {
		return fmt.Errorf("bolt: create oauth state: %w", err)
	}
	return nil
}

// ConsumeOAuthState removes the state with this hash if it has not
// expired at now, or returns Unauthorized. One transaction decides, so of
// concurrent callers exactly one succeeds. A refused state is left as it
// is.
func (s *Store) ConsumeOAuthState(ctx context.Context, hash string, now time.Time) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		refused := forgelink.Errorf(forgelink.Unauthorized, "invalid, used or expired oauth state")
		states := tx.Bucket(oauthStatesBucket)
		if states == nil {
			return refused
		}
		ik := states.Get([]byte(hash))
		switch {
		case ik == nil:
			return refused
		case len(ik) != instantKeyLen:
			return fmt.Errorf("decode oauth state: %d bytes, want %d", len(ik), instantKeyLen)
		case !now.Before(instantOf(ik)):
			return refused
		}
		ek := append(append([]byte(nil), ik...), hash...)
		if err := states.Delete([]byte(hash)); err != nil {
			return err
		}
		return tx.Bucket(oauthExpiryBucket).Delete(ek)
	})
	if err != nil {
		return fmt.Errorf("bolt: consume oauth state: %w", err)
	}
	return nil
}
