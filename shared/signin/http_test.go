package signin_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/apiauth"
	"forgelink/shared/forgelink"
	"forgelink/shared/signin"
)

// sessionRequest is a request of s's browser: the session cookie, and the
// CSRF header when csrf.
func sessionRequest(method, path, body string, s *session, csrf bool) *http.Request {
	req := httptest.NewRequest(method, "https://forgelink.example"+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.AddCookie(&http.Cookie{Name: s.cookie.Name, Value: s.cookie.Value})
	if csrf {
		req.Header.Set(apiauth.CSRFHeader, s.csrf.Value)
	}
	return req
}

// tokenRequest is a request with an API token.
func tokenRequest(method, path, body, token string) *http.Request {
	req := httptest.NewRequest(method, "https://forgelink.example"+path, strings.NewReader(body))
	req.Header.Set("Circle-Token", token)
	return req
}

// decode checks resp's status and decodes its JSON body into v.
func decode(t *testing.T, resp *http.Response, status int, v any) {
	t.Helper()
	body := bodyOf(t, resp)
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d: %s", resp.StatusCode, status, body)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(body), v); err != nil {
			t.Fatalf("%v in %s", err, body)
		}
	}
}

func TestLoginRedirect(t *testing.T) {
	tests := []struct {
		name       string
		publicURL  string
		path       string
		wantAuth   string // path of the authorize page
		wantClient string
		wantScope  string
		wantCB     string
		wantSecure bool
	}{
		{name: "github https", publicURL: "https://forgelink.example", path: "/login/github", wantAuth: "/login/oauth/authorize", wantClient: ghClient,
			wantScope: "repo admin:repo_hook admin:public_key user:email", wantCB: "https://forgelink.example/login/github/callback", wantSecure: true},
		{name: "github short name", publicURL: "https://forgelink.example/", path: "/login/gh", wantAuth: "/login/oauth/authorize", wantClient: ghClient,
			wantScope: "repo admin:repo_hook admin:public_key user:email", wantCB: "https://forgelink.example/login/github/callback", wantSecure: true},
		{name: "github http", publicURL: "http://localhost:8080", path: "/login/github", wantAuth: "/login/oauth/authorize", wantClient: ghClient,
			wantScope: "repo admin:repo_hook admin:public_key user:email", wantCB: "http://localhost:8080/login/github/callback"},
		{name: "github without a public URL", path: "/login/github", wantAuth: "/login/oauth/authorize", wantClient: ghClient,
			wantScope: "repo admin:repo_hook admin:public_key user:email", wantCB: "https://" + apiHost + "/login/github/callback", wantSecure: true},
		{name: "bitbucket https", publicURL: "https://forgelink.example", path: "/login/bitbucket", wantAuth: "/site/oauth2/authorize", wantClient: bbKey,
			wantCB: "https://forgelink.example/login/bitbucket/callback", wantSecure: true},
		{name: "bitbucket http", publicURL: "http://localhost:8080", path: "/login/bb", wantAuth: "/site/oauth2/authorize", wantClient: bbKey,
			wantCB: "http://localhost:8080/login/bitbucket/callback"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, strings.TrimRight(tc.publicURL, "/"))
			h.svc.Config.PublicURL = tc.publicURL
			// The request arrives on the host API Gateway answers, over
			// plain HTTP behind it.
			resp := h.serve(httptest.NewRequest(http.MethodGet, "http://"+apiHost+tc.path, nil))
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status = %d, want 302: %s", resp.StatusCode, bodyOf(t, resp))
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			web := h.gh.WebURL
			if tc.wantClient == bbKey {
				web = h.bb.WebURL
			}
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != web+tc.wantAuth {
				t.Errorf("redirect to %s, want %s", got, web+tc.wantAuth)
			}
			q := loc.Query()
			state := cookie(resp, "forgelink_oauth_state")
			if state == nil {
				t.Fatalf("no state cookie in %v", resp.Cookies())
			}
			want := url.Values{"client_id": {tc.wantClient}, "redirect_uri": {tc.wantCB}, "response_type": {"code"}, "state": {state.Value}}
			if tc.wantScope != "" {
				want.Set("scope", tc.wantScope)
			}
			if diff := cmp.Diff(want, q); diff != "" {
				t.Errorf("authorize query (-want +got):\n%s", diff)
			}
			if len(state.Value) < 40 {
				t.Errorf("state %q is short", state.Value)
			}
			if state.Path != "/login/" || !state.HttpOnly || state.MaxAge != 600 || state.SameSite != http.SameSiteLaxMode || state.Secure != tc.wantSecure {
				t.Errorf("state cookie = %+v, want Path /login/, HttpOnly, MaxAge 600, Lax, Secure %v", state, tc.wantSecure)
			}
			if c := cookie(resp, apiauth.SessionCookie); c != nil {
				t.Errorf("login set %v", c)
			}
			// A second login gets its own state.
			again := h.serve(httptest.NewRequest(http.MethodGet, "http://"+apiHost+tc.path, nil))
			if c := cookie(again, "forgelink_oauth_state"); c == nil || c.Value == state.Value {
				t.Errorf("second login's state %v, want a new one", c)
			}
		})
	}
}

