package bitbucket_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/bitbucket"
	"forgelink/shared/forgelink"
	"forgelink/shared/vcsfake"
)

const forgeRepo = "octo-ws/hello-world"

var forgeSlug = forgelink.Slug{VCS: forgelink.Bitbucket, Org: "octo-ws", Repo: "hello-world"}

// forgeSetup starts a fake Bitbucket with one private repository and
// returns a Forge for it.
func forgeSetup(t *testing.T) (*vcsfake.Bitbucket, *bitbucket.Forge) {
	t.Helper()
	b := vcsfake.NewBitbucket(t)
	b.AddRepo(forgeRepo, "main", true)
	f, err := bitbucket.NewForge(b.URL, b.Token, b.Server.Client())
	if err != nil {
		t.Fatalf("NewForge: %v", err)
	}
	return b, f
}

// forgeCount returns how many requests with method had a path ending in
// suffix.
func forgeCount(b *vcsfake.Bitbucket, method, suffix string) int {
	n := 0
	for _, r := range b.Requests() {
		if r.Method == method && strings.HasSuffix(r.Path, suffix) {
			n++
		}
	}
	return n
}

func TestForgeRepository(t *testing.T) {
	tests := []struct {
		name       string
		branch     string
		private    bool
		permission string
		fail       int // status of GET /user/permissions/repositories, 0 for none
		wantAdmin  bool
	}{
		{name: "private admin", branch: "main", private: true, permission: "admin", wantAdmin: true},
		{name: "public writer", branch: "master", permission: "write", wantAdmin: false},
		{name: "permissions not askable", branch: "main", permission: "read", fail: http.StatusForbidden, wantAdmin: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, f := forgeSetup(t)
			b.AddRepo(forgeRepo, tc.branch, tc.private)
			b.SetPermission(forgeRepo, vcsfake.BitbucketUsername, tc.permission)
			if tc.fail != 0 {
				b.FailNext(http.MethodGet, "/user/permissions/repositories", tc.fail, 1)
			}
			got, err := f.Repository(context.Background(), forgeSlug)
			if err != nil {
				t.Fatalf("Repository: %v", err)
			}
			want := &forgelink.Repository{FullName: forgeRepo, DefaultBranch: tc.branch, Private: tc.private, Admin: tc.wantAdmin}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Repository (-want +got):\n%s", diff)
			}
		})
	}
}

func TestForgeAuth(t *testing.T) {
	tests := []struct {
		name       string
		accept     string // the token the fake accepts; "" keeps its own
		use        string // the token given to NewForge; "" means the fake's
		wantHeader string // prefix of the Authorization header sent
		wantKind   forgelink.Kind
	}{
		{name: "bearer", wantHeader: "Bearer ", wantKind: forgelink.Internal},
		{name: "app password as basic auth", accept: "octocat:app-pass", use: "octocat:app-pass", wantHeader: "Basic ", wantKind: forgelink.Internal},
		{name: "wrong token", use: "bbat_wrong", wantHeader: "Bearer ", wantKind: forgelink.Unauthorized},
		{name: "wrong app password", accept: "octocat:app-pass", use: "octocat:nope", wantHeader: "Basic ", wantKind: forgelink.Unauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := vcsfake.NewBitbucket(t)
			b.AddRepo(forgeRepo, "main", false)
			if tc.accept != "" {
				b.SetToken(tc.accept)
			}
			token := tc.use
			if token == "" {
				token = b.Token
			}
			var header atomic.Value
			spy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				header.Store(r.Header.Get("Authorization"))
				b.ServeHTTP(w, r)
			}))
			t.Cleanup(spy.Close)
			f, err := bitbucket.NewForge(spy.URL+"/2.0", token, nil)
			if err != nil {
				t.Fatalf("NewForge: %v", err)
			}
			_, err = f.Repository(context.Background(), forgeSlug)
			if got := forgelink.KindOf(err); got != tc.wantKind || (tc.wantKind == forgelink.Internal) != (err == nil) {
				t.Fatalf("Repository = %v (kind %v), want kind %v", err, got, tc.wantKind)
			}
			if h, _ := header.Load().(string); !strings.HasPrefix(h, tc.wantHeader) {
				t.Errorf("Authorization = %q, want prefix %q", h, tc.wantHeader)
			}
			if err != nil {
				if !strings.HasPrefix(forgelink.MessageOf(err), "Bitbucket rejected the token: ") {
					t.Errorf("message = %q", forgelink.MessageOf(err))
				}
				if strings.Contains(err.Error(), token) {
					t.Errorf("error %q contains the token", err)
				}
			}
		})
	}
}

