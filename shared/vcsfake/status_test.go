package vcsfake_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/vcsfake"
)

const ghStatusDoc = "https://docs.github.com/rest/commits/statuses#create-a-commit-status"

// jsonOf decodes a response body for comparison with cmp.
func jsonOf(t *testing.T, body []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	return v
}

func TestGitHubPostStatus(t *testing.T) {
	sha := strings.Repeat("c", 40)
	validation := func(field, message string) any {
		e := map[string]any{"resource": "Status", "code": "custom", "message": message}
		if field != "" {
			e["field"] = field
		}
		return map[string]any{"message": "Validation Failed", "errors": []any{e}, "documentation_url": ghStatusDoc}
	}
	tests := []struct {
		name       string
		path       string // after g.URL
		body       string
		wantStatus int
		wantBody   any // nil: not compared
		want       []vcsfake.Status
	}{
		{
			name: "created", path: "repos/o/r/statuses/" + sha,
			body:       `{"state":"success","context":"ci/forgelink: build","description":"Workflow build passed","target_url":"https://ci.example.com/p/1"}`,
			wantStatus: 201,
			want:       []vcsfake.Status{{SHA: sha, State: "success", Context: "ci/forgelink: build", Description: "Workflow build passed", TargetURL: "https://ci.example.com/p/1"}},
		},
		{
			name: "no context is default", path: "repos/o/r/statuses/" + sha, body: `{"state":"pending"}`,
			wantStatus: 201, want: []vcsfake.Status{{SHA: sha, State: "pending", Context: "default"}},
		},
		{
			name: "description of 140 characters", path: "repos/o/r/statuses/" + sha,
			body:       `{"state":"error","context":"c","description":"` + strings.Repeat("é", 140) + `"}`,
			wantStatus: 201, want: []vcsfake.Status{{SHA: sha, State: "error", Context: "c", Description: strings.Repeat("é", 140)}},
		},
		{
			name: "unknown repository", path: "repos/o/nope/statuses/" + sha, body: `{"state":"success"}`,
			wantStatus: 404, wantBody: map[string]any{"message": "Not Found", "documentation_url": "https://developer.github.com/v3/repos/#get"},
		},
		{
			name: "state not GitHub's", path: "repos/o/r/statuses/" + sha, body: `{"state":"running","context":"c"}`,
			wantStatus: 422, wantBody: validation("state", "state is not included in the list"),
		},
		{
			name: "description over 140 characters", path: "repos/o/r/statuses/" + sha,
			body:       `{"state":"failure","description":"` + strings.Repeat("x", 141) + `"}`,
			wantStatus: 422, wantBody: validation("description", "description is too long (maximum is 140 characters)"),
		},
		{
			name: "short sha", path: "repos/o/r/statuses/abc1234", body: `{"state":"success"}`,
			wantStatus: 422, wantBody: map[string]any{"message": "No commit found for SHA: abc1234", "documentation_url": ghStatusDoc},
		},
		{
			name: "branch name", path: "repos/o/r/statuses/main", body: `{"state":"success"}`,
			wantStatus: 422, wantBody: map[string]any{"message": "No commit found for SHA: main", "documentation_url": ghStatusDoc},
		},
		{
			name: "not JSON", path: "repos/o/r/statuses/" + sha, body: `{"state":`,
			wantStatus: 400,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := vcsfake.NewGitHub(t)
			g.AddRepo("o/r", "main", false)
			resp, body := call(t, "POST", g.URL+tc.path, g.Token, tc.body, nil)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("POST %s = %d %s, want %d", tc.path, resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantBody != nil {
				if diff := cmp.Diff(tc.wantBody, jsonOf(t, body)); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tc.want, g.Statuses("o/r", "")); diff != "" {
				t.Errorf("Statuses (-want +got):\n%s", diff)
			}
			if got, want := g.StatusPosts(), len(tc.want); got != want {
				t.Errorf("StatusPosts = %d, want %d", got, want)
			}
			if tc.wantStatus != 201 {
				return
			}
			var st struct {
				ID          int64
				State       string
				Description *string
				TargetURL   *string `json:"target_url"`
				Context     string
				CreatedAt   string `json:"created_at"`
				Creator     struct{ Login string }
			}
			if err := json.Unmarshal(body, &st); err != nil {
				t.Fatal(err)
			}
			w := tc.want[0]
			if st.ID == 0 || st.State != w.State || st.Context != w.Context || st.CreatedAt == "" || st.Creator.Login != vcsfake.GitHubLogin ||
				(st.Description == nil) != (w.Description == "") || (st.TargetURL == nil) != (w.TargetURL == "") {
				t.Errorf("created status = %s, want %+v with id, created_at, creator and null for empty fields", body, w)
			}
		})
	}
}

