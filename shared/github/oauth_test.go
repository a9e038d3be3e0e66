package github_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"forgelink/shared/forgelink"
	"forgelink/shared/vcsfake"
)

// The scopes forgelink asks GitHub for, and its callback.
var (
	signInScopes   = []string{"repo", "admin:repo_hook", "admin:public_key", "user:email"}
	signInCallback = "https://forgelink.example/login/github/callback"
)

// acceptJSON adds Accept: application/json to every request, as some
// OAuth clients send to GitHub's token endpoint (x/oauth2 does not).
type acceptJSON struct{ next http.RoundTripper }

func (a acceptJSON) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept", "application/json")
	return a.next.RoundTrip(r)
}

// signIn plays a browser on the fake's authorize page: it follows
// conf.AuthCodeURL(state) to the redirect and returns its query.
func signIn(t *testing.T, conf *oauth2.Config, state string) url.Values {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(conf.AuthCodeURL(state))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize = %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != signInCallback {
		t.Fatalf("authorize redirected to %q, want %s", resp.Header.Get("Location"), signInCallback)
	}
	return loc.Query()
}

func TestOAuthSignIn(t *testing.T) {
	tests := []struct {
		name       string
		style      oauth2.AuthStyle
		acceptJSON bool
		granted    []string // nil: what is asked
		wantMiss   []string
		wantTries  int // requests to the token endpoint
	}{
		{name: "credentials in the form", style: oauth2.AuthStyleInParams, wantTries: 1},
		{name: "credentials as basic auth", style: oauth2.AuthStyleInHeader, wantTries: 1},
		{name: "auto-detected", style: oauth2.AuthStyleAutoDetect, wantTries: 1},
		{name: "JSON answer", style: oauth2.AuthStyleInParams, acceptJSON: true, wantTries: 1},
		{name: "fewer scopes granted", style: oauth2.AuthStyleInParams, granted: []string{"repo", "user:email"},
			wantMiss: []string{"admin:repo_hook", "admin:public_key"}, wantTries: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := vcsfake.NewGitHub(t)
			g.SetOAuthClient("Iv1.client", "s3cret")
			g.AddUser("hubot", 583231, "Hubot")
			g.SetAuthorizeUser("hubot")
			if tc.granted != nil {
				g.SetGrantedScopes("hubot", tc.granted...)
			}
			conf := &oauth2.Config{
				ClientID: "Iv1.client", ClientSecret: "s3cret", RedirectURL: signInCallback, Scopes: signInScopes,
				Endpoint: oauth2.Endpoint{AuthURL: g.WebURL + "/login/oauth/authorize", TokenURL: g.WebURL + "/login/oauth/access_token", AuthStyle: tc.style},
			}
			q := signIn(t, conf, "st4te")
			if q.Get("state") != "st4te" || q.Get("code") == "" {
				t.Fatalf("callback query = %v, want a code and state st4te", q)
			}
			hc := g.Server.Client()
			if tc.acceptJSON {
				hc = &http.Client{Transport: acceptJSON{next: hc.Transport}}
			}
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
			tok, err := conf.Exchange(ctx, q.Get("code"))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			wantScope := signInScopes
			if tc.granted != nil {
				wantScope = tc.granted
			}
			if tok.TokenType != "bearer" || tok.RefreshToken != "" || !tok.Expiry.IsZero() || tok.Extra("scope") != strings.Join(wantScope, ",") {
				t.Errorf("token = %+v scope %v, want a bearer token that never expires, scope %v", tok, tok.Extra("scope"), wantScope)
			}
			if n := g.OAuthExchanges(); n != tc.wantTries {
				t.Errorf("%d exchanges, want %d", n, tc.wantTries)
			}
			acct, err := identityForge(t, g, tok.AccessToken).Account(context.Background())
			if err != nil {
				t.Fatalf("Account with the new token: %v", err)
			}
			want := &forgelink.Account{ID: "583231", Login: "hubot", Name: "Hubot", Scopes: wantScope}
			if diff := cmp.Diff(want, acct); diff != "" {
				t.Errorf("Account (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantMiss, forgelink.MissingScopes(acct.Scopes, signInScopes)); diff != "" {
				t.Errorf("MissingScopes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOAuthRefusals checks that x/oauth2 reports GitHub's refusals, which
// GitHub answers with HTTP 200 and an error in the body, as errors of
// their own: *oauth2.RetrieveError with GitHub's error code.
func TestOAuthRefusals(t *testing.T) {
	tests := []struct {
		name       string
		style      oauth2.AuthStyle
		acceptJSON bool
		secret     string
		// code returns the code to exchange, given the one the fake
		// handed out.
		code      func(t *testing.T, g *vcsfake.GitHub, conf *oauth2.Config, ctx context.Context, code string) string
		wantCode  string
		wantTries int
	}{
		{name: "bad code, form answer", style: oauth2.AuthStyleInParams, wantCode: "bad_verification_code", wantTries: 1,
			code: func(*testing.T, *vcsfake.GitHub, *oauth2.Config, context.Context, string) string {
				return "0123456789abcdef0123"
			}},
		{name: "bad code, JSON answer", style: oauth2.AuthStyleInParams, acceptJSON: true, wantCode: "bad_verification_code", wantTries: 1,
			code: func(*testing.T, *vcsfake.GitHub, *oauth2.Config, context.Context, string) string {
				return "0123456789abcdef0123"
			}},
		{name: "used code", style: oauth2.AuthStyleInParams, wantCode: "bad_verification_code", wantTries: 2,
			code: func(t *testing.T, _ *vcsfake.GitHub, conf *oauth2.Config, ctx context.Context, c string) string {
				if _, err := conf.Exchange(ctx, c); err != nil {
					t.Fatalf("first Exchange: %v", err)
				}
				return c
			}},
		{name: "expired code", style: oauth2.AuthStyleInParams, wantCode: "bad_verification_code", wantTries: 1,
			code: func(_ *testing.T, g *vcsfake.GitHub, _ *oauth2.Config, _ context.Context, c string) string {
				g.ExpireOAuthCodes()
				return c
			}},
		{name: "wrong client secret", style: oauth2.AuthStyleInParams, secret: "guess", wantCode: "incorrect_client_credentials", wantTries: 1},
		{name: "wrong client secret, auto-detected: tried both ways", style: oauth2.AuthStyleAutoDetect, secret: "guess", wantCode: "incorrect_client_credentials", wantTries: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := vcsfake.NewGitHub(t)
			g.SetOAuthClient("Iv1.client", "s3cret")
			conf := &oauth2.Config{
				ClientID: "Iv1.client", ClientSecret: "s3cret", RedirectURL: signInCallback, Scopes: signInScopes,
				Endpoint: oauth2.Endpoint{AuthURL: g.WebURL + "/login/oauth/authorize", TokenURL: g.WebURL + "/login/oauth/access_token", AuthStyle: tc.style},
			}
			code := signIn(t, conf, "s").Get("code")
			hc := g.Server.Client()
			if tc.acceptJSON {
				hc = &http.Client{Transport: acceptJSON{next: hc.Transport}}
			}
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
			if tc.code != nil {
				code = tc.code(t, g, conf, ctx, code)
			}
			if tc.secret != "" {
				conf.ClientSecret = tc.secret
			}
			tok, err := conf.Exchange(ctx, code)
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) {
				t.Fatalf("Exchange = %+v, %v; want an *oauth2.RetrieveError", tok, err)
			}
			if re.ErrorCode != tc.wantCode || re.ErrorDescription == "" || re.ErrorURI == "" || re.Response.StatusCode != http.StatusOK {
				t.Errorf("RetrieveError = %s %q %q (HTTP %d), want %s with a description and a URI, HTTP 200", re.ErrorCode, re.ErrorDescription, re.ErrorURI, re.Response.StatusCode, tc.wantCode)
			}
			if n := g.OAuthExchanges(); n != tc.wantTries {
				t.Errorf("%d requests to the token endpoint, want %d", n, tc.wantTries)
			}
		})
	}

	t.Run("denied", func(t *testing.T) {
		g := vcsfake.NewGitHub(t)
		g.SetOAuthClient("Iv1.client", "s3cret")
		g.SetAuthorizeUser("")
		conf := &oauth2.Config{ClientID: "Iv1.client", RedirectURL: signInCallback,
			Endpoint: oauth2.Endpoint{AuthURL: g.WebURL + "/login/oauth/authorize", TokenURL: g.WebURL + "/login/oauth/access_token"}}
		q := signIn(t, conf, "s")
		if q.Get("error") != "access_denied" || q.Get("code") != "" || q.Get("state") != "s" {
			t.Errorf("callback query = %v, want error=access_denied, the state and no code", q)
		}
	})
}
