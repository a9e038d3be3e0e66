// Command trigger is forgelink's trigger-evaluation function: it consumes
// the intake queue and turns every delivery into pipelines or recorded
// skips, handing new pipelines to the executor and the status function.
package main

import (
	"context"

	"forgelink/shared/lambdaapp"
	"forgelink/shared/queue"
	"forgelink/shared/trigger"
)

func main() {
	need := []string{"FORGELINK_PROJECTS_TABLE", "FORGELINK_PIPELINES_TABLE", "FORGELINK_PIPELINES_QUEUE_URL", "FORGELINK_STATUS_QUEUE_URL"}
	lambdaapp.MainSQS(need, func(ctx context.Context, app *lambdaapp.App) (queue.Consumer, error) {
		svc := &trigger.Service{
			Store:   app.Store,
			Readers: app.Readers,
			Handoff: queue.NewSQSHandoff(app.SQSClient, app.Config.PipelinesQueue, app.Config.StatusQueue),
			Log:     app.Log,
		}
		return svc.Handle, nil
	})
}
