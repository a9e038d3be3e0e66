package queue

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
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
	// Workers is how many messages are evaluated at once. Default 4.
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

// Local is the one-process server's queue. It keeps every message in an
// Outbox until its consumer succeeded, so a crash loses nothing: NewLocal
// resumes every entry that was accepted and not yet decided.
//
// Workers take messages round-robin across projects, and one project never
// holds more than half of them, so a project whose evaluations fail or
// hang cannot hold up another's. A message waiting for its retry holds no
// worker: a timer puts it back in line.
type Local struct {
	outbox  Outbox
	consume Consumer
	opts    LocalOptions

	mu       sync.Mutex
	cond     *sync.Cond
	ready    map[string][]*forgelink.QueueEntry // by project, in arrival order
	projects []string                           // projects with ready entries, round-robin
	running  map[string]int                     // in-flight messages by project
	queued   map[string]bool                    // entries ready, waiting or in flight, by key
	timers   map[string]*time.Timer
	closed   bool
	wg       sync.WaitGroup
}

var _ forgelink.Inbox = (*Local)(nil)

// NewLocal starts the queue's workers and resumes the entries in outbox
// that are not dead.
func NewLocal(ctx context.Context, outbox Outbox, consume Consumer, opts LocalOptions) (*Local, error) {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.MaxReceives <= 0 {
		opts.MaxReceives = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	q := &Local{
		outbox: outbox, consume: consume, opts: opts,
		ready: map[string][]*forgelink.QueueEntry{}, running: map[string]int{},
		queued: map[string]bool{}, timers: map[string]*time.Timer{},
	}
	q.cond = sync.NewCond(&q.mu)
	entries, err := outbox.QueueEntries(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue: resume: %w", err)
	}
	resumed := 0
	for _, e := range entries {
		if !e.Dead {
			q.schedule(e)
			resumed++
		}
	}
	if resumed > 0 {
		opts.Log.Info("resumed accepted deliveries", "count", resumed)
	}
	for range opts.Workers {
		q.wg.Add(1)
		go q.work()
	}
	return q, nil
}

// Accept stores d (state Received) and its queue entry in one durable
// write, then hands it to a worker.
func (q *Local) Accept(ctx context.Context, d *forgelink.Delivery) error {
	e := &forgelink.QueueEntry{Message: *d.Message(), DueAt: d.ReceivedAt}
	if err := q.outbox.AcceptDelivery(ctx, d, e); err != nil {
		return err
	}
	q.schedule(e)
	return nil
}

// Requeue queues d for evaluation again with a fresh count of tries. A
// delivery already waiting or in flight is left as it is.
func (q *Local) Requeue(ctx context.Context, d *forgelink.Delivery) error {
	key := entryKey(&forgelink.Message{HookID: d.HookID, DeliveryID: d.ID})
	q.mu.Lock()
	busy := q.queued[key]
	q.mu.Unlock()
	if busy {
		return nil
	}
	e := &forgelink.QueueEntry{Message: *d.Message(), DueAt: time.Now()}
	if err := q.outbox.PutQueueEntry(ctx, e, forgelink.Received); err != nil {
		return fmt.Errorf("queue: requeue %s: %w", d.ID, err)
	}
	q.schedule(e)
	return nil
}

func entryKey(m *forgelink.Message) string { return m.HookID + "\x00" + m.DeliveryID }

// schedule puts e in line now, or when it is due.
func (q *Local) schedule(e *forgelink.QueueEntry) {
	key := entryKey(&e.Message)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return // still in the outbox: resumed on the next start
	}
	q.queued[key] = true
	if wait := time.Until(e.DueAt); wait > 0 {
		q.timers[key] = time.AfterFunc(wait, func() {
			q.mu.Lock()
			defer q.mu.Unlock()
			delete(q.timers, key)
			if !q.closed {
				q.push(e)
			}
		})
		return
	}
	q.push(e)
}

