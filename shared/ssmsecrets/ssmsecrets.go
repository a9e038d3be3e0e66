// Package ssmsecrets reads the OAuth client secrets from SSM SecureString
// parameters at a cold start. It is apart from awsenv so that only the
// functions that sign users in or refresh their tokens link it: not the
// webhook function. Its Client speaks SSM's JSON API itself (see Client for
// why it is not the SDK's SSM client).
//
//	err := ssmsecrets.Load(ctx, &ssmsecrets.Client{Config: aws}, cfg)
package ssmsecrets

import (
	"context"
	"fmt"

	"forgelink/shared/config"
)

// Getter reads a parameter's value; *Client is one.
type Getter interface {
	GetParameter(ctx context.Context, name string, decrypt bool) (string, error)
}

// Load reads the OAuth client secrets from the SSM SecureString
// parameters the configuration names (FORGELINK_GITHUB_OAUTH_SECRET_PARAM,
// FORGELINK_BITBUCKET_OAUTH_SECRET_PARAM), once, at a cold start: in AWS
// they are never plain environment values. A configured parameter that
// cannot be read stops start-up with a line naming it.
func Load(ctx context.Context, ssm Getter, cfg *config.Config) error {
	for _, p := range []struct {
		env, name string
		dst       *string
	}{
		{"FORGELINK_GITHUB_OAUTH_SECRET_PARAM", cfg.GitHubSecretParam, &cfg.OAuthSecret},
		{"FORGELINK_BITBUCKET_OAUTH_SECRET_PARAM", cfg.BitbucketSecretParam, &cfg.BitbucketSecret},
	} {
		if p.name == "" {
			continue
		}
		v, err := ssm.GetParameter(ctx, p.name, true)
		if err != nil {
			return fmt.Errorf("config: %s: read SSM parameter %q: %w", p.env, p.name, err)
		}
		if v == "" {
			return fmt.Errorf("config: %s: SSM parameter %q is empty", p.env, p.name)
		}
		*p.dst = v
	}
	return nil
}
