// Package queue carries messages from webhook intake to the trigger
// function: Amazon SQS in AWS, an in-process queue with the same retry
// semantics in the one-process server.
//
//	q := queue.NewLocal(consume, queue.LocalOptions{MaxReceives: 5})
//	defer q.Close()
//	err := q.Publish(ctx, msg)
package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"forgelink/shared/forgelink"
)

// SQSAPI is the part of the SQS client that SQS uses.
type SQSAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// SQS publishes messages to an Amazon SQS queue.
type SQS struct {
	client SQSAPI
	url    string
}

var _ forgelink.Queue = (*SQS)(nil)

// NewSQS returns a Queue that sends to the queue at url.
func NewSQS(client SQSAPI, url string) *SQS { return &SQS{client: client, url: url} }

// Publish sends m as a JSON message body.
func (q *SQS) Publish(ctx context.Context, m *forgelink.Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("sqs: encode delivery %s: %w", m.DeliveryID, err)
	}
	s := string(body)
	if _, err := q.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &q.url, MessageBody: &s}); err != nil {
		return forgelink.E(forgelink.Transient, "queue unavailable", fmt.Errorf("sqs: send delivery %s: %w", m.DeliveryID, err))
	}
	return nil
}

// Consumer handles one message. An error of kind Transient (or any error)
// makes the local queue deliver the message again, like an SQS batch item
// failure.
type Consumer func(ctx context.Context, m *forgelink.Message) error

// LocalOptions tune the in-process queue.
type LocalOptions struct {
	// MaxReceives is how often a message is tried before it is dead-lettered
	// (SQS maxReceiveCount). Default 5.
	MaxReceives int
	// Backoff is the delay before the first retry; it doubles each time. Default 1s.
	Backoff time.Duration
	// Buffer is the number of messages held before Publish blocks. Default 1024.
	Buffer int
	Log    *slog.Logger
}

// Local is an in-process queue with SQS's retry semantics: a message whose
// consumer fails is delivered again after a backoff, up to MaxReceives
// times, and then kept in a dead-letter list.
type Local struct {
	consume Consumer
	opts    LocalOptions
	ch      chan *forgelink.Message
	wg      sync.WaitGroup
	mu      sync.Mutex
	dead    []*forgelink.Message
	closed  bool
	stop    chan struct{}
}

var _ forgelink.Queue = (*Local)(nil)

// NewLocal starts an in-process queue that hands messages to consume.
func NewLocal(consume Consumer, opts LocalOptions) *Local {
	if opts.MaxReceives <= 0 {
		opts.MaxReceives = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 1024
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	q := &Local{consume: consume, opts: opts, ch: make(chan *forgelink.Message, opts.Buffer), stop: make(chan struct{})}
	q.wg.Add(1)
	go q.run()
	return q
}

// Publish enqueues a copy of m.
func (q *Local) Publish(ctx context.Context, m *forgelink.Message) error {
	q.mu.Lock()
	closed := q.closed
	q.mu.Unlock()
	if closed {
		return forgelink.Errorf(forgelink.Transient, "queue closed")
	}
	c := *m
	select {
	case q.ch <- &c:
		return nil
	case <-ctx.Done():
		return forgelink.E(forgelink.Transient, "queue full", ctx.Err())
	}
}

func (q *Local) run() {
	defer q.wg.Done()
	for {
		select {
		case m := <-q.ch:
			q.deliver(m)
		case <-q.stop:
			// Drain what is queued so nothing accepted is dropped on a clean shutdown.
			for {
				select {
				case m := <-q.ch:
					q.deliver(m)
				default:
					return
				}
			}
		}
	}
}

func (q *Local) deliver(m *forgelink.Message) {
	backoff := q.opts.Backoff
	log := q.opts.Log.With("delivery", m.DeliveryID, "hook_id", m.HookID)
	for receive := 1; ; receive++ {
		err := q.consume(context.Background(), m)
		if err == nil {
			return
		}
		if receive >= q.opts.MaxReceives {
			log.Error("dead-lettered", "receives", receive, "err", err)
			q.mu.Lock()
			q.dead = append(q.dead, m)
			q.mu.Unlock()
			return
		}
		log.Warn("consumer failed; will retry", "receive", receive, "retry_in", backoff.String(), "err", err)
		select {
		case <-time.After(backoff):
		case <-q.stop:
			// Shutting down: one last try happens on the next loop without waiting.
		}
		backoff *= 2
	}
}

// DeadLetters returns the messages that failed MaxReceives times.
func (q *Local) DeadLetters() []*forgelink.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]*forgelink.Message(nil), q.dead...)
}

// Close stops accepting messages, delivers what is queued and waits.
func (q *Local) Close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	q.mu.Unlock()
	close(q.stop)
	q.wg.Wait()
}
