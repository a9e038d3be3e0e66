package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"forgelink/shared/forgelink"
)

// StatusRequester queues status requests for the status function's
// consumer: LocalStatus in the one-process server, SQSStatus in AWS.
type StatusRequester interface {
	Request(ctx context.Context, r *forgelink.StatusRequest) error
}

// StatusConsumer handles one status request; an error means: try again
// later (after forgelink.RetryAfter when the error names it).
type StatusConsumer func(ctx context.Context, r *forgelink.StatusRequest) error

// StatusOutbox is the durable storage behind LocalStatus (the embedded
// store implements it).
type StatusOutbox interface {
	// PutStatusEntry stores e under e.Message.Key(), replacing one there.
	PutStatusEntry(ctx context.Context, e *forgelink.StatusQueueEntry) error
	// DeleteStatusEntry removes the entry with this key; a missing one is
	// not an error.
	DeleteStatusEntry(ctx context.Context, key string) error
	// StatusEntries returns every entry, dead ones included.
	StatusEntries(ctx context.Context) ([]*forgelink.StatusQueueEntry, error)
}

// LocalStatus is the one-process server's status queue, with the intake
// queue's guarantees: stored before Request returns, resumed after a
// crash, retried with backoff (or the VCS's Retry-After) without holding
// a worker, round-robin across projects, and kept as a dead letter after
// MaxReceives failures.
type LocalStatus struct {
	outbox StatusOutbox
	pool   pool[forgelink.StatusRequest]
}

var _ StatusRequester = (*LocalStatus)(nil)

// StatusDeadFunc records that a status request failed every try; err is
// the last failure.
type StatusDeadFunc func(ctx context.Context, r *forgelink.StatusRequest, attempts int, err error)

// NewLocalStatus starts the status queue's workers and resumes the stored
// requests that are not dead. onDead (optional) is told of every request
// that failed MaxReceives times; opts.OnDead is not used.
func NewLocalStatus(ctx context.Context, outbox StatusOutbox, consume StatusConsumer, onDead StatusDeadFunc, opts LocalOptions) (*LocalStatus, error) {
	q := &LocalStatus{outbox: outbox}
	q.pool = pool[forgelink.StatusRequest]{
		store:   statusOutbox{outbox},
		consume: consume,
		key:     (*forgelink.StatusRequest).Key,
		project: func(r *forgelink.StatusRequest) string { return r.Project },
		onDead:  onDead,
		logWith: func(log *slog.Logger, r *forgelink.StatusRequest) *slog.Logger {
			return log.With("pipeline", r.PipelineID, "project", r.Project, "state", r.State)
		},
		opts: opts,
	}
	q.pool.init()
	entries, err := outbox.StatusEntries(ctx)
	if err != nil {
		return nil, fmt.Errorf("status queue: resume: %w", err)
	}
	if n := q.pool.resume(entries); n > 0 {
		q.pool.opts.Log.Info("resumed status requests", "count", n)
	}
	q.pool.start()
	return q, nil
}

type statusOutbox struct{ StatusOutbox }

func (o statusOutbox) put(ctx context.Context, e *forgelink.StatusQueueEntry) error {
	return o.PutStatusEntry(ctx, e)
}

func (o statusOutbox) finish(ctx context.Context, e *forgelink.StatusQueueEntry) error {
	return o.DeleteStatusEntry(ctx, e.Message.Key())
}

// Request stores r and queues it. The same request (pipeline, state,
// workflows) already waiting is not queued twice.
func (q *LocalStatus) Request(ctx context.Context, r *forgelink.StatusRequest) error {
	if !q.pool.reserve(r.Key()) {
		return nil
	}
	e := &forgelink.StatusQueueEntry{Message: *r, DueAt: time.Now()}
	if err := q.outbox.PutStatusEntry(ctx, e); err != nil {
		q.pool.release(r.Key())
		return fmt.Errorf("status queue: request %s for pipeline %s: %w", r.State, r.PipelineID, err)
	}
	q.pool.schedule(e)
	return nil
}

// Close stops the workers after their current request; what is queued is
// resumed on the next start.
func (q *LocalStatus) Close() { q.pool.close() }

// SQSStatus sends status requests to the status function's SQS queue.
type SQSStatus struct {
	client SQSAPI
	url    string
}

var _ StatusRequester = (*SQSStatus)(nil)

