package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"forgelink/infra/local/server"
	"forgelink/shared/config"
	"forgelink/shared/forgelink"
	"forgelink/shared/vcsfake"
)

const keysE2EToken = "fl_keys_e2e_token_0123456789"

// keysLogs collects the server's log output.
type keysLogs struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *keysLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *keysLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// keysStack is the one-process server on fake GitHub and Bitbucket APIs,
// keeping every log line and every answer for the never-leaves check.
type keysStack struct {
	url  string
	srv  *server.Server
	gh   *vcsfake.GitHub
	bb   *vcsfake.Bitbucket
	logs *keysLogs

	mu        sync.Mutex
	responses []string // all answers but checkout material
	material  []string
}

func newKeysStack(t *testing.T) *keysStack {
	t.Helper()
	s := &keysStack{gh: vcsfake.NewGitHub(t), bb: vcsfake.NewBitbucket(t), logs: &keysLogs{}}
	s.gh.AddRepo("octo-org/hello-world", "main", true)
	s.bb.AddRepo("octo-org/hello-world", "master", true)
	var h http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	s.url = ts.URL
	env := map[string]string{
		"FORGELINK_PUBLIC_URL": ts.URL,
		"FORGELINK_DATA":       t.TempDir(),
		"FORGELINK_API_TOKEN":  keysE2EToken,
		"FORGELINK_LOG_LEVEL":  "debug",
		"GITHUB_API_URL":       s.gh.URL,
		"GITHUB_TOKEN":         s.gh.Token,
		"BITBUCKET_API_URL":    s.bb.URL,
		"BITBUCKET_TOKEN":      s.bb.Token,
	}
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(cfg, log, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	s.srv = srv
	h = srv.Handler()
	return s
}

// send makes a request with header h and returns the status and body.
func (s *keysStack) send(t *testing.T, method, path, body string, h http.Header) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
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
	s.mu.Lock()
	if strings.HasSuffix(path, "/checkout") && resp.StatusCode == 200 {
		s.material = append(s.material, string(b))
	} else {
		s.responses = append(s.responses, string(b))
	}
	s.mu.Unlock()
	return resp.StatusCode, b
}

// api calls the API with the token and decodes the answer into v, failing
// unless the status is want.
func (s *keysStack) api(t *testing.T, method, path, body string, want int, v any) {
	t.Helper()
	status, b := s.send(t, method, path, body, http.Header{"Circle-Token": {keysE2EToken}})
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, status, b, want)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

type e2eKey struct {
	PublicKey    string `json:"public_key"`
	PublicKeyV2  string `json:"public-key"`
	Type         string `json:"type"`
	Fingerprint  string `json:"fingerprint"`
	SHA256       string `json:"fingerprint_sha256"`
	Preferred    bool   `json:"preferred"`
	Login        string `json:"login"`
	Instructions string `json:"instructions"`
}

type e2eCheckout struct {
	CloneURL       string `json:"clone_url"`
	Revision       string `json:"revision"`
	KnownHosts     string `json:"known_hosts"`
	KnownHostsNote string `json:"known_hosts_note"`
	CheckoutKey    *struct {
		Type        string `json:"type"`
		Fingerprint string `json:"fingerprint"`
		PrivateKey  string `json:"private_key"`
	} `json:"checkout_key"`
	SSHKeys []struct {
		Hostname   string `json:"hostname"`
		PrivateKey string `json:"private_key"`
	} `json:"ssh_keys"`
}

