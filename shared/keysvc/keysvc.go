package keysvc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"forgelink/shared/follow"
	"forgelink/shared/forgelink"
	"forgelink/shared/sshkeys"
)

// DefaultRunnerTokenTTL is how long a runner token is good for when
// Service.RunnerTokenTTL is zero: long enough for a build to start, short
// enough that a token found in a log later is worthless.
const DefaultRunnerTokenTTL = 30 * time.Minute

// KeyTitle is the title of the deploy keys and user keys forgelink adds.
const KeyTitle = follow.DeployKeyTitle

// BitbucketUserKeyInstructions is what a Bitbucket user must do with a
// user key: Bitbucket Cloud has no API to add a key to an account.
const BitbucketUserKeyInstructions = "Bitbucket has no API to add an SSH key to your account: add this public key " +
	"yourself under Personal settings > SSH keys > Add key (https://bitbucket.org/account/settings/ssh-keys/). " +
	"Until you do, builds cannot clone with it."

// Service manages checkout keys, additional SSH keys and runner tokens.
type Service struct {
	Store forgelink.Store
	Keys  forgelink.KeyStore
	// Pipelines resolves a runner token's pipeline; nil disables runner
	// tokens and checkout.
	Pipelines forgelink.PipelineStore
	Sealer    forgelink.Sealer
	// Forges returns the acting user's Forge. A Forge that also implements
	// forgelink.AccountKeys can add user keys and tell who the user is.
	Forges follow.Forges
	// GitHubAPIURL is GITHUB_API_URL; it decides the clone host and whether
	// forgelink knows the host's keys (github.com) or not (Enterprise).
	GitHubAPIURL string
	// RunnerTokenTTL is how long a runner token is valid; zero means
	// DefaultRunnerTokenTTL.
	RunnerTokenTTL time.Duration
	// Random is the source of key and token randomness; nil means
	// crypto/rand.
	Random io.Reader
	Now    func() time.Time
	Log    *slog.Logger
}

// Key is the public view of a checkout key.
type Key struct {
	Type              forgelink.CheckoutKeyType
	VCS               forgelink.VCS
	PublicKey         string
	FingerprintMD5    string
	FingerprintSHA256 string
	// Preferred marks the one key builds check out with: the newest user
	// key, else the newest deploy key.
	Preferred bool
	CreatedAt time.Time
	// Login is the account a user key belongs to.
	Login string
	// Instructions is set for a user key the user must add by hand.
	Instructions string
	// ProjectKey is true for the deploy key installed when the project was
	// followed.
	ProjectKey bool
}

// SSHKey is the public view of an additional SSH key.
type SSHKey struct {
	Hostname          string
	PublicKey         string
	FingerprintMD5    string
	FingerprintSHA256 string
	CreatedAt         time.Time
}

// Deleted reports what deleting a checkout key did.
type Deleted struct {
	Key Key
	// Remaining is how many checkout keys the project has left.
	Remaining int
	// ManualStep is set when the key must also be removed by hand (a
	// Bitbucket user key).
	ManualStep string
}

// Me is who the acting user is on a VCS.
type Me struct {
	VCS   forgelink.VCS
	Login string
	Email string
}

// Checkout is what a build needs to check out a pipeline's code. It holds
// private keys: hand it only to the build that presented the runner token.
type Checkout struct {
	PipelineID string
	Project    forgelink.Slug
	// CloneURL is the SSH clone URL (git@host:org/repo.git); VCSURL the
	// repository's web URL.
	CloneURL string
	VCSURL   string
	Revision string
	Branch   string
	Tag      string
	// KnownHosts is the VCS host's keys in known_hosts format; "" with
	// KnownHostsNote saying why (GitHub Enterprise Server).
	KnownHosts     string
	KnownHostsNote string
	// CheckoutKey is the preferred checkout key; nil when the project has
	// none (a public repository clones over HTTPS).
	CheckoutKey *PrivateKey
	// SSHKeys are the project's additional SSH keys. A pipeline that may
	// not see secrets (a fork's pull request) gets none.
	SSHKeys []PrivateKey
}

