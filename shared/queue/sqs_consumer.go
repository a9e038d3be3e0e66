package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"forgelink/shared/forgelink"
)

// SQSHandler adapts a Consumer to a Lambda SQS event source with
// ReportBatchItemFailures: a message whose consumer fails is reported and
// delivered again (and after maxReceiveCount lands in the dead-letter
// queue); the others in the batch are deleted. A message that is not a
// forgelink.Message is reported too, so it ends up in the DLQ for a human
// rather than vanishing.
func SQSHandler(consume Consumer, log *slog.Logger) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		var resp events.SQSEventResponse
		for _, rec := range ev.Records {
			var m forgelink.Message
			if err := json.Unmarshal([]byte(rec.Body), &m); err != nil || m.DeliveryID == "" {
				log.ErrorContext(ctx, "malformed queue message; leaving it for the dead-letter queue", "message_id", rec.MessageId, "err", err)
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
				continue
			}
			if err := consume(ctx, &m); err != nil {
				log.WarnContext(ctx, "message failed; SQS will deliver it again", "delivery", m.DeliveryID, "hook_id", m.HookID, "message_id", rec.MessageId, "receive_count", rec.Attributes["ApproximateReceiveCount"], "kind", forgelink.KindOf(err).String(), "err", err)
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
			}
		}
		return resp, nil
	}
}

// SQSHandoff publishes created pipelines to the executor's queue and a
// pending-status request to the status function's queue.
type SQSHandoff struct {
	client      SQSAPI
	pipelines   string
	statusQueue string
	// Runner mints the executor's runner token and names the checkout URL;
	// nil sends pipelines without them.
	Runner *RunnerAccess
}

// NewSQSHandoff returns a Handoff to the two queues.
func NewSQSHandoff(client SQSAPI, pipelinesURL, statusURL string) *SQSHandoff {
	return &SQSHandoff{client: client, pipelines: pipelinesURL, statusQueue: statusURL}
}

// Handoff sends the pipeline and its pending status request.
func (h *SQSHandoff) Handoff(ctx context.Context, p *forgelink.Pipeline) error {
	msg, err := h.Runner.message(ctx, p)
	if err != nil {
		return fmt.Errorf("sqs: hand off pipeline %s: %w", p.ID, err)
	}
	if err := h.send(ctx, h.pipelines, msg); err != nil {
		return fmt.Errorf("sqs: hand off pipeline %s: %w", p.ID, err)
	}
	st := &forgelink.StatusRequest{PipelineID: p.ID, Project: p.Project, Revision: p.Revision, State: "pending"}
	if p.State == forgelink.PipelineErrored {
		st.State = "error"
	}
	if err := h.send(ctx, h.statusQueue, st); err != nil {
		return fmt.Errorf("sqs: request status for pipeline %s: %w", p.ID, err)
	}
	return nil
}

func (h *SQSHandoff) send(ctx context.Context, url string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	body := string(b)
	if _, err := h.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: &body}); err != nil {
		return forgelink.E(forgelink.Transient, "queue unavailable", err)
	}
	return nil
}
