package pages

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"forgelink/shared/forgelink"
)

// loginCookie carries the sign-in form's own CSRF token: before a session
// there is no session token, so the form and this cookie carry the same
// random value (double submit), and a form posted from elsewhere, which
// cannot read the cookie, is refused.
const (
	loginCookie = "forgelink_login_csrf"
	loginTTL    = time.Hour
)

// signInView is the sign-in page.
type signInView struct {
	GitHub, Bitbucket bool
	// Token shows the "API token" form; LoginCSRF is its CSRF token and
	// Next where to go after signing in.
	Token     bool
	LoginCSRF string
	Next      string
	Error     string
}

// home is GET /: the sign-in page without a session, else the user's
// repositories.
func (p *Pages) home(w http.ResponseWriter, r *http.Request) {
	s, err := p.sessionOf(r)
	switch {
	case forgelink.KindOf(err) == forgelink.Unauthorized:
		p.signInPage(w, r, http.StatusOK, "", "")
		return
	case err != nil:
		p.log().ErrorContext(r.Context(), "page: could not check the session", "err", err)
		p.errorPage(w, r, nil, http.StatusServiceUnavailable, "Try again", "forgelink could not check your session just now; reload the page.")
		return
	}
	p.repos(w, withUser(r, s), s)
}

// signInPage answers the sign-in page. next is the page to return to (a
// local path); message an error to show.
func (p *Pages) signInPage(w http.ResponseWriter, r *http.Request, status int, next, message string) {
	v := signInView{
		GitHub: p.Users.Enabled(forgelink.GitHub), Bitbucket: p.Users.Enabled(forgelink.Bitbucket),
		Token: p.TokenSignIn, Next: localPath(next), Error: message,
	}
	if v.Token {
		token, err := randomToken()
		if err != nil {
			p.errorPage(w, r, nil, http.StatusServiceUnavailable, "Try again", "forgelink could not prepare the sign-in form; reload the page.")
			return
		}
		v.LoginCSRF = token
		http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: token, Path: "/login", MaxAge: int(loginTTL / time.Second),
			HttpOnly: true, Secure: p.secureCookies(r), SameSite: http.SameSiteStrictMode})
	}
	p.render(w, r, status, "signin", signInHTML(layout{Title: "Sign in to forgelink"}, v))
}

// tokenSignIn is POST /login: local mode's "API token" form. The right
// token starts the same session cookie an OAuth sign-in sets; a wrong one
// shows the form again with an error, and no session.
func (p *Pages) tokenSignIn(w http.ResponseWriter, r *http.Request) {
	if !p.TokenSignIn {
		p.notFound(w, r)
		return
	}
	if !isForm(r) {
		p.signInPage(w, r, http.StatusUnsupportedMediaType, "", formOnly)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSignInBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			p.signInPage(w, r, http.StatusRequestEntityTooLarge, "", "The form was larger than forgelink accepts: an API token is short.")
			return
		}
		p.signInPage(w, r, http.StatusBadRequest, "", "forgelink could not read the form; try again.")
		return
	}
	next := r.PostForm.Get("next")
	c, err := r.Cookie(loginCookie)
	got := r.PostForm.Get("csrf_token")
	if err != nil || got == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(got)) != 1 {
		p.signInPage(w, r, http.StatusForbidden, next, "The sign-in form expired or came from another site. Nothing was changed: enter the token again.")
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" {
		p.signInPage(w, r, http.StatusBadRequest, next, "Enter the API token.")
		return
	}
	u, err := p.Users.Authenticate(r.Context(), token)
	switch {
	case err == nil && u.Env():
	case err == nil || forgelink.KindOf(err) == forgelink.Unauthorized:
		// A personal API token is not this form's: its user signs in
		// with the VCS.
		p.log().InfoContext(r.Context(), "page sign-in refused: wrong API token")
		p.signInPage(w, r, http.StatusUnauthorized, next, "That is not this forgelink's API token. Check FORGELINK_API_TOKEN (or FORGELINK_DATA/api-token) and try again.")
		return
	default:
		p.log().ErrorContext(r.Context(), "page sign-in failed", "err", err)
		p.signInPage(w, r, http.StatusServiceUnavailable, next, "forgelink could not check the token just now; try again.")
		return
	}
	if err := p.Users.StartEnvSession(w, r); err != nil {
		p.log().ErrorContext(r.Context(), "page sign-in: could not start a session", "err", err)
		p.signInPage(w, r, http.StatusServiceUnavailable, next, "forgelink could not start a session just now; try again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/login", MaxAge: -1, HttpOnly: true, Secure: p.secureCookies(r), SameSite: http.SameSiteStrictMode})
	p.log().InfoContext(r.Context(), "signed in with the API token", "user", u.Login)
	http.Redirect(w, r, localPath(next), http.StatusSeeOther)
}

// localPath returns next when it is a path on this site, else "/": a
// sign-in never sends the browser elsewhere.
func localPath(next string) string {
	if next == "" || next[0] != '/' || len(next) > 1 && (next[1] == '/' || next[1] == '\\') ||
		strings.ContainsAny(next, "\r\n\\") || len(next) > 2000 {
		return "/"
	}
	return next
}

// secureCookies reports whether cookies must be Secure: forgelink is
// served over https.
func (p *Pages) secureCookies(r *http.Request) bool {
	return strings.HasPrefix(p.baseURL(r), "https://")
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
