package bitbucket_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"forgelink/shared/forgelink"
	"forgelink/shared/vcsfake"
)

const signInCallback = "https://forgelink.example/login/bitbucket/callback"

// oauthSetup starts a fake Bitbucket with a consumer and hubot, who
// authorizes, and returns an x/oauth2 configuration for it (client
// credentials as basic auth, as Bitbucket documents) and a context with
// the fake's client.
func oauthSetup(t *testing.T) (*vcsfake.Bitbucket, *oauth2.Config, context.Context) {
	t.Helper()
	b := vcsfake.NewBitbucket(t)
	b.SetOAuthConsumer("key", "s3cret", signInCallback)
	b.AddUser("hubot", hubotUUID, "Hu Bot")
	b.SetAuthorizeUser("hubot")
	conf := &oauth2.Config{
		ClientID: "key", ClientSecret: "s3cret", RedirectURL: signInCallback,
		Endpoint: oauth2.Endpoint{AuthURL: b.WebURL + "/site/oauth2/authorize", TokenURL: b.WebURL + "/site/oauth2/access_token", AuthStyle: oauth2.AuthStyleInHeader},
	}
	return b, conf, context.WithValue(context.Background(), oauth2.HTTPClient, b.Server.Client())
}

// signIn plays a browser on the fake's authorize page and returns the
// callback's query.
func signIn(t *testing.T, conf *oauth2.Config, state string) url.Values {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(conf.AuthCodeURL(state))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || loc.Scheme+"://"+loc.Host+loc.Path != signInCallback {
		t.Fatalf("authorize = %d to %q, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), signInCallback)
	}
	return loc.Query()
}

// accountOf reads the account of token.
func accountOf(t *testing.T, b *vcsfake.Bitbucket, token string) (*forgelink.Account, error) {
	t.Helper()
	return identityForge(t, b, token, nil).Account(context.Background())
}

func TestOAuthSignIn(t *testing.T) {
	b, conf, ctx := oauthSetup(t)
	b.SetConsumerScopes("key", "account", "email", "repository:admin", "webhook")
	q := signIn(t, conf, "st4te")
	if q.Get("state") != "st4te" || q.Get("code") == "" {
		t.Fatalf("callback query = %v, want a code and state st4te", q)
	}
	tok, err := conf.Exchange(ctx, q.Get("code"))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.TokenType != "bearer" || tok.RefreshToken == "" || time.Until(tok.Expiry) < 119*time.Minute || time.Until(tok.Expiry) > 2*time.Hour {
		t.Errorf("token = %+v, want a bearer token with a refresh token, expiring in two hours", tok)
	}
	acct, err := accountOf(t, b, tok.AccessToken)
	want := &forgelink.Account{ID: hubotUUID, Login: "hubot", Name: "Hu Bot", Scopes: []string{"account", "email", "repository:admin", "webhook"}}
	if diff := cmp.Diff(want, acct); err != nil || diff != "" {
		t.Errorf("Account = %v (-want +got):\n%s", err, diff)
	}

	// A used code is refused.
	_, err = conf.Exchange(ctx, q.Get("code"))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || re.Response.StatusCode != http.StatusBadRequest {
		t.Errorf("Exchange of a used code = %v, want 400 invalid_grant", err)
	}
	if n := b.OAuthExchanges(); n != 2 {
		t.Errorf("%d exchanges, want 2", n)
	}
}

// TestOAuthRefresh plays an access token expiring: the API refuses it,
// x/oauth2's TokenSource refreshes it once the client sees it expired, and
// the new token works.
func TestOAuthRefresh(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		name := map[bool]string{false: "refresh token reused", true: "refresh token rotated"}[rotate]
		t.Run(name, func(t *testing.T) {
			b, conf, ctx := oauthSetup(t)
			b.SetRefreshRotation(rotate)
			tok, err := conf.Exchange(ctx, signIn(t, conf, "s").Get("code"))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			// Not yet expired for the client: the TokenSource keeps it.
			got, err := conf.TokenSource(ctx, tok).Token()
			if err != nil || got.AccessToken != tok.AccessToken || b.OAuthExchanges() != 1 {
				t.Fatalf("TokenSource before expiry = %v, %v after %d exchanges; want the same token, no refresh", got, err, b.OAuthExchanges())
			}

			b.ExpireToken(tok.AccessToken)
			if _, err := accountOf(t, b, tok.AccessToken); forgelink.KindOf(err) != forgelink.Unauthorized {
				t.Fatalf("Account with the expired token = %v, want Unauthorized", err)
			}
			old := *tok
			old.Expiry = time.Now().Add(-time.Minute)
			fresh, err := conf.TokenSource(ctx, &old).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if fresh.AccessToken == tok.AccessToken || fresh.Expiry.Before(time.Now().Add(time.Hour)) {
				t.Errorf("refreshed token = %+v, want a new one, good for two hours", fresh)
			}
			if (fresh.RefreshToken == tok.RefreshToken) == rotate {
				t.Errorf("refresh token %q after %q with rotation %v", fresh.RefreshToken, tok.RefreshToken, rotate)
			}
			if acct, err := accountOf(t, b, fresh.AccessToken); err != nil || acct.Login != "hubot" {
				t.Errorf("Account with the refreshed token = %+v, %v; want hubot", acct, err)
			}
			if _, err := accountOf(t, b, tok.AccessToken); forgelink.KindOf(err) != forgelink.Unauthorized {
				t.Errorf("Account with the expired token after the refresh = %v, want Unauthorized", err)
			}

			// The first refresh token again: Bitbucket reused it until May
			// 2026; with rotation it is spent.
			again, err := conf.TokenSource(ctx, &old).Token()
			var re *oauth2.RetrieveError
			switch {
			case rotate && (!errors.As(err, &re) || re.ErrorCode != "invalid_grant"):
				t.Errorf("refresh with the rotated-out token = %v, %v; want invalid_grant", again, err)
			case !rotate && (err != nil || again.AccessToken == fresh.AccessToken):
				t.Errorf("refresh with the same refresh token again = %v, %v; want another new token", again, err)
			}
		})
	}
}

func TestOAuthRefusals(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(b *vcsfake.Bitbucket, conf *oauth2.Config)
		code     string // "" for the one handed out
		wantCode string
	}{
		{name: "bad code", code: "nope", wantCode: "invalid_grant"},
		{name: "expired code", setup: func(b *vcsfake.Bitbucket, _ *oauth2.Config) { b.ExpireOAuthCodes() }, wantCode: "invalid_grant"},
		{name: "wrong secret", setup: func(_ *vcsfake.Bitbucket, c *oauth2.Config) { c.ClientSecret = "guess" }, wantCode: "invalid_client"},
		{name: "another redirect_uri", setup: func(_ *vcsfake.Bitbucket, c *oauth2.Config) { c.RedirectURL = signInCallback + "/x" }, wantCode: "invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, conf, ctx := oauthSetup(t)
			code := signIn(t, conf, "s").Get("code")
			if tc.code != "" {
				code = tc.code
			}
			if tc.setup != nil {
				tc.setup(b, conf)
			}
			tok, err := conf.Exchange(ctx, code)
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != tc.wantCode || re.ErrorDescription == "" || re.Response.StatusCode != http.StatusBadRequest {
				t.Errorf("Exchange = %+v, %v; want 400 %s with a description", tok, err, tc.wantCode)
			}
		})
	}
}
