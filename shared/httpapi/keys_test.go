package httpapi

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"forgelink/shared/apiauth"
	"forgelink/shared/bitbucket"
	"forgelink/shared/bolt"
	"forgelink/shared/follow"
	"forgelink/shared/forgelink"
	"forgelink/shared/github"
	"forgelink/shared/keysvc"
	"forgelink/shared/sealer"
	"forgelink/shared/vcsfake"
)

const (
	keysRepo       = "octo-org/hello-world"
	ghSlugPath     = "gh/octo-org/hello-world"
	bbSlugPath     = "bb/octo-org/hello-world"
	followerToken  = "tok-follower-0123456789"
	strangerToken  = "tok-stranger-0123456789"
	followerLogin  = "local"
	keysPipelineID = "5034460f-c7c4-4c43-9457-de07e2029e7b"
	forkPipelineID = "0d6f7b0e-56a7-4e0b-9d3c-3c2c6f1a9d11"
)

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of a
// logger.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tokenUsers authenticates several users by token.
type tokenUsers map[string]string

func (u tokenUsers) Authenticate(ctx context.Context, token string) (*apiauth.User, error) {
	if login, ok := u[token]; ok {
		return &apiauth.User{Login: login}, nil
	}
	return nil, forgelink.Errorf(forgelink.Unauthorized, "invalid API token")
}

// keysEnv is the Keys handler, mounted in front of Projects, on a real
// bolt store and local sealer, with fake GitHub and Bitbucket APIs. Both
// projects are followed by followerLogin. Every answer and log line is
// kept for the never-leaves checks.
type keysEnv struct {
	store *bolt.Store
	sl    forgelink.Sealer
	gh    *vcsfake.GitHub
	bb    *vcsfake.Bitbucket
	svc   *keysvc.Service
	h     http.Handler
	logs  *lockedBuffer

	mu        sync.Mutex
	responses []string // every answer but the checkout material's
	material  []string // checkout material answers
}

func newKeysEnv(t *testing.T) *keysEnv {
	t.Helper()
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
	e := &keysEnv{store: st, sl: sealer.NewEnvelope(kek), gh: vcsfake.NewGitHub(t), bb: vcsfake.NewBitbucket(t), logs: &lockedBuffer{}}
	e.gh.AddRepo(keysRepo, "main", true)
	e.bb.AddRepo(keysRepo, "master", true)
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	forges := func(ctx context.Context, vcs forgelink.VCS) (forgelink.Forge, error) {
		if vcs == forgelink.Bitbucket {
			return bitbucket.NewForge(e.bb.URL, e.bb.Token, nil)
		}
		return github.NewForge(e.gh.URL, e.gh.Token, nil)
	}
	fl := &follow.Service{Store: st, Sealer: e.sl, Forges: forges, Log: log}
	for _, p := range []string{ghSlugPath, bbSlugPath} {
		slug, _ := forgelink.ParseSlug(p)
		if _, err := fl.Follow(t.Context(), slug, followerLogin, "https://ci.example.com"); err != nil {
			t.Fatalf("follow %s: %v", p, err)
		}
	}
	auth := tokenUsers{followerToken: followerLogin, strangerToken: "stranger"}
	e.svc = &keysvc.Service{Store: st, Keys: st, Pipelines: st, Sealer: e.sl, Forges: forges, Log: log}
	projects := &Projects{Store: st, Pipelines: st, Follow: fl, Auth: auth, Log: log}
	keys := &Keys{Service: e.svc, Auth: auth, Log: log}
	e.h = keys.Handler(projects.Handler())
	return e
}

// addPipeline stores a pipeline of the GitHub project.
func (e *keysEnv) addPipeline(t *testing.T, id string, fork bool) {
	t.Helper()
	p := &forgelink.Pipeline{
		ID: id, Project: ghSlugPath, State: forgelink.PipelineCreated, Trigger: forgelink.TriggerPush,
		Branch: "main", Revision: "6dcb09b5b57875f334f61aebed695e2e4193db5e", SecretsExposed: !fork, Fork: fork,
		HookID: "hk", DeliveryID: "d-" + id, CreatedAt: time.Now().UTC(),
	}
	if fork {
		p.Trigger, p.Branch, p.PRNumber = forgelink.TriggerPullRequest, "pull/7", 7
	}
	if _, err := e.store.CreatePipeline(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

// call sends a request with an API token ("" for none) and returns the
// status and raw body, which it keeps.
func (e *keysEnv) call(t *testing.T, token, method, path, body string) (int, []byte) {
	t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.Header.Set("Circle-Token", token)
	}
	return e.serve(t, r)
}

func (e *keysEnv) serve(t *testing.T, r *http.Request) (int, []byte) {
	t.Helper()
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	b := w.Body.Bytes()
	e.mu.Lock()
	if strings.HasSuffix(r.URL.Path, "/checkout") && w.Code == http.StatusOK {
		e.material = append(e.material, string(b))
	} else {
		e.responses = append(e.responses, string(b))
	}
	e.mu.Unlock()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q, want JSON", r.Method, r.URL.Path, ct)
	}
	return w.Code, b
}

