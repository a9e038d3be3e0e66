// Command webhook is forgelink's webhook intake function: it verifies,
// de-duplicates, stores and enqueues GitHub and Bitbucket deliveries
// (POST /hooks/github/{hook-id}, POST /hooks/bitbucket/{hook-id}).
package main

import (
	"context"
	"net/http"
	"time"

	"forgelink/shared/intake"
	"forgelink/shared/lambdaapp"
	"forgelink/shared/sealer"
)

func main() {
	need := []string{"FORGELINK_PROJECTS_TABLE", "FORGELINK_DELIVERIES_TABLE", "FORGELINK_KMS_KEY_ID", "FORGELINK_INTAKE_QUEUE_URL"}
	lambdaapp.Main(need, func(ctx context.Context, app *lambdaapp.App) (http.Handler, error) {
		// A warm function opens each project's webhook secret with KMS once
		// per 5 minutes, not once per delivery.
		secrets := sealer.NewCache(app.Sealer, 5*time.Minute, 1024)
		in := &intake.Intake{Store: app.Store, Sealer: secrets, Queue: app.Queue, Log: app.Log}
		return in.Handler(), nil
	})
}
