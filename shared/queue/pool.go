package queue

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"forgelink/shared/forgelink"
)

// maxRetryAfter caps a wait that the failure itself named (a VCS's
// Retry-After or rate-limit reset).
const maxRetryAfter = time.Hour

// pool is the engine of the one-process server's durable queues (intake,
// statuses): workers take entries round-robin across projects, one project
// never holds more than half of them, and an entry waiting for its retry
// holds no worker - a timer puts it back in line. Its store keeps every
// entry until its consumer succeeded.
type pool[T any] struct {
	store   poolStore[T]
	consume func(ctx context.Context, m *T) error
	key     func(m *T) string
	project func(m *T) string
	onDead  func(ctx context.Context, m *T, attempts int, err error)
	logWith func(log *slog.Logger, m *T) *slog.Logger
	opts    LocalOptions

	mu       sync.Mutex
	cond     *sync.Cond
	ready    map[string][]*forgelink.Queued[T] // by project, in arrival order
	projects []string                          // projects with ready entries, round-robin
	running  map[string]int                    // in-flight entries by project
	queued   map[string]bool                   // entries ready, waiting or in flight, by key
	timers   map[string]*time.Timer
	closed   bool
	wg       sync.WaitGroup
}

// poolStore persists a pool's entries.
type poolStore[T any] interface {
	// put stores e: a failed try's attempt count, or a dead letter.
	put(ctx context.Context, e *forgelink.Queued[T]) error
	// finish removes e once its consumer succeeded.
	finish(ctx context.Context, e *forgelink.Queued[T]) error
}

// init fills the defaults and the maps; start launches the workers.
func (q *pool[T]) init() {
	if q.opts.Workers <= 0 {
		q.opts.Workers = 16
	}
	if q.opts.MaxReceives <= 0 {
		q.opts.MaxReceives = 5
	}
	if q.opts.Backoff <= 0 {
		q.opts.Backoff = time.Second
	}
	if q.opts.MaxBackoff <= 0 {
		q.opts.MaxBackoff = 5 * time.Minute
	}
	if q.opts.Log == nil {
		q.opts.Log = slog.Default()
	}
	q.ready = map[string][]*forgelink.Queued[T]{}
	q.running = map[string]int{}
	q.queued = map[string]bool{}
	q.timers = map[string]*time.Timer{}
	q.cond = sync.NewCond(&q.mu)
}

// resume schedules the stored entries that are not dead and returns how
// many it scheduled.
func (q *pool[T]) resume(entries []*forgelink.Queued[T]) int {
	n := 0
	for _, e := range entries {
		if !e.Dead {
			q.schedule(e)
			n++
		}
	}
	return n
}

func (q *pool[T]) start() {
	for range q.opts.Workers {
		q.wg.Add(1)
		go q.work()
	}
}

// reserve marks key waiting and reports true, or false when an entry with
// this key is already waiting or in flight. A caller that reserved and
// then fails to store its entry must release the key.
func (q *pool[T]) reserve(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.queued[key] {
		return false
	}
	q.queued[key] = true
	return true
}

// release undoes a reserve whose entry was not stored.
func (q *pool[T]) release(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.queued, key)
}

// schedule puts e in line now, or when it is due.
func (q *pool[T]) schedule(e *forgelink.Queued[T]) {
	key := q.key(&e.Message)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return // still stored: resumed on the next start
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
func (q *pool[T]) push(e *forgelink.Queued[T]) {
	p := q.project(&e.Message)
	if len(q.ready[p]) == 0 {
		q.projects = append(q.projects, p)
	}
	q.ready[p] = append(q.ready[p], e)
	q.cond.Signal()
}

// next blocks until an entry may run and takes it, or returns nil once the
// queue is closed. q.mu is held.
func (q *pool[T]) next() *forgelink.Queued[T] {
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

func (q *pool[T]) work() {
	defer q.wg.Done()
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		e := q.next()
		if e == nil {
			return
		}
		q.mu.Unlock()
		retry, released := q.try(e)
		q.mu.Lock()
		p := q.project(&e.Message)
		q.running[p]--
		if q.running[p] == 0 {
			delete(q.running, p)
		}
		if (retry == nil && !released) || q.closed {
			// A retry keeps its key: the same message arriving meanwhile
			// is not queued twice.
			delete(q.queued, q.key(&e.Message))
		}
		q.cond.Broadcast() // the project may run another
		if retry != nil && !q.closed {
			q.mu.Unlock()
			q.schedule(retry)
			q.mu.Lock()
		}
	}
}

// try runs the consumer on e and records the outcome; it returns the entry
// to retry, or nil, and whether it released e's key already (a dead
// letter's, before it is recorded dead: a retry of the dead entry must find
// the key free).
func (q *pool[T]) try(e *forgelink.Queued[T]) (*forgelink.Queued[T], bool) {
	ctx := context.Background()
	m := &e.Message
	log := q.logWith(q.opts.Log, m)
	err := q.consume(ctx, m)
	if err == nil {
		if err := q.store.finish(ctx, e); err != nil {
			// Done but still stored: the next start runs it again, which
			// consumers make harmless.
			log.Error("could not finish queue entry", "err", err)
		}
		return nil, false
	}
	next := *e
	next.Attempts++
	next.LastError = forgelink.MessageOf(err)
	if next.LastError == "" {
		next.LastError = err.Error()
	}
	if next.Attempts >= q.opts.MaxReceives {
		next.Dead = true
		q.release(q.key(m))
		log.Error("dead-lettered", "attempts", next.Attempts, "err", err)
		if perr := q.store.put(ctx, &next); perr != nil {
			log.Error("could not record dead letter", "err", perr)
		}
		if q.onDead != nil {
			q.onDead(ctx, m, next.Attempts, err)
		}
		return nil, true
	}
	wait := q.wait(next.Attempts, err)
	next.DueAt = time.Now().Add(wait)
	log.Warn("failed; will retry", "attempt", next.Attempts, "retry_in", wait.String(), "err", err)
	if perr := q.store.put(ctx, &next); perr != nil {
		log.Error("could not record the attempt", "err", perr)
	}
	return &next, false
}

// wait is the delay before try attempts+1: what the failure asked for
// (forgelink.RetryAfter, e.g. a VCS's Retry-After), capped at an hour, or
// else Backoff doubled per failed try, capped at MaxBackoff, with "equal
// jitter" (half fixed, half random) so retries of many entries spread out.
func (q *pool[T]) wait(attempts int, err error) time.Duration {
	if after, ok := forgelink.RetryAfter(err); ok && after > 0 {
		return min(after, maxRetryAfter)
	}
	d := q.opts.Backoff
	for i := 1; i < attempts && d < q.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, q.opts.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// close stops the workers after their current entry and waits for them.
// What is still queued stays stored and is resumed on the next start.
func (q *pool[T]) close() {
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
