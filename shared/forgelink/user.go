package forgelink

import (
	"context"
	"strings"
	"time"
)

// User is a person signed in with a VCS account. It is keyed by the VCS
// and the account's numeric id (logins change; ids do not).
type User struct {
	// ID is UserID(VCS, VCSUserID), e.g. "github:583231".
	ID        string
	VCS       VCS
	VCSUserID string
	Login     string
	Name      string
	// SealedToken is the VCS access token, sealed with AAD
	// u.AAD(PurposeUserToken); SealedRefresh the refresh token (Bitbucket),
	// with u.AAD(PurposeUserRefresh). TokenExpiry is zero for tokens that
	// do not expire (GitHub OAuth Apps).
	SealedToken   []byte
	SealedRefresh []byte `json:",omitempty"`
	TokenExpiry   time.Time
	// Scopes are the scopes the VCS granted.
	Scopes    []string
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version increases with every write; UpdateUser is conditional on it,
	// so two functions refreshing one token at once keep one valid token.
	Version int64
}

// Purposes of the secrets sealed on a user record.
const (
	PurposeUserToken   = "vcs-token"
	PurposeUserRefresh = "vcs-refresh-token"
)

// UserID is the id of the user with VCS account id vcsUserID.
func UserID(vcs VCS, vcsUserID string) string { return string(vcs) + ":" + vcsUserID }

// AAD binds a secret sealed on the user record to it.
func (u *User) AAD(purpose string) []byte { return []byte("user/" + u.ID + "/" + purpose) }

// Session is a signed-in browser session. Only the SHA-256 of its cookie
// value is stored.
type Session struct {
	Hash   string
	UserID string
	// CSRF is the value of the forgelink_csrf cookie that state-changing
	// requests must echo (X-CSRF-Token or the csrf_token form field).
	CSRF      string
	CreatedAt time.Time
	// ExpiresAt slides: each use pushes it SessionTTL ahead (at most once
	// an hour, to spare writes).
	ExpiresAt time.Time
}

// SessionTTL is a session's sliding lifetime.
const SessionTTL = 30 * 24 * time.Hour

// APIToken is a personal API token. Only the SHA-256 of its value is
// stored; the value is shown once, when it is created.
type APIToken struct {
	ID        string
	Hash      string
	UserID    string
	Label     string
	CreatedAt time.Time
}

// UserStore keeps users, sessions, personal API tokens and OAuth states.
type UserStore interface {
	// PutUser stores u, creating it or replacing the stored user (a new
	// sign-in), and sets u.Version to the stored version.
	PutUser(ctx context.Context, u *User) error
	// GetUser returns the user, or NotFound.
	GetUser(ctx context.Context, id string) (*User, error)
	// UpdateUser replaces the user if its stored Version equals u.Version,
	// then increments u.Version; Conflict otherwise, NotFound if absent.
	UpdateUser(ctx context.Context, u *User) error

	// CreateSession stores s (Conflict if its hash exists).
	CreateSession(ctx context.Context, s *Session) error
	// GetSession returns the session with this hash if it has not expired
	// at now; otherwise Unauthorized.
	GetSession(ctx context.Context, hash string, now time.Time) (*Session, error)
	// ExtendSession sets the session's expiry; NotFound if it is gone.
	ExtendSession(ctx context.Context, hash string, expiresAt time.Time) error
	// DeleteSession removes the session; a missing one is not an error.
	DeleteSession(ctx context.Context, hash string) error

	// CreateAPIToken stores t (Conflict if its hash or id exists).
	CreateAPIToken(ctx context.Context, t *APIToken) error
	// GetAPIToken returns the token with this hash, or Unauthorized.
	GetAPIToken(ctx context.Context, hash string) (*APIToken, error)
	// ListAPITokens returns the user's tokens, oldest first.
	ListAPITokens(ctx context.Context, userID string) ([]*APIToken, error)
	// DeleteAPIToken revokes the user's token id at once; NotFound if the
	// user has no such token.
	DeleteAPIToken(ctx context.Context, userID, id string) error

	// CreateOAuthState stores the hash of a sign-in's state until
	// expiresAt.
	CreateOAuthState(ctx context.Context, hash string, expiresAt time.Time) error
	// ConsumeOAuthState removes the state with this hash and succeeds once,
	// if it has not expired at now; otherwise Unauthorized.
	ConsumeOAuthState(ctx context.Context, hash string, now time.Time) error
}

// Permission is a user's access to a repository, as the VCS says.
type Permission int

// Permissions, in order.
const (
	PermissionNone Permission = iota
	PermissionPull
	PermissionAdmin
)

// String names p as the API's 403s do.
func (p Permission) String() string {
	switch p {
	case PermissionPull:
		return "pull"
	case PermissionAdmin:
		return "admin"
	}
	return "none"
}

// Account is the VCS account a token belongs to.
type Account struct {
	// ID is the numeric account id (GitHub) or UUID (Bitbucket).
	ID    string
	Login string
	Name  string
	// Scopes are the token's granted scopes (GitHub X-OAuth-Scopes).
	Scopes []string
}

// MissingScopes returns the scopes of want that granted lacks.
func MissingScopes(granted, want []string) []string {
	have := map[string]bool{}
	for _, s := range granted {
		have[strings.TrimSpace(s)] = true
	}
	var out []string
	for _, w := range want {
		if !have[w] {
			out = append(out, w)
		}
	}
	return out
}

// UserRepo is a repository a user can see, as GET /api/v1.1/user/repos
// lists it.
type UserRepo struct {
	Slug          Slug
	Private       bool
	Admin         bool
	DefaultBranch string
}

// Identity is the part of a VCS API that sign-in and authorization use,
// authenticated as one user.
type Identity interface {
	// Account returns the token's account and granted scopes.
	Account(ctx context.Context) (*Account, error)
	// Permission returns the token's user's permission on the repository:
	// None (with a nil error) when the VCS hides it from the user.
	Permission(ctx context.Context, slug Slug) (Permission, error)
	// Repos returns every repository the user can see, all pages.
	Repos(ctx context.Context) ([]UserRepo, error)
}

type actorKey struct{}

// WithActor returns ctx acting as the signed-in user userID: VCS calls made
// with it use that user's token. "" is local mode's environment user.
// Request handling sets it from the authenticated user; background work
// (trigger, statuses, sweeps) from the project's follower.
func WithActor(ctx context.Context, userID string) context.Context {
	return context.WithValue(ctx, actorKey{}, userID)
}

// ActorFrom returns the user ctx acts as ("" for the environment user).
func ActorFrom(ctx context.Context) string {
	id, _ := ctx.Value(actorKey{}).(string)
	return id
}
