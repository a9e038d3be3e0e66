package pages_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"forgelink/shared/bolt"
	"forgelink/shared/config"
	"forgelink/shared/follow"
	"forgelink/shared/forgelink"
	"forgelink/shared/forges"
	"forgelink/shared/keysvc"
	"forgelink/shared/orgaccess"
	"forgelink/shared/pages"
	"forgelink/shared/sealer"
	"forgelink/shared/signin"
	"forgelink/shared/vcsfake"
)

const (
	envToken      = "fl_pages_test_token_0123456789"
	oauthClientID = "Iv1.pages0123456789"
	oauthSecret   = "pages-oauth-secret"
	bbKey         = "pages-bitbucket-key"
	bbSecret      = "pages-bitbucket-secret"
	repo          = "octo-org/hello-world"
	ghSlug        = "gh/octo-org/hello-world"
	bbSlug        = "bb/octo-org/hello-world"
)

// env is the pages beside sign-in on one test server, wired as the
// one-process server wires them, over a bbolt store and fake GitHub and
// Bitbucket APIs (with their OAuth web flows).
type env struct {
	url   string
	st    *bolt.Store
	gh    *vcsfake.GitHub
	bb    *vcsfake.Bitbucket
	users *signin.Service
	pages *pages.Pages
	fl    *follow.Service
}

type envOption func(cfg map[string]string, p *pages.Pages)

// withoutOAuth configures no OAuth client.
func withoutOAuth(cfg map[string]string, _ *pages.Pages) {
	for _, k := range []string{"GITHUB_OAUTH_CLIENT_ID", "GITHUB_OAUTH_CLIENT_SECRET", "BITBUCKET_OAUTH_KEY", "BITBUCKET_OAUTH_SECRET"} {
		delete(cfg, k)
	}
}

// withoutTokenSignIn hides the "API token" form.
func withoutTokenSignIn(_ map[string]string, p *pages.Pages) { p.TokenSignIn = false }

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	e := &env{gh: vcsfake.NewGitHub(t), bb: vcsfake.NewBitbucket(t)}
	e.gh.AddRepo(repo, "main", true)
	e.gh.AddRepo("octo-org/other", "main", false)
	e.bb.AddRepo(repo, "master", true)
	e.gh.SetOAuthClient(oauthClientID, oauthSecret)

	var h http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	e.url = ts.URL
	e.bb.SetOAuthConsumer(bbKey, bbSecret, ts.URL+"/login/bitbucket/callback")

	vars := map[string]string{
		"FORGELINK_PUBLIC_URL":       ts.URL,
		"FORGELINK_API_TOKEN":        envToken,
		"GITHUB_API_URL":             e.gh.URL,
		"GITHUB_TOKEN":               e.gh.Token,
		"GITHUB_WEB_URL":             e.gh.WebURL,
		"GITHUB_OAUTH_CLIENT_ID":     oauthClientID,
		"GITHUB_OAUTH_CLIENT_SECRET": oauthSecret,
		"BITBUCKET_API_URL":          e.bb.URL,
		"BITBUCKET_TOKEN":            e.bb.Token,
		"BITBUCKET_WEB_URL":          e.bb.WebURL,
		"BITBUCKET_OAUTH_KEY":        bbKey,
		"BITBUCKET_OAUTH_SECRET":     bbSecret,
	}
	pg := &pages.Pages{TokenSignIn: true, PublicURL: ts.URL}
	for _, o := range opts {
		o(vars, pg)
	}
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "forgelink.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek, err := sealer.OpenKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	sl := sealer.NewEnvelope(kek)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	users := signin.New(cfg, st, sl, nil, envToken)
	users.Log = log
	vcs := forges.ForUsers(cfg, nil, users.Token)
	fl := &follow.Service{Store: st, Sealer: sl, Forges: vcs, Log: log}
	keys := &keysvc.Service{Store: st, Keys: st, Pipelines: st, Sealer: sl, Forges: vcs, GitHubAPIURL: cfg.GitHubAPIURL, Log: log}
	fl.BeforeUnfollow = keys.RemoveProjectKeys
	pg.Users, pg.Store, pg.Pipelines, pg.Follow, pg.Keys, pg.Log = users, st, st, fl, keys, log
	pg.Access = &orgaccess.Service{Store: st, GitHubWebURL: cfg.GitHubWebURL, OAuthClientID: cfg.OAuthClientID, Log: log}

	mux := http.NewServeMux()
	for _, route := range signin.Routes {
		mux.Handle(route, users.Handler())
	}
	for _, route := range pages.Routes {
		mux.Handle(route, pg.Handler())
	}
	h = mux
	e.st, e.users, e.pages, e.fl = st, users, pg, fl
	return e
}

// follow follows slug as the environment user, directly.
func (e *env) follow(t *testing.T, slug string) {
	t.Helper()
	s, err := forgelink.ParseSlug(slug)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.fl.Follow(context.Background(), s, "local", e.url); err != nil {
		t.Fatalf("follow %s: %v", slug, err)
	}
}

