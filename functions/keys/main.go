// Command keys is forgelink's projects and keys API function: follow and
// unfollow repositories (deploy key + webhook), settings, pipelines and
// deliveries, checkout keys, additional SSH keys and checkout material,
// on CircleCI's API paths.
package main

import (
	"context"
	"net/http"

	"forgelink/shared/follow"
	"forgelink/shared/httpapi"
	"forgelink/shared/keysvc"
	"forgelink/shared/lambdaapp"
)

func main() {
	need := []string{"FORGELINK_PROJECTS_TABLE", "FORGELINK_PIPELINES_TABLE", "FORGELINK_KEYS_TABLE", "FORGELINK_KMS_KEY_ID", "FORGELINK_API_TOKEN"}
	lambdaapp.Main(need, func(ctx context.Context, app *lambdaapp.App) (http.Handler, error) {
		cfg := app.Config
		keys := &keysvc.Service{Store: app.Store, Keys: app.Store, Pipelines: app.Store, Sealer: app.Sealer,
			Forges: app.Forges, GitHubAPIURL: cfg.GitHubAPIURL, Log: app.Log}
		auth := httpapi.NewStaticToken(cfg.APIToken, httpapi.User{Login: cfg.APIUser})
		projects := &httpapi.Projects{
			Store:     app.Store,
			Pipelines: app.Store,
			Follow:    &follow.Service{Store: app.Store, Sealer: app.Sealer, Forges: app.Forges, BeforeUnfollow: keys.RemoveProjectKeys, Log: app.Log},
			Auth:      auth,
			PublicURL: cfg.PublicURL,
			Log:       app.Log,
		}
		api := &httpapi.Keys{Service: keys, Auth: auth, Log: app.Log}
		return api.Handler(projects.Handler()), nil
	})
}
