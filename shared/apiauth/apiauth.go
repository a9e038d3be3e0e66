package apiauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"

	"forgelink/shared/forgelink"
	"forgelink/shared/httpjson"
)

// User is who a request acts as.
type User struct {
	Login string
	// ID is the signed-in user's id (forgelink.UserID); "" for the
	// environment user of local mode (FORGELINK_API_TOKEN), who acts with
	// GITHUB_TOKEN / BITBUCKET_TOKEN.
	ID  string
	VCS forgelink.VCS
}

// Env reports whether u is local mode's environment user.
func (u *User) Env() bool { return u.ID == "" }

// Authenticator maps an API token to its user. It returns an Unauthorized
// error for an unknown token.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*User, error)
}

// SessionAuthenticator is an Authenticator that also accepts a browser
// session (the forgelink_session cookie). It returns the session's user
// and its CSRF token, or Unauthorized.
type SessionAuthenticator interface {
	Authenticator
	AuthenticateSession(ctx context.Context, sessionID string) (*User, string, error)
}

// Cookie names of a browser session.
const (
	SessionCookie = "forgelink_session"
	CSRFCookie    = "forgelink_csrf"
	// CSRFHeader carries the CSRF token on API requests made with the
	// session cookie; HTML forms send the csrf_token field instead.
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf_token"
)

// Authorizer decides what a user may do on a repository, from the VCS's
// own permissions.
type Authorizer interface {
	// Authorize returns nil when u has at least need on slug, NotFound
	// (the same as an unknown project) when the VCS hides the repository
	// from u, and Forbidden naming need otherwise.
	Authorize(ctx context.Context, u *User, slug forgelink.Slug, need forgelink.Permission) error
}

// Need is the permission a request needs on its repository: pull to read
// (GET, HEAD), admin to change anything.
func Need(r *http.Request) forgelink.Permission {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return forgelink.PermissionPull
	}
	return forgelink.PermissionAdmin
}

// StaticToken authenticates the single token of local mode (and of a
// single-tenant deployment): FORGELINK_API_TOKEN. Only the token's SHA-256
// is kept and compared in constant time.
type StaticToken struct {
	hash [sha256.Size]byte
	user User
}

// NewStaticToken returns an Authenticator that accepts token for user.
func NewStaticToken(token string, user User) *StaticToken {
	return &StaticToken{hash: sha256.Sum256([]byte(token)), user: user}
}

// Authenticate accepts exactly the configured token.
func (s *StaticToken) Authenticate(ctx context.Context, token string) (*User, error) {
	h := sha256.Sum256([]byte(token))
	if token == "" || subtle.ConstantTimeCompare(h[:], s.hash[:]) != 1 {
		return nil, forgelink.Errorf(forgelink.Unauthorized, "invalid API token")
	}
	u := s.user
	return &u, nil
}

type userKey struct{}

// WithUser returns ctx carrying u, as Require does.
func WithUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the authenticated user of a request's context.
func UserFrom(ctx context.Context) *User {
	u, _ := ctx.Value(userKey{}).(*User)
	return u
}

// Token reads a CircleCI-style API token: the Circle-Token header, the
// circle-token query parameter, or HTTP basic auth with the token as user.
// A request with two Circle-Token headers or two circle-token parameters
// is refused (Invalid): whichever was read, the other would be ignored.
func Token(r *http.Request) (string, error) {
	for _, ts := range [][]string{r.Header.Values("Circle-Token"), r.URL.Query()["circle-token"]} {
		if len(ts) > 1 {
			return "", forgelink.Errorf(forgelink.Invalid, "send one Circle-Token header (or circle-token parameter), not %d", len(ts))
		}
		if len(ts) == 1 && ts[0] != "" {
			return ts[0], nil
		}
	}
	if u, _, ok := r.BasicAuth(); ok {
		return u, nil
	}
	return "", nil
}

// TokenOf is Token without its error: "" for a request with two tokens.
func TokenOf(r *http.Request) string {
	t, _ := Token(r)
	return t
}

// Require rejects requests without a valid API token or session with 401
// (two tokens: 400) and puts the user in the request context (UserFrom). A token comes from
// the Circle-Token header, the circle-token query or basic auth; without
// one, a SessionAuthenticator accepts the forgelink_session cookie, and a
// request that changes state must then carry the session's CSRF token
// (X-CSRF-Token, or the csrf_token form field), else 403 and nothing
// changes.
func Require(auth Authenticator, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := Authenticate(r, auth)
		if err != nil {
			httpjson.Error(w, r, log, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(forgelink.WithActor(WithUser(r.Context(), u), u.ID)))
	})
}

// Authenticate returns the user of a request (see Require).
func Authenticate(r *http.Request, auth Authenticator) (*User, error) {
	tok, err := Token(r)
	if err != nil {
		return nil, err
	}
	if tok != "" {
		return auth.Authenticate(r.Context(), tok)
	}
	sa, ok := auth.(SessionAuthenticator)
	if !ok {
		return nil, forgelink.Errorf(forgelink.Unauthorized, "missing API token: send the Circle-Token header")
	}
	return AuthenticateSession(r, sa)
}

// AuthenticateSession returns the user of the request's session cookie,
// ignoring any token: a request that changes state must carry the
// session's CSRF token (see Require).
func AuthenticateSession(r *http.Request, sa SessionAuthenticator) (*User, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, forgelink.Errorf(forgelink.Unauthorized, "missing API token: send the Circle-Token header")
	}
	u, csrf, err := sa.AuthenticateSession(r.Context(), c.Value)
	if err != nil {
		return nil, err
	}
	if !safeMethod(r.Method) {
		got := r.Header.Get(CSRFHeader)
		if got == "" && isForm(r) {
			got = r.PostFormValue(CSRFField)
		}
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(csrf)) != 1 {
			return nil, forgelink.Errorf(forgelink.Forbidden, "missing or wrong CSRF token: send the forgelink_csrf cookie's value in X-CSRF-Token")
		}
	}
	return u, nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func isForm(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data")
}
