package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"forgelink/shared/forgelink"
	"forgelink/shared/vcsfake"
)

// The OAuth clients of the sign-in stack: registered with the fakes, and
// configured on the server.
const (
	ghOAuthClientID = "Iv1.e2e0123456789"
	ghOAuthSecret   = "e2e-github-oauth-secret"
	bbOAuthKey      = "e2e-bitbucket-key"
	bbOAuthSecret   = "e2e-bitbucket-secret"
)

// newSigninStack is a stack with sign-in through the fakes' OAuth web
// flows configured; record as newStackWith.
func newSigninStack(t *testing.T, record bool) *stack {
	t.Helper()
	return newStackEnv(t, record, func(s *stack) map[string]string {
		s.gh.SetOAuthClient(ghOAuthClientID, ghOAuthSecret)
		s.bb.SetOAuthConsumer(bbOAuthKey, bbOAuthSecret, s.url+"/login/bitbucket/callback")
		return map[string]string{
			"GITHUB_OAUTH_CLIENT_ID":     ghOAuthClientID,
			"GITHUB_OAUTH_CLIENT_SECRET": ghOAuthSecret,
			"GITHUB_WEB_URL":             s.gh.WebURL,
			"BITBUCKET_OAUTH_KEY":        bbOAuthKey,
			"BITBUCKET_OAUTH_SECRET":     bbOAuthSecret,
			"BITBUCKET_WEB_URL":          s.bb.WebURL,
		}
	})
}

// syncBuffer is a buffer the server's loggers may write to at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// vcsCall is one request the server made to a fake VCS.
type vcsCall struct {
	Method string
	URL    *url.URL
	// Auth is the Authorization header sent.
	Auth string
	// Form is the body of a request to an OAuth token endpoint.
	Form   url.Values
	Status int
}

// vcsLog is the server's HTTP transport to the fakes: it records every
// request, and the tokens the OAuth token endpoints issue, which the fakes
// do not tell (refresh tokens).
type vcsLog struct {
	mu     sync.Mutex
	calls  []vcsCall
	issued []string
	// held, when set, sees each call once its answer is in, before the
	// server does, and may hold it back.
	held func(c vcsCall)
}

func (l *vcsLog) RoundTrip(req *http.Request) (*http.Response, error) {
	c := vcsCall{Method: req.Method, URL: req.URL, Auth: req.Header.Get("Authorization")}
	tokenEndpoint := strings.HasSuffix(req.URL.Path, "/access_token")
	if tokenEndpoint && req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		c.Form, _ = url.ParseQuery(string(b))
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	c.Status = resp.StatusCode
	var issued []string
	if tokenEndpoint {
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		var tok struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		if json.Unmarshal(b, &tok) != nil {
			v, _ := url.ParseQuery(string(b))
			tok.AccessToken, tok.RefreshToken = v.Get("access_token"), v.Get("refresh_token")
		}
		for _, v := range []string{tok.AccessToken, tok.RefreshToken} {
			if v != "" {
				issued = append(issued, v)
			}
		}
	}
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.issued = append(l.issued, issued...)
	held := l.held
	l.mu.Unlock()
	if held != nil {
		held(c)
	}
	return resp, nil
}

// Calls returns the requests made so far.
func (l *vcsLog) Calls() []vcsCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// Issued returns every access and refresh token the token endpoints
// answered.
func (l *vcsLog) Issued() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.issued)
}

func (l *vcsLog) hold(f func(c vcsCall)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = f
}

// refreshes returns the refresh_token grants made since call n, and how
// many of them the VCS granted.
func (l *vcsLog) refreshes(n int) (all, granted int) {
	for _, c := range l.Calls()[n:] {
		if c.Form.Get("grant_type") == "refresh_token" {
			all++
			if c.Status == http.StatusOK {
				granted++
			}
		}
	}
	return all, granted
}

// record is one response the test received, from forgelink or a fake.
type record struct {
	Method, URL string
	Status      int
	Header      http.Header
	Body        []byte
}

// text is all of the response: status, headers and body.
func (r *record) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d\n", r.Status)
	_ = r.Header.Write(&b)
	b.Write(r.Body)
	return b.String()
}

func (r *record) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("%s %s: answer %d is not a JSON object: %q", r.Method, r.URL, r.Status, r.Body)
	}
	return m
}

// cookie returns the Set-Cookie of name in the response, or nil.
func (r *record) cookie(name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// transcript is every response a test received.
type transcript struct {
	mu      sync.Mutex
	records []*record
}

func (tr *transcript) add(r *record) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.records = append(tr.records, r)
}

func (tr *transcript) all() []*record {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.records)
}

// browser is a person's browser: a cookie jar, and no redirect followed
// by itself, so that the test drives (and checks) every hop.
type browser struct {
	c  *http.Client
	tr *transcript
}

