package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/forgelink"
)

// RunKeys runs the KeyStore contract against the stores newStore returns.
// Every subtest gets a new, empty store.
//
//	func TestKeyStore(t *testing.T) {
//		storetest.RunKeys(t, func(t *testing.T) forgelink.KeyStore { return newStore(t) })
//	}
func RunKeys(t *testing.T, newStore func(t *testing.T) forgelink.KeyStore) {
	t.Run("CheckoutKeyRoundTrip", func(t *testing.T) { testCheckoutKeyRoundTrip(t, newStore) })
	t.Run("CheckoutKeyConflict", func(t *testing.T) { testCheckoutKeyConflict(t, newStore) })
	t.Run("DeleteCheckoutKey", func(t *testing.T) { testDeleteCheckoutKey(t, newStore) })
	t.Run("SSHKeyRoundTrip", func(t *testing.T) { testSSHKeyRoundTrip(t, newStore) })
	t.Run("SSHKeyConflict", func(t *testing.T) { testSSHKeyConflict(t, newStore) })
	t.Run("DeleteSSHKey", func(t *testing.T) { testDeleteSSHKey(t, newStore) })
	t.Run("KeysNotAliased", func(t *testing.T) { testKeysNotAliased(t, newStore) })
	t.Run("RunnerToken", func(t *testing.T) { testRunnerToken(t, newStore) })
	t.Run("RunnerTokenExpired", func(t *testing.T) { testRunnerTokenExpired(t, newStore) })
	t.Run("RunnerTokenConflict", func(t *testing.T) { testRunnerTokenConflict(t, newStore) })
	t.Run("MintTokensTogether", func(t *testing.T) { testMintTokensTogether(t, newStore) })
	t.Run("CheckRunnerToken", func(t *testing.T) { testCheckRunnerToken(t, newStore) })
	t.Run("CheckRunnerTokenRefused", func(t *testing.T) { testCheckRunnerTokenRefused(t, newStore) })
	t.Run("ConsumeExecutorToken", func(t *testing.T) { testConsumeExecutorToken(t, newStore) })
	t.Run("Concurrent", func(t *testing.T) {
		t.Run("CreateCheckoutKey", func(t *testing.T) { testConcurrentCreateCheckoutKey(t, newStore) })
		t.Run("CreateSSHKey", func(t *testing.T) { testConcurrentCreateSSHKey(t, newStore) })
		t.Run("ConsumeRunnerToken", func(t *testing.T) { testConcurrentConsumeRunnerToken(t, newStore) })
	})
}

var (
	keysProject = forgelink.Slug{VCS: forgelink.GitHub, Org: "octo-org", Repo: "hello-world"}
	keysOther   = forgelink.Slug{VCS: forgelink.Bitbucket, Org: "octo-org", Repo: "hello-world"}
)

// fingerprint returns a distinct MD5-style fingerprint for n.
func fingerprint(n int) string {
	return fmt.Sprintf("16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:%02x:%02x", n>>8&0xff, n&0xff)
}

// checkoutKey returns a checkout key with every field set.
func checkoutKey(project forgelink.Slug, n int, typ forgelink.CheckoutKeyType) *forgelink.CheckoutKey {
	fp := fingerprint(n)
	k := &forgelink.CheckoutKey{
		ID:                forgelink.CheckoutKeyID(fp),
		Project:           project,
		Type:              typ,
		PublicKey:         fmt.Sprintf("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqDHpSQEIQczXkVx%02d", n%100),
		FingerprintMD5:    fp,
		FingerprintSHA256: fmt.Sprintf("SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5S%02d", n%100),
		SealedPrivateKey:  []byte{0x00, 0x01, 0xfe, 0xff, byte(n)},
		VCSID:             fmt.Sprint(1000 + n),
		CreatedAt:         base.Add(time.Duration(n) * time.Minute),
	}
	if typ == forgelink.CheckoutUserKey {
		k.Login = "octocat"
	}
	return k
}