// json calls and decodes the answer, failing unless the status is want.
func (e *keysEnv) json(t *testing.T, token, method, path, body string, want int, v any) {
	t.Helper()
	status, b := e.call(t, token, method, path, body)
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, status, b, want)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// The private keys tests submit, in the formats CircleCI accepts.
func ed25519PEM(t testing.TB) string {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ssh.MarshalPrivateKey(k, "")
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(b))
}

func rsaPEM(t testing.TB) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

func ecdsaPEM(t testing.TB) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

func passphrasePEM(t testing.TB) string {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ssh.MarshalPrivateKeyWithPassphrase(k, "", []byte("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(b))
}

func sshKeyBody(hostname, key string) string {
	b, _ := json.Marshal(map[string]string{"hostname": hostname, "private_key": key})
	return string(b)
}

func v1Path(slug, rest string) string { return "/api/v1.1/project/" + slug + rest }
func v2Path(slug, rest string) string { return "/api/v2/project/" + slug + rest }

// TestKeysRoutes drives every route and error of the Keys handler, in
// order: each case sees the state the previous ones left.
func TestKeysRoutes(t *testing.T) {
	e := newKeysEnv(t)
	ed, rsaKey, ec, escaped, locked := ed25519PEM(t), rsaPEM(t), ecdsaPEM(t), ed25519PEM(t), passphrasePEM(t)
	var edFP string
	tests := []struct {
		name   string
		token  string
		method string
		path   string
		body   string
		want   int
		check  func(t *testing.T, b []byte)
	}{
		// Checkout keys, v1.1.
		{"list: the follow-time deploy key", followerToken, "GET", v1Path(ghSlugPath, "/checkout-key"), "", 200, func(t *testing.T, b []byte) {
			keys := decodeList[v1CheckoutKey](t, b)
			if len(keys) != 1 || keys[0].Type != "deploy-key" || !keys[0].Preferred || !strings.HasPrefix(keys[0].FingerprintSHA256, "SHA256:") {
				t.Errorf("keys = %+v, want the one preferred deploy key", keys)
			}
		}},
		{"list without a token", "", "GET", v1Path(ghSlugPath, "/checkout-key"), "", 401, messageSays("API token")},
		{"list with a bad token", "nope-nope-nope-nope", "GET", v1Path(ghSlugPath, "/checkout-key"), "", 401, nil},
		{"list: not followed", followerToken, "GET", v1Path("gh/octo-org/other", "/checkout-key"), "", 404, messageSays("not followed")},
		{"list: bad vcs", followerToken, "GET", v1Path("svn/octo-org/hello-world", "/checkout-key"), "", 400, messageSays("unknown vcs")},
		{"create deploy key", followerToken, "POST", v1Path(ghSlugPath, "/checkout-key"), `{"type":"deploy-key"}`, 201, func(t *testing.T, b []byte) {
			var k v1CheckoutKey
			mustDecode(t, b, &k)
			if k.Type != "deploy-key" || !k.Preferred || !strings.HasPrefix(k.PublicKey, "ssh-ed25519 ") {
				t.Errorf("key = %+v, want a preferred ed25519 deploy key", k)
			}
			if got := e.gh.DeployKeys(keysRepo); len(got) != 2 || !got[1].ReadOnly || !strings.HasPrefix(k.PublicKey, got[1].Key) {
				t.Errorf("GitHub deploy keys = %+v, want a second, read-only one with the new key", got)
			}
		}},
		{"create github user key", followerToken, "POST", v1Path(ghSlugPath, "/checkout-key"), `{"type":"github-user-key"}`, 201, func(t *testing.T, b []byte) {
			var k v1CheckoutKey
			mustDecode(t, b, &k)
			if k.Type != "github-user-key" || !k.Preferred || k.Login != vcsfake.GitHubLogin {
				t.Errorf("key = %+v, want a preferred github-user-key of %s", k, vcsfake.GitHubLogin)
			}
			if got := e.gh.UserKeys(); len(got) != 1 || !strings.HasPrefix(k.PublicKey, got[0].Key) {
				t.Errorf("GitHub user keys = %+v, want the new key", got)
			}
		}},
		{"list: exactly one preferred, the user key", followerToken, "GET", v1Path(ghSlugPath, "/checkout-key"), "", 200, func(t *testing.T, b []byte) {
			keys := decodeList[v1CheckoutKey](t, b)
			var preferred []string
			for _, k := range keys {
				if k.Preferred {
					preferred = append(preferred, k.Type)
				}
			}
			if len(keys) != 3 || len(preferred) != 1 || preferred[0] != "github-user-key" || keys[0].Type != "github-user-key" {
				t.Errorf("keys = %+v, want 3, newest first, the user key the one preferred", keys)
			}
		}},
		{"create: unknown type", followerToken, "POST", v1Path(ghSlugPath, "/checkout-key"), `{"type":"root-key"}`, 400, messageSays("type must be")},
		{"create: unknown field", followerToken, "POST", v1Path(ghSlugPath, "/checkout-key"), `{"kind":"deploy-key"}`, 400, messageSays("unknown field")},
		{"create: bad JSON", followerToken, "POST", v1Path(ghSlugPath, "/checkout-key"), `{"type":`, 400, messageSays("invalid JSON")},
		{"create: unknown key_type", followerToken, "POST", v1Path(ghSlugPath, "/checkout-key?key_type=dsa"), `{"type":"deploy-key"}`, 400, messageSays("key_type")},
		{"create by a user who does not follow", strangerToken, "POST", v1Path(ghSlugPath, "/checkout-key"), `{"type":"deploy-key"}`, 403, messageSays("follows")},
		{"create: token without admin:public_key", followerToken, "POST", v2Path(ghSlugPath, "/checkout-key"), `{"type":"user-key"}`, 403, func(t *testing.T, b []byte) {
			messageSays("admin:public_key")(t, b)
			if got := e.gh.UserKeys(); len(got) != 1 {
				t.Errorf("GitHub user keys = %d after a refused add, want 1", len(got))
			}
		}},
		{"create: GitHub down", followerToken, "POST", v1Path(ghSlugPath, "/checkout-key"), `{"type":"deploy-key"}`, 503, messageSays("try again")},
		{"get by MD5 fingerprint", followerToken, "GET", "", "", 200, nil}, // path set below
		{"get by SHA256 fingerprint", followerToken, "GET", "", "", 200, nil},
		{"get: unknown fingerprint", followerToken, "GET", v1Path(ghSlugPath, "/checkout-key/00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"), "", 404, messageSays("no checkout key")},
		{"PUT is not allowed", followerToken, "PUT", v1Path(ghSlugPath, "/checkout-key"), "", 405, messageSays("GET, POST")},

		// Checkout keys, v2.
		{"v2 list", followerToken, "GET", v2Path(ghSlugPath, "/checkout-key"), "", 200, func(t *testing.T, b []byte) {
			var page struct {
				Items         []v2CheckoutKey `json:"items"`
				NextPageToken *string         `json:"next_page_token"`
			}
			mustDecode(t, b, &page)
			if len(page.Items) != 3 || page.NextPageToken != nil || page.Items[0].Type != "user-key" {
				t.Errorf("page = %+v, want 3 items, the first a user-key, no next page", page)
			}
		}},
		{"v2 list with digest=sha256", followerToken, "GET", v2Path(ghSlugPath, "/checkout-key?digest=sha256"), "", 200, func(t *testing.T, b []byte) {
			var page struct{ Items []v2CheckoutKey }
			mustDecode(t, b, &page)
			for _, k := range page.Items {
				if !strings.HasPrefix(k.Fingerprint, "SHA256:") {
					t.Errorf("fingerprint %q, want SHA256:", k.Fingerprint)
				}
			}
		}},
		{"v2 list with a bad digest", followerToken, "GET", v2Path(ghSlugPath, "/checkout-key?digest=sha1"), "", 400, messageSays("digest")},
		{"bitbucket user key: made, not installed", followerToken, "POST", v2Path(bbSlugPath, "/checkout-key"), `{"type":"user-key"}`, 201, func(t *testing.T, b []byte) {
			var k v2CheckoutKey
			mustDecode(t, b, &k)
			if k.Type != "user-key" || !strings.HasPrefix(k.PublicKey, "ssh-ed25519 ") || !strings.Contains(k.Instructions, "Bitbucket") {
				t.Errorf("key = %+v, want a user-key with instructions to add it by hand", k)
			}
			if got := e.bb.DeployKeys(keysRepo); len(got) != 1 {
				t.Errorf("Bitbucket deploy keys = %d, want only the follow-time one", len(got))
			}
		}},
		{"bitbucket v1.1 names it bitbucket-user-key", followerToken, "GET", v1Path(bbSlugPath, "/checkout-key"), "", 200, func(t *testing.T, b []byte) {
			keys := decodeList[v1CheckoutKey](t, b)
			if len(keys) != 2 || keys[0].Type != "bitbucket-user-key" || !keys[0].Preferred {
				t.Errorf("keys = %+v, want the preferred bitbucket-user-key first", keys)
			}
		}},

		// Additional SSH keys.
		{"add ed25519 OpenSSH key", followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody("deploy.example.com", ed), 201, func(t *testing.T, b []byte) {
			var k sshKeyJSON
			mustDecode(t, b, &k)
			edFP = k.Fingerprint
			if k.Hostname != "deploy.example.com" || !strings.HasPrefix(k.PublicKey, "ssh-ed25519 ") || len(k.Fingerprint) != 47 {
				t.Errorf("key = %+v", k)
			}
		}},
		{"add the same key again: idempotent", followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody("Deploy.Example.com", ed), 200, nil},
		{"add the same key for another host", followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody("10.0.0.7", ed), 201, nil},
		{"add RSA PEM key", followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody("rsa.example.com", rsaKey), 201, nil},
		{"add ECDSA key for every host", followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody("", ec), 201, nil},
		{"add key with escaped newlines", followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody("esc.example.com", strings.ReplaceAll(escaped, "\n", `\n`)), 201, nil},
		{"passphrase-protected key", followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody("h.example.com", locked), 400, messageSays("passphrase")},
		{"truncated key", followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody("h.example.com", ed[:len(ed)/2]), 400, messageSays("cut short")},
		{"public key", followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody("h.example.com", vcsfake.NewPublicKey("me@host")), 400, messageSays("public key")},
		{"DSA key", followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody("h.example.com", "-----BEGIN DSA PRIVATE KEY-----\nMIIBuwIBAAKBgQ==\n-----END DSA PRIVATE KEY-----\n"), 400, messageSays("DSA")},
		{"garbage key", followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody("h.example.com", "not a key at all"), 400, messageSays("PEM")},
		{"no private_key", followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), `{"hostname":"h.example.com"}`, 400, messageSays("private_key is required")},
		{"private_key not a string", followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), `{"hostname":"h","private_key":42}`, 400, messageSays("private_key")},
		{"bad hostname", followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody("not a host/name", ed), 400, messageSays("invalid hostname")},
		{"key pasted as hostname", followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody(ed, ed), 400, messageSays("invalid hostname")},
		{"body too large", followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody("h.example.com", strings.Repeat("A", maxSSHKeyBody)), 413, nil},
		{"add by a user who does not follow", strangerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody("x.example.com", ed), 403, messageSays("follows")},
		{"list ssh keys", followerToken, "GET", v1Path(ghSlugPath, "/ssh-key"), "", 200, func(t *testing.T, b []byte) {
			keys := decodeList[map[string]any](t, b)
			if len(keys) != 5 {
				t.Errorf("got %d keys, want 5", len(keys))
			}
			for _, k := range keys {
				if _, ok := k["private_key"]; ok {
					t.Errorf("listed key has a private_key field: %v", k)
				}
			}
		}},
		{"delete ssh key: ambiguous without hostname", followerToken, "DELETE", v1Path(ghSlugPath, "/ssh-key"), "", 400, messageSays("hostname")}, // body set below
		{"delete ssh key", followerToken, "DELETE", v1Path(ghSlugPath, "/ssh-key"), "", 200, nil},
		{"delete ssh key again", followerToken, "DELETE", v1Path(ghSlugPath, "/ssh-key"), "", 404, nil},
		{"delete ssh key by query", followerToken, "DELETE", v1Path(ghSlugPath, "/ssh-key"), "", 200, nil},
		{"delete ssh key without fingerprint", followerToken, "DELETE", v1Path(ghSlugPath, "/ssh-key"), `{"hostname":"x"}`, 400, messageSays("fingerprint")},

		// Me.
		{"me", followerToken, "GET", "/api/v2/me", "", 200, func(t *testing.T, b []byte) {
			var me meJSON
			mustDecode(t, b, &me)
			if me.Login != vcsfake.GitHubLogin || me.ID != followerLogin || me.VCSType != "github" {
				t.Errorf("me = %+v", me)
			}
		}},
		{"me: bad vcs", followerToken, "GET", "/api/v2/me?vcs=svn", "", 400, nil},
		{"me without a token", "", "GET", "/api/v2/me", "", 401, nil},

		// Runner tokens and checkout material.
		{"runner token for an unknown pipeline", followerToken, "POST", "/api/v2/pipeline/no-such-pipeline/runner-token", "", 404, nil},
		{"runner token by a user who does not follow", strangerToken, "POST", "/api/v2/pipeline/" + keysPipelineID + "/runner-token", "", 403, nil},
		{"checkout without a runner token", "", "GET", "/api/v2/pipeline/" + keysPipelineID + "/checkout", "", 401, messageSays("runner token")},
		{"checkout with an API token", followerToken, "GET", "/api/v2/pipeline/" + keysPipelineID + "/checkout", "", 401, nil},

		// Deleting checkout keys.
		{"delete the github user key", followerToken, "DELETE", "", "", 200, func(t *testing.T, b []byte) {
			if got := e.gh.UserKeys(); len(got) != 0 {
				t.Errorf("GitHub user keys = %+v after delete, want none", got)
			}
		}},
		{"delete the bitbucket user key", followerToken, "DELETE", "", "", 200, func(t *testing.T, b []byte) {
			var d deleteResponse
			mustDecode(t, b, &d)
			if d.Message != "ok" || d.RemainingKeys != 1 || !strings.Contains(d.ManualStep, "Bitbucket") || d.Warning != "" {
				t.Errorf("delete = %+v, want ok, 1 left, a manual step", d)
			}
		}},
		{"delete by a user who does not follow", strangerToken, "DELETE", "", "", 403, nil},
		{"delete the bitbucket deploy key: the last", followerToken, "DELETE", "", "", 200, func(t *testing.T, b []byte) {
			var d deleteResponse
			mustDecode(t, b, &d)
			if d.RemainingKeys != 0 || !strings.Contains(d.Warning, "last checkout key") {
				t.Errorf("delete = %+v, want 0 left and a warning", d)
			}
			if got := e.bb.DeployKeys(keysRepo); len(got) != 0 {
				t.Errorf("Bitbucket deploy keys = %+v, want none", got)
			}
		}},
		{"list after deleting the last key", followerToken, "GET", v1Path(bbSlugPath, "/checkout-key"), "", 200, func(t *testing.T, b []byte) {
			if keys := decodeList[v1CheckoutKey](t, b); len(keys) != 0 {
				t.Errorf("keys = %+v, want none", keys)
			}
		}},
		{"create as a non-admin", followerToken, "POST", v1Path(ghSlugPath, "/checkout-key"), `{"type":"deploy-key"}`, 403, messageSays("admin rights")},

		// Other routes go to Projects.
		{"fallback to Projects", followerToken, "GET", v1Path(ghSlugPath, "/follow"), "", 200, nil},
		{"unknown route", followerToken, "GET", "/api/v2/nothing-here", "", 404, messageSays("no route")},
	}
	e.addPipeline(t, keysPipelineID, false)
	for _, tc := range tests {
		ok := t.Run(tc.name, func(t *testing.T) {
			path, body := tc.path, tc.body
			switch tc.name {
			case "create: token without admin:public_key":
				e.gh.FailNext("POST", "/user/keys", http.StatusNotFound, 1)
			case "create: GitHub down":
				e.gh.FailNext("GET", "/repos/"+keysRepo, http.StatusBadGateway, 1)
			case "get by MD5 fingerprint", "get by SHA256 fingerprint":
				keys, err := e.svc.ListCheckoutKeys(t.Context(), mustSlug(t, ghSlugPath))
				if err != nil {
					t.Fatal(err)
				}
				fp := keys[len(keys)-1].FingerprintMD5
				if tc.name == "get by SHA256 fingerprint" {
					fp = url.PathEscape(keys[len(keys)-1].FingerprintSHA256)
				}
				path = v1Path(ghSlugPath, "/checkout-key/"+fp)
			case "delete ssh key: ambiguous without hostname":
				body = `{"fingerprint":"` + edFP + `"}`
			case "delete ssh key", "delete ssh key again":
				body = `{"fingerprint":"` + edFP + `","hostname":"deploy.example.com"}`
			case "delete ssh key by query":
				path += "?fingerprint=" + url.QueryEscape(edFP) + "&hostname=10.0.0.7"
			case "delete the github user key", "delete the bitbucket user key", "delete by a user who does not follow", "delete the bitbucket deploy key: the last":
				slug := ghSlugPath
				if tc.name != "delete the github user key" {
					slug = bbSlugPath
				}
				keys, err := e.svc.ListCheckoutKeys(t.Context(), mustSlug(t, slug))
				if err != nil || len(keys) == 0 {
					t.Fatalf("keys %v, %v", keys, err)
				}
				path = v1Path(slug, "/checkout-key/"+keys[0].FingerprintMD5)
				if tc.name == "delete the bitbucket user key" || tc.name == "delete by a user who does not follow" {
					path = v2Path(slug, "/checkout-key/"+keys[0].FingerprintMD5)
				}
			case "create as a non-admin":
				e.gh.SetAdmin(keysRepo, false)
				defer e.gh.SetAdmin(keysRepo, true)
			}
			status, b := e.call(t, tc.token, tc.method, path, body)
			if status != tc.want {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, path, status, b, tc.want)
			}
			if status >= 400 {
				var msg struct{ Message string }
				if err := json.Unmarshal(b, &msg); err != nil || msg.Message == "" {
					t.Errorf("error answer %s is not {\"message\": ...}", b)
				}
			}
			if tc.check != nil {
				tc.check(t, b)
			}
		})
		if !ok && strings.HasPrefix(tc.name, "create deploy key") {
			t.FailNow()
		}
	}
	e.checkNothingLeaked(t, ed, rsaKey, ec, escaped, locked)
}

