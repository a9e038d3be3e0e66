package signin

import (
	"cmp"
	"crypto/subtle"
	"errors"
	"fmt"
	"html"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"forgelink/shared/apiauth"
	"forgelink/shared/forgelink"
	"forgelink/shared/httpjson"
)

// stateCookie binds a sign-in's state to the browser that started it.
const (
	stateCookie = "forgelink_oauth_state"
	stateTTL    = 10 * time.Minute
	// maxLabel bounds a personal token's label.
	maxLabel = 100
)

// Handler serves the web flows (GET /login/{vcs}, GET
// /login/{vcs}/callback, POST /logout) and the user's own API
// (/api/v2/me/tokens).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/{vcs}", s.login)
	mux.HandleFunc("GET /login/{vcs}/callback", s.callback)
	mux.HandleFunc("POST /logout", s.logout)
	// Another method: 405, as a page (the web flows) or JSON (logout),
	// not the mux's plain text.
	for _, path := range []string{"/login/{vcs}", "/login/{vcs}/callback"} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "GET, HEAD")
			s.page(w, http.StatusMethodNotAllowed, "Not allowed", r.Method+" is not allowed here: open the sign-in link instead.")
		})
	}
	mux.HandleFunc("/logout", httpjson.MethodNotAllowed(http.MethodPost))
	me := http.NewServeMux()
	me.HandleFunc("POST /api/v2/me/tokens", s.createToken)
	me.HandleFunc("GET /api/v2/me/tokens", s.listTokens)
	me.HandleFunc("DELETE /api/v2/me/tokens/{id}", s.deleteToken)
	me.HandleFunc("/api/v2/me/tokens", httpjson.MethodNotAllowed("GET, POST"))
	me.HandleFunc("/api/v2/me/tokens/{id}", httpjson.MethodNotAllowed(http.MethodDelete))
	me.HandleFunc("/", httpjson.NotFound)
	mux.Handle("/api/v2/me/tokens", apiauth.Require(s, s.log(), me))
	mux.Handle("/api/v2/me/tokens/", apiauth.Require(s, s.log(), me))
	return mux
}

// Routes are the paths and prefixes Handler serves, for mounting it beside
// other handlers (GET /api/v2/me itself is the keys API's).
var Routes = []string{"/login/", "/logout", "/api/v2/me/tokens", "/api/v2/me/tokens/"}

// baseURL is forgelink's public URL: Config.PublicURL, or behind API
// Gateway (no public URL configured) the request's own https host.
func (s *Service) baseURL(r *http.Request) string {
	if s.Config.PublicURL != "" {
		return strings.TrimRight(s.Config.PublicURL, "/")
	}
	return "https://" + r.Host
}

// secure reports whether cookies must be Secure: the public URL is https.
func (s *Service) secure(r *http.Request) bool { return strings.HasPrefix(s.baseURL(r), "https://") }

func (s *Service) vcsOf(r *http.Request) (forgelink.VCS, bool) {
	vcs, err := forgelink.ParseVCS(r.PathValue("vcs"))
	return vcs, err == nil && s.Enabled(vcs)
}

