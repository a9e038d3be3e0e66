package httpapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"forgelink/shared/apiauth"
	"forgelink/shared/bitbucket"
	"forgelink/shared/bolt"
	"forgelink/shared/follow"
	"forgelink/shared/forgelink"
	"forgelink/shared/github"
	"forgelink/shared/httpjson"
	"forgelink/shared/keysvc"
	"forgelink/shared/sealer"
	"forgelink/shared/vcsfake"
)

// The fuzz targets' users: the follower of both projects and a user who
// follows nothing.
const (
	fuzzFollower = "tok-fuzz-follower-0123456789"
	fuzzStranger = "tok-fuzz-stranger-0123456789"
)

type fuzzUsers map[string]string

func (u fuzzUsers) Authenticate(ctx context.Context, token string) (*apiauth.User, error) {
	if login, ok := u[token]; ok {
		return &apiauth.User{Login: login}, nil
	}
	return nil, forgelink.Errorf(forgelink.Unauthorized, "invalid API token")
}

// fuzzAPI is the keys function's API (Keys in front of Projects) on bbolt
// with the local sealer and fake GitHub and Bitbucket APIs, as a fuzz
// worker builds it once. gh/octo-org/hello-world and bb/octo-org/hello-world
// are followed by "local". A fuzz run writes to the store on every
// accepted request: put TMPDIR on a tmpfs (make fuzz does) so that
// bbolt's fsync costs nothing.
type fuzzAPI struct {
	store *bolt.Store
	gh    *vcsfake.GitHub
	h     http.Handler
}

// serve answers r. The fake GitHub's rate limit (5,000 requests, as
// GitHub's) is reset first: a million executions would use it up.
func (a *fuzzAPI) serve(w http.ResponseWriter, r *http.Request) {
	a.gh.SetRateLimitRemaining(vcsfake.GitHubRateLimit)
	a.h.ServeHTTP(w, r)
}

func newFuzzAPI(tb testing.TB) *fuzzAPI {
	tb.Helper()
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
	gh, bb := vcsfake.NewGitHub(tb), vcsfake.NewBitbucket(tb)
	gh.AddRepo(keysRepo, "main", true)
	bb.AddRepo(keysRepo, "master", true)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	forges := func(ctx context.Context, vcs forgelink.VCS) (forgelink.Forge, error) {
		if vcs == forgelink.Bitbucket {
			return bitbucket.NewForge(bb.URL, bb.Token, nil)
		}
		return github.NewForge(gh.URL, gh.Token, nil)
	}
	fl := &follow.Service{Store: st, Sealer: sl, Forges: forges, Log: log}
	for _, p := range []string{ghSlugPath, bbSlugPath} {
		slug, _ := forgelink.ParseSlug(p)
		if _, err := fl.Follow(context.Background(), slug, followerLogin, "https://ci.example.com"); err != nil {
			tb.Fatalf("follow %s: %v", p, err)
		}
	}
	auth := fuzzUsers{fuzzFollower: followerLogin, fuzzStranger: "stranger"}
	svc := &keysvc.Service{Store: st, Keys: st, Pipelines: st, Sealer: sl, Forges: forges, Log: log}
	projects := &Projects{Store: st, Pipelines: st, Follow: fl, Auth: auth, Log: log}
	keys := &Keys{Service: svc, Auth: auth, Log: log}
	return &fuzzAPI{store: st, gh: gh, h: keys.Handler(projects.Handler())}
}

// do sends a request with a JSON body and returns the status and the
// answer, which must be JSON.
func (a *fuzzAPI) do(t *testing.T, method, path, token string, body []byte) (int, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Circle-Token", token)
	w := httptest.NewRecorder()
	a.serve(w, r)
	if w.Code >= 500 {
		t.Fatalf("%s %s %q: %d %s", method, path, body, w.Code, w.Body)
	}
	var out map[string]any
	if w.Code != http.StatusNoContent {
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil && !strings.HasPrefix(w.Body.String(), "[") {
			t.Fatalf("%s %s: %d answer is not JSON: %q", method, path, w.Code, w.Body)
		}
	}
	if w.Code >= 400 {
		if msg, _ := out["message"].(string); msg == "" {
			t.Fatalf("%s %s: %d without a message: %q", method, path, w.Code, w.Body)
		}
	}
	return w.Code, out
}