// TestKeysEndToEnd follows a repository on each VCS through the
// one-process server, adds deploy, user and additional SSH keys, fetches a
// pipeline's checkout material with a runner token once, deletes the keys
// (from the fake VCS too), and finally checks that no answer but the
// checkout material and no log line holds a private key or webhook secret.
func TestKeysEndToEnd(t *testing.T) {
	s := newKeysStack(t)
	const repo = "octo-org/hello-world"
	var submitted []string
	for _, vcs := range []string{"gh", "bb"} {
		t.Run(vcs, func(t *testing.T) {
			v1 := "/api/v1.1/project/" + vcs + "/" + repo
			v2 := "/api/v2/project/" + vcs + "/" + repo
			deployKeys := func() []vcsfake.Key {
				if vcs == "gh" {
					return s.gh.DeployKeys(repo)
				}
				return s.bb.DeployKeys(repo)
			}

			s.api(t, "POST", v1+"/follow", "", http.StatusCreated, nil)
			var keys []e2eKey
			s.api(t, "GET", v1+"/checkout-key", "", 200, &keys)
			if len(keys) != 1 || keys[0].Type != "deploy-key" || !keys[0].Preferred {
				t.Fatalf("after follow, checkout keys = %+v, want the one deploy key", keys)
			}

			var dk e2eKey
			s.api(t, "POST", v1+"/checkout-key", `{"type":"deploy-key"}`, http.StatusCreated, &dk)
			if got := deployKeys(); len(got) != 2 || !strings.HasPrefix(dk.PublicKey, got[1].Key) {
				t.Fatalf("deploy keys on the VCS = %+v, want the new one %q added", got, dk.PublicKey)
			}

			var uk e2eKey
			s.api(t, "POST", v2+"/checkout-key", `{"type":"user-key"}`, http.StatusCreated, &uk)
			if vcs == "gh" {
				if got := s.gh.UserKeys(); len(got) != 1 || uk.Login != vcsfake.GitHubLogin {
					t.Fatalf("GitHub user keys = %+v, login %q; want the new key of %s", got, uk.Login, vcsfake.GitHubLogin)
				}
			} else if !strings.Contains(uk.Instructions, "Bitbucket") || !strings.HasPrefix(uk.PublicKeyV2, "ssh-") {
				t.Fatalf("Bitbucket user key = %+v, want a public key with instructions", uk)
			}

			sshKey := e2eECDSAKey(t)
			submitted = append(submitted, sshKey)
			body, _ := json.Marshal(map[string]string{"hostname": "deploy.example.com", "private_key": sshKey})
			s.api(t, "POST", v1+"/ssh-key", string(body), http.StatusCreated, nil)
			s.api(t, "POST", v1+"/ssh-key", string(body), http.StatusOK, nil)

			// A pipeline's build fetches its checkout material once.
			slug, _ := forgelink.ParseSlug(vcs + "/" + repo)
			p, err := s.srv.Store.CreatePipeline(t.Context(), &forgelink.Pipeline{
				Project: slug.String(), State: forgelink.PipelineCreated, Trigger: forgelink.TriggerPush, Branch: "main",
				Revision: "6dcb09b5b57875f334f61aebed695e2e4193db5e", SecretsExposed: true, HookID: "hk", DeliveryID: "d-" + vcs,
				CreatedAt: time.Now().UTC(),
			})
			if err != nil {
				t.Fatal(err)
			}
			var tok struct{ Token string }
			s.api(t, "POST", "/api/v2/pipeline/"+p.ID+"/runner-token", "", http.StatusCreated, &tok)
			bearer := http.Header{"Authorization": {"Bearer " + tok.Token}}
			status, b := s.send(t, "GET", "/api/v2/pipeline/"+p.ID+"/checkout", "", bearer)
			if status != 200 {
				t.Fatalf("checkout: %d %s", status, b)
			}
			var c e2eCheckout
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			if c.CheckoutKey == nil || c.CheckoutKey.Fingerprint != uk.Fingerprint || !strings.Contains(c.CheckoutKey.PrivateKey, "PRIVATE KEY") {
				t.Errorf("checkout key = %+v, want the user key %s with its private half", c.CheckoutKey, uk.Fingerprint)
			}
			if len(c.SSHKeys) != 1 || c.SSHKeys[0].PrivateKey != sshKey || c.Revision != p.Revision {
				t.Errorf("checkout = %+v, want the revision and the ssh key", c)
			}
			if vcs == "gh" {
				// The fake's API URL is not api.github.com: an Enterprise server.
				if c.KnownHosts != "" || c.KnownHostsNote == "" || !strings.HasSuffix(c.CloneURL, ":"+repo+".git") {
					t.Errorf("GitHub Enterprise checkout: known_hosts %q, note %q, clone %s", c.KnownHosts, c.KnownHostsNote, c.CloneURL)
				}
			} else if !strings.HasPrefix(c.KnownHosts, "bitbucket.org ssh-ed25519 ") || c.CloneURL != "git@bitbucket.org:"+repo+".git" {
				t.Errorf("Bitbucket checkout: known_hosts %q, clone %s", c.KnownHosts, c.CloneURL)
			}
			if status, _ := s.send(t, "GET", "/api/v2/pipeline/"+p.ID+"/checkout", "", bearer); status != http.StatusUnauthorized {
				t.Errorf("second checkout with the token: %d, want 401", status)
			}

			// Deleting keys removes them from the VCS; the last one is reported.
			s.api(t, "DELETE", v2+"/checkout-key/"+uk.Fingerprint, "", 200, nil)
			if vcs == "gh" && len(s.gh.UserKeys()) != 0 {
				t.Errorf("GitHub user keys after delete = %+v, want none", s.gh.UserKeys())
			}
			s.api(t, "DELETE", v1+"/checkout-key/"+dk.Fingerprint, "", 200, nil)
			if got := deployKeys(); len(got) != 1 {
				t.Errorf("deploy keys after delete = %+v, want the follow-time one", got)
			}
			var last struct {
				Message       string `json:"message"`
				RemainingKeys int    `json:"remaining_keys"`
				Warning       string `json:"warning"`
			}
			s.api(t, "DELETE", v1+"/checkout-key/"+keys[0].Fingerprint, "", 200, &last)
			if last.Message != "ok" || last.RemainingKeys != 0 || last.Warning == "" || len(deployKeys()) != 0 {
				t.Errorf("deleting the last key: %+v, VCS keys %v; want ok, 0 left, a warning, none on the VCS", last, deployKeys())
			}
			s.api(t, "DELETE", v1+"/ssh-key", `{"fingerprint":"`+c.CheckoutKey.Fingerprint+`"}`, http.StatusNotFound, nil)
		})
	}

	var me struct{ Login, ID string }
	s.api(t, "GET", "/api/v2/me", "", 200, &me)
	if me.Login != vcsfake.GitHubLogin {
		t.Errorf("/api/v2/me login = %q, want %s", me.Login, vcsfake.GitHubLogin)
	}
	if status, _ := s.send(t, "GET", "/api/v2/me", "", http.Header{}); status != http.StatusUnauthorized {
		t.Errorf("/api/v2/me without a token: %d, want 401", status)
	}

	s.checkNothingLeaked(t, repo, submitted)
}