// PrivateKey is a key with its private half, for Checkout only.
type PrivateKey struct {
	Type              forgelink.CheckoutKeyType // checkout keys only
	Hostname          string                    // additional keys only
	PublicKey         string
	FingerprintMD5    string
	FingerprintSHA256 string
	PrivateKey        string
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func (s *Service) random() io.Reader {
	if s.Random != nil {
		return s.Random
	}
	return rand.Reader
}

// project returns the followed project, or NotFound saying it is not.
func (s *Service) project(ctx context.Context, slug forgelink.Slug) (*forgelink.Project, error) {
	p, err := s.Store.GetProject(ctx, slug)
	if forgelink.KindOf(err) == forgelink.NotFound {
		return nil, forgelink.E(forgelink.NotFound, "project "+slug.String()+" is not followed", err)
	}
	return p, err
}

// follower checks that the acting user follows the project: by the user
// id the request acts as (forgelink.ActorFrom) where the project records
// its follower's id (logins change, and a freed login can be taken by
// someone else), else by login (local mode's environment user, projects
// followed before ids were kept).
func follower(ctx context.Context, p *forgelink.Project, login, doing string) error {
	if id := forgelink.ActorFrom(ctx); id != "" && p.FollowerID != "" {
		if id != p.FollowerID {
			return forgelink.Errorf(forgelink.Forbidden, "only a user who follows %s may %s", p.Slug, doing)
		}
		return nil
	}
	if login == "" || p.FollowedBy != login {
		return forgelink.Errorf(forgelink.Forbidden, "only a user who follows %s may %s", p.Slug, doing)
	}
	return nil
}

// authorize returns the project and the acting user's Forge if login
// follows the project and, per the VCS, administers the repository.
func (s *Service) authorize(ctx context.Context, login string, slug forgelink.Slug, doing string) (*forgelink.Project, forgelink.Forge, error) {
	p, err := s.project(ctx, slug)
	if err != nil {
		return nil, nil, err
	}
	if err := follower(ctx, p, login, doing); err != nil {
		return nil, nil, err
	}
	forge, err := s.Forges(ctx, slug.VCS)
	if err != nil {
		return nil, nil, err
	}
	var admin bool
	if ak, ok := forge.(forgelink.AccountKeys); ok {
		admin, err = ak.RepoAdmin(ctx, slug)
	} else {
		var repo *forgelink.Repository
		if repo, err = forge.Repository(ctx, slug); err == nil {
			admin = repo.Admin
		}
	}
	if err != nil {
		return nil, nil, forgelink.ForgeError(slug.VCS, "read your permission on "+slug.FullName(), err)
	}
	if !admin {
		return nil, nil, forgelink.Errorf(forgelink.Forbidden, "you need admin rights on %s on %s to %s", slug.FullName(), slug.VCS.Name(), doing)
	}
	return p, forge, nil
}

// keys returns the project's checkout keys, its follow-time deploy key
// first, with the preferred one marked.
func (s *Service) keys(ctx context.Context, p *forgelink.Project) ([]Key, []*forgelink.CheckoutKey, error) {
	recs, err := s.Keys.ListCheckoutKeys(ctx, p.Slug)
	if err != nil {
		return nil, nil, err
	}
	var out []Key
	if p.DeployKey.PublicKey != "" {
		out = append(out, Key{
			Type: forgelink.CheckoutDeployKey, VCS: p.Slug.VCS, PublicKey: p.DeployKey.PublicKey,
			FingerprintMD5: p.DeployKey.FingerprintMD5, FingerprintSHA256: p.DeployKey.FingerprintSHA256,
			CreatedAt: p.DeployKey.CreatedAt, ProjectKey: true,
		})
	}
	for _, r := range recs {
		if p.DeployKey.PublicKey != "" && r.FingerprintMD5 == p.DeployKey.FingerprintMD5 {
			continue // never listed twice
		}
		out = append(out, keyOf(r))
	}
	markPreferred(out)
	return out, recs, nil
}

func keyOf(r *forgelink.CheckoutKey) Key {
	k := Key{
		Type: r.Type, VCS: r.Project.VCS, PublicKey: r.PublicKey,
		FingerprintMD5: r.FingerprintMD5, FingerprintSHA256: r.FingerprintSHA256,
		CreatedAt: r.CreatedAt, Login: r.Login,
	}
	if r.Type == forgelink.CheckoutUserKey && r.VCSID == "" && r.Project.VCS == forgelink.Bitbucket {
		k.Instructions = BitbucketUserKeyInstructions
	}
	return k
}

// markPreferred marks exactly one key (when there is any): the newest user
// key, else the newest deploy key. Of keys created at the same instant the
// later one in the list wins.
func markPreferred(keys []Key) {
	best := -1
	for i := range keys {
		keys[i].Preferred = false
		if best < 0 {
			best = i
			continue
		}
		a, b := &keys[i], &keys[best]
		aUser, bUser := a.Type == forgelink.CheckoutUserKey, b.Type == forgelink.CheckoutUserKey
		if (aUser && !bUser) || (aUser == bUser && !a.CreatedAt.Before(b.CreatedAt)) {
			best = i
		}
	}
	if best >= 0 {
		keys[best].Preferred = true
	}
}

// ListCheckoutKeys returns the project's checkout keys, newest first,
// including the deploy key installed when it was followed.
func (s *Service) ListCheckoutKeys(ctx context.Context, slug forgelink.Slug) ([]Key, error) {
	p, err := s.project(ctx, slug)
	if err != nil {
		return nil, err
	}
	keys, _, err := s.keys(ctx, p)
	if err != nil {
		return nil, err
	}
	slices.Reverse(keys)
	slices.SortStableFunc(keys, func(a, b Key) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return keys, nil
}

// GetCheckoutKey returns the checkout key with the fingerprint, MD5
// ("aa:bb:...", optionally "MD5:aa:bb:...") or SHA-256 ("SHA256:...").
func (s *Service) GetCheckoutKey(ctx context.Context, slug forgelink.Slug, fingerprint string) (Key, error) {
	p, err := s.project(ctx, slug)
	if err != nil {
		return Key{}, err
	}
	keys, _, err := s.keys(ctx, p)
	if err != nil {
		return Key{}, err
	}
	i, err := findKey(keys, slug, fingerprint)
	if err != nil {
		return Key{}, err
	}
	return keys[i], nil
}

// matchFingerprint reports whether fp names the key with the given
// fingerprints.
func matchFingerprint(fp, md5, sha256 string) bool {
	fp = strings.TrimSpace(fp)
	if strings.HasPrefix(fp, "SHA256:") {
		return fp == sha256
	}
	fp = strings.TrimPrefix(strings.TrimPrefix(fp, "MD5:"), "md5:")
	return strings.EqualFold(fp, md5)
}

func findKey(keys []Key, slug forgelink.Slug, fingerprint string) (int, error) {
	i := slices.IndexFunc(keys, func(k Key) bool {
		return matchFingerprint(fingerprint, k.FingerprintMD5, k.FingerprintSHA256)
	})
	if i < 0 {
		return -1, forgelink.Errorf(forgelink.NotFound, "project %s has no checkout key with that fingerprint", slug)
	}
	return i, nil
}

// CreateCheckoutKey makes a new key pair of keyType and installs it as typ:
// a read-only deploy key of the repository, or a key of the user's account
// (GitHub: through the API; Bitbucket: returned with Instructions, for the
// user to add by hand). The private half is stored sealed. If storing fails
// the key is removed from the VCS again.
func (s *Service) CreateCheckoutKey(ctx context.Context, login string, slug forgelink.Slug, typ forgelink.CheckoutKeyType, keyType sshkeys.Type) (Key, error) {
	if typ != forgelink.CheckoutDeployKey && typ != forgelink.CheckoutUserKey {
		return Key{}, forgelink.Errorf(forgelink.Invalid, "unknown checkout key type %.40q: want %q or %q", string(typ), forgelink.CheckoutDeployKey, forgelink.CheckoutUserKey)
	}
	if keyType != "" && keyType != sshkeys.ED25519 && keyType != sshkeys.RSA {
		return Key{}, forgelink.Errorf(forgelink.Invalid, "unknown key_type %.40q: want %q (the default) or %q", string(keyType), sshkeys.ED25519, sshkeys.RSA)
	}
	_, forge, err := s.authorize(ctx, login, slug, "manage its checkout keys")
	if err != nil {
		return Key{}, err
	}
	var ak forgelink.AccountKeys
	if typ == forgelink.CheckoutUserKey {
		var ok bool
		if ak, ok = forge.(forgelink.AccountKeys); !ok && slug.VCS == forgelink.GitHub {
			return Key{}, forgelink.Errorf(forgelink.Internal, "the GitHub adapter cannot add user keys")
		}
	}

	pair, err := sshkeys.Generate(keyType, s.random())
	if err != nil {
		return Key{}, err
	}
	rec := &forgelink.CheckoutKey{
		ID:                forgelink.CheckoutKeyID(pair.FingerprintMD5),
		Project:           slug,
		Type:              typ,
		PublicKey:         pair.AuthorizedKey,
		FingerprintMD5:    pair.FingerprintMD5,
		FingerprintSHA256: pair.FingerprintSHA256,
		CreatedAt:         s.now(),
	}
	if rec.SealedPrivateKey, err = s.Sealer.Seal(ctx, pair.PrivatePEM, rec.AAD()); err != nil {
		return Key{}, fmt.Errorf("keysvc: seal checkout key: %w", err)
	}
	clear(pair.PrivatePEM)

	// undo removes what was installed when the key cannot be recorded.
	var undo func(context.Context) error
	switch {
	case typ == forgelink.CheckoutDeployKey:
		id, err := forge.EnsureDeployKey(ctx, slug, KeyTitle, pair.AuthorizedKeyWithComment(KeyTitle))
		if err != nil {
			return Key{}, forgelink.ForgeError(slug.VCS, "add a deploy key to "+slug.FullName(), err)
		}
		rec.VCSID = id
		undo = func(ctx context.Context) error { return forge.DeleteDeployKey(ctx, slug, id) }
	case slug.VCS == forgelink.GitHub:
		login, _, err := ak.Me(ctx)
		if err != nil {
			return Key{}, forgelink.ForgeError(slug.VCS, "read who you are", err)
		}
		id, err := ak.AddUserKey(ctx, KeyTitle+": "+slug.String(), pair.AuthorizedKey)
		if err != nil {
			return Key{}, userKeyError(err)
		}
		rec.VCSID, rec.Login = id, login
		undo = func(ctx context.Context) error { return ak.DeleteUserKey(ctx, id) }
	default: // a Bitbucket user key: the user adds it by hand
		if ak != nil {
			if login, _, err := ak.Me(ctx); err == nil {
				rec.Login = login
			}
		}
	}

	if err := s.Keys.CreateCheckoutKey(ctx, rec); err != nil {
		if undo != nil {
			// The caller's context may be what failed; the undo gets its own.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if uerr := undo(uctx); uerr != nil {
				s.log().WarnContext(ctx, "could not remove a checkout key that was not recorded", "project", slug.String(), "fingerprint", rec.FingerprintMD5, "err", uerr)
			}
			cancel()
		}
		return Key{}, fmt.Errorf("keysvc: record checkout key of %s: %w", slug, err)
	}
	s.log().InfoContext(ctx, "checkout key created", "project", slug.String(), "type", string(typ),
		"fingerprint", rec.FingerprintMD5, "fingerprint_sha256", rec.FingerprintSHA256, "vcs_id", rec.VCSID, "login", rec.Login)

	k := keyOf(rec)
	// Preferred depends on the other keys.
	if keys, err := s.ListCheckoutKeys(ctx, slug); err == nil {
		if i := slices.IndexFunc(keys, func(x Key) bool { return x.FingerprintMD5 == rec.FingerprintMD5 }); i >= 0 {
			k = keys[i]
		}
	}
	return k, nil
}

// userKeyError explains GitHub's refusal to add a user key: the adapter
// names the missing scope, which the user must grant.
func userKeyError(err error) error {
	switch forgelink.KindOf(err) {
	case forgelink.Forbidden:
		msg := forgelink.MessageOf(err)
		if !strings.Contains(msg, "scope") {
			msg = "GitHub refused to add the key to your account (" + msg + "): the token needs the admin:public_key scope"
		}
		return forgelink.E(forgelink.Forbidden, msg, err)
	case forgelink.Unauthorized:
		return forgelink.E(forgelink.Forbidden, "GitHub rejected the token while adding a key to your account; sign in again or set a valid token", err)
	}
	return forgelink.ForgeError(forgelink.GitHub, "add a key to your account", err)
}

// DeleteCheckoutKey removes the checkout key with the fingerprint from the
// VCS and then from forgelink. Deleting the last key is allowed; Deleted
// says how many are left. Deleting the follow-time deploy key leaves the
// project without one.
func (s *Service) DeleteCheckoutKey(ctx context.Context, login string, slug forgelink.Slug, fingerprint string) (*Deleted, error) {
	p, forge, err := s.authorize(ctx, login, slug, "manage its checkout keys")
	if err != nil {
		return nil, err
	}
	keys, recs, err := s.keys(ctx, p)
	if err != nil {
		return nil, err
	}
	i, err := findKey(keys, slug, fingerprint)
	if err != nil {
		return nil, err
	}
	key := keys[i]
	res := &Deleted{Key: key, Remaining: len(keys) - 1}

	if key.ProjectKey {
		if err := s.deleteProjectKey(ctx, forge, p); err != nil {
			return nil, err
		}
	} else {
		j := slices.IndexFunc(recs, func(r *forgelink.CheckoutKey) bool { return r.FingerprintMD5 == key.FingerprintMD5 })
		rec := recs[j]
		switch {
		case rec.Type == forgelink.CheckoutDeployKey && rec.VCSID != "":
			if err := forge.DeleteDeployKey(ctx, slug, rec.VCSID); err != nil {
				return nil, forgelink.ForgeError(slug.VCS, "remove the deploy key from "+slug.FullName(), err)
			}
		case rec.Type == forgelink.CheckoutUserKey && rec.VCSID != "":
			ak, ok := forge.(forgelink.AccountKeys)
			if !ok {
				return nil, forgelink.Errorf(forgelink.Internal, "the %s adapter cannot remove user keys", slug.VCS.Name())
			}
			if err := ak.DeleteUserKey(ctx, rec.VCSID); err != nil {
				return nil, userKeyError(err)
			}
		case rec.Type == forgelink.CheckoutUserKey:
			res.ManualStep = "remove the key from your Bitbucket account by hand (Personal settings > SSH keys); Bitbucket has no API for it"
		}
		if err := s.Keys.DeleteCheckoutKey(ctx, slug, rec.FingerprintMD5); err != nil && forgelink.KindOf(err) != forgelink.NotFound {
			return nil, fmt.Errorf("keysvc: delete checkout key of %s: %w", slug, err)
		}
	}
	s.log().InfoContext(ctx, "checkout key deleted", "project", slug.String(), "type", string(key.Type),
		"fingerprint", key.FingerprintMD5, "remaining", res.Remaining)
	return res, nil
}

// deleteProjectKey removes the follow-time deploy key from the VCS and the
// project, retrying a lost optimistic update.
func (s *Service) deleteProjectKey(ctx context.Context, forge forgelink.Forge, p *forgelink.Project) error {
	if p.DeployKeyVCSID != "" {
		if err := forge.DeleteDeployKey(ctx, p.Slug, p.DeployKeyVCSID); err != nil {
			return forgelink.ForgeError(p.Slug.VCS, "remove the deploy key from "+p.Slug.FullName(), err)
		}
	}
	fp := p.DeployKey.FingerprintMD5
	for attempt := 0; ; attempt++ {
		p.DeployKey = forgelink.SSHKey{}
		p.DeployKeyVCSID = ""
		p.UpdatedAt = s.now()
		err := s.Store.UpdateProject(ctx, p)
		if forgelink.KindOf(err) != forgelink.Conflict || attempt == 3 {
			if err != nil {
				return fmt.Errorf("keysvc: remove the deploy key of %s: %w", p.Slug, err)
			}
			return nil
		}
		if p, err = s.Store.GetProject(ctx, p.Slug); err != nil {
			return fmt.Errorf("keysvc: remove the deploy key of %s: %w", p.Slug, err)
		}
		if p.DeployKey.FingerprintMD5 != fp {
			return nil // replaced or removed meanwhile
		}
	}
}

// MaxHostnameLen is the longest hostname AddSSHKey accepts (DNS's limit).
const MaxHostnameLen = 253

// ValidHostname checks the hostname of an additional SSH key: "" (every
// host), a DNS name, or an IP address. It returns the name in lower case.
// The error never quotes the input, which may be anything a user pasted.
func ValidHostname(h string) (string, error) {
	bad := forgelink.Errorf(forgelink.Invalid, "invalid hostname: want a DNS name such as deploy.example.com, an IP address, or \"\" for every host")
	h = strings.ToLower(strings.TrimSpace(h))
	if h == "" {
		return "", nil
	}
	if len(h) > MaxHostnameLen {
		return "", bad
	}
	if net.ParseIP(h) != nil {
		return h, nil
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", bad
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return "", bad
			}
		}
	}
	return strings.TrimSuffix(h, "."), nil
}