func (a *fuzzAPI) settings(t *testing.T, slug string) forgelink.Settings {
	t.Helper()
	s, _ := forgelink.ParseSlug(slug)
	p, err := a.store.GetProject(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return p.Settings
}

// FuzzSettingsPatch sends fuzzed bodies to PATCH .../settings: never a
// 5xx; a 200 stored exactly the fields the body set; anything else changed
// nothing.
//
//	go test -run '^$' -fuzz '^FuzzSettingsPatch$' -fuzztime 30s ./shared/httpapi
func FuzzSettingsPatch(f *testing.F) {
	for _, s := range []string{
		`{"advanced":{"build_prs_only":true,"build_fork_prs":false,"forks_receive_secret_env_vars":false,"set_github_status":true,"pr_only_branch_overrides":["main","release/.*"]}}`,
		`{"advanced":{"pr_only_branch_overrides":[]}}`,
		`{"advanced":{"pr_only_branch_overrides":["/[/"]}}`,
		`{"advanced":{}}`, `{"advanced":null}`, `{}`, `{"advanced":{"build_prs_only":"yes"}}`,
		`{"advanced":{"oss":true}}`, `[]`, ``, `{"advanced":{"build_prs_only":true}}]`,
	} {
		f.Add([]byte(s))
	}
	api := newFuzzAPI(f)
	const path = "/api/v2/project/" + ghSlugPath + "/settings"
	f.Fuzz(func(t *testing.T, body []byte) {
		before := api.settings(t, ghSlugPath)
		status, out := api.do(t, http.MethodPatch, path, fuzzFollower, body)
		after := api.settings(t, ghSlugPath)
		if status != http.StatusOK {
			if status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
				t.Fatalf("%q: %d %v, want 200, 400 or 413", body, status, out)
			}
			if diff := cmp.Diff(before, after); diff != "" {
				t.Fatalf("%q refused (%d) but the settings changed (-before +after):\n%s", body, status, diff)
			}
			return
		}
		var patch settingsPatch
		if err := json.Unmarshal(body, &patch); err != nil || patch.Advanced == nil {
			t.Fatalf("%q accepted, but it is not a settings patch: %v", body, err)
		}
		want, a := before, patch.Advanced
		for _, b := range []struct {
			dst *bool
			v   *bool
		}{{&want.BuildPRsOnly, a.BuildPRsOnly}, {&want.BuildForkPRs, a.BuildForkPRs}, {&want.ForksReceiveSecretEnvVars, a.ForksReceiveSecretEnvVars}, {&want.SetGitHubStatus, a.SetGitHubStatus}} {
			if b.v != nil {
				*b.dst = *b.v
			}
		}
		if a.PROnlyBranchOverrides != nil {
			want.AlwaysBuildBranches = *a.PROnlyBranchOverrides
		}
		if diff := cmp.Diff(withLists(want), withLists(after)); diff != "" {
			t.Fatalf("%q: stored settings differ from the patch (-want +got):\n%s", body, diff)
		}
	})
}

// FuzzCheckoutKeyCreate sends fuzzed bodies to POST .../checkout-key of
// either project, as the follower or as a stranger: never a 5xx, a key
// made only for the follower, and each key made is deleted again so the
// project and the fake VCS stay small. A body asking for an RSA key is
// sent as the stranger: it is checked in full but refused before the
// several hundred milliseconds of an RSA-4096 generation, which would
// stall the fuzzer (keys_test covers RSA keys).
//
//	go test -run '^$' -fuzz '^FuzzCheckoutKeyCreate$' -fuzztime 30s ./shared/httpapi
func FuzzCheckoutKeyCreate(f *testing.F) {
	fuzzCheckoutKeyCreate(f, "/api/v1.1/project/", "public_key")
}

// FuzzCheckoutKeyCreateV2 is FuzzCheckoutKeyCreate on v2's POST
// .../checkout-key, which reads the same body and answers v2's key shape
// ("public-key").
//
//	go test -run '^$' -fuzz '^FuzzCheckoutKeyCreateV2$' -fuzztime 30s ./shared/httpapi
func FuzzCheckoutKeyCreateV2(f *testing.F) {
	fuzzCheckoutKeyCreate(f, "/api/v2/project/", "public-key")
}

// fuzzCheckoutKeyCreate fuzzes POST <prefix><project>/checkout-key, whose
// 201 answer holds the public key in publicKeyField.
func fuzzCheckoutKeyCreate(f *testing.F, prefix, publicKeyField string) {
	for _, s := range []string{
		`{"type":"deploy-key"}`, `{"type":"user-key","key_type":"ed25519"}`, `{"type":"github-user-key"}`,
		`{"type":"bitbucket-user-key","key_type":"ED25519"}`, `{"key_type":"rsa"}`, `{"key_type":"dsa"}`,
		`{"type":"root-key"}`, `{}`, ``, `{"type":1}`, `{"type":"deploy-key","extra":true}`,
	} {
		f.Add([]byte(s), true, false)
		f.Add([]byte(s), false, true)
	}
	api := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, body []byte, follower, bitbucket bool) {
		project := ghSlugPath
		if bitbucket {
			project = bbSlugPath
		}
		token := fuzzStranger
		var req createKeyRequest
		if follower && (httpjson.DecodeStrict(body, &req) != nil || !strings.EqualFold(req.KeyType, "rsa")) {
			token = fuzzFollower
		}
		path := prefix + project + "/checkout-key"
		status, out := api.do(t, http.MethodPost, path, token, body)
		if status != http.StatusCreated {
			return
		}
		if token != fuzzFollower {
			t.Fatalf("%q: a stranger made a checkout key: %v", body, out)
		}
		fp, _ := out["fingerprint"].(string)
		if fp == "" || out[publicKeyField] == nil {
			t.Fatalf("%q: 201 without the key: %v", body, out)
		}
		if status, out := api.do(t, http.MethodDelete, path+"/"+url.PathEscape(fp), fuzzFollower, nil); status != http.StatusOK {
			t.Fatalf("deleting the key just made: %d %v", status, out)
		}
	})
}

