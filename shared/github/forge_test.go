package github_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/forgelink"
	"forgelink/shared/github"
	"forgelink/shared/vcsfake"
)

const forgeRepo = "octo-org/hello-world"

var forgeSlug = forgelink.Slug{VCS: forgelink.GitHub, Org: "octo-org", Repo: "hello-world"}

// forgeSetup starts a fake GitHub with one private repository and returns
// a Forge for it through the GitHub Enterprise Server URL form.
func forgeSetup(t *testing.T) (*vcsfake.GitHub, *github.Forge) {
	t.Helper()
	g := vcsfake.NewGitHub(t)
	g.AddRepo(forgeRepo, "main", true)
	f, err := github.NewForge(g.URL, g.Token, g.Server.Client())
	if err != nil {
		t.Fatalf("NewForge: %v", err)
	}
	return g, f
}

// forgeCount returns how many requests with method had a path ending in
// suffix.
func forgeCount(g *vcsfake.GitHub, method, suffix string) int {
	n := 0
	for _, r := range g.Requests() {
		if r.Method == method && strings.HasSuffix(r.Path, suffix) {
			n++
		}
	}
	return n
}

func TestForgeRepository(t *testing.T) {
	tests := []struct {
		name    string
		branch  string
		private bool
		admin   bool
	}{
		{"private admin", "main", true, true},
		{"public member", "trunk", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, f := forgeSetup(t)
			g.AddRepo(forgeRepo, tc.branch, tc.private)
			g.SetAdmin(forgeRepo, tc.admin)
			got, err := f.Repository(context.Background(), forgeSlug)
			if err != nil {
				t.Fatalf("Repository: %v", err)
			}
			want := &forgelink.Repository{FullName: forgeRepo, DefaultBranch: tc.branch, Private: tc.private, Admin: tc.admin}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Repository (-want +got):\n%s", diff)
			}
		})
	}
}

func TestForgeBaseURL(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo(forgeRepo, "main", false)
	tests := []struct {
		name     string
		baseURL  string
		wantPath string // path of the request the fake saw
	}{
		{"enterprise server", g.URL, "/api/v3/repos/" + forgeRepo},
		{"enterprise server without trailing slash", strings.TrimSuffix(g.URL, "/"), "/api/v3/repos/" + forgeRepo},
		{"github.com form", g.Server.URL + "/", "/repos/" + forgeRepo},
		{"github.com form without trailing slash", g.Server.URL, "/repos/" + forgeRepo},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := github.NewForge(tc.baseURL, g.Token, nil)
			if err != nil {
				t.Fatalf("NewForge(%q): %v", tc.baseURL, err)
			}
			before := len(g.Requests())
			repo, err := f.Repository(context.Background(), forgeSlug)
			if err != nil {
				t.Fatalf("Repository: %v", err)
			}
			if repo.DefaultBranch != "main" {
				t.Errorf("DefaultBranch = %q, want main", repo.DefaultBranch)
			}
			reqs := g.Requests()[before:]
			if len(reqs) != 1 || reqs[0].Path != tc.wantPath {
				t.Errorf("requests = %+v, want one GET %s", reqs, tc.wantPath)
			}
		})
	}
}

