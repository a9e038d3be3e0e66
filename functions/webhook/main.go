// Command webhook is forgelink's webhook intake function: it verifies,
// de-duplicates, stores and enqueues GitHub and Bitbucket deliveries
// (POST /hooks/github/{hook-id}, POST /hooks/bitbucket/{hook-id}).
// It links no VCS API client, no SSH and no YAML: it is the function on
// GitHub's 10-second clock.
package main

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"forgelink/shared/awsenv"
	"forgelink/shared/dynamo"
	"forgelink/shared/intake"
	"forgelink/shared/lambdarun"
	"forgelink/shared/queue"
	"forgelink/shared/sealer"
)

func main() {
	cfg, aws, err := awsenv.Setup(context.Background(), "FORGELINK_PROJECTS_TABLE", "FORGELINK_DELIVERIES_TABLE", "FORGELINK_KMS_KEY_ID", "FORGELINK_INTAKE_QUEUE_URL")
	if err != nil {
		lambdarun.Fail(err)
	}
	log := cfg.Logger()
	store := dynamo.New(dynamo.NewClient(aws, cfg.DynamoDBEndpoint), dynamo.TablesOf(cfg))
	// A warm function opens each project's webhook secret with KMS once
	// per 5 minutes, not once per delivery.
	secrets := sealer.NewCache(sealer.NewEnvelope(sealer.NewKMS(kms.NewFromConfig(aws), cfg.KMSKeyID)), 5*time.Minute, 1024)
	// One read (the hook), one conditional write (the delivery), one send.
	inbox := &queue.SQSInbox{Deliveries: store, Queue: queue.NewSQS(sqs.NewFromConfig(aws), cfg.IntakeQueueURL)}
	in := &intake.Intake{Store: store, Sealer: secrets, Inbox: inbox, Log: log}
	if err := lambdarun.Serve(in.Handler(), cfg.Addr, log); err != nil {
		lambdarun.Fail(err)
	}
}