func sshKeyOf(r *forgelink.SSHKeyRecord) SSHKey {
	return SSHKey{Hostname: r.Hostname, PublicKey: r.PublicKey, FingerprintMD5: r.FingerprintMD5, FingerprintSHA256: r.FingerprintSHA256, CreatedAt: r.CreatedAt}
}

// AddSSHKey checks and stores an additional SSH key for hostname. Adding a
// key the project already has for that hostname changes nothing and
// returns the stored key with created false: a retry is harmless.
func (s *Service) AddSSHKey(ctx context.Context, login string, slug forgelink.Slug, hostname string, privateKey []byte) (SSHKey, bool, error) {
	p, err := s.project(ctx, slug)
	if err != nil {
		return SSHKey{}, false, err
	}
	if err := follower(ctx, p, login, "manage its SSH keys"); err != nil {
		return SSHKey{}, false, err
	}
	hostname, err = ValidHostname(hostname)
	if err != nil {
		return SSHKey{}, false, err
	}
	privateKey = unescapeNewlines(privateKey)
	pair, err := sshkeys.ParsePrivateKey(privateKey)
	if err != nil {
		return SSHKey{}, false, err
	}
	defer clear(pair.PrivatePEM)
	if existing, err := s.findSSHKey(ctx, slug, hostname, pair.FingerprintMD5); err == nil {
		return existing, false, nil
	}
	if _, _, err := s.authorize(ctx, login, slug, "manage its SSH keys"); err != nil {
		return SSHKey{}, false, err
	}
	rec := &forgelink.SSHKeyRecord{
		Project:           slug,
		Hostname:          hostname,
		PublicKey:         pair.AuthorizedKey,
		FingerprintMD5:    pair.FingerprintMD5,
		FingerprintSHA256: pair.FingerprintSHA256,
		CreatedAt:         s.now(),
	}
	if rec.SealedPrivateKey, err = s.Sealer.Seal(ctx, pair.PrivatePEM, rec.AAD()); err != nil {
		return SSHKey{}, false, fmt.Errorf("keysvc: seal ssh key: %w", err)
	}
	err = s.Keys.CreateSSHKey(ctx, rec)
	if forgelink.KindOf(err) == forgelink.Conflict {
		// Added concurrently: the same key for the same host.
		if existing, ferr := s.findSSHKey(ctx, slug, hostname, pair.FingerprintMD5); ferr == nil {
			return existing, false, nil
		}
	}
	if err != nil {
		return SSHKey{}, false, fmt.Errorf("keysvc: record ssh key of %s: %w", slug, err)
	}
	s.log().InfoContext(ctx, "ssh key added", "project", slug.String(), "hostname", hostname,
		"fingerprint", rec.FingerprintMD5, "fingerprint_sha256", rec.FingerprintSHA256)
	return sshKeyOf(rec), true, nil
}

