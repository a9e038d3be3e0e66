package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"forgelink/shared/dynamo"
	"forgelink/shared/dynamo/dynamoschema"
	"forgelink/shared/follow"
	"forgelink/shared/forgelink"
	"forgelink/shared/sealer"
	"forgelink/shared/sshkeys"
)

// awsConfig is a static configuration for a local AWS server.
func awsConfig(endpoint string) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	}
}

// seed creates the resources template.yaml declares on the local server and
// stores the sample projects. It returns the functions' environment.
func seed(ctx context.Context, endpoint, templatePath string) ([]string, error) {
	cfg := awsConfig(endpoint)
	tmpl, err := os.ReadFile(templatePath)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	suffix := fmt.Sprint(time.Now().UnixNano())
	defs, err := dynamoschema.TableDefinitions(tmpl)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	// Every table template.yaml declares, named <logical id>-<suffix>.
	names := map[string]string{}
	for id := range defs {
		names[id] = id + "-" + suffix
	}
	ddb := dynamodb.NewFromConfig(cfg)
	if err := dynamoschema.CreateTables(ctx, ddb, tmpl, names); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	sq := sqs.NewFromConfig(cfg)
	queues := map[string]string{}
	for _, q := range []string{"intake", "pipelines", "status"} {
		out, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("forgelink-" + q + "-" + suffix)})
		if err != nil {
			return nil, fmt.Errorf("seed: create queue %s: %w", q, err)
		}
		queues[q] = aws.ToString(out.QueueUrl)
	}
	km := kms.NewFromConfig(cfg)
	kout, err := km.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("forgelink make invoke")})
	if err != nil {
		return nil, fmt.Errorf("seed: create KMS key: %w", err)
	}
	keyID := aws.ToString(kout.KeyMetadata.KeyId)

	st := dynamo.New(ddb, dynamo.Tables{Projects: names["ProjectsTable"], Deliveries: names["DeliveriesTable"], Pipelines: names["PipelinesTable"]})
	sl := sealer.NewEnvelope(sealer.NewKMS(km, keyID))
	for _, p := range []struct {
		vcs, hookID string
	}{{"github", SampleHookID}, {"bitbucket", SampleBBHookID}} {
		if err := seedProject(ctx, st, sl, p.vcs, p.hookID); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
	}
	if err := seedPipeline(ctx, st); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	env := []string{}
	for id, name := range names {
		env = append(env, tableEnv(id)+"="+name)
	}
	sort.Strings(env)
	return append(env,
		"FORGELINK_INTAKE_QUEUE_URL="+queues["intake"],
		"FORGELINK_PIPELINES_QUEUE_URL="+queues["pipelines"],
		"FORGELINK_STATUS_QUEUE_URL="+queues["status"],
		"FORGELINK_KMS_KEY_ID="+keyID,
		"FORGELINK_API_TOKEN="+SampleAPIToken,
		"FORGELINK_API_USER="+SampleUser,
	), nil
}

// tableEnv names a table's environment variable after its logical id:
// ProjectsTable → FORGELINK_PROJECTS_TABLE.
func tableEnv(logicalID string) string {
	return "FORGELINK_" + strings.ToUpper(strings.TrimSuffix(logicalID, "Table")) + "_TABLE"
}

func seedProject(ctx context.Context, st forgelink.Store, sl forgelink.Sealer, vcs, hookID string) error {
	slug, err := forgelink.NewSlug(vcs, SampleOrg, SampleRepo)
	if err != nil {
		return err
	}
	key, err := sshkeys.Generate(sshkeys.ED25519, rand.Reader)
	if err != nil {
		return err
	}
	sealedKey, err := sl.Seal(ctx, key.PrivatePEM, slug.AAD(follow.PurposeDeployKey))
	if err != nil {
		return err
	}
	sealedSecret, err := sl.Seal(ctx, []byte(SampleSecret), slug.AAD(follow.PurposeWebhookSecret))
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	return st.CreateProject(ctx, &forgelink.Project{
		Slug:          slug,
		State:         forgelink.Following,
		HookID:        hookID,
		DefaultBranch: "main",
		FollowedBy:    SampleUser,
		DeployKey: forgelink.SSHKey{
			PublicKey:         key.AuthorizedKey,
			FingerprintMD5:    key.FingerprintMD5,
			FingerprintSHA256: key.FingerprintSHA256,
			SealedPrivateKey:  sealedKey,
			CreatedAt:         now,
		},
		DeployKeyVCSID: "1",
		WebhookVCSID:   "1",
		Secrets:        []forgelink.WebhookSecret{{Sealed: sealedSecret}},
		Settings:       forgelink.DefaultSettings(),
		CreatedAt:      now,
		UpdatedAt:      now,
	})
}

// seedPipeline stores the sample pipeline SamplePipelineID: the GitHub
// sample project's main at SampleRevision, workflow "ci", pending.
func seedPipeline(ctx context.Context, st *dynamo.Store) error {
	p := &forgelink.Pipeline{
		ID: SamplePipelineID, Project: "gh/" + SampleOrg + "/" + SampleRepo, State: forgelink.PipelineCreated,
		Trigger: forgelink.TriggerPush, Branch: "main", Revision: SampleRevision, Workflows: []string{"ci"},
		Actor: SampleUser, HookID: SampleHookID, DeliveryID: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		CreatedAt: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
	}
	p.InitStatus()
	if _, err := st.CreatePipeline(ctx, p); err != nil {
		return fmt.Errorf("sample pipeline: %w", err)
	}
	return nil
}