func mustSlug(t *testing.T, s string) forgelink.Slug {
	t.Helper()
	slug, err := forgelink.ParseSlug(s)
	if err != nil {
		t.Fatal(err)
	}
	return slug
}

func mustDecode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func decodeList[T any](t *testing.T, b []byte) []T {
	t.Helper()
	var out []T
	mustDecode(t, b, &out)
	return out
}

// messageSays checks that an error answer's message contains want.
func messageSays(want string) func(t *testing.T, b []byte) {
	return func(t *testing.T, b []byte) {
		t.Helper()
		var m struct{ Message string }
		mustDecode(t, b, &m)
		if !strings.Contains(m.Message, want) {
			t.Errorf("message %q, want it to contain %q", m.Message, want)
		}
	}
}

// TestKeysCheckout mints runner tokens and fetches checkout material: once
// per token, the preferred key, SSH keys only for pipelines with secrets,
// github.com's known_hosts, and none for GitHub Enterprise.
func TestKeysCheckout(t *testing.T) {
	e := newKeysEnv(t)
	e.addPipeline(t, keysPipelineID, false)
	e.addPipeline(t, forkPipelineID, true)
	sshKey := ecdsaPEM(t)
	e.json(t, followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody("deploy.example.com", sshKey), 201, nil)

	mint := func(pipeline string) string {
		t.Helper()
		var tok runnerTokenJSON
		e.json(t, followerToken, "POST", "/api/v2/pipeline/"+pipeline+"/runner-token", "", 201, &tok)
		if !strings.HasPrefix(tok.Token, "flr_") || !tok.SingleUse || tok.ExpiresAt.IsZero() || tok.PipelineID != pipeline {
			t.Fatalf("runner token = %+v", tok)
		}
		return tok.Token
	}
	checkout := func(pipeline, token string) (int, checkoutJSON) {
		t.Helper()
		r := httptest.NewRequest("GET", "/api/v2/pipeline/"+pipeline+"/checkout", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		status, b := e.serve(t, r)
		var c checkoutJSON
		if status == 200 {
			mustDecode(t, b, &c)
		}
		return status, c
	}

	tok := mint(keysPipelineID)
	status, c := checkout(keysPipelineID, tok)
	if status != 200 {
		t.Fatalf("checkout: %d", status)
	}
	if c.CloneURL != "git@github.com:octo-org/hello-world.git" || c.Revision != "6dcb09b5b57875f334f61aebed695e2e4193db5e" ||
		c.Branch != "main" || c.KnownHosts != keysvc.GitHubKnownHosts || c.KnownHostsNote != "" || c.VCSURL != "https://github.com/octo-org/hello-world" {
		t.Errorf("checkout = %+v", c)
	}
	if c.CheckoutKey == nil || c.CheckoutKey.Type != "deploy-key" || !strings.Contains(c.CheckoutKey.PrivateKey, "OPENSSH PRIVATE KEY") {
		t.Fatalf("checkout key = %+v, want the project's deploy key with its private half", c.CheckoutKey)
	}
	if _, err := ssh.ParsePrivateKey([]byte(c.CheckoutKey.PrivateKey)); err != nil {
		t.Errorf("checkout key does not parse: %v", err)
	}
	if len(c.SSHKeys) != 1 || c.SSHKeys[0].Hostname != "deploy.example.com" || c.SSHKeys[0].PrivateKey != sshKey {
		t.Errorf("ssh keys = %+v, want the added key exactly as given", c.SSHKeys)
	}

	// Used: 401, nothing served.
	if status, _ := checkout(keysPipelineID, tok); status != 401 {
		t.Errorf("second checkout with the same token: %d, want 401", status)
	}
	// A token for another pipeline is refused (and used up).
	other := mint(forkPipelineID)
	if status, _ := checkout(keysPipelineID, other); status != 401 {
		t.Errorf("checkout with another pipeline's token: %d, want 401", status)
	}
	if status, _ := checkout(forkPipelineID, other); status != 401 {
		t.Errorf("checkout with a token used on the wrong pipeline: %d, want 401", status)
	}
	// A fork's pipeline without secrets gets the checkout key only.
	status, c = checkout(forkPipelineID, mint(forkPipelineID))
	if status != 200 || c.CheckoutKey == nil || len(c.SSHKeys) != 0 {
		t.Errorf("fork checkout: %d %+v, want the checkout key and no ssh keys", status, c)
	}
	// After a user key is added it is the one served.
	var uk v1CheckoutKey
	e.json(t, followerToken, "POST", v1Path(ghSlugPath, "/checkout-key"), `{"type":"github-user-key"}`, 201, &uk)
	if _, c = checkout(keysPipelineID, mint(keysPipelineID)); c.CheckoutKey == nil || c.CheckoutKey.Fingerprint != uk.Fingerprint || c.CheckoutKey.Type != "user-key" {
		t.Errorf("checkout key = %+v, want the new user key %s", c.CheckoutKey, uk.Fingerprint)
	}
	// An expired token is refused.
	e.svc.Now = func() time.Time { return time.Now().Add(-2 * keysvc.DefaultRunnerTokenTTL) }
	expired := mint(keysPipelineID)
	e.svc.Now = nil
	if status, _ := checkout(keysPipelineID, expired); status != 401 {
		t.Errorf("checkout with an expired token: %d, want 401", status)
	}
	// GitHub Enterprise: the clone host is the server's, known_hosts empty.
	e.svc.GitHubAPIURL = "https://ghe.example.com/api/v3/"
	if _, c = checkout(keysPipelineID, mint(keysPipelineID)); c.CloneURL != "git@ghe.example.com:octo-org/hello-world.git" || c.KnownHosts != "" || !strings.Contains(c.KnownHostsNote, "ghe.example.com") {
		t.Errorf("GHES checkout = %+v", c)
	}
	e.checkNothingLeaked(t, sshKey)
}

// TestKeysRSA makes the one RSA-4096 key of the tests (about a second).
func TestKeysRSA(t *testing.T) {
	e := newKeysEnv(t)
	var k v2CheckoutKey
	e.json(t, followerToken, "POST", v2Path(ghSlugPath, "/checkout-key?key_type=rsa"), `{"type":"deploy-key"}`, 201, &k)
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	cpk, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		t.Fatalf("public key %T", pub)
	}
	rk, ok := cpk.CryptoPublicKey().(*rsa.PublicKey)
	if !ok || rk.N.BitLen() != 4096 {
		t.Errorf("key_type=rsa made %s, want RSA-4096", pub.Type())
	}
	if k.Fingerprint != ssh.FingerprintLegacyMD5(pub) || k.FingerprintSHA256 != ssh.FingerprintSHA256(pub) {
		t.Errorf("fingerprints %s %s do not match the public key", k.Fingerprint, k.FingerprintSHA256)
	}
}

