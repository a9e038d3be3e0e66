package vcsfake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"forgelink/shared/vcsfake"
)

// noRedirect is a client that returns a redirect instead of following it,
// as a test of an authorize page needs.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authorize GETs an authorize URL and returns the status, the Location's
// query (nil without a redirect) and the Location.
func authorize(t *testing.T, u string) (int, url.Values, string) {
	t.Helper()
	resp, err := noRedirect.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if loc == "" {
		return resp.StatusCode, nil, ""
	}
	l, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	return resp.StatusCode, l.Query(), loc
}

// postForm POSTs form to u, with basic auth user:pass when user is not ""
// and the Accept header when accept is not "".
func postForm(t *testing.T, u string, form url.Values, user, pass, accept string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestGitHubAuthorizePage(t *testing.T) {
	const cb = "https://app.example/login/github/callback?from=x"
	tests := []struct {
		name       string
		query      url.Values
		deny       bool
		wantStatus int
		wantParams []string // query parameters the redirect has
		wantError  string
	}{
		{name: "approved", query: url.Values{"client_id": {"cid"}, "redirect_uri": {cb}, "state": {"st8"}, "scope": {"repo user:email"}},
			wantStatus: 302, wantParams: []string{"code", "state", "from"}},
		{name: "no state", query: url.Values{"client_id": {"cid"}, "redirect_uri": {cb}},
			wantStatus: 302, wantParams: []string{"code", "from"}},
		{name: "denied", deny: true, query: url.Values{"client_id": {"cid"}, "redirect_uri": {cb}, "state": {"st8"}},
			wantStatus: 302, wantParams: []string{"error", "error_description", "error_uri", "state", "from"}, wantError: "access_denied"},
		{name: "unknown client", query: url.Values{"client_id": {"nope"}, "redirect_uri": {cb}}, wantStatus: 404},
		{name: "no client", query: url.Values{"redirect_uri": {cb}}, wantStatus: 404},
		{name: "no redirect_uri", query: url.Values{"client_id": {"cid"}}, wantStatus: 400},
		{name: "relative redirect_uri", query: url.Values{"client_id": {"cid"}, "redirect_uri": {"/cb"}}, wantStatus: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := vcsfake.NewGitHub(t)
			g.SetOAuthClient("cid", "secret")
			if tc.deny {
				g.SetAuthorizeUser("")
			}
			status, params, loc := authorize(t, g.WebURL+"/login/oauth/authorize?"+tc.query.Encode())
			if status != tc.wantStatus {
				t.Fatalf("status = %d, want %d", status, tc.wantStatus)
			}
			var got []string
			for k := range params {
				got = append(got, k)
			}
			if diff := cmp.Diff(tc.wantParams, got, sortStrings); diff != "" {
				t.Errorf("redirect parameters (-want +got):\n%s", diff)
			}
			if tc.wantStatus == 302 {
				if !strings.HasPrefix(loc, "https://app.example/login/github/callback?") || params.Get("state") != tc.query.Get("state") || params.Get("error") != tc.wantError {
					t.Errorf("Location = %s", loc)
				}
			}
			if n := g.CountRequests(http.MethodGet, "/login/oauth/authorize"); n != 1 || g.RateLimitedRequests() != 0 {
				t.Errorf("logged %d authorize requests, %d rate limited; want 1, 0", n, g.RateLimitedRequests())
			}
		})
	}
}

// sortStrings compares string slices in any order.
var sortStrings = cmp.Options{cmpopts.SortSlices(func(a, b string) bool { return a < b }), cmpopts.EquateEmpty()}

