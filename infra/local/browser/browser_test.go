package browser_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"forgelink/infra/local/server"
	"forgelink/shared/config"
	"forgelink/shared/forgelink"
	"forgelink/shared/vcsfake"
)

const (
	apiToken      = "fl_browser_test_token_0123456789"
	oauthClientID = "Iv1.browser0123456789"
	repo          = "octo-org/hello-world"
	slugPath      = "gh/octo-org/hello-world"
)

// chromiumPath is Debian's chromium (or $CHROMIUM). A missing browser fails
// the test: .ci/run installs it, and a skip would hide that it did not.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is not installed: apt-get install chromium (.ci/run installs it), or set CHROMIUM to the browser's path")
	return ""
}

// screenshotDir is where the pages' PNGs go: FORGELINK_SCREENSHOTS, or
// testdata/screenshots beside this test (ignored by git). t.TempDir would
// delete them.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FORGELINK_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// stack is the one-process server, as make run builds it, behind httptest,
// with the fake GitHub.
type stack struct {
	url string
	gh  *vcsfake.GitHub
	srv *server.Server
}

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{gh: vcsfake.NewGitHub(t)}
	s.gh.AddRepo(repo, "main", true)
	s.gh.AddRepo("octo-org/website", "main", false)
	s.gh.SetOAuthClient(oauthClientID, "browser-oauth-secret")
	var h http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	s.url = ts.URL
	env := map[string]string{
		"FORGELINK_PUBLIC_URL":       ts.URL,
		"FORGELINK_DATA":             t.TempDir(),
		"FORGELINK_API_TOKEN":        apiToken,
		"GITHUB_API_URL":             s.gh.URL,
		"GITHUB_TOKEN":               s.gh.Token,
		"GITHUB_WEB_URL":             s.gh.WebURL,
		"GITHUB_OAUTH_CLIENT_ID":     oauthClientID,
		"GITHUB_OAUTH_CLIENT_SECRET": "browser-oauth-secret",
		"FORGELINK_SWEEP_INTERVAL":   "0",
	}
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{RetryBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	s.srv = srv
	h = srv.Handler()
	return s
}

// syncBuffer keeps the browser's output for a failure's log.
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

// newBrowser starts headless Chromium with a fresh profile, flags for a
// closed network and root, and returns a tab's context.
func newBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	profile, err := os.MkdirTemp("", "forgelink-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			var lines []string
			for _, l := range strings.Split(out.String(), "\n") {
				if !strings.Contains(l, "dbus") {
					lines = append(lines, l)
				}
			}
			t.Logf("chromium's output (without dbus complaints):\n%s", strings.Join(lines, "\n"))
		}
		os.RemoveAll(profile)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(out),
	)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start chromium (%s): %v\n%s", path, err, out)
	}
	return tab
}

// noScript turns JavaScript off in the tab: every page and form must work
// without it.
var noScript = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
	return err
})