func newBrowser(t *testing.T, tr *transcript) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{tr: tr, c: &http.Client{
		Jar:           jar,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// client is a program with no cookies, e.g. CI using an API token.
func client(tr *transcript) *browser {
	return &browser{tr: tr, c: &http.Client{
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends a request; header is name, value pairs. A body is JSON.
func (b *browser) do(t *testing.T, method, target, body string, header ...string) *record {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", method, target, err)
	}
	r := &record{Method: method, URL: target, Status: resp.StatusCode, Header: resp.Header, Body: rb}
	b.tr.add(r)
	return r
}

// secret is a value that must not leak: in no log line, and in no
// response but the one that hands it out (nil: none may carry it).
type secret struct {
	what, value string
	handedOut   *record
}

type secrets struct {
	mu   sync.Mutex
	list []secret
}

func (s *secrets) add(what, value string, handedOut *record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, secret{what, value, handedOut})
}

// check fails the test for every secret found where it must not be.
func (s *secrets) check(t *testing.T, tr *transcript, logs string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !strings.Contains(logs, `"msg":"signed in"`) {
		t.Errorf("the server's logs were not captured (no sign-in logged): %.300s", logs)
	}
	records := tr.all()
	if len(s.list) == 0 || len(records) == 0 {
		t.Fatalf("leak check with %d secrets over %d responses", len(s.list), len(records))
	}
	for _, sec := range s.list {
		if len(sec.value) < 8 {
			t.Errorf("%s %q is too short to look for", sec.what, sec.value)
			continue
		}
		if sec.handedOut != nil && !strings.Contains(sec.handedOut.text(), sec.value) {
			t.Errorf("%s is not in the response that handed it out (%s %s)", sec.what, sec.handedOut.Method, sec.handedOut.URL)
		}
		for _, r := range records {
			if r != sec.handedOut && strings.Contains(r.text(), sec.value) {
				t.Errorf("%s leaked in the answer %d to %s %s", sec.what, r.Status, r.Method, r.URL)
			}
		}
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, sec.value) {
				t.Errorf("%s leaked in the log line %s", sec.what, line)
			}
		}
	}
}

// signin is one test's view of sign-in: the responses it received and the
// secrets that appeared.
type signin struct {
	s   *stack
	tr  *transcript
	sec *secrets
}

// newSignin returns the stack's sign-in driver and checks, when the test
// ends, that no secret it saw leaked.
func newSignin(t *testing.T, s *stack) *signin {
	si := &signin{s: s, tr: &transcript{}, sec: &secrets{}}
	si.sec.add("the API token", apiToken, nil)
	si.sec.add("GITHUB_TOKEN", s.gh.Token, nil)
	si.sec.add("BITBUCKET_TOKEN", s.bb.Token, nil)
	t.Cleanup(func() {
		for _, tok := range s.vcs.Issued() {
			si.sec.add("an OAuth access or refresh token", tok, nil)
		}
		si.sec.check(t, si.tr, s.logs.String())
	})
	return si
}

// session is a signed-in browser.
type session struct {
	b        *browser
	id, csrf string
}

// start drives GET /login/{vcs} and the VCS's authorize page, checking
// both redirects, and returns the callback URL the VCS sent the browser
// to, with its state and code.
func (si *signin) start(t *testing.T, b *browser, vcs string) (callback, state, code string) {
	t.Helper()
	s := si.s
	r := b.do(t, http.MethodGet, s.url+"/login/"+vcs, "")
	if r.Status != http.StatusFound {
		t.Fatalf("GET /login/%s: %d %s, want 302", vcs, r.Status, r.Body)
	}
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatalf("GET /login/%s: Location %q: %v", vcs, r.Header.Get("Location"), err)
	}
	q := loc.Query()
	state = q.Get("state")
	redirectURI := s.url + "/login/" + vcs + "/callback"
	switch vcs {
	case "github":
		if got, want := loc.Scheme+"://"+loc.Host+loc.Path, s.gh.WebURL+"/login/oauth/authorize"; got != want {
			t.Errorf("login redirects to %s, want %s", got, want)
		}
		if q.Get("client_id") != ghOAuthClientID || q.Get("redirect_uri") != redirectURI {
			t.Errorf("authorize query %v: want client_id %s, redirect_uri %s", q, ghOAuthClientID, redirectURI)
		}
		scopes := strings.FieldsFunc(q.Get("scope"), func(r rune) bool { return r == ' ' || r == ',' })
		for _, want := range []string{"repo", "admin:repo_hook", "admin:public_key", "user:email"} {
			if !slices.Contains(scopes, want) {
				t.Errorf("authorize scope %q lacks %s", q.Get("scope"), want)
			}
		}
	case "bitbucket":
		if got, want := loc.Scheme+"://"+loc.Host+loc.Path, s.bb.WebURL+"/site/oauth2/authorize"; got != want {
			t.Errorf("login redirects to %s, want %s", got, want)
		}
		if q.Get("client_id") != bbOAuthKey || q.Get("redirect_uri") != redirectURI || q.Get("response_type") != "code" {
			t.Errorf("authorize query %v: want client_id %s, redirect_uri %s, response_type code", q, bbOAuthKey, redirectURI)
		}
	}
	if len(state) < 16 {
		t.Fatalf("authorize state %q: want a long random value", state)
	}
	c := r.cookie("forgelink_oauth_state")
	if c == nil || c.Value != state || !c.HttpOnly || c.Secure || c.SameSite != http.SameSiteLaxMode || c.MaxAge <= 0 || c.MaxAge > 3600 {
		t.Fatalf("state cookie %+v: want the state, HttpOnly, SameSite=Lax, not Secure on http, short-lived", c)
	}

	r = b.do(t, http.MethodGet, loc.String(), "")
	if r.Status != http.StatusFound {
		t.Fatalf("the VCS's authorize page: %d %s, want 302", r.Status, r.Body)
	}
	back, err := url.Parse(r.Header.Get("Location"))
	if err != nil || back.Scheme+"://"+back.Host+back.Path != redirectURI {
		t.Fatalf("the VCS redirects to %q, want %s", r.Header.Get("Location"), redirectURI)
	}
	code = back.Query().Get("code")
	if back.Query().Get("state") != state {
		t.Fatalf("the VCS sent back state %q, want %q", back.Query().Get("state"), state)
	}
	if code != "" {
		si.sec.add("an OAuth code", code, r)
	}
	return back.String(), state, code
}

// finish sends the browser to the callback and checks the session it
// gets.
func (si *signin) finish(t *testing.T, b *browser, callback string) *session {
	t.Helper()
	r := b.do(t, http.MethodGet, callback, "")
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("callback: %d Location %q %s, want 303 to /", r.Status, r.Header.Get("Location"), r.Body)
	}
	sc, cc := r.cookie("forgelink_session"), r.cookie("forgelink_csrf")
	if sc == nil || sc.Value == "" || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Secure || sc.Path != "/" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, not Secure on http, Path /", sc)
	}
	if cc == nil || cc.Value == "" || cc.HttpOnly || cc.SameSite != http.SameSiteLaxMode || cc.Secure {
		t.Fatalf("CSRF cookie %+v: want one readable by the page, SameSite=Lax, not Secure on http", cc)
	}
	if sc.Value == cc.Value {
		t.Fatalf("the session id is the CSRF token")
	}
	if c := r.cookie("forgelink_oauth_state"); c == nil || c.MaxAge >= 0 {
		t.Errorf("callback left the state cookie: %+v", c)
	}
	si.sec.add("a session id", sc.Value, r)
	si.sec.add("a CSRF token", cc.Value, r)
	return &session{b: b, id: sc.Value, csrf: cc.Value}
}

