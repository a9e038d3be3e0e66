package bolt

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"forgelink/shared/forgelink"
	"forgelink/shared/forgelink/storetest"
)

func TestUserStore(t *testing.T) {
	storetest.RunUsers(t, func(t *testing.T) forgelink.UserStore {
		return open(t, filepath.Join(t.TempDir(), "forgelink.db"))
	})
}

// bucketKeys returns the keys of the top-level bucket name.
func bucketKeys(t *testing.T, s *Store, name []byte) []string {
	t.Helper()
	var keys []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(name)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestSweepSessionsAndStates: creating a session or an OAuth state deletes
// those that expired over expirySweepMargin ago by the store's clock, with
// their index entries, and keeps the rest, including a session whose
// expiry was extended past the cutoff.
func TestSweepSessionsAndStates(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "forgelink.db"))
	ctx := t.Context()
	now := time.Now()
	s.now = func() time.Time { return now }
	old := now.Add(-2 * expirySweepMargin)
	recent := now.Add(-expirySweepMargin / 2)
	for _, sess := range []*forgelink.Session{
		{Hash: "old", UserID: "u", ExpiresAt: old},
		{Hash: "recent", UserID: "u", ExpiresAt: recent},
		{Hash: "extended", UserID: "u", ExpiresAt: old},
	} {
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ExtendSession(ctx, "extended", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for hash, exp := range map[string]time.Time{"old": old, "recent": recent} {
		if err := s.CreateOAuthState(ctx, hash, exp); err != nil {
			t.Fatal(err)
		}
	}
	// Each create sweeps; these run after the extension, so a stale index
	// entry of the extended session would take it with the old ones.
	if err := s.CreateSession(ctx, &forgelink.Session{Hash: "new", UserID: "u", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOAuthState(ctx, "new", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	if got, want := bucketKeys(t, s, sessionsBucket), []string{"extended", "new", "recent"}; !slices.Equal(got, want) {
		t.Errorf("sessions after the sweep: %q, want %q", got, want)
	}
	if got := bucketKeys(t, s, sessionExpiryBucket); len(got) != 3 {
		t.Errorf("session expiry index holds %d entries, want 3 (one per session)", len(got))
	}
	if got, want := bucketKeys(t, s, oauthStatesBucket), []string{"new", "recent"}; !slices.Equal(got, want) {
		t.Errorf("oauth states after the sweep: %q, want %q", got, want)
	}
	if got := bucketKeys(t, s, oauthExpiryBucket); len(got) != 2 {
		t.Errorf("oauth state expiry index holds %d entries, want 2", len(got))
	}
	if _, err := s.GetSession(ctx, "extended", now); err != nil {
		t.Errorf("GetSession of the extended session: %v", err)
	}
	// Deleting and consuming remove the index entries too.
	if err := s.DeleteSession(ctx, "recent"); err != nil {
		t.Fatal(err)
	}
	if err := s.ConsumeOAuthState(ctx, "new", now); err != nil {
		t.Fatal(err)
	}
	if got := bucketKeys(t, s, sessionExpiryBucket); len(got) != 2 {
		t.Errorf("after DeleteSession, session expiry index holds %d entries, want 2", len(got))
	}
	if got := bucketKeys(t, s, oauthExpiryBucket); len(got) != 1 {
		t.Errorf("after ConsumeOAuthState, oauth state expiry index holds %d entries, want 1", len(got))
	}
}

// TestAPITokenIndexes: creating and deleting a token keeps its id and
// per-user entries with it.
func TestAPITokenIndexes(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "forgelink.db"))
	ctx := t.Context()
	tok := &forgelink.APIToken{ID: "id-1", Hash: "hash-1", UserID: "github:1", CreatedAt: time.Now()}
	if err := s.CreateAPIToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if got := bucketKeys(t, s, apiTokenIDsBucket); !slices.Equal(got, []string{"id-1"}) {
		t.Errorf("api token ids: %q, want [id-1]", got)
	}
	if err := s.DeleteAPIToken(ctx, "github:1", "id-1"); err != nil {
		t.Fatal(err)
	}
	if got := bucketKeys(t, s, apiTokenIDsBucket); len(got) != 0 {
		t.Errorf("api token ids after delete: %q, want none", got)
	}
	if got := bucketKeys(t, s, apiTokensBucket); len(got) != 0 {
		t.Errorf("api tokens after delete: %q, want none", got)
	}
	var n int
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, err := projectBucket(tx, userAPITokensBucket, "github:1", false)
		if b != nil {
			n = b.Stats().KeyN
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("user's token index holds %d entries after delete, want 0", n)
	}
}
