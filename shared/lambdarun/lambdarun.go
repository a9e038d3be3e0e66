// Package lambdarun starts a function: as a Lambda function when the
// Lambda runtime API is present (AWS, sam local, the Runtime Interface
// Emulator), and otherwise, for HTTP functions, as a plain HTTP server
// for container platforms. It holds no adapters: each function's main
// wires only what it uses, so the linker leaves the rest out.
//
//	func main() {
//		h := ... // wiring
//		if err := lambdarun.Serve(h, cfg.Addr, log); err != nil {
//			lambdarun.Fail(err)
//		}
//	}
package lambdarun

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// InLambda reports whether the process runs under a Lambda runtime API.
func InLambda() bool { return os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" }

// Fail prints err as one line and exits 2: how a bad configuration stops
// start-up.
func Fail(err error) {
	fmt.Fprintln(os.Stderr, "forgelink:", err)
	os.Exit(2)
}

// Serve runs h as a Lambda function behind API Gateway (HTTP API, payload
// 2.0) when the Lambda runtime API is present, and otherwise listens on
// addr until SIGINT/SIGTERM, as on a container platform. In Lambda each
// invocation ends with an EMF line of the metrics it moved; outside it,
// GET /metrics serves them in the Prometheus format. Listening is only in
// builds without -tags lambda.norpc: the Lambda build links no HTTP server.
func Serve(h http.Handler, addr string, log *slog.Logger) error {
	if InLambda() {
		lambda.Start(flushing(httpadapter.NewV2(h).ProxyWithContext))
		return nil
	}
	return listen(h, addr, log)
}

// Start runs handler, an event function (SQS, EventBridge), under the
// Lambda runtime API. Outside Lambda it fails: make run runs consumers
// in-process, and make invoke runs the function under the emulator.
// An SQS handler's invocations end with an EMF line of the metrics they
// moved, as Serve's do.
func Start(handler any) error {
	if !InLambda() {
		return fmt.Errorf("this event function runs under Lambda (or the Runtime Interface Emulator: make invoke); locally, make run runs it in-process")
	}
	switch f := handler.(type) {
	case func(context.Context, events.SQSEvent) (events.SQSEventResponse, error):
		handler = flushing(f)
	case SQSFunc:
		handler = flushing(f)
	}
	lambda.Start(handler)
	return nil
}

// SQSFunc is a Lambda SQS event handler with partial batch responses.
type SQSFunc func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// ScheduleFunc handles an EventBridge (scheduled) event.
type ScheduleFunc func(context.Context, events.EventBridgeEvent) error

// Events are the event sources of a function besides its HTTP routes.
type Events struct {
	// SQS consumes a queue's batches (status: the status queue).
	SQS SQSFunc
	// Schedule runs on an EventBridge schedule (orgaccess: the sweep).
	Schedule ScheduleFunc
}

// ServeEvents is Serve for a function that also has other event sources:
// under Lambda each invocation goes by its event's shape to ev.SQS (an SQS
// batch), ev.Schedule (an EventBridge event) or h (API Gateway HTTP API,
// payload 2.0). Outside Lambda it serves h only: there make run consumes
// the queues and runs the schedule in-process.
func ServeEvents(h http.Handler, ev Events, addr string, log *slog.Logger) error {
	if !InLambda() {
		return Serve(h, addr, log)
	}
	lambda.StartHandlerFunc(flushing(dispatch(httpadapter.NewV2(h).ProxyWithContext, ev)))
	return nil
}

// dispatch routes a raw Lambda event by its shape.
func dispatch(api func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), ev Events) func(context.Context, json.RawMessage) (any, error) {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var probe struct {
			Records []struct {
				EventSource string `json:"eventSource"`
			} `json:"Records"`
			DetailType string `json:"detail-type"`
			Source     string `json:"source"`
		}
		err := json.Unmarshal(raw, &probe)
		switch {
		case err == nil && len(probe.Records) > 0 && probe.Records[0].EventSource == "aws:sqs" && ev.SQS != nil:
			var e events.SQSEvent
			if err := json.Unmarshal(raw, &e); err != nil {
				return nil, fmt.Errorf("decode SQS event: %w", err)
			}
			return ev.SQS(ctx, e)
		case err == nil && probe.DetailType != "" && probe.Source != "" && ev.Schedule != nil:
			var e events.EventBridgeEvent
			if err := json.Unmarshal(raw, &e); err != nil {
				return nil, fmt.Errorf("decode EventBridge event: %w", err)
			}
			return map[string]bool{"ok": true}, ev.Schedule(ctx, e)
		}
		var req events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			return nil, fmt.Errorf("decode API Gateway event: %w", err)
		}
		return api(ctx, req)
	}
}