// NewSQSStatus returns a StatusRequester to the queue at url.
func NewSQSStatus(client SQSAPI, url string) *SQSStatus { return &SQSStatus{client: client, url: url} }

// Request sends r as a JSON message body.
func (q *SQSStatus) Request(ctx context.Context, r *forgelink.StatusRequest) error {
	if err := sendJSON(ctx, q.client, q.url, r); err != nil {
		return fmt.Errorf("sqs: request %s status for pipeline %s: %w", r.State, r.PipelineID, err)
	}
	return nil
}

// sendJSON sends v as one message; a failed send is Transient.
func sendJSON(ctx context.Context, client SQSAPI, url string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	body := string(b)
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: &body}); err != nil {
		return forgelink.E(forgelink.Transient, "queue unavailable", err)
	}
	return nil
}

// SQSVisibilityAPI is the part of the SQS client that SQSStatusHandler
// uses to delay a message's next delivery.
type SQSVisibilityAPI interface {
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// SQSStatusOptions tune SQSStatusHandler.
type SQSStatusOptions struct {
	// Visibility and QueueURL delay a failed message's next delivery by
	// the wait its error names (a VCS's Retry-After) or by exponential
	// backoff with jitter, instead of the queue's visibility timeout.
	// Optional: without them SQS redelivers after the visibility timeout.
	Visibility SQSVisibilityAPI
	QueueURL   string
	// Backoff is the first retry's delay (default 5s); it doubles per
	// receive, up to 15 minutes.
	Backoff time.Duration
	// MaxReceives is the queue's maxReceiveCount (default 5): the receive
	// on which a failure sends the message to the dead-letter queue,
	// reported first to OnDead.
	MaxReceives int
	OnDead      StatusDeadFunc
	Log         *slog.Logger
}

// maxVisibility is SQS's longest visibility timeout we ask for.
const maxVisibility = 12 * time.Hour

// SQSStatusHandler adapts a StatusConsumer to a Lambda SQS event source
// with ReportBatchItemFailures. A failed message is reported, and its next
// delivery delayed per message (ChangeMessageVisibility) by the wait the
// failure names or by backoff, so one project's rate-limited statuses
// never wait in line before another's. A message that is not a status
// request is reported too, so it ends in the dead-letter queue.
func SQSStatusHandler(consume StatusConsumer, opts SQSStatusOptions) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	if opts.MaxReceives <= 0 {
		opts.MaxReceives = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 5 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	backoff := pool[forgelink.StatusRequest]{opts: LocalOptions{Backoff: opts.Backoff, MaxBackoff: 15 * time.Minute}}
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		var resp events.SQSEventResponse
		for _, rec := range ev.Records {
			fail := func() {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
			}
			var r forgelink.StatusRequest
			if err := json.Unmarshal([]byte(rec.Body), &r); err != nil || r.PipelineID == "" {
				opts.Log.ErrorContext(ctx, "malformed status request; leaving it for the dead-letter queue", "message_id", rec.MessageId, "err", err)
				fail()
				continue
			}
			log := opts.Log.With("pipeline", r.PipelineID, "project", r.Project, "state", r.State, "message_id", rec.MessageId)
			err := consume(ctx, &r)
			if err == nil {
				continue
			}
			fail()
			receives, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
			if receives >= opts.MaxReceives {
				log.ErrorContext(ctx, "status request dead-lettered", "receive_count", receives, "err", err)
				if opts.OnDead != nil {
					opts.OnDead(ctx, &r, receives, err)
				}
				continue
			}
			wait := min(backoff.wait(max(receives, 1), err), maxVisibility)
			log.WarnContext(ctx, "status request failed; will retry", "receive_count", receives, "retry_in", wait.String(), "err", err)
			if opts.Visibility != nil && opts.QueueURL != "" && rec.ReceiptHandle != "" {
				secs := int32((wait + time.Second - 1) / time.Second) // round up: a sub-second wait must not redeliver at once
				_, verr := opts.Visibility.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
					QueueUrl: &opts.QueueURL, ReceiptHandle: &rec.ReceiptHandle, VisibilityTimeout: secs,
				})
				if verr != nil {
					log.WarnContext(ctx, "could not delay the retry; SQS's visibility timeout applies", "err", verr)
				}
			}
		}
		return resp, nil
	}
}