// sshKey returns an additional SSH key with every field set.
func sshKey(project forgelink.Slug, hostname string, n int) *forgelink.SSHKeyRecord {
	return &forgelink.SSHKeyRecord{
		Project:           project,
		Hostname:          hostname,
		PublicKey:         "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYM",
		FingerprintMD5:    fingerprint(n),
		FingerprintSHA256: fmt.Sprintf("SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUf%02d", n%100),
		SealedPrivateKey:  []byte{0xde, 0xad, byte(n), 0x00},
		CreatedAt:         base.Add(time.Duration(n) * time.Minute).In(time.FixedZone("UTC-7", -7*3600)),
	}
}

func keysWantKind(t *testing.T, what string, err error, want forgelink.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: nil error, want %v", what, want)
	}
	if got := forgelink.KindOf(err); got != want {
		t.Fatalf("%s: error %q of kind %v, want %v", what, err, got, want)
	}
}

func mustListCheckoutKeys(t *testing.T, s forgelink.KeyStore, project forgelink.Slug) []*forgelink.CheckoutKey {
	t.Helper()
	ks, err := s.ListCheckoutKeys(t.Context(), project)
	if err != nil {
		t.Fatalf("ListCheckoutKeys(%s): %v", project, err)
	}
	return ks
}

func mustListSSHKeys(t *testing.T, s forgelink.KeyStore, project forgelink.Slug) []*forgelink.SSHKeyRecord {
	t.Helper()
	ks, err := s.ListSSHKeys(t.Context(), project)
	if err != nil {
		t.Fatalf("ListSSHKeys(%s): %v", project, err)
	}
	return ks
}