func TestGitHubAccessToken(t *testing.T) {
	const cb = "https://app.example/cb"
	badCode := `{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired.","error_uri":"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"}`
	tests := []struct {
		name   string
		accept string
		basic  bool // client credentials as basic auth
		edit   func(g *vcsfake.GitHub, form url.Values)
		// wantBody is the exact JSON (Accept: application/json) or form
		// body; "" for a token.
		wantBody string
		wantErr  string
	}{
		{name: "json", accept: "application/json"},
		{name: "form-encoded without Accept"},
		{name: "basic auth", accept: "application/json", basic: true},
		{name: "bad code, json", accept: "application/json", edit: func(_ *vcsfake.GitHub, f url.Values) { f.Set("code", "0123456789abcdef0123") },
			wantBody: badCode, wantErr: "bad_verification_code"},
		{name: "bad code, form", edit: func(_ *vcsfake.GitHub, f url.Values) { f.Set("code", "nope") },
			wantBody: "error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired.&error_uri=https%3A%2F%2Fdocs.github.com%2Fapps%2Fmanaging-oauth-apps%2Ftroubleshooting-oauth-app-access-token-request-errors%2F%23bad-verification-code",
			wantErr:  "bad_verification_code"},
		{name: "expired code", accept: "application/json", edit: func(g *vcsfake.GitHub, _ url.Values) { g.ExpireOAuthCodes() },
			wantBody: badCode, wantErr: "bad_verification_code"},
		{name: "code of another client", accept: "application/json", edit: func(g *vcsfake.GitHub, f url.Values) {
			g.SetOAuthClient("other", "s2")
			f.Set("client_id", "other")
			f.Set("client_secret", "s2")
		}, wantBody: badCode, wantErr: "bad_verification_code"},
		{name: "wrong secret", accept: "application/json", edit: func(_ *vcsfake.GitHub, f url.Values) { f.Set("client_secret", "guess") },
			wantBody: `{"error":"incorrect_client_credentials","error_description":"The client_id and/or client_secret passed are incorrect.","error_uri":"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#incorrect-client-credentials"}`,
			wantErr:  "incorrect_client_credentials"},
		{name: "other redirect_uri", accept: "application/json", edit: func(_ *vcsfake.GitHub, f url.Values) { f.Set("redirect_uri", "https://evil.example/cb") },
			wantBody: `{"error":"redirect_uri_mismatch","error_description":"The redirect_uri MUST match the registered callback URL for this application.","error_uri":"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#redirect-uri-mismatch"}`,
			wantErr:  "redirect_uri_mismatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := vcsfake.NewGitHub(t)
			g.SetOAuthClient("cid", "secret")
			g.AddUser("hubot", 42, "Hubot")
			g.SetAuthorizeUser("hubot")
			_, params, _ := authorize(t, g.WebURL+"/login/oauth/authorize?"+url.Values{
				"client_id": {"cid"}, "redirect_uri": {cb}, "scope": {"repo admin:repo_hook"}, "state": {"s"},
			}.Encode())
			form := url.Values{"client_id": {"cid"}, "client_secret": {"secret"}, "code": {params.Get("code")}, "redirect_uri": {cb}}
			if tc.edit != nil {
				tc.edit(g, form)
			}
			user, pass := "", ""
			if tc.basic {
				user, pass = form.Get("client_id"), form.Get("client_secret")
				form.Del("client_id")
				form.Del("client_secret")
			}
			resp, body := postForm(t, g.WebURL+"/login/oauth/access_token", form, user, pass, tc.accept)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200 (GitHub answers errors with 200 too)", resp.StatusCode)
			}
			wantType := "application/x-www-form-urlencoded; charset=utf-8"
			if tc.accept != "" {
				wantType = "application/json; charset=utf-8"
			}
			if ct := resp.Header.Get("Content-Type"); ct != wantType {
				t.Errorf("Content-Type = %q, want %q", ct, wantType)
			}
			log := g.OAuthExchangeLog()
			if len(log) != 1 || g.OAuthExchanges() != 1 || log[0].Error != tc.wantErr || log[0].GrantType != "authorization_code" {
				t.Errorf("exchange log = %+v, want one with error %q", log, tc.wantErr)
			}
			if tc.wantBody != "" {
				if string(body) != tc.wantBody {
					t.Errorf("body = %s\nwant   %s", body, tc.wantBody)
				}
				return
			}
			var tok struct{ AccessToken, TokenType, Scope string }
			if tc.accept != "" {
				var j struct {
					AccessToken string `json:"access_token"`
					TokenType   string `json:"token_type"`
					Scope       string `json:"scope"`
				}
				if err := json.Unmarshal(body, &j); err != nil {
					t.Fatalf("%v: %s", err, body)
				}
				tok.AccessToken, tok.TokenType, tok.Scope = j.AccessToken, j.TokenType, j.Scope
			} else {
				v, err := url.ParseQuery(string(body))
				if err != nil {
					t.Fatalf("%v: %s", err, body)
				}
				tok.AccessToken, tok.TokenType, tok.Scope = v.Get("access_token"), v.Get("token_type"), v.Get("scope")
			}
			if !strings.HasPrefix(tok.AccessToken, "gho_") || tok.TokenType != "bearer" || tok.Scope != "repo,admin:repo_hook" || log[0].Token != tok.AccessToken {
				t.Errorf("token = %+v, want a gho_ bearer token with scope repo,admin:repo_hook", tok)
			}
			var u struct {
				Login string `json:"login"`
			}
			resp = getJSON(t, g.URL+"user", tok.AccessToken, &u)
			if u.Login != "hubot" || resp.Header.Get("X-OAuth-Scopes") != "repo, admin:repo_hook" {
				t.Errorf("the token is %q's with scopes %q; want hubot's, repo, admin:repo_hook", u.Login, resp.Header.Get("X-OAuth-Scopes"))
			}
			// A code is good once.
			resp, body = postForm(t, g.WebURL+"/login/oauth/access_token", form, user, pass, "application/json")
			if resp.StatusCode != 200 || string(body) != badCode {
				t.Errorf("the code again: %d %s, want 200 bad_verification_code", resp.StatusCode, body)
			}
		})
	}
}

