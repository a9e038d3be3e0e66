package vcsfake_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/vcsfake"
)

// call sends a request with a bearer token and returns the response and
// its body.
func call(t *testing.T, method, url, token, body string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header[k] = v
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
	return resp, b
}

func corpusFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/corpus/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGitHubCorpusBodies(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	key := vcsfake.NewPublicKey("c")
	if resp, _ := call(t, "POST", g.URL+"repos/o/r/keys", g.Token, `{"title":"t","key":"`+key+`"}`, nil); resp.StatusCode != 201 {
		t.Fatalf("first POST keys = %d, want 201", resp.StatusCode)
	}
	if resp, _ := call(t, "POST", g.URL+"repos/o/r/hooks", g.Token, `{"config":{"url":"https://x.example/h"}}`, nil); resp.StatusCode != 201 {
		t.Fatalf("first POST hooks = %d, want 201", resp.StatusCode)
	}
	g.AddRepo("o/r2", "main", false)
	tests := []struct {
		name, method, path, token, body string
		wantStatus                      int
		wantFile                        string
	}{
		{"wrong token", "GET", "repos/o/r", "nope", "", 401, "github/errors/bad_credentials.401.json"},
		{"unknown repo", "GET", "repos/o/missing", g.Token, "", 404, "github/errors/not_found.repo.404.json"},
		{"key in use on this repo", "POST", "repos/o/r/keys", g.Token, `{"title":"t","key":"` + key + `"}`, 422, "github/errors/deploy_key_in_use.422.json"},
		{"key in use on another repo", "POST", "repos/o/r2/keys", g.Token, `{"title":"t","key":"` + key + `"}`, 422, "github/errors/deploy_key_in_use.422.json"},
		{"key in use as a user key", "POST", "user/keys", g.Token, `{"title":"t","key":"` + key + `"}`, 422, "github/errors/deploy_key_in_use.422.json"},
		{"hook exists", "POST", "repos/o/r/hooks", g.Token, `{"config":{"url":"https://x.example/h"}}`, 422, "github/errors/hook_already_exists.422.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := call(t, tc.method, g.URL+tc.path, tc.token, tc.body, nil)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if want := corpusFile(t, tc.wantFile); !bytes.Equal(body, want) {
				t.Errorf("body = %s, want %s", body, want)
			}
			if resp.Header.Get("X-RateLimit-Limit") != "5000" || resp.Header.Get("X-RateLimit-Reset") == "" {
				t.Errorf("rate limit headers missing: %v", resp.Header)
			}
		})
	}
	if n := len(g.DeployKeys("o/r2")); n != 0 {
		t.Errorf("o/r2 has %d keys after a refused add, want 0", n)
	}
}

func TestGitHubRateLimitHeaders(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	var remaining []int
	var etag string
	for i := range 3 {
		var h http.Header
		if i == 2 {
			h = http.Header{"If-None-Match": {etag}}
		}
		resp, _ := call(t, "GET", g.URL+"repos/o/r", g.Token, "", h)
		n, _ := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining"))
		remaining = append(remaining, n)
		etag = resp.Header.Get("ETag")
		used, _ := strconv.Atoi(resp.Header.Get("X-RateLimit-Used"))
		if used+n != vcsfake.GitHubRateLimit {
			t.Errorf("used %d + remaining %d != limit", used, n)
		}
	}
	// The third request is a 304 and does not count.
	if diff := cmp.Diff([]int{4999, 4998, 4998}, remaining); diff != "" {
		t.Errorf("X-RateLimit-Remaining (-want +got):\n%s", diff)
	}
}

