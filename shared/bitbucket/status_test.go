package bitbucket_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/bitbucket"
	"forgelink/shared/forgelink"
	"forgelink/shared/vcsfake"
)

const statusSHA = "0123456789abcdef0123456789abcdef01234567"

func TestPostStatus(t *testing.T) {
	const link = "https://ci.example.com/pipelines/1"
	tests := []struct {
		name   string
		status forgelink.CommitStatus
		want   vcsfake.BuildStatus
	}{
		{
			name:   "pending",
			status: forgelink.CommitStatus{Workflow: "build", State: forgelink.StatusPending, TargetURL: link, Description: "Workflow build is queued"},
			want:   vcsfake.BuildStatus{Key: "forgelink-build", Name: "ci/forgelink: build", State: "INPROGRESS", URL: link, Description: "Workflow build is queued"},
		},
		{
			name:   "running is in progress",
			status: forgelink.CommitStatus{Workflow: "build", State: forgelink.StatusRunning, TargetURL: link, Description: "Workflow build is running"},
			want:   vcsfake.BuildStatus{Key: "forgelink-build", Name: "ci/forgelink: build", State: "INPROGRESS", URL: link, Description: "Workflow build is running"},
		},
		{
			name:   "success is successful",
			status: forgelink.CommitStatus{Workflow: "test", State: forgelink.StatusSuccess, TargetURL: link, Description: "ok"},
			want:   vcsfake.BuildStatus{Key: "forgelink-test", Name: "ci/forgelink: test", State: "SUCCESSFUL", URL: link, Description: "ok"},
		},
		{
			name:   "failed",
			status: forgelink.CommitStatus{Workflow: "test", State: forgelink.StatusFailed, TargetURL: link, Description: "2 tests failed"},
			want:   vcsfake.BuildStatus{Key: "forgelink-test", Name: "ci/forgelink: test", State: "FAILED", URL: link, Description: "2 tests failed"},
		},
		{
			name:   "error of the whole pipeline is failed",
			status: forgelink.CommitStatus{State: forgelink.StatusError, TargetURL: link, Description: "config: line 3: unknown key"},
			want:   vcsfake.BuildStatus{Key: "forgelink", Name: "ci/forgelink", State: "FAILED", URL: link, Description: "config: line 3: unknown key"},
		},
		{
			name:   "canceled is stopped, without description",
			status: forgelink.CommitStatus{Workflow: "deploy", State: forgelink.StatusCanceled, TargetURL: link},
			want:   vcsfake.BuildStatus{Key: "forgelink-deploy", Name: "ci/forgelink: deploy", State: "STOPPED", URL: link},
		},
		{
			name:   "workflow name that needs a hashed key",
			status: forgelink.CommitStatus{Workflow: "build and test (linux/amd64)", State: forgelink.StatusSuccess, TargetURL: link},
			want: vcsfake.BuildStatus{
				Key: forgelink.BitbucketStatusKey("build and test (linux/amd64)"), Name: "ci/forgelink: build and test (linux/amd64)",
				State: "SUCCESSFUL", URL: link,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, f := forgeSetup(t)
			tc.status.Revision = statusSHA
			if err := f.PostStatus(context.Background(), forgeSlug, tc.status); err != nil {
				t.Fatalf("PostStatus: %v", err)
			}
			tc.want.SHA = statusSHA
			if diff := cmp.Diff([]vcsfake.BuildStatus{tc.want}, b.BuildStatuses(forgeRepo, statusSHA)); diff != "" {
				t.Errorf("build statuses (-want +got):\n%s", diff)
			}
			if n := forgeCount(b, http.MethodPost, "/repositories/"+forgeRepo+"/commit/"+statusSHA+"/statuses/build"); n != 1 {
				t.Errorf("POST .../statuses/build made %d times, want 1", n)
			}
		})
	}
}

// TestPostStatusUpdates checks that the workflow's status is replaced,
// not added to: the key is the same for every post of one workflow.
func TestPostStatusUpdates(t *testing.T) {
	b, f := forgeSetup(t)
	ctx := context.Background()
	post := func(workflow string, state forgelink.StatusState) {
		t.Helper()
		s := forgelink.CommitStatus{Revision: statusSHA, Workflow: workflow, State: state, TargetURL: "https://ci.example.com/p/1", Description: string(state)}
		if err := f.PostStatus(ctx, forgeSlug, s); err != nil {
			t.Fatalf("PostStatus(%s, %s): %v", workflow, state, err)
		}
	}
	post("build", forgelink.StatusPending)
	post("test", forgelink.StatusPending)
	post("build", forgelink.StatusRunning)
	post("build", forgelink.StatusSuccess)
	post("test", forgelink.StatusFailed)

	want := []vcsfake.Status{
		{SHA: statusSHA, Context: "forgelink-build", State: "SUCCESSFUL", TargetURL: "https://ci.example.com/p/1", Description: "success"},
		{SHA: statusSHA, Context: "forgelink-test", State: "FAILED", TargetURL: "https://ci.example.com/p/1", Description: "failed"},
	}
	if diff := cmp.Diff(want, b.Statuses(forgeRepo, statusSHA)); diff != "" {
		t.Errorf("current statuses (-want +got):\n%s", diff)
	}
	if n := len(b.BuildStatuses(forgeRepo, statusSHA)); n != 5 {
		t.Errorf("%d posts, want 5", n)
	}
}

