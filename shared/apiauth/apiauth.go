package apiauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"

	"forgelink/shared/forgelink"
	"forgelink/shared/httpjson"
)

// User is who an API token belongs to.
type User struct {
	Login string
}

// Authenticator maps an API token to its user. It returns an Unauthorized
// error for an unknown token.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*User, error)
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

// TokenOf reads a CircleCI-style API token: the Circle-Token header, the
// circle-token query parameter, or HTTP basic auth with the token as user.
func TokenOf(r *http.Request) string {
	if t := r.Header.Get("Circle-Token"); t != "" {
		return t
	}
	if t := r.URL.Query().Get("circle-token"); t != "" {
		return t
	}
	if u, _, ok := r.BasicAuth(); ok {
		return u
	}
	return ""
}

// Require rejects requests without a valid API token with 401 and
// puts the token's user in the request context (UserFrom).
func Require(auth Authenticator, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := TokenOf(r)
		if tok == "" {
			httpjson.Error(w, r, log, forgelink.Errorf(forgelink.Unauthorized, "missing API token: send the Circle-Token header"))
			return
		}
		u, err := auth.Authenticate(r.Context(), tok)
		if err != nil {
			httpjson.Error(w, r, log, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), u)))
	})
}
