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

// Readers returns, for a project, the RepoReader of its VCS.
func Readers(forges forgelink.Forges) func(ctx context.Context, p *forgelink.Project) (forgelink.RepoReader, error) {
	return func(ctx context.Context, p *forgelink.Project) (forgelink.RepoReader, error) {
		f, err := forges(ctx, p.Slug.VCS)
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

// Posters returns, for a project, the StatusPoster of its VCS.
func Posters(forges forgelink.Forges) func(ctx context.Context, p *forgelink.Project) (forgelink.StatusPoster, error) {
	return func(ctx context.Context, p *forgelink.Project) (forgelink.StatusPoster, error) {
		f, err := forges(ctx, p.Slug.VCS)
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

// Checkers returns, for a project, the AccessChecker of its VCS.
func Checkers(forges forgelink.Forges) func(ctx context.Context, p *forgelink.Project) (forgelink.AccessChecker, error) {
	return func(ctx context.Context, p *forgelink.Project) (forgelink.AccessChecker, error) {
		f, err := forges(ctx, p.Slug.VCS)
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
