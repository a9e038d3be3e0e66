// Package signin is forgelink's users: sign-in with GitHub's and
// Bitbucket's OAuth web flows (golang.org/x/oauth2), browser sessions with
// CSRF tokens, personal API tokens, each user's sealed VCS token (refreshed
// before use where it expires), and authorization from the VCS's own
// repository permissions.
//
//	svc := &signin.Service{Users: st, Sealer: sl, Config: cfg, Identities: ids}
//	mux.Handle("/login/", svc.Handler())             // the web flows, /logout, /api/v2/me...
//	auth := svc                                      // an apiauth.SessionAuthenticator
//	authz := svc                                     // an apiauth.Authorizer
//
// Local mode's environment user (FORGELINK_API_TOKEN with GITHUB_TOKEN /
// BITBUCKET_TOKEN) keeps working beside signed-in users: Service.EnvToken.
package signin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"forgelink/shared/apiauth"
	"forgelink/shared/config"
	"forgelink/shared/forgelink"
	"forgelink/shared/forges"
)

// GitHubScopes are the scopes forgelink asks GitHub for: private
// repositories, hooks, deploy and user keys, the user's email.
var GitHubScopes = []string{"repo", "admin:repo_hook", "admin:public_key", "user:email"}

// Provider is one VCS's OAuth client.
type Provider struct {
	// ClientID and ClientSecret of the OAuth App (GitHub) or consumer
	// (Bitbucket); sign-in with the VCS is off without them.
	ClientID, ClientSecret string
	// WebURL is the VCS's web host (https://github.com, an Enterprise
	// Server's https://HOST, https://bitbucket.org).
	WebURL string
}

// Config configures sign-in.
type Config struct {
	// PublicURL is forgelink's base URL: callbacks are
	// PublicURL/login/{vcs}/callback; cookies are Secure when it is https.
	PublicURL string
	GitHub    Provider
	Bitbucket Provider
}

// Identities builds the VCS API client of a user's token.
type Identities func(ctx context.Context, vcs forgelink.VCS, token string) (forgelink.Identity, error)

// Service is sign-in, sessions, tokens and authorization.
type Service struct {
	Users      forgelink.UserStore
	Sealer     forgelink.Sealer
	Config     Config
	Identities Identities
	// EnvToken, when set, is local mode's API token: it authenticates the
	// environment user EnvUser, who acts with the environment's VCS tokens
	// and is not checked against VCS permissions.
	EnvToken string
	EnvUser  string
	// HTTPClient makes the OAuth exchanges (default: 20 s timeout).
	HTTPClient *http.Client
	Now        func() time.Time
	Log        *slog.Logger

	perms      permCache
	refreshing userLocks
}

var (
	_ apiauth.SessionAuthenticator = (*Service)(nil)
	_ apiauth.Authorizer           = (*Service)(nil)
)

// Enabled reports whether sign-in with vcs is configured.
func (s *Service) Enabled(vcs forgelink.VCS) bool {
	p := s.provider(vcs)
	return p != nil && p.ClientID != "" && p.ClientSecret != ""
}

func (s *Service) provider(vcs forgelink.VCS) *Provider {
	switch vcs {
	case forgelink.GitHub:
		return &s.Config.GitHub
	case forgelink.Bitbucket:
		return &s.Config.Bitbucket
	}
	return nil
}

// oauthConfig is vcs's x/oauth2 configuration; base is forgelink's public
// URL (see baseURL).
func (s *Service) oauthConfig(vcs forgelink.VCS, base string) *oauth2.Config {
	p := s.provider(vcs)
	web := strings.TrimRight(p.WebURL, "/")
	c := &oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		RedirectURL:  base + "/login/" + string(vcs) + "/callback",
	}
	switch vcs {
	case forgelink.GitHub:
		c.Endpoint = oauth2.Endpoint{AuthURL: web + "/login/oauth/authorize", TokenURL: web + "/login/oauth/access_token", AuthStyle: oauth2.AuthStyleInParams}
		c.Scopes = GitHubScopes
	case forgelink.Bitbucket:
		c.Endpoint = oauth2.Endpoint{AuthURL: web + "/site/oauth2/authorize", TokenURL: web + "/site/oauth2/access_token", AuthStyle: oauth2.AuthStyleInHeader}
	}
	return c
}