func TestGitHubGrantedScopes(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.SetOAuthClient("cid", "secret")
	g.SetGrantedScopes(vcsfake.GitHubLogin, "repo")
	_, params, _ := authorize(t, g.WebURL+"/login/oauth/authorize?client_id=cid&redirect_uri=https://a.example/cb&scope=repo+admin:repo_hook")
	resp, body := postForm(t, g.WebURL+"/login/oauth/access_token", url.Values{"client_id": {"cid"}, "client_secret": {"secret"}, "code": {params.Get("code")}}, "", "", "application/json")
	var tok struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || resp.StatusCode != 200 || tok.Scope != "repo" {
		t.Fatalf("exchange = %d %s, want scope repo", resp.StatusCode, body)
	}
	if resp := getJSON(t, g.URL+"user", tok.AccessToken, nil); resp.Header.Get("X-OAuth-Scopes") != "repo" {
		t.Errorf("X-OAuth-Scopes = %q, want repo", resp.Header.Get("X-OAuth-Scopes"))
	}
	if resp := getJSON(t, g.URL+"user", g.Token, nil); resp.Header.Get("X-OAuth-Scopes") != strings.Join(vcsfake.GitHubDefaultScopes, ", ") {
		t.Errorf("Token's scopes changed: %q", resp.Header.Get("X-OAuth-Scopes"))
	}
}

