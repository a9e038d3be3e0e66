package pages_test

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"

	"forgelink/shared/apiauth"
	"forgelink/shared/forgelink"
	"forgelink/shared/pages"
)

// checkHeaders checks the security headers every answer carries.
func checkHeaders(t *testing.T, what string, h http.Header, page bool) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": pages.ContentSecurityPolicy,
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "same-origin",
		"X-Content-Type-Options":  "nosniff",
	}
	if page {
		want["Cache-Control"] = "no-store"
		want["Content-Type"] = "text/html; charset=utf-8"
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
	csp := h.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("%s: CSP lacks %s", what, d)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("%s: CSP allows inline code: %s", what, csp)
	}
}

func TestSignInPage(t *testing.T) {
	tests := []struct {
		name          string
		opts          []envOption
		want, notWant []string
	}{
		{
			name: "oauth and token",
			want: []string{`<a class="button" href="/login/github">Sign in with GitHub</a>`, `<a class="button" href="/login/bitbucket">Sign in with Bitbucket</a>`,
				`<form class="stack" method="post" action="/login">`, `<label for="token">API token</label>`, `<input id="token" name="token" type="password"`,
				`<button type="submit">Sign in</button>`},
		},
		{
			name:    "oauth only",
			opts:    []envOption{withoutTokenSignIn},
			want:    []string{"Sign in with GitHub", "Sign in with Bitbucket"},
			notWant: []string{"API token", `action="/login"`},
		},
		{
			name:    "token only (local mode without OAuth)",
			opts:    []envOption{withoutOAuth},
			want:    []string{`<label for="token">API token</label>`},
			notWant: []string{"Sign in with GitHub", "Sign in with Bitbucket"},
		},
		{
			name: "nothing configured",
			opts: []envOption{withoutOAuth, withoutTokenSignIn},
			want: []string{"No sign-in is configured"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts...)
			e.follow(t, ghSlug)
			p := e.browser(t).get(t, "/")
			if p.status != http.StatusOK {
				t.Fatalf("GET / = %d", p.status)
			}
			checkHeaders(t, "sign-in page", p.header, true)
			mustContain(t, "sign-in page", p.body, append(tc.want, "<h1>Sign in to forgelink</h1>")...)
			mustNotContain(t, "sign-in page", p.body, tc.notWant...)
			mustNotContain(t, "sign-in page", p.body, "hello-world", "Sign out")
			if p.cookie(apiauth.SessionCookie) != nil {
				t.Error("the sign-in page set a session cookie")
			}
		})
	}
}

// TestNoSessionNoData opens every page without a session, with a session
// cookie that is not one, and with an API token (pages take sessions
// only): each is the sign-in page, with none of the project's data.
func TestNoSessionNoData(t *testing.T) {
	e := newEnv(t)
	e.follow(t, ghSlug)
	pl := e.addPipeline(t, ghSlug, "main")
	pr := e.project(t, ghSlug)
	secret := []string{pr.DeployKey.FingerprintMD5, pr.DeployKey.FingerprintSHA256, pl.Revision[:7], "Checkout SSH keys", "Advanced Settings", "Sign out"}
	paths := []string{"/", "/projects/" + ghSlug, "/pipelines/" + pl.ID, "/org-access", "/projects/" + ghSlug + "/settings"}
	for _, path := range paths {
		for _, how := range []string{"no cookie", "bogus cookie", "api token"} {
			t.Run(path+" "+how, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
				switch how {
				case "bogus cookie":
					req.AddCookie(&http.Cookie{Name: apiauth.SessionCookie, Value: "fls_not-a-session"})
				case "api token":
					req.Header.Set("Circle-Token", envToken)
				}
				p := e.browser(t).do(t, req)
				if path == "/projects/"+ghSlug+"/settings" {
					p = e.browser(t).follow(t, p)
				}
				want := http.StatusUnauthorized
				if path == "/" {
					want = http.StatusOK
				}
				if p.status != want {
					t.Errorf("GET %s = %d, want %d", path, p.status, want)
				}
				mustContain(t, path, p.body, "<h1>Sign in to forgelink</h1>")
				mustNotContain(t, path, p.body, secret...)
			})
		}
	}
}