// fuzzSSHKey is an unencrypted ed25519 private key in the OpenSSH format.
func fuzzSSHKey(tb testing.TB, seed byte) string {
	tb.Helper()
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	b, err := ssh.MarshalPrivateKey(k, "")
	if err != nil {
		tb.Fatal(err)
	}
	return string(pem.EncodeToMemory(b))
}

// FuzzSSHKeyAdd sends fuzzed bodies to POST .../ssh-key (v1.1): never a
// 5xx, no line of the private key in any answer, and a key that is added
// (201) is deleted again.
//
//	go test -run '^$' -fuzz '^FuzzSSHKeyAdd$' -fuzztime 30s ./shared/httpapi
func FuzzSSHKeyAdd(f *testing.F) {
	key := fuzzSSHKey(f, 1)
	for _, v := range []map[string]any{
		{"hostname": "git.example.com", "private_key": key},
		{"hostname": "", "private_key": key},
		{"hostname": "git.example.com", "private_key": strings.ReplaceAll(key, "\n", `\n`)},
		{"hostname": "bad host/../x", "private_key": key},
		{"hostname": "git.example.com", "private_key": key[:len(key)/2]},
		{"hostname": "git.example.com", "private_key": ""},
		{"hostname": "git.example.com"},
		{"private_key": key, "passphrase": "x"},
	} {
		b, _ := json.Marshal(v)
		f.Add(b)
	}
	f.Add([]byte(`{"hostname":1}`))
	f.Add([]byte(``))
	api := newFuzzAPI(f)
	const path = "/api/v1.1/project/" + ghSlugPath + "/ssh-key"
	f.Fuzz(func(t *testing.T, body []byte) {
		status, out := api.do(t, http.MethodPost, path, fuzzFollower, body)
		var sent struct {
			PrivateKey string `json:"private_key"`
		}
		_ = json.Unmarshal(body, &sent)
		answer, _ := json.Marshal(out)
		for _, line := range strings.Split(sent.PrivateKey+"\n"+key, "\n") {
			// A key's base64 lines; its -----BEGIN/END lines and field
			// names may be quoted back.
			line = strings.TrimSpace(line)
			if len(line) >= 16 && strings.Trim(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") == "" &&
				strings.Contains(string(answer), line) {
				t.Fatalf("the answer %s holds a line of the private key", answer)
			}
		}
		if status != http.StatusCreated {
			return
		}
		fp, _ := out["fingerprint"].(string)
		host, _ := out["hostname"].(string)
		del, _ := json.Marshal(map[string]any{"fingerprint": fp, "hostname": host})
		if status, out := api.do(t, http.MethodDelete, path, fuzzFollower, del); status != http.StatusOK {
			t.Fatalf("deleting the key just added (%s): %d %v", del, status, out)
		}
	})
}

// FuzzSSHKeyDelete sends fuzzed bodies to DELETE .../ssh-key (v1.1), with
// one key on the project: never a 5xx; when the key is deleted it is added
// again.
//
//	go test -run '^$' -fuzz '^FuzzSSHKeyDelete$' -fuzztime 30s ./shared/httpapi
func FuzzSSHKeyDelete(f *testing.F) {
	api := newFuzzAPI(f)
	const path = "/api/v1.1/project/" + ghSlugPath + "/ssh-key"
	add, _ := json.Marshal(map[string]string{"hostname": "git.example.com", "private_key": fuzzSSHKey(f, 2)})
	addKey := func(tb testing.TB) string {
		r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(add))
		r.Header.Set("Circle-Token", fuzzFollower)
		w := httptest.NewRecorder()
		api.serve(w, r)
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || w.Code != http.StatusCreated && w.Code != http.StatusOK {
			tb.Fatalf("adding the key: %d %s", w.Code, w.Body)
		}
		fp, _ := out["fingerprint"].(string)
		return fp
	}
	fp := addKey(f)
	for _, s := range []string{
		`{"fingerprint":"` + fp + `","hostname":"git.example.com"}`,
		`{"fingerprint":"` + fp + `"}`,
		`{"fingerprint":"` + fp + `","hostname":""}`,
		`{"fingerprint":"` + fp + `","hostname":null}`,
		`{"fingerprint":"00:11","hostname":"git.example.com"}`,
		`{"fingerprint":"SHA256:abc"}`, `{}`, ``, `{"fingerprint":["x"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		status, out := api.do(t, http.MethodDelete, path, fuzzFollower, body)
		if status == http.StatusOK {
			if out["deleted"] == nil {
				t.Fatalf("%q: 200 without the deleted key: %v", body, out)
			}
			addKey(t)
		}
	})
}