func TestGitHubETag(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	for _, path := range []string{"repos/o/r", "repos/o/r/hooks", "repos/o/r/keys"} {
		t.Run(path, func(t *testing.T) {
			resp, _ := call(t, "GET", g.URL+path, g.Token, "", nil)
			etag := resp.Header.Get("ETag")
			if resp.StatusCode != 200 || etag == "" {
				t.Fatalf("GET = %d with ETag %q, want 200 with one", resp.StatusCode, etag)
			}
			resp, body := call(t, "GET", g.URL+path, g.Token, "", http.Header{"If-None-Match": {etag}})
			if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
				t.Errorf("conditional GET = %d with %d bytes, want 304 with none", resp.StatusCode, len(body))
			}
		})
	}
	// A change makes the old ETag stale.
	resp, _ := call(t, "GET", g.URL+"repos/o/r/hooks", g.Token, "", nil)
	etag := resp.Header.Get("ETag")
	g.AddHookDirect("o/r", vcsfake.Hook{URL: "https://x.example/", Events: []string{"push"}})
	if resp, _ := call(t, "GET", g.URL+"repos/o/r/hooks", g.Token, "", http.Header{"If-None-Match": {etag}}); resp.StatusCode != 200 {
		t.Errorf("conditional GET after a change = %d, want 200", resp.StatusCode)
	}
}

func TestGitHubPagination(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	for i := range 25 {
		g.AddHookDirect("o/r", vcsfake.Hook{URL: "https://x.example/" + strconv.Itoa(i), Events: []string{"push"}})
	}
	var urls []string
	next := g.URL + "repos/o/r/hooks?per_page=10"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		resp, body := call(t, "GET", next, g.Token, "", nil)
		var hooks []struct {
			Config struct{ URL string } `json:"config"`
		}
		if err := json.Unmarshal(body, &hooks); err != nil {
			t.Fatal(err)
		}
		for _, h := range hooks {
			urls = append(urls, h.Config.URL)
		}
		next = ""
		for _, l := range strings.Split(resp.Header.Get("Link"), ",") {
			if strings.HasSuffix(strings.TrimSpace(l), `rel="next"`) {
				next = strings.Trim(strings.SplitN(strings.TrimSpace(l), ";", 2)[0], "<>")
			}
		}
	}
	if len(urls) != 25 || urls[0] != "https://x.example/0" || urls[24] != "https://x.example/24" {
		t.Errorf("got %d hooks over the pages (%v), want all 25 in order", len(urls), urls)
	}
	var sizes []string
	for _, r := range g.Requests() {
		sizes = append(sizes, r.Query)
	}
	if diff := cmp.Diff([]string{"per_page=10", "page=2&per_page=10", "page=3&per_page=10"}, sizes); diff != "" {
		t.Errorf("queries (-want +got):\n%s", diff)
	}
}

