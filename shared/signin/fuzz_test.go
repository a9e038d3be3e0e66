package signin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"forgelink/shared/apiauth"
	"forgelink/shared/bolt"
	"forgelink/shared/config"
	"forgelink/shared/forgelink"
	"forgelink/shared/sealer"
	"forgelink/shared/vcsfake"
)

const (
	fuzzPublicURL = "https://ci.example.com"
	fuzzEnvToken  = "fuzz-env-token-0123456789"
)

// fuzzSignin is the sign-in service on bbolt and the local sealer with
// the GitHub and Bitbucket fakes as the OAuth providers, as a fuzz worker
// builds it once: hubot (GitHub) and bbuser (Bitbucket) approve every
// authorization at once.
type fuzzSignin struct {
	gh    *vcsfake.GitHub
	svc   *Service
	h     http.Handler
	users *bolt.Store
	web   map[forgelink.VCS]string
}

func newFuzzSignin(tb testing.TB) *fuzzSignin {
	tb.Helper()
	gh := vcsfake.NewGitHub(tb)
	gh.SetOAuthClient("Iv1.fuzz", "gh-fuzz-secret")
	gh.AddUser("hubot", 583231, "Hubot")
	gh.SetAuthorizeUser("hubot")
	bb := vcsfake.NewBitbucket(tb)
	bb.SetOAuthConsumer("bb-fuzz-key", "bb-fuzz-secret", fuzzPublicURL+"/login/bitbucket/callback")
	bb.AddUser("bbuser", "{5a3c0f6e-1b2d-4c3e-8f9a-0123456789ab}", "BB User")
	bb.SetAuthorizeUser("bbuser")
	cfg := &config.Config{
		PublicURL: fuzzPublicURL, APIUser: "local", LogLevel: "error",
		GitHubAPIURL: gh.URL, GitHubToken: gh.Token, GitHubWebURL: gh.WebURL,
		OAuthClientID: "Iv1.fuzz", OAuthSecret: "gh-fuzz-secret",
		BitbucketURL: bb.URL, BitbucketTok: bb.Token, BitbucketWeb: bb.WebURL,
		BitbucketKey: "bb-fuzz-key", BitbucketSecret: "bb-fuzz-secret",
	}
	dir := tb.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "forgelink.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	keys, err := sealer.OpenKeyFile(filepath.Join(dir, "local.key"))
	if err != nil {
		tb.Fatal(err)
	}
	svc := New(cfg, st, sealer.NewEnvelope(keys), nil, fuzzEnvToken)
	svc.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	return &fuzzSignin{gh: gh, svc: svc, h: svc.Handler(), users: st,
		web: map[forgelink.VCS]string{forgelink.GitHub: gh.WebURL, forgelink.Bitbucket: bb.WebURL}}
}

// code asks the fake VCS to authorize forgelink, as the user's browser
// does, and returns the code it hands back.
func (f *fuzzSignin) code(t *testing.T, vcs forgelink.VCS) string {
	t.Helper()
	u := f.svc.oauthConfig(vcs, fuzzPublicURL).AuthCodeURL("fuzz")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize %s: %d, Location %q", u, resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("code")
}

