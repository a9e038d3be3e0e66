package apiauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/apiauth"
	"forgelink/shared/forgelink"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

const (
	aliceToken = "flp_alice-token"
	aliceSess  = "fls_alice-session"
	aliceCSRF  = "csrf-of-alice"
	envSess    = "fls_env-session"
	envCSRF    = "csrf-of-env"
)

var (
	alice = &apiauth.User{Login: "alice", ID: "github:42", VCS: forgelink.GitHub}
	env   = &apiauth.User{Login: "local"}
)

// sessions is a SessionAuthenticator with fixed tokens and sessions.
type sessions struct {
	tokens   map[string]*apiauth.User
	sessions map[string]struct {
		u    *apiauth.User
		csrf string
	}
}

var _ apiauth.SessionAuthenticator = (*sessions)(nil)

func newSessions() *sessions {
	return &sessions{
		tokens: map[string]*apiauth.User{aliceToken: alice},
		sessions: map[string]struct {
			u    *apiauth.User
			csrf string
		}{aliceSess: {alice, aliceCSRF}, envSess: {env, envCSRF}},
	}
}

func (s *sessions) Authenticate(ctx context.Context, token string) (*apiauth.User, error) {
	if u, ok := s.tokens[token]; ok && token != "" {
		c := *u
		return &c, nil
	}
	return nil, forgelink.Errorf(forgelink.Unauthorized, "invalid API token")
}

func (s *sessions) AuthenticateSession(ctx context.Context, id string) (*apiauth.User, string, error) {
	if e, ok := s.sessions[id]; ok {
		c := *e.u
		return &c, e.csrf, nil
	}
	return nil, "", forgelink.Errorf(forgelink.Unauthorized, "not signed in, or the session expired: sign in again")
}

// seen is what the protected handler saw.
type seen struct {
	called bool
	user   *apiauth.User
	actor  string
	form   string // the form's "name" field
}

func protected(got *seen) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.called = true
		got.user = apiauth.UserFrom(r.Context())
		got.actor = forgelink.ActorFrom(r.Context())
		got.form = r.PostFormValue("name")
		w.WriteHeader(http.StatusNoContent)
	})
}

// req builds a request: body with content type ct, and edit applied.
func req(method, target, ct, body string, edit func(*http.Request)) *http.Request {
	r := httptest.NewRequest(method, "https://forgelink.example"+target, strings.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	if edit != nil {
		edit(r)
	}
	return r
}

func withCookie(id string) func(*http.Request) {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: apiauth.SessionCookie, Value: id}) }
}

func withCSRF(id, csrf string) func(*http.Request) {
	return func(r *http.Request) {
		withCookie(id)(r)
		r.Header.Set(apiauth.CSRFHeader, csrf)
	}
}

// multipartForm is a multipart body with fields, and its content type.
func multipartForm(t *testing.T, fields map[string]string) (string, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), b.String()
}