func TestGitHubListStatuses(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	sha, other := strings.Repeat("1", 40), strings.Repeat("2", 40)
	for i, state := range []string{"pending", "pending", "success"} {
		resp, body := call(t, "POST", g.URL+"repos/o/r/statuses/"+sha, g.Token,
			`{"state":"`+state+`","context":"ci/forgelink: w`+strconv.Itoa(i)+`"}`, nil)
		if resp.StatusCode != 201 {
			t.Fatalf("POST = %d %s", resp.StatusCode, body)
		}
	}
	g.AddStatusDirect("o/r", vcsfake.Status{SHA: other, State: "failure", Context: "elsewhere"})

	var contexts []string
	next := g.URL + "repos/o/r/commits/" + sha + "/statuses?per_page=2"
	for pages := 0; next != ""; pages++ {
		if pages > 2 {
			t.Fatal("too many pages")
		}
		resp, body := call(t, "GET", next, g.Token, "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d %s", next, resp.StatusCode, body)
		}
		var page []struct{ Context string }
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		for _, s := range page {
			contexts = append(contexts, s.Context)
		}
		next = ""
		for _, l := range strings.Split(resp.Header.Get("Link"), ",") {
			if u, ok := strings.CutSuffix(strings.TrimSpace(l), `>; rel="next"`); ok {
				next = strings.TrimPrefix(u, "<")
			}
		}
	}
	want := []string{"ci/forgelink: w2", "ci/forgelink: w1", "ci/forgelink: w0"} // newest first
	if diff := cmp.Diff(want, contexts); diff != "" {
		t.Errorf("listed contexts (-want +got):\n%s", diff)
	}
	if got := g.Statuses("o/r", other); len(got) != 1 || got[0].Context != "elsewhere" {
		t.Errorf("Statuses(other) = %+v, want the direct one", got)
	}
	if got := len(g.Statuses("o/r", "")); got != 4 {
		t.Errorf("%d statuses in all, want 4", got)
	}
	if got := g.StatusPosts(); got != 3 {
		t.Errorf("StatusPosts = %d, want 3 (AddStatusDirect does not count)", got)
	}
}

func TestGitHubStatusLimit(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	sha := strings.Repeat("d", 40)
	post := func(sha, context string) (*http.Response, []byte) {
		return call(t, "POST", g.URL+"repos/o/r/statuses/"+sha, g.Token, `{"state":"pending","context":"`+context+`"}`, nil)
	}
	for i := range vcsfake.GitHubMaxStatuses {
		if resp, body := post(sha, "ci/forgelink: build"); resp.StatusCode != 201 {
			t.Fatalf("POST #%d = %d %s, want 201", i+1, resp.StatusCode, body)
		}
	}
	resp, body := post(sha, "ci/forgelink: build")
	want := map[string]any{
		"message": "Validation Failed",
		"errors": []any{map[string]any{
			"resource": "Status", "code": "custom",
			"message": "This SHA and context has reached the maximum number of statuses.",
		}},
		"documentation_url": ghStatusDoc,
	}
	if resp.StatusCode != 422 {
		t.Fatalf("POST #1001 = %d %s, want 422", resp.StatusCode, body)
	}
	if diff := cmp.Diff(want, jsonOf(t, body)); diff != "" {
		t.Errorf("POST #1001 body (-want +got):\n%s", diff)
	}
	if n := len(g.Statuses("o/r", sha)); n != vcsfake.GitHubMaxStatuses {
		t.Errorf("%d statuses kept, want %d", n, vcsfake.GitHubMaxStatuses)
	}
	// The limit is per (sha, context).
	if resp, _ := post(sha, "ci/forgelink: test"); resp.StatusCode != 201 {
		t.Errorf("POST with another context = %d, want 201", resp.StatusCode)
	}
	if resp, _ := post(strings.Repeat("e", 40), "ci/forgelink: build"); resp.StatusCode != 201 {
		t.Errorf("POST to another commit = %d, want 201", resp.StatusCode)
	}
	// Statuses from other integrations count too.
	g.AddStatusDirect("o/r", vcsfake.Status{SHA: strings.Repeat("f", 40), State: "success", Context: "x"})
	for range vcsfake.GitHubMaxStatuses - 2 {
		g.AddStatusDirect("o/r", vcsfake.Status{SHA: strings.Repeat("f", 40), State: "success", Context: "x"})
	}
	if resp, _ := post(strings.Repeat("f", 40), "x"); resp.StatusCode != 201 {
		t.Errorf("POST #1000 after 999 direct = %d, want 201", resp.StatusCode)
	}
	if resp, _ := post(strings.Repeat("f", 40), "x"); resp.StatusCode != 422 {
		t.Errorf("POST #1001 after 999 direct = %d, want 422", resp.StatusCode)
	}
	if got, want := g.StatusPosts(), vcsfake.GitHubMaxStatuses+3; got != want {
		t.Errorf("StatusPosts = %d, want %d", got, want)
	}
}