// oauthContext makes x/oauth2 use the service's HTTP client.
func (s *Service) oauthContext(ctx context.Context) context.Context {
	hc := s.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 20 * time.Second}
	}
	return context.WithValue(ctx, oauth2.HTTPClient, hc)
}

// Authenticate accepts the environment token (local mode) or a personal
// API token.
func (s *Service) Authenticate(ctx context.Context, token string) (*apiauth.User, error) {
	refused := forgelink.Errorf(forgelink.Unauthorized, "invalid API token")
	if token == "" {
		return nil, refused
	}
	if s.EnvToken != "" {
		a, b := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(s.EnvToken))
		if subtle.ConstantTimeCompare(a[:], b[:]) == 1 {
			return &apiauth.User{Login: s.EnvUser}, nil
		}
	}
	if s.Users == nil {
		return nil, refused
	}
	t, err := s.Users.GetAPIToken(ctx, hashOf(token))
	if forgelink.KindOf(err) == forgelink.Unauthorized || forgelink.KindOf(err) == forgelink.NotFound {
		return nil, refused
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	return s.userOf(ctx, t.UserID)
}

// AuthenticateSession accepts a live session, extending it (at most once
// an hour) so that it expires SessionTTL after its last use.
func (s *Service) AuthenticateSession(ctx context.Context, sessionID string) (*apiauth.User, string, error) {
	refused := forgelink.Errorf(forgelink.Unauthorized, "not signed in, or the session expired: sign in again")
	if s.Users == nil || sessionID == "" {
		return nil, "", refused
	}
	hash := hashOf(sessionID)
	now := s.now()
	sess, err := s.Users.GetSession(ctx, hash, now)
	if forgelink.KindOf(err) == forgelink.Unauthorized || forgelink.KindOf(err) == forgelink.NotFound {
		return nil, "", refused
	}
	if err != nil {
		return nil, "", fmt.Errorf("authenticate session: %w", err)
	}
	if next := now.Add(forgelink.SessionTTL); next.Sub(sess.ExpiresAt) > time.Hour {
		if err := s.Users.ExtendSession(ctx, hash, next); err != nil {
			s.log().WarnContext(ctx, "could not extend a session", "user", sess.UserID, "err", err)
		}
	}
	if sess.UserID == envSessionUser {
		if s.EnvToken == "" {
			return nil, "", refused
		}
		return &apiauth.User{Login: s.EnvUser}, sess.CSRF, nil
	}
	u, err := s.userOf(ctx, sess.UserID)
	if err != nil {
		return nil, "", err
	}
	return u, sess.CSRF, nil
}