// signIn is the whole web flow in a new browser.
func (si *signin) signIn(t *testing.T, vcs string) *session {
	t.Helper()
	b := newBrowser(t, si.tr)
	callback, _, _ := si.start(t, b, vcs)
	return si.finish(t, b, callback)
}

// call sends an API request with the session cookie, and the CSRF header
// if csrf.
func (si *signin) call(t *testing.T, ss *session, method, path, body string, csrf bool) *record {
	t.Helper()
	var h []string
	if csrf {
		h = []string{"X-CSRF-Token", ss.csrf}
	}
	return ss.b.do(t, method, si.s.url+path, body, h...)
}

// withToken sends an API request with an API token and no cookie.
func (si *signin) withToken(t *testing.T, token, method, path, body string) *record {
	t.Helper()
	return client(si.tr).do(t, method, si.s.url+path, body, "Circle-Token", token)
}

// noSession fails when r set a session cookie.
func noSession(t *testing.T, what string, r *record) {
	t.Helper()
	for _, name := range []string{"forgelink_session", "forgelink_csrf"} {
		if c := r.cookie(name); c != nil && c.MaxAge >= 0 {
			t.Errorf("%s: the answer sets %s", what, name)
		}
	}
}

// TestSignInGitHub signs in through GitHub's web flow hop by hop, then as a
// second user manages personal API tokens (CSRF-checked) and signs out;
// the environment's token keeps working throughout.
func TestSignInGitHub(t *testing.T) {
	s := newSigninStack(t, true)
	si := newSignin(t, s)

	octo := si.signIn(t, "github")
	r := si.call(t, octo, http.MethodGet, "/api/v2/me", "", false)
	if me := r.json(t); r.Status != http.StatusOK || me["id"] != fmt.Sprint("github:", vcsfake.GitHubUserID) || me["login"] != vcsfake.GitHubLogin {
		t.Fatalf("GET /api/v2/me as %s: %d %v", vcsfake.GitHubLogin, r.Status, me)
	}

	const monaID = 7310001
	s.gh.AddUser("mona", monaID, "Mona Lisa Octocat")
	s.gh.SetAuthorizeUser("mona")
	mona := si.signIn(t, "github")
	r = si.call(t, mona, http.MethodGet, "/api/v2/me", "", false)
	if me := r.json(t); r.Status != http.StatusOK || me["id"] != fmt.Sprint("github:", monaID) || me["login"] != "mona" {
		t.Fatalf("GET /api/v2/me as mona: %d %v, want github:%d mona", r.Status, me, monaID)
	}

	listTokens := func() []any {
		t.Helper()
		r := si.call(t, mona, http.MethodGet, "/api/v2/me/tokens", "", false)
		items, ok := r.json(t)["items"].([]any)
		if r.Status != http.StatusOK || !ok {
			t.Fatalf("list tokens: %d %s", r.Status, r.Body)
		}
		return items
	}

	// A state-changing request with the cookie alone is refused: the
	// browser of a forged form has the cookie, not the token.
	r = si.call(t, mona, http.MethodPost, "/api/v2/me/tokens", `{"label":"ci"}`, false)
	if msg, _ := r.json(t)["message"].(string); r.Status != http.StatusForbidden || !strings.Contains(msg, "CSRF") {
		t.Fatalf("create a token without X-CSRF-Token: %d %s, want 403 naming CSRF", r.Status, r.Body)
	}
	bad := *mona
	bad.csrf = "not-" + mona.csrf
	if r := si.call(t, &bad, http.MethodPost, "/api/v2/me/tokens", `{"label":"ci"}`, true); r.Status != http.StatusForbidden {
		t.Fatalf("create a token with a wrong X-CSRF-Token: %d %s, want 403", r.Status, r.Body)
	}
	if items := listTokens(); len(items) != 0 {
		t.Fatalf("tokens after refused creations: %v, want none", items)
	}

	created := si.call(t, mona, http.MethodPost, "/api/v2/me/tokens", `{"label":"ci"}`, true)
	tok := created.json(t)
	value, _ := tok["token"].(string)
	id, _ := tok["id"].(string)
	if created.Status != http.StatusCreated || value == "" || id == "" || tok["label"] != "ci" || tok["created_at"] == nil {
		t.Fatalf("create a token: %d %v, want 201 {id, label, token, created_at}", created.Status, tok)
	}
	si.sec.add("a personal API token", value, created)

	r = si.withToken(t, value, http.MethodGet, "/api/v2/me", "")
	if me := r.json(t); r.Status != http.StatusOK || me["id"] != fmt.Sprint("github:", monaID) {
		t.Fatalf("GET /api/v2/me with the new token: %d %v, want mona", r.Status, me)
	}
	items := listTokens()
	if len(items) != 1 {
		t.Fatalf("tokens = %v, want the one created", items)
	}
	if it := items[0].(map[string]any); it["id"] != id || it["label"] != "ci" || it["token"] != nil {
		t.Errorf("listed token %v: want id %s, label ci, and no value", it, id)
	}
	if r := si.call(t, mona, http.MethodDelete, "/api/v2/me/tokens/"+id, "", false); r.Status != http.StatusForbidden {
		t.Errorf("revoke without X-CSRF-Token: %d, want 403", r.Status)
	}
	if r := si.withToken(t, value, http.MethodGet, "/api/v2/me", ""); r.Status != http.StatusOK {
		t.Fatalf("the token after a refused revocation: %d, want 200", r.Status)
	}
	if r := si.call(t, mona, http.MethodDelete, "/api/v2/me/tokens/"+id, "", true); r.Status != http.StatusNoContent {
		t.Fatalf("revoke the token: %d %s, want 204", r.Status, r.Body)
	}
	if r := si.withToken(t, value, http.MethodGet, "/api/v2/me", ""); r.Status != http.StatusUnauthorized {
		t.Fatalf("the revoked token: %d %s, want 401", r.Status, r.Body)
	}
	if items := listTokens(); len(items) != 0 {
		t.Errorf("tokens after revocation: %v, want none", items)
	}

	// The environment user has FORGELINK_API_TOKEN, and no personal tokens.
	if r := si.withToken(t, apiToken, http.MethodPost, "/api/v2/me/tokens", `{"label":"x"}`); r.Status != http.StatusForbidden {
		t.Errorf("create a personal token as the environment user: %d %s, want 403", r.Status, r.Body)
	}

	// Signing out needs the CSRF token too, and ends only that session.
	r = si.call(t, mona, http.MethodPost, "/logout", "", false)
	if r.Status != http.StatusForbidden {
		t.Fatalf("POST /logout without X-CSRF-Token: %d %s, want 403", r.Status, r.Body)
	}
	if r := si.call(t, mona, http.MethodGet, "/api/v2/me", "", false); r.Status != http.StatusOK {
		t.Fatalf("the session after a refused logout: %d, want 200", r.Status)
	}
	r = si.call(t, mona, http.MethodPost, "/logout", "", true)
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("POST /logout: %d Location %q, want 303 to /", r.Status, r.Header.Get("Location"))
	}
	if c := r.cookie("forgelink_session"); c == nil || c.MaxAge >= 0 {
		t.Errorf("logout did not clear the session cookie: %+v", c)
	}
	// The old cookie, sent again (say by a copy of it), is dead.
	stale := client(si.tr).do(t, http.MethodGet, s.url+"/api/v2/me", "", "Cookie", "forgelink_session="+mona.id)
	if stale.Status != http.StatusUnauthorized {
		t.Fatalf("the session after logout: %d %s, want 401", stale.Status, stale.Body)
	}
	if r := si.call(t, octo, http.MethodGet, "/api/v2/me", "", false); r.Status != http.StatusOK {
		t.Errorf("the other user's session after mona's logout: %d, want 200", r.Status)
	}

	// The environment's token works as before.
	r = si.withToken(t, apiToken, http.MethodGet, "/api/v2/me", "")
	if me := r.json(t); r.Status != http.StatusOK || me["login"] != vcsfake.GitHubLogin {
		t.Errorf("GET /api/v2/me with the API token: %d %v", r.Status, me)
	}
	r = si.withToken(t, apiToken, http.MethodPost, "/api/v1.1/project/gh/octo-org/hello-world/follow", "")
	if r.Status != http.StatusCreated {
		t.Errorf("follow with the API token: %d %s, want 201", r.Status, r.Body)
	}
	if r := si.withToken(t, apiToken, http.MethodGet, "/api/v1.1/projects", ""); r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte("hello-world")) {
		t.Errorf("projects with the API token: %d %s", r.Status, r.Body)
	}
}