func TestLoginUnavailable(t *testing.T) {
	h := newHarness(t, "https://forgelink.example")
	h.svc.Config.Bitbucket.ClientSecret = ""
	for _, path := range []string{"/login/gitlab", "/login/bitbucket", "/login/bitbucket/callback?state=x&code=y"} {
		resp := h.serve(httptest.NewRequest(http.MethodGet, "https://forgelink.example"+path, nil))
		if body := bodyOf(t, resp); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "not configured") {
			t.Errorf("GET %s = %d %s, want 404 not configured", path, resp.StatusCode, body)
		}
		if len(resp.Cookies()) != 0 {
			t.Errorf("GET %s set %v", path, resp.Cookies())
		}
	}
	if h.svc.Enabled(forgelink.Bitbucket) || !h.svc.Enabled(forgelink.GitHub) || h.svc.Enabled("gitlab") {
		t.Error("Enabled: want only GitHub")
	}
}

func TestCallbackSignsIn(t *testing.T) {
	tests := []struct {
		name       string
		publicURL  string
		vcs        forgelink.VCS
		wantUser   forgelink.User
		wantSecure bool
	}{
		{name: "github https", publicURL: "https://forgelink.example", vcs: forgelink.GitHub, wantSecure: true,
			wantUser: forgelink.User{ID: hubotID, VCS: forgelink.GitHub, VCSUserID: "583231", Login: "hubot", Name: "Hubot",
				Scopes: []string{"repo", "admin:repo_hook", "admin:public_key", "user:email"}}},
		{name: "github http", publicURL: "http://localhost:8080", vcs: forgelink.GitHub,
			wantUser: forgelink.User{ID: hubotID, VCS: forgelink.GitHub, VCSUserID: "583231", Login: "hubot", Name: "Hubot",
				Scopes: []string{"repo", "admin:repo_hook", "admin:public_key", "user:email"}}},
		{name: "github without a public URL", vcs: forgelink.GitHub, wantSecure: true,
			wantUser: forgelink.User{ID: hubotID, VCS: forgelink.GitHub, VCSUserID: "583231", Login: "hubot", Name: "Hubot",
				Scopes: []string{"repo", "admin:repo_hook", "admin:public_key", "user:email"}}},
		{name: "bitbucket https", publicURL: "https://forgelink.example", vcs: forgelink.Bitbucket, wantSecure: true,
			wantUser: forgelink.User{ID: bbUserID, VCS: forgelink.Bitbucket, VCSUserID: bbUUID, Login: "bbuser", Name: "BB User"}},
		{name: "bitbucket http", publicURL: "http://localhost:8080", vcs: forgelink.Bitbucket,
			wantUser: forgelink.User{ID: bbUserID, VCS: forgelink.Bitbucket, VCSUserID: bbUUID, Login: "bbuser", Name: "BB User"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.publicURL)
			ctx := t.Context()
			signedInAt := h.clock.Now()
			state, auth, _ := h.startLogin(t, string(tc.vcs))
			resp := h.callback(authorize(t, auth), state)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
				t.Fatalf("callback = %d to %q, want 303 to /: %s", resp.StatusCode, resp.Header.Get("Location"), bodyOf(t, resp))
			}
			sc, cc, gone := cookie(resp, apiauth.SessionCookie), cookie(resp, apiauth.CSRFCookie), cookie(resp, "forgelink_oauth_state")
			if sc == nil || cc == nil || gone == nil {
				t.Fatalf("cookies %v, want the session, CSRF and cleared state cookies", resp.Cookies())
			}
			age := int(forgelink.SessionTTL / time.Second)
			if !strings.HasPrefix(sc.Value, "fls_") || sc.Path != "/" || !sc.HttpOnly || sc.MaxAge != age || sc.SameSite != http.SameSiteLaxMode || sc.Secure != tc.wantSecure {
				t.Errorf("session cookie = %+v, want fls_..., Path /, HttpOnly, MaxAge %d, Lax, Secure %v", sc, age, tc.wantSecure)
			}
			if cc.Value == "" || cc.Path != "/" || cc.HttpOnly || cc.MaxAge != age || cc.Secure != tc.wantSecure {
				t.Errorf("CSRF cookie = %+v, want readable by the page, Path /, MaxAge %d, Secure %v", cc, age, tc.wantSecure)
			}
			if gone.MaxAge != -1 || gone.Path != "/login/" || gone.Secure != tc.wantSecure {
				t.Errorf("state cookie = %+v, want cleared on /login/", gone)
			}

			u, csrf, err := h.svc.AuthenticateSession(ctx, sc.Value)
			if err != nil || u.ID != tc.wantUser.ID || csrf != cc.Value {
				t.Fatalf("session: %+v %q %v", u, csrf, err)
			}
			stored, err := h.store.GetUser(ctx, tc.wantUser.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.wantUser
			want.CreatedAt, want.UpdatedAt, want.Version = signedInAt, signedInAt, 1
			ignore := func(p cmp.Path) bool {
				f := p.String()
				return f == "SealedToken" || f == "SealedRefresh" || f == "TokenExpiry" || (f == "Scopes" && tc.vcs == forgelink.Bitbucket)
			}
			if diff := cmp.Diff(&want, stored, cmp.FilterPath(ignore, cmp.Ignore())); diff != "" {
				t.Errorf("stored user (-want +got):\n%s", diff)
			}
			var log []string
			for _, e := range append(h.gh.OAuthExchangeLog(), h.bb.OAuthExchangeLog()...) {
				log = append(log, e.Token)
			}
			if tok := h.open(t, stored, stored.SealedToken, forgelink.PurposeUserToken); tok == "" || !slices.Contains(log, tok) {
				t.Errorf("stored token %q is not the exchanged one (%q)", tok, log)
			}
			if tc.vcs == forgelink.Bitbucket && (len(stored.SealedRefresh) == 0 || stored.TokenExpiry.IsZero()) {
				t.Errorf("Bitbucket user without refresh token or expiry: %+v", stored)
			}

			// Signing in again replaces the token and keeps CreatedAt.
			h.clock.Add(time.Hour)
			state, auth, _ = h.startLogin(t, string(tc.vcs))
			if resp := h.callback(authorize(t, auth), state); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("second sign-in = %d", resp.StatusCode)
			}
			again, err := h.store.GetUser(ctx, tc.wantUser.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !again.CreatedAt.Equal(signedInAt) || !again.UpdatedAt.Equal(signedInAt.Add(time.Hour)) || again.Version != 2 {
				t.Errorf("after a second sign-in: created %v, updated %v, version %d; want %v, +1h, 2", again.CreatedAt, again.UpdatedAt, again.Version, signedInAt)
			}
			if h.open(t, again, again.SealedToken, forgelink.PurposeUserToken) == h.open(t, stored, stored.SealedToken, forgelink.PurposeUserToken) {
				t.Error("a second sign-in kept the old token")
			}
		})
	}
}

