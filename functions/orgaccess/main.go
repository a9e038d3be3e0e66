// Command orgaccess is forgelink's org-access health check: on its
// EventBridge schedule it sweeps every followed project (token, OAuth App
// restrictions, repository, webhook, deploy key, failed deliveries),
// repairs what it can and records what the user must do; it serves
// GET /api/v2/org-access and POST /api/v2/org-access/check.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"forgelink/shared/accessapi"
	"forgelink/shared/awsenv"
	"forgelink/shared/dynamo"
	"forgelink/shared/follow"
	"forgelink/shared/forges"
	"forgelink/shared/lambdarun"
	"forgelink/shared/orgaccess"
	"forgelink/shared/sealer"
	"forgelink/shared/signin"
	"forgelink/shared/ssmsecrets"
)

func main() {
	ctx := context.Background()
	cfg, aws, err := awsenv.Setup(ctx, "FORGELINK_PROJECTS_TABLE", "FORGELINK_USERS_TABLE", "FORGELINK_KMS_KEY_ID", "FORGELINK_API_TOKEN")
	if err == nil {
		err = ssmsecrets.Load(ctx, &ssmsecrets.Client{Config: aws}, cfg)
	}
	if err != nil {
		lambdarun.Fail(err)
	}
	log := cfg.Logger()
	store := dynamo.New(dynamo.NewClient(aws, cfg.DynamoDBEndpoint), dynamo.TablesOf(cfg))
	seal := sealer.NewEnvelope(sealer.NewKMS(kms.NewFromConfig(aws), cfg.KMSKeyID))
	// Each project is checked, and repaired, with its follower's token.
	users := signin.New(cfg, store, seal, nil, cfg.APIToken)
	vcs := forges.ForUsers(cfg, nil, users.Token)
	// Repairs reinstall the hook with the project's sealed secret.
	repair := &follow.Service{Store: store, Sealer: seal, Forges: vcs, Log: log}
	svc := &orgaccess.Service{
		Store: store, Checkers: forges.Checkers(vcs), Repair: repair.Repair, PublicURL: cfg.PublicURL,
		GitHubWebURL: cfg.GitHubWebURL, OAuthClientID: cfg.OAuthClientID, Log: log,
	}
	api := &accessapi.API{Service: svc, Auth: users, Authz: users, Log: log}
	sweep := func(ctx context.Context, _ events.EventBridgeEvent) error {
		_, err := svc.Sweep(ctx, orgaccess.Scope{})
		return err
	}
	if err := lambdarun.ServeEvents(api.Handler(), lambdarun.Events{Schedule: sweep}, cfg.Addr, log); err != nil {
		lambdarun.Fail(err)
	}
}