func TestBitbucketAuthorizePage(t *testing.T) {
	const cb = "https://app.example/login/bitbucket/callback"
	tests := []struct {
		name       string
		query      url.Values
		deny       bool
		wantStatus int
		wantTo     string // the redirect without its query
		wantError  string
	}{
		{name: "callback URL", query: url.Values{"client_id": {"key"}, "response_type": {"code"}, "state": {"st8"}}, wantStatus: 302, wantTo: cb},
		{name: "redirect_uri is the callback", query: url.Values{"client_id": {"key"}, "response_type": {"code"}, "state": {"st8"}, "redirect_uri": {cb}}, wantStatus: 302, wantTo: cb},
		{name: "redirect_uri under the callback", query: url.Values{"client_id": {"key"}, "response_type": {"code"}, "redirect_uri": {cb + "/more"}}, wantStatus: 302, wantTo: cb + "/more"},
		{name: "redirect_uri elsewhere", query: url.Values{"client_id": {"key"}, "response_type": {"code"}, "redirect_uri": {"https://evil.example/login/bitbucket/callback"}}, wantStatus: 400},
		{name: "redirect_uri beside the callback", query: url.Values{"client_id": {"key"}, "response_type": {"code"}, "redirect_uri": {cb + "x"}}, wantStatus: 400},
		{name: "unknown client", query: url.Values{"client_id": {"nope"}, "response_type": {"code"}}, wantStatus: 400},
		{name: "implicit grant", query: url.Values{"client_id": {"key"}, "response_type": {"token"}, "state": {"st8"}}, wantStatus: 302, wantTo: cb, wantError: "unsupported_response_type"},
		{name: "denied", deny: true, query: url.Values{"client_id": {"key"}, "response_type": {"code"}, "state": {"st8"}}, wantStatus: 302, wantTo: cb, wantError: "access_denied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := vcsfake.NewBitbucket(t)
			b.SetOAuthConsumer("key", "secret", cb)
			if tc.deny {
				b.SetAuthorizeUser("")
			}
			status, params, loc := authorize(t, b.WebURL+"/site/oauth2/authorize?"+tc.query.Encode())
			if status != tc.wantStatus {
				t.Fatalf("status = %d, want %d", status, tc.wantStatus)
			}
			if status != 302 {
				return
			}
			to, _, _ := strings.Cut(loc, "?")
			if to != tc.wantTo || params.Get("state") != tc.query.Get("state") || params.Get("error") != tc.wantError || (params.Get("code") == "") != (tc.wantError != "") {
				t.Errorf("Location = %s, want %s with state %q, error %q", loc, tc.wantTo, tc.query.Get("state"), tc.wantError)
			}
		})
	}
}