// project returns the stored project.
func (e *env) project(t *testing.T, slug string) *forgelink.Project {
	t.Helper()
	s, _ := forgelink.ParseSlug(slug)
	p, err := e.st.GetProject(context.Background(), s)
	if err != nil {
		t.Fatalf("project %s: %v", slug, err)
	}
	return p
}

// browser is a client with a cookie jar, as a browser without JavaScript.
type browser struct {
	e    *env
	jar  *cookiejar.Jar
	c    *http.Client // does not follow redirects
	csrf string       // the session's CSRF token, from the last page
}

func (e *env) browser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{e: e, jar: jar, c: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is an answer.
type page struct {
	status int
	header http.Header
	body   string
	// cookies the answer set.
	cookies []*http.Cookie
}

func (p *page) location() string { return p.header.Get("Location") }

func (p *page) cookie(name string) *http.Cookie {
	for _, c := range p.cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var (
	csrfField  = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	loginField = regexp.MustCompile(`action="/login">\s*<input type="hidden" name="csrf_token" value="([^"]+)"`)
)

func (b *browser) do(t *testing.T, req *http.Request) *page {
	t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := &page{status: resp.StatusCode, header: resp.Header, body: string(body), cookies: resp.Cookies()}
	if m := csrfField.FindStringSubmatch(p.body); m != nil && !loginField.MatchString(p.body) {
		b.csrf = m[1]
	}
	return p
}

func (b *browser) get(t *testing.T, path string) *page {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.do(t, req)
}

// post sends a form as a browser does (same origin).
func (b *browser) post(t *testing.T, path string, form url.Values) *page {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.e.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.e.url)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(t, req)
}

// submit posts form with the session's CSRF token.
func (b *browser) submit(t *testing.T, path string, form url.Values) *page {
	t.Helper()
	if b.csrf == "" {
		t.Fatal("no CSRF token yet: open a page first")
	}
	f := url.Values{"csrf_token": {b.csrf}}
	for k, v := range form {
		f[k] = v
	}
	return b.post(t, path, f)
}

// follow follows redirects (GET) until an answer that is not one, as a
// browser does after a form.
func (b *browser) follow(t *testing.T, p *page) *page {
	t.Helper()
	for i := 0; p.status >= 300 && p.status < 400; i++ {
		if i == 10 {
			t.Fatal("too many redirects")
		}
		loc, err := url.Parse(p.location())
		if err != nil {
			t.Fatal(err)
		}
		next := loc.String()
		if !loc.IsAbs() {
			next = b.e.url + loc.RequestURI()
		}
		req, _ := http.NewRequest(http.MethodGet, next, nil)
		p = b.do(t, req)
	}
	return p
}

// signInToken signs in with the "API token" form.
func (b *browser) signInToken(t *testing.T) {
	t.Helper()
	home := b.get(t, "/")
	m := loginField.FindStringSubmatch(home.body)
	if m == nil {
		t.Fatalf("GET / shows no token form:\n%s", home.body)
	}
	p := b.post(t, "/login", url.Values{"csrf_token": {m[1]}, "token": {envToken}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("POST /login = %d, want 303:\n%s", p.status, p.body)
	}
	if b.follow(t, p).status != http.StatusOK {
		t.Fatal("home after sign-in is not 200")
	}
}

// signInGitHub signs in as login through the fake GitHub's OAuth flow.
func (b *browser) signInGitHub(t *testing.T, login string) {
	t.Helper()
	b.e.gh.SetAuthorizeUser(login)
	p := b.get(t, "/login/github")
	for i := 0; p.status == http.StatusFound || p.status == http.StatusSeeOther; i++ {
		if i == 10 {
			t.Fatal("too many redirects")
		}
		req, _ := http.NewRequest(http.MethodGet, resolve(b.e.url, p.location()), nil)
		p = b.do(t, req)
	}
	if p.status != http.StatusOK || !strings.Contains(p.body, "Signed in as <strong>"+login+"</strong>") {
		t.Fatalf("sign-in as %s ended on %d:\n%s", login, p.status, p.body)
	}
}

func resolve(base, loc string) string {
	u, err := url.Parse(loc)
	if err != nil || u.IsAbs() {
		return loc
	}
	return base + loc
}

// rsaPEM returns a new RSA private key in PEM ("BEGIN RSA PRIVATE KEY").
func rsaPEM(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

// mustContain fails unless body holds every one of want, as written or
// with character references resolved (the pages write ' as &#39;).
func mustContain(t *testing.T, what, body string, want ...string) {
	t.Helper()
	plain := html.UnescapeString(body)
	for _, w := range want {
		if !strings.Contains(body, w) && !strings.Contains(plain, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

// mustNotContain fails if body holds any of bad, as written or with
// character references resolved.
func mustNotContain(t *testing.T, what, body string, bad ...string) {
	t.Helper()
	plain := html.UnescapeString(body)
	for _, b := range bad {
		if strings.Contains(body, b) || strings.Contains(plain, b) {
			t.Errorf("%s holds %q", what, b)
		}
	}
}
