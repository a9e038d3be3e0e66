//go:build lambda.norpc

package awsenv

import (
	"context"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Load returns FromEnv(os.Getenv): the Lambda build reads only the
// environment.
func Load(ctx context.Context) (aws.Config, error) { return FromEnv(os.Getenv) }
