package vcsfake

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// BitbucketTokenLifetime is how long a Bitbucket OAuth access token is
// good for: two hours (expires_in 7200).
const BitbucketTokenLifetime = 2 * time.Hour

// bbOAuth is the Bitbucket fake's OAuth consumers, refresh tokens and what
// its users do on the authorize page.
type bbOAuth struct {
	consumers map[string]*bbConsumer // by key
	refresh   map[string]*bbRefresh  // by refresh token
	// authorize is the nickname of the user who authorizes; "" denies.
	authorize string
	// rotate makes each refresh issue a new refresh token and end the
	// old one.
	rotate bool
}

type bbConsumer struct {
	secret, callback string
	scopes           []string
}

type bbRefresh struct {
	key    string // the consumer's
	user   *bbUser
	scopes []string
}

func newBBOAuth() bbOAuth {
	return bbOAuth{consumers: map[string]*bbConsumer{}, refresh: map[string]*bbRefresh{}, authorize: BitbucketUsername}
}

// bbOAuthToken is the body of Bitbucket's token endpoint granting. It has
// both "scopes" (space-separated, as Bitbucket answered until May 2026)
// and "scope" (its name since then, per RFC 6749).
type bbOAuthToken struct {
	AccessToken  string `json:"access_token"`
	Scopes       string `json:"scopes"`
	Scope        string `json:"scope"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	State        string `json:"state"`
}

// SetOAuthConsumer registers an OAuth consumer with key, secret and
// callback URL (an absolute http(s) URL), or changes them; its scopes are
// BitbucketDefaultScopes until SetConsumerScopes. GET
// /site/oauth2/authorize knows no other client, and sends the code to
// the callback URL, or to a redirect_uri under it.
func (b *Bitbucket) SetOAuthConsumer(key, secret, callbackURL string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !absoluteHTTP(callbackURL) {
		b.t.Fatalf("vcsfake: Bitbucket consumer callback %q is not an absolute http(s) URL", callbackURL)
	}
	c := b.oauth2.consumers[key]
	if c == nil {
		c = &bbConsumer{scopes: slices.Clone(BitbucketDefaultScopes)}
		b.oauth2.consumers[key] = c
	}
	c.secret, c.callback = secret, callbackURL
}

// SetConsumerScopes sets the scopes (Bitbucket's "permissions") of
// consumer key: what the tokens issued from now on get. Bitbucket takes
// them from the consumer, not from the authorize request.
func (b *Bitbucket) SetConsumerScopes(key string, scopes ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.oauth2.consumers[key]
	if c == nil {
		b.t.Fatalf("vcsfake: Bitbucket has no OAuth consumer %q; call SetOAuthConsumer first", key)
	}
	c.scopes = append([]string{}, scopes...)
}

// SetAuthorizeUser sets the user who, signed in to the fake's web host,
// grants access on GET /site/oauth2/authorize: BitbucketUsername until
// set. "" plays a user who denies: the page redirects with
// error=access_denied. A nickname that is no user fails the test.
func (b *Bitbucket) SetAuthorizeUser(nickname string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if nickname != "" && b.users[lower(nickname)] == nil {
		b.t.Fatalf("vcsfake: Bitbucket has no user %q; call AddUser first", nickname)
	}
	b.oauth2.authorize = nickname
}

// SetRefreshRotation sets whether a refresh rotates the refresh token.
// Off (the default), as Bitbucket Cloud long did, a refresh answers the
// same refresh token, which stays valid. On, as Atlassian announced for
// Bitbucket Cloud from 4 May 2026 ("each use of a refresh token will
// generate a new refresh token"), a refresh answers a new refresh token
// and the used one gets invalid_grant from then on.
func (b *Bitbucket) SetRefreshRotation(rotate bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.oauth2.rotate = rotate
}

// RevokeRefreshToken makes refreshToken invalid: refreshing with it
// answers invalid_grant.
func (b *Bitbucket) RevokeRefreshToken(refreshToken string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.oauth2.refresh, refreshToken)
}

// oauthAnswer answers a request under /site/oauth2/.
func (b *Bitbucket) oauthAnswer(r *http.Request) *response {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case r.URL.Path == "/site/oauth2/authorize" && r.Method == http.MethodGet:
		return b.authorize(r)
	case r.URL.Path == "/site/oauth2/access_token" && r.Method == http.MethodPost:
		return b.accessToken(r)
	}
	return htmlPage(http.StatusNotFound, "Page not found")
}

// authorize answers GET /site/oauth2/authorize as Bitbucket does for a
// user who is signed in and grants access at once: 302 to the consumer's
// callback URL (or redirect_uri, which must be under it) with a code and
// the state. An unknown client_id or a redirect_uri elsewhere is a 400
// page; a response_type other than code redirects with
// error=unsupported_response_type. b.mu is held.
func (b *Bitbucket) authorize(r *http.Request) *response {
	q := r.URL.Query()
	key, state := q.Get("client_id"), q.Get("state")
	c := b.oauth2.consumers[key]
	if c == nil {
		return htmlPage(http.StatusBadRequest, "Invalid client_id")
	}
	redirect, given := q.Get("redirect_uri"), q.Has("redirect_uri")
	switch {
	case !given:
		redirect = c.callback
	case !underCallback(redirect, c.callback):
		return htmlPage(http.StatusBadRequest, "The redirect_uri does not match the consumer's callback URL")
	}
	switch {
	case q.Get("response_type") != "code":
		return redirectTo(redirect, url.Values{
			"error":             {"unsupported_response_type"},
			"error_description": {"The fake serves only response_type=code"},
			"state":             {state},
		})
	case b.oauth2.authorize == "":
		return redirectTo(redirect, url.Values{
			"error":             {"access_denied"},
			"error_description": {"The user denied access"},
			"state":             {state},
		})
	}
	code := b.newCode(&oauthCode{clientID: key, redirectURI: redirect, redirectGiven: given, user: b.oauth2.authorize, scopes: slices.Clone(c.scopes)})
	return redirectTo(redirect, url.Values{"code": {code}, "state": {state}})
}

// underCallback reports whether u is the callback URL or under it: same
// scheme and host, and a path at or below the callback's.
func underCallback(u, callback string) bool {
	pu, err1 := url.Parse(u)
	pc, err2 := url.Parse(callback)
	if err1 != nil || err2 != nil || pu.Scheme != pc.Scheme || !strings.EqualFold(pu.Host, pc.Host) {
		return false
	}
	base := strings.TrimSuffix(pc.Path, "/")
	return pu.Path == pc.Path || pu.Path == base || strings.HasPrefix(pu.Path, base+"/")
}

// accessToken answers POST /site/oauth2/access_token as Bitbucket does:
// the consumer's key and secret (basic auth or form), and
// grant_type=authorization_code with a code, or grant_type=refresh_token
// with a refresh token. Refusals are 400 with {"error",
// "error_description"}. b.mu is held.
func (b *Bitbucket) accessToken(r *http.Request) *response {
	key, secret := clientCredentials(r)
	grant := r.FormValue("grant_type")
	e := OAuthExchange{ClientID: key, GrantType: grant}
	fail := func(code, description string) *response {
		e.Status, e.Error = http.StatusBadRequest, code
		b.logExchange(e)
		return jsonResponse(http.StatusBadRequest, map[string]string{"error": code, "error_description": description})
	}
	c := b.oauth2.consumers[key]
	if c == nil || c.secret != secret {
		return fail("invalid_client", "Invalid OAuth client credentials")
	}
	var (
		user         *bbUser
		scopes       []string
		refreshToken string
	)
	switch grant {
	case "authorization_code":
		code := b.code(r.FormValue("code"), key)
		if code == nil {
			return fail("invalid_grant", "The specified code is not valid.")
		}
		if rd := r.FormValue("redirect_uri"); (rd == "" && code.redirectGiven) || (rd != "" && rd != code.redirectURI) {
			return fail("invalid_grant", "The redirect_uri does not match the one of the authorization request.")
		}
		if user = b.users[lower(code.user)]; user == nil {
			return fail("invalid_grant", "The specified code is not valid.")
		}
		code.used = true
		scopes = code.scopes
		refreshToken = randomHex(16)
		b.oauth2.refresh[refreshToken] = &bbRefresh{key: key, user: user, scopes: scopes}
	case "refresh_token":
		refreshToken = r.FormValue("refresh_token")
		rt := b.oauth2.refresh[refreshToken]
		if rt == nil || rt.key != key {
			return fail("invalid_grant", "Invalid refresh_token")
		}
		user, scopes = rt.user, rt.scopes
		if b.oauth2.rotate {
			delete(b.oauth2.refresh, refreshToken)
			refreshToken = randomHex(16)
			b.oauth2.refresh[refreshToken] = rt
		}
	default:
		return fail("unsupported_grant_type", "Unsupported grant type: "+grant)
	}
	access := randomHex(32)
	b.tokens[access] = &bbToken{user: user, scopes: slices.Clone(scopes), expires: time.Now().Add(BitbucketTokenLifetime)}
	e.Status, e.Token = http.StatusOK, access
	b.logExchange(e)
	return jsonResponse(http.StatusOK, bbOAuthToken{
		AccessToken:  access,
		Scopes:       strings.Join(scopes, " "),
		Scope:        strings.Join(scopes, " "),
		ExpiresIn:    int(BitbucketTokenLifetime / time.Second),
		RefreshToken: refreshToken,
		TokenType:    "bearer",
		State:        grant,
	})
}
