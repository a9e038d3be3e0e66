// Command pages is forgelink's settings pages function: the repositories
// you may follow, each project's checkout and additional SSH keys,
// advanced settings, status badge and pipelines, one pipeline, and org
// access, server-rendered (shared/pages, templ's generated code: no
// reflection, so the bootstrap is the API function's size).
package main

import (
	"context"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"forgelink/shared/awsenv"
	"forgelink/shared/dynamo"
	"forgelink/shared/follow"
	"forgelink/shared/forgelink"
	"forgelink/shared/forges"
	"forgelink/shared/keysvc"
	"forgelink/shared/lambdarun"
	"forgelink/shared/orgaccess"
	"forgelink/shared/pages"
	"forgelink/shared/sealer"
	"forgelink/shared/signin"
	"forgelink/shared/ssmsecrets"
)

func main() {
	ctx := context.Background()
	cfg, aws, err := awsenv.Setup(ctx, "FORGELINK_PROJECTS_TABLE", "FORGELINK_PIPELINES_TABLE", "FORGELINK_KEYS_TABLE", "FORGELINK_USERS_TABLE", "FORGELINK_KMS_KEY_ID", "FORGELINK_API_TOKEN")
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
	// The pages read org access as the orgaccess function stored it; the
	// "API token" form only where no OAuth sign-in is configured.
	settings := (&pages.Pages{
		Users:       users,
		Store:       store,
		Pipelines:   store,
		Follow:      &follow.Service{Store: store, Sealer: seal, Forges: vcs, BeforeUnfollow: keys.RemoveProjectKeys, Log: log},
		Keys:        keys,
		Access:      &orgaccess.Service{Store: store, GitHubWebURL: cfg.GitHubWebURL, OAuthClientID: cfg.OAuthClientID, Log: log},
		TokenSignIn: !users.Enabled(forgelink.GitHub) && !users.Enabled(forgelink.Bitbucket),
		PublicURL:   cfg.PublicURL,
		Log:         log,
	}).Handler()
	mux := http.NewServeMux()
	for _, route := range pages.Routes {
		mux.Handle(route, settings)
	}
	if err := lambdarun.Serve(mux, cfg.Addr, log); err != nil {
		lambdarun.Fail(err)
	}
}