// checkNothingLeaked asserts that no answer except checkout material, and
// no log line, holds private key material or a webhook secret: the given
// keys, every private key ever served as checkout material, and the secrets
// the fake VCSs received.
func (e *keysEnv) checkNothingLeaked(t *testing.T, submitted ...string) {
	t.Helper()
	e.mu.Lock()
	responses := append([]string(nil), e.responses...)
	material := append([]string(nil), e.material...)
	e.mu.Unlock()
	secrets := submitted
	for _, m := range material {
		var c checkoutJSON
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
	var needles []string
	for _, s := range secrets {
		needles = append(needles, keyBodyLines(s)...)
	}
	for _, h := range append(e.gh.Hooks(keysRepo), e.bb.Hooks(keysRepo)...) {
		needles = append(needles, h.Secret)
	}
	haystacks := map[string]string{"logs": e.logs.String()}
	for i, r := range responses {
		haystacks[fmt.Sprintf("response %d (%.40s)", i, r)] = r
	}
	for name, hay := range haystacks {
		if strings.Contains(hay, "PRIVATE KEY") {
			t.Errorf("%s contains \"PRIVATE KEY\"", name)
		}
		for _, n := range needles {
			if n != "" && strings.Contains(hay, n) {
				t.Errorf("%s contains secret material %.12q...", name, n)
			}
		}
	}
}

// keyBodyLines returns the base64 lines of a PEM private key (with escaped
// newlines undone), long enough to be unique: what must never appear.
func keyBodyLines(s string) []string {
	s = strings.ReplaceAll(s, `\n`, "\n")
	var out []string
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if len(line) >= 24 && !strings.HasPrefix(line, "-----") {
			out = append(out, line)
		}
	}
	// A key's whole body on one line, as a JSON encoder might write it.
	if body := strings.Join(out, ""); body != "" {
		out = append(out, body[:min(len(body), 64)])
	}
	return out
}

