package queue

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"forgelink/shared/forgelink"
)

// Outbox is the durable storage behind the local queue (the embedded
// store implements it): a delivery and its queue entry are written in one
// transaction, so an accepted delivery survives any crash.
type Outbox interface {
	// AcceptDelivery stores d and e together, or returns a Conflict and
	// writes nothing when d exists.
	AcceptDelivery(ctx context.Context, d *forgelink.Delivery, e *forgelink.QueueEntry) error
	// PutQueueEntry stores e and sets its delivery's state.
	PutQueueEntry(ctx context.Context, e *forgelink.QueueEntry, state forgelink.DeliveryState) error
	// FinishQueueEntry removes the entry and marks the delivery Decided.
	FinishQueueEntry(ctx context.Context, hookID, id string) error
	// QueueEntries returns every entry, dead ones included.
	QueueEntries(ctx context.Context) ([]*forgelink.QueueEntry, error)
}

// DeadLetterFunc records that m failed every try; err is the last failure.
type DeadLetterFunc func(ctx context.Context, m *forgelink.Message, attempts int, err error)

// LocalOptions tune the local queue.
type LocalOptions struct {
	// Workers is how many messages are evaluated at once. Default 16.
	Workers int
	// MaxReceives is how often a message is tried before it is
	// dead-lettered (SQS maxReceiveCount). Default 5.
	MaxReceives int
	// Backoff is the delay before the first retry; it doubles with each
	// try, with jitter, up to MaxBackoff. Defaults 1s and 5m.
	Backoff, MaxBackoff time.Duration
	// OnDead is told of every dead letter (the trigger records it in the
	// project's deliveries). Optional.
	OnDead DeadLetterFunc
	Log    *slog.Logger
}

// Local is the one-process server's intake queue. It keeps every message
// in an Outbox until its consumer succeeded, so a crash loses nothing:
// NewLocal resumes every entry that was accepted and not yet decided.
//
// Workers take messages round-robin across projects, and one project never
// holds more than half of them, so a project whose evaluations fail or
// hang cannot hold up another's. A message waiting for its retry holds no
// worker: a timer puts it back in line.
type Local struct {
	outbox Outbox
	pool   pool[forgelink.Message]
}

var _ forgelink.Inbox = (*Local)(nil)

// NewLocal starts the queue's workers and resumes the entries in outbox
// that are not dead.
func NewLocal(ctx context.Context, outbox Outbox, consume Consumer, opts LocalOptions) (*Local, error) {
	q := &Local{outbox: outbox}
	q.pool = pool[forgelink.Message]{
		store:   deliveryOutbox{outbox},
		consume: consume,
		key:     entryKey,
		project: func(m *forgelink.Message) string { return m.Project },
		onDead:  opts.OnDead,
		logWith: func(log *slog.Logger, m *forgelink.Message) *slog.Logger {
			return log.With("delivery", m.DeliveryID, "hook_id", m.HookID, "project", m.Project)
		},
		opts: opts,
	}
	q.pool.init()
	entries, err := outbox.QueueEntries(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue: resume: %w", err)
	}
	if n := q.pool.resume(entries); n > 0 {
		q.pool.opts.Log.Info("resumed accepted deliveries", "count", n)
	}
	q.pool.start()
	return q, nil
}

// deliveryOutbox stores the intake pool's entries with their deliveries'
// states.
type deliveryOutbox struct{ Outbox }

func (o deliveryOutbox) put(ctx context.Context, e *forgelink.QueueEntry) error {
	state := forgelink.Received
	if e.Dead {
		state = forgelink.Dead
	}
	return o.PutQueueEntry(ctx, e, state)
}

func (o deliveryOutbox) finish(ctx context.Context, e *forgelink.QueueEntry) error {
	return o.FinishQueueEntry(ctx, e.Message.HookID, e.Message.DeliveryID)
}

// Accept stores d (state Received) and its queue entry in one durable
// write, then hands it to a worker.
func (q *Local) Accept(ctx context.Context, d *forgelink.Delivery) error {
	e := &forgelink.QueueEntry{Message: *d.Message(), DueAt: d.ReceivedAt}
	if err := q.outbox.AcceptDelivery(ctx, d, e); err != nil {
		return err
	}
	q.pool.schedule(e)
	return nil
}

// Requeue queues d for evaluation again with a fresh count of tries. A
// delivery already waiting or in flight is left as it is: Conflict.
func (q *Local) Requeue(ctx context.Context, d *forgelink.Delivery) error {
	key := entryKey(&forgelink.Message{HookID: d.HookID, DeliveryID: d.ID})
	if !q.pool.reserve(key) {
		return forgelink.Errorf(forgelink.Conflict, "delivery %s is already queued or being evaluated", d.ID)
	}
	e := &forgelink.QueueEntry{Message: *d.Message(), DueAt: time.Now()}
	if err := q.outbox.PutQueueEntry(ctx, e, forgelink.Received); err != nil {
		q.pool.release(key)
		return fmt.Errorf("queue: requeue %s: %w", d.ID, err)
	}
	q.pool.schedule(e)
	return nil
}

func entryKey(m *forgelink.Message) string { return m.HookID + "\x00" + m.DeliveryID }

// Close stops the workers after their current message and waits for them.
// What is still queued stays in the outbox and is resumed on the next
// start.
func (q *Local) Close() { q.pool.close() }