// unescapeNewlines turns a key whose line breaks arrived as the two
// characters `\n` (a common result of pasting a key into JSON by hand) into
// the key with real line breaks.
func unescapeNewlines(b []byte) []byte {
	if bytes.Contains(b, []byte("\n")) || !bytes.Contains(b, []byte(`\n`)) {
		return b
	}
	return bytes.ReplaceAll(b, []byte(`\n`), []byte("\n"))
}

func (s *Service) findSSHKey(ctx context.Context, slug forgelink.Slug, hostname, md5 string) (SSHKey, error) {
	recs, err := s.Keys.ListSSHKeys(ctx, slug)
	if err != nil {
		return SSHKey{}, err
	}
	for _, r := range recs {
		if r.Hostname == hostname && r.FingerprintMD5 == md5 {
			return sshKeyOf(r), nil
		}
	}
	return SSHKey{}, forgelink.Errorf(forgelink.NotFound, "no such key")
}

// ListSSHKeys returns the project's additional SSH keys, oldest first.
func (s *Service) ListSSHKeys(ctx context.Context, slug forgelink.Slug) ([]SSHKey, error) {
	if _, err := s.project(ctx, slug); err != nil {
		return nil, err
	}
	recs, err := s.Keys.ListSSHKeys(ctx, slug)
	if err != nil {
		return nil, err
	}
	out := make([]SSHKey, 0, len(recs))
	for _, r := range recs {
		out = append(out, sshKeyOf(r))
	}
	return out, nil
}