func TestGitHubFailNext(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	g.FailNext("GET", "/repos/o/r", 403, 2)
	want := corpusFile(t, "github/errors/secondary_rate_limit.403.json")
	for i := range 2 {
		resp, body := call(t, "GET", g.URL+"repos/o/r", g.Token, "", nil)
		if resp.StatusCode != 403 || resp.Header.Get("Retry-After") != "1" || !bytes.Equal(body, want) {
			t.Errorf("request %d = %d Retry-After %q %s; want the secondary rate limit 403", i+1, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	if resp, _ := call(t, "GET", g.URL+"repos/o/r", g.Token, "", nil); resp.StatusCode != 200 {
		t.Errorf("third request = %d, want 200", resp.StatusCode)
	}
}

func TestGitHubOrgRestricted(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("acme/r", "main", false)
	g.SetOrgRestricted("acme", true)
	resp, body := call(t, "GET", g.URL+"repos/acme/r", g.Token, "", nil)
	if resp.StatusCode != 403 || !strings.Contains(string(body), "the `acme` organization has enabled OAuth App access restrictions") {
		t.Errorf("GET = %d %s, want the OAuth App restrictions 403 naming acme", resp.StatusCode, body)
	}
	g.SetOrgRestricted("acme", false)
	if resp, _ := call(t, "GET", g.URL+"repos/acme/r", g.Token, "", nil); resp.StatusCode != 200 {
		t.Errorf("GET after lifting = %d, want 200", resp.StatusCode)
	}
}

func TestGitHubUserStatusesAndUserKeys(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	resp, body := call(t, "GET", g.URL+"user", g.Token, "", nil)
	var user struct{ Login string }
	if err := json.Unmarshal(body, &user); err != nil || resp.StatusCode != 200 || user.Login != "octocat" {
		t.Errorf("GET /user = %d %s, want login octocat", resp.StatusCode, body)
	}
	sha := strings.Repeat("a", 40)
	resp, _ = call(t, "POST", g.URL+"repos/o/r/statuses/"+sha, g.Token,
		`{"state":"pending","target_url":"https://ci.example.com/p/1","description":"queued","context":"ci/forgelink: build"}`, nil)
	if resp.StatusCode != 201 {
		t.Errorf("POST status = %d, want 201", resp.StatusCode)
	}
	if resp, _ := call(t, "POST", g.URL+"repos/o/r/statuses/"+sha, g.Token, `{"state":"running"}`, nil); resp.StatusCode != 422 {
		t.Errorf("POST status with state running = %d, want 422", resp.StatusCode)
	}
	want := []vcsfake.Status{{SHA: sha, State: "pending", Context: "ci/forgelink: build", TargetURL: "https://ci.example.com/p/1", Description: "queued"}}
	if diff := cmp.Diff(want, g.Statuses("o/r", sha)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	key := vcsfake.NewPublicKey("me@host")
	resp, body = call(t, "POST", g.URL+"user/keys", g.Token, `{"title":"forgelink","key":"`+key+`"}`, nil)
	var created struct{ ID int64 }
	if err := json.Unmarshal(body, &created); err != nil || resp.StatusCode != 201 || created.ID == 0 {
		t.Fatalf("POST /user/keys = %d %s", resp.StatusCode, body)
	}
	keys := g.UserKeys()
	if len(keys) != 1 || keys[0].ID != strconv.FormatInt(created.ID, 10) || keys[0].Title != "forgelink" || strings.Contains(keys[0].Key, "me@host") {
		t.Errorf("UserKeys = %+v", keys)
	}
}

func TestGitHubHookPatchDropsSecret(t *testing.T) {
	// As on GitHub, a PATCH whose config leaves the secret out removes it.
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	h := g.AddHookDirect("o/r", vcsfake.Hook{URL: "https://x.example/", Secret: "s", Events: []string{"push"}, Active: true})
	resp, _ := call(t, "PATCH", g.URL+"repos/o/r/hooks/"+h.ID, g.Token, `{"config":{"url":"https://x.example/","content_type":"json"}}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("PATCH = %d", resp.StatusCode)
	}
	got := g.Hooks("o/r")[0]
	if got.Secret != "" || got.ContentType != "json" || !got.Active {
		t.Errorf("hook after PATCH = %+v, want no secret, json, active", got)
	}
}

func TestBitbucketBodiesAndPagination(t *testing.T) {
	b := vcsfake.NewBitbucket(t)
	b.AddRepo("ws/r", "main", true)
	for i := range 15 {
		b.AddKeyDirect("ws/r", "k"+strconv.Itoa(i), vcsfake.NewPublicKey(""))
	}

	resp, body := call(t, "GET", b.URL+"repositories/ws/r", "wrong", "", nil)
	if resp.StatusCode != 401 || !strings.Contains(string(body), `"type":"error"`) {
		t.Errorf("wrong token = %d %s, want 401 in Bitbucket's error format", resp.StatusCode, body)
	}
	resp, body = call(t, "GET", b.URL+"repositories/ws/missing", b.Token, "", nil)
	if resp.StatusCode != 404 || !strings.Contains(string(body), "Repository ws/missing not found") {
		t.Errorf("unknown repo = %d %s", resp.StatusCode, body)
	}

	var labels []string
	next := b.URL + "repositories/ws/r/deploy-keys?pagelen=10"
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		resp, body := call(t, "GET", next, b.Token, "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d", next, resp.StatusCode)
		}
		var page struct {
			Values []struct{ Label string }
			Next   string
			Size   int
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		if page.Size != 15 {
			t.Errorf("size = %d, want 15", page.Size)
		}
		for _, v := range page.Values {
			labels = append(labels, v.Label)
		}
		next = page.Next
	}
	if len(labels) != 15 || labels[14] != "k14" {
		t.Errorf("labels over the pages = %v, want k0..k14", labels)
	}

	resp, _ = call(t, "GET", b.URL+"repositories/ws/r", b.Token, "", nil)
	etag := resp.Header.Get("ETag")
	if resp, _ := call(t, "GET", b.URL+"repositories/ws/r", b.Token, "", http.Header{"If-None-Match": {etag}}); etag == "" || resp.StatusCode != 304 {
		t.Errorf("conditional GET with ETag %q = %d, want 304", etag, resp.StatusCode)
	}
}

func TestBitbucketHooksAndStatuses(t *testing.T) {
	b := vcsfake.NewBitbucket(t)
	b.AddRepo("ws/r", "main", false)
	resp, body := call(t, "POST", b.URL+"repositories/ws/r/hooks", b.Token,
		`{"description":"d","url":"https://x.example/h","active":true,"secret":"s","events":["repo:push","bogus:event"]}`, nil)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "bogus:event") {
		t.Errorf("POST hook with a bad event = %d %s, want 400 naming it", resp.StatusCode, body)
	}
	resp, body = call(t, "POST", b.URL+"repositories/ws/r/hooks", b.Token,
		`{"description":"d","url":"https://x.example/h","active":true,"secret":"s","events":["repo:push"]}`, nil)
	var h struct {
		UUID      string
		SecretSet bool `json:"secret_set"`
	}
	if err := json.Unmarshal(body, &h); err != nil || resp.StatusCode != 201 || !h.SecretSet || strings.Contains(string(body), `"s"`) {
		t.Fatalf("POST hook = %d %s, want 201 with secret_set and no secret", resp.StatusCode, body)
	}
	// PUT without secret keeps it; "secret": null removes it.
	call(t, "PUT", b.URL+"repositories/ws/r/hooks/"+h.UUID, b.Token, `{"active":false}`, nil)
	if got := b.Hooks("ws/r")[0]; got.Secret != "s" || got.Active {
		t.Errorf("after PUT active=false: %+v, want secret kept and inactive", got)
	}
	call(t, "PUT", b.URL+"repositories/ws/r/hooks/"+h.UUID, b.Token, `{"secret":null}`, nil)
	if got := b.Hooks("ws/r")[0]; got.Secret != "" {
		t.Errorf("after PUT secret=null: %+v, want no secret", got)
	}

	sha := strings.Repeat("b", 40)
	for _, state := range []string{"INPROGRESS", "SUCCESSFUL"} {
		resp, _ := call(t, "POST", b.URL+"repositories/ws/r/commit/"+sha+"/statuses/build", b.Token,
			`{"key":"build","state":"`+state+`","url":"https://ci.example.com/p/1","name":"build"}`, nil)
		if resp.StatusCode/100 != 2 {
			t.Errorf("POST status %s = %d", state, resp.StatusCode)
		}
	}
	want := []vcsfake.Status{{SHA: sha, State: "SUCCESSFUL", Context: "build", TargetURL: "https://ci.example.com/p/1"}}
	if diff := cmp.Diff(want, b.Statuses("ws/r", sha)); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func TestBitbucketFailNext(t *testing.T) {
	b := vcsfake.NewBitbucket(t)
	b.AddRepo("ws/r", "main", false)
	b.FailNext("", "/hooks", 429, 1)
	resp, body := call(t, "GET", b.URL+"repositories/ws/r/hooks", b.Token, "", nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), `"type":"error"`) {
		t.Errorf("GET = %d Retry-After %q %s, want 429 in Bitbucket's format", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp, _ := call(t, "GET", b.URL+"repositories/ws/r/hooks", b.Token, "", nil); resp.StatusCode != 200 {
		t.Errorf("next GET = %d, want 200", resp.StatusCode)
	}
}

func TestConcurrentUse(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := `{"config":{"url":"https://x.example/` + strconv.Itoa(i) + `","content_type":"json"}}`
			req, _ := http.NewRequest("POST", g.URL+"repos/o/r/hooks", strings.NewReader(body))
			req.Header.Set("Authorization", "token "+g.Token)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
			g.Hooks("o/r")
		}()
	}
	wg.Wait()
	if n := len(g.Hooks("o/r")); n != 20 {
		t.Errorf("%d hooks, want 20", n)
	}
}