// TestKeysCiphertextBoundToRecord moves a sealed private key to another
// record and checks it no longer opens, and the checkout fails without
// serving it.
func TestKeysCiphertextBoundToRecord(t *testing.T) {
	e := newKeysEnv(t)
	ctx := t.Context()
	slug := mustSlug(t, ghSlugPath)
	e.json(t, followerToken, "POST", v1Path(ghSlugPath, "/checkout-key"), `{"type":"deploy-key"}`, 201, nil)
	e.json(t, followerToken, "POST", v1Path(ghSlugPath, "/checkout-key"), `{"type":"github-user-key"}`, 201, nil)
	recs, err := e.store.ListCheckoutKeys(ctx, slug)
	if err != nil || len(recs) != 2 {
		t.Fatalf("records %v, %v", recs, err)
	}
	a, b := recs[0], recs[1]
	if _, err := e.sl.Open(ctx, a.SealedPrivateKey, a.AAD()); err != nil {
		t.Fatalf("a key does not open with its own record id: %v", err)
	}
	if _, err := e.sl.Open(ctx, a.SealedPrivateKey, b.AAD()); err == nil {
		t.Error("a ciphertext opened with another record's id")
	}
	p, err := e.store.GetProject(ctx, slug)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sl.Open(ctx, p.DeployKey.SealedPrivateKey, b.AAD()); err == nil {
		t.Error("the project's deploy key opened as a checkout key record")
	}
	other := *a
	other.Project = mustSlug(t, bbSlugPath)
	if _, err := e.sl.Open(ctx, a.SealedPrivateKey, other.AAD()); err == nil {
		t.Error("a ciphertext opened as the same fingerprint of another project")
	}

	// Move a's ciphertext into b, the preferred key, in the store.
	if err := e.store.DeleteCheckoutKey(ctx, slug, b.FingerprintMD5); err != nil {
		t.Fatal(err)
	}
	b.SealedPrivateKey = a.SealedPrivateKey
	if err := e.store.CreateCheckoutKey(ctx, b); err != nil {
		t.Fatal(err)
	}
	e.addPipeline(t, keysPipelineID, false)
	var tok runnerTokenJSON
	e.json(t, followerToken, "POST", "/api/v2/pipeline/"+keysPipelineID+"/runner-token", "", 201, &tok)
	r := httptest.NewRequest("GET", "/api/v2/pipeline/"+keysPipelineID+"/checkout", nil)
	r.Header.Set("Authorization", "Bearer "+tok.Token)
	status, body := e.serve(t, r)
	if status != http.StatusInternalServerError || strings.Contains(string(body), "PRIVATE") {
		t.Errorf("checkout with a moved ciphertext: %d %s, want 500 and nothing served", status, body)
	}
}

