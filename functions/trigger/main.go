// Command trigger is forgelink's trigger-evaluation function: it consumes
// the intake queue and turns every delivery into pipelines or recorded
// skips, handing new pipelines (with a single-use runner token) to the
// executor and a pending-status request to the status function.
package main

import (
	"context"

	"forgelink/shared/keysvc"
	"forgelink/shared/lambdaapp"
	"forgelink/shared/queue"
	"forgelink/shared/trigger"
)

func main() {
	need := []string{"FORGELINK_PROJECTS_TABLE", "FORGELINK_PIPELINES_TABLE", "FORGELINK_KEYS_TABLE", "FORGELINK_PIPELINES_QUEUE_URL", "FORGELINK_STATUS_QUEUE_URL"}
	lambdaapp.MainSQS(need, func(ctx context.Context, app *lambdaapp.App) (queue.Consumer, error) {
		keys := &keysvc.Service{Store: app.Store, Keys: app.Store, Pipelines: app.Store, Sealer: app.Sealer, Forges: app.Forges, Log: app.Log}
		handoff := queue.NewSQSHandoff(app.SQSClient, app.Config.PipelinesQueue, app.Config.StatusQueue)
		handoff.Runner = &queue.RunnerAccess{Mint: keys.MintRunnerTokenFor, PublicURL: app.Config.PublicURL}
		svc := &trigger.Service{Store: app.Store, Readers: app.Readers, Handoff: handoff, Log: app.Log}
		return svc.Handle, nil
	})
}