// FuzzCallback sends fuzzed OAuth callbacks (GET /login/{vcs}/callback)
// with fuzzed state, code, error and error_description parameters and
// state cookie. The mode's bits make the parts real: 1 the state is one
// forgelink issued, 2 the callback comes after it expired, 4 the cookie
// holds it (the browser
// that started the sign-in), 8 the code is one the VCS handed out. Never
// a 5xx; a session only for an issued, unexpired state matching the cookie,
// without an error, with a real code - and then always; a state is
// good once.
//
//	go test -run '^$' -fuzz '^FuzzCallback$' -fuzztime 30s ./shared/signin
func FuzzCallback(f *testing.F) {
	f.Add(false, uint8(1|4|8), "state-0123456789", "", "", "", "")
	f.Add(true, uint8(1|4|8), "state-0123456789", "", "", "", "")
	f.Add(false, uint8(1|2|4|8), "state-0123456789", "", "", "", "")
	f.Add(false, uint8(1|4), "state-0123456789", "bogus-code", "", "", "")
	f.Add(false, uint8(1|4|8), "state-0123456789", "", "access_denied", "The user has denied your application access.", "")
	f.Add(false, uint8(1|8), "state-0123456789", "", "", "", "other-state")
	f.Add(false, uint8(4|8), "state-0123456789", "", "", "", "")
	f.Add(true, uint8(1|4), "", "", "", "", "")
	f.Add(false, uint8(1|4|8), strings.Repeat("s", 201), "", "", "", "")
	f.Add(false, uint8(0), "", "", "", "", "")
	f.Add(true, uint8(1|4), "s\u00e9t\u00e4t\u00e9", strings.Repeat("c", 513), "", "", "")
	fz := newFuzzSignin(f)

	f.Fuzz(func(t *testing.T, bitbucket bool, mode uint8, state, code, oauthErr, errDesc, cookie string) {
		ctx := context.Background()
		vcs := forgelink.GitHub
		if bitbucket {
			vcs = forgelink.Bitbucket
		}
		// A million executions would use up the fake's 5,000 requests.
		fz.gh.SetRateLimitRemaining(vcsfake.GitHubRateLimit)
		issued, expired, fromBrowser, realCode := mode&1 != 0, mode&2 != 0, mode&4 != 0, mode&8 != 0
		now := time.Now().UTC()
		fz.svc.Now = func() time.Time { return now }
		if issued {
			if err := fz.users.CreateOAuthState(ctx, hashOf(state), now.Add(stateTTL)); err != nil {
				t.Fatal(err)
			}
			// Whatever the callback leaves is forgotten, so that the
			// fuzzer may issue the same state again.
			defer fz.users.ConsumeOAuthState(ctx, hashOf(state), now)
		}
		if expired {
			later := now.Add(stateTTL + time.Second)
			fz.svc.Now = func() time.Time { return later }
		}
		if fromBrowser {
			cookie = state
		}
		if realCode {
			code = fz.code(t, vcs)
		}
		q := url.Values{}
		for k, v := range map[string]string{"state": state, "code": code, "error": oauthErr, "error_description": errDesc} {
			if v != "" {
				q.Set(k, v)
			}
		}
		r := httptest.NewRequest(http.MethodGet, "/login/"+string(vcs)+"/callback?"+q.Encode(), nil)
		if cookie != "" && !strings.ContainsAny(cookie, "\r\n\x00") {
			r.Header.Set("Cookie", stateCookie+"="+cookie)
		}
		w := httptest.NewRecorder()
		fz.h.ServeHTTP(w, r)

		var session *http.Cookie
		for _, c := range w.Result().Cookies() {
			if c.Name == apiauth.SessionCookie && c.Value != "" {
				session = c
			}
		}
		valid := issued && !expired && state != "" && len(state) <= 200 && r.URL.Query().Get("state") == state &&
			cookieOf(r) == state && oauthErr == "" && realCode
		switch {
		case w.Code >= 500:
			t.Fatalf("%d: %s", w.Code, w.Body)
		case session != nil && !valid:
			t.Fatalf("a session for state %q (issued %v, expired %v, cookie %q), error %q, real code %v: %d",
				state, issued, expired, cookieOf(r), oauthErr, realCode, w.Code)
		case valid && (session == nil || w.Code != http.StatusSeeOther):
			t.Fatalf("a good callback got %d and no session: %s", w.Code, w.Body)
		case session == nil && w.Code != http.StatusBadRequest && w.Code != http.StatusForbidden && w.Code != http.StatusNotFound:
			t.Fatalf("refused callback: %d, want 400: %s", w.Code, w.Body)
		case session == nil && !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html"):
			t.Fatalf("refused callback answered %q, want an HTML page", w.Header().Get("Content-Type"))
		}
		if session != nil {
			u, _, err := fz.svc.AuthenticateSession(ctx, session.Value)
			if err != nil || u.VCS != vcs {
				t.Fatalf("the new session does not authenticate a %s user: %v, %v", vcs, u, err)
			}
			if err := fz.users.DeleteSession(ctx, hashOf(session.Value)); err != nil {
				t.Fatal(err)
			}
		}
		if issued && !expired && cookieOf(r) == state && state != "" && len(state) <= 200 {
			if err := fz.users.ConsumeOAuthState(ctx, hashOf(state), now); err == nil {
				t.Fatalf("state %q was good again after its callback (%d)", state, w.Code)
			}
		}
	})
}