// rsaPEM is a new RSA private key in PEM, as ssh-keygen -m PEM writes it.
func rsaPEM(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

// TestSettingsPagesInChromium clicks through the settings pages with
// JavaScript off, as a person would: sign in with the API token, follow a
// repository, Add Deploy Key, paste an RSA PEM key under Additional SSH
// Keys, tick "Only build pull requests" and Save, each checked on the page
// and in the store; then shows a pipeline and org access, the project page
// at a phone's width, and with JavaScript on, the copy buttons and no
// Content-Security-Policy violation. Every page is saved as a PNG.
func TestSettingsPagesInChromium(t *testing.T) {
	started := time.Now()
	chromium := chromiumPath(t)
	shots := screenshotDir(t)
	s := newStack(t)
	ctx := newBrowser(t, chromium)
	bg := context.Background()
	slug, _ := forgelink.ParseSlug(slugPath)

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// submitStatus runs steps, clicks sel and waits for the page that
	// loads, which must answer status.
	submitStatus := func(what string, status int64, sel chromedp.CSS, steps ...chromedp.Action[chromedp.Void]) *network.Response {
		t.Helper()
		resp, err := chromedp.RunResponse(ctx, append(steps, chromedp.Click(sel, chromedp.NodeVisible))...)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if resp.Status != status {
			t.Fatalf("%s: the page answered %d (%s), want %d", what, resp.Status, resp.URL, status)
		}
		return resp
	}
	// submit clicks a form's button and waits for the page its 303 leads to.
	submit := func(what string, sel chromedp.CSS, steps ...chromedp.Action[chromedp.Void]) *network.Response {
		t.Helper()
		return submitStatus(what, http.StatusOK, sel, steps...)
	}
	text := func(sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel, chromedp.NodeVisible))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	html := func() string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	contains := func(what, got string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s lacks %q", what, w)
			}
		}
	}

	// Sign-in page, JavaScript off from here on.
	do("open the sign-in page", noScript, chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	if h1 := text("h1"); h1 != "Sign in to forgelink" {
		t.Fatalf("h1 = %q", h1)
	}
	contains("sign-in page", text("main"), "Sign in with GitHub", "API token", "Sign in")
	shot("1-sign-in.png")

	// The token field is reached with the keyboard: Tab from the top.
	reached := false
	for range 8 {
		do("tab", chromedp.KeyEvent("\t"))
		id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement ? document.activeElement.id : ""`))
		if err != nil {
			t.Fatal(err)
		}
		if id == "token" {
			reached = true
			break
		}
	}
	if !reached {
		t.Error("Tab never reached the API token field")
	}

	// A wrong token: the page again, with the error, no session.
	submitStatus("sign in with a wrong token", http.StatusUnauthorized, `form[action="/login"] button[type="submit"]`, chromedp.SendKeys(chromedp.ID("token"), "fl_wrong_0123456789"))
	contains("sign-in page after a wrong token", text(`[role="alert"]`), "not this forgelink's API token")

	// Sign in.
	submit("sign in", `form[action="/login"] button[type="submit"]`, chromedp.SendKeys(chromedp.ID("token"), apiToken))
	if h1 := text("h1"); h1 != "Repositories" {
		t.Fatalf("after sign-in h1 = %q", h1)
	}
	contains("repositories", text("main"), "octo-org/hello-world", "octo-org/website")
	shot("2-repositories.png")

	// Follow.
	submit("follow", `form[action="/projects/gh/octo-org/hello-world/follow"] button`)
	if h1 := text("h1"); h1 != "octo-org/hello-world" {
		t.Fatalf("after follow h1 = %q", h1)
	}
	contains("project page", text(".flash"), "Following")
	pr, err := s.srv.Store.GetProject(bg, slug)
	if err != nil || pr.State != forgelink.Following {
		t.Fatalf("after follow the store has %+v (%v)", pr, err)
	}
	if n := len(s.gh.DeployKeys(repo)); n != 1 {
		t.Errorf("GitHub has %d deploy keys after follow, want 1", n)
	}
	contains("project page", text("#checkout-keys + p + ul"), pr.DeployKey.FingerprintMD5, pr.DeployKey.FingerprintSHA256)

	// Add Deploy Key.
	submit("Add Deploy Key", `button[value="deploy-key"]`)
	contains("flash", text(".flash"), "Deploy key added.")
	keys, err := s.srv.Store.ListCheckoutKeys(bg, slug)
	if err != nil || len(keys) != 1 {
		t.Fatalf("checkout keys stored: %d (%v), want 1 besides the project's", len(keys), err)
	}
	if n := len(s.gh.DeployKeys(repo)); n != 2 {
		t.Errorf("GitHub has %d deploy keys, want 2", n)
	}
	contains("checkout keys", text("#checkout-keys + p + ul"), keys[0].FingerprintMD5, keys[0].FingerprintSHA256, pr.DeployKey.FingerprintMD5)

	// Additional SSH Keys: a hostname and a pasted RSA PEM key.
	key := rsaPEM(t)
	submit("Add SSH Key", `#add-ssh-key button[type="submit"]`,
		chromedp.SendKeys(chromedp.ID("hostname"), "deploy.example.com"),
		chromedp.SetValue(chromedp.ID("private_key"), key))
	contains("flash", text(".flash"), "SSH key added.")
	sshKeys, err := s.srv.Store.ListSSHKeys(bg, slug)
	if err != nil || len(sshKeys) != 1 || sshKeys[0].Hostname != "deploy.example.com" {
		t.Fatalf("SSH keys stored: %+v (%v)", sshKeys, err)
	}
	contains("additional SSH keys", text(`section[aria-labelledby="ssh-keys"] ul.keys`), "deploy.example.com", sshKeys[0].FingerprintMD5, sshKeys[0].FingerprintSHA256)
	shown := html()
	for _, line := range strings.Split(strings.TrimSpace(key), "\n")[1:] {
		if strings.Contains(shown, line) {
			t.Fatalf("the page shows the private key's line %q", line)
		}
	}
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.ID("private_key"))); v != "" {
		t.Error("the Private Key field is not empty after adding the key")
	}

	// Advanced Settings: tick "Only build pull requests", Save.
	if checked, _ := chromedp.Run(ctx, chromedp.JavascriptAttribute[bool](chromedp.ID("build_prs_only"), "checked")); checked {
		t.Fatal("Only build pull requests is on before it was ticked")
	}
	submit("Save", `form[action$="/settings"] button[type="submit"]`, chromedp.Click(chromedp.CSS(`label[for="build_prs_only"]`), chromedp.NodeVisible))
	contains("flash", text(".flash"), "Settings saved.")
	checked, err := chromedp.Run(ctx, chromedp.JavascriptAttribute[bool](chromedp.ID("build_prs_only"), "checked"))
	if err != nil || !checked {
		t.Errorf("Only build pull requests is not ticked after Save (%v)", err)
	}
	pr, _ = s.srv.Store.GetProject(bg, slug)
	if !pr.Settings.BuildPRsOnly || !pr.Settings.SetGitHubStatus || pr.Settings.BuildForkPRs || pr.Settings.ForksReceiveSecretEnvVars {
		t.Errorf("settings stored: %+v, want only Only build pull requests and GitHub Status updates on", pr.Settings)
	}

	// A pipeline and its page (the commit statuses' target_url).
	pl, err := s.srv.Store.CreatePipeline(bg, &forgelink.Pipeline{
		ID: uuid.NewString(), Project: slugPath, State: forgelink.PipelineCreated, Trigger: forgelink.TriggerPush,
		Branch: "main", Revision: "6dcb09b5b57875f334f61aebed695e2e4193db5e", Workflows: []string{"build", "deploy"},
		Actor: "octocat", HookID: pr.HookID, DeliveryID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", CreatedAt: time.Now().UTC(),
		Status: forgelink.StatusSuccess, WorkflowStatus: map[string]forgelink.StatusState{"build": forgelink.StatusSuccess, "deploy": forgelink.StatusSuccess},
	})
	if err != nil {
		t.Fatal(err)
	}
	do("open the project", chromedp.Navigate(s.url+"/projects/"+slugPath), chromedp.WaitVisible(chromedp.ID("pipelines")))
	contains("pipelines", text(`section[aria-labelledby="pipelines"]`), "#1", "success", "6dcb09b")
	if alt, _ := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`section[aria-labelledby="badge"] img`), "alt")); alt.Value != "forgelink: passing" {
		t.Errorf("badge alt = %q, want forgelink: passing", alt.Value)
	}
	// JavaScript is really off here: copy.js did not unhide the copy button.
	if hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('button.copy[data-copy="badge-markdown"]').hidden`)); err != nil || !hidden {
		t.Errorf("with JavaScript off the copy button is not hidden (%v): was the script disabled?", err)
	}
	shot("3-project.png")
	submit("open the pipeline", `a[href="/pipelines/`+chromedp.CSS(pl.ID)+`"]`)
	contains("pipeline page", text("main"), "Pipeline 1 of octo-org/hello-world", "6dcb09b5b57875f334f61aebed695e2e4193db5e", "build: success", "deploy: success")
	shot("4-pipeline.png")

	// Org access, with the organization restricting OAuth Apps.
	now := time.Now().UTC()
	pr, _ = s.srv.Store.GetProject(bg, slug)
	pr.Access = &forgelink.ProjectAccess{State: forgelink.AccessRestricted, Since: now, CheckedAt: now, OrgRole: "member",
		Detail: "GitHub: the octo-org organization has enabled OAuth App access restrictions"}
	if err := s.srv.Store.UpdateProject(bg, pr); err != nil {
		t.Fatal(err)
	}
	submit("open org access", `nav[aria-label="Main"] a[href="/org-access"]`)
	link, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`a.button`), "href"))
	if want := s.gh.WebURL + "/settings/connections/applications/" + oauthClientID; err != nil || link.Value != want {
		t.Errorf("org access link = %q (%v), want %q", link.Value, err, want)
	}
	if got := text("a.button"); got != "Request access" {
		t.Errorf("org access link text = %q, want Request access", got)
	}
	shot("5-org-access.png")

	// The project page at a phone's width: nothing wider than the screen.
	do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(s.url+"/projects/"+slugPath), chromedp.WaitVisible(chromedp.ID("pipelines")))
	wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if err != nil || wide {
		t.Errorf("at 390 px the page scrolls sideways (%v)", err)
	}
	shot("6-project-phone.png")

	// JavaScript on, in a new tab: the copy buttons appear, and no
	// Content-Security-Policy violation is reported.
	js, cancel := chromedp.NewContext(ctx)
	defer cancel()
	watch := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__csp = []; document.addEventListener("securitypolicyviolation", function (e) { window.__csp.push(e.violatedDirective + " " + e.blockedURI); });`,
		})
		return err
	})
	if err := chromedp.Do(js, watch, chromedp.Navigate(s.url+"/projects/"+slugPath), chromedp.WaitVisible(chromedp.CSS(`button.copy[data-copy="badge-markdown"]`))); err != nil {
		t.Fatalf("with JavaScript the copy button does not show: %v", err)
	}
	violations, err := chromedp.Run(js, chromedp.Evaluate[[]string](`window.__csp`))
	if err != nil || len(violations) > 0 {
		t.Errorf("Content-Security-Policy violations: %v (%v)", violations, err)
	}
	t.Logf("browser test: %s; screenshots in %s", time.Since(started).Round(time.Millisecond), shots)
}
