package github_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/forgelink"
	"forgelink/shared/github"
	"forgelink/shared/vcsfake"
)

const statusSHA = "0123456789abcdef0123456789abcdef01234567"

// bodyRecorder is an http.RoundTripper that keeps the body of every
// request it passes on.
type bodyRecorder struct {
	next http.RoundTripper

	mu     sync.Mutex
	bodies [][]byte
}

func (r *bodyRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

// statusSetup is forgeSetup whose Forge records the request bodies it
// sends.
func statusSetup(t *testing.T) (*vcsfake.GitHub, *github.Forge, *bodyRecorder) {
	t.Helper()
	g := vcsfake.NewGitHub(t)
	g.AddRepo(forgeRepo, "main", true)
	rec := &bodyRecorder{next: g.Server.Client().Transport}
	f, err := github.NewForge(g.URL, g.Token, &http.Client{Transport: rec})
	if err != nil {
		t.Fatalf("NewForge: %v", err)
	}
	return g, f, rec
}

func TestPostStatus(t *testing.T) {
	tests := []struct {
		name     string
		status   forgelink.CommitStatus
		wantBody map[string]string // the JSON posted
	}{
		{
			name:     "pending workflow",
			status:   forgelink.CommitStatus{Workflow: "build", State: forgelink.StatusPending, TargetURL: "https://ci.example.com/pipelines/1", Description: "Workflow build is queued"},
			wantBody: map[string]string{"state": "pending", "context": "ci/forgelink: build", "target_url": "https://ci.example.com/pipelines/1", "description": "Workflow build is queued"},
		},
		{
			name:     "running is pending",
			status:   forgelink.CommitStatus{Workflow: "build", State: forgelink.StatusRunning, TargetURL: "https://ci.example.com/pipelines/1", Description: "Workflow build is running"},
			wantBody: map[string]string{"state": "pending", "context": "ci/forgelink: build", "target_url": "https://ci.example.com/pipelines/1", "description": "Workflow build is running"},
		},
		{
			name:     "success",
			status:   forgelink.CommitStatus{Workflow: "test", State: forgelink.StatusSuccess, TargetURL: "https://ci.example.com/p/2", Description: "ok"},
			wantBody: map[string]string{"state": "success", "context": "ci/forgelink: test", "target_url": "https://ci.example.com/p/2", "description": "ok"},
		},
		{
			name:     "failed is failure",
			status:   forgelink.CommitStatus{Workflow: "test", State: forgelink.StatusFailed, TargetURL: "https://ci.example.com/p/2", Description: "2 tests failed"},
			wantBody: map[string]string{"state": "failure", "context": "ci/forgelink: test", "target_url": "https://ci.example.com/p/2", "description": "2 tests failed"},
		},
		{
			name:     "error of the whole pipeline",
			status:   forgelink.CommitStatus{State: forgelink.StatusError, TargetURL: "https://ci.example.com/p/3", Description: "config: line 3: unknown key"},
			wantBody: map[string]string{"state": "error", "context": "ci/forgelink", "target_url": "https://ci.example.com/p/3", "description": "config: line 3: unknown key"},
		},
		{
			name:     "canceled is error, without description or link",
			status:   forgelink.CommitStatus{Workflow: "deploy", State: forgelink.StatusCanceled},
			wantBody: map[string]string{"state": "error", "context": "ci/forgelink: deploy"},
		},
		{
			name:     "description of 140 characters",
			status:   forgelink.CommitStatus{Workflow: "w", State: forgelink.StatusSuccess, Description: strings.Repeat("é", forgelink.MaxStatusDescription)},
			wantBody: map[string]string{"state": "success", "context": "ci/forgelink: w", "description": strings.Repeat("é", forgelink.MaxStatusDescription)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, f, rec := statusSetup(t)
			tc.status.Revision = statusSHA
			if err := f.PostStatus(context.Background(), forgeSlug, tc.status); err != nil {
				t.Fatalf("PostStatus: %v", err)
			}
			want := []vcsfake.Status{{
				SHA: statusSHA, State: tc.wantBody["state"], Context: tc.wantBody["context"],
				TargetURL: tc.wantBody["target_url"], Description: tc.wantBody["description"],
			}}
			if diff := cmp.Diff(want, g.Statuses(forgeRepo, statusSHA)); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
			if len(rec.bodies) != 1 {
				t.Fatalf("%d request bodies, want 1", len(rec.bodies))
			}
			var got map[string]string
			if err := json.Unmarshal(rec.bodies[0], &got); err != nil {
				t.Fatalf("request body %s: %v", rec.bodies[0], err)
			}
			if diff := cmp.Diff(tc.wantBody, got); diff != "" {
				t.Errorf("request body (-want +got):\n%s", diff)
			}
			if n := forgeCount(g, http.MethodPost, "/repos/"+forgeRepo+"/statuses/"+statusSHA); n != 1 {
				t.Errorf("POST .../statuses/{sha} made %d times, want 1", n)
			}
		})
	}
}

// TestPostStatusKeepsEach checks that every post adds a status, as GitHub
// keeps them all: the latest per context is the one GitHub shows.
func TestPostStatusKeepsEach(t *testing.T) {
	g, f, _ := statusSetup(t)
	ctx := context.Background()
	for _, st := range []forgelink.StatusState{forgelink.StatusPending, forgelink.StatusRunning, forgelink.StatusSuccess} {
		s := forgelink.CommitStatus{Revision: statusSHA, Workflow: "build", State: st, TargetURL: "https://ci.example.com/p/1"}
		if err := f.PostStatus(ctx, forgeSlug, s); err != nil {
			t.Fatalf("PostStatus(%s): %v", st, err)
		}
	}
	var got []string
	for _, s := range g.Statuses(forgeRepo, statusSHA) {
		got = append(got, s.Context+" "+s.State)
	}
	want := []string{"ci/forgelink: build pending", "ci/forgelink: build pending", "ci/forgelink: build success"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if n := g.StatusPosts(); n != 3 {
		t.Errorf("StatusPosts = %d, want 3", n)
	}
}

func TestPostStatusErrors(t *testing.T) {
	restrictedBody, err := os.ReadFile("../../testdata/corpus/github/errors/oauth_app_access_restrictions.403.json")
	if err != nil {
		t.Fatal(err)
	}
	secondaryBody, err := os.ReadFile("../../testdata/corpus/github/errors/secondary_rate_limit.403.json")
	if err != nil {
		t.Fatal(err)
	}
	const postPath = "/statuses/" + statusSHA
	ok := forgelink.CommitStatus{Revision: statusSHA, Workflow: "build", State: forgelink.StatusSuccess, TargetURL: "https://ci.example.com/p/1"}
	prefix := "github: post status for " + forgeRepo + "@0123456: "
	tests := []struct {
		name       string
		setup      func(g *vcsfake.GitHub)
		badToken   bool
		slug       forgelink.Slug // zero: forgeSlug
		status     forgelink.CommitStatus
		wantKind   forgelink.Kind
		wantMsg    string        // substring of forgelink.MessageOf
		wantPrefix string        // zero: prefix
		wantRetry  time.Duration // -1: no RetryAfter
		restricted bool          // OAuthAppRestricted
	}{
		{
			name: "bad token", badToken: true, status: ok,
			wantKind: forgelink.Unauthorized, wantMsg: "GitHub rejected the token: Bad credentials", wantRetry: -1,
		},
		{
			name: "OAuth App access restrictions", setup: func(g *vcsfake.GitHub) { g.SetOrgRestricted("octo-org", true) }, status: ok,
			wantKind: forgelink.Forbidden, wantMsg: "the `octo-org` organization has enabled OAuth App access restrictions", wantRetry: -1, restricted: true,
		},
		{
			name: "OAuth App access restrictions, corpus body", status: ok,
			setup: func(g *vcsfake.GitHub) {
				g.FailNextResponse(http.MethodPost, postPath, 1, 403, nil, string(restrictedBody))
			},
			wantKind: forgelink.Forbidden, wantRetry: -1, restricted: true,
			wantMsg: "Although you appear to have the correct authorization credentials, the `unit-mesh` organization has enabled OAuth App access restrictions",
		},
		{
			name: "unknown repository", slug: forgelink.Slug{VCS: forgelink.GitHub, Org: "octo-org", Repo: "nope"}, status: ok,
			wantKind: forgelink.NotFound, wantMsg: "repository octo-org/nope not found",
			wantPrefix: "github: post status for octo-org/nope@0123456: ", wantRetry: -1,
		},
		{
			name: "no such commit", status: forgelink.CommitStatus{Revision: "abc1234", State: forgelink.StatusPending},
			wantKind: forgelink.Upstream, wantMsg: "GitHub refused the request (HTTP 422): No commit found for SHA: abc1234",
			wantPrefix: "github: post status for " + forgeRepo + "@abc1234: ", wantRetry: -1,
		},
		{
			name: "status limit reached", status: ok,
			setup: func(g *vcsfake.GitHub) {
				for range vcsfake.GitHubMaxStatuses {
					g.AddStatusDirect(forgeRepo, vcsfake.Status{SHA: statusSHA, State: "pending", Context: "ci/forgelink: build"})
				}
			},
			wantKind: forgelink.Upstream, wantMsg: "This SHA and context has reached the maximum number of statuses.", wantRetry: -1,
		},
		{
			name: "server error", setup: func(g *vcsfake.GitHub) { g.FailNext(http.MethodPost, postPath, 500, 1) }, status: ok,
			wantKind: forgelink.Transient, wantMsg: "HTTP 500", wantRetry: -1,
		},
		{
			name: "bad gateway", setup: func(g *vcsfake.GitHub) { g.FailNext(http.MethodPost, postPath, 502, 1) }, status: ok,
			wantKind: forgelink.Transient, wantMsg: "HTTP 502", wantRetry: -1,
		},
		{
			name: "429 with Retry-After", status: ok,
			setup: func(g *vcsfake.GitHub) {
				g.FailNextResponse(http.MethodPost, postPath, 1, 429, http.Header{"Retry-After": {"30"}}, `{"message":"Too Many Requests"}`)
			},
			wantKind: forgelink.Transient, wantMsg: "rate limit", wantRetry: 30 * time.Second,
		},
		{
			name: "secondary rate limit 403 with Retry-After", setup: func(g *vcsfake.GitHub) { g.FailNext(http.MethodPost, postPath, 403, 1) }, status: ok,
			wantKind: forgelink.Transient, wantMsg: "secondary rate limit", wantRetry: time.Second,
		},
		{
			name: "secondary rate limit 403 without Retry-After", status: ok,
			setup: func(g *vcsfake.GitHub) {
				g.FailNextResponse(http.MethodPost, postPath, 1, 403, nil, string(secondaryBody))
			},
			wantKind: forgelink.Transient, wantMsg: "secondary rate limit", wantRetry: time.Minute,
		},
		{
			name: "secondary rate limit 429", setup: func(g *vcsfake.GitHub) { g.FailNext(http.MethodPost, postPath, 429, 1) }, status: ok,
			wantKind: forgelink.Transient, wantMsg: "rate limit", wantRetry: time.Second,
		},
		{
			name: "403 with Retry-After", status: ok,
			setup: func(g *vcsfake.GitHub) {
				g.FailNextResponse(http.MethodPost, postPath, 1, 403, http.Header{"Retry-After": {"45"}}, `{"message":"Forbidden"}`)
			},
			wantKind: forgelink.Transient, wantMsg: "rate limit", wantRetry: 45 * time.Second,
		},
		{
			name: "primary rate limit 403", setup: func(g *vcsfake.GitHub) { g.SetRateLimitRemaining(0) }, status: ok,
			wantKind: forgelink.Transient, wantMsg: "rate limit exceeded", wantRetry: time.Hour,
		},
		{
			name: "primary rate limit 429", status: ok,
			setup: func(g *vcsfake.GitHub) {
				reset := strconv.FormatInt(time.Now().Add(10*time.Minute).Unix(), 10)
				g.FailNextResponse(http.MethodPost, postPath, 1, 429,
					http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {reset}},
					`{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}`)
			},
			wantKind: forgelink.Transient, wantMsg: "rate limit exceeded", wantRetry: 10 * time.Minute,
		},
		{
			name: "no revision", status: forgelink.CommitStatus{State: forgelink.StatusSuccess},
			wantKind: forgelink.Invalid, wantMsg: "no revision", wantPrefix: "github: post status for " + forgeRepo + "@: ", wantRetry: -1,
		},
		{
			name: "unknown state", status: forgelink.CommitStatus{Revision: statusSHA, State: "done"},
			wantKind: forgelink.Invalid, wantMsg: `invalid status state "done"`, wantRetry: -1,
		},
		{
			name: "description over 140 characters", status: forgelink.CommitStatus{Revision: statusSHA, State: forgelink.StatusFailed, Description: strings.Repeat("x", 141)},
			wantKind: forgelink.Invalid, wantMsg: "141 characters", wantRetry: -1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, f := forgeSetup(t)
			if tc.setup != nil {
				tc.setup(g)
			}
			if tc.badToken {
				var err error
				if f, err = github.NewForge(g.URL, "gho_wrong", nil); err != nil {
					t.Fatal(err)
				}
			}
			slug := tc.slug
			if slug == (forgelink.Slug{}) {
				slug = forgeSlug
			}
			wantPrefix := tc.wantPrefix
			if wantPrefix == "" {
				wantPrefix = prefix
			}
			before := g.StatusPosts()
			err := f.PostStatus(context.Background(), slug, tc.status)
			if got := forgelink.KindOf(err); err == nil || got != tc.wantKind {
				t.Fatalf("PostStatus = %v (kind %v), want kind %v", err, got, tc.wantKind)
			}
			if msg := forgelink.MessageOf(err); !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", msg, tc.wantMsg)
			}
			if !strings.HasPrefix(err.Error(), wantPrefix) {
				t.Errorf("error = %q, want prefix %q", err, wantPrefix)
			}
			if strings.Contains(err.Error(), g.Token) {
				t.Errorf("error %q contains the token", err)
			}
			after, ok := forgelink.RetryAfter(err)
			switch {
			case tc.wantRetry < 0:
				if ok {
					t.Errorf("RetryAfter = %v, want none", after)
				}
			case tc.wantRetry >= 10*time.Minute:
				// Until a reset: a little less than wantRetry by now.
				if !ok || after <= tc.wantRetry-time.Minute || after > tc.wantRetry {
					t.Errorf("RetryAfter = %v, %v; want about %v", after, ok, tc.wantRetry)
				}
			case !ok || after != tc.wantRetry:
				t.Errorf("RetryAfter = %v, %v; want %v", after, ok, tc.wantRetry)
			}
			if got := github.OAuthAppRestricted(err); got != tc.restricted {
				t.Errorf("OAuthAppRestricted = %v, want %v", got, tc.restricted)
			}
			if n := g.StatusPosts() - before; n != 0 {
				t.Errorf("%d statuses accepted, want 0", n)
			}
			if tc.wantKind == forgelink.Invalid && len(g.Requests()) != 0 {
				t.Errorf("requests = %+v for invalid input, want none", g.Requests())
			}
		})
	}
}

func TestPostStatusNetworkError(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	url := g.URL
	g.Server.Close()
	f, err := github.NewForge(url, g.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = f.PostStatus(context.Background(), forgeSlug, forgelink.CommitStatus{Revision: statusSHA, State: forgelink.StatusPending})
	if got := forgelink.KindOf(err); got != forgelink.Transient {
		t.Errorf("PostStatus on a closed server = %v (kind %v), want kind transient", err, got)
	}
}