func TestRequire(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	mpType, mpBody := multipartForm(t, map[string]string{apiauth.CSRFField: aliceCSRF, "name": "mp"})
	mpWrongType, mpWrongBody := multipartForm(t, map[string]string{apiauth.CSRFField: "wrong"})
	tests := []struct {
		name       string
		plain      bool // a plain Authenticator (StaticToken), not a SessionAuthenticator
		req        *http.Request
		wantStatus int
		wantUser   *apiauth.User
		wantMsg    string
		wantForm   string
	}{
		// API tokens.
		{name: "Circle-Token header", req: req("GET", "/x", "", "", func(r *http.Request) { r.Header.Set("Circle-Token", aliceToken) }),
			wantStatus: 204, wantUser: alice},
		{name: "circle-token query", req: req("GET", "/x?circle-token="+url.QueryEscape(aliceToken), "", "", nil),
			wantStatus: 204, wantUser: alice},
		{name: "basic auth user", req: req("GET", "/x", "", "", func(r *http.Request) { r.SetBasicAuth(aliceToken, "") }),
			wantStatus: 204, wantUser: alice},
		{name: "basic auth user with a password", req: req("GET", "/x", "", "", func(r *http.Request) { r.SetBasicAuth(aliceToken, "ignored") }),
			wantStatus: 204, wantUser: alice},
		{name: "basic auth password only", req: req("GET", "/x", "", "", func(r *http.Request) { r.SetBasicAuth("", aliceToken) }),
			wantStatus: 401, wantMsg: "missing API token"},
		{name: "header before query", req: req("GET", "/x?circle-token=bad", "", "", func(r *http.Request) { r.Header.Set("Circle-Token", aliceToken) }),
			wantStatus: 204, wantUser: alice},
		{name: "unknown token", req: req("GET", "/x", "", "", func(r *http.Request) { r.Header.Set("Circle-Token", "flp_nope") }),
			wantStatus: 401, wantMsg: "invalid API token"},
		{name: "unknown token with a session", req: req("GET", "/x", "", "", func(r *http.Request) {
			r.Header.Set("Circle-Token", "flp_nope")
			withCookie(aliceSess)(r)
		}), wantStatus: 401, wantMsg: "invalid API token"},
		{name: "token on a POST needs no CSRF", req: req("POST", "/x", "application/json", "{}", func(r *http.Request) { r.Header.Set("Circle-Token", aliceToken) }),
			wantStatus: 204, wantUser: alice},
		{name: "nothing", req: req("GET", "/x", "", "", nil), wantStatus: 401, wantMsg: "missing API token: send the Circle-Token header"},

		// Sessions.
		{name: "session GET", req: req("GET", "/x", "", "", withCookie(aliceSess)), wantStatus: 204, wantUser: alice},
		{name: "session HEAD", req: req("HEAD", "/x", "", "", withCookie(aliceSess)), wantStatus: 204, wantUser: alice},
		{name: "session OPTIONS", req: req("OPTIONS", "/x", "", "", withCookie(aliceSess)), wantStatus: 204, wantUser: alice},
		{name: "env user's session", req: req("GET", "/x", "", "", withCookie(envSess)), wantStatus: 204, wantUser: env},
		{name: "unknown session", req: req("GET", "/x", "", "", withCookie("fls_nope")), wantStatus: 401, wantMsg: "sign in again"},
		{name: "empty session cookie", req: req("GET", "/x", "", "", withCookie("")), wantStatus: 401, wantMsg: "missing API token"},
		{name: "session POST without CSRF", req: req("POST", "/x", "application/json", "{}", withCookie(aliceSess)),
			wantStatus: 403, wantMsg: "missing or wrong CSRF token"},
		{name: "session POST with a wrong CSRF", req: req("POST", "/x", "application/json", "{}", withCSRF(aliceSess, "wrong")),
			wantStatus: 403, wantMsg: "missing or wrong CSRF token"},
		{name: "session POST with another session's CSRF", req: req("POST", "/x", "application/json", "{}", withCSRF(aliceSess, envCSRF)),
			wantStatus: 403, wantMsg: "missing or wrong CSRF token"},
		{name: "session POST with a CSRF prefix", req: req("POST", "/x", "application/json", "{}", withCSRF(aliceSess, aliceCSRF[:len(aliceCSRF)-1])),
			wantStatus: 403, wantMsg: "missing or wrong CSRF token"},
		{name: "session POST with the CSRF", req: req("POST", "/x", "application/json", "{}", withCSRF(aliceSess, aliceCSRF)),
			wantStatus: 204, wantUser: alice},
		{name: "session PUT with the CSRF", req: req("PUT", "/x", "", "", withCSRF(aliceSess, aliceCSRF)), wantStatus: 204, wantUser: alice},
		{name: "session PATCH without CSRF", req: req("PATCH", "/x", "", "", withCookie(aliceSess)), wantStatus: 403},
		{name: "session DELETE without CSRF", req: req("DELETE", "/x", "", "", withCookie(aliceSess)), wantStatus: 403},
		{name: "session DELETE with the CSRF", req: req("DELETE", "/x", "", "", withCSRF(aliceSess, aliceCSRF)), wantStatus: 204, wantUser: alice},
		{name: "form POST with csrf_token", req: req("POST", "/x", form, url.Values{apiauth.CSRFField: {aliceCSRF}, "name": {"n"}}.Encode(), withCookie(aliceSess)),
			wantStatus: 204, wantUser: alice, wantForm: "n"},
		{name: "form POST with a charset", req: req("POST", "/x", form+"; charset=utf-8", url.Values{apiauth.CSRFField: {aliceCSRF}}.Encode(), withCookie(aliceSess)),
			wantStatus: 204, wantUser: alice},
		{name: "form POST with a wrong csrf_token", req: req("POST", "/x", form, url.Values{apiauth.CSRFField: {"wrong"}}.Encode(), withCookie(aliceSess)),
			wantStatus: 403},
		{name: "form POST without csrf_token", req: req("POST", "/x", form, "name=n", withCookie(aliceSess)), wantStatus: 403},
		{name: "form POST: a wrong header wins over the field", req: req("POST", "/x", form, url.Values{apiauth.CSRFField: {aliceCSRF}}.Encode(), withCSRF(aliceSess, "wrong")),
			wantStatus: 403},
		{name: "form field in the query does not count", req: req("POST", "/x?"+apiauth.CSRFField+"="+aliceCSRF, form, "name=n", withCookie(aliceSess)),
			wantStatus: 403},
		{name: "multipart POST with csrf_token", req: req("POST", "/x", mpType, mpBody, withCookie(aliceSess)), wantStatus: 204, wantUser: alice, wantForm: "mp"},
		{name: "multipart POST with a wrong csrf_token", req: req("POST", "/x", mpWrongType, mpWrongBody, withCookie(aliceSess)), wantStatus: 403},
		{name: "JSON POST with csrf_token in the body", req: req("POST", "/x", "application/json", `{"csrf_token":"`+aliceCSRF+`"}`, withCookie(aliceSess)),
			wantStatus: 403},

		// A plain Authenticator knows no sessions.
		{name: "plain: token", plain: true, req: req("GET", "/x", "", "", func(r *http.Request) { r.Header.Set("Circle-Token", aliceToken) }),
			wantStatus: 204, wantUser: alice},
		{name: "plain: session cookie ignored", plain: true, req: req("GET", "/x", "", "", withCookie(aliceSess)),
			wantStatus: 401, wantMsg: "missing API token"},
		{name: "plain: session and CSRF ignored", plain: true, req: req("POST", "/x", "", "", withCSRF(aliceSess, aliceCSRF)),
			wantStatus: 401, wantMsg: "missing API token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var auth apiauth.Authenticator = newSessions()
			if tc.plain {
				auth = apiauth.NewStaticToken(aliceToken, *alice)
			}
			var got seen
			rec := httptest.NewRecorder()
			// An actor set before Require is replaced: "" (the env user)
			// must not be told apart from "not set" by luck.
			r := tc.req.WithContext(forgelink.WithActor(tc.req.Context(), "stale:actor"))
			apiauth.Require(auth, discard, protected(&got)).ServeHTTP(rec, r)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tc.wantStatus, rec.Body)
			}
			if tc.wantStatus != http.StatusNoContent {
				if got.called {
					t.Error("the handler ran for a refused request")
				}
				var body struct{ Message string }
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || !strings.Contains(body.Message, tc.wantMsg) {
					t.Errorf("body %s (%v), want a message with %q", rec.Body, err, tc.wantMsg)
				}
				return
			}
			if diff := cmp.Diff(tc.wantUser, got.user); diff != "" {
				t.Errorf("UserFrom (-want +got):\n%s", diff)
			}
			if got.actor != tc.wantUser.ID {
				t.Errorf("ActorFrom = %q, want %q", got.actor, tc.wantUser.ID)
			}
			if got.form != tc.wantForm {
				t.Errorf("the handler read form field %q, want %q", got.form, tc.wantForm)
			}
		})
	}
}

