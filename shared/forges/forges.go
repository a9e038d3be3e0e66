// Package forges authenticates the VCS API clients (GitHub, Bitbucket)
// for the functions that call the VCS: follow, keys, trigger evaluation,
// commit statuses.
// Webhook intake never calls the VCS and does not import it.
//
//	f := forges.FromEnv(cfg, nil)
//	gh, err := f(ctx, forgelink.GitHub)
package forges

import (
	"context"
	"net/http"
	"strings"
	"time"

	"forgelink/shared/bitbucket"
	"forgelink/shared/config"
	"forgelink/shared/forgelink"
	"forgelink/shared/github"
)

// FromEnv returns Forges authenticated with the tokens in cfg
// (GITHUB_TOKEN, BITBUCKET_TOKEN): local mode's one user. A nil hc gets a
// client with a 20 s timeout.
func FromEnv(cfg *config.Config, hc *http.Client) forgelink.Forges {
	if hc == nil {
		hc = &http.Client{Timeout: 20 * time.Second}
	}
	return func(ctx context.Context, vcs forgelink.VCS) (forgelink.Forge, error) {
		switch vcs {
		case forgelink.GitHub:
			if cfg.GitHubToken == "" {
				return nil, forgelink.Errorf(forgelink.Forbidden, "no GitHub token: set GITHUB_TOKEN")
			}
			return github.NewForge(cfg.GitHubAPIURL, cfg.GitHubToken, hc)
		case forgelink.Bitbucket:
			if cfg.BitbucketTok == "" {
				return nil, forgelink.Errorf(forgelink.Forbidden, "no Bitbucket token: set BITBUCKET_TOKEN")
			}
			return bitbucket.NewForge(cfg.BitbucketURL, cfg.BitbucketTok, hc)
		}
		return nil, forgelink.Errorf(forgelink.Invalid, "unknown vcs %q", vcs)
	}
}

// Tokens returns a signed-in user's VCS access token
// (signin.Service.Token).
type Tokens func(ctx context.Context, userID string) (string, error)

// ForUsers returns Forges that act as forgelink.ActorFrom(ctx): a
// signed-in user with that user's own token, and local mode's environment
// user ("") with GITHUB_TOKEN / BITBUCKET_TOKEN, as FromEnv. A nil hc gets
// a client with a 20 s timeout.
func ForUsers(cfg *config.Config, hc *http.Client, tokens Tokens) forgelink.Forges {
	if hc == nil {
		hc = &http.Client{Timeout: 20 * time.Second}
	}
	env := FromEnv(cfg, hc)
	return func(ctx context.Context, vcs forgelink.VCS) (forgelink.Forge, error) {
		actor := forgelink.ActorFrom(ctx)
		if actor == "" || tokens == nil {
			return env(ctx, vcs)
		}
		if !strings.HasPrefix(actor, string(vcs)+":") {
			return nil, forgelink.Errorf(forgelink.Forbidden, "user %s has no %s account; sign in with %s", actor, vcs.Name(), vcs.Name())
		}
		token, err := tokens(ctx, actor)
		if err != nil {
			return nil, err
		}
		return ForToken(cfg, hc, vcs, token)
	}
}

// ForToken returns the Forge of vcs authenticated with token.
func ForToken(cfg *config.Config, hc *http.Client, vcs forgelink.VCS, token string) (forgelink.Forge, error) {
	switch vcs {
	case forgelink.GitHub:
		return github.NewForge(cfg.GitHubAPIURL, token, hc)
	case forgelink.Bitbucket:
		return bitbucket.NewForge(cfg.BitbucketURL, token, hc)
	}
	return nil, forgelink.Errorf(forgelink.Invalid, "unknown vcs %q", vcs)
}

// Identities returns the Identity of a token (for sign-in).
func Identities(cfg *config.Config, hc *http.Client) func(ctx context.Context, vcs forgelink.VCS, token string) (forgelink.Identity, error) {
	if hc == nil {
		hc = &http.Client{Timeout: 20 * time.Second}
	}
	return func(ctx context.Context, vcs forgelink.VCS, token string) (forgelink.Identity, error) {
		f, err := ForToken(cfg, hc, vcs, token)
		if err != nil {
			return nil, err
		}
		id, ok := f.(forgelink.Identity)
		if !ok {
			return nil, forgelink.Errorf(forgelink.Internal, "%s adapter cannot read identities", vcs)
		}
		return id, nil
	}
}

// follower is ctx acting as p's follower, for background work.
func follower(ctx context.Context, p *forgelink.Project) context.Context {
	return forgelink.WithActor(ctx, p.FollowerID)
}

// Readers returns, for a project, the RepoReader of its VCS,
// authenticated as the project's follower.
func Readers(forges forgelink.Forges) func(ctx context.Context, p *forgelink.Project) (forgelink.RepoReader, error) {
	return func(ctx context.Context, p *forgelink.Project) (forgelink.RepoReader, error) {
		f, err := forges(follower(ctx, p), p.Slug.VCS)
		if err != nil {
			return nil, err
		}
		r, ok := f.(forgelink.RepoReader)
		if !ok {
			return nil, forgelink.Errorf(forgelink.Internal, "%s adapter cannot read repositories", p.Slug.VCS)
		}
		return r, nil
	}
}

// Posters returns, for a project, the StatusPoster of its VCS,
// authenticated as the project's follower.
func Posters(forges forgelink.Forges) func(ctx context.Context, p *forgelink.Project) (forgelink.StatusPoster, error) {
	return func(ctx context.Context, p *forgelink.Project) (forgelink.StatusPoster, error) {
		f, err := forges(follower(ctx, p), p.Slug.VCS)
		if err != nil {
			return nil, err
		}
		sp, ok := f.(forgelink.StatusPoster)
		if !ok {
			return nil, forgelink.Errorf(forgelink.Internal, "%s adapter cannot post commit statuses", p.Slug.VCS)
		}
		return sp, nil
	}
}

// Checkers returns, for a project, the AccessChecker of its VCS,
// authenticated as the project's follower.
func Checkers(forges forgelink.Forges) func(ctx context.Context, p *forgelink.Project) (forgelink.AccessChecker, error) {
	return func(ctx context.Context, p *forgelink.Project) (forgelink.AccessChecker, error) {
		f, err := forges(follower(ctx, p), p.Slug.VCS)
		if err != nil {
			return nil, err
		}
		c, ok := f.(forgelink.AccessChecker)
		if !ok {
			return nil, forgelink.Errorf(forgelink.Internal, "%s adapter cannot check access", p.Slug.VCS)
		}
		return c, nil
	}
}