func TestForgeNewForgeInvalid(t *testing.T) {
	tests := []struct{ name, baseURL, token string }{
		{"not http", "ftp://github.example.com/api/v3/", "t"},
		{"no host", "https:///api/v3/", "t"},
		{"credentials in URL", "https://user:pass@github.example.com/api/v3/", "t"},
		{"unparseable", "http://[::1", "t"},
		{"empty token", "", " "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := github.NewForge(tc.baseURL, tc.token, nil)
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
	g, f := forgeSetup(t)
	pub := vcsfake.NewPublicKey("forgelink@host")

	id, err := f.EnsureDeployKey(ctx, forgeSlug, "forgelink", pub)
	if err != nil {
		t.Fatalf("EnsureDeployKey: %v", err)
	}
	material := strings.Join(strings.Fields(pub)[:2], " ")
	want := []vcsfake.Key{{ID: id, Title: "forgelink", Key: material, ReadOnly: true}}
	if diff := cmp.Diff(want, g.DeployKeys(forgeRepo)); diff != "" {
		t.Fatalf("deploy keys after first ensure (-want +got):\n%s", diff)
	}

	// Again, with another comment: the same key, nothing added.
	id2, err := f.EnsureDeployKey(ctx, forgeSlug, "forgelink", material+" other-comment")
	if err != nil {
		t.Fatalf("second EnsureDeployKey: %v", err)
	}
	if id2 != id {
		t.Errorf("second EnsureDeployKey id = %q, want %q", id2, id)
	}
	if diff := cmp.Diff(want, g.DeployKeys(forgeRepo)); diff != "" {
		t.Errorf("deploy keys after second ensure (-want +got):\n%s", diff)
	}
	if n := forgeCount(g, http.MethodPost, "/keys"); n != 1 {
		t.Errorf("POST .../keys made %d times, want 1", n)
	}

	// Removed on GitHub: ensure adds it again.
	if !g.DeleteKeyDirect(forgeRepo, id) {
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
	if diff := cmp.Diff(want, g.DeployKeys(forgeRepo)); diff != "" {
		t.Errorf("deploy keys after re-adding (-want +got):\n%s", diff)
	}
}

func TestForgeEnsureDeployKeyInUseElsewhere(t *testing.T) {
	ctx := context.Background()
	g, f := forgeSetup(t)
	other := forgelink.Slug{VCS: forgelink.GitHub, Org: "octo-org", Repo: "other"}
	g.AddRepo("octo-org/other", "main", false)
	pub := vcsfake.NewPublicKey("")
	if _, err := f.EnsureDeployKey(ctx, other, "forgelink", pub); err != nil {
		t.Fatalf("EnsureDeployKey on the other repository: %v", err)
	}

	_, err := f.EnsureDeployKey(ctx, forgeSlug, "forgelink", pub)
	if got := forgelink.KindOf(err); got != forgelink.Conflict {
		t.Fatalf("EnsureDeployKey = %v (kind %v), want kind conflict", err, got)
	}
	if msg := forgelink.MessageOf(err); !strings.Contains(msg, "already in use on another repository") {
		t.Errorf("message = %q, want it to say the key is in use on another repository", msg)
	}
	if !strings.HasPrefix(err.Error(), "github: add deploy key to "+forgeRepo+": ") {
		t.Errorf("error %q lacks the context prefix", err)
	}
	if keys := g.DeployKeys(forgeRepo); len(keys) != 0 {
		t.Errorf("deploy keys = %+v, want none", keys)
	}
}

// TestForgeEnsureDeployKeyRace covers a key added between the list and the
// POST: GitHub's 422 "key is already in use" then names this repository's key.
func TestForgeEnsureDeployKeyRace(t *testing.T) {
	ctx := context.Background()
	g, f := forgeSetup(t)
	pub := vcsfake.NewPublicKey("")
	existing := g.AddKeyDirect(forgeRepo, "forgelink", pub, true)
	g.FailNextResponse(http.MethodGet, "/keys", 1, http.StatusOK, nil, "[]") // a stale first list

	id, err := f.EnsureDeployKey(ctx, forgeSlug, "forgelink", pub)
	if err != nil {
		t.Fatalf("EnsureDeployKey: %v", err)
	}
	if id != existing.ID {
		t.Errorf("id = %q, want the existing key's %q", id, existing.ID)
	}
	if n := len(g.DeployKeys(forgeRepo)); n != 1 {
		t.Errorf("%d deploy keys, want 1", n)
	}
	if n := forgeCount(g, http.MethodPost, "/keys"); n != 1 {
		t.Errorf("POST .../keys made %d times, want 1 (answered 422)", n)
	}
}

func TestForgeDeleteDeployKey(t *testing.T) {
	ctx := context.Background()
	g, f := forgeSetup(t)
	id, err := f.EnsureDeployKey(ctx, forgeSlug, "forgelink", vcsfake.NewPublicKey(""))
	if err != nil {
		t.Fatalf("EnsureDeployKey: %v", err)
	}
	for i := range 2 { // the second time, the key is already gone
		if err := f.DeleteDeployKey(ctx, forgeSlug, id); err != nil {
			t.Fatalf("DeleteDeployKey #%d: %v", i+1, err)
		}
	}
	if keys := g.DeployKeys(forgeRepo); len(keys) != 0 {
		t.Errorf("deploy keys = %+v, want none", keys)
	}
	if err := f.DeleteDeployKey(ctx, forgeSlug, "not-a-number"); forgelink.KindOf(err) != forgelink.Invalid {
		t.Errorf("DeleteDeployKey(not-a-number) = %v, want kind invalid", err)
	}
}

func TestForgeEnsureHook(t *testing.T) {
	ctx := context.Background()
	g, f := forgeSetup(t)
	spec := forgelink.HookSpec{URL: "https://ci.example.com/hooks/github/h1", Secret: "s1"}
	wantHook := func(id, secret string) []vcsfake.Hook {
		return []vcsfake.Hook{{
			ID: id, URL: spec.URL, Secret: secret, ContentType: "json", Active: true,
			Events: []string{"push", "pull_request", "create", "delete"},
		}}
	}

	id, err := f.EnsureHook(ctx, forgeSlug, spec)
	if err != nil {
		t.Fatalf("EnsureHook: %v", err)
	}
	if diff := cmp.Diff(wantHook(id, "s1"), g.Hooks(forgeRepo)); diff != "" {
		t.Fatalf("hooks after first ensure (-want +got):\n%s", diff)
	}

	// Again with a new secret: the same hook, updated.
	spec.Secret = "s2"
	id2, err := f.EnsureHook(ctx, forgeSlug, spec)
	if err != nil {
		t.Fatalf("second EnsureHook: %v", err)
	}
	if id2 != id {
		t.Errorf("second EnsureHook id = %q, want %q", id2, id)
	}
	if diff := cmp.Diff(wantHook(id, "s2"), g.Hooks(forgeRepo)); diff != "" {
		t.Errorf("hooks after second ensure (-want +got):\n%s", diff)
	}

	// Someone disabled it and trimmed its events: ensure repairs it.
	g.EditHookDirect(forgeRepo, id, func(h *vcsfake.Hook) {
		h.Active, h.Events, h.ContentType, h.Secret = false, []string{"push"}, "form", ""
	})
	if _, err := f.EnsureHook(ctx, forgeSlug, spec); err != nil {
		t.Fatalf("EnsureHook after edit: %v", err)
	}
	if diff := cmp.Diff(wantHook(id, "s2"), g.Hooks(forgeRepo)); diff != "" {
		t.Errorf("hooks after repair (-want +got):\n%s", diff)
	}

	// Someone deleted it: ensure creates it again.
	if !g.DeleteHookDirect(forgeRepo, id) {
		t.Fatal("DeleteHookDirect found no hook")
	}
	id3, err := f.EnsureHook(ctx, forgeSlug, spec)
	if err != nil {
		t.Fatalf("EnsureHook after deletion: %v", err)
	}
	if id3 == id {
		t.Errorf("EnsureHook after deletion returned the deleted id %q", id)
	}
	if diff := cmp.Diff(wantHook(id3, "s2"), g.Hooks(forgeRepo)); diff != "" {
		t.Errorf("hooks after re-creation (-want +got):\n%s", diff)
	}
}

// TestForgeEnsureHookRace covers a hook created between the list and the
// POST: GitHub answers 422 "Hook already exists", and the hook is updated.
func TestForgeEnsureHookRace(t *testing.T) {
	ctx := context.Background()
	g, f := forgeSetup(t)
	spec := forgelink.HookSpec{URL: "https://ci.example.com/hooks/github/h1", Secret: "new"}
	existing := g.AddHookDirect(forgeRepo, vcsfake.Hook{URL: spec.URL, Secret: "old", Events: []string{"push"}, Active: true})
	g.FailNextResponse(http.MethodGet, "/hooks", 1, http.StatusOK, nil, "[]")

	id, err := f.EnsureHook(ctx, forgeSlug, spec)
	if err != nil {
		t.Fatalf("EnsureHook: %v", err)
	}
	if id != existing.ID {
		t.Errorf("id = %q, want the existing hook's %q", id, existing.ID)
	}
	hooks := g.Hooks(forgeRepo)
	if len(hooks) != 1 || hooks[0].Secret != "new" {
		t.Errorf("hooks = %+v, want one with the new secret", hooks)
	}
	if n := forgeCount(g, http.MethodPost, "/hooks"); n != 1 {
		t.Errorf("POST .../hooks made %d times, want 1 (answered 422)", n)
	}
}

func TestForgeEnsureHookRemovesDuplicates(t *testing.T) {
	ctx := context.Background()
	g, f := forgeSetup(t)
	spec := forgelink.HookSpec{URL: "https://ci.example.com/hooks/github/h1", Secret: "s"}
	first := g.AddHookDirect(forgeRepo, vcsfake.Hook{URL: spec.URL, Events: []string{"push"}})
	g.AddHookDirect(forgeRepo, vcsfake.Hook{URL: spec.URL, Events: []string{"push"}})
	keep := g.AddHookDirect(forgeRepo, vcsfake.Hook{URL: "https://elsewhere.example.com/", Events: []string{"push"}})

	id, err := f.EnsureHook(ctx, forgeSlug, spec)
	if err != nil {
		t.Fatalf("EnsureHook: %v", err)
	}
	if id != first.ID {
		t.Errorf("id = %q, want the first matching hook's %q", id, first.ID)
	}
	var got []string
	for _, h := range g.Hooks(forgeRepo) {
		got = append(got, h.ID)
	}
	if diff := cmp.Diff([]string{first.ID, keep.ID}, got); diff != "" {
		t.Errorf("hook ids (-want +got):\n%s", diff)
	}
}

func TestForgeDeleteHook(t *testing.T) {
	ctx := context.Background()
	g, f := forgeSetup(t)
	id, err := f.EnsureHook(ctx, forgeSlug, forgelink.HookSpec{URL: "https://ci.example.com/h", Secret: "s"})
	if err != nil {
		t.Fatalf("EnsureHook: %v", err)
	}
	for i := range 2 {
		if err := f.DeleteHook(ctx, forgeSlug, id); err != nil {
			t.Fatalf("DeleteHook #%d: %v", i+1, err)
		}
	}
	if hooks := g.Hooks(forgeRepo); len(hooks) != 0 {
		t.Errorf("hooks = %+v, want none", hooks)
	}
}

func TestForgeEnsureInvalidInput(t *testing.T) {
	ctx := context.Background()
	g, f := forgeSetup(t)
	if _, err := f.EnsureDeployKey(ctx, forgeSlug, "t", "not-a-key"); forgelink.KindOf(err) != forgelink.Invalid {
		t.Errorf("EnsureDeployKey(bad key) = %v, want kind invalid", err)
	}
	for _, spec := range []forgelink.HookSpec{{URL: "https://x.example/"}, {Secret: "s"}} {
		if _, err := f.EnsureHook(ctx, forgeSlug, spec); forgelink.KindOf(err) != forgelink.Invalid {
			t.Errorf("EnsureHook(%+v) = %v, want kind invalid", spec, err)
		}
	}
	if n := len(g.Requests()); n != 0 {
		t.Errorf("%d requests made for invalid input, want 0", n)
	}
}

func TestForgePagination(t *testing.T) {
	ctx := context.Background()

	t.Run("deploy keys", func(t *testing.T) {
		g, f := forgeSetup(t)
		for i := range 150 {
			g.AddKeyDirect(forgeRepo, "other "+strconv.Itoa(i), vcsfake.NewPublicKey(""), true)
		}
		pub := vcsfake.NewPublicKey("")
		ours := g.AddKeyDirect(forgeRepo, "forgelink", pub, true) // the 151st: on page 2

		id, err := f.EnsureDeployKey(ctx, forgeSlug, "forgelink", pub)
		if err != nil {
			t.Fatalf("EnsureDeployKey: %v", err)
		}
		if id != ours.ID {
			t.Errorf("id = %q, want %q from page 2", id, ours.ID)
		}
		if n := len(g.DeployKeys(forgeRepo)); n != 151 {
			t.Errorf("%d deploy keys, want 151", n)
		}
		if n := forgeCount(g, http.MethodGet, "/keys"); n != 2 {
			t.Errorf("%d list requests, want 2 pages of 100", n)
		}
		if n := forgeCount(g, http.MethodPost, "/keys"); n != 0 {
			t.Errorf("%d POSTs, want 0", n)
		}
	})

	t.Run("hooks", func(t *testing.T) {
		g, f := forgeSetup(t)
		var target vcsfake.Hook
		for i := range 150 {
			h := g.AddHookDirect(forgeRepo, vcsfake.Hook{URL: "https://other.example.com/" + strconv.Itoa(i), Events: []string{"push"}, Active: true})
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
		hooks := g.Hooks(forgeRepo)
		if len(hooks) != 151 || hooks[150].ID != newID || hooks[140].Secret != "s" {
			t.Errorf("got %d hooks (last %+v, #140 %+v), want 151 with the new one last and #140 updated", len(hooks), hooks[len(hooks)-1], hooks[140])
		}
	})
}

func TestForgeErrors(t *testing.T) {
	ensureKey := func(f *github.Forge) error {
		_, err := f.EnsureDeployKey(context.Background(), forgeSlug, "forgelink", vcsfake.NewPublicKey(""))
		return err
	}
	ensureHook := func(f *github.Forge) error {
		_, err := f.EnsureHook(context.Background(), forgeSlug, forgelink.HookSpec{URL: "https://ci.example.com/h", Secret: "s"})
		return err
	}
	repository := func(f *github.Forge) error {
		_, err := f.Repository(context.Background(), forgeSlug)
		return err
	}
	tests := []struct {
		name       string
		setup      func(g *vcsfake.GitHub)
		badToken   bool
		call       func(f *github.Forge) error
		wantKind   forgelink.Kind
		wantMsg    string        // substring of forgelink.MessageOf
		wantPrefix string        // prefix of err.Error()
		wantRetry  time.Duration // -1: no RetryAfter
	}{
		{
			name: "bad token", badToken: true, call: repository,
			wantKind: forgelink.Unauthorized, wantMsg: "GitHub rejected the token: Bad credentials",
			wantPrefix: "github: get repository " + forgeRepo + ": ", wantRetry: -1,
		},
		{
			name: "unknown repository", call: func(f *github.Forge) error {
				_, err := f.Repository(context.Background(), forgelink.Slug{VCS: forgelink.GitHub, Org: "octo-org", Repo: "nope"})
				return err
			},
			wantKind: forgelink.NotFound, wantMsg: "repository octo-org/nope not found",
			wantPrefix: "github: get repository octo-org/nope: ", wantRetry: -1,
		},
		{
			name: "not an admin", setup: func(g *vcsfake.GitHub) { g.SetAdmin(forgeRepo, false) }, call: ensureKey,
			wantKind: forgelink.NotFound, wantMsg: "not found", wantPrefix: "github: list deploy keys of " + forgeRepo + ": ", wantRetry: -1,
		},
		{
			name: "server error", setup: func(g *vcsfake.GitHub) { g.FailNext(http.MethodGet, "/repos/"+forgeRepo, 500, 1) }, call: repository,
			wantKind: forgelink.Transient, wantMsg: "HTTP 500", wantPrefix: "github: get repository ", wantRetry: -1,
		},
		{
			name: "bad gateway on add", setup: func(g *vcsfake.GitHub) { g.FailNext(http.MethodPost, "/keys", 502, 1) }, call: ensureKey,
			wantKind: forgelink.Transient, wantMsg: "HTTP 502", wantPrefix: "github: add deploy key to " + forgeRepo + ": ", wantRetry: -1,
		},
		{
			name: "secondary rate limit 403", setup: func(g *vcsfake.GitHub) { g.FailNext(http.MethodPost, "/hooks", 403, 1) }, call: ensureHook,
			wantKind: forgelink.Transient, wantMsg: "secondary rate limit", wantPrefix: "github: add hook to " + forgeRepo + ": ", wantRetry: time.Second,
		},
		{
			name: "secondary rate limit 429", setup: func(g *vcsfake.GitHub) { g.FailNext(http.MethodGet, "/hooks", 429, 1) }, call: ensureHook,
			wantKind: forgelink.Transient, wantMsg: "rate limit", wantPrefix: "github: list hooks of " + forgeRepo + ": ", wantRetry: time.Second,
		},
		{
			name: "primary rate limit", setup: func(g *vcsfake.GitHub) { g.SetRateLimitRemaining(0) }, call: repository,
			wantKind: forgelink.Transient, wantMsg: "rate limit exceeded", wantPrefix: "github: get repository ", wantRetry: time.Hour,
		},
		{
			name: "OAuth App access restrictions", setup: func(g *vcsfake.GitHub) { g.SetOrgRestricted("octo-org", true) }, call: repository,
			wantKind: forgelink.Forbidden, wantMsg: "the `octo-org` organization has enabled OAuth App access restrictions",
			wantPrefix: "github: get repository ", wantRetry: -1,
		},
		{
			name: "validation failed", setup: func(g *vcsfake.GitHub) { g.FailNext(http.MethodPost, "/keys", 422, 1) }, call: ensureKey,
			wantKind: forgelink.Upstream, wantMsg: "GitHub refused the request (HTTP 422): Validation Failed", wantPrefix: "github: add deploy key to ", wantRetry: -1,
		},
		{
			name: "delete hook server error", setup: func(g *vcsfake.GitHub) { g.FailNext(http.MethodDelete, "/hooks/1", 503, 1) },
			call:     func(f *github.Forge) error { return f.DeleteHook(context.Background(), forgeSlug, "1") },
			wantKind: forgelink.Transient, wantMsg: "HTTP 503", wantPrefix: "github: delete hook 1 of " + forgeRepo + ": ", wantRetry: -1,
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
			if strings.Contains(err.Error(), g.Token) {
				t.Errorf("error %q contains the token", err)
			}
			after, ok := forgelink.RetryAfter(err)
			switch {
			case tc.wantRetry < 0 && ok:
				t.Errorf("RetryAfter = %v, want none", after)
			case tc.wantRetry == time.Hour && (!ok || after <= 0 || after > time.Hour):
				t.Errorf("RetryAfter = %v, %v; want until the reset, within an hour", after, ok)
			case tc.wantRetry >= 0 && tc.wantRetry != time.Hour && (!ok || after != tc.wantRetry):
				t.Errorf("RetryAfter = %v, %v; want %v", after, ok, tc.wantRetry)
			}
			if got, want := github.OAuthAppRestricted(err), tc.wantKind == forgelink.Forbidden; got != want {
				t.Errorf("OAuthAppRestricted = %v, want %v", got, want)
			}
		})
	}
}

func TestForgeNetworkError(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	url := g.URL
	g.Server.Close()
	f, err := github.NewForge(url, g.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Repository(context.Background(), forgeSlug)
	if got := forgelink.KindOf(err); got != forgelink.Transient {
		t.Errorf("Repository on a closed server = %v (kind %v), want kind transient", err, got)
	}
}