// push makes e ready. q.mu is held.
func (q *Local) push(e *forgelink.QueueEntry) {
	p := e.Message.Project
	if len(q.ready[p]) == 0 {
		q.projects = append(q.projects, p)
	}
	q.ready[p] = append(q.ready[p], e)
	q.cond.Signal()
}

// next blocks until an entry may run and takes it, or returns nil once the
// queue is closed. q.mu is held.
func (q *Local) next() *forgelink.QueueEntry {
	perProject := max(1, q.opts.Workers/2)
	for !q.closed {
		for i, p := range q.projects {
			if q.running[p] >= perProject {
				continue
			}
			e := q.ready[p][0]
			q.ready[p] = q.ready[p][1:]
			// Round-robin: the project goes to the back of the line.
			q.projects = append(q.projects[:i:i], q.projects[i+1:]...)
			if len(q.ready[p]) > 0 {
				q.projects = append(q.projects, p)
			} else {
				delete(q.ready, p)
			}
			q.running[p]++
			return e
		}
		q.cond.Wait()
	}
	return nil
}

func (q *Local) work() {
	defer q.wg.Done()
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		e := q.next()
		if e == nil {
			return
		}
		q.mu.Unlock()
		retry := q.try(e)
		q.mu.Lock()
		q.running[e.Message.Project]--
		if q.running[e.Message.Project] == 0 {
			delete(q.running, e.Message.Project)
		}
		delete(q.queued, entryKey(&e.Message))
		q.cond.Broadcast() // the project may run another
		if retry != nil && !q.closed {
			q.mu.Unlock()
			q.schedule(retry)
			q.mu.Lock()
		}
	}
}

// try runs the consumer on e and records the outcome; it returns the entry
// to retry, or nil.
func (q *Local) try(e *forgelink.QueueEntry) *forgelink.QueueEntry {
	ctx := context.Background()
	m := &e.Message
	log := q.opts.Log.With("delivery", m.DeliveryID, "hook_id", m.HookID, "project", m.Project)
	err := q.consume(ctx, m)
	if err == nil {
		if err := q.outbox.FinishQueueEntry(ctx, m.HookID, m.DeliveryID); err != nil {
			// Decided but still queued: the next start evaluates it again,
			// which creates nothing twice.
			log.Error("could not finish queue entry", "err", err)
		}
		return nil
	}
	next := *e
	next.Attempts++
	next.LastError = forgelink.MessageOf(err)
	if next.LastError == "" {
		next.LastError = err.Error()
	}
	if next.Attempts >= q.opts.MaxReceives {
		next.Dead = true
		log.Error("dead-lettered", "attempts", next.Attempts, "err", err)
		if perr := q.outbox.PutQueueEntry(ctx, &next, forgelink.Dead); perr != nil {
			log.Error("could not record dead letter", "err", perr)
		}
		if q.opts.OnDead != nil {
			q.opts.OnDead(ctx, m, next.Attempts, err)
		}
		return nil
	}
	wait := q.backoff(next.Attempts)
	next.DueAt = time.Now().Add(wait)
	log.Warn("evaluation failed; will retry", "attempt", next.Attempts, "retry_in", wait.String(), "err", err)
	if perr := q.outbox.PutQueueEntry(ctx, &next, forgelink.Received); perr != nil {
		log.Error("could not record the attempt", "err", perr)
	}
	return &next
}

// backoff is the wait before try attempts+1: Backoff doubled per failed
// try, capped at MaxBackoff, with "equal jitter" (half fixed, half random)
// so retries of many messages spread out.
func (q *Local) backoff(attempts int) time.Duration {
	d := q.opts.Backoff
	for i := 1; i < attempts && d < q.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, q.opts.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// Close stops the workers after their current message and waits for them.
// What is still queued stays in the outbox and is resumed on the next
// start.
func (q *Local) Close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	for k, t := range q.timers {
		t.Stop()
		delete(q.timers, k)
	}
	q.cond.Broadcast()
	q.mu.Unlock()
	q.wg.Wait()
}
