// Command status is forgelink's commit-status function: it consumes the
// status queue and posts each pipeline's forward transitions to GitHub or
// Bitbucket, serves the executor's reports (POST
// /api/v2/pipeline/{id}/status) and the public status badges
// (/gh/{org}/{repo}.svg, /bb/...). One binary, two event sources: SQS
// batches go to the consumer, HTTP API events to the routes.
package main

import (
	"context"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"forgelink/shared/awsenv"
	"forgelink/shared/dynamo"
	"forgelink/shared/forges"
	"forgelink/shared/lambdarun"
	"forgelink/shared/orgaccess"
	"forgelink/shared/queue"
	"forgelink/shared/sealer"
	"forgelink/shared/signin"
	"forgelink/shared/ssmsecrets"
	"forgelink/shared/statusapi"
	"forgelink/shared/statussvc"
)

func main() {
	ctx := context.Background()
	cfg, aws, err := awsenv.Setup(ctx, "FORGELINK_PROJECTS_TABLE", "FORGELINK_PIPELINES_TABLE", "FORGELINK_KEYS_TABLE", "FORGELINK_USERS_TABLE", "FORGELINK_KMS_KEY_ID", "FORGELINK_STATUS_QUEUE_URL", "FORGELINK_API_TOKEN")
	if err == nil {
		err = ssmsecrets.Load(ctx, &ssmsecrets.Client{Config: aws}, cfg)
	}
	if err != nil {
		lambdarun.Fail(err)
	}
	log := cfg.Logger()
	store := dynamo.New(dynamo.NewClient(aws, cfg.DynamoDBEndpoint), dynamo.TablesOf(cfg))
	q := sqs.NewFromConfig(aws)
	// Statuses are posted with each project's follower's token.
	users := signin.New(cfg, store, sealer.NewEnvelope(sealer.NewKMS(kms.NewFromConfig(aws), cfg.KMSKeyID)), nil, cfg.APIToken)
	svc := &statussvc.Service{
		Store: store, Posters: forges.Posters(forges.ForUsers(cfg, nil, users.Token)),
		Requests: queue.NewSQSStatus(q, cfg.StatusQueue), PublicURL: cfg.PublicURL,
		Access: &orgaccess.Service{Store: store, Log: log}, Log: log,
	}
	auth := users
	mux := http.NewServeMux()
	mux.Handle("/api/", (&statusapi.Reports{Reporter: svc, Tokens: store, Auth: auth, Authz: users, Pipelines: store, PublicURL: cfg.PublicURL, Log: log}).Handler())
	mux.Handle("/", (&statusapi.Badges{Projects: store, Pipelines: store, Auth: auth, Authz: users, Log: log}).Handler())
	consume := queue.SQSStatusHandler(svc.Post, queue.SQSStatusOptions{
		Visibility: q, QueueURL: cfg.StatusQueue, MaxReceives: cfg.MaxReceives, OnDead: svc.GiveUp, Log: log,
	})
	if err := lambdarun.ServeEvents(mux, lambdarun.Events{SQS: consume}, cfg.Addr, log); err != nil {
		lambdarun.Fail(err)
	}
}
