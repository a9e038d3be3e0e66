// Command webhook is forgelink's webhook intake function: it verifies,
// de-duplicates, stores and enqueues GitHub and Bitbucket deliveries
// (POST /hooks/github/{hook-id}, POST /hooks/bitbucket/{hook-id}).
package main

import (
	"context"
	"net/http"

	"forgelink/shared/httpapi"
	"forgelink/shared/lambdaapp"
)

func main() {
	need := []string{"FORGELINK_PROJECTS_TABLE", "FORGELINK_DELIVERIES_TABLE", "FORGELINK_KMS_KEY_ID", "FORGELINK_INTAKE_QUEUE_URL"}
	lambdaapp.Main(need, func(ctx context.Context, app *lambdaapp.App) (http.Handler, error) {
		in := &httpapi.Intake{Store: app.Store, Sealer: app.Sealer, Queue: app.Queue, Log: app.Log}
		return in.Handler(), nil
	})
}
