package lambdarun

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// TestDispatch routes the real sample events by their shape: an SQS batch
// to the consumer, an EventBridge event to the schedule, an API Gateway v2
// request to the HTTP handler, and
// reports a body that is neither as an error.
func TestDispatch(t *testing.T) {
	var got string
	api := func(ctx context.Context, r events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		got = "api " + r.RawPath
		return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
	}
	consume := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		got = "sqs " + ev.Records[0].MessageId
		return events.SQSEventResponse{}, nil
	}
	schedule := func(ctx context.Context, ev events.EventBridgeEvent) error {
		got = "schedule " + ev.DetailType
		return nil
	}
	h := dispatch(api, Events{SQS: consume, Schedule: schedule})
	for _, tc := range []struct{ file, want string }{
		{"sqs-status.json", "sqs 7c1e2f0a-5b3d-4e8f-9a6b-2d4c8e0f1a3b"},
		{"badge.json", "api /gh/octo-org/hello-world.svg"},
		{"status-report.json", "api /api/v2/pipeline/5034460f-c7c4-4c43-9457-de07e2029e7d/status"},
		{"scheduled.json", "schedule Scheduled Event"},
	} {
		b, err := os.ReadFile(filepath.Join("..", "..", "events", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		got = ""
		if _, err := h(context.Background(), json.RawMessage(b)); err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if got != tc.want {
			t.Errorf("%s went to %q, want %q", tc.file, got, tc.want)
		}
	}
	if _, err := h(context.Background(), json.RawMessage(`[1,2`)); err == nil {
		t.Error("a truncated event was handled without an error")
	}
}