// TestCallbackRefused: every refused callback answers a page and starts
// no session.
func TestCallbackRefused(t *testing.T) {
	tests := []struct {
		name string
		vcs  forgelink.VCS
		// setup runs before the login starts.
		setup func(h *harness)
		// edit changes the callback URL and cookies the browser sends.
		edit       func(t *testing.T, h *harness, cb *url.URL, state *http.Cookie) (*url.URL, []*http.Cookie)
		wantStatus int
		wantBody   []string
	}{
		{name: "state mismatch", vcs: forgelink.GitHub, wantStatus: 400, wantBody: []string{"does not match"},
			edit: func(t *testing.T, h *harness, cb *url.URL, state *http.Cookie) (*url.URL, []*http.Cookie) {
				other, _, _ := h.startLogin(t, "github") // a state of another login, valid in the store
				return cb, []*http.Cookie{other}
			}},
		{name: "missing cookie", vcs: forgelink.GitHub, wantStatus: 400, wantBody: []string{"does not match"},
			edit: func(t *testing.T, h *harness, cb *url.URL, state *http.Cookie) (*url.URL, []*http.Cookie) {
				return cb, nil
			}},
		{name: "missing state", vcs: forgelink.GitHub, wantStatus: 400, wantBody: []string{"does not match"},
			edit: func(t *testing.T, h *harness, cb *url.URL, state *http.Cookie) (*url.URL, []*http.Cookie) {
				q := cb.Query()
				q.Del("state")
				cb.RawQuery = q.Encode()
				return cb, []*http.Cookie{{Name: state.Name, Value: ""}}
			}},
		{name: "state reused", vcs: forgelink.GitHub, wantStatus: 400, wantBody: []string{"already used or has expired"},
			edit: func(t *testing.T, h *harness, cb *url.URL, state *http.Cookie) (*url.URL, []*http.Cookie) {
				if resp := h.callback(cb, state); resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("first callback = %d, want 303", resp.StatusCode)
				}
				return cb, []*http.Cookie{state}
			}},
		{name: "state expired", vcs: forgelink.GitHub, wantStatus: 400, wantBody: []string{"already used or has expired"},
			edit: func(t *testing.T, h *harness, cb *url.URL, state *http.Cookie) (*url.URL, []*http.Cookie) {
				h.clock.Add(10 * time.Minute)
				return cb, []*http.Cookie{state}
			}},
		{name: "state of no login", vcs: forgelink.GitHub, wantStatus: 400, wantBody: []string{"already used or has expired"},
			edit: func(t *testing.T, h *harness, cb *url.URL, state *http.Cookie) (*url.URL, []*http.Cookie) {
				q := cb.Query()
				q.Set("state", "forged-state")
				cb.RawQuery = q.Encode()
				return cb, []*http.Cookie{{Name: state.Name, Value: "forged-state"}}
			}},
		{name: "github bad code", vcs: forgelink.GitHub, wantStatus: 400, wantBody: []string{"GitHub refused the sign-in code (bad_verification_code)"},
			edit: func(t *testing.T, h *harness, cb *url.URL, state *http.Cookie) (*url.URL, []*http.Cookie) {
				q := cb.Query()
				q.Set("code", "0123456789abcdef0123")
				cb.RawQuery = q.Encode()
				return cb, []*http.Cookie{state}
			}},
		{name: "github expired code", vcs: forgelink.GitHub, wantStatus: 400, wantBody: []string{"bad_verification_code"},
			edit: func(t *testing.T, h *harness, cb *url.URL, state *http.Cookie) (*url.URL, []*http.Cookie) {
				h.gh.ExpireOAuthCodes()
				return cb, []*http.Cookie{state}
			}},
		{name: "github wrong client secret", vcs: forgelink.GitHub, wantStatus: 400, wantBody: []string{"incorrect_client_credentials"},
			setup: func(h *harness) { h.gh.SetOAuthClient(ghClient, "rotated") }},
		{name: "bitbucket bad code", vcs: forgelink.Bitbucket, wantStatus: 400, wantBody: []string{"Bitbucket refused the sign-in code (invalid_grant)"},
			edit: func(t *testing.T, h *harness, cb *url.URL, state *http.Cookie) (*url.URL, []*http.Cookie) {
				q := cb.Query()
				q.Set("code", "nope")
				cb.RawQuery = q.Encode()
				return cb, []*http.Cookie{state}
			}},
		{name: "no code", vcs: forgelink.GitHub, wantStatus: 400, wantBody: []string{"sent no sign-in code"},
			edit: func(t *testing.T, h *harness, cb *url.URL, state *http.Cookie) (*url.URL, []*http.Cookie) {
				q := cb.Query()
				q.Del("code")
				cb.RawQuery = q.Encode()
				return cb, []*http.Cookie{state}
			}},
		{name: "github denied", vcs: forgelink.GitHub, wantStatus: 400, wantBody: []string{"Sign-in cancelled", "GitHub did not authorize forgelink: The user has denied your application access."},
			setup: func(h *harness) { h.gh.SetAuthorizeUser("") }},
		{name: "bitbucket denied", vcs: forgelink.Bitbucket, wantStatus: 400, wantBody: []string{"Sign-in cancelled", "Bitbucket did not authorize forgelink: The user denied access."},
			setup: func(h *harness) { h.bb.SetAuthorizeUser("") }},
		{name: "github missing scopes", vcs: forgelink.GitHub, wantStatus: 403, wantBody: []string{"the scopes admin:repo_hook, admin:public_key are missing"},
			setup: func(h *harness) { h.gh.SetGrantedScopes("hubot", "repo", "user:email") }},
		{name: "github no scopes", vcs: forgelink.GitHub, wantStatus: 403, wantBody: []string{"the scopes repo, admin:repo_hook, admin:public_key, user:email are missing"},
			setup: func(h *harness) { h.gh.SetGrantedScopes("hubot") }},
		{name: "account unreadable", vcs: forgelink.GitHub, wantStatus: 502, wantBody: []string{"GitHub did not answer who signed in"},
			setup: func(h *harness) { h.gh.FailNext(http.MethodGet, "/user", 500, 3) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "https://forgelink.example")
			if tc.setup != nil {
				tc.setup(h)
			}
			state, auth, _ := h.startLogin(t, string(tc.vcs))
			cb, cookies := authorize(t, auth), []*http.Cookie{state}
			if tc.edit != nil {
				cb, cookies = tc.edit(t, h, cb, state)
			}
			resp := h.callback(cb, cookies...)
			body := bodyOf(t, resp)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Content-Type %q, Cache-Control %q; want an HTML page, no-store", ct, resp.Header.Get("Cache-Control"))
			}
			for _, want := range tc.wantBody {
				if !strings.Contains(body, htmlEscape(want)) {
					t.Errorf("page does not say %q:\n%s", want, body)
				}
			}
			for _, name := range []string{apiauth.SessionCookie, apiauth.CSRFCookie} {
				if c := cookie(resp, name); c != nil {
					t.Errorf("refused callback set %v", c)
				}
			}
			if c := cookie(resp, "forgelink_oauth_state"); c == nil || c.MaxAge != -1 {
				t.Errorf("state cookie %v, want it cleared", c)
			}
			if tc.name == "state reused" {
				return // the first callback signed in
			}
			for _, id := range []string{hubotID, bbUserID} {
				if _, err := h.store.GetUser(t.Context(), id); forgelink.KindOf(err) != forgelink.NotFound {
					t.Errorf("user %s stored (%v), want none", id, err)
				}
			}
		})
	}
}