func TestGitHubStatusFailNext(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	sha := strings.Repeat("a", 40)
	g.FailNext(http.MethodPost, "/statuses/"+sha, 502, 1)
	g.FailNext(http.MethodPost, "/statuses/"+sha, 403, 1)
	body := `{"state":"success","context":"ci/forgelink"}`
	if resp, _ := call(t, "POST", g.URL+"repos/o/r/statuses/"+sha, g.Token, body, nil); resp.StatusCode != 502 {
		t.Errorf("first POST = %d, want the injected 502", resp.StatusCode)
	}
	resp, got := call(t, "POST", g.URL+"repos/o/r/statuses/"+sha, g.Token, body, nil)
	if resp.StatusCode != 403 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(got), "secondary rate limit") {
		t.Errorf("second POST = %d Retry-After %q %s, want the secondary rate limit 403", resp.StatusCode, resp.Header.Get("Retry-After"), got)
	}
	if resp, _ := call(t, "POST", g.URL+"repos/o/r/statuses/"+sha, g.Token, body, nil); resp.StatusCode != 201 {
		t.Errorf("third POST = %d, want 201", resp.StatusCode)
	}
	if n := len(g.Statuses("o/r", sha)); n != 1 {
		t.Errorf("%d statuses, want 1: failed posts are not recorded", n)
	}
	if n := g.CountRequests(http.MethodPost, "/statuses/"+sha); n != 3 {
		t.Errorf("CountRequests = %d, want 3", n)
	}
}

