//go:build !lambda.norpc

package awsenv

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Load returns the SDK's default configuration (environment, shared
// files, SSO, container and instance roles), for container platforms.
func Load(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("awsenv: load default config: %w", err)
	}
	return cfg, nil
}