func TestBitbucketAccessToken(t *testing.T) {
	const cb = "https://app.example/cb"
	type grant struct {
		AccessToken  string `json:"access_token"`
		Scopes       string `json:"scopes"`
		Scope        string `json:"scope"`
		ExpiresIn    int    `json:"expires_in"`
		RefreshToken string `json:"refresh_token"`
		TokenType    string `json:"token_type"`
		State        string `json:"state"`
	}
	setup := func(t *testing.T) (*vcsfake.Bitbucket, string) {
		b := vcsfake.NewBitbucket(t)
		b.SetOAuthConsumer("key", "secret", cb)
		b.AddUser("hubot", "{00000000-0000-4000-8000-000000000042}", "Hu Bot")
		b.SetAuthorizeUser("hubot")
		b.SetConsumerScopes("key", "account", "repository")
		_, params, _ := authorize(t, b.WebURL+"/site/oauth2/authorize?client_id=key&response_type=code")
		return b, params.Get("code")
	}
	exchange := func(t *testing.T, b *vcsfake.Bitbucket, form url.Values, user, pass string) (int, grant, map[string]string) {
		t.Helper()
		resp, body := postForm(t, b.WebURL+"/site/oauth2/access_token", form, user, pass, "")
		var g grant
		var e map[string]string
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(body, &g); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
		} else if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return resp.StatusCode, g, e
	}

	tests := []struct {
		name      string
		form      func(code string) url.Values
		user      string
		pass      string
		setup     func(b *vcsfake.Bitbucket)
		wantError string
	}{
		{name: "code, basic auth", user: "key", pass: "secret", form: func(c string) url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {c}}
		}},
		{name: "code, client in the form", form: func(c string) url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "client_id": {"key"}, "client_secret": {"secret"}}
		}},
		{name: "bad code", user: "key", pass: "secret", form: func(string) url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}}
		}, wantError: "invalid_grant"},
		{name: "expired code", user: "key", pass: "secret", setup: func(b *vcsfake.Bitbucket) { b.ExpireOAuthCodes() }, form: func(c string) url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {c}}
		}, wantError: "invalid_grant"},
		{name: "redirect_uri not asked for", user: "key", pass: "secret", form: func(c string) url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {"https://evil.example/cb"}}
		}, wantError: "invalid_grant"},
		{name: "wrong secret", user: "key", pass: "guess", form: func(c string) url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {c}}
		}, wantError: "invalid_client"},
		{name: "no grant type", user: "key", pass: "secret", form: func(c string) url.Values {
			return url.Values{"code": {c}}
		}, wantError: "unsupported_grant_type"},
		{name: "bad refresh token", user: "key", pass: "secret", form: func(string) url.Values {
			return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}}
		}, wantError: "invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, code := setup(t)
			if tc.setup != nil {
				tc.setup(b)
			}
			status, g, e := exchange(t, b, tc.form(code), tc.user, tc.pass)
			log := b.OAuthExchangeLog()
			if len(log) != 1 || log[0].Error != tc.wantError || log[0].Status != status {
				t.Errorf("exchange log = %+v", log)
			}
			if tc.wantError != "" {
				if status != 400 || e["error"] != tc.wantError || e["error_description"] == "" {
					t.Errorf("answer = %d %v, want 400 %s with a description", status, e, tc.wantError)
				}
				return
			}
			want := grant{AccessToken: g.AccessToken, Scopes: "account repository", Scope: "account repository", ExpiresIn: 7200,
				RefreshToken: g.RefreshToken, TokenType: "bearer", State: "authorization_code"}
			if status != 200 || g != want || g.AccessToken == "" || g.RefreshToken == "" || log[0].Token != g.AccessToken {
				t.Fatalf("answer = %d %+v, want %+v", status, g, want)
			}
			var u struct {
				Nickname string `json:"nickname"`
			}
			resp := getJSON(t, b.URL+"user", g.AccessToken, &u)
			if u.Nickname != "hubot" || resp.Header.Get("X-OAuth-Scopes") != "account, repository" {
				t.Errorf("the token is %q's with scopes %q", u.Nickname, resp.Header.Get("X-OAuth-Scopes"))
			}
			if status, _, e := exchange(t, b, tc.form(code), tc.user, tc.pass); status != 400 || e["error"] != "invalid_grant" {
				t.Errorf("the code again = %d %v, want 400 invalid_grant", status, e)
			}
		})
	}

	for _, rotate := range []bool{false, true} {
		t.Run("refresh, rotation "+map[bool]string{false: "off", true: "on"}[rotate], func(t *testing.T) {
			b, code := setup(t)
			b.SetRefreshRotation(rotate)
			_, first, _ := exchange(t, b, url.Values{"grant_type": {"authorization_code"}, "code": {code}}, "key", "secret")
			b.ExpireToken(first.AccessToken)
			if resp := getJSON(t, b.URL+"user", first.AccessToken, nil); resp.StatusCode != 401 {
				t.Fatalf("expired token = %d, want 401", resp.StatusCode)
			}
			refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}
			status, second, e := exchange(t, b, refresh, "key", "secret")
			if status != 200 || second.AccessToken == first.AccessToken || second.State != "refresh_token" || second.Scopes != "account repository" {
				t.Fatalf("refresh = %d %+v %v", status, second, e)
			}
			if (second.RefreshToken == first.RefreshToken) == rotate {
				t.Errorf("refresh token %q after %q, rotation %v", second.RefreshToken, first.RefreshToken, rotate)
			}
			if resp := getJSON(t, b.URL+"user", second.AccessToken, nil); resp.StatusCode != 200 {
				t.Errorf("refreshed token = %d, want 200", resp.StatusCode)
			}
			if resp := getJSON(t, b.URL+"user", first.AccessToken, nil); resp.StatusCode != 401 {
				t.Errorf("expired token after the refresh = %d, want 401", resp.StatusCode)
			}
			status, _, e = exchange(t, b, refresh, "key", "secret")
			if rotate && (status != 400 || e["error"] != "invalid_grant") {
				t.Errorf("used refresh token with rotation = %d %v, want invalid_grant", status, e)
			}
			if !rotate && status != 200 {
				t.Errorf("refresh token again = %d %v, want 200", status, e)
			}
			b.SetOAuthConsumer("other", "s2", cb)
			if status, _, e := exchange(t, b, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second.RefreshToken}}, "other", "s2"); status != 400 || e["error"] != "invalid_grant" {
				t.Errorf("refresh by another consumer = %d %v, want invalid_grant", status, e)
			}
			b.RevokeRefreshToken(second.RefreshToken)
			if status, _, _ := exchange(t, b, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second.RefreshToken}}, "key", "secret"); status != 400 {
				t.Errorf("revoked refresh token = %d, want 400", status)
			}
		})
	}
}
