// Command keys is forgelink's projects and keys API function: follow and
// unfollow repositories (deploy key + webhook), settings, pipelines and
// deliveries, checkout keys, additional SSH keys and checkout material,
// on CircleCI's API paths.
package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"forgelink/shared/apiauth"
	"forgelink/shared/awsenv"
	"forgelink/shared/dynamo"
	"forgelink/shared/follow"
	"forgelink/shared/forges"
	"forgelink/shared/httpapi"
	"forgelink/shared/keysvc"
	"forgelink/shared/lambdarun"
	"forgelink/shared/queue"
	"forgelink/shared/sealer"
)

func main() {
	cfg, aws, err := awsenv.Setup(context.Background(), "FORGELINK_PROJECTS_TABLE", "FORGELINK_PIPELINES_TABLE", "FORGELINK_KEYS_TABLE", "FORGELINK_KMS_KEY_ID", "FORGELINK_API_TOKEN", "FORGELINK_DELIVERIES_TABLE", "FORGELINK_INTAKE_QUEUE_URL")
	if err != nil {
		lambdarun.Fail(err)
	}
	log := cfg.Logger()
	store := dynamo.New(dynamo.NewClient(aws, cfg.DynamoDBEndpoint), dynamo.TablesOf(cfg))
	seal := sealer.NewEnvelope(sealer.NewKMS(kms.NewFromConfig(aws), cfg.KMSKeyID))
	vcs := forges.FromEnv(cfg, nil)
	keys := &keysvc.Service{Store: store, Keys: store, Pipelines: store, Sealer: seal, Forges: vcs, GitHubAPIURL: cfg.GitHubAPIURL, Log: log}
	auth := apiauth.NewStaticToken(cfg.APIToken, apiauth.User{Login: cfg.APIUser})
	projects := &httpapi.Projects{
		Store:     store,
		Pipelines: store,
		Follow:    &follow.Service{Store: store, Sealer: seal, Forges: vcs, BeforeUnfollow: keys.RemoveProjectKeys, Log: log},
		Inbox:     &queue.SQSInbox{Deliveries: store, Queue: queue.NewSQS(sqs.NewFromConfig(aws), cfg.IntakeQueueURL)},
		Auth:      auth,
		PublicURL: cfg.PublicURL,
		Log:       log,
	}
	api := &httpapi.Keys{Service: keys, Auth: auth, Log: log}
	if err := lambdarun.Serve(api.Handler(projects.Handler()), cfg.Addr, log); err != nil {
		lambdarun.Fail(err)
	}
}
