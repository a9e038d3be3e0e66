// Package queue carries deliveries from webhook intake to trigger
// evaluation: Amazon SQS in AWS, and in the one-process server a durable
// queue in the embedded store with the same retry and dead-letter rules.
//
//	q, err := queue.NewLocal(ctx, store, consume, queue.LocalOptions{Workers: 4})
//	defer q.Close()
//	err = q.Accept(ctx, delivery) // durable once it returns
package queue

import (
	"context"
	"fmt"

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
	if err := sendJSON(ctx, q.client, q.url, m); err != nil {
		return fmt.Errorf("sqs: send delivery %s: %w", m.DeliveryID, err)
	}
	return nil
}

// Consumer handles one message. An error makes the queue deliver the
// message again later (an SQS batch item failure; a retry in the local
// queue), up to its receive limit.
type Consumer func(ctx context.Context, m *forgelink.Message) error