func testCheckoutKeyRoundTrip(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	ctx := t.Context()
	if got := mustListCheckoutKeys(t, s, keysProject); len(got) != 0 {
		t.Fatalf("empty store lists %d checkout keys, want 0", len(got))
	}
	// Created out of order: the listing is oldest first.
	newer := checkoutKey(keysProject, 2, forgelink.CheckoutUserKey)
	older := checkoutKey(keysProject, 1, forgelink.CheckoutDeployKey)
	other := checkoutKey(keysOther, 1, forgelink.CheckoutDeployKey)
	for _, k := range []*forgelink.CheckoutKey{newer, older, other} {
		if err := s.CreateCheckoutKey(ctx, k); err != nil {
			t.Fatalf("CreateCheckoutKey(%s %s): %v", k.Project, k.FingerprintMD5, err)
		}
	}
	if diff := cmp.Diff([]*forgelink.CheckoutKey{older, newer}, mustListCheckoutKeys(t, s, keysProject), cmpOpts...); diff != "" {
		t.Errorf("ListCheckoutKeys mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]*forgelink.CheckoutKey{other}, mustListCheckoutKeys(t, s, keysOther), cmpOpts...); diff != "" {
		t.Errorf("ListCheckoutKeys of another project mismatch (-want +got):\n%s", diff)
	}
}

func testCheckoutKeyConflict(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	ctx := t.Context()
	first := checkoutKey(keysProject, 1, forgelink.CheckoutDeployKey)
	if err := s.CreateCheckoutKey(ctx, first); err != nil {
		t.Fatal(err)
	}
	again := checkoutKey(keysProject, 1, forgelink.CheckoutUserKey)
	again.VCSID = "other"
	keysWantKind(t, "CreateCheckoutKey with a taken fingerprint", s.CreateCheckoutKey(ctx, again), forgelink.Conflict)
	if diff := cmp.Diff([]*forgelink.CheckoutKey{first}, mustListCheckoutKeys(t, s, keysProject), cmpOpts...); diff != "" {
		t.Errorf("after a lost create, keys mismatch (-want +got):\n%s", diff)
	}
	// The fingerprint is unique per project only.
	if err := s.CreateCheckoutKey(ctx, checkoutKey(keysOther, 1, forgelink.CheckoutDeployKey)); err != nil {
		t.Errorf("CreateCheckoutKey of the same fingerprint in another project: %v", err)
	}
}

func testDeleteCheckoutKey(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	ctx := t.Context()
	a, b := checkoutKey(keysProject, 1, forgelink.CheckoutDeployKey), checkoutKey(keysProject, 2, forgelink.CheckoutDeployKey)
	for _, k := range []*forgelink.CheckoutKey{a, b, checkoutKey(keysOther, 1, forgelink.CheckoutDeployKey)} {
		if err := s.CreateCheckoutKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteCheckoutKey(ctx, keysProject, a.FingerprintMD5); err != nil {
		t.Fatalf("DeleteCheckoutKey: %v", err)
	}
	if diff := cmp.Diff([]*forgelink.CheckoutKey{b}, mustListCheckoutKeys(t, s, keysProject), cmpOpts...); diff != "" {
		t.Errorf("after delete, keys mismatch (-want +got):\n%s", diff)
	}
	if got := mustListCheckoutKeys(t, s, keysOther); len(got) != 1 {
		t.Errorf("deleting a key deleted another project's key with the same fingerprint: %d left, want 1", len(got))
	}
	keysWantKind(t, "DeleteCheckoutKey again", s.DeleteCheckoutKey(ctx, keysProject, a.FingerprintMD5), forgelink.NotFound)
	keysWantKind(t, "DeleteCheckoutKey of an unknown project", s.DeleteCheckoutKey(ctx, forgelink.Slug{VCS: forgelink.GitHub, Org: "x", Repo: "y"}, a.FingerprintMD5), forgelink.NotFound)
	// Gone keys can be created again.
	if err := s.CreateCheckoutKey(ctx, a); err != nil {
		t.Errorf("CreateCheckoutKey after delete: %v", err)
	}
}

func testSSHKeyRoundTrip(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	ctx := t.Context()
	if got := mustListSSHKeys(t, s, keysProject); len(got) != 0 {
		t.Fatalf("empty store lists %d SSH keys, want 0", len(got))
	}
	c := sshKey(keysProject, "deploy.example.com", 3)
	a := sshKey(keysProject, "", 1) // every host
	b := sshKey(keysProject, "deploy.example.com", 2)
	sameKeyOtherHost := sshKey(keysProject, "10.0.0.7", 2)
	sameKeyOtherHost.CreatedAt = sameKeyOtherHost.CreatedAt.Add(30 * time.Second)
	other := sshKey(keysOther, "deploy.example.com", 2)
	for _, k := range []*forgelink.SSHKeyRecord{c, a, b, sameKeyOtherHost, other} {
		if err := s.CreateSSHKey(ctx, k); err != nil {
			t.Fatalf("CreateSSHKey(%s %q %s): %v", k.Project, k.Hostname, k.FingerprintMD5, err)
		}
	}
	if diff := cmp.Diff([]*forgelink.SSHKeyRecord{a, b, sameKeyOtherHost, c}, mustListSSHKeys(t, s, keysProject), cmpOpts...); diff != "" {
		t.Errorf("ListSSHKeys mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]*forgelink.SSHKeyRecord{other}, mustListSSHKeys(t, s, keysOther), cmpOpts...); diff != "" {
		t.Errorf("ListSSHKeys of another project mismatch (-want +got):\n%s", diff)
	}
	// Checkout keys and SSH keys do not mix.
	if got := mustListCheckoutKeys(t, s, keysProject); len(got) != 0 {
		t.Errorf("ListCheckoutKeys lists %d keys after only SSH keys were created", len(got))
	}
}

func testSSHKeyConflict(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	ctx := t.Context()
	first := sshKey(keysProject, "deploy.example.com", 1)
	if err := s.CreateSSHKey(ctx, first); err != nil {
		t.Fatal(err)
	}
	again := sshKey(keysProject, "deploy.example.com", 1)
	again.CreatedAt = again.CreatedAt.Add(time.Hour)
	keysWantKind(t, "CreateSSHKey with a taken (hostname, fingerprint)", s.CreateSSHKey(ctx, again), forgelink.Conflict)
	if diff := cmp.Diff([]*forgelink.SSHKeyRecord{first}, mustListSSHKeys(t, s, keysProject), cmpOpts...); diff != "" {
		t.Errorf("after a lost create, keys mismatch (-want +got):\n%s", diff)
	}
	// Hostnames that share a prefix are different hosts.
	if err := s.CreateSSHKey(ctx, sshKey(keysProject, "deploy.example.co", 1)); err != nil {
		t.Errorf("CreateSSHKey for a host that prefixes another: %v", err)
	}
}

func testDeleteSSHKey(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	ctx := t.Context()
	a, b := sshKey(keysProject, "a.example.com", 1), sshKey(keysProject, "b.example.com", 1)
	for _, k := range []*forgelink.SSHKeyRecord{a, b} {
		if err := s.CreateSSHKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteSSHKey(ctx, keysProject, a.Hostname, a.FingerprintMD5); err != nil {
		t.Fatalf("DeleteSSHKey: %v", err)
	}
	if diff := cmp.Diff([]*forgelink.SSHKeyRecord{b}, mustListSSHKeys(t, s, keysProject), cmpOpts...); diff != "" {
		t.Errorf("after delete, keys mismatch (-want +got):\n%s", diff)
	}
	keysWantKind(t, "DeleteSSHKey again", s.DeleteSSHKey(ctx, keysProject, a.Hostname, a.FingerprintMD5), forgelink.NotFound)
	keysWantKind(t, "DeleteSSHKey with another hostname", s.DeleteSSHKey(ctx, keysProject, "", b.FingerprintMD5), forgelink.NotFound)
}

func testKeysNotAliased(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	ctx := t.Context()
	ck := checkoutKey(keysProject, 1, forgelink.CheckoutDeployKey)
	want := *ck
	want.SealedPrivateKey = append([]byte(nil), ck.SealedPrivateKey...)
	if err := s.CreateCheckoutKey(ctx, ck); err != nil {
		t.Fatal(err)
	}
	ck.SealedPrivateKey[0] = 'X'
	ck.PublicKey = "changed"
	got := mustListCheckoutKeys(t, s, keysProject)
	got[0].SealedPrivateKey[1] = 'Y'
	if diff := cmp.Diff([]*forgelink.CheckoutKey{&want}, mustListCheckoutKeys(t, s, keysProject), cmpOpts...); diff != "" {
		t.Errorf("stored key changed through the caller's values (-want +got):\n%s", diff)
	}
}

// runnerToken returns an unused token for pipeline that expires at expires.
func runnerToken(secret, pipeline string, expires time.Time) *forgelink.RunnerToken {
	return &forgelink.RunnerToken{Hash: forgelink.HashRunnerToken(secret), PipelineID: pipeline, ExpiresAt: expires}
}

func testRunnerToken(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	ctx := t.Context()
	now := time.Now()
	tok := runnerToken("secret-1", "pipeline-1", now.Add(15*time.Minute))
	if err := s.MintRunnerTokens(ctx, tok); err != nil {
		t.Fatalf("MintRunnerToken: %v", err)
	}
	if err := s.MintRunnerTokens(ctx, runnerToken("secret-2", "pipeline-1", now.Add(15*time.Minute))); err != nil {
		t.Fatalf("MintRunnerToken of a second token for the pipeline: %v", err)
	}
	_, err := s.ConsumeRunnerToken(ctx, forgelink.HashRunnerToken("unknown"), now)
	keysWantKind(t, "ConsumeRunnerToken of an unknown token", err, forgelink.Unauthorized)

	got, err := s.ConsumeRunnerToken(ctx, tok.Hash, now)
	if err != nil {
		t.Fatalf("ConsumeRunnerToken: %v", err)
	}
	want := *tok
	want.Used = true
	if diff := cmp.Diff(&want, got, cmpOpts...); diff != "" {
		t.Errorf("ConsumeRunnerToken mismatch (-want +got):\n%s", diff)
	}
	_, err = s.ConsumeRunnerToken(ctx, tok.Hash, now)
	keysWantKind(t, "ConsumeRunnerToken of a used token", err, forgelink.Unauthorized)

	// The other token of the pipeline is still good.
	if _, err := s.ConsumeRunnerToken(ctx, forgelink.HashRunnerToken("secret-2"), now); err != nil {
		t.Errorf("ConsumeRunnerToken of the pipeline's second token: %v", err)
	}
}

func testRunnerTokenExpired(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	ctx := t.Context()
	now := time.Now()
	tok := runnerToken("secret", "pipeline-1", now.Add(5*time.Minute))
	if err := s.MintRunnerTokens(ctx, tok); err != nil {
		t.Fatal(err)
	}
	_, err := s.ConsumeRunnerToken(ctx, tok.Hash, now.Add(time.Hour))
	keysWantKind(t, "ConsumeRunnerToken after expiry", err, forgelink.Unauthorized)
	// Refused, not used: the token is still good for a caller whose
	// clock says it has not expired.
	if _, err := s.ConsumeRunnerToken(ctx, tok.Hash, now); err != nil {
		t.Errorf("ConsumeRunnerToken before expiry, after a refused late try: %v", err)
	}

	past := runnerToken("old", "pipeline-1", now.Add(-time.Hour))
	if err := s.MintRunnerTokens(ctx, past); err != nil {
		t.Fatalf("MintRunnerToken of an already expired token: %v", err)
	}
	_, err = s.ConsumeRunnerToken(ctx, past.Hash, now)
	keysWantKind(t, "ConsumeRunnerToken of an expired token", err, forgelink.Unauthorized)
}

func testRunnerTokenConflict(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	ctx := t.Context()
	tok := runnerToken("secret", "pipeline-1", time.Now().Add(time.Hour))
	if err := s.MintRunnerTokens(ctx, tok); err != nil {
		t.Fatal(err)
	}
	keysWantKind(t, "MintRunnerToken with a taken hash", s.MintRunnerTokens(ctx, runnerToken("secret", "pipeline-2", time.Now().Add(time.Hour))), forgelink.Conflict)
	got, err := s.ConsumeRunnerToken(ctx, tok.Hash, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got.PipelineID != "pipeline-1" {
		t.Errorf("after a lost mint, the token is for %q, want pipeline-1", got.PipelineID)
	}
}

// testMintTokensTogether mints a hand-off's checkout and executor tokens
// in one call: both work; a call in which one hash is taken stores
// neither; bad input is Invalid (or Conflict for a hash given twice) and
// stores nothing.
func testMintTokensTogether(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	ctx := t.Context()
	now := time.Now()
	runner, executor := runnerToken("checkout", "pipeline-1", now.Add(15*time.Minute)), executorToken("executor", "pipeline-1", now.Add(24*time.Hour))
	if err := s.MintRunnerTokens(ctx, runner, executor); err != nil {
		t.Fatalf("MintRunnerTokens(checkout, executor): %v", err)
	}
	if got, err := s.CheckRunnerToken(ctx, executor.Hash, now); err != nil || got.PipelineID != "pipeline-1" || !got.Executor {
		t.Errorf("CheckRunnerToken(executor) = %+v, %v; want pipeline-1's executor token", got, err)
	}
	if got, err := s.ConsumeRunnerToken(ctx, runner.Hash, now); err != nil || got.PipelineID != "pipeline-1" || got.Executor {
		t.Errorf("ConsumeRunnerToken(checkout) = %+v, %v; want pipeline-1's checkout token", got, err)
	}

	// All or none: the new token is not stored when the other's hash is taken.
	fresh := runnerToken("fresh", "pipeline-2", now.Add(time.Hour))
	keysWantKind(t, "MintRunnerTokens(fresh, taken)", s.MintRunnerTokens(ctx, fresh, runnerToken("executor", "pipeline-2", now.Add(time.Hour))), forgelink.Conflict)
	_, err := s.ConsumeRunnerToken(ctx, fresh.Hash, now)
	keysWantKind(t, "ConsumeRunnerToken of a token whose mint lost", err, forgelink.Unauthorized)

	tooMany := make([]*forgelink.RunnerToken, forgelink.MaxTokensPerMint+1)
	for i := range tooMany {
		tooMany[i] = runnerToken(fmt.Sprint("many-", i), "pipeline-3", now.Add(time.Hour))
	}
	for _, tc := range []struct {
		name string
		ts   []*forgelink.RunnerToken
		want forgelink.Kind
	}{
		{"none", nil, forgelink.Invalid},
		{"no hash", []*forgelink.RunnerToken{{PipelineID: "pipeline-3", ExpiresAt: now.Add(time.Hour)}}, forgelink.Invalid},
		{"no expiry", []*forgelink.RunnerToken{runnerToken("no-expiry", "pipeline-3", time.Time{})}, forgelink.Invalid},
		{"nil token", []*forgelink.RunnerToken{runnerToken("with-nil", "pipeline-3", now.Add(time.Hour)), nil}, forgelink.Invalid},
		{"hash twice", []*forgelink.RunnerToken{runnerToken("twice", "pipeline-3", now.Add(time.Hour)), runnerToken("twice", "pipeline-3", now.Add(time.Hour))}, forgelink.Conflict},
		{"too many", tooMany, forgelink.Invalid},
	} {
		keysWantKind(t, "MintRunnerTokens("+tc.name+")", s.MintRunnerTokens(ctx, tc.ts...), tc.want)
	}
	for _, secret := range []string{"with-nil", "twice", "many-0"} {
		_, err := s.ConsumeRunnerToken(ctx, forgelink.HashRunnerToken(secret), now)
		keysWantKind(t, "ConsumeRunnerToken("+secret+") after a refused mint", err, forgelink.Unauthorized)
	}
}

// executorToken returns an Executor token for pipeline that expires at
// expires.
func executorToken(secret, pipeline string, expires time.Time) *forgelink.RunnerToken {
	tok := runnerToken(secret, pipeline, expires)
	tok.Executor = true
	return tok
}

// checkExecutorToken checks that CheckRunnerToken(hash, now) returns want.
func checkExecutorToken(t *testing.T, s forgelink.KeyStore, want *forgelink.RunnerToken, now time.Time) {
	t.Helper()
	got, err := s.CheckRunnerToken(t.Context(), want.Hash, now)
	if err != nil {
		t.Fatalf("CheckRunnerToken: %v", err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("CheckRunnerToken mismatch (-want +got):\n%s", diff)
	}
}

func testCheckRunnerToken(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	now := time.Now()
	tok := executorToken("executor-secret", "pipeline-1", now.Add(15*time.Minute))
	if err := s.MintRunnerTokens(t.Context(), tok); err != nil {
		t.Fatalf("MintRunnerToken(executor): %v", err)
	}
	// Checking changes nothing: the token checks again and again.
	for i := range 3 {
		checkExecutorToken(t, s, tok, now.Add(time.Duration(i)*time.Minute))
	}
	// A refused late check leaves it good for a caller whose clock says it
	// has not expired.
	_, err := s.CheckRunnerToken(t.Context(), tok.Hash, now.Add(time.Hour))
	keysWantKind(t, "CheckRunnerToken after expiry", err, forgelink.Unauthorized)
	checkExecutorToken(t, s, tok, now)
}

func testCheckRunnerTokenRefused(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	ctx := t.Context()
	now := time.Now()
	checkout := runnerToken("checkout-secret", "pipeline-1", now.Add(time.Hour))
	expired := executorToken("expired-secret", "pipeline-1", now.Add(-time.Minute))
	good := executorToken("good-secret", "pipeline-1", now.Add(time.Hour))
	for _, tok := range []*forgelink.RunnerToken{checkout, expired, good} {
		if err := s.MintRunnerTokens(ctx, tok); err != nil {
			t.Fatalf("MintRunnerToken(executor %t): %v", tok.Executor, err)
		}
	}
	tests := []struct {
		name string
		hash string
		now  time.Time
	}{
		{"unknown", forgelink.HashRunnerToken("unknown"), now},
		{"empty hash", "", now},
		{"checkout token", checkout.Hash, now},
		{"expired executor token", expired.Hash, now},
		{"at expiry", good.Hash, good.ExpiresAt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.CheckRunnerToken(ctx, tc.hash, tc.now)
			keysWantKind(t, "CheckRunnerToken", err, forgelink.Unauthorized)
			if got != nil {
				t.Errorf("CheckRunnerToken returned %+v with its error, want nil", got)
			}
		})
	}
	// The refused check of the checkout token left it unused.
	got, err := s.ConsumeRunnerToken(ctx, checkout.Hash, now)
	if err != nil {
		t.Fatalf("ConsumeRunnerToken of the checkout token after CheckRunnerToken: %v", err)
	}
	if got.Executor {
		t.Errorf("ConsumeRunnerToken returned an Executor token: %+v", got)
	}
	_, err = s.CheckRunnerToken(ctx, checkout.Hash, now)
	keysWantKind(t, "CheckRunnerToken of a used checkout token", err, forgelink.Unauthorized)
	checkExecutorToken(t, s, good, now)
}

func testConsumeExecutorToken(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	now := time.Now()
	tok := executorToken("executor-secret", "pipeline-1", now.Add(time.Hour))
	if err := s.MintRunnerTokens(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		got, err := s.ConsumeRunnerToken(t.Context(), tok.Hash, now)
		keysWantKind(t, fmt.Sprintf("ConsumeRunnerToken of an executor token (try %d)", i+1), err, forgelink.Unauthorized)
		if got != nil {
			t.Errorf("ConsumeRunnerToken returned %+v with its error, want nil", got)
		}
	}
	// Refused, not used: the token still checks, unchanged.
	checkExecutorToken(t, s, tok, now)
}

func testConcurrentCreateCheckoutKey(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	errs := race(writers, func(i int) error {
		k := checkoutKey(keysProject, 7, forgelink.CheckoutDeployKey)
		k.VCSID = fmt.Sprint(i)
		return s.CreateCheckoutKey(context.Background(), k)
	})
	w := oneWinner(t, errs, forgelink.Conflict)
	got := mustListCheckoutKeys(t, s, keysProject)
	if len(got) != 1 || got[0].VCSID != fmt.Sprint(w) {
		t.Errorf("after the race the store holds %d keys (first %+v), want the winner's (VCS id %d)", len(got), got, w)
	}
}

func testConcurrentCreateSSHKey(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	errs := race(writers, func(i int) error {
		k := sshKey(keysProject, "deploy.example.com", 7)
		k.SealedPrivateKey = []byte{byte(i)}
		return s.CreateSSHKey(context.Background(), k)
	})
	w := oneWinner(t, errs, forgelink.Conflict)
	got := mustListSSHKeys(t, s, keysProject)
	if len(got) != 1 || got[0].SealedPrivateKey[0] != byte(w) {
		t.Errorf("after the race the store holds %d keys, want only the winner's", len(got))
	}
}

func testConcurrentConsumeRunnerToken(t *testing.T, newStore func(*testing.T) forgelink.KeyStore) {
	s := newStore(t)
	tok := runnerToken("secret", "pipeline-1", time.Now().Add(time.Hour))
	if err := s.MintRunnerTokens(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	errs := race(writers, func(int) error {
		_, err := s.ConsumeRunnerToken(context.Background(), tok.Hash, time.Now())
		return err
	})
	oneWinner(t, errs, forgelink.Unauthorized)
}