// DeleteSSHKey removes an additional SSH key by fingerprint (MD5 or
// SHA-256) and hostname. A nil hostname matches any, if only one key has
// the fingerprint.
func (s *Service) DeleteSSHKey(ctx context.Context, login string, slug forgelink.Slug, hostname *string, fingerprint string) (SSHKey, error) {
	if _, _, err := s.authorize(ctx, login, slug, "manage its SSH keys"); err != nil {
		return SSHKey{}, err
	}
	if strings.TrimSpace(fingerprint) == "" {
		return SSHKey{}, forgelink.Errorf(forgelink.Invalid, "fingerprint is required")
	}
	var host string
	if hostname != nil {
		var err error
		if host, err = ValidHostname(*hostname); err != nil {
			return SSHKey{}, err
		}
	}
	recs, err := s.Keys.ListSSHKeys(ctx, slug)
	if err != nil {
		return SSHKey{}, err
	}
	var match []*forgelink.SSHKeyRecord
	for _, r := range recs {
		if matchFingerprint(fingerprint, r.FingerprintMD5, r.FingerprintSHA256) && (hostname == nil || r.Hostname == host) {
			match = append(match, r)
		}
	}
	switch {
	case len(match) == 0:
		return SSHKey{}, forgelink.Errorf(forgelink.NotFound, "project %s has no SSH key with that fingerprint and hostname", slug)
	case len(match) > 1:
		return SSHKey{}, forgelink.Errorf(forgelink.Invalid, "project %s has that key for %d hosts; give the hostname too", slug, len(match))
	}
	r := match[0]
	if err := s.Keys.DeleteSSHKey(ctx, slug, r.Hostname, r.FingerprintMD5); err != nil {
		return SSHKey{}, fmt.Errorf("keysvc: delete ssh key of %s: %w", slug, err)
	}
	s.log().InfoContext(ctx, "ssh key deleted", "project", slug.String(), "hostname", r.Hostname, "fingerprint", r.FingerprintMD5)
	return sshKeyOf(r), nil
}

