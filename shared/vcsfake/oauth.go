package vcsfake

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// OAuthCodeLifetime is how long an authorization code the fakes hand out
// may be exchanged: GitHub's ten minutes. ExpireOAuthCodes ends them
// sooner.
const OAuthCodeLifetime = 10 * time.Minute

// OAuthExchange is one request to a fake's OAuth token endpoint
// (GitHub's POST /login/oauth/access_token, Bitbucket's POST
// /site/oauth2/access_token), as OAuthExchangeLog lists it.
type OAuthExchange struct {
	// ClientID is the client the request named (basic auth or form).
	ClientID string
	// GrantType is "authorization_code" or "refresh_token".
	GrantType string
	// Status is the HTTP status answered: 200 also for GitHub's errors.
	Status int
	// Error is the OAuth error code answered ("bad_verification_code",
	// "invalid_grant", ...), "" when a token was issued.
	Error string
	// Token is the access token issued, "" on error.
	Token string
}

// oauthCode is an authorization code handed out by an authorize
// endpoint.
type oauthCode struct {
	clientID string
	// redirectURI is where the code was sent; redirectGiven whether the
	// authorize request named it (a Bitbucket consumer's callback is used
	// when it does not).
	redirectURI   string
	redirectGiven bool
	// user is the login (GitHub) or nickname (Bitbucket) who authorized.
	user    string
	scopes  []string
	expires time.Time
	used    bool
}

// oauthState is the OAuth state both fakes keep: codes and the token
// endpoint's log.
type oauthState struct {
	codes     map[string]*oauthCode
	exchanges []OAuthExchange
}

// OAuthExchanges returns how many requests the OAuth token endpoint
// answered, refused ones included. x/oauth2 with AuthStyleAutoDetect (an
// Endpoint without AuthStyle) tries a refused request a second time with
// the client credentials moved from the header to the form, so a refusal
// it reports may count twice; OAuthExchangeLog tells them apart.
func (c *core) OAuthExchanges() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.oauth.exchanges)
}

// OAuthExchangeLog returns the requests the OAuth token endpoint answered,
// oldest first.
func (c *core) OAuthExchangeLog() []OAuthExchange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.oauth.exchanges)
}

// ExpireOAuthCodes makes every authorization code handed out so far
// expired, as if OAuthCodeLifetime had passed: exchanging one fails as
// with a bad code.
func (c *core) ExpireOAuthCodes() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, code := range c.oauth.codes {
		code.expires = time.Time{}
	}
}

// newCode stores an authorization code and returns it. c.mu is held.
func (c *core) newCode(code *oauthCode) string {
	if c.oauth.codes == nil {
		c.oauth.codes = map[string]*oauthCode{}
	}
	v := randomHex(10) // GitHub's codes are 20 hex characters
	code.expires = time.Now().Add(OAuthCodeLifetime)
	c.oauth.codes[v] = code
	return v
}

// code returns the code v if clientID may still exchange it, or nil: an
// unknown, used or expired code, or one handed to another client. c.mu is
// held.
func (c *core) code(v, clientID string) *oauthCode {
	code := c.oauth.codes[v]
	if code == nil || code.used || code.clientID != clientID || !time.Now().Before(code.expires) {
		return nil
	}
	return code
}

// logExchange records an answer of the token endpoint. c.mu is held.
func (c *core) logExchange(e OAuthExchange) {
	c.oauth.exchanges = append(c.oauth.exchanges, e)
}

// clientCredentials returns the client id and secret of a token request:
// HTTP basic auth when the request has it, else the form's client_id and
// client_secret (RFC 6749 2.3.1 allows both; both VCSs accept both).
func clientCredentials(r *http.Request) (id, secret string) {
	if scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "basic") {
		if pair, err := base64.StdEncoding.DecodeString(cred); err == nil {
			id, secret, _ = strings.Cut(string(pair), ":")
			// x/oauth2 query-escapes both before encoding (RFC 6749 2.3.1).
			if v, err := url.QueryUnescape(id); err == nil {
				id = v
			}
			if v, err := url.QueryUnescape(secret); err == nil {
				secret = v
			}
			return id, secret
		}
	}
	return r.FormValue("client_id"), r.FormValue("client_secret")
}

// redirectTo is a 302 to target with params added to its query.
func redirectTo(target string, params url.Values) *response {
	u, err := url.Parse(target)
	if err != nil {
		return htmlPage(http.StatusBadRequest, "Bad redirect_uri")
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			if v != "" {
				q.Add(k, v)
			}
		}
	}
	u.RawQuery = q.Encode()
	return &response{status: http.StatusFound, header: http.Header{"Location": {u.String()}}}
}

// absoluteHTTP reports whether s is an absolute http or https URL.
func absoluteHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// htmlPage is a small HTML page, as the VCSs' web hosts answer a browser.
func htmlPage(status int, title string) *response {
	body := "<!DOCTYPE html>\n<html><head><title>" + title + "</title></head><body><h1>" + title + "</h1></body></html>\n"
	return &response{status: status, header: http.Header{"Content-Type": {"text/html; charset=utf-8"}}, body: []byte(body)}
}

// splitScopes splits a scope list on spaces and commas, dropping
// duplicates, in order.
func splitScopes(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}
