// Command keys is forgelink's projects and keys API function: follow and
// unfollow repositories (deploy key + webhook), on CircleCI's API paths.
package main

import (
	"context"
	"net/http"

	"forgelink/shared/follow"
	"forgelink/shared/httpapi"
	"forgelink/shared/lambdaapp"
)

func main() {
	need := []string{"FORGELINK_PROJECTS_TABLE", "FORGELINK_KMS_KEY_ID", "FORGELINK_API_TOKEN"}
	lambdaapp.Main(need, func(ctx context.Context, app *lambdaapp.App) (http.Handler, error) {
		cfg := app.Config
		svc := &follow.Service{Store: app.Store, Sealer: app.Sealer, Forges: app.Forges, Log: app.Log}
		api := &httpapi.Projects{
			Store:     app.Store,
			Follow:    svc,
			Auth:      httpapi.NewStaticToken(cfg.APIToken, httpapi.User{Login: cfg.APIUser}),
			PublicURL: cfg.PublicURL,
			Log:       app.Log,
		}
		return api.Handler(), nil
	})
}