func TestForgeNewForgeInvalid(t *testing.T) {
	tests := []struct{ name, baseURL, token string }{
		{"not http", "ftp://api.bitbucket.org/2.0/", "t"},
		{"no host", "https:///2.0/", "t"},
		{"credentials in URL", "https://user:pass@api.bitbucket.org/2.0/", "t"},
		{"empty token", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bitbucket.NewForge(tc.baseURL, tc.token, nil)
			if got := forgelink.KindOf(err); got != forgelink.Invalid {
				t.Fatalf("NewForge(%q) = %v (kind %v), want kind invalid", tc.baseURL, err, got)
			}
			if strings.Contains(err.Error(), "pass") {
				t.Errorf("error %q shows the URL's password", err)
			}
		})
	}
}

func TestForgeEnsureDeployKey(t *testing.T) {
	ctx := context.Background()
	b, f := forgeSetup(t)
	pub := vcsfake.NewPublicKey("forgelink@host")
	material := strings.Join(strings.Fields(pub)[:2], " ")

	id, err := f.EnsureDeployKey(ctx, forgeSlug, "forgelink", pub)
	if err != nil {
		t.Fatalf("EnsureDeployKey: %v", err)
	}
	want := []vcsfake.Key{{ID: id, Title: "forgelink", Key: material, ReadOnly: true}}
	if diff := cmp.Diff(want, b.DeployKeys(forgeRepo)); diff != "" {
		t.Fatalf("deploy keys after first ensure (-want +got):\n%s", diff)
	}

	id2, err := f.EnsureDeployKey(ctx, forgeSlug, "forgelink", material+" another-comment")
	if err != nil {
		t.Fatalf("second EnsureDeployKey: %v", err)
	}
	if id2 != id {
		t.Errorf("second EnsureDeployKey id = %q, want %q", id2, id)
	}
	if diff := cmp.Diff(want, b.DeployKeys(forgeRepo)); diff != "" {
		t.Errorf("deploy keys after second ensure (-want +got):\n%s", diff)
	}
	if n := forgeCount(b, http.MethodPost, "/deploy-keys"); n != 1 {
		t.Errorf("POST .../deploy-keys made %d times, want 1", n)
	}

	if !b.DeleteKeyDirect(forgeRepo, id) {
		t.Fatal("DeleteKeyDirect found no key")
	}
	id3, err := f.EnsureDeployKey(ctx, forgeSlug, "forgelink", pub)
	if err != nil {
		t.Fatalf("EnsureDeployKey after deletion: %v", err)
	}
	if id3 == id {
		t.Errorf("EnsureDeployKey after deletion returned the deleted id %q", id)
	}
	want = []vcsfake.Key{{ID: id3, Title: "forgelink", Key: material, ReadOnly: true}}
	if diff := cmp.Diff(want, b.DeployKeys(forgeRepo)); diff != "" {
		t.Errorf("deploy keys after re-adding (-want +got):\n%s", diff)
	}
}

func TestForgeEnsureDeployKeyShared(t *testing.T) {
	// Bitbucket, unlike GitHub, lets one deploy key serve several repositories.
	ctx := context.Background()
	b, f := forgeSetup(t)
	b.AddRepo("octo-ws/other", "main", false)
	other := forgelink.Slug{VCS: forgelink.Bitbucket, Org: "octo-ws", Repo: "other"}
	pub := vcsfake.NewPublicKey("")
	for _, s := range []forgelink.Slug{forgeSlug, other} {
		if _, err := f.EnsureDeployKey(ctx, s, "forgelink", pub); err != nil {
			t.Fatalf("EnsureDeployKey(%s): %v", s, err)
		}
		if n := len(b.DeployKeys(s.FullName())); n != 1 {
			t.Errorf("%s has %d deploy keys, want 1", s.FullName(), n)
		}
	}
}