func TestTokenSignIn(t *testing.T) {
	e := newEnv(t)
	t.Run("wrong token", func(t *testing.T) {
		b := e.browser(t)
		m := loginField.FindStringSubmatch(b.get(t, "/").body)
		p := b.post(t, "/login", url.Values{"csrf_token": {m[1]}, "token": {"fl_wrong_token_0123456789"}})
		if p.status != http.StatusUnauthorized {
			t.Errorf("status = %d, want 401", p.status)
		}
		mustContain(t, "page", p.body, `role="alert" id="token-error">That is not this forgelink&#39;s API token.`, `aria-invalid="true"`, `<label for="token">API token</label>`)
		mustNotContain(t, "page", p.body, "fl_wrong_token")
		if c := p.cookie(apiauth.SessionCookie); c != nil {
			t.Errorf("a wrong token set a session cookie: %v", c)
		}
		if home := b.get(t, "/"); !strings.Contains(home.body, "Sign in to forgelink") {
			t.Error("after a wrong token, GET / is not the sign-in page")
		}
	})
	t.Run("no form token", func(t *testing.T) {
		b := e.browser(t)
		b.get(t, "/")
		p := b.post(t, "/login", url.Values{"token": {envToken}})
		if p.status != http.StatusForbidden || p.cookie(apiauth.SessionCookie) != nil {
			t.Errorf("status = %d, session cookie %v; want 403 and none", p.status, p.cookie(apiauth.SessionCookie))
		}
	})
	t.Run("form token of another browser", func(t *testing.T) {
		other := e.browser(t)
		m := loginField.FindStringSubmatch(other.get(t, "/").body)
		b := e.browser(t)
		b.get(t, "/")
		p := b.post(t, "/login", url.Values{"csrf_token": {m[1]}, "token": {envToken}})
		if p.status != http.StatusForbidden || p.cookie(apiauth.SessionCookie) != nil {
			t.Errorf("status = %d; want 403 and no session", p.status)
		}
	})
	t.Run("cross-origin post", func(t *testing.T) {
		b := e.browser(t)
		m := loginField.FindStringSubmatch(b.get(t, "/").body)
		req, _ := http.NewRequest(http.MethodPost, e.url+"/login", strings.NewReader(url.Values{"csrf_token": {m[1]}, "token": {envToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Origin", "https://evil.example")
		p := b.do(t, req)
		if p.status != http.StatusForbidden || p.cookie(apiauth.SessionCookie) != nil {
			t.Errorf("status = %d; want 403 and no session", p.status)
		}
		checkHeaders(t, "cross-origin refusal", p.header, true)
	})
	t.Run("right token", func(t *testing.T) {
		b := e.browser(t)
		m := loginField.FindStringSubmatch(b.get(t, "/").body)
		p := b.post(t, "/login", url.Values{"csrf_token": {m[1]}, "token": {envToken}, "next": {"/org-access"}})
		if p.status != http.StatusSeeOther || p.location() != "/org-access" {
			t.Fatalf("status = %d to %q, want 303 to /org-access", p.status, p.location())
		}
		c := p.cookie(apiauth.SessionCookie)
		if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
			t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Lax, Path=/", c)
		}
		if c.Secure {
			t.Error("session cookie is Secure on http")
		}
		home := b.follow(t, p)
		mustContain(t, "org access after sign-in", home.body, "<h1>Org access</h1>", "Signed in as <strong>local</strong>")
	})
	t.Run("next elsewhere goes home", func(t *testing.T) {
		for _, next := range []string{"//evil.example/x", "https://evil.example/", `/\evil.example`, "javascript:alert(1)"} {
			b := e.browser(t)
			m := loginField.FindStringSubmatch(b.get(t, "/").body)
			p := b.post(t, "/login", url.Values{"csrf_token": {m[1]}, "token": {envToken}, "next": {next}})
			if p.status != http.StatusSeeOther || p.location() != "/" {
				t.Errorf("next %q: status %d to %q, want 303 to /", next, p.status, p.location())
			}
		}
	})
	t.Run("next kept through the sign-in page", func(t *testing.T) {
		b := e.browser(t)
		p := b.get(t, "/projects/"+ghSlug)
		mustContain(t, "sign-in page", p.body, `name="next" value="/projects/gh/octo-org/hello-world"`)
	})
	t.Run("sign out", func(t *testing.T) {
		b := e.browser(t)
		b.signInToken(t)
		p := b.submit(t, "/logout", nil)
		if p.status != http.StatusSeeOther {
			t.Fatalf("POST /logout = %d", p.status)
		}
		if home := b.follow(t, p); !strings.Contains(home.body, "Sign in to forgelink") {
			t.Error("after sign out, / is not the sign-in page")
		}
	})
}

func TestSignInWithGitHubShowsTheUsersRepos(t *testing.T) {
	e := newEnv(t)
	e.gh.AddUser("hubot", 583231, "Hubot")
	e.gh.SetPermission(repo, "hubot", "admin")
	b := e.browser(t)
	b.signInGitHub(t, "hubot")
	home := b.get(t, "/")
	mustContain(t, "home", home.body, "<h2 id=\"vcs-GitHub\">GitHub</h2>", "octo-org/hello-world", "Follow<span class=\"vh\"> octo-org/hello-world</span>")
	mustNotContain(t, "home", home.body, "vcs-Bitbucket")
}

func TestFollowAndUnfollow(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.signInToken(t)
	home := b.get(t, "/")
	checkHeaders(t, "home", home.header, true)
	mustContain(t, "home", home.body, "<h1>Repositories</h1>", `<h2 id="vcs-GitHub">GitHub</h2>`, `<h2 id="vcs-Bitbucket">Bitbucket</h2>`,
		`action="/projects/gh/octo-org/hello-world/follow"`, `action="/projects/bb/octo-org/hello-world/follow"`, `action="/projects/gh/octo-org/other/follow"`)
	mustNotContain(t, "home", home.body, `href="/projects/gh/octo-org/hello-world"`)

	p := b.submit(t, "/projects/"+ghSlug+"/follow", url.Values{"from": {"repos"}})
	if p.status != http.StatusSeeOther || p.location() != "/projects/"+ghSlug+"?done=followed" {
		t.Fatalf("follow: %d to %q", p.status, p.location())
	}
	pr := e.project(t, ghSlug)
	if pr.State != forgelink.Following || len(e.gh.DeployKeys(repo)) != 1 || len(e.gh.Hooks(repo)) != 1 {
		t.Fatalf("after follow: state %s, %d deploy keys, %d hooks", pr.State, len(e.gh.DeployKeys(repo)), len(e.gh.Hooks(repo)))
	}
	proj := b.follow(t, p)
	mustContain(t, "project page", proj.body, `<p class="flash" role="status">Following: forgelink added`, pr.DeployKey.FingerprintMD5)

	home = b.get(t, "/")
	mustContain(t, "home", home.body, `<a href="/projects/gh/octo-org/hello-world">octo-org/hello-world</a>`,
		`action="/projects/gh/octo-org/hello-world/unfollow"`, "Unfollow<span class=\"vh\"> octo-org/hello-world</span>")

	p = b.submit(t, "/projects/"+ghSlug+"/unfollow", url.Values{"from": {"repos"}})
	if p.status != http.StatusSeeOther || p.location() != "/?done=unfollowed" {
		t.Fatalf("unfollow: %d to %q", p.status, p.location())
	}
	if _, err := e.st.GetProject(context.Background(), pr.Slug); forgelink.KindOf(err) != forgelink.NotFound {
		t.Errorf("after unfollow the project is still stored (%v)", err)
	}
	if len(e.gh.DeployKeys(repo)) != 0 || len(e.gh.Hooks(repo)) != 0 {
		t.Error("unfollow left the deploy key or the hook")
	}
	mustContain(t, "home after unfollow", b.follow(t, p).body, "Unfollowed: forgelink removed")
}

func TestFollowFailureShownOnThePage(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.signInToken(t)
	e.gh.FailNext("POST", "/keys", http.StatusUnprocessableEntity, 1)
	p := b.submit(t, "/projects/"+ghSlug+"/follow", url.Values{"from": {"repos"}})
	if p.status < 400 {
		t.Fatalf("follow with GitHub refusing = %d, want an error", p.status)
	}
	mustContain(t, "repos page", p.body, "<h1>Repositories</h1>", `<p class="error" role="alert">`)
	if _, err := e.st.GetProject(context.Background(), mustSlug(t, ghSlug)); err == nil && e.project(t, ghSlug).State == forgelink.Following {
		t.Error("a failed follow left the project followed")
	}
	// From the project page, the error shows there.
	p = b.submit(t, "/projects/"+ghSlug+"/unfollow", nil)
	if p.status != http.StatusNotFound {
		t.Fatalf("unfollow of a project not followed = %d, want 404", p.status)
	}
	mustContain(t, "project page", p.body, "<h1>octo-org/hello-world</h1>", "forgelink does not follow octo-org/hello-world.")
}

func mustSlug(t *testing.T, s string) forgelink.Slug {
	t.Helper()
	slug, err := forgelink.ParseSlug(s)
	if err != nil {
		t.Fatal(err)
	}
	return slug
}

func TestProjectPage(t *testing.T) {
	e := newEnv(t)
	e.follow(t, ghSlug)
	pl := e.addPipeline(t, ghSlug, "main")
	e.addSkip(t, ghSlug, "feature/x", "feature/x has no open pull request and Only build pull requests is on")
	b := e.browser(t)
	b.signInToken(t)
	p := b.get(t, "/projects/"+ghSlug)
	if p.status != http.StatusOK {
		t.Fatalf("GET project = %d", p.status)
	}
	checkHeaders(t, "project page", p.header, true)
	pr := e.project(t, ghSlug)
	mustContain(t, "project page", p.body,
		"<h1>octo-org/hello-world</h1>",
		`<h2 id="checkout-keys">Checkout SSH keys</h2>`, "<strong>Deploy key</strong>", `<span class="tag on">preferred</span>`,
		"<dt>MD5</dt><dd><code>"+pr.DeployKey.FingerprintMD5+"</code></dd>",
		"<dt>SHA256</dt><dd><code>"+pr.DeployKey.FingerprintSHA256+"</code></dd>",
		`<button type="submit" name="type" value="deploy-key">Add Deploy Key</button>`,
		`<button type="submit" name="type" value="user-key">Add User Key</button>`,
		`<h2 id="ssh-keys">Additional SSH Keys</h2>`, `<label for="hostname">Hostname</label>`, `<label for="private_key">Private Key</label>`,
		`<textarea id="private_key" name="private_key"`, `<button type="submit">Add SSH Key</button>`,
		`<h2 id="advanced">Advanced Settings</h2>`,
		`<label for="build_prs_only">Only build pull requests</label>`,
		`<label for="build_fork_prs">Build forked pull requests</label>`,
		`<label for="forks_receive_secret_env_vars">Pass secrets to builds from forked pull requests</label>`,
		`<label for="set_github_status">GitHub Status updates</label>`,
		`id="set_github_status" name="set_github_status" value="on" checked`,
		`<button type="submit">Save</button>`,
		`<h2 id="badge">Status badge</h2>`, `<img src="data:image/svg+xml;base64,`, `alt="forgelink: running"`,
		"[![forgelink]("+e.url+"/gh/octo-org/hello-world.svg)]("+e.url+"/projects/gh/octo-org/hello-world)",
		"its badge URL needs an API token",
		`<h2 id="pipelines">Pipelines</h2>`, `<a href="/pipelines/`+pl.ID+`">#1</a>`, "<code>"+pl.Revision[:7]+"</code>", "pending",
		`<h3 id="skipped">Skipped events</h3>`, "feature/x has no open pull request and Only build pull requests is on",
		`<button type="submit" class="danger">Unfollow</button>`,
	)
	mustNotContain(t, "project page", p.body, "-----END", "build_prs_only\" value=\"on\" checked")

	t.Run("not followed", func(t *testing.T) {
		p := b.get(t, "/projects/gh/octo-org/other")
		if p.status != http.StatusOK {
			t.Fatalf("GET = %d", p.status)
		}
		mustContain(t, "page", p.body, "<h2 id=\"follow\">Not followed</h2>", `action="/projects/gh/octo-org/other/follow"`)
		mustNotContain(t, "page", p.body, "Checkout SSH keys")
	})
	t.Run("bitbucket", func(t *testing.T) {
		e.follow(t, bbSlug)
		p := b.get(t, "/projects/"+bbSlug)
		mustContain(t, "page", p.body, `<label for="set_github_status">Bitbucket Status updates</label>`, "[![forgelink]("+e.url+"/bb/octo-org/hello-world.svg)")
	})
	t.Run("unknown repository", func(t *testing.T) {
		for _, path := range []string{"/projects/gh/octo-org/nope", "/projects/xx/octo-org/hello-world", "/projects/gh/octo-org", "/projects/"} {
			p := b.get(t, path)
			if p.status != http.StatusNotFound {
				t.Errorf("GET %s = %d, want 404", path, p.status)
			}
			checkHeaders(t, path, p.header, true)
		}
	})
	t.Run("form URL opened", func(t *testing.T) {
		p := b.get(t, "/projects/"+ghSlug+"/ssh-keys")
		if p.status != http.StatusSeeOther || p.location() != "/projects/"+ghSlug {
			t.Errorf("GET a form's URL = %d to %q, want 303 to the project", p.status, p.location())
		}
	})
}

// addPipeline stores a pipeline of slug on branch.
func (e *env) addPipeline(t *testing.T, slug, branch string) *forgelink.Pipeline {
	t.Helper()
	p, err := e.st.CreatePipeline(context.Background(), &forgelink.Pipeline{
		ID: uuid.NewString(), Project: slug, State: forgelink.PipelineCreated,
		Trigger: forgelink.TriggerPush, Branch: branch, Revision: "6dcb09b5b57875f334f61aebed695e2e4193db5e",
		Workflows: []string{"build"}, Actor: "octocat", HookID: "hk", DeliveryID: "d-" + branch, CreatedAt: time.Now().UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// addSkip stores a delivery whose push to branch was skipped for reason.
func (e *env) addSkip(t *testing.T, slug, branch, reason string) {
	t.Helper()
	now := time.Now().UTC()
	err := e.st.PutDeliveryRecord(context.Background(), &forgelink.DeliveryRecord{
		Project: slug, HookID: "hk", DeliveryID: "skip-" + branch, Event: "push", ReceivedAt: now, ProcessedAt: now, State: forgelink.Decided,
		Decisions: []forgelink.EventDecision{{Type: forgelink.BranchPush, Branch: branch, Revision: "aaaaaaabbbbbbbcccccccdddddddeeeeeeefffff", Reason: reason}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCheckoutKeys(t *testing.T) {
	e := newEnv(t)
	e.follow(t, ghSlug)
	e.follow(t, bbSlug)
	b := e.browser(t)
	b.signInToken(t)
	b.get(t, "/projects/"+ghSlug)

	p := b.submit(t, "/projects/"+ghSlug+"/checkout-keys", url.Values{"type": {"deploy-key"}})
	if p.status != http.StatusSeeOther || p.location() != "/projects/"+ghSlug+"?done=deploy-key#checkout-keys" {
		t.Fatalf("Add Deploy Key = %d to %q", p.status, p.location())
	}
	keys, err := e.pages.Keys.ListCheckoutKeys(context.Background(), mustSlug(t, ghSlug))
	if err != nil || len(keys) != 2 {
		t.Fatalf("after Add Deploy Key: %d keys (%v), want 2", len(keys), err)
	}
	if n := len(e.gh.DeployKeys(repo)); n != 2 {
		t.Errorf("GitHub has %d deploy keys, want 2", n)
	}
	page := b.follow(t, p)
	mustContain(t, "page", page.body, "Deploy key added.")
	for _, k := range keys {
		mustContain(t, "page", page.body, "<code>"+k.FingerprintMD5+"</code>", "<code>"+k.FingerprintSHA256+"</code>")
	}

	p = b.submit(t, "/projects/"+ghSlug+"/checkout-keys", url.Values{"type": {"user-key"}})
	if p.status != http.StatusSeeOther || !strings.Contains(p.location(), "done=user-key#") {
		t.Fatalf("Add User Key = %d to %q", p.status, p.location())
	}
	if n := len(e.gh.UserKeys()); n != 1 {
		t.Errorf("GitHub has %d user keys, want 1", n)
	}
	mustContain(t, "page", b.follow(t, p).body, "<strong>User key</strong> of ", "User key added to your account.")

	t.Run("bitbucket user key", func(t *testing.T) {
		p := b.submit(t, "/projects/"+bbSlug+"/checkout-keys", url.Values{"type": {"user-key"}})
		if p.status != http.StatusSeeOther || !strings.Contains(p.location(), "done=user-key-manual") {
			t.Fatalf("Add User Key on Bitbucket = %d to %q", p.status, p.location())
		}
		page := b.follow(t, p)
		keys, _ := e.pages.Keys.ListCheckoutKeys(context.Background(), mustSlug(t, bbSlug))
		var user string
		for _, k := range keys {
			if k.Type == forgelink.CheckoutUserKey {
				user = k.PublicKey
			}
		}
		if user == "" {
			t.Fatal("no user key stored")
		}
		mustContain(t, "page", page.body, "Add this user key to Bitbucket", "User key created. Bitbucket has no API for user keys",
			`readonly>`+user+`</textarea>`, "Personal settings, SSH keys", "Bitbucket has no API to add an SSH key")
		m := regexp.MustCompile(`<label for="(public-key-\d+)">Public key</label>\s*<textarea id="(public-key-\d+)"[^>]*readonly>`).FindStringSubmatch(page.body)
		if m == nil || m[1] != m[2] {
			t.Fatalf("no labelled public key textarea: %v", m)
		}
		mustContain(t, "page", page.body, `<button type="button" class="copy secondary" data-copy="`+m[1]+`" hidden>Copy`)
	})
	t.Run("remove", func(t *testing.T) {
		keys, _ := e.pages.Keys.ListCheckoutKeys(context.Background(), mustSlug(t, ghSlug))
		fp := keys[len(keys)-1].FingerprintMD5
		p := b.submit(t, "/projects/"+ghSlug+"/checkout-keys/remove", url.Values{"fingerprint": {fp}})
		if p.status != http.StatusSeeOther || !strings.Contains(p.location(), "done=key-removed") {
			t.Fatalf("Remove = %d to %q", p.status, p.location())
		}
		after, _ := e.pages.Keys.ListCheckoutKeys(context.Background(), mustSlug(t, ghSlug))
		if len(after) != len(keys)-1 {
			t.Errorf("%d keys after Remove, want %d", len(after), len(keys)-1)
		}
		mustNotContain(t, "page", b.follow(t, p).body, fp)
	})
	t.Run("bad type and unknown key", func(t *testing.T) {
		p := b.submit(t, "/projects/"+ghSlug+"/checkout-keys", url.Values{"type": {"root-key"}})
		if p.status != http.StatusBadRequest {
			t.Errorf("bad type = %d, want 400", p.status)
		}
		mustContain(t, "page", p.body, `<p class="error" role="alert" id="key-error">Choose Add Deploy Key or Add User Key.</p>`)
		p = b.submit(t, "/projects/"+ghSlug+"/checkout-keys/remove", url.Values{"fingerprint": {"00:11"}})
		if p.status != http.StatusNotFound && p.status != http.StatusBadRequest {
			t.Errorf("unknown fingerprint = %d, want 404 or 400", p.status)
		}
		mustContain(t, "page", p.body, `id="key-error"`, "<h2 id=\"checkout-keys\">")
	})
}

func TestAdditionalSSHKeys(t *testing.T) {
	e := newEnv(t)
	e.follow(t, ghSlug)
	b := e.browser(t)
	b.signInToken(t)
	b.get(t, "/projects/"+ghSlug)

	key := rsaPEM(t)
	// A browser sends a textarea's line breaks as CRLF.
	pasted := strings.ReplaceAll(key, "\n", "\r\n")
	p := b.submit(t, "/projects/"+ghSlug+"/ssh-keys", url.Values{"hostname": {"Deploy.Example.com"}, "private_key": {pasted}})
	if p.status != http.StatusSeeOther || p.location() != "/projects/"+ghSlug+"?done=ssh-key-added#ssh-keys" {
		t.Fatalf("Add SSH Key = %d to %q:\n%s", p.status, p.location(), p.body)
	}
	stored, err := e.st.ListSSHKeys(context.Background(), mustSlug(t, ghSlug))
	if err != nil || len(stored) != 1 || stored[0].Hostname != "deploy.example.com" {
		t.Fatalf("stored SSH keys = %+v (%v)", stored, err)
	}
	signer, err := ssh.ParsePrivateKey([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	if want := ssh.FingerprintLegacyMD5(signer.PublicKey()); stored[0].FingerprintMD5 != want {
		t.Errorf("stored MD5 %s, want %s", stored[0].FingerprintMD5, want)
	}
	page := b.follow(t, p)
	mustContain(t, "page", page.body, "SSH key added.", "<strong>deploy.example.com</strong>",
		"<code>"+stored[0].FingerprintMD5+"</code>", "<code>"+stored[0].FingerprintSHA256+"</code>")
	body := strings.Split(key, "\n")[1]
	mustNotContain(t, "page", page.body, "-----END", body)

	t.Run("again", func(t *testing.T) {
		p := b.submit(t, "/projects/"+ghSlug+"/ssh-keys", url.Values{"hostname": {"deploy.example.com"}, "private_key": {key}})
		if !strings.Contains(p.location(), "done=ssh-key-exists") {
			t.Errorf("the same key again: %d to %q", p.status, p.location())
		}
	})
	t.Run("errors keep the hostname, never the key", func(t *testing.T) {
		raw, err := ssh.ParseRawPrivateKey([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		encrypted, err := ssh.MarshalPrivateKeyWithPassphrase(raw, "", []byte("sesame"))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, hostname, key, want string }{
			{"malformed", "git.example.com", "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n", ""},
			{"passphrase", "git.example.com", string(pem.EncodeToMemory(encrypted)), "passphrase"},
			{"empty", "git.example.com", "  ", "Paste the private key."},
			{"bad hostname", "not a host!", key, "Invalid hostname"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := b.submit(t, "/projects/"+ghSlug+"/ssh-keys", url.Values{"hostname": {tc.hostname}, "private_key": {tc.key}})
				if p.status != http.StatusBadRequest {
					t.Errorf("status = %d, want 400", p.status)
				}
				mustContain(t, "page", p.body, `<p class="error" role="alert" id="ssh-error">`, tc.want,
					`id="hostname" name="hostname" type="text" value="`+tc.hostname+`"`, `aria-invalid="true"></textarea>`)
				for _, line := range strings.Split(strings.TrimSpace(tc.key), "\n") {
					if len(line) > 8 && !strings.HasPrefix(line, "-----BEGIN") {
						mustNotContain(t, "page", p.body, line)
					}
				}
				mustNotContain(t, "page", p.body, "-----END")
				if n, _ := e.st.ListSSHKeys(context.Background(), mustSlug(t, ghSlug)); len(n) != 1 {
					t.Errorf("%d SSH keys stored after a refused one, want 1", len(n))
				}
			})
		}
	})
	t.Run("remove", func(t *testing.T) {
		p := b.submit(t, "/projects/"+ghSlug+"/ssh-keys/remove", url.Values{"hostname": {"deploy.example.com"}, "fingerprint": {stored[0].FingerprintMD5}})
		if p.status != http.StatusSeeOther || !strings.Contains(p.location(), "done=ssh-key-removed") {
			t.Fatalf("Remove = %d to %q", p.status, p.location())
		}
		if n, _ := e.st.ListSSHKeys(context.Background(), mustSlug(t, ghSlug)); len(n) != 0 {
			t.Errorf("%d SSH keys after Remove", len(n))
		}
		mustContain(t, "page", b.follow(t, p).body, "No additional SSH keys.")
	})
}

func TestAdvancedSettings(t *testing.T) {
	e := newEnv(t)
	e.follow(t, ghSlug)
	b := e.browser(t)
	b.signInToken(t)
	b.get(t, "/projects/"+ghSlug)

	p := b.submit(t, "/projects/"+ghSlug+"/settings", url.Values{"build_prs_only": {"on"}, "set_github_status": {"on"}})
	if p.status != http.StatusSeeOther || p.location() != "/projects/"+ghSlug+"?done=settings-saved#advanced" {
		t.Fatalf("Save = %d to %q", p.status, p.location())
	}
	want := forgelink.Settings{BuildPRsOnly: true, SetGitHubStatus: true}
	if diff := cmp.Diff(want, e.project(t, ghSlug).Settings); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
	page := b.follow(t, p)
	mustContain(t, "page", page.body, "Settings saved.", `id="build_prs_only" name="build_prs_only" value="on" checked`,
		`id="set_github_status" name="set_github_status" value="on" checked`)
	mustNotContain(t, "page", page.body, `id="build_fork_prs" name="build_fork_prs" value="on" checked`)

	// Unticking everything turns everything off.
	b.submit(t, "/projects/"+ghSlug+"/settings", nil)
	if diff := cmp.Diff(forgelink.Settings{}, e.project(t, ghSlug).Settings); diff != "" {
		t.Errorf("settings after unticking all (-want +got):\n%s", diff)
	}

	t.Run("not followed keeps the form", func(t *testing.T) {
		p := b.submit(t, "/projects/gh/octo-org/other/settings", url.Values{"build_fork_prs": {"on"}})
		if p.status != http.StatusNotFound {
			t.Errorf("status = %d, want 404", p.status)
		}
		mustContain(t, "page", p.body, "<h1>octo-org/other</h1>")
	})
}

// TestCSRF sends every form without its token and with a wrong one: 403,
// and nothing changes, in the store or on the VCS.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	e.follow(t, ghSlug)
	b := e.browser(t)
	b.signInToken(t)
	b.get(t, "/projects/"+ghSlug)
	pr := e.project(t, ghSlug)
	forms := []struct {
		path string
		form url.Values
	}{
		{"/projects/gh/octo-org/other/follow", url.Values{"from": {"repos"}}},
		{"/projects/" + ghSlug + "/unfollow", nil},
		{"/projects/" + ghSlug + "/checkout-keys", url.Values{"type": {"deploy-key"}}},
		{"/projects/" + ghSlug + "/checkout-keys/remove", url.Values{"fingerprint": {pr.DeployKey.FingerprintMD5}}},
		{"/projects/" + ghSlug + "/ssh-keys", url.Values{"hostname": {"x.example.com"}, "private_key": {rsaPEM(t)}}},
		{"/projects/" + ghSlug + "/ssh-keys/remove", url.Values{"hostname": {""}, "fingerprint": {pr.DeployKey.FingerprintMD5}}},
		{"/projects/" + ghSlug + "/settings", url.Values{"build_prs_only": {"on"}, "build_fork_prs": {"on"}}},
		{"/logout", nil},
	}
	state := func() string {
		pr := e.project(t, ghSlug)
		keys, _ := e.st.ListCheckoutKeys(context.Background(), pr.Slug)
		ssh, _ := e.st.ListSSHKeys(context.Background(), pr.Slug)
		projects, _ := e.st.ListProjects(context.Background())
		return strings.Join([]string{string(pr.State), pr.DeployKey.FingerprintMD5, boolStr(pr.Settings.BuildPRsOnly), boolStr(pr.Settings.BuildForkPRs),
			boolStr(pr.Settings.SetGitHubStatus), itoa(len(keys)), itoa(len(ssh)), itoa(len(projects)),
			itoa(len(e.gh.DeployKeys(repo))), itoa(len(e.gh.Hooks(repo))), itoa(len(e.gh.UserKeys()))}, " ")
	}
	before := state()
	for _, f := range forms {
		for _, token := range []string{"", "wrong-token", b.csrf + "x"} {
			t.Run(f.path+" "+token, func(t *testing.T) {
				form := url.Values{}
				for k, v := range f.form {
					form[k] = v
				}
				if token != "" {
					form.Set("csrf_token", token)
				}
				p := b.post(t, f.path, form)
				if p.status != http.StatusForbidden {
					t.Errorf("status = %d, want 403", p.status)
				}
				if f.path != "/logout" {
					mustContain(t, "page", p.body, "Nothing was changed")
					checkHeaders(t, f.path, p.header, true)
				}
				if after := state(); after != before {
					t.Errorf("state changed:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
	}
	// The session is still good, and the right token works.
	if p := b.submit(t, "/projects/"+ghSlug+"/settings", url.Values{"build_fork_prs": {"on"}}); p.status != http.StatusSeeOther {
		t.Errorf("with the right token: %d, want 303", p.status)
	}
	t.Run("cross-origin with the right token", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/projects/"+ghSlug+"/settings",
			strings.NewReader(url.Values{"csrf_token": {b.csrf}, "build_prs_only": {"on"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if p := b.do(t, req); p.status != http.StatusForbidden {
			t.Errorf("status = %d, want 403", p.status)
		}
		if e.project(t, ghSlug).Settings.BuildPRsOnly {
			t.Error("a cross-origin POST changed the settings")
		}
	})
	t.Run("too large", func(t *testing.T) {
		p := b.submit(t, "/projects/"+ghSlug+"/ssh-keys", url.Values{"private_key": {strings.Repeat("A", 300<<10)}})
		if p.status != http.StatusRequestEntityTooLarge {
			t.Errorf("status = %d, want 413", p.status)
		}
	})
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func itoa(n int) string { return strconv.Itoa(n) }
