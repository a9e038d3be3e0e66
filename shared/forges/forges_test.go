package forges_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/config"
	"forgelink/shared/forgelink"
	"forgelink/shared/forges"
	"forgelink/shared/vcsfake"
)

const (
	ghRepo, bbRepo = "octo-org/hello", "octo-ws/hello"
	bbUUID         = "{5a3c0f6e-1b2d-4c3e-8f9a-0123456789ab}"
	sha            = "0123456789abcdef0123456789abcdef01234567"
	configYML      = "version: 2.1\n"
)

var (
	ghSlug  = forgelink.Slug{VCS: forgelink.GitHub, Org: "octo-org", Repo: "hello"}
	bbSlug  = forgelink.Slug{VCS: forgelink.Bitbucket, Org: "octo-ws", Repo: "hello"}
	hubotID = forgelink.UserID(forgelink.GitHub, "583231")
	monaID  = forgelink.UserID(forgelink.GitHub, "583232")
	bbUser  = forgelink.UserID(forgelink.Bitbucket, bbUUID)
)

// authLog is an http.RoundTripper that records each request's
// Authorization header.
type authLog struct {
	mu   sync.Mutex
	auth []string
}

func (a *authLog) RoundTrip(r *http.Request) (*http.Response, error) {
	a.mu.Lock()
	a.auth = append(a.auth, r.Header.Get("Authorization"))
	a.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// seen returns the distinct Authorization headers sent so far, in order,
// and forgets them.
func (a *authLog) seen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, h := range a.auth {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	a.auth = nil
	return out
}

// tokenLog is a forges.Tokens over fixed tokens that records its calls.
type tokenLog struct {
	mu     sync.Mutex
	tokens map[string]string
	calls  []string
}

func (l *tokenLog) token(ctx context.Context, userID string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, userID)
	if t, ok := l.tokens[userID]; ok {
		return t, nil
	}
	return "", forgelink.Errorf(forgelink.Unauthorized, "Bitbucket refused to refresh %s's token: sign in again", userID)
}

func (l *tokenLog) called() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.calls
	l.calls = nil
	return c
}

// fixture is both fakes with the environment's users (the fakes' owners,
// admins) and signed-in users: hubot and mona (GitHub, pull) and bbuser
// (Bitbucket, read).
type fixture struct {
	gh     *vcsfake.GitHub
	bb     *vcsfake.Bitbucket
	cfg    *config.Config
	hc     *http.Client
	auth   *authLog
	tokens *tokenLog
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	gh := vcsfake.NewGitHub(t)
	gh.AddRepo(ghRepo, "main", true)
	gh.SetFile(ghRepo, "main", ".circleci/config.yml", []byte(configYML))
	hubot := gh.AddUser("hubot", 583231, "Hubot")
	mona := gh.AddUser("mona", 583232, "Mona")
	gh.SetPermission(ghRepo, "hubot", "pull")
	gh.SetPermission(ghRepo, "mona", "pull")
	bb := vcsfake.NewBitbucket(t)
	bb.AddRepo(bbRepo, "main", true)
	bb.SetFile(bbRepo, "main", ".circleci/config.yml", []byte(configYML))
	bbTok := bb.AddUser("bbuser", bbUUID, "BB User")
	bb.SetPermission(bbRepo, "bbuser", "read")
	auth := &authLog{}
	return &fixture{
		gh: gh, bb: bb, auth: auth,
		hc: &http.Client{Transport: auth},
		cfg: &config.Config{
			GitHubAPIURL: gh.URL, GitHubToken: gh.Token,
			BitbucketURL: bb.URL, BitbucketTok: bb.Token,
		},
		tokens: &tokenLog{tokens: map[string]string{hubotID: hubot, monaID: mona, bbUser: bbTok}},
	}
}

// tokenOf is the token a user's requests must carry.
func (f *fixture) tokenOf(userID string, vcs forgelink.VCS) string {
	if userID == "" {
		if vcs == forgelink.Bitbucket {
			return f.bb.Token
		}
		return f.gh.Token
	}
	return f.tokens.tokens[userID]
}

