package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"forgelink/shared/forgelink"
)

// DeliveryStates is the part of the store that the SQS consumer updates.
type DeliveryStates interface {
	SetDeliveryState(ctx context.Context, hookID, id string, state forgelink.DeliveryState) error
}

// SQSOptions tune SQSHandler.
type SQSOptions struct {
	// Deliveries records each message's outcome on its delivery: Decided,
	// or Dead once it failed MaxReceives times. Optional.
	Deliveries DeliveryStates
	// MaxReceives is the queue's maxReceiveCount (template.yaml): the
	// receive on which a failure sends the message to the dead-letter
	// queue. Default 5.
	MaxReceives int
	// OnDead is told of every message that goes to the dead-letter queue.
	OnDead DeadLetterFunc
	Log    *slog.Logger
}

// SQSHandler adapts a Consumer to a Lambda SQS event source with
// ReportBatchItemFailures: a message whose consumer fails is reported and
// delivered again (and after maxReceiveCount lands in the dead-letter
// queue, recorded first as Dead through OnDead); the others in the batch
// are deleted. A message that is not a forgelink.Message is reported too,
// so it ends up in the DLQ for a human rather than vanishing.
func SQSHandler(consume Consumer, opts SQSOptions) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	if opts.MaxReceives <= 0 {
		opts.MaxReceives = 5
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	log := opts.Log
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		var resp events.SQSEventResponse
		for _, rec := range ev.Records {
			var m forgelink.Message
			if err := json.Unmarshal([]byte(rec.Body), &m); err != nil || m.DeliveryID == "" {
				log.ErrorContext(ctx, "malformed queue message; leaving it for the dead-letter queue", "message_id", rec.MessageId, "err", err)
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
				continue
			}
			mlog := log.With("delivery", m.DeliveryID, "hook_id", m.HookID, "message_id", rec.MessageId)
			err := consume(ctx, &m)
			if err == nil {
				if opts.Deliveries != nil {
					if err := opts.Deliveries.SetDeliveryState(ctx, m.HookID, m.DeliveryID, forgelink.Decided); err != nil && forgelink.KindOf(err) != forgelink.NotFound {
						mlog.WarnContext(ctx, "decided, but could not mark the delivery decided", "err", err)
					}
				}
				continue
			}
			receives, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
			if receives >= opts.MaxReceives {
				mlog.ErrorContext(ctx, "dead-lettered", "receive_count", receives, "kind", forgelink.KindOf(err).String(), "err", err)
				if opts.Deliveries != nil {
					if serr := opts.Deliveries.SetDeliveryState(ctx, m.HookID, m.DeliveryID, forgelink.Dead); serr != nil {
						mlog.WarnContext(ctx, "could not mark the delivery dead", "err", serr)
					}
				}
				if opts.OnDead != nil {
					opts.OnDead(ctx, &m, receives, err)
				}
			} else {
				mlog.WarnContext(ctx, "message failed; SQS will deliver it again", "receive_count", receives, "kind", forgelink.KindOf(err).String(), "err", err)
			}
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
		return resp, nil
	}
}

// DeliveryWriter is the part of the store that SQSInbox writes.
type DeliveryWriter interface {
	CreateDelivery(ctx context.Context, d *forgelink.Delivery) error
	DeliveryStates
}

// SQSInbox accepts deliveries in AWS: one conditional write of the
// delivery (the de-duplication) and one SQS send. A send that fails
// leaves the delivery Received and answers Transient; the VCS's
// redelivery finds it undecided and requeues it, so nothing is lost.
type SQSInbox struct {
	Deliveries DeliveryWriter
	Queue      forgelink.Queue
}

var _ forgelink.Inbox = (*SQSInbox)(nil)

// Accept stores d, then sends its message.
func (in *SQSInbox) Accept(ctx context.Context, d *forgelink.Delivery) error {
	if err := in.Deliveries.CreateDelivery(ctx, d); err != nil {
		return err
	}
	return in.Queue.Publish(ctx, d.Message())
}

// Requeue sends d's message again (evaluation is idempotent) and marks a
// delivery that was not Received (a dead one) Received again.
func (in *SQSInbox) Requeue(ctx context.Context, d *forgelink.Delivery) error {
	if err := in.Queue.Publish(ctx, d.Message()); err != nil {
		return err
	}
	if d.State != forgelink.Received {
		if err := in.Deliveries.SetDeliveryState(ctx, d.HookID, d.ID, forgelink.Received); err != nil {
			return fmt.Errorf("requeue delivery %s: %w", d.ID, err)
		}
	}
	return nil
}

// SQSHandoff publishes created pipelines to the executor's queue and their
// first status request to the status function's queue.
type SQSHandoff struct {
	client    SQSAPI
	pipelines string
	statuses  *SQSStatus
	// Runner mints the executor's tokens and names the checkout and status
	// URLs; nil sends pipelines without them.
	Runner *RunnerAccess
}

// NewSQSHandoff returns a Handoff to the two queues.
func NewSQSHandoff(client SQSAPI, pipelinesURL, statusURL string) *SQSHandoff {
	return &SQSHandoff{client: client, pipelines: pipelinesURL, statuses: NewSQSStatus(client, statusURL)}
}

// Handoff sends the pipeline and its first status request.
func (h *SQSHandoff) Handoff(ctx context.Context, p *forgelink.Pipeline) error {
	msg, err := h.Runner.message(ctx, p)
	if err != nil {
		return fmt.Errorf("sqs: hand off pipeline %s: %w", p.ID, err)
	}
	if err := sendJSON(ctx, h.client, h.pipelines, msg); err != nil {
		return fmt.Errorf("sqs: hand off pipeline %s: %w", p.ID, err)
	}
	return h.statuses.Request(ctx, h.Runner.firstStatus(p))
}