func TestGitHubOAuthRestrictedBody(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("acme/r", "main", false)
	sha := strings.Repeat("a", 40)
	g.FailNextResponse(http.MethodPost, "/statuses/"+sha, 1, 403, nil, g.OAuthRestrictedBody("acme"))
	resp, body := call(t, "POST", g.URL+"repos/acme/r/statuses/"+sha, g.Token, `{"state":"success"}`, nil)
	if resp.StatusCode != 403 || resp.Header.Get("Retry-After") != "" ||
		!strings.Contains(string(body), "the `acme` organization has enabled OAuth App access restrictions") {
		t.Errorf("POST = %d Retry-After %q %s, want the OAuth App restrictions 403 naming acme", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp, _ := call(t, "POST", g.URL+"repos/acme/r/statuses/"+sha, g.Token, `{"state":"success"}`, nil); resp.StatusCode != 201 {
		t.Errorf("next POST = %d, want 201", resp.StatusCode)
	}
}

func TestGitHubFaultKeepsRateLimitHeaders(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	g.FailNextResponse(http.MethodPost, "/statuses/"+strings.Repeat("a", 40), 1, 429,
		http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1700000000"}},
		`{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest"}`)
	resp, _ := call(t, "POST", g.URL+"repos/o/r/statuses/"+strings.Repeat("a", 40), g.Token, `{"state":"success"}`, nil)
	if resp.StatusCode != 429 || resp.Header.Get("X-RateLimit-Remaining") != "0" || resp.Header.Get("X-RateLimit-Reset") != "1700000000" {
		t.Errorf("POST = %d, X-RateLimit-Remaining %q, X-RateLimit-Reset %q; want 429 with the injected headers",
			resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"), resp.Header.Get("X-RateLimit-Reset"))
	}
	if resp, _ := call(t, "GET", g.URL+"repos/o/r", g.Token, "", nil); resp.Header.Get("X-RateLimit-Remaining") == "0" {
		t.Errorf("next GET has X-RateLimit-Remaining 0, want the fake's own count")
	}
}

func TestBitbucketPostStatus(t *testing.T) {
	sha := strings.Repeat("b", 40)
	path := "repositories/ws/r/commit/" + sha + "/statuses/build"
	tests := []struct {
		name       string
		path       string
		body       string
		wantStatus int
		wantField  string // field the 400 names
		wantMsg    string // in the body
	}{
		{name: "created", path: path, body: `{"key":"forgelink-build","state":"INPROGRESS","name":"ci/forgelink: build","url":"https://ci.example.com/p/1"}`, wantStatus: 201},
		{name: "key of 40 characters", path: path, body: `{"key":"` + strings.Repeat("k", 40) + `","state":"STOPPED","url":"https://x.example/"}`, wantStatus: 201},
		{name: "unknown repository", path: "repositories/ws/nope/commit/" + sha + "/statuses/build", body: `{"key":"k","state":"FAILED","url":"https://x.example/"}`,
			wantStatus: 404, wantMsg: "Repository ws/nope not found"},
		{name: "no key", path: path, body: `{"state":"FAILED","url":"https://x.example/"}`, wantStatus: 400, wantField: "key", wantMsg: "This field is required."},
		{name: "key over 40 characters", path: path, body: `{"key":"` + strings.Repeat("k", 41) + `","state":"FAILED","url":"https://x.example/"}`,
			wantStatus: 400, wantField: "key", wantMsg: "at most 40 characters"},
		{name: "state not Bitbucket's", path: path, body: `{"key":"k","state":"failure","url":"https://x.example/"}`, wantStatus: 400, wantField: "state", wantMsg: "INPROGRESS"},
		{name: "no state", path: path, body: `{"key":"k","url":"https://x.example/"}`, wantStatus: 400, wantField: "state", wantMsg: "required"},
		{name: "no url", path: path, body: `{"key":"k","state":"SUCCESSFUL"}`, wantStatus: 400, wantField: "url", wantMsg: "This field is required."},
		{name: "not JSON", path: path, body: `nope`, wantStatus: 400, wantMsg: "Bad request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := vcsfake.NewBitbucket(t)
			b.AddRepo("ws/r", "main", false)
			resp, body := call(t, "POST", b.URL+tc.path, b.Token, tc.body, nil)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("POST = %d %s, want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantStatus/100 == 2 {
				var st struct{ Type, Key, State, URL string }
				if err := json.Unmarshal(body, &st); err != nil || st.Type != "build" || st.Key == "" || st.State == "" || st.URL == "" {
					t.Errorf("created status = %s, want a build status with key, state and url", body)
				}
				if n := b.StatusPosts(); n != 1 {
					t.Errorf("StatusPosts = %d, want 1", n)
				}
				return
			}
			var e struct {
				Type  string
				Error struct {
					Message string
					Fields  map[string][]string
				}
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Type != "error" || e.Error.Message == "" {
				t.Fatalf("body = %s, want Bitbucket's error format", body)
			}
			if tc.wantField != "" && len(e.Error.Fields[tc.wantField]) == 0 {
				t.Errorf("fields = %v, want one for %s", e.Error.Fields, tc.wantField)
			}
			if !strings.Contains(string(body), tc.wantMsg) {
				t.Errorf("body = %s, want it to contain %q", body, tc.wantMsg)
			}
			if got := b.Statuses("ws/r", ""); len(got) != 0 || b.StatusPosts() != 0 {
				t.Errorf("Statuses = %+v, StatusPosts = %d after a refused post, want none", got, b.StatusPosts())
			}
		})
	}
}

// TestBitbucketStatusKeyUpdates checks Bitbucket's semantics: a post with
// a key the commit has updates that status (200), a new key adds one (201).
func TestBitbucketStatusKeyUpdates(t *testing.T) {
	b := vcsfake.NewBitbucket(t)
	b.AddRepo("ws/r", "main", false)
	sha, other := strings.Repeat("1", 40), strings.Repeat("2", 40)
	posts := []struct {
		sha, key, state string
		wantStatus      int
	}{
		{sha, "forgelink-build", "INPROGRESS", 201},
		{sha, "forgelink-test", "INPROGRESS", 201},
		{sha, "forgelink-build", "SUCCESSFUL", 200},
		{other, "forgelink-build", "INPROGRESS", 201}, // another commit: its own status
		{sha, "forgelink-test", "FAILED", 200},
		{sha, "forgelink-test", "FAILED", 200}, // the same again is an update too
	}
	var history []vcsfake.BuildStatus
	for i, p := range posts {
		u := "https://ci.example.com/p/" + strconv.Itoa(i)
		resp, body := call(t, "POST", b.URL+"repositories/ws/r/commit/"+p.sha+"/statuses/build", b.Token,
			`{"key":"`+p.key+`","state":"`+p.state+`","name":"n","url":"`+u+`","description":"d`+strconv.Itoa(i)+`"}`, nil)
		if resp.StatusCode != p.wantStatus {
			t.Fatalf("post #%d (%s %s) = %d %s, want %d", i, p.key, p.state, resp.StatusCode, body, p.wantStatus)
		}
		history = append(history, vcsfake.BuildStatus{SHA: p.sha, Key: p.key, Name: "n", State: p.state, URL: u, Description: "d" + strconv.Itoa(i)})
	}

	wantCurrent := []vcsfake.Status{
		{SHA: sha, Context: "forgelink-build", State: "SUCCESSFUL", TargetURL: "https://ci.example.com/p/2", Description: "d2"},
		{SHA: sha, Context: "forgelink-test", State: "FAILED", TargetURL: "https://ci.example.com/p/5", Description: "d5"},
	}
	if diff := cmp.Diff(wantCurrent, b.Statuses("ws/r", sha)); diff != "" {
		t.Errorf("Statuses (-want +got):\n%s", diff)
	}
	if got := b.Statuses("ws/r", ""); len(got) != 3 {
		t.Errorf("Statuses of every commit = %+v, want 3", got)
	}
	if diff := cmp.Diff(history, b.BuildStatuses("ws/r", "")); diff != "" {
		t.Errorf("BuildStatuses (-want +got):\n%s", diff)
	}
	if got := b.BuildStatuses("ws/r", other); len(got) != 1 || got[0].SHA != other {
		t.Errorf("BuildStatuses(other) = %+v, want its one post", got)
	}
	if n := b.StatusPosts(); n != len(posts) {
		t.Errorf("StatusPosts = %d, want %d", n, len(posts))
	}

	// The list has the current statuses, paginated.
	var keys []string
	next := b.URL + "repositories/ws/r/commit/" + sha + "/statuses?pagelen=1"
	for pages := 0; next != ""; pages++ {
		if pages > 2 {
			t.Fatal("too many pages")
		}
		resp, body := call(t, "GET", next, b.Token, "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d %s", next, resp.StatusCode, body)
		}
		var page struct {
			Values []struct{ Key, State string }
			Next   string
			Size   int
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		if page.Size != 2 {
			t.Errorf("size = %d, want 2", page.Size)
		}
		for _, v := range page.Values {
			keys = append(keys, v.Key+" "+v.State)
		}
		next = page.Next
	}
	if diff := cmp.Diff([]string{"forgelink-build SUCCESSFUL", "forgelink-test FAILED"}, keys); diff != "" {
		t.Errorf("listed statuses (-want +got):\n%s", diff)
	}
	resp, body := call(t, "GET", b.URL+"repositories/ws/r/commit/"+sha+"/statuses/build/forgelink-test", b.Token, "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"state":"FAILED"`) {
		t.Errorf("GET one status = %d %s, want 200 FAILED", resp.StatusCode, body)
	}
	if resp, _ := call(t, "GET", b.URL+"repositories/ws/r/commit/"+sha+"/statuses/build/nope", b.Token, "", nil); resp.StatusCode != 404 {
		t.Errorf("GET unknown key = %d, want 404", resp.StatusCode)
	}
}

func TestBitbucketStatusFailNext(t *testing.T) {
	b := vcsfake.NewBitbucket(t)
	b.AddRepo("ws/r", "main", false)
	sha := strings.Repeat("3", 40)
	u := b.URL + "repositories/ws/r/commit/" + sha + "/statuses/build"
	body := `{"key":"k","state":"SUCCESSFUL","url":"https://x.example/"}`
	b.FailNext(http.MethodPost, "/statuses/build", 429, 1)
	resp, got := call(t, "POST", u, b.Token, body, nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(got), `"type":"error"`) {
		t.Errorf("first POST = %d Retry-After %q %s, want the injected 429", resp.StatusCode, resp.Header.Get("Retry-After"), got)
	}
	if resp, _ := call(t, "POST", u, b.Token, body, nil); resp.StatusCode != 201 {
		t.Errorf("second POST = %d, want 201", resp.StatusCode)
	}
	if n := len(b.BuildStatuses("ws/r", sha)); n != 1 {
		t.Errorf("%d posts recorded, want 1: the failed one is not", n)
	}
}
