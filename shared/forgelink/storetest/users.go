package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/forgelink"
)

// RunUsers runs the UserStore contract against the stores newStore
// returns. Every subtest gets a new, empty store.
//
//	func TestUserStore(t *testing.T) {
//		storetest.RunUsers(t, func(t *testing.T) forgelink.UserStore { return newStore(t) })
//	}
//
// Beyond the forgelink.UserStore comments, RunUsers requires: Invalid for
// a user without an id, a session without a hash, a user id or an expiry,
// an API token without an id, a hash or a user id, and an OAuth state
// without a hash or an expiry; Conflict from CreateOAuthState for a hash
// that exists; expiry compared to the instant (a session or state has
// expired at its ExpiresAt); a refused (expired) OAuth state left
// unconsumed; a failed CreateAPIToken leaving nothing behind; tokens of
// equal CreatedAt listed by id; sealed bytes kept as they are; and times
// kept to the millisecond.
func RunUsers(t *testing.T, newStore func(t *testing.T) forgelink.UserStore) {
	t.Run("UserRoundTrip", func(t *testing.T) { testUserRoundTrip(t, newStore) })
	t.Run("PutUserReplaces", func(t *testing.T) { testPutUserReplaces(t, newStore) })
	t.Run("UpdateUser", func(t *testing.T) { testUpdateUser(t, newStore) })
	t.Run("UpdateUserStale", func(t *testing.T) { testUpdateUserStale(t, newStore) })
	t.Run("UserNotFound", func(t *testing.T) { testUserNotFound(t, newStore) })
	t.Run("Session", func(t *testing.T) { testSession(t, newStore) })
	t.Run("SessionExpired", func(t *testing.T) { testSessionExpired(t, newStore) })
	t.Run("ExtendSession", func(t *testing.T) { testExtendSession(t, newStore) })
	t.Run("DeleteSession", func(t *testing.T) { testDeleteSession(t, newStore) })
	t.Run("SessionConflict", func(t *testing.T) { testSessionConflict(t, newStore) })
	t.Run("APITokens", func(t *testing.T) { testAPITokens(t, newStore) })
	t.Run("DeleteAPIToken", func(t *testing.T) { testDeleteAPIToken(t, newStore) })
	t.Run("APITokenConflict", func(t *testing.T) { testAPITokenConflict(t, newStore) })
	t.Run("OAuthState", func(t *testing.T) { testOAuthState(t, newStore) })
	t.Run("OAuthStateExpired", func(t *testing.T) { testOAuthStateExpired(t, newStore) })
	t.Run("UsersInvalid", func(t *testing.T) { testUsersInvalid(t, newStore) })
	t.Run("Concurrent", func(t *testing.T) {
		t.Run("UpdateUser", func(t *testing.T) { testConcurrentUpdateUser(t, newStore) })
		t.Run("ConsumeOAuthState", func(t *testing.T) { testConcurrentConsumeOAuthState(t, newStore) })
		t.Run("CreateAPIToken", func(t *testing.T) { testConcurrentCreateAPIToken(t, newStore) })
	})
}

// userRacers is how many goroutines race in the user concurrency tests.
const userRacers = 8

// secretHash is the hex SHA-256 of secret, as sessions, API tokens and
// OAuth states are stored.
func secretHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// user returns a user with every field set.
func user(vcs forgelink.VCS, vcsUserID, login string) *forgelink.User {
	return &forgelink.User{
		ID:            forgelink.UserID(vcs, vcsUserID),
		VCS:           vcs,
		VCSUserID:     vcsUserID,
		Login:         login,
		Name:          "The " + login,
		SealedToken:   []byte{0x00, 0x01, 0xfe, 0xff, 't', 'o', 'k', 0x80},
		SealedRefresh: []byte{0xff, 0x00, 'r', 'e', 'f'},
		// A non-UTC location: stores must keep the instant, not the zone.
		TokenExpiry: base.Add(8 * time.Hour).In(time.FixedZone("UTC-3", -3*3600)),
		Scopes:      []string{"repo", "admin:repo_hook", "admin:public_key", "user:email"},
		CreatedAt:   base.Add(-24 * time.Hour),
		UpdatedAt:   base,
	}
}