// TestSignInStateProblems checks that a callback signs no one in unless
// its state is this browser's, unused, and the VCS grants the code with
// every scope forgelink needs.
func TestSignInStateProblems(t *testing.T) {
	s := newSigninStack(t, true)
	si := newSignin(t, s)
	exchanges := s.gh.OAuthExchanges

	t.Run("state does not match the cookie", func(t *testing.T) {
		b := newBrowser(t, si.tr)
		callback, state, _ := si.start(t, b, "github")
		before := exchanges()
		r := b.do(t, http.MethodGet, strings.Replace(callback, "state="+state, "state=x"+state, 1), "")
		if r.Status != http.StatusBadRequest || !bytes.Contains(r.Body, []byte("state does not match")) {
			t.Errorf("callback with another state: %d %s, want 400 naming the state", r.Status, r.Body)
		}
		noSession(t, "callback with another state", r)
		if n := exchanges(); n != before {
			t.Errorf("the code was exchanged (%d exchanges, want %d)", n, before)
		}
	})

	t.Run("no state cookie", func(t *testing.T) {
		b := newBrowser(t, si.tr)
		callback, _, _ := si.start(t, b, "github")
		before := exchanges()
		other := newBrowser(t, si.tr) // the callback URL, opened in a browser that did not start the sign-in
		r := other.do(t, http.MethodGet, callback, "")
		if r.Status != http.StatusBadRequest {
			t.Errorf("callback without the state cookie: %d %s, want 400", r.Status, r.Body)
		}
		noSession(t, "callback without the state cookie", r)
		if n := exchanges(); n != before {
			t.Errorf("the code was exchanged (%d exchanges, want %d)", n, before)
		}
		// The browser that started it still can: the refusal was the cookie's.
		si.finish(t, b, callback)
	})

	t.Run("state used twice", func(t *testing.T) {
		b := newBrowser(t, si.tr)
		callback, state, _ := si.start(t, b, "github")
		si.finish(t, b, callback)
		// The browser dropped the state cookie; a replay sends it along.
		r := client(si.tr).do(t, http.MethodGet, callback, "", "Cookie", "forgelink_oauth_state="+state)
		if r.Status != http.StatusBadRequest || !bytes.Contains(r.Body, []byte("already used")) {
			t.Errorf("callback replayed: %d %s, want 400 naming the used sign-in", r.Status, r.Body)
		}
		noSession(t, "callback replayed", r)
	})

	t.Run("code refused", func(t *testing.T) {
		b := newBrowser(t, si.tr)
		_, state, _ := si.start(t, b, "github")
		r := b.do(t, http.MethodGet, s.url+"/login/github/callback?code=nope&state="+url.QueryEscape(state), "")
		if r.Status != http.StatusBadRequest || !bytes.Contains(r.Body, []byte("bad_verification_code")) {
			t.Errorf("callback with a bad code: %d %s, want 400 naming GitHub's refusal", r.Status, r.Body)
		}
		noSession(t, "callback with a bad code", r)
		log := s.gh.OAuthExchangeLog()
		if len(log) == 0 || log[len(log)-1].Error != "bad_verification_code" {
			t.Errorf("GitHub's token endpoint saw %+v, want the bad code refused last", log)
		}
	})

	t.Run("user denies", func(t *testing.T) {
		s.gh.SetAuthorizeUser("")
		defer s.gh.SetAuthorizeUser(vcsfake.GitHubLogin)
		b := newBrowser(t, si.tr)
		callback, _, _ := si.start(t, b, "github")
		r := b.do(t, http.MethodGet, callback, "")
		if r.Status != http.StatusBadRequest || !bytes.Contains(r.Body, []byte("did not authorize")) {
			t.Errorf("callback after the user cancelled: %d %s, want 400", r.Status, r.Body)
		}
		noSession(t, "callback after the user cancelled", r)
	})

	t.Run("scopes missing", func(t *testing.T) {
		const id = 7310002
		s.gh.AddUser("stingy", id, "Stingy")
		s.gh.SetAuthorizeUser("stingy")
		defer s.gh.SetAuthorizeUser(vcsfake.GitHubLogin)
		s.gh.SetGrantedScopes("stingy", "repo", "user:email")
		b := newBrowser(t, si.tr)
		callback, _, _ := si.start(t, b, "github")
		r := b.do(t, http.MethodGet, callback, "")
		if r.Status != http.StatusForbidden || !bytes.Contains(r.Body, []byte("admin:repo_hook")) || !bytes.Contains(r.Body, []byte("admin:public_key")) {
			t.Errorf("callback with too few scopes: %d %s, want 403 naming admin:repo_hook and admin:public_key", r.Status, r.Body)
		}
		noSession(t, "callback with too few scopes", r)
		if _, err := s.srv.Store.GetUser(context.Background(), fmt.Sprint("github:", id)); forgelink.KindOf(err) != forgelink.NotFound {
			t.Errorf("user with too few scopes was stored (err %v)", err)
		}
	})
}

