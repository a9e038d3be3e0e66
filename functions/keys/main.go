// Command keys is forgelink's projects and keys API function: sign-in
// (GitHub and Bitbucket OAuth, sessions, personal API tokens), follow and
// unfollow repositories (deploy key + webhook), settings, pipelines and
// deliveries, checkout keys, additional SSH keys and checkout material,
// on CircleCI's API paths. The settings pages are the pages function.
package main

import (
	"context"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"forgelink/shared/awsenv"
	"forgelink/shared/dynamo"
	"forgelink/shared/follow"
	"forgelink/shared/forges"
	"forgelink/shared/httpapi"
	"forgelink/shared/keysvc"
	"forgelink/shared/lambdarun"
	"forgelink/shared/queue"
	"forgelink/shared/sealer"
	"forgelink/shared/signin"
	"forgelink/shared/ssmsecrets"
)

func main() {
	ctx := context.Background()
	cfg, aws, err := awsenv.Setup(ctx, "FORGELINK_PROJECTS_TABLE", "FORGELINK_PIPELINES_TABLE", "FORGELINK_KEYS_TABLE", "FORGELINK_USERS_TABLE", "FORGELINK_KMS_KEY_ID", "FORGELINK_API_TOKEN", "FORGELINK_DELIVERIES_TABLE", "FORGELINK_INTAKE_QUEUE_URL")
	if err == nil {
		err = ssmsecrets.Load(ctx, &ssmsecrets.Client{Config: aws}, cfg)
	}
	if err != nil {
		lambdarun.Fail(err)
	}
	log := cfg.Logger()
	store := dynamo.New(dynamo.NewClient(aws, cfg.DynamoDBEndpoint), dynamo.TablesOf(cfg))
	seal := sealer.NewEnvelope(sealer.NewKMS(kms.NewFromConfig(aws), cfg.KMSKeyID))
	users := signin.New(cfg, store, seal, nil, cfg.APIToken)
	vcs := forges.ForUsers(cfg, nil, users.Token)
	keys := &keysvc.Service{Store: store, Keys: store, Pipelines: store, Sealer: seal, Forges: vcs, GitHubAPIURL: cfg.GitHubAPIURL, Log: log}
	projects := &httpapi.Projects{
		Store:     store,
		Pipelines: store,
		Follow:    &follow.Service{Store: store, Sealer: seal, Forges: vcs, BeforeUnfollow: keys.RemoveProjectKeys, Log: log},
		Inbox:     &queue.SQSInbox{Deliveries: store, Queue: queue.NewSQS(sqs.NewFromConfig(aws), cfg.IntakeQueueURL)},
		Auth:      users,
		Authz:     users,
		PublicURL: cfg.PublicURL,
		Log:       log,
	}
	api := &httpapi.Keys{Service: keys, Auth: users, Authz: users, Log: log}
	mux := http.NewServeMux()
	for _, route := range signin.Routes {
		mux.Handle(route, users.Handler())
	}
	mux.Handle("/", api.Handler(projects.Handler()))
	if err := lambdarun.Serve(mux, cfg.Addr, log); err != nil {
		lambdarun.Fail(err)
	}
}