// Me returns who the acting user is on vcs; with vcs "" on the first VCS
// (GitHub, then Bitbucket) whose adapter can tell. fallback is returned as
// the login when none can.
func (s *Service) Me(ctx context.Context, vcs forgelink.VCS, fallback string) (Me, error) {
	vcss := []forgelink.VCS{forgelink.GitHub, forgelink.Bitbucket}
	if vcs != "" {
		vcss = []forgelink.VCS{vcs}
	}
	var firstErr error
	for _, v := range vcss {
		forge, err := s.Forges(ctx, v)
		if err != nil {
			if firstErr == nil && vcs != "" {
				firstErr = err
			}
			continue
		}
		ak, ok := forge.(forgelink.AccountKeys)
		if !ok {
			continue
		}
		login, email, err := ak.Me(ctx)
		if err != nil {
			return Me{}, forgelink.ForgeError(v, "read who you are", err)
		}
		return Me{VCS: v, Login: login, Email: email}, nil
	}
	if firstErr != nil {
		return Me{}, firstErr
	}
	return Me{Login: fallback}, nil
}

// MintRunnerToken returns a new single-use token with which the build of
// pipelineID fetches its checkout material, and when it expires. login
// must follow the pipeline's project.
func (s *Service) MintRunnerToken(ctx context.Context, login, pipelineID string) (string, time.Time, error) {
	if s.Pipelines == nil {
		return "", time.Time{}, forgelink.Errorf(forgelink.NotFound, "pipeline not found")
	}
	pl, err := s.Pipelines.GetPipeline(ctx, pipelineID)
	if err != nil {
		if forgelink.KindOf(err) == forgelink.NotFound {
			err = forgelink.E(forgelink.NotFound, "pipeline not found", err)
		}
		return "", time.Time{}, err
	}
	slug, err := forgelink.ParseSlug(pl.Project)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("keysvc: pipeline %s: %w", pl.ID, err)
	}
	p, err := s.project(ctx, slug)
	if err != nil {
		return "", time.Time{}, err
	}
	if err := follower(ctx, p, login, "start its builds"); err != nil {
		return "", time.Time{}, err
	}
	return s.MintRunnerTokenFor(ctx, pl.ID)
}

