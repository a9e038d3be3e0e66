package pages_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"forgelink/shared/apiauth"
	"forgelink/shared/bolt"
	"forgelink/shared/config"
	"forgelink/shared/follow"
	"forgelink/shared/forgelink"
	"forgelink/shared/forges"
	"forgelink/shared/keysvc"
	"forgelink/shared/pages"
	"forgelink/shared/sealer"
	"forgelink/shared/signin"
	"forgelink/shared/vcsfake"
)

const (
	fuzzPublic   = "https://ci.example.com"
	fuzzEnvToken = "fl_pages_fuzz_token_0123456789"
	fuzzLogin    = "forgelink_login_csrf"
)

// fuzzSite is the pages beside sign-in, wired as the one-process server
// wires them, on bbolt with fake GitHub and Bitbucket APIs, as a fuzz
// worker builds it once: gh/octo-org/hello-world is followed by local
// mode's environment user, who has a browser session, and has one
// additional SSH key.
type fuzzSite struct {
	gh      *vcsfake.GitHub
	h       http.Handler
	st      *bolt.Store
	keys    *keysvc.Service
	slug    forgelink.Slug
	session *http.Cookie // the environment user's session
	csrf    string       // its CSRF token
	login   string       // a sign-in form's token (the forgelink_login_csrf cookie)
	sshKey  string       // the project's additional SSH key, private
}

func newFuzzSite(tb testing.TB) *fuzzSite {
	tb.Helper()
	gh, bb := vcsfake.NewGitHub(tb), vcsfake.NewBitbucket(tb)
	gh.AddRepo(repo, "main", true)
	bb.AddRepo(repo, "master", true)
	cfg := &config.Config{
		PublicURL: fuzzPublic, APIUser: "local", LogLevel: "error",
		GitHubAPIURL: gh.URL, GitHubToken: gh.Token, GitHubWebURL: gh.WebURL,
		BitbucketURL: bb.URL, BitbucketTok: bb.Token, BitbucketWeb: bb.WebURL,
	}
	dir := tb.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "forgelink.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	kek, err := sealer.OpenKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		tb.Fatal(err)
	}
	sl := sealer.NewEnvelope(kek)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	users := signin.New(cfg, st, sl, nil, fuzzEnvToken)
	users.Log = log
	vcs := forges.ForUsers(cfg, nil, users.Token)
	fl := &follow.Service{Store: st, Sealer: sl, Forges: vcs, Log: log}
	keys := &keysvc.Service{Store: st, Keys: st, Pipelines: st, Sealer: sl, Forges: vcs, GitHubAPIURL: cfg.GitHubAPIURL, Log: log}
	fl.BeforeUnfollow = keys.RemoveProjectKeys
	pg := &pages.Pages{Users: users, Store: st, Pipelines: st, Follow: fl, Keys: keys, TokenSignIn: true, PublicURL: fuzzPublic, Log: log}
	mux := http.NewServeMux()
	for _, route := range signin.Routes {
		mux.Handle(route, users.Handler())
	}
	for _, route := range pages.Routes {
		mux.Handle(route, pg.Handler())
	}
	s := &fuzzSite{gh: gh, h: mux, st: st, keys: keys}
	s.slug, _ = forgelink.ParseSlug(ghSlug)
	ctx := context.Background()
	if _, err := fl.Follow(ctx, s.slug, "local", fuzzPublic); err != nil {
		tb.Fatal(err)
	}
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	block, err := ssh.MarshalPrivateKey(k, "")
	if err != nil {
		tb.Fatal(err)
	}
	s.sshKey = string(pem.EncodeToMemory(block))
	if _, _, err := keys.AddSSHKey(ctx, "local", s.slug, "git.example.com", []byte(s.sshKey)); err != nil {
		tb.Fatal(err)
	}

	w := httptest.NewRecorder()
	if err := users.StartEnvSession(w, httptest.NewRequest(http.MethodPost, "/login", nil)); err != nil {
		tb.Fatal(err)
	}
	for _, c := range w.Result().Cookies() {
		switch c.Name {
		case apiauth.SessionCookie:
			s.session = c
		case apiauth.CSRFCookie:
			s.csrf = c.Value
		}
	}
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	for _, c := range w.Result().Cookies() {
		if c.Name == fuzzLogin {
			s.login = c.Value
		}
	}
	if s.session == nil || s.csrf == "" || s.login == "" {
		tb.Fatalf("no session (%v, %q) or sign-in form token (%q)", s.session, s.csrf, s.login)
	}
	return s
}

// state is what the forms may change: the settings and the keys.
type fuzzState struct {
	settings forgelink.Settings
	checkout []string // fingerprints
	ssh      []string // hostname and fingerprint
}