// htmlEscape is what html/template makes of s in text.
func htmlEscape(s string) string {
	return strings.NewReplacer("'", "&#39;", "\"", "&#34;", "&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// TestCallbackStateSingleUse: of two callbacks with one state, the first
// signs in, the second is refused even with a new code.
func TestCallbackStateSingleUse(t *testing.T) {
	h := newHarness(t, "https://forgelink.example")
	state, auth, _ := h.startLogin(t, "github")
	first := h.callback(authorize(t, auth), state)
	second := h.callback(authorize(t, auth), state) // the fake hands out a fresh code
	if first.StatusCode != http.StatusSeeOther || second.StatusCode != http.StatusBadRequest {
		t.Errorf("callbacks = %d, %d; want 303, 400", first.StatusCode, second.StatusCode)
	}
	if cookie(second, apiauth.SessionCookie) != nil {
		t.Error("the second callback started a session")
	}
}

func TestLogout(t *testing.T) {
	h := newHarness(t, "https://forgelink.example")
	ctx := t.Context()
	s := h.signIn(t, forgelink.GitHub)

	resp := h.serve(sessionRequest(http.MethodPost, "/logout", "", s, false))
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("logout without CSRF = %d, want 403", resp.StatusCode)
	}
	if _, _, err := h.svc.AuthenticateSession(ctx, s.cookie.Value); err != nil {
		t.Fatalf("session ended by a refused logout: %v", err)
	}
	resp = h.serve(httptest.NewRequest(http.MethodPost, "https://forgelink.example/logout", nil))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("logout without a session = %d, want 401", resp.StatusCode)
	}

	resp = h.serve(sessionRequest(http.MethodPost, "/logout", "", s, true))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout = %d, want 303", resp.StatusCode)
	}
	for _, name := range []string{apiauth.SessionCookie, apiauth.CSRFCookie} {
		if c := cookie(resp, name); c == nil || c.MaxAge != -1 || c.Secure != true {
			t.Errorf("logout cookie %s = %v, want cleared", name, c)
		}
	}
	if _, _, err := h.svc.AuthenticateSession(ctx, s.cookie.Value); forgelink.KindOf(err) != forgelink.Unauthorized {
		t.Errorf("session after logout: %v, want Unauthorized", err)
	}
}