// TestAuthenticate: the function Require uses, for handlers that
// authenticate by themselves (logout).
func TestAuthenticate(t *testing.T) {
	auth := newSessions()
	u, err := apiauth.Authenticate(req("GET", "/", "", "", withCookie(aliceSess)), auth)
	if err != nil || u.ID != alice.ID {
		t.Errorf("session GET: %+v, %v", u, err)
	}
	_, err = apiauth.Authenticate(req("POST", "/", "", "", withCookie(aliceSess)), auth)
	if forgelink.KindOf(err) != forgelink.Forbidden {
		t.Errorf("session POST without CSRF: %v, want Forbidden", err)
	}
	_, err = apiauth.Authenticate(req("GET", "/", "", "", nil), auth)
	if forgelink.KindOf(err) != forgelink.Unauthorized {
		t.Errorf("nothing: %v, want Unauthorized", err)
	}
}

func TestTokenOf(t *testing.T) {
	tests := []struct {
		name string
		edit func(*http.Request)
		want string
	}{
		{"none", nil, ""},
		{"header", func(r *http.Request) { r.Header.Set("Circle-Token", "h") }, "h"},
		{"query", func(r *http.Request) { r.URL.RawQuery = "circle-token=q" }, "q"},
		{"basic", func(r *http.Request) { r.SetBasicAuth("b", "") }, "b"},
		{"header, query and basic", func(r *http.Request) {
			r.Header.Set("Circle-Token", "h")
			r.URL.RawQuery = "circle-token=q"
			r.SetBasicAuth("b", "")
		}, "h"},
		{"query and basic", func(r *http.Request) {
			r.URL.RawQuery = "circle-token=q"
			r.SetBasicAuth("b", "")
		}, "q"},
		{"bearer is not read", func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := apiauth.TokenOf(req("GET", "/", "", "", tc.edit)); got != tc.want {
				t.Errorf("TokenOf = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNeed(t *testing.T) {
	tests := []struct {
		method string
		want   forgelink.Permission
	}{
		{http.MethodGet, forgelink.PermissionPull},
		{http.MethodHead, forgelink.PermissionPull},
		{http.MethodPost, forgelink.PermissionAdmin},
		{http.MethodPut, forgelink.PermissionAdmin},
		{http.MethodPatch, forgelink.PermissionAdmin},
		{http.MethodDelete, forgelink.PermissionAdmin},
		{http.MethodOptions, forgelink.PermissionAdmin},
	}
	for _, tc := range tests {
		if got := apiauth.Need(httptest.NewRequest(tc.method, "/", nil)); got != tc.want {
			t.Errorf("Need(%s) = %v, want %v", tc.method, got, tc.want)
		}
	}
}

func TestStaticToken(t *testing.T) {
	st := apiauth.NewStaticToken("s3cret-token-value", apiauth.User{Login: "local"})
	u, err := st.Authenticate(t.Context(), "s3cret-token-value")
	if err != nil || u.Login != "local" || !u.Env() {
		t.Errorf("the token: %+v, %v; want the env user", u, err)
	}
	u.Login = "changed"
	if again, _ := st.Authenticate(t.Context(), "s3cret-token-value"); again.Login != "local" {
		t.Errorf("a caller's change leaked into the next answer: %q", again.Login)
	}
	for _, tok := range []string{"", "s3cret-token-valu", "s3cret-token-value ", "S3CRET-TOKEN-VALUE"} {
		if _, err := st.Authenticate(t.Context(), tok); forgelink.KindOf(err) != forgelink.Unauthorized {
			t.Errorf("token %q: %v, want Unauthorized", tok, err)
		}
	}
	empty := apiauth.NewStaticToken("", apiauth.User{Login: "local"})
	if _, err := empty.Authenticate(t.Context(), ""); forgelink.KindOf(err) != forgelink.Unauthorized {
		t.Errorf("empty configured token accepts the empty token: %v", err)
	}
}

func TestUserContext(t *testing.T) {
	if u := apiauth.UserFrom(t.Context()); u != nil {
		t.Errorf("UserFrom(empty) = %+v, want nil", u)
	}
	ctx := apiauth.WithUser(t.Context(), alice)
	if u := apiauth.UserFrom(ctx); u != alice {
		t.Errorf("UserFrom = %+v, want alice", u)
	}
	if alice.Env() || !env.Env() {
		t.Error("Env: want only the user without an id")
	}
}