// cookieOf is the state cookie r carries as the handler reads it.
func cookieOf(r *http.Request) string {
	c, err := r.Cookie(stateCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// FuzzCreateToken sends fuzzed bodies to POST /api/v2/me/tokens as a
// signed-in user (by personal token) or as local mode's environment user:
// never a 5xx; only the signed-in user gets a token, for a label of 1 to
// 100 characters on one line, and that token works until it is deleted
// again; a refusal has a message and creates nothing.
//
//	go test -run '^$' -fuzz '^FuzzCreateToken$' -fuzztime 30s ./shared/signin
func FuzzCreateToken(f *testing.F) {
	for _, s := range []string{
		`{"label":"laptop"}`, `{"label":"  padded  "}`, `{"label":""}`, `{"label":"line\nbreak"}`,
		`{"label":"` + strings.Repeat("é", 100) + `"}`, `{"label":"` + strings.Repeat("é", 101) + `"}`,
		`{"label":"nul\u0000"}`, `{}`, ``, `{"label":1}`, `{"label":"x","scopes":["all"]}`, `[]`,
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(`{"label":"laptop"}`), true)
	fz := newFuzzSignin(f)
	ctx := context.Background()
	user := &forgelink.User{ID: forgelink.UserID(forgelink.GitHub, "583231"), VCS: forgelink.GitHub, VCSUserID: "583231", Login: "hubot", CreatedAt: time.Now().UTC()}
	if err := fz.users.PutUser(ctx, user); err != nil {
		f.Fatal(err)
	}
	const personal = "flp_fuzz-personal-token-0123456789"
	if err := fz.users.CreateAPIToken(ctx, &forgelink.APIToken{ID: "fuzz0000000000000", Hash: hashOf(personal), UserID: user.ID, Label: "fuzz", CreatedAt: time.Now().UTC()}); err != nil {
		f.Fatal(err)
	}
	send := func(method, path, token string, body []byte) (int, map[string]any, string) {
		r := httptest.NewRequest(method, path, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Circle-Token", token)
		w := httptest.NewRecorder()
		fz.h.ServeHTTP(w, r)
		var out map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		return w.Code, out, w.Body.String()
	}

	f.Fuzz(func(t *testing.T, body []byte, env bool) {
		token := personal
		if env {
			token = fuzzEnvToken
		}
		status, out, raw := send(http.MethodPost, "/api/v2/me/tokens", token, body)
		tokens, err := fz.users.ListAPITokens(ctx, user.ID)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case status >= 500:
			t.Fatalf("%q: %d %s", body, status, raw)
		case status != http.StatusCreated:
			if msg, _ := out["message"].(string); msg == "" || len(tokens) != 1 {
				t.Fatalf("%q: %d %s with %d tokens; want a message and only the first token", body, status, raw, len(tokens))
			}
			return
		case env:
			t.Fatalf("%q: the environment user got a personal token: %s", body, raw)
		}
		label, _ := out["label"].(string)
		value, _ := out["token"].(string)
		id, _ := out["id"].(string)
		if label == "" || len([]rune(label)) > maxLabel || strings.ContainsAny(label, "\x00\r\n") || label != strings.TrimSpace(label) {
			t.Fatalf("%q: created a token labelled %q", body, label)
		}
		if !strings.HasPrefix(value, "flp_") || id == "" || len(tokens) != 2 {
			t.Fatalf("%q: created %s; %d tokens stored", body, raw, len(tokens))
		}
		if u, err := fz.svc.Authenticate(ctx, value); err != nil || u.ID != user.ID {
			t.Fatalf("the new token does not authenticate %s: %v, %v", user.ID, u, err)
		}
		if status, _, raw := send(http.MethodDelete, "/api/v2/me/tokens/"+url.PathEscape(id), personal, nil); status != http.StatusNoContent {
			t.Fatalf("deleting the new token: %d %s", status, raw)
		}
		if _, err := fz.svc.Authenticate(ctx, value); err == nil {
			t.Fatal("a deleted token still authenticates")
		}
	})
}