func TestForUsers(t *testing.T) {
	tests := []struct {
		name      string
		actor     string // "-": none set
		vcs       forgelink.VCS
		nilTokens bool
		noEnv     bool // GITHUB_TOKEN / BITBUCKET_TOKEN unset
		// wantToken is the token requests carry; wantTokens the users
		// whose token was asked for.
		wantToken  string
		wantTokens []string
		wantAdmin  bool
		wantKind   forgelink.Kind // when refused
		wantMsg    string
	}{
		{name: "no actor: GitHub env token", actor: "-", vcs: forgelink.GitHub, wantToken: "env", wantAdmin: true},
		{name: "env user: GitHub env token", actor: "", vcs: forgelink.GitHub, wantToken: "env", wantAdmin: true},
		{name: "env user: Bitbucket env token", actor: "", vcs: forgelink.Bitbucket, wantToken: "env", wantAdmin: true},
		{name: "GitHub user", actor: hubotID, vcs: forgelink.GitHub, wantToken: hubotID, wantTokens: []string{hubotID}},
		{name: "Bitbucket user", actor: bbUser, vcs: forgelink.Bitbucket, wantToken: bbUser, wantTokens: []string{bbUser}},
		{name: "GitHub user on Bitbucket", actor: hubotID, vcs: forgelink.Bitbucket,
			wantKind: forgelink.Forbidden, wantMsg: "user github:583231 has no Bitbucket account; sign in with Bitbucket"},
		{name: "Bitbucket user on GitHub", actor: bbUser, vcs: forgelink.GitHub,
			wantKind: forgelink.Forbidden, wantMsg: "has no GitHub account; sign in with GitHub"},
		{name: "actor with a prefix of the VCS", actor: "githubx:1", vcs: forgelink.GitHub,
			wantKind: forgelink.Forbidden, wantMsg: "has no GitHub account"},
		{name: "user whose token fails", actor: "bitbucket:{gone}", vcs: forgelink.Bitbucket, wantTokens: []string{"bitbucket:{gone}"},
			wantKind: forgelink.Unauthorized, wantMsg: "sign in again"},
		{name: "no Tokens: env token for everyone", actor: hubotID, vcs: forgelink.GitHub, nilTokens: true, wantToken: "env", wantAdmin: true},
		{name: "env user without GITHUB_TOKEN", actor: "", vcs: forgelink.GitHub, noEnv: true,
			wantKind: forgelink.Forbidden, wantMsg: "set GITHUB_TOKEN"},
		{name: "env user without BITBUCKET_TOKEN", actor: "", vcs: forgelink.Bitbucket, noEnv: true,
			wantKind: forgelink.Forbidden, wantMsg: "set BITBUCKET_TOKEN"},
		{name: "a user without env tokens", actor: hubotID, vcs: forgelink.GitHub, noEnv: true, wantToken: hubotID, wantTokens: []string{hubotID}},
		{name: "unknown VCS", actor: "", vcs: "gitlab", wantKind: forgelink.Invalid, wantMsg: `unknown vcs "gitlab"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.noEnv {
				f.cfg.GitHubToken, f.cfg.BitbucketTok = "", ""
			}
			tokens := forges.Tokens(f.tokens.token)
			if tc.nilTokens {
				tokens = nil
			}
			ctx := t.Context()
			if tc.actor != "-" {
				ctx = forgelink.WithActor(ctx, tc.actor)
			}
			forge, err := forges.ForUsers(f.cfg, f.hc, tokens)(ctx, tc.vcs)
			if diff := cmp.Diff(tc.wantTokens, f.tokens.called()); diff != "" {
				t.Errorf("Tokens calls (-want +got):\n%s", diff)
			}
			if tc.wantKind != 0 || tc.wantMsg != "" {
				if err == nil || forgelink.KindOf(err) != tc.wantKind || !strings.Contains(forgelink.MessageOf(err), tc.wantMsg) {
					t.Fatalf("err = %v (kind %v), want %v with %q", err, forgelink.KindOf(err), tc.wantKind, tc.wantMsg)
				}
				if forge != nil {
					t.Errorf("forge = %v, want nil", forge)
				}
				if seen := f.auth.seen(); len(seen) != 0 {
					t.Errorf("requests sent with %q, want none", seen)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			slug := ghSlug
			if tc.vcs == forgelink.Bitbucket {
				slug = bbSlug
			}
			repo, err := forge.Repository(ctx, slug)
			if err != nil {
				t.Fatal(err)
			}
			if repo.Admin != tc.wantAdmin {
				t.Errorf("Admin = %v, want %v: the request did not act as the right user", repo.Admin, tc.wantAdmin)
			}
			want := f.tokenOf(tc.wantToken, tc.vcs)
			if tc.wantToken == "env" {
				want = f.tokenOf("", tc.vcs)
			}
			if diff := cmp.Diff([]string{"Bearer " + want}, f.auth.seen()); diff != "" {
				t.Errorf("Authorization (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFromEnv: local mode's Forges use GITHUB_TOKEN / BITBUCKET_TOKEN
// whatever the actor.
func TestFromEnv(t *testing.T) {
	f := newFixture(t)
	ctx := forgelink.WithActor(t.Context(), hubotID)
	for _, vcs := range []forgelink.VCS{forgelink.GitHub, forgelink.Bitbucket} {
		forge, err := forges.FromEnv(f.cfg, f.hc)(ctx, vcs)
		if err != nil {
			t.Fatal(err)
		}
		slug := map[forgelink.VCS]forgelink.Slug{forgelink.GitHub: ghSlug, forgelink.Bitbucket: bbSlug}[vcs]
		if _, err := forge.Repository(ctx, slug); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"Bearer " + f.tokenOf("", vcs)}, f.auth.seen()); diff != "" {
			t.Errorf("%s Authorization (-want +got):\n%s", vcs, diff)
		}
	}
}

// TestFollowerForges: Readers, Posters and Checkers act as the project's
// follower, not as whoever the context acted as.
func TestFollowerForges(t *testing.T) {
	type use func(ctx context.Context, forges forgelink.Forges, p *forgelink.Project) error
	uses := map[string]use{
		"Readers": func(ctx context.Context, fs forgelink.Forges, p *forgelink.Project) error {
			r, err := forges.Readers(fs)(ctx, p)
			if err != nil {
				return err
			}
			b, _, err := r.File(ctx, p.Slug, ".circleci/config.yml", "main")
			if err == nil && string(b) != configYML {
				t.Errorf("File = %q, want %q", b, configYML)
			}
			return err
		},
		"Posters": func(ctx context.Context, fs forgelink.Forges, p *forgelink.Project) error {
			sp, err := forges.Posters(fs)(ctx, p)
			if err != nil {
				return err
			}
			return sp.PostStatus(ctx, p.Slug, forgelink.CommitStatus{Revision: sha, State: forgelink.StatusSuccess, TargetURL: "https://forgelink.example/p/1", Description: "ok"})
		},
		"Checkers": func(ctx context.Context, fs forgelink.Forges, p *forgelink.Project) error {
			c, err := forges.Checkers(fs)(ctx, p)
			if err != nil {
				return err
			}
			_, err = c.CheckRepository(ctx, p.Slug, "")
			return err
		},
	}
	tests := []struct {
		name     string
		slug     forgelink.Slug
		follower string
		wantKind forgelink.Kind // 0: works
	}{
		{name: "GitHub project of hubot", slug: ghSlug, follower: hubotID},
		{name: "GitHub project of the env user", slug: ghSlug, follower: ""},
		{name: "Bitbucket project of bbuser", slug: bbSlug, follower: bbUser},
		{name: "Bitbucket project of the env user", slug: bbSlug, follower: ""},
		{name: "GitHub project of a Bitbucket user", slug: ghSlug, follower: bbUser, wantKind: forgelink.Forbidden},
	}
	for name, use := range uses {
		for _, tc := range tests {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				f := newFixture(t)
				fs := forges.ForUsers(f.cfg, f.hc, f.tokens.token)
				// The request's user is mona; the project's follower decides.
				ctx := forgelink.WithActor(t.Context(), monaID)
				p := &forgelink.Project{Slug: tc.slug, FollowerID: tc.follower, FollowedBy: "someone"}
				err := use(ctx, fs, p)
				var wantCalls []string
				if tc.follower != "" && tc.wantKind == 0 {
					wantCalls = []string{tc.follower}
				}
				if diff := cmp.Diff(wantCalls, f.tokens.called()); diff != "" {
					t.Errorf("Tokens calls (-want +got):\n%s", diff)
				}
				if tc.wantKind != 0 {
					if forgelink.KindOf(err) != tc.wantKind {
						t.Fatalf("err = %v, want kind %v", err, tc.wantKind)
					}
					if seen := f.auth.seen(); len(seen) != 0 {
						t.Errorf("requests sent with %q, want none", seen)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff([]string{"Bearer " + f.tokenOf(tc.follower, tc.slug.VCS)}, f.auth.seen()); diff != "" {
					t.Errorf("Authorization (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestIdentities: the Identity of a token reads that token's account.
func TestIdentities(t *testing.T) {
	f := newFixture(t)
	ids := forges.Identities(f.cfg, f.hc)
	tests := []struct {
		vcs       forgelink.VCS
		token     string
		wantLogin string
		wantID    string
	}{
		{forgelink.GitHub, f.tokens.tokens[hubotID], "hubot", "583231"},
		{forgelink.GitHub, f.gh.Token, vcsfake.GitHubLogin, "1"},
		{forgelink.Bitbucket, f.tokens.tokens[bbUser], "bbuser", bbUUID},
	}
	for _, tc := range tests {
		id, err := ids(t.Context(), tc.vcs, tc.token)
		if err != nil {
			t.Fatal(err)
		}
		a, err := id.Account(t.Context())
		if err != nil || a.Login != tc.wantLogin || a.ID != tc.wantID {
			t.Errorf("%s Account = %+v, %v; want %s %s", tc.vcs, a, err, tc.wantLogin, tc.wantID)
		}
	}
	if _, err := ids(t.Context(), "gitlab", "x"); forgelink.KindOf(err) != forgelink.Invalid {
		t.Errorf("unknown VCS: %v, want Invalid", err)
	}
	if _, err := ids(t.Context(), forgelink.GitHub, ""); forgelink.KindOf(err) != forgelink.Invalid {
		t.Errorf("empty token: %v, want Invalid", err)
	}
}