func TestForgeEnsureDeployKeyAccountKey(t *testing.T) {
	ctx := context.Background()
	b, f := forgeSetup(t)
	pub := vcsfake.NewPublicKey("")
	b.RegisterAccountKey(pub)
	_, err := f.EnsureDeployKey(ctx, forgeSlug, "forgelink", pub)
	if got := forgelink.KindOf(err); got != forgelink.Conflict {
		t.Fatalf("EnsureDeployKey = %v (kind %v), want kind conflict", err, got)
	}
	if msg := forgelink.MessageOf(err); !strings.Contains(msg, "already registered that SSH key") {
		t.Errorf("message = %q, want Bitbucket's reason", msg)
	}
	if !strings.HasPrefix(err.Error(), "bitbucket: add deploy key to "+forgeRepo+": ") {
		t.Errorf("error %q lacks the context prefix", err)
	}
}

// TestForgeEnsureDeployKeyRace covers a key added between the list and the
// POST: Bitbucket's 400 is answered by listing again.
func TestForgeEnsureDeployKeyRace(t *testing.T) {
	ctx := context.Background()
	b, f := forgeSetup(t)
	pub := vcsfake.NewPublicKey("")
	existing := b.AddKeyDirect(forgeRepo, "forgelink", pub)
	b.FailNextResponse(http.MethodGet, "/deploy-keys", 1, http.StatusOK, nil, `{"pagelen":100,"size":0,"page":1,"values":[]}`)

	id, err := f.EnsureDeployKey(ctx, forgeSlug, "forgelink", pub)
	if err != nil {
		t.Fatalf("EnsureDeployKey: %v", err)
	}
	if id != existing.ID {
		t.Errorf("id = %q, want the existing key's %q", id, existing.ID)
	}
	if n := forgeCount(b, http.MethodPost, "/deploy-keys"); n != 1 {
		t.Errorf("POST .../deploy-keys made %d times, want 1 (answered 400)", n)
	}
}

func TestForgeDeleteDeployKey(t *testing.T) {
	ctx := context.Background()
	b, f := forgeSetup(t)
	id, err := f.EnsureDeployKey(ctx, forgeSlug, "forgelink", vcsfake.NewPublicKey(""))
	if err != nil {
		t.Fatalf("EnsureDeployKey: %v", err)
	}
	for i := range 2 {
		if err := f.DeleteDeployKey(ctx, forgeSlug, id); err != nil {
			t.Fatalf("DeleteDeployKey #%d: %v", i+1, err)
		}
	}
	if keys := b.DeployKeys(forgeRepo); len(keys) != 0 {
		t.Errorf("deploy keys = %+v, want none", keys)
	}
}

func TestForgeEnsureHook(t *testing.T) {
	ctx := context.Background()
	b, f := forgeSetup(t)
	spec := forgelink.HookSpec{URL: "https://ci.example.com/hooks/bitbucket/h1", Secret: "s1"}
	wantHook := func(id, secret string) []vcsfake.Hook {
		return []vcsfake.Hook{{
			ID: id, URL: spec.URL, Secret: secret, Active: true,
			Events: []string{"repo:push", "pullrequest:created", "pullrequest:updated", "pullrequest:fulfilled", "pullrequest:rejected"},
		}}
	}

	id, err := f.EnsureHook(ctx, forgeSlug, spec)
	if err != nil {
		t.Fatalf("EnsureHook: %v", err)
	}
	if !strings.HasPrefix(id, "{") || !strings.HasSuffix(id, "}") {
		t.Errorf("hook id %q is not a braced uuid", id)
	}
	if diff := cmp.Diff(wantHook(id, "s1"), b.Hooks(forgeRepo)); diff != "" {
		t.Fatalf("hooks after first ensure (-want +got):\n%s", diff)
	}

	spec.Secret = "s2"
	id2, err := f.EnsureHook(ctx, forgeSlug, spec)
	if err != nil {
		t.Fatalf("second EnsureHook: %v", err)
	}
	if id2 != id {
		t.Errorf("second EnsureHook id = %q, want %q", id2, id)
	}
	if diff := cmp.Diff(wantHook(id, "s2"), b.Hooks(forgeRepo)); diff != "" {
		t.Errorf("hooks after second ensure (-want +got):\n%s", diff)
	}

	b.EditHookDirect(forgeRepo, id, func(h *vcsfake.Hook) { h.Active, h.Events, h.Secret = false, []string{"repo:push"}, "" })
	if _, err := f.EnsureHook(ctx, forgeSlug, spec); err != nil {
		t.Fatalf("EnsureHook after edit: %v", err)
	}
	if diff := cmp.Diff(wantHook(id, "s2"), b.Hooks(forgeRepo)); diff != "" {
		t.Errorf("hooks after repair (-want +got):\n%s", diff)
	}

	if !b.DeleteHookDirect(forgeRepo, id) {
		t.Fatal("DeleteHookDirect found no hook")
	}
	id3, err := f.EnsureHook(ctx, forgeSlug, spec)
	if err != nil {
		t.Fatalf("EnsureHook after deletion: %v", err)
	}
	if id3 == id {
		t.Errorf("EnsureHook after deletion returned the deleted id %q", id)
	}
	if diff := cmp.Diff(wantHook(id3, "s2"), b.Hooks(forgeRepo)); diff != "" {
		t.Errorf("hooks after re-creation (-want +got):\n%s", diff)
	}

	// DeleteHook escapes the braces of the uuid; the second time it is gone.
	for i := range 2 {
		if err := f.DeleteHook(ctx, forgeSlug, id3); err != nil {
			t.Fatalf("DeleteHook #%d: %v", i+1, err)
		}
	}
	if hooks := b.Hooks(forgeRepo); len(hooks) != 0 {
		t.Errorf("hooks after DeleteHook = %+v, want none", hooks)
	}
}