func (s *fuzzSite) state(t testing.TB) fuzzState {
	t.Helper()
	ctx := context.Background()
	p, err := s.st.GetProject(ctx, s.slug)
	if err != nil {
		t.Fatal(err)
	}
	var out fuzzState
	out.settings = p.Settings
	ck, err := s.keys.ListCheckoutKeys(ctx, s.slug)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ck {
		out.checkout = append(out.checkout, k.FingerprintMD5)
	}
	sk, err := s.keys.ListSSHKeys(ctx, s.slug)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range sk {
		out.ssh = append(out.ssh, k.Hostname+" "+k.FingerprintMD5)
	}
	slices.Sort(out.checkout)
	slices.Sort(out.ssh)
	return out
}

// restore puts the keys back as they were before an execution: the
// fuzzer's keys are removed, removed keys added again (a removed checkout
// key comes back as a new one).
func (s *fuzzSite) restore(t testing.TB, before, after fuzzState) {
	t.Helper()
	ctx := context.Background()
	for _, fp := range after.checkout {
		if !slices.Contains(before.checkout, fp) {
			if _, err := s.keys.DeleteCheckoutKey(ctx, "local", s.slug, fp); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(after.checkout) == 0 {
		if _, err := s.keys.CreateCheckoutKey(ctx, "local", s.slug, forgelink.CheckoutDeployKey, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range after.ssh {
		if !slices.Contains(before.ssh, k) {
			host, fp, _ := strings.Cut(k, " ")
			if _, err := s.keys.DeleteSSHKey(ctx, "local", s.slug, &host, fp); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(after.ssh) == 0 {
		if _, _, err := s.keys.AddSSHKey(ctx, "local", s.slug, "git.example.com", []byte(s.sshKey)); err != nil {
			t.Fatal(err)
		}
	}
}

// showsKey reports whether page holds a base64 line of a private key
// (not its -----BEGIN/END lines: the form's help text shows those).
//
// A line the form itself carries in another field (a hostname, say) may be
// echoed back: that is the user's own input, not a key the page revealed.
func showsKey(page, key string, form url.Values) bool {
	var echoable strings.Builder
	for name, vs := range form {
		if name != "private_key" {
			for _, v := range vs {
				echoable.WriteString(v)
				echoable.WriteByte('\n')
			}
		}
	}
	for _, line := range strings.Split(key, "\n") {
		line = strings.TrimSpace(line)
		if strings.Contains(echoable.String(), line) {
			continue
		}
		base64 := strings.Trim(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") == ""
		// html/template writes "+" as "&#43;".
		if len(line) >= 16 && base64 && (strings.Contains(page, line) || strings.Contains(page, strings.ReplaceAll(line, "+", "&#43;"))) {
			return true
		}
	}
	return false
}

// fuzzForms are the settings forms, by the fuzzer's index.
var fuzzForms = []string{"/settings", "/ssh-keys", "/ssh-keys/remove", "/checkout-keys", "/checkout-keys/remove", "login"}

// FuzzSettingsForms posts fuzzed form bodies to the project's settings
// forms (Advanced Settings, Add/Remove SSH key, Add/Remove checkout key)
// and to the API-token sign-in form, with the session's CSRF token, a
// wrong one, or none appended. Never a 5xx; every answer is an HTML page
// with the security headers, or a 303 to a path on this site (never
// elsewhere, whatever "next" says); no answer shows a line of a private
// key; a form
// whose first csrf_token is not the session's changes nothing (403); a
// saved Advanced Settings form stores exactly its checkboxes.
//
//	go test -run '^$' -fuzz '^FuzzSettingsForms$' -fuzztime 30s ./shared/pages
func FuzzSettingsForms(f *testing.F) {
	for _, s := range []struct {
		form uint8
		body string
	}{
		{0, "build_prs_only=on&set_github_status=on"}, {0, ""}, {0, "build_fork_prs=1&forks_receive_secret_env_vars=yes&oss=on"},
		{1, "hostname=deploy.example.com&private_key=" + url.QueryEscape("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n")},
		{1, "hostname=bad%20host&private_key="}, {2, "hostname=git.example.com&fingerprint=00%3A11"},
		{3, "type=deploy-key"}, {3, "type=user-key"}, {3, "type=root"}, {4, "fingerprint=00%3A11"},
		{5, "token=" + fuzzEnvToken + "&next=%2Fprojects%2Fgh%2Focto-org%2Fhello-world"},
		{5, "token=" + fuzzEnvToken + "&next=%2F%2Fevil.example.com"}, {5, "token=wrong&next=https%3A%2F%2Fevil.example.com"},
		{5, "token=" + fuzzEnvToken + "&next=%2F%5Cevil.example.com"}, {0, "%zz"}, {1, "csrf_token=x"},
	} {
		f.Add(s.form, []byte(s.body), uint8(0))
	}
	f.Add(uint8(0), []byte("build_prs_only=on"), uint8(1))
	f.Add(uint8(3), []byte("type=deploy-key"), uint8(2))
	site := newFuzzSite(f)
	key := url.QueryEscape(site.sshKey)
	f.Add(uint8(1), []byte("hostname=deploy.example.com&private_key="+key), uint8(0))
	f.Add(uint8(1), []byte("hostname=&private_key="+key), uint8(0))
	f.Add(uint8(2), []byte("hostname=git.example.com&fingerprint="+url.QueryEscape(strings.Fields(site.state(f).ssh[0])[1])), uint8(0))

	f.Fuzz(func(t *testing.T, which uint8, body []byte, csrfMode uint8) {
		// A million executions would use up the fake's 5,000 requests.
		site.gh.SetRateLimitRemaining(vcsfake.GitHubRateLimit)
		form := fuzzForms[int(which)%len(fuzzForms)]
		path := "/projects/" + ghSlug + form
		right := site.csrf
		cookies := []*http.Cookie{site.session}
		if form == "login" {
			path, right = "/login", site.login
			cookies = []*http.Cookie{{Name: fuzzLogin, Value: site.login}}
		}
		sent := bytes.Clone(body)
		switch csrfMode % 3 {
		case 0:
			sent = append(sent, "&csrf_token="+right...)
		case 1:
			sent = append(sent, "&csrf_token=not-the-token"...)
		}
		values, parseErr := url.ParseQuery(string(sent))
		authorized := parseErr == nil && values.Get("csrf_token") == right

		before := site.state(t)
		r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(sent))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range cookies {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		site.h.ServeHTTP(w, r)
		after := site.state(t)
		defer site.restore(t, before, after)

		h := w.Header()
		switch {
		case w.Code >= 500:
			t.Fatalf("%s %q: %d %s", path, sent, w.Code, w.Body)
		case h.Get("Content-Security-Policy") != pages.ContentSecurityPolicy || h.Get("X-Frame-Options") != "DENY":
			t.Fatalf("%s: %d without the security headers: %v", path, w.Code, h)
		case showsKey(w.Body.String(), values.Get("private_key")+"\n"+site.sshKey, values):
			t.Fatalf("%s %q: the answer shows the private key", path, sent)
		case w.Code == http.StatusSeeOther:
			loc := h.Get("Location")
			if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, `/\`) {
				t.Fatalf("%s %q: redirected to %q, off this site", path, sent, loc)
			}
			if !authorized {
				t.Fatalf("%s %q: 303 without the right CSRF token", path, sent)
			}
		case !strings.HasPrefix(h.Get("Content-Type"), "text/html"):
			t.Fatalf("%s: %d answered %q, want an HTML page", path, w.Code, h.Get("Content-Type"))
		}
		if form == "login" {
			for _, c := range w.Result().Cookies() {
				if c.Name == apiauth.SessionCookie && c.Value != "" {
					sum := sha256.Sum256([]byte(c.Value))
					if err := site.st.DeleteSession(context.Background(), hex.EncodeToString(sum[:])); err != nil {
						t.Fatal(err)
					}
				}
			}
			return
		}
		changed := !slices.Equal(before.checkout, after.checkout) || !slices.Equal(before.ssh, after.ssh) || before.settings.BuildPRsOnly != after.settings.BuildPRsOnly ||
			before.settings.BuildForkPRs != after.settings.BuildForkPRs || before.settings.ForksReceiveSecretEnvVars != after.settings.ForksReceiveSecretEnvVars ||
			before.settings.SetGitHubStatus != after.settings.SetGitHubStatus
		if !authorized && (changed || w.Code != http.StatusForbidden && w.Code != http.StatusBadRequest) {
			t.Fatalf("%s %q without the right CSRF token: %d, changed %v; want 403 (400 for an unreadable form) and no change", path, sent, w.Code, changed)
		}
		if w.Code != http.StatusSeeOther && changed {
			t.Fatalf("%s %q: %d, but something changed", path, sent, w.Code)
		}
		if form == "/settings" && w.Code == http.StatusSeeOther {
			s := after.settings
			got := []bool{s.BuildPRsOnly, s.BuildForkPRs, s.ForksReceiveSecretEnvVars, s.SetGitHubStatus}
			for i, name := range []string{"build_prs_only", "build_fork_prs", "forks_receive_secret_env_vars", "set_github_status"} {
				if want := values.Get(name) != ""; got[i] != want {
					t.Fatalf("%q saved %s = %v, want %v", sent, name, got[i], want)
				}
			}
		}
	})
}