// login starts the OAuth web flow: a random single-use state, stored
// (hashed) and bound to a short-lived cookie, and a redirect to the VCS.
func (s *Service) login(w http.ResponseWriter, r *http.Request) {
	vcs, ok := s.vcsOf(r)
	if !ok {
		s.page(w, http.StatusNotFound, "Sign-in unavailable", "Sign-in with "+r.PathValue("vcs")+" is not configured on this forgelink.")
		return
	}
	state, err := random("")
	if err == nil {
		err = s.Users.CreateOAuthState(r.Context(), hashOf(state), s.now().Add(stateTTL))
	}
	if err != nil {
		s.log().ErrorContext(r.Context(), "sign-in: could not start", "vcs", string(vcs), "err", err)
		s.page(w, http.StatusServiceUnavailable, "Sign-in failed", "forgelink could not start the sign-in; try again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: state, Path: "/login/", MaxAge: int(stateTTL / time.Second),
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, s.oauthConfig(vcs, s.baseURL(r)).AuthCodeURL(state), http.StatusFound)
}

// callback finishes the web flow: the state must match the cookie and be
// unused, the code is exchanged, the account read and its scopes checked,
// the user stored with the token sealed, and a session begins.
func (s *Service) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	vcs, ok := s.vcsOf(r)
	if !ok {
		s.page(w, http.StatusNotFound, "Sign-in unavailable", "Sign-in with "+r.PathValue("vcs")+" is not configured on this forgelink.")
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	c, err := r.Cookie(stateCookie)
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Path: "/login/", MaxAge: -1, HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
	if err != nil || state == "" || len(state) > 200 || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		s.page(w, http.StatusBadRequest, "Sign-in failed", "The sign-in could not be verified (its state does not match this browser's). Start again from the sign-in page.")
		return
	}
	if err := s.Users.ConsumeOAuthState(ctx, hashOf(state), s.now()); err != nil {
		s.page(w, http.StatusBadRequest, "Sign-in failed", "This sign-in link was already used or has expired. Start again from the sign-in page.")
		return
	}
	if e := q.Get("error"); e != "" {
		s.page(w, http.StatusBadRequest, "Sign-in cancelled", vcs.Name()+" did not authorize forgelink: "+cmp.Or(q.Get("error_description"), e)+".")
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 512 {
		s.page(w, http.StatusBadRequest, "Sign-in failed", vcs.Name()+" sent no sign-in code.")
		return
	}
	tok, err := s.oauthConfig(vcs, s.baseURL(r)).Exchange(s.oauthContext(ctx), code)
	if err != nil {
		s.log().WarnContext(ctx, "sign-in: code exchange refused", "vcs", string(vcs), "err", oauthErrorCode(err))
		s.page(w, http.StatusBadRequest, "Sign-in failed", vcs.Name()+" refused the sign-in code ("+oauthErrorCode(err)+"). Start again from the sign-in page.")
		return
	}
	id, err := s.Identities(ctx, vcs, tok.AccessToken)
	var acct *forgelink.Account
	if err == nil {
		acct, err = id.Account(ctx)
	}
	if err != nil {
		s.log().WarnContext(ctx, "sign-in: could not read the account", "vcs", string(vcs), "err", err)
		s.page(w, http.StatusBadGateway, "Sign-in failed", vcs.Name()+" did not answer who signed in; try again.")
		return
	}
	if vcs == forgelink.GitHub {
		if missing := forgelink.MissingScopes(acct.Scopes, GitHubScopes); len(missing) > 0 {
			s.page(w, http.StatusForbidden, "Sign-in needs more access",
				"GitHub granted forgelink too little: the scopes "+strings.Join(missing, ", ")+" are missing. Sign in again and allow them.")
			return
		}
	}
	u, err := s.storeUser(r, vcs, acct, tok)
	if err == nil {
		err = s.startSession(w, r, u)
	}
	if err != nil {
		s.log().ErrorContext(ctx, "sign-in: could not store the user", "vcs", string(vcs), "err", err)
		s.page(w, http.StatusServiceUnavailable, "Sign-in failed", "forgelink could not finish the sign-in; try again.")
		return
	}
	s.log().InfoContext(ctx, "signed in", "user", u.ID, "login", u.Login)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// oauthErrorCode is the OAuth error code of a failed exchange ("" when it
// was not the VCS's refusal), never the code or a token.
func oauthErrorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return cmp.Or(re.ErrorCode, fmt.Sprintf("HTTP %d", re.Response.StatusCode))
	}
	return "no answer"
}

