// Command trigger is forgelink's trigger-evaluation function: it consumes
// the intake queue and turns every delivery into pipelines or recorded
// skips, handing new pipelines (with a single-use runner token and an
// executor token for status reports) to the executor and a pending-status
// request to the status function.
package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"forgelink/shared/awsenv"
	"forgelink/shared/dynamo"
	"forgelink/shared/forges"
	"forgelink/shared/keysvc"
	"forgelink/shared/lambdarun"
	"forgelink/shared/orgaccess"
	"forgelink/shared/queue"
	"forgelink/shared/sealer"
	"forgelink/shared/signin"
	"forgelink/shared/ssmsecrets"
	"forgelink/shared/trigger"
)

func main() {
	ctx := context.Background()
	cfg, aws, err := awsenv.Setup(ctx, "FORGELINK_PROJECTS_TABLE", "FORGELINK_DELIVERIES_TABLE", "FORGELINK_PIPELINES_TABLE", "FORGELINK_KEYS_TABLE", "FORGELINK_USERS_TABLE", "FORGELINK_PIPELINES_QUEUE_URL", "FORGELINK_STATUS_QUEUE_URL")
	if err == nil {
		err = ssmsecrets.Load(ctx, &ssmsecrets.Client{Config: aws}, cfg)
	}
	if err != nil {
		lambdarun.Fail(err)
	}
	log := cfg.Logger()
	store := dynamo.New(dynamo.NewClient(aws, cfg.DynamoDBEndpoint), dynamo.TablesOf(cfg))
	seal := sealer.NewEnvelope(sealer.NewKMS(kms.NewFromConfig(aws), cfg.KMSKeyID))
	// Configs are read with each project's follower's token.
	users := signin.New(cfg, store, seal, nil, "")
	vcs := forges.ForUsers(cfg, nil, users.Token)
	keys := &keysvc.Service{Store: store, Keys: store, Pipelines: store, Sealer: seal, Forges: vcs, Log: log}
	handoff := queue.NewSQSHandoff(sqs.NewFromConfig(aws), cfg.PipelinesQueue, cfg.StatusQueue)
	handoff.Runner = &queue.RunnerAccess{Mint: keys.MintPipelineTokens, PublicURL: cfg.PublicURL}
	// Refusals mark the project's org access at once, not at the next sweep.
	access := &orgaccess.Service{Store: store, Log: log}
	svc := &trigger.Service{Store: store, Readers: forges.Readers(vcs), Handoff: handoff, Access: access, Log: log}
	consume := queue.SQSHandler(svc.Handle, queue.SQSOptions{Deliveries: store, MaxReceives: cfg.MaxReceives, OnDead: svc.RecordDead, Log: log})
	if err := lambdarun.Start(consume); err != nil {
		lambdarun.Fail(err)
	}
}