func TestForgeEnsureHookRemovesDuplicates(t *testing.T) {
	ctx := context.Background()
	b, f := forgeSetup(t)
	spec := forgelink.HookSpec{URL: "https://ci.example.com/hooks/bitbucket/h1", Secret: "s"}
	first := b.AddHookDirect(forgeRepo, vcsfake.Hook{URL: spec.URL, Events: []string{"repo:push"}, Active: true})
	b.AddHookDirect(forgeRepo, vcsfake.Hook{URL: spec.URL, Events: []string{"repo:push"}, Active: true})
	keep := b.AddHookDirect(forgeRepo, vcsfake.Hook{URL: "https://elsewhere.example.com/", Events: []string{"repo:push"}})

	id, err := f.EnsureHook(ctx, forgeSlug, spec)
	if err != nil {
		t.Fatalf("EnsureHook: %v", err)
	}
	if id != first.ID {
		t.Errorf("id = %q, want the first matching hook's %q", id, first.ID)
	}
	var got []string
	for _, h := range b.Hooks(forgeRepo) {
		got = append(got, h.ID)
	}
	if diff := cmp.Diff([]string{first.ID, keep.ID}, got); diff != "" {
		t.Errorf("hook ids (-want +got):\n%s", diff)
	}
}

func TestForgePagination(t *testing.T) {
	ctx := context.Background()

	t.Run("deploy keys", func(t *testing.T) {
		b, f := forgeSetup(t)
		for i := range 150 {
			b.AddKeyDirect(forgeRepo, "other "+strconv.Itoa(i), vcsfake.NewPublicKey(""))
		}
		pub := vcsfake.NewPublicKey("")
		ours := b.AddKeyDirect(forgeRepo, "forgelink", pub)
		id, err := f.EnsureDeployKey(ctx, forgeSlug, "forgelink", pub)
		if err != nil {
			t.Fatalf("EnsureDeployKey: %v", err)
		}
		if id != ours.ID {
			t.Errorf("id = %q, want %q from page 2", id, ours.ID)
		}
		if n := forgeCount(b, http.MethodGet, "/deploy-keys"); n != 2 {
			t.Errorf("%d list requests, want 2 pages of 100", n)
		}
		if n := forgeCount(b, http.MethodPost, "/deploy-keys"); n != 0 {
			t.Errorf("%d POSTs, want 0", n)
		}
	})

	t.Run("hooks", func(t *testing.T) {
		b, f := forgeSetup(t)
		var target vcsfake.Hook
		for i := range 150 {
			h := b.AddHookDirect(forgeRepo, vcsfake.Hook{URL: "https://other.example.com/" + strconv.Itoa(i), Events: []string{"repo:push"}, Active: true})
			if i == 140 {
				target = h
			}
		}
		id, err := f.EnsureHook(ctx, forgeSlug, forgelink.HookSpec{URL: target.URL, Secret: "s"})
		if err != nil {
			t.Fatalf("EnsureHook (existing on page 2): %v", err)
		}
		if id != target.ID {
			t.Errorf("id = %q, want %q from page 2", id, target.ID)
		}
		newID, err := f.EnsureHook(ctx, forgeSlug, forgelink.HookSpec{URL: "https://ci.example.com/new", Secret: "s"})
		if err != nil {
			t.Fatalf("EnsureHook (new): %v", err)
		}
		hooks := b.Hooks(forgeRepo)
		if len(hooks) != 151 || hooks[150].ID != newID || hooks[140].Secret != "s" {
			t.Errorf("got %d hooks, want 151 with the new one last and #140 updated", len(hooks))
		}
	})
}