// storeUser creates or refreshes the user of acct with tok sealed.
func (s *Service) storeUser(r *http.Request, vcs forgelink.VCS, acct *forgelink.Account, tok *oauth2.Token) (*forgelink.User, error) {
	ctx := r.Context()
	now := s.now()
	u := &forgelink.User{ID: forgelink.UserID(vcs, acct.ID), VCS: vcs, VCSUserID: acct.ID, Login: acct.Login, Name: acct.Name, Scopes: acct.Scopes, CreatedAt: now}
	if old, err := s.Users.GetUser(ctx, u.ID); err == nil {
		u.CreatedAt = old.CreatedAt
	} else if forgelink.KindOf(err) != forgelink.NotFound {
		return nil, err
	}
	if err := s.sealTokens(ctx, u, tok); err != nil {
		return nil, err
	}
	if err := s.Users.PutUser(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// startSession stores a new session for u and sets its cookies: the
// session (HttpOnly) and its CSRF token (readable by the page).
func (s *Service) startSession(w http.ResponseWriter, r *http.Request, u *forgelink.User) error {
	id, err := random("fls_")
	if err != nil {
		return err
	}
	csrf, err := random("")
	if err != nil {
		return err
	}
	now := s.now()
	sess := &forgelink.Session{Hash: hashOf(id), UserID: u.ID, CSRF: csrf, CreatedAt: now, ExpiresAt: now.Add(forgelink.SessionTTL)}
	if err := s.Users.CreateSession(r.Context(), sess); err != nil {
		return err
	}
	age := int(forgelink.SessionTTL / time.Second)
	http.SetCookie(w, &http.Cookie{Name: apiauth.SessionCookie, Value: id, Path: "/", MaxAge: age, HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: apiauth.CSRFCookie, Value: csrf, Path: "/", MaxAge: age, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
	return nil
}

// StartEnvSession begins a browser session for local mode's environment
// user, after the page's "API token" form checked the token.
func (s *Service) StartEnvSession(w http.ResponseWriter, r *http.Request) error {
	return s.startSession(w, r, &forgelink.User{ID: envSessionUser})
}

// envSessionUser is the session user id of the environment user.
const envSessionUser = "env:"

// logout ends the session (with its CSRF token) and clears the cookies.
func (s *Service) logout(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(apiauth.SessionCookie)
	if err != nil || c.Value == "" {
		httpjson.Error(w, r, s.log(), forgelink.Errorf(forgelink.Unauthorized, "not signed in"))
		return
	}
	// The session itself, with its CSRF token, asks to end: a token sent
	// along (even in the query, which a forged form can set) is not it.
	if _, err := apiauth.AuthenticateSession(r, s); err != nil {
		httpjson.Error(w, r, s.log(), err)
		return
	}
	if err := s.Users.DeleteSession(r.Context(), hashOf(c.Value)); err != nil {
		httpjson.Error(w, r, s.log(), err)
		return
	}
	for _, name := range []string{apiauth.SessionCookie, apiauth.CSRFCookie} {
		http.SetCookie(w, &http.Cookie{Name: name, Path: "/", MaxAge: -1, Secure: s.secure(r), SameSite: http.SameSiteLaxMode, HttpOnly: name == apiauth.SessionCookie})
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

type tokenJSON struct {
	ID        string    `json:"id"`
	Label     string    `json:"label"`
	Token     string    `json:"token,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// signedIn returns the request's signed-in user id, or Forbidden for the
// environment user (who has FORGELINK_API_TOKEN instead).
func signedIn(r *http.Request) (string, error) {
	au := apiauth.UserFrom(r.Context())
	if au.Env() {
		return "", forgelink.Errorf(forgelink.Forbidden, "personal API tokens belong to signed-in users; local mode's user has FORGELINK_API_TOKEN")
	}
	return au.ID, nil
}

func (s *Service) createToken(w http.ResponseWriter, r *http.Request) {
	userID, err := signedIn(r)
	if err != nil {
		httpjson.Error(w, r, s.log(), err)
		return
	}
	var req struct {
		Label string `json:"label"`
	}
	if err := httpjson.Read(w, r, 4<<10, &req, false); err != nil {
		httpjson.Error(w, r, s.log(), err)
		return
	}
	req.Label = strings.TrimSpace(req.Label)
	if req.Label == "" || len([]rune(req.Label)) > maxLabel || strings.ContainsAny(req.Label, "\x00\r\n") {
		httpjson.Error(w, r, s.log(), forgelink.Errorf(forgelink.Invalid, "label must be 1 to %d characters on one line", maxLabel))
		return
	}
	value, err := random("flp_")
	if err != nil {
		httpjson.Error(w, r, s.log(), err)
		return
	}
	id, err := random("")
	if err != nil {
		httpjson.Error(w, r, s.log(), err)
		return
	}
	t := &forgelink.APIToken{ID: id[:16], Hash: hashOf(value), UserID: userID, Label: req.Label, CreatedAt: s.now()}
	if err := s.Users.CreateAPIToken(r.Context(), t); err != nil {
		httpjson.Error(w, r, s.log(), err)
		return
	}
	s.log().InfoContext(r.Context(), "API token created", "user", userID, "token_id", t.ID)
	httpjson.Write(w, http.StatusCreated, tokenJSON{ID: t.ID, Label: t.Label, Token: value, CreatedAt: t.CreatedAt})
}

func (s *Service) listTokens(w http.ResponseWriter, r *http.Request) {
	userID, err := signedIn(r)
	if err != nil {
		httpjson.Error(w, r, s.log(), err)
		return
	}
	ts, err := s.Users.ListAPITokens(r.Context(), userID)
	if err != nil {
		httpjson.Error(w, r, s.log(), err)
		return
	}
	out := struct {
		Items []tokenJSON `json:"items"`
	}{Items: []tokenJSON{}}
	for _, t := range ts {
		out.Items = append(out.Items, tokenJSON{ID: t.ID, Label: t.Label, CreatedAt: t.CreatedAt})
	}
	httpjson.Write(w, http.StatusOK, out)
}

func (s *Service) deleteToken(w http.ResponseWriter, r *http.Request) {
	userID, err := signedIn(r)
	if err != nil {
		httpjson.Error(w, r, s.log(), err)
		return
	}
	if err := s.Users.DeleteAPIToken(r.Context(), userID, r.PathValue("id")); err != nil {
		httpjson.Error(w, r, s.log(), err)
		return
	}
	s.log().InfoContext(r.Context(), "API token revoked", "user", userID, "token_id", r.PathValue("id"))
	w.WriteHeader(http.StatusNoContent)
}

// page answers a small HTML page: the web flow's errors are read by a
// person in a browser. It is written with html.EscapeString rather than
// html/template, whose reflection would keep every method of every linked
// type in the functions that use this package (they grow by megabytes).
func (s *Service) page(w http.ResponseWriter, status int, title, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	t, m := html.EscapeString(title), html.EscapeString(message)
	_, _ = fmt.Fprintf(w, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s - forgelink</title></head>
<body><main><h1>%s</h1><p role="alert">%s</p><p><a href="/">Back to forgelink</a></p></main></body></html>
`, t, t, m)
}