func e2eECDSAKey(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// checkNothingLeaked greps every answer but the checkout material, and
// every log line, for "PRIVATE KEY", the base64 lines of every private key
// served or submitted, and the webhook secrets the VCSs received.
func (s *keysStack) checkNothingLeaked(t *testing.T, repo string, submitted []string) {
	t.Helper()
	s.mu.Lock()
	responses, material := append([]string(nil), s.responses...), append([]string(nil), s.material...)
	s.mu.Unlock()
	secrets := append([]string(nil), submitted...)
	for _, m := range material {
		var c e2eCheckout
		if err := json.Unmarshal([]byte(m), &c); err != nil {
			t.Fatal(err)
		}
		if c.CheckoutKey != nil {
			secrets = append(secrets, c.CheckoutKey.PrivateKey)
		}
		for _, k := range c.SSHKeys {
			secrets = append(secrets, k.PrivateKey)
		}
	}
	if len(material) == 0 || len(secrets) < 4 {
		t.Fatalf("only %d checkout answers and %d secrets to look for", len(material), len(secrets))
	}
	var needles []string
	for _, sec := range secrets {
		for _, line := range strings.Split(sec, "\n") {
			if line = strings.TrimSpace(line); len(line) >= 24 && !strings.HasPrefix(line, "-----") {
				needles = append(needles, line)
			}
		}
	}
	// The webhook secrets are still on the hooks (unfollow was not called).
	for _, h := range append(s.gh.Hooks(repo), s.bb.Hooks(repo)...) {
		if h.Secret == "" {
			t.Fatal("a hook without a secret")
		}
		needles = append(needles, h.Secret)
	}
	hay := append(responses, s.logs.String())
	if !strings.Contains(s.logs.String(), "checkout material served") {
		t.Error("the logs were not captured")
	}
	for i, h := range hay {
		if strings.Contains(h, "PRIVATE KEY") {
			t.Errorf("output %d contains \"PRIVATE KEY\": %.200s", i, h)
		}
		for _, n := range needles {
			if strings.Contains(h, n) {
				t.Errorf("output %d contains secret material %.12q...", i, n)
			}
		}
	}
}

// TestUnfollowRemovesAddedKeys: keys added through the checkout-key API go
// with the project, and following again after the project's own deploy key
// was deleted installs a new one.
func TestUnfollowRemovesAddedKeys(t *testing.T) {
	s := newStack(t)
	const repo, slug = "octo-org/hello-world", "gh/octo-org/hello-world"
	if status, body := s.call(t, http.MethodPost, "/api/v1.1/project/"+slug+"/follow"); status != http.StatusCreated {
		t.Fatalf("follow: %d %v", status, body)
	}
	projectKey := s.gh.DeployKeys(repo)[0]
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1.1/project/"+slug+"/checkout-key", strings.NewReader(`{"type":"deploy-key"}`))
	req.Header.Set("Circle-Token", apiToken)
	req.Header.Set("Content-Type", "application/json")
	if status, body := do(t, req); status != http.StatusCreated {
		t.Fatalf("add deploy key: %d %v", status, body)
	}
	if got := len(s.gh.DeployKeys(repo)); got != 2 {
		t.Fatalf("deploy keys on GitHub = %d, want 2", got)
	}
	// Delete the project's own deploy key, then follow again: a new one is installed.
	status, body := s.call(t, http.MethodGet, "/api/v2/project/"+slug)
	fp := body["deploy_key"].(map[string]any)["fingerprint"].(string)
	if status, body := s.call(t, http.MethodDelete, "/api/v1.1/project/"+slug+"/checkout-key/"+fp); status != http.StatusOK {
		t.Fatalf("delete project key: %d %v", status, body)
	}
	if status, body = s.call(t, http.MethodPost, "/api/v1.1/project/"+slug+"/follow"); status != http.StatusOK {
		t.Fatalf("follow again: %d %v", status, body)
	}
	keys := s.gh.DeployKeys(repo)
	if len(keys) != 2 || keys[0].ID == projectKey.ID && keys[1].ID == projectKey.ID {
		t.Fatalf("deploy keys after refollow = %+v, want the added key and a new project key", keys)
	}
	if status, body := s.call(t, http.MethodDelete, "/api/v1.1/project/"+slug+"/follow"); status != http.StatusOK {
		t.Fatalf("unfollow: %d %v", status, body)
	}
	if keys, hooks := s.gh.DeployKeys(repo), s.gh.Hooks(repo); len(keys) != 0 || len(hooks) != 0 {
		t.Errorf("after unfollow: keys %+v hooks %+v, want none", keys, hooks)
	}
}