func (s *Service) userOf(ctx context.Context, id string) (*apiauth.User, error) {
	u, err := s.Users.GetUser(ctx, id)
	if forgelink.KindOf(err) == forgelink.NotFound {
		return nil, forgelink.Errorf(forgelink.Unauthorized, "the token's user no longer exists")
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	return &apiauth.User{Login: u.Login, ID: u.ID, VCS: u.VCS}, nil
}

// Token returns a signed-in user's VCS access token, refreshing it first
// when it expires within a minute (Bitbucket). Two callers refreshing at
// once keep one valid token: the refreshed token is stored conditionally
// on the user's version, and the loser uses the winner's.
func (s *Service) Token(ctx context.Context, userID string) (string, error) {
	for attempt := 1; ; attempt++ {
		u, err := s.Users.GetUser(ctx, userID)
		if err != nil {
			return "", fmt.Errorf("token of %s: %w", userID, err)
		}
		access, err := s.Sealer.Open(ctx, u.SealedToken, u.AAD(forgelink.PurposeUserToken))
		if err != nil {
			return "", fmt.Errorf("token of %s: %w", userID, err)
		}
		if u.TokenExpiry.IsZero() || u.TokenExpiry.After(s.now().Add(time.Minute)) || len(u.SealedRefresh) == 0 {
			return string(access), nil
		}
		// One refresh at a time per user in this process; after waiting,
		// read again: the other caller may have refreshed already.
		unlock := s.refreshing.lock(userID)
		if cur, err := s.Users.GetUser(ctx, userID); err != nil || cur.Version != u.Version {
			unlock()
			if err != nil {
				return "", fmt.Errorf("token of %s: %w", userID, err)
			}
			continue
		}
		fresh, err := s.refresh(ctx, u)
		unlock()
		if err != nil {
			// Bitbucket rotates refresh tokens: when another process
			// refreshed first, this one's refresh token is spent. Wait for
			// the winner's token to be stored, and use it.
			if s.waitForRefresh(ctx, u) && attempt < 3 {
				continue
			}
			return "", forgelink.E(forgelink.Unauthorized, fmt.Sprintf("%s refused to refresh %s's token: sign in again", u.VCS.Name(), u.Login), err)
		}
		if err := s.sealTokens(ctx, u, fresh); err != nil {
			return "", err
		}
		err = s.Users.UpdateUser(ctx, u)
		if err == nil {
			s.log().InfoContext(ctx, "VCS token refreshed", "user", u.ID, "expires_at", u.TokenExpiry)
			return fresh.AccessToken, nil
		}
		if forgelink.KindOf(err) != forgelink.Conflict || attempt == 3 {
			return "", fmt.Errorf("token of %s: store the refreshed token: %w", userID, err)
		}
		// Another caller refreshed at the same time and stored first: use
		// the stored token.
	}
}

// refresh asks the VCS for a new access token with u's refresh token.
func (s *Service) refresh(ctx context.Context, u *forgelink.User) (*oauth2.Token, error) {
	refresh, err := s.Sealer.Open(ctx, u.SealedRefresh, u.AAD(forgelink.PurposeUserRefresh))
	if err != nil {
		return nil, fmt.Errorf("token of %s: %w", u.ID, err)
	}
	// Only the refresh token: given the access token, x/oauth2 would reuse
	// it until 10 s before its expiry, not refresh it now.
	old := &oauth2.Token{RefreshToken: string(refresh)}
	return s.oauthConfig(u.VCS, strings.TrimRight(s.Config.PublicURL, "/")).TokenSource(s.oauthContext(ctx), old).Token()
}

// waitForRefresh waits up to two seconds for another caller's refresh of
// u's token to be stored, and reports whether one was.
func (s *Service) waitForRefresh(ctx context.Context, u *forgelink.User) bool {
	for range 20 {
		if cur, err := s.Users.GetUser(ctx, u.ID); err == nil && cur.Version != u.Version {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

// userLocks serializes token refreshes per user within a process.
type userLocks struct {
	mu sync.Mutex
	m  map[string]*userLock
}

type userLock struct {
	mu   sync.Mutex
	refs int
}

// lock locks id's mutex and returns its unlock.
func (l *userLocks) lock(id string) func() {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*userLock{}
	}
	ul := l.m[id]
	if ul == nil {
		ul = &userLock{}
		l.m[id] = ul
	}
	ul.refs++
	l.mu.Unlock()
	ul.mu.Lock()
	return func() {
		ul.mu.Unlock()
		l.mu.Lock()
		if ul.refs--; ul.refs == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
}

// sealTokens seals t's access and refresh tokens onto u.
func (s *Service) sealTokens(ctx context.Context, u *forgelink.User, t *oauth2.Token) error {
	sealed, err := s.Sealer.Seal(ctx, []byte(t.AccessToken), u.AAD(forgelink.PurposeUserToken))
	if err != nil {
		return fmt.Errorf("seal the token of %s: %w", u.ID, err)
	}
	u.SealedToken, u.TokenExpiry = sealed, t.Expiry.UTC()
	u.SealedRefresh = nil
	if t.RefreshToken != "" {
		if u.SealedRefresh, err = s.Sealer.Seal(ctx, []byte(t.RefreshToken), u.AAD(forgelink.PurposeUserRefresh)); err != nil {
			return fmt.Errorf("seal the refresh token of %s: %w", u.ID, err)
		}
	}
	u.UpdatedAt = s.now()
	return nil
}

// permTTL is how long a user's permission on a repository is trusted.
const permTTL = 5 * time.Minute

// Authorize checks the user's permission on slug with the user's own VCS
// token (cached for permTTL). The environment user is not checked: it is
// the deployment's operator, acting with the operator's token.
func (s *Service) Authorize(ctx context.Context, u *apiauth.User, slug forgelink.Slug, need forgelink.Permission) error {
	if u == nil {
		return forgelink.Errorf(forgelink.Unauthorized, "not signed in")
	}
	if u.Env() {
		return nil
	}
	hidden := forgelink.Errorf(forgelink.NotFound, "project %s not found", slug)
	if u.VCS != slug.VCS {
		return hidden
	}
	have, ok := s.perms.get(u.ID, slug, s.now())
	if !ok {
		token, err := s.Token(ctx, u.ID)
		if err != nil {
			return err
		}
		id, err := s.Identities(ctx, u.VCS, token)
		if err != nil {
			return err
		}
		if have, err = id.Permission(ctx, slug); err != nil {
			return fmt.Errorf("permission of %s on %s: %w", u.Login, slug, err)
		}
		s.perms.put(u.ID, slug, have, s.now())
	}
	switch {
	case have == forgelink.PermissionNone:
		return hidden
	case have < need:
		return forgelink.Errorf(forgelink.Forbidden, "this needs admin permission on %s; %s has %s", slug.FullName(), u.Login, have)
	}
	return nil
}

// permCache remembers permissions for permTTL.
type permCache struct {
	mu sync.Mutex
	m  map[string]permEntry
}

type permEntry struct {
	p  forgelink.Permission
	at time.Time
}

const maxCachedPerms = 10000

func (c *permCache) get(user string, slug forgelink.Slug, now time.Time) (forgelink.Permission, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[user+"\x00"+slug.String()]
	if !ok || now.Sub(e.at) > permTTL {
		return 0, false
	}
	return e.p, true
}

func (c *permCache) put(user string, slug forgelink.Slug, p forgelink.Permission, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedPerms {
		c.m = map[string]permEntry{}
	}
	c.m[user+"\x00"+slug.String()] = permEntry{p, now}
}

// hashOf is the stored form of a session id, token or state.
func hashOf(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// random returns a new URL-safe random secret with prefix.
func random(prefix string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
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

// New returns the sign-in service configured from cfg (OAuth clients, web
// hosts, public URL; local mode's token when envToken is set).
func New(cfg *config.Config, users forgelink.UserStore, sealer forgelink.Sealer, hc *http.Client, envToken string) *Service {
	return &Service{
		Users:  users,
		Sealer: sealer,
		Config: Config{
			PublicURL: cfg.PublicURL,
			GitHub:    Provider{ClientID: cfg.OAuthClientID, ClientSecret: cfg.OAuthSecret, WebURL: cfg.GitHubWebURL},
			Bitbucket: Provider{ClientID: cfg.BitbucketKey, ClientSecret: cfg.BitbucketSecret, WebURL: cfg.BitbucketWeb},
		},
		Identities: forges.Identities(cfg, hc),
		EnvToken:   envToken,
		EnvUser:    cfg.APIUser,
		HTTPClient: hc,
		Log:        cfg.Logger(),
	}
}