// MintRunnerTokenFor mints a runner token for a pipeline without checking
// who asks: for the hand-off of a pipeline the trigger just created.
func (s *Service) MintRunnerTokenFor(ctx context.Context, pipelineID string) (string, time.Time, error) {
	token, rec, err := s.newToken("flr_", pipelineID, s.runnerTTL(), false)
	if err == nil {
		err = s.Keys.MintRunnerTokens(ctx, rec)
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("keysvc: mint runner token for pipeline %s: %w", pipelineID, err)
	}
	s.log().InfoContext(ctx, "runner token minted", "pipeline", pipelineID, "expires_at", rec.ExpiresAt)
	return token, rec.ExpiresAt, nil
}

// DefaultExecutorTokenTTL is how long an executor token is good for: as
// long as a pipeline may run, with room for queueing.
const DefaultExecutorTokenTTL = 24 * time.Hour

// MintPipelineTokens mints a new pipeline's hand-off tokens in one store
// write: its single-use checkout token, and its executor token, which
// authenticates the pipeline's status reports (POST
// /api/v2/pipeline/{id}/status) and nothing else, any number of times
// until it expires. Only their hashes are stored.
func (s *Service) MintPipelineTokens(ctx context.Context, pipelineID string) (forgelink.PipelineTokens, error) {
	fail := func(err error) (forgelink.PipelineTokens, error) {
		return forgelink.PipelineTokens{}, fmt.Errorf("keysvc: mint tokens for pipeline %s: %w", pipelineID, err)
	}
	runner, runnerRec, err := s.newToken("flr_", pipelineID, s.runnerTTL(), false)
	if err != nil {
		return fail(err)
	}
	executor, executorRec, err := s.newToken(forgelink.ExecutorTokenPrefix, pipelineID, DefaultExecutorTokenTTL, true)
	if err != nil {
		return fail(err)
	}
	if err := s.Keys.MintRunnerTokens(ctx, runnerRec, executorRec); err != nil {
		return fail(err)
	}
	s.log().InfoContext(ctx, "pipeline tokens minted", "pipeline", pipelineID, "expires_at", runnerRec.ExpiresAt)
	return forgelink.PipelineTokens{
		Runner: runner, RunnerExpiresAt: runnerRec.ExpiresAt,
		Executor: executor, ExecutorExpiresAt: executorRec.ExpiresAt,
	}, nil
}

func (s *Service) runnerTTL() time.Duration {
	if s.RunnerTokenTTL > 0 {
		return s.RunnerTokenTTL
	}
	return DefaultRunnerTokenTTL
}

// newToken returns a random token with prefix and the record that stores
// its hash.
func (s *Service) newToken(prefix, pipelineID string, ttl time.Duration, executor bool) (string, *forgelink.RunnerToken, error) {
	raw := make([]byte, 32)
	if _, err := io.ReadFull(s.random(), raw); err != nil {
		return "", nil, fmt.Errorf("generate token: %w", err)
	}
	token := prefix + base64.RawURLEncoding.EncodeToString(raw)
	return token, &forgelink.RunnerToken{
		Hash: forgelink.HashRunnerToken(token), PipelineID: pipelineID, ExpiresAt: s.now().Add(ttl), Executor: executor,
	}, nil
}