func TestPostStatusErrors(t *testing.T) {
	const postPath = "/statuses/build"
	ok := forgelink.CommitStatus{Revision: statusSHA, Workflow: "build", State: forgelink.StatusSuccess, TargetURL: "https://ci.example.com/p/1"}
	prefix := "bitbucket: post status for " + forgeRepo + "@0123456: "
	tests := []struct {
		name       string
		setup      func(b *vcsfake.Bitbucket)
		slug       forgelink.Slug // zero: forgeSlug
		status     forgelink.CommitStatus
		wantKind   forgelink.Kind
		wantMsg    string
		wantPrefix string        // zero: prefix
		wantRetry  time.Duration // -1: no RetryAfter
	}{
		{
			name: "bad token", setup: func(b *vcsfake.Bitbucket) { b.SetToken("other") }, status: ok,
			wantKind: forgelink.Unauthorized, wantMsg: "Bitbucket rejected the token: Token is invalid", wantRetry: -1,
		},
		{
			name: "missing scope", setup: func(b *vcsfake.Bitbucket) { b.FailNext(http.MethodPost, postPath, 403, 1) }, status: ok,
			wantKind: forgelink.Forbidden, wantMsg: "privilege scopes", wantRetry: -1,
		},
		{
			name: "unknown repository", slug: forgelink.Slug{VCS: forgelink.Bitbucket, Org: "octo-ws", Repo: "nope"}, status: ok,
			wantKind: forgelink.NotFound, wantMsg: "commit 0123456 in repository octo-ws/nope not found",
			wantPrefix: "bitbucket: post status for octo-ws/nope@0123456: ", wantRetry: -1,
		},
		{
			name: "bad request", status: ok,
			setup: func(b *vcsfake.Bitbucket) {
				b.FailNextResponse(http.MethodPost, postPath, 1, 400, nil,
					`{"type":"error","error":{"message":"Bad request","fields":{"url":["Enter a valid URL."]}}}`)
			},
			wantKind: forgelink.Upstream, wantMsg: "Bitbucket refused the request (HTTP 400): Bad request (url: Enter a valid URL.)", wantRetry: -1,
		},
		{
			name: "server error", setup: func(b *vcsfake.Bitbucket) { b.FailNext(http.MethodPost, postPath, 500, 1) }, status: ok,
			wantKind: forgelink.Transient, wantMsg: "HTTP 500", wantRetry: -1,
		},
		{
			name: "unavailable", setup: func(b *vcsfake.Bitbucket) { b.FailNext(http.MethodPost, postPath, 503, 1) }, status: ok,
			wantKind: forgelink.Transient, wantMsg: "HTTP 503", wantRetry: -1,
		},
		{
			name: "rate limited", setup: func(b *vcsfake.Bitbucket) { b.FailNext(http.MethodPost, postPath, 429, 1) }, status: ok,
			wantKind: forgelink.Transient, wantMsg: "rate limit", wantRetry: time.Second,
		},
		{
			name: "rate limited with a longer Retry-After", status: ok,
			setup: func(b *vcsfake.Bitbucket) {
				b.FailNextResponse(http.MethodPost, postPath, 1, 429, http.Header{"Retry-After": {"120"}}, "")
			},
			wantKind: forgelink.Transient, wantMsg: "retry after 2m0s", wantRetry: 2 * time.Minute,
		},
		{
			name: "rate limited without Retry-After", status: ok,
			setup: func(b *vcsfake.Bitbucket) {
				b.FailNextResponse(http.MethodPost, postPath, 1, 429, nil, `{"type":"error","error":{"message":"Rate limit for this resource has been exceeded"}}`)
			},
			wantKind: forgelink.Transient, wantMsg: "rate limit", wantRetry: time.Minute,
		},
		{
			name: "no link", status: forgelink.CommitStatus{Revision: statusSHA, State: forgelink.StatusPending},
			wantKind: forgelink.Invalid, wantMsg: "needs a link", wantRetry: -1,
		},
		{
			name: "no revision", status: forgelink.CommitStatus{State: forgelink.StatusPending, TargetURL: "https://ci.example.com/p/1"},
			wantKind: forgelink.Invalid, wantMsg: "no revision", wantPrefix: "bitbucket: post status for " + forgeRepo + "@: ", wantRetry: -1,
		},
		{
			name: "unknown state", status: forgelink.CommitStatus{Revision: statusSHA, State: "done", TargetURL: "https://ci.example.com/p/1"},
			wantKind: forgelink.Invalid, wantMsg: `invalid status state "done"`, wantRetry: -1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, f := forgeSetup(t)
			if tc.setup != nil {
				tc.setup(b)
			}
			slug := tc.slug
			if slug == (forgelink.Slug{}) {
				slug = forgeSlug
			}
			wantPrefix := tc.wantPrefix
			if wantPrefix == "" {
				wantPrefix = prefix
			}
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
			if strings.Contains(err.Error(), b.Token) {
				t.Errorf("error %q contains the token", err)
			}
			after, ok := forgelink.RetryAfter(err)
			if tc.wantRetry < 0 && ok || tc.wantRetry >= 0 && (!ok || after != tc.wantRetry) {
				t.Errorf("RetryAfter = %v, %v; want %v", after, ok, tc.wantRetry)
			}
			if n := b.StatusPosts(); n != 0 {
				t.Errorf("%d statuses accepted, want 0", n)
			}
			if tc.wantKind == forgelink.Invalid && len(b.Requests()) != 0 {
				t.Errorf("requests = %+v for invalid input, want none", b.Requests())
			}
		})
	}
}

func TestPostStatusNetworkError(t *testing.T) {
	b := vcsfake.NewBitbucket(t)
	u := b.URL
	b.Server.Close()
	f, err := bitbucket.NewForge(u, b.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = f.PostStatus(context.Background(), forgeSlug, forgelink.CommitStatus{Revision: statusSHA, State: forgelink.StatusPending, TargetURL: "https://ci.example.com/p/1"})
	if got := forgelink.KindOf(err); got != forgelink.Transient {
		t.Errorf("PostStatus on a closed server = %v (kind %v), want kind transient", err, got)
	}
}
