package vcsfake

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// GitHub's OAuth errors, as its token endpoint answers them: HTTP 200 with
// an error body (JSON, or form-encoded without Accept: application/json).
const (
	ghTroubleshootToken     = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"
	ghTroubleshootAuthorize = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/"
)

var (
	ghBadVerificationCode = ghOAuthError{
		Error:            "bad_verification_code",
		ErrorDescription: "The code passed is incorrect or expired.",
		ErrorURI:         ghTroubleshootToken + "#bad-verification-code",
	}
	ghIncorrectClientCredentials = ghOAuthError{
		Error:            "incorrect_client_credentials",
		ErrorDescription: "The client_id and/or client_secret passed are incorrect.",
		ErrorURI:         ghTroubleshootToken + "#incorrect-client-credentials",
	}
	ghRedirectURIMismatch = ghOAuthError{
		Error:            "redirect_uri_mismatch",
		ErrorDescription: "The redirect_uri MUST match the registered callback URL for this application.",
		ErrorURI:         ghTroubleshootToken + "#redirect-uri-mismatch",
	}
)

// ghOAuthError is the body of GitHub's token endpoint refusing.
type ghOAuthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorURI         string `json:"error_uri"`
}

// ghOAuthToken is the body of GitHub's token endpoint granting.
type ghOAuthToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	Scope       string `json:"scope"`
}

// ghOAuthApps is the GitHub fake's OAuth Apps and what its users do on
// the authorize page.
type ghOAuthApps struct {
	// secrets are the client secrets by client id.
	secrets map[string]string
	// authorize is the login of the user who authorizes; "" denies.
	authorize string
	// granted are the scopes each user grants, by lower-case login, when
	// set by SetGrantedScopes; otherwise the user grants what is asked.
	granted map[string][]string
}

// SetOAuthClient registers an OAuth App with client id and secret, or
// changes its secret: GET /login/oauth/authorize knows no other client
// (404, as GitHub's page), and POST /login/oauth/access_token wants the
// secret.
func (g *GitHub) SetOAuthClient(id, secret string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.oauthApps.secrets[id] = secret
}

// SetAuthorizeUser sets the user who, signed in to the fake's web host,
// authorizes the app on GET /login/oauth/authorize: GitHubLogin until
// set. "" plays a user who clicks Cancel: the authorize page redirects
// with error=access_denied. A login that is no user fails the test.
func (g *GitHub) SetAuthorizeUser(login string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if login != "" && g.users[lower(login)] == nil {
		g.t.Fatalf("vcsfake: GitHub has no user %q; call AddUser first", login)
	}
	g.oauthApps.authorize = login
}

// SetGrantedScopes makes login grant exactly scopes to the OAuth Apps it
// authorizes from now on, whatever they ask (fewer, to play a user whose
// organization or choice leaves some out). Until set, a user grants the
// scopes the authorize request asks for.
func (g *GitHub) SetGrantedScopes(login string, scopes ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.oauthApps.granted[lower(login)] = append([]string{}, scopes...)
}

// serveOAuth answers the OAuth web flow's requests, which cost no API
// rate limit.
func (g *GitHub) serveOAuth(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, before: func(_ http.Header, status int) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.log(r, status)
	}}
	g.mu.Lock()
	var resp *response
	switch {
	case r.URL.Path == "/login/oauth/authorize" && r.Method == http.MethodGet:
		resp = g.authorize(r)
	case r.URL.Path == "/login/oauth/access_token" && r.Method == http.MethodPost:
		resp = g.accessToken(r)
	default:
		resp = htmlPage(http.StatusNotFound, "Page not found · GitHub")
	}
	g.mu.Unlock()
	write(rec, r, resp)
}

// authorize answers GET /login/oauth/authorize as GitHub does for a user
// who is signed in and approves at once: 302 to redirect_uri with a code
// and the state. An unknown client_id is GitHub's 404 page; the fake has
// no registered callback URL, so redirect_uri is required (400 without
// it). g.mu is held.
func (g *GitHub) authorize(r *http.Request) *response {
	q := r.URL.Query()
	clientID, redirect, state := q.Get("client_id"), q.Get("redirect_uri"), q.Get("state")
	if _, ok := g.oauthApps.secrets[clientID]; !ok {
		return htmlPage(http.StatusNotFound, "Page not found · GitHub")
	}
	if !absoluteHTTP(redirect) {
		return htmlPage(http.StatusBadRequest, "The redirect_uri is missing or not an absolute http(s) URL")
	}
	login := g.oauthApps.authorize
	if login == "" {
		return redirectTo(redirect, url.Values{
			"error":             {"access_denied"},
			"error_description": {"The user has denied your application access."},
			"error_uri":         {ghTroubleshootAuthorize + "#access-denied"},
			"state":             {state},
		})
	}
	scopes, ok := g.oauthApps.granted[lower(login)]
	if !ok {
		scopes = splitScopes(q.Get("scope"))
	}
	code := g.newCode(&oauthCode{clientID: clientID, redirectURI: redirect, redirectGiven: true, user: login, scopes: slices.Clone(scopes)})
	return redirectTo(redirect, url.Values{"code": {code}, "state": {state}})
}

// accessToken answers POST /login/oauth/access_token as GitHub does:
// every answer is HTTP 200, errors included; JSON when the request
// accepts application/json, else form-encoded. A code is good once,
// for OAuthCodeLifetime, for the client it was handed to. g.mu is held.
func (g *GitHub) accessToken(r *http.Request) *response {
	clientID, secret := clientCredentials(r)
	e := OAuthExchange{ClientID: clientID, GrantType: "authorization_code", Status: http.StatusOK}
	answer := func(body any) *response {
		if oe, ok := body.(ghOAuthError); ok {
			e.Error = oe.Error
		}
		g.logExchange(e)
		return ghOAuthAnswer(r, body)
	}
	if want, ok := g.oauthApps.secrets[clientID]; !ok || secret != want {
		return answer(ghIncorrectClientCredentials)
	}
	code := g.code(r.FormValue("code"), clientID)
	if code == nil {
		return answer(ghBadVerificationCode)
	}
	if redirect := r.FormValue("redirect_uri"); redirect != "" && redirect != code.redirectURI {
		return answer(ghRedirectURIMismatch)
	}
	u := g.users[lower(code.user)]
	if u == nil {
		return answer(ghBadVerificationCode)
	}
	code.used = true
	e.Token = g.issueToken(u, code.scopes)
	return answer(ghOAuthToken{AccessToken: e.Token, TokenType: "bearer", Scope: strings.Join(code.scopes, ",")})
}

// ghOAuthAnswer is a 200 with body as JSON when the request accepts it,
// else form-encoded, as GitHub answers.
func ghOAuthAnswer(r *http.Request, body any) *response {
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		return jsonResponse(http.StatusOK, body)
	}
	v := url.Values{}
	switch b := body.(type) {
	case ghOAuthError:
		v.Set("error", b.Error)
		v.Set("error_description", b.ErrorDescription)
		v.Set("error_uri", b.ErrorURI)
	case ghOAuthToken:
		v.Set("access_token", b.AccessToken)
		v.Set("scope", b.Scope)
		v.Set("token_type", b.TokenType)
	}
	return &response{
		status: http.StatusOK,
		header: http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}},
		body:   []byte(v.Encode()),
	}
}