// TestForgeNextOutsideAPI checks that a page's next link to another host is
// not followed: the token would go with it.
func TestForgeNextOutsideAPI(t *testing.T) {
	var called atomic.Bool
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called.Store(true) }))
	t.Cleanup(evil.Close)
	b, f := forgeSetup(t)
	b.FailNextResponse(http.MethodGet, "/hooks", 1, http.StatusOK, nil,
		`{"values":[],"next":"`+evil.URL+`/2.0/repositories/octo-ws/hello-world/hooks?page=2"}`)

	_, err := f.EnsureHook(context.Background(), forgeSlug, forgelink.HookSpec{URL: "https://ci.example.com/h", Secret: "s"})
	if got := forgelink.KindOf(err); got != forgelink.Upstream {
		t.Errorf("EnsureHook = %v (kind %v), want kind upstream", err, got)
	}
	if called.Load() {
		t.Error("the next link outside the API was followed")
	}
}

func TestForgeErrors(t *testing.T) {
	ensureKey := func(f *bitbucket.Forge) error {
		_, err := f.EnsureDeployKey(context.Background(), forgeSlug, "forgelink", vcsfake.NewPublicKey(""))
		return err
	}
	ensureHook := func(f *bitbucket.Forge) error {
		_, err := f.EnsureHook(context.Background(), forgeSlug, forgelink.HookSpec{URL: "https://ci.example.com/h", Secret: "s"})
		return err
	}
	repository := func(f *bitbucket.Forge) error {
		_, err := f.Repository(context.Background(), forgeSlug)
		return err
	}
	tests := []struct {
		name       string
		setup      func(b *vcsfake.Bitbucket)
		call       func(f *bitbucket.Forge) error
		wantKind   forgelink.Kind
		wantMsg    string
		wantPrefix string
		wantRetry  time.Duration // -1: no RetryAfter
	}{
		{
			name: "unknown repository", call: func(f *bitbucket.Forge) error {
				_, err := f.Repository(context.Background(), forgelink.Slug{VCS: forgelink.Bitbucket, Org: "octo-ws", Repo: "nope"})
				return err
			},
			wantKind: forgelink.NotFound, wantMsg: "repository octo-ws/nope not found", wantPrefix: "bitbucket: get repository octo-ws/nope: ", wantRetry: -1,
		},
		{
			name: "not an admin", setup: func(b *vcsfake.Bitbucket) { b.SetPermission(forgeRepo, vcsfake.BitbucketUsername, "write") }, call: ensureHook,
			wantKind: forgelink.Forbidden, wantMsg: "administrator", wantPrefix: "bitbucket: list hooks of " + forgeRepo + ": ", wantRetry: -1,
		},
		{
			name: "missing scope", setup: func(b *vcsfake.Bitbucket) { b.FailNext(http.MethodPost, "/deploy-keys", 403, 1) }, call: ensureKey,
			wantKind: forgelink.Forbidden, wantMsg: "privilege scopes", wantPrefix: "bitbucket: add deploy key to " + forgeRepo + ": ", wantRetry: -1,
		},
		{
			name: "server error", setup: func(b *vcsfake.Bitbucket) { b.FailNext(http.MethodGet, "/repositories/"+forgeRepo, 500, 1) }, call: repository,
			wantKind: forgelink.Transient, wantMsg: "HTTP 500", wantPrefix: "bitbucket: get repository ", wantRetry: -1,
		},
		{
			name: "bad gateway on hook", setup: func(b *vcsfake.Bitbucket) { b.FailNext(http.MethodPost, "/hooks", 502, 1) }, call: ensureHook,
			wantKind: forgelink.Transient, wantMsg: "HTTP 502", wantPrefix: "bitbucket: add hook to " + forgeRepo + ": ", wantRetry: -1,
		},
		{
			name: "rate limited", setup: func(b *vcsfake.Bitbucket) { b.FailNext(http.MethodGet, "/deploy-keys", 429, 1) }, call: ensureKey,
			wantKind: forgelink.Transient, wantMsg: "rate limit", wantPrefix: "bitbucket: list deploy keys of ", wantRetry: time.Second,
		},
		{
			name: "bad request", setup: func(b *vcsfake.Bitbucket) {
				b.FailNextResponse(http.MethodPost, "/hooks", 1, 400, nil, `{"type":"error","error":{"message":"Bad request","fields":{"url":["Enter a valid URL."]}}}`)
			}, call: ensureHook,
			wantKind: forgelink.Upstream, wantMsg: "Bad request (url: Enter a valid URL.)", wantPrefix: "bitbucket: add hook to ", wantRetry: -1,
		},
		{
			name: "non-JSON error body", setup: func(b *vcsfake.Bitbucket) {
				b.FailNextResponse(http.MethodGet, "/repositories/"+forgeRepo, 1, 503, http.Header{"Content-Type": {"text/html"}}, "<html>down</html>")
			}, call: repository,
			wantKind: forgelink.Transient, wantMsg: "HTTP 503", wantPrefix: "bitbucket: get repository ", wantRetry: -1,
		},
		{
			name: "delete key server error", setup: func(b *vcsfake.Bitbucket) { b.FailNext(http.MethodDelete, "/deploy-keys/7", 500, 1) },
			call:     func(f *bitbucket.Forge) error { return f.DeleteDeployKey(context.Background(), forgeSlug, "7") },
			wantKind: forgelink.Transient, wantMsg: "HTTP 500", wantPrefix: "bitbucket: delete deploy key 7 of " + forgeRepo + ": ", wantRetry: -1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, f := forgeSetup(t)
			if tc.setup != nil {
				tc.setup(b)
			}
			err := tc.call(f)
			if got := forgelink.KindOf(err); got != tc.wantKind {
				t.Fatalf("err = %v (kind %v), want kind %v", err, got, tc.wantKind)
			}
			if msg := forgelink.MessageOf(err); !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", msg, tc.wantMsg)
			}
			if !strings.HasPrefix(err.Error(), tc.wantPrefix) {
				t.Errorf("error = %q, want prefix %q", err, tc.wantPrefix)
			}
			if strings.Contains(err.Error(), b.Token) {
				t.Errorf("error %q contains the token", err)
			}
			after, ok := forgelink.RetryAfter(err)
			if tc.wantRetry < 0 && ok || tc.wantRetry >= 0 && (!ok || after != tc.wantRetry) {
				t.Errorf("RetryAfter = %v, %v; want %v", after, ok, tc.wantRetry)
			}
		})
	}
}

func TestForgeNetworkError(t *testing.T) {
	b := vcsfake.NewBitbucket(t)
	u, _ := url.Parse(b.URL)
	b.Server.Close()
	f, err := bitbucket.NewForge(u.String(), b.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Repository(context.Background(), forgeSlug)
	if got := forgelink.KindOf(err); got != forgelink.Transient {
		t.Errorf("Repository on a closed server = %v (kind %v), want kind transient", err, got)
	}
}

// TestForgeIDIsEscaped checks that an id cannot change the request's path
// or query: "7?x" is one path segment.
func TestForgeIDIsEscaped(t *testing.T) {
	b, f := forgeSetup(t)
	b.FailNext(http.MethodDelete, "/deploy-keys/7?x", http.StatusInternalServerError, 1)
	err := f.DeleteDeployKey(context.Background(), forgeSlug, "7?x")
	if got := forgelink.KindOf(err); got != forgelink.Transient {
		t.Fatalf("DeleteDeployKey(7?x) = %v (kind %v), want the injected 500 on path .../deploy-keys/7?x", err, got)
	}
}