// TestSignInGitHubPermissions gives mona admin on A, pull on B and nothing
// on the private C, and checks what forgelink lets her see and do, with
// her own token, and that the background work of the project she follows
// acts with her token too.
func TestSignInGitHubPermissions(t *testing.T) {
	s := newSigninStack(t, false)
	si := newSignin(t, s)
	const (
		repoA, slugA = "octo-org/hello-world", "gh/octo-org/hello-world"
		repoB, slugB = "octo-org/pull-only", "gh/octo-org/pull-only"
		repoC, slugC = "octo-org/hidden", "gh/octo-org/hidden"
		slugX        = "gh/octo-org/no-such-repo"
	)
	s.gh.AddRepo(repoB, "main", true)
	s.gh.AddRepo(repoC, "main", true)
	s.gh.AddUser("mona", 7310003, "Mona")
	s.gh.SetPermission(repoA, "mona", "admin")
	s.gh.SetPermission(repoB, "mona", "pull")

	// The environment user follows B and C.
	for _, slug := range []string{slugB, slugC} {
		if r := si.withToken(t, apiToken, http.MethodPost, "/api/v1.1/project/"+slug+"/follow", ""); r.Status != http.StatusCreated {
			t.Fatalf("follow %s with the API token: %d %s", slug, r.Status, r.Body)
		}
	}

	s.gh.SetAuthorizeUser("mona")
	mona := si.signIn(t, "github")
	issued := s.vcs.Issued()
	monaToken := issued[len(issued)-1]

	r := si.call(t, mona, http.MethodGet, "/api/v1.1/user/repos", "", false)
	var repos []struct {
		FullName  string `json:"full_name"`
		Admin     bool   `json:"admin"`
		Following bool   `json:"following"`
	}
	if err := json.Unmarshal(r.Body, &repos); r.Status != http.StatusOK || err != nil {
		t.Fatalf("GET /api/v1.1/user/repos: %d %s", r.Status, r.Body)
	}
	got := map[string][2]bool{}
	for _, rp := range repos {
		got[rp.FullName] = [2]bool{rp.Admin, rp.Following}
	}
	if want := map[string][2]bool{repoA: {true, false}, repoB: {false, true}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("mona's repositories (admin, following) = %v, want %v", got, want)
	}

	// Following A acts with mona's token.
	callsBefore := len(s.vcs.Calls())
	r = si.call(t, mona, http.MethodPost, "/api/v1.1/project/"+slugA+"/follow", "", true)
	if r.Status != http.StatusCreated {
		t.Fatalf("mona follows A: %d %s, want 201", r.Status, r.Body)
	}
	hookURL, _ := r.json(t)["hook_url"].(string)
	installed := 0
	for _, c := range s.vcs.Calls()[callsBefore:] {
		if c.Method == http.MethodPost && (strings.HasSuffix(c.URL.Path, "/repos/"+repoA+"/keys") || strings.HasSuffix(c.URL.Path, "/repos/"+repoA+"/hooks")) {
			installed++
			if c.Auth != "Bearer "+monaToken {
				t.Errorf("%s %s sent Authorization %q, want mona's token", c.Method, c.URL.Path, c.Auth)
			}
		}
	}
	if installed != 2 || len(s.gh.Hooks(repoA)) != 1 || len(s.gh.DeployKeys(repoA)) != 1 {
		t.Errorf("follow of A made %d key/hook requests; A has %d hooks, %d keys; want 2, 1, 1", installed, len(s.gh.Hooks(repoA)), len(s.gh.DeployKeys(repoA)))
	}

	// Pull on B reads, does not change.
	r = si.call(t, mona, http.MethodPost, "/api/v1.1/project/"+slugB+"/follow", "", true)
	if msg, _ := r.json(t)["message"].(string); r.Status != http.StatusForbidden || !strings.Contains(msg, "admin") {
		t.Errorf("mona follows B: %d %s, want 403 naming admin", r.Status, r.Body)
	}
	if r := si.call(t, mona, http.MethodGet, "/api/v2/project/"+slugB+"/settings", "", false); r.Status != http.StatusOK || r.json(t)["advanced"] == nil {
		t.Errorf("mona reads B's settings: %d %s, want 200", r.Status, r.Body)
	}
	if r := si.call(t, mona, http.MethodPatch, "/api/v2/project/"+slugB+"/settings", `{"advanced":{"build_prs_only":true}}`, true); r.Status != http.StatusForbidden {
		t.Errorf("mona changes B's settings: %d %s, want 403", r.Status, r.Body)
	}
	if r := si.call(t, mona, http.MethodDelete, "/api/v1.1/project/"+slugB+"/follow", "", true); r.Status != http.StatusForbidden {
		t.Errorf("mona unfollows B: %d %s, want 403", r.Status, r.Body)
	}
	if h := s.gh.Hooks(repoB); len(h) != 1 {
		t.Errorf("B has %d hooks after mona's refused changes, want the environment user's 1", len(h))
	}

	// C, hidden from mona, answers as a repository that does not exist.
	routes := []struct{ method, path string }{
		{http.MethodGet, "/api/v2/project/%s"},
		{http.MethodGet, "/api/v1.1/project/%s/follow"},
		{http.MethodPost, "/api/v1.1/project/%s/follow"},
		{http.MethodDelete, "/api/v1.1/project/%s/follow"},
		{http.MethodGet, "/api/v2/project/%s/settings"},
		{http.MethodPatch, "/api/v2/project/%s/settings"},
		{http.MethodGet, "/api/v2/project/%s/pipeline"},
		{http.MethodGet, "/api/v2/project/%s/deliveries"},
		{http.MethodPost, "/api/v2/project/%s/webhook-secret/rotate"},
		{http.MethodGet, "/api/v1.1/project/%s/checkout-key"},
		{http.MethodPost, "/api/v2/project/%s/checkout-key"},
		{http.MethodGet, "/api/v1.1/project/%s/ssh-key"},
	}
	for _, rt := range routes {
		body := ""
		if rt.method == http.MethodPatch || rt.method == http.MethodPost {
			body = `{"advanced":{},"type":"deploy-key"}`
		}
		hidden := si.call(t, mona, rt.method, fmt.Sprintf(rt.path, slugC), body, true)
		unknown := si.call(t, mona, rt.method, fmt.Sprintf(rt.path, slugX), body, true)
		same := strings.ReplaceAll(string(hidden.Body), "hidden", "no-such-repo")
		if hidden.Status != http.StatusNotFound || unknown.Status != http.StatusNotFound || same != string(unknown.Body) ||
			hidden.Header.Get("Content-Type") != unknown.Header.Get("Content-Type") {
			t.Errorf("%s %s: C answers %d %s, an unknown repository %d %s; want the same 404",
				rt.method, rt.path, hidden.Status, hidden.Body, unknown.Status, unknown.Body)
		}
	}
	if h, k := len(s.gh.Hooks(repoC)), len(s.gh.DeployKeys(repoC)); h != 1 || k != 1 {
		t.Errorf("C has %d hooks, %d keys after mona's requests, want the environment user's 1 and 1", h, k)
	}

	// mona follows A only.
	r = si.call(t, mona, http.MethodGet, "/api/v1.1/projects", "", false)
	var projects []struct{ Slug string }
	if err := json.Unmarshal(r.Body, &projects); r.Status != http.StatusOK || err != nil || len(projects) != 1 || projects[0].Slug != slugA {
		t.Errorf("mona's projects: %d %s, want only %s", r.Status, r.Body, slugA)
	}

	// A push to A's hook: the trigger reads the config, and the pending
	// status is posted, with mona's token.
	const rev = "366701fde727cb7a9e7f21eb88264f59f6f9b89c"
	s.gh.SetFile(repoA, rev, ".circleci/config.yml", []byte(ciConfig))
	callsBefore = len(s.vcs.Calls())
	secret := s.gh.Hooks(repoA)[0].Secret
	push := providers[0].deliver(hookURL, secret, "push", "signin-push", corpus(t, "github/push.json"))
	if status, body := do(t, push); status != http.StatusAccepted {
		t.Fatalf("push to A: %d %v", status, body)
	}
	s.waitDelivery(t, slugA, "signin-push")
	if pls := s.pipelines(t, slugA); len(pls) != 1 {
		t.Fatalf("A's pipelines = %v, want one", pls)
	}
	deadline := time.Now().Add(10 * time.Second)
	var read, posted int
	for time.Now().Before(deadline) {
		read, posted = 0, 0
		for _, c := range s.vcs.Calls()[callsBefore:] {
			if !strings.Contains(c.URL.Path, "/repos/"+repoA+"/") {
				continue
			}
			if c.Auth != "Bearer "+monaToken {
				t.Fatalf("background %s %s sent Authorization %q, want mona's token", c.Method, c.URL.Path, c.Auth)
			}
			switch {
			case c.Method == http.MethodGet && strings.Contains(c.URL.Path, "/contents/.circleci"):
				read++
			case c.Method == http.MethodPost && strings.HasSuffix(c.URL.Path, "/statuses/"+rev):
				posted++
			}
		}
		if read > 0 && posted > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if read == 0 || posted == 0 {
		t.Errorf("background work for A read the config %d times and posted %d statuses, want both", read, posted)
	}
}

// TestSignInBitbucket signs in through Bitbucket's web flow, and keeps
// using the VCS as the user's access token expires: refreshed before use,
// and with refresh tokens that rotate, by two requests at once.
func TestSignInBitbucket(t *testing.T) {
	s := newSigninStack(t, true)
	si := newSignin(t, s)
	const uuid = "{5ca1ab1e-0000-4000-8000-00000000b0b0}"
	s.bb.AddUser("mona", uuid, "Mona")
	s.bb.SetPermission("octo-org/hello-world", "mona", "admin")
	s.bb.SetAuthorizeUser("mona")
	mona := si.signIn(t, "bitbucket")
	userID := "bitbucket:" + uuid

	r := si.call(t, mona, http.MethodGet, "/api/v2/me", "", false)
	if me := r.json(t); r.Status != http.StatusOK || me["id"] != userID || me["login"] != "mona" {
		t.Fatalf("GET /api/v2/me: %d %v, want %s mona", r.Status, me, userID)
	}
	repos := func(t *testing.T, ss *session) *record {
		t.Helper()
		return si.call(t, ss, http.MethodGet, "/api/v1.1/user/repos", "", false)
	}
	if r := repos(t, mona); r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"full_name":"octo-org/hello-world"`)) {
		t.Fatalf("GET /api/v1.1/user/repos: %d %s, want hello-world", r.Status, r.Body)
	}
	if all, _ := s.vcs.refreshes(0); all != 0 {
		t.Fatalf("%d refreshes of a fresh token", all)
	}

	usedSince := func(n int) []string {
		var auths []string
		for _, c := range s.vcs.Calls()[n:] {
			if strings.HasPrefix(c.URL.Path, "/2.0/") && !slices.Contains(auths, c.Auth) {
				auths = append(auths, c.Auth)
			}
		}
		return auths
	}
	// inUse is the access token forgelink holds: the one a request sends.
	inUse := func(t *testing.T) string {
		t.Helper()
		n := len(s.vcs.Calls())
		if r := repos(t, mona); r.Status != http.StatusOK {
			t.Fatalf("GET /api/v1.1/user/repos: %d %s", r.Status, r.Body)
		}
		auths := usedSince(n)
		if len(auths) != 1 || !strings.HasPrefix(auths[0], "Bearer ") {
			t.Fatalf("one request sent Authorization %q, want one bearer token", auths)
		}
		return strings.TrimPrefix(auths[0], "Bearer ")
	}
	// grantedSince returns the access tokens Bitbucket's token endpoint
	// issued since its nth answer.
	grantedSince := func(n int) []string {
		var out []string
		for _, e := range s.bb.OAuthExchangeLog()[n:] {
			if e.Token != "" {
				out = append(out, e.Token)
			}
		}
		return out
	}
	// expire plays the two hours of the token forgelink holds passing:
	// Bitbucket refuses it, and by forgelink's clock it expires within the
	// minute.
	expire := func(t *testing.T) string {
		t.Helper()
		tok := inUse(t)
		s.bb.ExpireToken(tok)
		ctx := context.Background()
		u, err := s.srv.Store.GetUser(ctx, userID)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Until(u.TokenExpiry); d < time.Hour || d > 2*time.Hour {
			t.Fatalf("stored token expiry in %v, want Bitbucket's two hours", d)
		}
		u.TokenExpiry = time.Now().Add(30 * time.Second)
		if err := s.srv.Store.UpdateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		return tok
	}

	t.Run("refresh before expiry", func(t *testing.T) {
		old := expire(t)
		n, x := len(s.vcs.Calls()), len(s.bb.OAuthExchangeLog())
		if r := repos(t, mona); r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte("hello-world")) {
			t.Fatalf("GET /api/v1.1/user/repos with an expiring token: %d %s, want 200", r.Status, r.Body)
		}
		if all, granted := s.vcs.refreshes(n); all != 1 || granted != 1 {
			t.Errorf("%d refreshes (%d granted), want 1", all, granted)
		}
		fresh := grantedSince(x)
		if auths := usedSince(n); len(fresh) != 1 || fresh[0] == old || !slices.Equal(auths, []string{"Bearer " + fresh[0]}) {
			t.Fatalf("the API was called with %q, want only the refreshed token %q", auths, fresh)
		}
		n = len(s.vcs.Calls())
		if tok := inUse(t); tok != fresh[0] {
			t.Errorf("next request sent %q, want the refreshed token", tok)
		}
		if all, _ := s.vcs.refreshes(n); all != 0 {
			t.Errorf("the refreshed token was refreshed again (%d)", all)
		}
	})

	// Two requests needing a refresh at once both succeed and leave one
	// token, whose refresh token is live: each round refreshes with the
	// one the last stored.
	concurrent := func(t *testing.T, rotate bool) {
		s.bb.SetRefreshRotation(rotate)
		defer s.bb.SetRefreshRotation(false)
		for round := range 3 {
			expire(t)
			x := len(s.bb.OAuthExchangeLog())
			var wg sync.WaitGroup
			results := make([]*record, 2)
			start := make(chan struct{})
			for i := range results {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					results[i] = repos(t, mona)
				}()
			}
			close(start)
			wg.Wait()
			for i, r := range results {
				if r.Status != http.StatusOK {
					t.Fatalf("round %d: request %d: %d %s, want 200", round, i, r.Status, r.Body)
				}
			}
			granted := grantedSince(x)
			if len(granted) < 1 || len(granted) > 2 || (rotate && len(granted) != 1) {
				t.Errorf("round %d: %d refreshes granted, want 1 (2 at most without rotation)", round, len(granted))
			}
			n := len(s.vcs.Calls())
			if tok := inUse(t); !slices.Contains(granted, tok) {
				t.Errorf("round %d: forgelink holds %q, not a token of this round's refresh %q", round, tok, granted)
			}
			if all, _ := s.vcs.refreshes(n); all != 0 {
				t.Errorf("round %d: %d more refreshes, want none", round, all)
			}
		}
	}
	t.Run("two requests at once, same refresh token", func(t *testing.T) { concurrent(t, false) })
	t.Run("two requests at once, rotating refresh tokens", func(t *testing.T) { concurrent(t, true) })

	t.Run("rotating refresh tokens, the loser refused before the winner stored", func(t *testing.T) {
		s.bb.SetRefreshRotation(true)
		defer s.bb.SetRefreshRotation(false)
		expire(t)
		n := len(s.vcs.Calls())
		// Hold the first refresh's answer until the second refresh, with
		// the refresh token the first just spent, was refused.
		firstSent, release := make(chan struct{}), make(chan struct{})
		var first, second sync.Once
		s.vcs.hold(func(c vcsCall) {
			if c.Form.Get("grant_type") != "refresh_token" {
				return
			}
			isFirst := false
			first.Do(func() { isFirst = true })
			if isFirst {
				close(firstSent)
				select {
				case <-release:
				case <-time.After(2 * time.Second): // no second refresh came
				}
				return
			}
			second.Do(func() { time.AfterFunc(300*time.Millisecond, func() { close(release) }) })
		})
		defer s.vcs.hold(nil)
		results := make([]*record, 2)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[0] = repos(t, mona)
		}()
		select {
		case <-firstSent:
		case <-time.After(10 * time.Second):
			t.Fatal("no refresh")
		}
		results[1] = repos(t, mona)
		wg.Wait()
		for i, r := range results {
			if r.Status != http.StatusOK {
				t.Errorf("request %d: %d %s, want 200", i, r.Status, r.Body)
			}
		}
		if all, granted := s.vcs.refreshes(n); all > 2 || granted != 1 {
			t.Errorf("%d refreshes, %d granted; want 1 granted", all, granted)
		}
	})
}

// TestSignInHiddenElsewhere checks the routes outside the project API for
// what they tell a signed-in user about a repository the VCS hides from
// her (C), and what they let a user who may only pull (B) change.
func TestSignInHiddenElsewhere(t *testing.T) {
	s := newSigninStack(t, false)
	si := newSignin(t, s)
	const (
		repoB, slugB = "octo-org/pull-only", "gh/octo-org/pull-only"
		repoC, slugC = "octo-org/hidden", "gh/octo-org/hidden"
	)
	s.gh.AddRepo(repoB, "main", true)
	s.gh.AddRepo(repoC, "main", true)
	s.gh.AddUser("mona", 7310004, "Mona")
	s.gh.SetPermission(repoB, "mona", "pull")
	hooks := map[string]string{}
	for _, slug := range []string{slugB, slugC} {
		r := si.withToken(t, apiToken, http.MethodPost, "/api/v1.1/project/"+slug+"/follow", "")
		if r.Status != http.StatusCreated {
			t.Fatalf("follow %s with the API token: %d %s", slug, r.Status, r.Body)
		}
		hooks[slug], _ = r.json(t)["hook_url"].(string)
	}
	s.gh.SetAuthorizeUser("mona")
	mona := si.signIn(t, "github")
	created := si.call(t, mona, http.MethodPost, "/api/v2/me/tokens", `{"label":"badges"}`, true)
	token, _ := created.json(t)["token"].(string)
	if created.Status != http.StatusCreated || token == "" {
		t.Fatalf("create a token: %d %s", created.Status, created.Body)
	}
	si.sec.add("a personal API token", token, created)

	t.Run("badge", func(t *testing.T) {
		if r := si.withToken(t, apiToken, http.MethodGet, "/gh/"+repoC+".svg", ""); r.Status != http.StatusOK {
			t.Fatalf("C's badge with the API token: %d %s, want 200", r.Status, r.Body)
		}
		hidden := si.withToken(t, token, http.MethodGet, "/gh/"+repoC+".svg", "")
		unknown := si.withToken(t, token, http.MethodGet, "/gh/octo-org/no-such-repo.svg", "")
		if hidden.Status != http.StatusNotFound || !bytes.Equal(hidden.Body, unknown.Body) {
			t.Errorf("C's badge with mona's token: %d %s; an unknown repository's: %d %s; want the same 404", hidden.Status, hidden.Body, unknown.Status, unknown.Body)
		}
	})

	t.Run("org access", func(t *testing.T) {
		if r := si.withToken(t, apiToken, http.MethodGet, "/api/v2/org-access", ""); r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(slugC)) {
			t.Fatalf("org access with the API token: %d %s, want C listed", r.Status, r.Body)
		}
		r := si.call(t, mona, http.MethodGet, "/api/v2/org-access", "", false)
		if bytes.Contains(r.Body, []byte(slugC)) {
			t.Errorf("mona's GET /api/v2/org-access lists %s, a repository the VCS hides from mona: %s", slugC, r.Body)
		}
		if r.Status != http.StatusOK {
			t.Errorf("mona's GET /api/v2/org-access: %d %s, want 200 without C", r.Status, r.Body)
		}
	})

	t.Run("pipeline status from a user who may pull", func(t *testing.T) {
		const rev = "366701fde727cb7a9e7f21eb88264f59f6f9b89c"
		s.gh.SetFile(repoB, rev, ".circleci/config.yml", []byte(ciConfig))
		push := providers[0].deliver(hooks[slugB], s.gh.Hooks(repoB)[0].Secret, "push", "hidden-push", corpus(t, "github/push.json"))
		if status, body := do(t, push); status != http.StatusAccepted {
			t.Fatalf("push to B: %d %v", status, body)
		}
		s.waitDelivery(t, slugB, "hidden-push")
		r := si.call(t, mona, http.MethodGet, "/api/v2/project/"+slugB+"/pipeline", "", false)
		items, _ := r.json(t)["items"].([]any)
		if r.Status != http.StatusOK || len(items) != 1 {
			t.Fatalf("mona lists B's pipelines: %d %s, want one", r.Status, r.Body)
		}
		id, _ := items[0].(map[string]any)["id"].(string)
		r = si.withToken(t, token, http.MethodPost, "/api/v2/pipeline/"+id+"/status", `{"state":"success"}`)
		if r.Status != http.StatusForbidden && r.Status != http.StatusNotFound {
			t.Errorf("mona reports B's pipeline: %d %s, want 403 or 404", r.Status, r.Body)
		}
	})
}
