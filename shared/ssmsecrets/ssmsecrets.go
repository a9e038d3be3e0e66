// Package ssmsecrets reads the OAuth client secrets from SSM SecureString
// parameters at a cold start. It is apart from awsenv so that only the
// functions that sign users in or refresh their tokens link the SSM client
// (its schemas are about 1 MB): not the webhook function.
//
//	err := ssmsecrets.Load(ctx, ssm.NewFromConfig(aws), cfg)
package ssmsecrets

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"forgelink/shared/config"
)

// SSMAPI is the part of the SSM client Load uses.
type SSMAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// Load reads the OAuth client secrets from the SSM SecureString
// parameters the configuration names (FORGELINK_GITHUB_OAUTH_SECRET_PARAM,
// FORGELINK_BITBUCKET_OAUTH_SECRET_PARAM), once, at a cold start: in AWS
// they are never plain environment values. A configured parameter that
// cannot be read stops start-up with a line naming it.
func Load(ctx context.Context, client SSMAPI, cfg *config.Config) error {
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
		out, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(p.name), WithDecryption: aws.Bool(true)})
		if err != nil {
			return fmt.Errorf("config: %s: read SSM parameter %q: %w", p.env, p.name, err)
		}
		if out.Parameter == nil || aws.ToString(out.Parameter.Value) == "" {
			return fmt.Errorf("config: %s: SSM parameter %q is empty", p.env, p.name)
		}
		*p.dst = aws.ToString(out.Parameter.Value)
	}
	return nil
}