// TestKeysConcurrentSSHKeyAdds posts one key for one host from many
// clients at once: one is created, the rest see it, one record is stored.
func TestKeysConcurrentSSHKeyAdds(t *testing.T) {
	e := newKeysEnv(t)
	key := ed25519PEM(t)
	const n = 8
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest("POST", v1Path(ghSlugPath, "/ssh-key"), strings.NewReader(sshKeyBody("deploy.example.com", key)))
			r.Header.Set("Circle-Token", followerToken)
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			statuses <- w.Code
		}()
	}
	wg.Wait()
	close(statuses)
	created := 0
	for s := range statuses {
		switch s {
		case 201:
			created++
		case 200:
		default:
			t.Errorf("status %d, want 200 or 201", s)
		}
	}
	recs, err := e.store.ListSSHKeys(t.Context(), mustSlug(t, ghSlugPath))
	if err != nil {
		t.Fatal(err)
	}
	if created != 1 || len(recs) != 1 {
		t.Errorf("%d created, %d stored; want 1 and 1", created, len(recs))
	}
}

var _ io.Writer = (*lockedBuffer)(nil)

// TestKeysRemoveProjectKeys removes what forgelink added for a project, as
// unfollow should: extra deploy keys and user keys on the VCS, and every
// record.
func TestKeysRemoveProjectKeys(t *testing.T) {
	e := newKeysEnv(t)
	slug := mustSlug(t, ghSlugPath)
	e.json(t, followerToken, "POST", v1Path(ghSlugPath, "/checkout-key"), `{"type":"deploy-key"}`, 201, nil)
	e.json(t, followerToken, "POST", v1Path(ghSlugPath, "/checkout-key"), `{"type":"github-user-key"}`, 201, nil)
	e.json(t, followerToken, "POST", v1Path(ghSlugPath, "/ssh-key"), sshKeyBody("deploy.example.com", ed25519PEM(t)), 201, nil)
	e.gh.FailNext("DELETE", "", http.StatusBadGateway, 1)
	if err := e.svc.RemoveProjectKeys(t.Context(), slug); forgelink.KindOf(err) != forgelink.Transient {
		t.Fatalf("RemoveProjectKeys with GitHub down: %v, want a Transient error", err)
	}
	if err := e.svc.RemoveProjectKeys(t.Context(), slug); err != nil {
		t.Fatalf("RemoveProjectKeys: %v", err)
	}
	if got := e.gh.DeployKeys(keysRepo); len(got) != 1 {
		t.Errorf("GitHub deploy keys = %+v, want only the follow-time one", got)
	}
	if got := e.gh.UserKeys(); len(got) != 0 {
		t.Errorf("GitHub user keys = %+v, want none", got)
	}
	cks, _ := e.store.ListCheckoutKeys(t.Context(), slug)
	sks, _ := e.store.ListSSHKeys(t.Context(), slug)
	if len(cks)+len(sks) != 0 {
		t.Errorf("%d checkout and %d ssh key records left, want none", len(cks), len(sks))
	}
}