func TestTokensAPI(t *testing.T) {
	h := newHarness(t, "https://forgelink.example")
	ctx := t.Context()
	hubot := h.signIn(t, forgelink.GitHub)
	bbuser := h.signIn(t, forgelink.Bitbucket)

	t.Run("labels", func(t *testing.T) {
		tests := []struct {
			name, label string
			wantStatus  int
			wantLabel   string
		}{
			{name: "plain", label: "laptop", wantStatus: 201, wantLabel: "laptop"},
			{name: "trimmed", label: "  ci runner \t", wantStatus: 201, wantLabel: "ci runner"},
			{name: "100 characters", label: strings.Repeat("é", 100), wantStatus: 201, wantLabel: strings.Repeat("é", 100)},
			{name: "empty", label: "", wantStatus: 400},
			{name: "blank", label: "   ", wantStatus: 400},
			{name: "101 characters", label: strings.Repeat("a", 101), wantStatus: 400},
			{name: "newline", label: "two\nlines", wantStatus: 400},
			{name: "carriage return", label: "two\rlines", wantStatus: 400},
			{name: "NUL", label: "a\x00b", wantStatus: 400},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				body, _ := json.Marshal(map[string]string{"label": tc.label})
				resp := h.serve(sessionRequest(http.MethodPost, "/api/v2/me/tokens", string(body), hubot, true))
				var got struct {
					ID, Label, Token, Message string
					CreatedAt                 time.Time `json:"created_at"`
				}
				decode(t, resp, tc.wantStatus, &got)
				if tc.wantStatus != 201 {
					if !strings.Contains(got.Message, "label must be 1 to 100 characters on one line") {
						t.Errorf("message = %q", got.Message)
					}
					return
				}
				if got.Label != tc.wantLabel || got.ID == "" || !strings.HasPrefix(got.Token, "flp_") || !got.CreatedAt.Equal(h.clock.Now()) {
					t.Errorf("created %+v, want label %q, an id, an flp_ token, created now", got, tc.wantLabel)
				}
				u, err := h.svc.Authenticate(ctx, got.Token)
				if err != nil || u.ID != hubot.userID {
					t.Errorf("the new token authenticates %+v, %v; want hubot", u, err)
				}
			})
		}
		for _, body := range []string{`{"label":"x","extra":1}`, `{"label":5}`, `[]`, ``} {
			resp := h.serve(sessionRequest(http.MethodPost, "/api/v2/me/tokens", body, hubot, true))
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("body %q: %d, want 400", body, resp.StatusCode)
			}
		}
	})

	t.Run("list without values", func(t *testing.T) {
		id, value := h.createToken(t, bbuser, "only bbuser's")
		resp := h.serve(tokenRequest(http.MethodGet, "/api/v2/me/tokens", "", value))
		raw := bodyOf(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("list = %d %s", resp.StatusCode, raw)
		}
		var got struct {
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Items) != 1 || got.Items[0]["id"] != id || got.Items[0]["label"] != "only bbuser's" {
			t.Errorf("items = %v, want bbuser's one token", got.Items)
		}
		for _, it := range got.Items {
			if _, ok := it["token"]; ok {
				t.Errorf("item %v has its token", it)
			}
		}
		if strings.Contains(raw, value) || strings.Contains(raw, hashOf(value)) {
			t.Errorf("list shows the token or its hash: %s", raw)
		}
		// hubot's list has only hubot's tokens.
		resp = h.serve(sessionRequest(http.MethodGet, "/api/v2/me/tokens", "", hubot, false))
		var mine struct {
			Items []struct{ ID string } `json:"items"`
		}
		decode(t, resp, http.StatusOK, &mine)
		for _, it := range mine.Items {
			if it.ID == id {
				t.Errorf("hubot's list has bbuser's token %s", id)
			}
		}
	})

	t.Run("empty list", func(t *testing.T) {
		other := newHarness(t, "https://forgelink.example")
		fresh := other.signIn(t, forgelink.GitHub)
		resp := other.serve(sessionRequest(http.MethodGet, "/api/v2/me/tokens", "", fresh, false))
		if raw := bodyOf(t, resp); resp.StatusCode != 200 || strings.TrimSpace(raw) != `{"items":[]}` {
			t.Errorf("no tokens: %d %s, want 200 {\"items\":[]}", resp.StatusCode, raw)
		}
	})

	t.Run("delete", func(t *testing.T) {
		mineID, mine := h.createToken(t, hubot, "to revoke")
		theirsID, theirs := h.createToken(t, bbuser, "not hubot's")
		for _, id := range []string{theirsID, "no-such-id"} {
			resp := h.serve(sessionRequest(http.MethodDelete, "/api/v2/me/tokens/"+id, "", hubot, true))
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("DELETE %s of another user = %d, want 404", id, resp.StatusCode)
			}
		}
		if u, err := h.svc.Authenticate(ctx, theirs); err != nil || u.ID != bbUserID {
			t.Errorf("bbuser's token after hubot's delete: %+v, %v", u, err)
		}
		resp := h.serve(sessionRequest(http.MethodDelete, "/api/v2/me/tokens/"+mineID, "", hubot, false))
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("DELETE without CSRF = %d, want 403", resp.StatusCode)
		}
		resp = h.serve(tokenRequest(http.MethodDelete, "/api/v2/me/tokens/"+mineID, "", mine))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE own token = %d, want 204", resp.StatusCode)
		}
		if _, err := h.svc.Authenticate(ctx, mine); forgelink.KindOf(err) != forgelink.Unauthorized {
			t.Errorf("revoked token: %v, want Unauthorized", err)
		}
		resp = h.serve(sessionRequest(http.MethodDelete, "/api/v2/me/tokens/"+mineID, "", hubot, true))
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("second DELETE = %d, want 404", resp.StatusCode)
		}
	})

	t.Run("env user", func(t *testing.T) {
		for _, req := range []*http.Request{
			tokenRequest(http.MethodPost, "/api/v2/me/tokens", `{"label":"x"}`, envToken),
			tokenRequest(http.MethodGet, "/api/v2/me/tokens", "", envToken),
			tokenRequest(http.MethodDelete, "/api/v2/me/tokens/abc", "", envToken),
		} {
			var got struct{ Message string }
			decode(t, h.serve(req), http.StatusForbidden, &got)
			if !strings.Contains(got.Message, "FORGELINK_API_TOKEN") {
				t.Errorf("%s: message %q", req.Method, got.Message)
			}
		}
		if ts, err := h.store.ListAPITokens(ctx, ""); err != nil || len(ts) != 0 {
			t.Errorf("env user's tokens: %v, %v; want none", ts, err)
		}
	})

	t.Run("routes", func(t *testing.T) {
		tests := []struct {
			method, path string
			auth         bool
			want         int
		}{
			{http.MethodGet, "/api/v2/me/tokens", false, 401},
			{http.MethodPost, "/api/v2/me/tokens", false, 401},
			{http.MethodPut, "/api/v2/me/tokens", true, 405},
			{http.MethodGet, "/api/v2/me/tokens/abc", true, 405},
			{http.MethodGet, "/api/v2/me/tokens/a/b", true, 404},
			{http.MethodGet, "/login/github/callback/x", false, 404},
		}
		_, value := h.createToken(t, hubot, "routes")
		for _, tc := range tests {
			req := httptest.NewRequest(tc.method, "https://forgelink.example"+tc.path, nil)
			if tc.auth {
				req.Header.Set("Circle-Token", value)
			}
			if resp := h.serve(req); resp.StatusCode != tc.want {
				t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
			}
		}
	})
}

// TestRoutes: Routes covers every path Handler serves.
func TestRoutes(t *testing.T) {
	for _, p := range []string{"/login/github", "/login/github/callback", "/logout", "/api/v2/me/tokens", "/api/v2/me/tokens/x"} {
		ok := false
		for _, r := range signin.Routes {
			if p == r || (strings.HasSuffix(r, "/") && strings.HasPrefix(p, r)) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("Routes %v do not cover %s", signin.Routes, p)
		}
	}
}