// cloneUser returns a deep copy of u.
func cloneUser(u *forgelink.User) *forgelink.User {
	c := *u
	c.SealedToken = append([]byte(nil), u.SealedToken...)
	c.SealedRefresh = append([]byte(nil), u.SealedRefresh...)
	c.Scopes = append([]string(nil), u.Scopes...)
	return &c
}

func mustPutUser(t *testing.T, s forgelink.UserStore, u *forgelink.User, wantVersion int64) {
	t.Helper()
	if err := s.PutUser(t.Context(), u); err != nil {
		t.Fatalf("PutUser(%s): %v", u.ID, err)
	}
	if u.Version != wantVersion {
		t.Fatalf("after PutUser(%s), Version = %d, want %d", u.ID, u.Version, wantVersion)
	}
}

// checkUser checks that the store holds want under its id.
func checkUser(t *testing.T, s forgelink.UserStore, want *forgelink.User) {
	t.Helper()
	got, err := s.GetUser(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("GetUser(%s): %v", want.ID, err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("GetUser(%s) mismatch (-want +got):\n%s", want.ID, diff)
	}
}

func testUserRoundTrip(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	u := user(forgelink.GitHub, "583231", "octocat")
	_, err := s.GetUser(t.Context(), u.ID)
	wantKind(t, "GetUser before PutUser", err, forgelink.NotFound)
	u.Version = 42 // ignored: a new user is version 1
	mustPutUser(t, s, u, 1)
	want := cloneUser(u)
	// The caller's slices are not the store's.
	u.SealedToken[0], u.Scopes[0] = 0xaa, "changed"
	checkUser(t, s, want)

	// Another VCS's user with the same numeric id, and ids that differ only
	// in characters a key may escape, are other users.
	bb := user(forgelink.Bitbucket, "583231", "octocat")
	bb.SealedRefresh = nil
	bb.TokenExpiry = time.Time{}
	esc1 := user(forgelink.Bitbucket, "{1#2}", "hash")
	esc2 := user(forgelink.Bitbucket, "{1%232}", "percent")
	for _, o := range []*forgelink.User{bb, esc1, esc2} {
		mustPutUser(t, s, o, 1)
	}
	for _, o := range []*forgelink.User{want, bb, esc1, esc2} {
		checkUser(t, s, o)
	}
}

func testPutUserReplaces(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	first := user(forgelink.GitHub, "583231", "octocat")
	mustPutUser(t, s, first, 1)
	other := user(forgelink.GitHub, "1", "other")
	mustPutUser(t, s, other, 1)

	// A new sign-in: new login, token and scopes, no refresh token. Its
	// Version is whatever the caller has; the put replaces regardless.
	again := user(forgelink.GitHub, "583231", "octocat-renamed")
	again.SealedToken = []byte("new sealed token")
	again.SealedRefresh = nil
	again.Scopes = []string{"repo"}
	again.UpdatedAt = base.Add(time.Hour)
	mustPutUser(t, s, again, 2)
	checkUser(t, s, again)

	third := cloneUser(again)
	third.Version = 7
	third.Login = "octocat-third"
	mustPutUser(t, s, third, 3)
	checkUser(t, s, third)
	checkUser(t, s, other)

	// An update from the version PutUser returned succeeds.
	third.Name = "updated"
	if err := s.UpdateUser(t.Context(), third); err != nil {
		t.Fatalf("UpdateUser after PutUser: %v", err)
	}
	if third.Version != 4 {
		t.Errorf("after UpdateUser, Version = %d, want 4", third.Version)
	}
	checkUser(t, s, third)
}

func testUpdateUser(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	u := user(forgelink.Bitbucket, "{8c2f}", "octocat")
	mustPutUser(t, s, u, 1)
	got, err := s.GetUser(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	got.SealedToken = []byte("refreshed")
	got.SealedRefresh = []byte("rotated refresh")
	got.TokenExpiry = base.Add(10 * time.Hour)
	got.UpdatedAt = base.Add(2 * time.Hour)
	for want := int64(2); want <= 3; want++ {
		if err := s.UpdateUser(t.Context(), got); err != nil {
			t.Fatalf("UpdateUser to version %d: %v", want, err)
		}
		if got.Version != want {
			t.Fatalf("after UpdateUser, Version = %d, want %d", got.Version, want)
		}
		checkUser(t, s, got)
	}
}

func testUpdateUserStale(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	u := user(forgelink.GitHub, "583231", "octocat")
	mustPutUser(t, s, u, 1)
	a, b := cloneUser(u), cloneUser(u)
	a.SealedToken = []byte("a")
	if err := s.UpdateUser(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	b.SealedToken = []byte("b")
	wantKind(t, "UpdateUser from a stale version", s.UpdateUser(t.Context(), b), forgelink.Conflict)
	if b.Version != 1 {
		t.Errorf("after a lost UpdateUser, Version = %d, want 1 (unchanged)", b.Version)
	}
	checkUser(t, s, a)

	// A version ahead of the stored one is no better.
	c := cloneUser(a)
	c.Version = a.Version + 1
	wantKind(t, "UpdateUser from a version ahead", s.UpdateUser(t.Context(), c), forgelink.Conflict)
	checkUser(t, s, a)

	// A put in between makes the read stale too.
	read := cloneUser(a)
	mustPutUser(t, s, user(forgelink.GitHub, "583231", "octocat"), 3)
	wantKind(t, "UpdateUser after a PutUser", s.UpdateUser(t.Context(), read), forgelink.Conflict)
}

func testUserNotFound(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	mustPutUser(t, s, user(forgelink.GitHub, "1", "someone"), 1)
	u := user(forgelink.GitHub, "583231", "octocat")
	_, err := s.GetUser(t.Context(), u.ID)
	wantKind(t, "GetUser of an unknown user", err, forgelink.NotFound)
	u.Version = 1
	wantKind(t, "UpdateUser of an unknown user", s.UpdateUser(t.Context(), u), forgelink.NotFound)
	if u.Version != 1 {
		t.Errorf("after a failed UpdateUser, Version = %d, want 1", u.Version)
	}
	u.Version = 0
	wantKind(t, "UpdateUser of an unknown user at version 0", s.UpdateUser(t.Context(), u), forgelink.NotFound)
	_, err = s.GetUser(t.Context(), u.ID)
	wantKind(t, "GetUser after a failed UpdateUser", err, forgelink.NotFound)
}

// session returns a session for userID that expires in SessionTTL from
// now, with times at millisecond precision.
func session(hash, userID string, now time.Time) *forgelink.Session {
	return &forgelink.Session{
		Hash:      secretHash(hash),
		UserID:    userID,
		CSRF:      "csrf-" + hash,
		CreatedAt: now.Add(-time.Minute),
		ExpiresAt: now.Add(forgelink.SessionTTL).In(time.FixedZone("UTC+2", 2*3600)),
	}
}

// sessionNow is the time the session tests run at: now, to the
// millisecond, so a store may sweep what has expired by its own clock.
func sessionNow() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

func mustCreateSession(t *testing.T, s forgelink.UserStore, sess *forgelink.Session) {
	t.Helper()
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession(user %s): %v", sess.UserID, err)
	}
}

// checkSession checks that GetSession(want.Hash, now) returns want.
func checkSession(t *testing.T, s forgelink.UserStore, want *forgelink.Session, now time.Time) {
	t.Helper()
	got, err := s.GetSession(t.Context(), want.Hash, now)
	if err != nil {
		t.Fatalf("GetSession at %v: %v", now, err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("GetSession mismatch (-want +got):\n%s", diff)
	}
}

func testSession(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	now := sessionNow()
	a := session("a", "github:1", now)
	b := session("b", "github:1", now) // a second browser of the same user
	c := session("c", "github:2", now)
	for _, sess := range []*forgelink.Session{a, b, c} {
		mustCreateSession(t, s, sess)
	}
	for _, sess := range []*forgelink.Session{a, b, c} {
		checkSession(t, s, sess, now)
	}
	_, err := s.GetSession(t.Context(), secretHash("unknown"), now)
	wantKind(t, "GetSession of an unknown hash", err, forgelink.Unauthorized)
	_, err = s.GetSession(t.Context(), "", now)
	wantKind(t, "GetSession of an empty hash", err, forgelink.Unauthorized)
	// Reads change nothing.
	checkSession(t, s, a, now.Add(time.Hour))
}

func testSessionExpired(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	now := sessionNow()
	sess := session("a", "github:1", now)
	sess.ExpiresAt = now.Add(time.Hour + 123*time.Millisecond)
	mustCreateSession(t, s, sess)
	for _, at := range []time.Time{sess.ExpiresAt, sess.ExpiresAt.Add(time.Millisecond), sess.ExpiresAt.Add(24 * time.Hour)} {
		got, err := s.GetSession(t.Context(), sess.Hash, at)
		wantKind(t, fmt.Sprintf("GetSession %v after expiry", at.Sub(sess.ExpiresAt)), err, forgelink.Unauthorized)
		if got != nil {
			t.Errorf("GetSession returned %+v with its error, want nil", got)
		}
	}
	// Refused at a later time, still good before its expiry.
	checkSession(t, s, sess, sess.ExpiresAt.Add(-time.Millisecond))
}

func testExtendSession(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	now := sessionNow()
	sess := session("a", "github:1", now)
	sess.ExpiresAt = now.Add(time.Hour)
	other := session("b", "github:1", now)
	other.ExpiresAt = now.Add(time.Hour)
	mustCreateSession(t, s, sess)
	mustCreateSession(t, s, other)

	later := now.Add(forgelink.SessionTTL + 357*time.Millisecond)
	if err := s.ExtendSession(t.Context(), sess.Hash, later); err != nil {
		t.Fatalf("ExtendSession: %v", err)
	}
	want := *sess
	want.ExpiresAt = later
	checkSession(t, s, &want, now.Add(2*time.Hour))
	_, err := s.GetSession(t.Context(), want.Hash, later)
	wantKind(t, "GetSession at its extended expiry", err, forgelink.Unauthorized)
	// Only that session moved.
	_, err = s.GetSession(t.Context(), other.Hash, now.Add(2*time.Hour))
	wantKind(t, "GetSession of the session not extended, after its expiry", err, forgelink.Unauthorized)

	// Extending twice keeps the last expiry.
	again := now.Add(3 * time.Hour)
	if err := s.ExtendSession(t.Context(), sess.Hash, again); err != nil {
		t.Fatalf("ExtendSession again: %v", err)
	}
	want.ExpiresAt = again
	checkSession(t, s, &want, now.Add(2*time.Hour))

	wantKind(t, "ExtendSession of an unknown session", s.ExtendSession(t.Context(), secretHash("unknown"), later), forgelink.NotFound)
	_, err = s.GetSession(t.Context(), secretHash("unknown"), now)
	wantKind(t, "GetSession after ExtendSession of an unknown session", err, forgelink.Unauthorized)
}

func testDeleteSession(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	now := sessionNow()
	a, b := session("a", "github:1", now), session("b", "github:1", now)
	mustCreateSession(t, s, a)
	mustCreateSession(t, s, b)
	if err := s.DeleteSession(t.Context(), a.Hash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	_, err := s.GetSession(t.Context(), a.Hash, now)
	wantKind(t, "GetSession after DeleteSession", err, forgelink.Unauthorized)
	checkSession(t, s, b, now)
	if err := s.DeleteSession(t.Context(), a.Hash); err != nil {
		t.Errorf("DeleteSession of a deleted session: %v, want nil", err)
	}
	if err := s.DeleteSession(t.Context(), secretHash("unknown")); err != nil {
		t.Errorf("DeleteSession of an unknown session: %v, want nil", err)
	}
	wantKind(t, "ExtendSession after DeleteSession", s.ExtendSession(t.Context(), a.Hash, now.Add(time.Hour)), forgelink.NotFound)
	_, err = s.GetSession(t.Context(), a.Hash, now)
	wantKind(t, "GetSession after ExtendSession of a deleted session", err, forgelink.Unauthorized)
	// A deleted session's hash can be used again.
	mustCreateSession(t, s, a)
	checkSession(t, s, a, now)
}

func testSessionConflict(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	now := sessionNow()
	first := session("a", "github:1", now)
	mustCreateSession(t, s, first)
	dup := session("a", "github:2", now)
	dup.CSRF = "other"
	wantKind(t, "CreateSession with a taken hash", s.CreateSession(t.Context(), dup), forgelink.Conflict)
	checkSession(t, s, first, now)
}

// apiToken returns user's token n, created n minutes after base.
func apiToken(userID string, n int) *forgelink.APIToken {
	return &forgelink.APIToken{
		ID:        fmt.Sprintf("tok-%s-%d", userID, n),
		Hash:      secretHash(fmt.Sprintf("secret-%s-%d", userID, n)),
		UserID:    userID,
		Label:     fmt.Sprintf("laptop %d", n),
		CreatedAt: base.Add(time.Duration(n) * time.Minute).In(time.FixedZone("UTC+9", 9*3600)),
	}
}

func mustCreateAPIToken(t *testing.T, s forgelink.UserStore, tok *forgelink.APIToken) {
	t.Helper()
	if err := s.CreateAPIToken(t.Context(), tok); err != nil {
		t.Fatalf("CreateAPIToken(%s of %s): %v", tok.ID, tok.UserID, err)
	}
}

// checkAPIToken checks that GetAPIToken(want.Hash) returns want.
func checkAPIToken(t *testing.T, s forgelink.UserStore, want *forgelink.APIToken) {
	t.Helper()
	got, err := s.GetAPIToken(t.Context(), want.Hash)
	if err != nil {
		t.Fatalf("GetAPIToken(%s): %v", want.ID, err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("GetAPIToken(%s) mismatch (-want +got):\n%s", want.ID, diff)
	}
}

// checkAPITokens checks that ListAPITokens(userID) returns want.
func checkAPITokens(t *testing.T, s forgelink.UserStore, userID string, want []*forgelink.APIToken) {
	t.Helper()
	got, err := s.ListAPITokens(t.Context(), userID)
	if err != nil {
		t.Fatalf("ListAPITokens(%s): %v", userID, err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("ListAPITokens(%s) mismatch (-want +got):\n%s", userID, diff)
	}
}

func testAPITokens(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	const alice, bob = "github:1", "bitbucket:{2#3}"
	checkAPITokens(t, s, alice, nil)
	// Created out of order: the listing is oldest first; equal times by id.
	a3, a1, a2 := apiToken(alice, 3), apiToken(alice, 1), apiToken(alice, 2)
	a2b := apiToken(alice, 2)
	a2b.ID, a2b.Hash = "tok-github:1-2-b", secretHash("secret-2b")
	b1 := apiToken(bob, 1)
	b1.CreatedAt = a1.CreatedAt // same time, another user
	for _, tok := range []*forgelink.APIToken{a3, a2b, b1, a1, a2} {
		mustCreateAPIToken(t, s, tok)
	}
	for _, tok := range []*forgelink.APIToken{a1, a2, a2b, a3, b1} {
		checkAPIToken(t, s, tok)
	}
	checkAPITokens(t, s, alice, []*forgelink.APIToken{a1, a2, a2b, a3})
	checkAPITokens(t, s, bob, []*forgelink.APIToken{b1})
	checkAPITokens(t, s, "github:3", nil)
	// A user id that is a prefix of another's lists only its own.
	checkAPITokens(t, s, "github:", nil)

	_, err := s.GetAPIToken(t.Context(), secretHash("unknown"))
	wantKind(t, "GetAPIToken of an unknown hash", err, forgelink.Unauthorized)
	_, err = s.GetAPIToken(t.Context(), "")
	wantKind(t, "GetAPIToken of an empty hash", err, forgelink.Unauthorized)
}

func testDeleteAPIToken(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	const alice, bob = "github:1", "github:2"
	a1, a2, b1 := apiToken(alice, 1), apiToken(alice, 2), apiToken(bob, 1)
	for _, tok := range []*forgelink.APIToken{a1, a2, b1} {
		mustCreateAPIToken(t, s, tok)
	}
	if err := s.DeleteAPIToken(t.Context(), alice, a1.ID); err != nil {
		t.Fatalf("DeleteAPIToken: %v", err)
	}
	_, err := s.GetAPIToken(t.Context(), a1.Hash)
	wantKind(t, "GetAPIToken after DeleteAPIToken", err, forgelink.Unauthorized)
	checkAPITokens(t, s, alice, []*forgelink.APIToken{a2})
	wantKind(t, "DeleteAPIToken again", s.DeleteAPIToken(t.Context(), alice, a1.ID), forgelink.NotFound)
	wantKind(t, "DeleteAPIToken of an unknown id", s.DeleteAPIToken(t.Context(), alice, "no-such-token"), forgelink.NotFound)

	// Another user's token cannot be deleted, and stays.
	wantKind(t, "DeleteAPIToken of another user's token", s.DeleteAPIToken(t.Context(), alice, b1.ID), forgelink.NotFound)
	checkAPIToken(t, s, b1)
	checkAPITokens(t, s, bob, []*forgelink.APIToken{b1})
	checkAPITokens(t, s, alice, []*forgelink.APIToken{a2})

	// Once deleted, the hash and the id are free again.
	mustCreateAPIToken(t, s, a1)
	checkAPIToken(t, s, a1)
	checkAPITokens(t, s, alice, []*forgelink.APIToken{a1, a2})
}

func testAPITokenConflict(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	const alice, bob = "github:1", "github:2"
	first := apiToken(alice, 1)
	mustCreateAPIToken(t, s, first)

	sameHash := apiToken(bob, 5)
	sameHash.Hash = first.Hash
	wantKind(t, "CreateAPIToken with a taken hash", s.CreateAPIToken(t.Context(), sameHash), forgelink.Conflict)

	sameID := apiToken(alice, 6)
	sameID.ID = first.ID
	wantKind(t, "CreateAPIToken with a taken id", s.CreateAPIToken(t.Context(), sameID), forgelink.Conflict)
	otherUserSameID := apiToken(bob, 7)
	otherUserSameID.ID = first.ID
	wantKind(t, "CreateAPIToken with another user's id", s.CreateAPIToken(t.Context(), otherUserSameID), forgelink.Conflict)

	// The lost creates left nothing behind.
	checkAPIToken(t, s, first)
	for _, lost := range []*forgelink.APIToken{sameID, otherUserSameID} {
		_, err := s.GetAPIToken(t.Context(), lost.Hash)
		wantKind(t, "GetAPIToken of a lost create", err, forgelink.Unauthorized)
	}
	checkAPITokens(t, s, alice, []*forgelink.APIToken{first})
	checkAPITokens(t, s, bob, nil)
	// Deleting the token deletes the first one only.
	if err := s.DeleteAPIToken(t.Context(), alice, first.ID); err != nil {
		t.Fatal(err)
	}
	checkAPITokens(t, s, alice, nil)
}

func testOAuthState(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	now := sessionNow()
	h, other := secretHash("state"), secretHash("other")
	for _, hash := range []string{h, other} {
		if err := s.CreateOAuthState(t.Context(), hash, now.Add(10*time.Minute)); err != nil {
			t.Fatalf("CreateOAuthState: %v", err)
		}
	}
	wantKind(t, "CreateOAuthState with a taken hash", s.CreateOAuthState(t.Context(), h, now.Add(time.Hour)), forgelink.Conflict)
	wantKind(t, "ConsumeOAuthState of an unknown state", s.ConsumeOAuthState(t.Context(), secretHash("unknown"), now), forgelink.Unauthorized)
	if err := s.ConsumeOAuthState(t.Context(), h, now); err != nil {
		t.Fatalf("ConsumeOAuthState: %v", err)
	}
	wantKind(t, "ConsumeOAuthState again", s.ConsumeOAuthState(t.Context(), h, now), forgelink.Unauthorized)
	// The other state is still good, once.
	if err := s.ConsumeOAuthState(t.Context(), other, now.Add(time.Minute)); err != nil {
		t.Fatalf("ConsumeOAuthState of the other state: %v", err)
	}
	wantKind(t, "ConsumeOAuthState of the other state again", s.ConsumeOAuthState(t.Context(), other, now), forgelink.Unauthorized)
}

func testOAuthStateExpired(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	now := sessionNow()
	h := secretHash("state")
	expires := now.Add(10*time.Minute + 250*time.Millisecond)
	if err := s.CreateOAuthState(t.Context(), h, expires); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{expires, expires.Add(time.Millisecond), expires.Add(time.Hour)} {
		wantKind(t, fmt.Sprintf("ConsumeOAuthState %v after expiry", at.Sub(expires)), s.ConsumeOAuthState(t.Context(), h, at), forgelink.Unauthorized)
	}
	// Refused, not consumed: good once for a caller whose clock says it
	// has not expired.
	if err := s.ConsumeOAuthState(t.Context(), h, expires.Add(-time.Millisecond)); err != nil {
		t.Errorf("ConsumeOAuthState just before expiry, after refused late tries: %v", err)
	}
	wantKind(t, "ConsumeOAuthState after it was consumed", s.ConsumeOAuthState(t.Context(), h, now), forgelink.Unauthorized)

	past := secretHash("past")
	if err := s.CreateOAuthState(t.Context(), past, now.Add(-time.Minute)); err != nil {
		t.Fatalf("CreateOAuthState of an expired state: %v", err)
	}
	wantKind(t, "ConsumeOAuthState of a state created expired", s.ConsumeOAuthState(t.Context(), past, now), forgelink.Unauthorized)
}

func testUsersInvalid(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	ctx := t.Context()
	now := sessionNow()
	noID := user(forgelink.GitHub, "1", "x")
	noID.ID = ""
	sess := func(f func(*forgelink.Session)) *forgelink.Session {
		x := session("a", "github:1", now)
		f(x)
		return x
	}
	tok := func(f func(*forgelink.APIToken)) *forgelink.APIToken {
		x := apiToken("github:1", 1)
		f(x)
		return x
	}
	tests := []struct {
		name string
		err  error
	}{
		{"PutUser without id", s.PutUser(ctx, cloneUser(noID))},
		{"UpdateUser without id", s.UpdateUser(ctx, cloneUser(noID))},
		{"CreateSession without hash", s.CreateSession(ctx, sess(func(x *forgelink.Session) { x.Hash = "" }))},
		{"CreateSession without user", s.CreateSession(ctx, sess(func(x *forgelink.Session) { x.UserID = "" }))},
		{"CreateSession without expiry", s.CreateSession(ctx, sess(func(x *forgelink.Session) { x.ExpiresAt = time.Time{} }))},
		{"CreateAPIToken without id", s.CreateAPIToken(ctx, tok(func(x *forgelink.APIToken) { x.ID = "" }))},
		{"CreateAPIToken without hash", s.CreateAPIToken(ctx, tok(func(x *forgelink.APIToken) { x.Hash = "" }))},
		{"CreateAPIToken without user", s.CreateAPIToken(ctx, tok(func(x *forgelink.APIToken) { x.UserID = "" }))},
		{"CreateOAuthState without hash", s.CreateOAuthState(ctx, "", now.Add(time.Minute))},
		{"CreateOAuthState without expiry", s.CreateOAuthState(ctx, "h", time.Time{})},
	}
	for _, tc := range tests {
		wantKind(t, tc.name, tc.err, forgelink.Invalid)
	}
	// Nothing was stored.
	_, err := s.GetSession(ctx, session("a", "github:1", now).Hash, now)
	wantKind(t, "GetSession after refused creates", err, forgelink.Unauthorized)
	checkAPITokens(t, s, "github:1", nil)
}

func testConcurrentUpdateUser(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	u := user(forgelink.GitHub, "583231", "octocat")
	mustPutUser(t, s, u, 1)
	read, err := s.GetUser(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	us := make([]*forgelink.User, userRacers)
	for i := range us {
		us[i] = cloneUser(read)
		us[i].SealedToken = []byte(fmt.Sprintf("refreshed by %d", i))
	}
	errs := race(userRacers, func(i int) error { return s.UpdateUser(context.Background(), us[i]) })
	w := oneWinner(t, errs, forgelink.Conflict)
	for i, x := range us {
		want := read.Version
		if i == w {
			want++
		}
		if x.Version != want {
			t.Errorf("writer %d: Version = %d, want %d", i, x.Version, want)
		}
	}
	checkUser(t, s, us[w])
}

func testConcurrentConsumeOAuthState(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	h := secretHash("state")
	if err := s.CreateOAuthState(t.Context(), h, time.Now().Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	errs := race(userRacers, func(int) error {
		return s.ConsumeOAuthState(context.Background(), h, time.Now())
	})
	oneWinner(t, errs, forgelink.Unauthorized)
	wantKind(t, "ConsumeOAuthState after the race", s.ConsumeOAuthState(t.Context(), h, time.Now()), forgelink.Unauthorized)
}

func testConcurrentCreateAPIToken(t *testing.T, newStore func(*testing.T) forgelink.UserStore) {
	s := newStore(t)
	toks := make([]*forgelink.APIToken, userRacers)
	for i := range toks {
		toks[i] = apiToken("github:1", i)
		toks[i].Hash = secretHash("same secret")
	}
	errs := race(userRacers, func(i int) error { return s.CreateAPIToken(context.Background(), toks[i]) })
	w := oneWinner(t, errs, forgelink.Conflict)
	checkAPIToken(t, s, toks[w])
	checkAPITokens(t, s, "github:1", []*forgelink.APIToken{toks[w]})
}