// Checkout uses up a runner token and returns the checkout material of
// pipelineID: clone URL, revision, known_hosts, the preferred checkout key
// and, if the pipeline may see secrets, the additional SSH keys. A token
// is good once; an unknown, used or expired one, or one minted for another
// pipeline (which it uses up too), is Unauthorized.
func (s *Service) Checkout(ctx context.Context, pipelineID, token string) (*Checkout, error) {
	refused := forgelink.Errorf(forgelink.Unauthorized, "invalid, used or expired runner token")
	if token == "" || s.Pipelines == nil {
		return nil, refused
	}
	tok, err := s.Keys.ConsumeRunnerToken(ctx, forgelink.HashRunnerToken(token), s.now())
	if err != nil {
		if forgelink.KindOf(err) == forgelink.Unauthorized {
			return nil, forgelink.E(forgelink.Unauthorized, refused.Error(), err)
		}
		return nil, err
	}
	if tok.PipelineID != pipelineID {
		s.log().WarnContext(ctx, "runner token presented for another pipeline", "pipeline", pipelineID, "token_pipeline", tok.PipelineID)
		return nil, forgelink.Errorf(forgelink.Unauthorized, "the runner token is for another pipeline")
	}
	pl, err := s.Pipelines.GetPipeline(ctx, tok.PipelineID)
	if err != nil {
		if forgelink.KindOf(err) == forgelink.NotFound {
			err = forgelink.E(forgelink.NotFound, "the token's pipeline no longer exists", err)
		}
		return nil, err
	}
	slug, err := forgelink.ParseSlug(pl.Project)
	if err != nil {
		return nil, fmt.Errorf("keysvc: pipeline %s: %w", pl.ID, err)
	}
	p, err := s.project(ctx, slug)
	if err != nil {
		return nil, err
	}
	host := hostOf(slug.VCS, s.GitHubAPIURL)
	out := &Checkout{
		PipelineID:     pl.ID,
		Project:        slug,
		CloneURL:       "git@" + host.Host + ":" + slug.FullName() + ".git",
		VCSURL:         host.WebURL + slug.FullName(),
		Revision:       pl.Revision,
		Branch:         pl.Branch,
		Tag:            pl.Tag,
		KnownHosts:     host.KnownHosts,
		KnownHostsNote: host.Note,
		SSHKeys:        []PrivateKey{},
	}

	keys, recs, err := s.keys(ctx, p)
	if err != nil {
		return nil, err
	}
	if i := slices.IndexFunc(keys, func(k Key) bool { return k.Preferred }); i >= 0 {
		k := keys[i]
		var sealed, aad []byte
		if k.ProjectKey {
			sealed, aad = p.DeployKey.SealedPrivateKey, slug.AAD(follow.PurposeDeployKey)
		} else {
			r := recs[slices.IndexFunc(recs, func(r *forgelink.CheckoutKey) bool { return r.FingerprintMD5 == k.FingerprintMD5 })]
			sealed, aad = r.SealedPrivateKey, r.AAD()
		}
		priv, err := s.Sealer.Open(ctx, sealed, aad)
		if err != nil {
			return nil, fmt.Errorf("keysvc: open checkout key %s of %s: %w", k.FingerprintMD5, slug, err)
		}
		out.CheckoutKey = &PrivateKey{Type: k.Type, PublicKey: k.PublicKey, FingerprintMD5: k.FingerprintMD5, FingerprintSHA256: k.FingerprintSHA256, PrivateKey: string(priv)}
	}
	if pl.SecretsExposed {
		sshRecs, err := s.Keys.ListSSHKeys(ctx, slug)
		if err != nil {
			return nil, err
		}
		for _, r := range sshRecs {
			priv, err := s.Sealer.Open(ctx, r.SealedPrivateKey, r.AAD())
			if err != nil {
				return nil, fmt.Errorf("keysvc: open ssh key %s of %s: %w", r.FingerprintMD5, slug, err)
			}
			out.SSHKeys = append(out.SSHKeys, PrivateKey{Hostname: r.Hostname, PublicKey: r.PublicKey, FingerprintMD5: r.FingerprintMD5, FingerprintSHA256: r.FingerprintSHA256, PrivateKey: string(priv)})
		}
	}
	attrs := []any{"pipeline", pl.ID, "project", slug.String(), "ssh_keys", len(out.SSHKeys)}
	if out.CheckoutKey != nil {
		attrs = append(attrs, "checkout_key", out.CheckoutKey.FingerprintMD5)
	}
	s.log().InfoContext(ctx, "checkout material served", attrs...)
	return out, nil
}

// RemoveProjectKeys removes every checkout key and additional SSH key that
// forgelink created for the project, from the VCS (deploy keys, GitHub user
// keys) and from the store; for unfollow, whose caller has authorized it.
// The follow-time deploy key is the Project's and is left to unfollow. It
// stops at the first VCS refusal, so a retry finishes the job.
func (s *Service) RemoveProjectKeys(ctx context.Context, slug forgelink.Slug) error {
	recs, err := s.Keys.ListCheckoutKeys(ctx, slug)
	if err != nil {
		return err
	}
	var forge forgelink.Forge
	for _, r := range recs {
		if r.VCSID != "" && forge == nil {
			if forge, err = s.Forges(ctx, slug.VCS); err != nil {
				return err
			}
		}
		switch {
		case r.VCSID != "" && r.Type == forgelink.CheckoutDeployKey:
			if err := forge.DeleteDeployKey(ctx, slug, r.VCSID); err != nil {
				return forgelink.ForgeError(slug.VCS, "remove a deploy key from "+slug.FullName(), err)
			}
		case r.VCSID != "" && r.Type == forgelink.CheckoutUserKey:
			ak, ok := forge.(forgelink.AccountKeys)
			if !ok {
				return forgelink.Errorf(forgelink.Internal, "the %s adapter cannot remove user keys", slug.VCS.Name())
			}
			if err := ak.DeleteUserKey(ctx, r.VCSID); err != nil {
				return userKeyError(err)
			}
		}
		if err := s.Keys.DeleteCheckoutKey(ctx, slug, r.FingerprintMD5); err != nil && forgelink.KindOf(err) != forgelink.NotFound {
			return err
		}
	}
	sshRecs, err := s.Keys.ListSSHKeys(ctx, slug)
	if err != nil {
		return err
	}
	for _, r := range sshRecs {
		if err := s.Keys.DeleteSSHKey(ctx, slug, r.Hostname, r.FingerprintMD5); err != nil && forgelink.KindOf(err) != forgelink.NotFound {
			return err
		}
	}
	if len(recs)+len(sshRecs) > 0 {
		s.log().InfoContext(ctx, "project keys removed", "project", slug.String(), "checkout_keys", len(recs), "ssh_keys", len(sshRecs))
	}
	return nil
}
