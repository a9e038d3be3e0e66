package main

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"forgelink/shared/forgelink"
	"forgelink/shared/ghhook"
)

// The sample project that `seed` creates and the sample events target.
// README names them; the secret is for local use only.
const (
	SampleVCS      = "github"
	SampleOrg      = "octo-org"
	SampleRepo     = "hello-world"
	SampleHookID   = "hk_example"
	SampleBBHookID = "hk_example_bb"
	SampleSecret   = "forgelink-example-secret"
	SampleAPIToken = "fl_example_token_for_make_invoke"
	SampleUser     = "octocat" // the API token's user: the fake GitHub's login
	// SamplePipelineID is the seeded pipeline of the GitHub sample project
	// (main at SampleRevision, workflow "ci"), for the status samples.
	SamplePipelineID = "5034460f-c7c4-4c43-9457-de07e2029e7d"
	SampleRevision   = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c" // not a corpus commit: sqs-push.json still makes a new pipeline
)

// sampleEvent describes one file in events/.
type sampleEvent struct {
	file    string
	method  string
	route   string
	path    string
	headers map[string]string
	corpus  string // corpus file for the body ("" = no body)
	body    string // literal JSON body, when there is no corpus file
	sign    string // header to put the signature in ("" = unsigned)
	secret  string
}

var samples = []sampleEvent{
	{file: "github-push.json", method: "POST", route: "POST /hooks/{vcs}/{hookID}", path: "/hooks/github/" + SampleHookID,
		headers: map[string]string{"x-github-event": "push", "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		corpus:  "github/push.json", sign: "x-hub-signature-256", secret: SampleSecret},
	{file: "github-pull-request.json", method: "POST", route: "POST /hooks/{vcs}/{hookID}", path: "/hooks/github/" + SampleHookID,
		headers: map[string]string{"x-github-event": "pull_request", "x-github-delivery": "8f6a9c10-cc78-11e3-81ab-4c9367dc0958"},
		corpus:  "github/pull_request.opened.json", sign: "x-hub-signature-256", secret: SampleSecret},
	{file: "github-tag.json", method: "POST", route: "POST /hooks/{vcs}/{hookID}", path: "/hooks/github/" + SampleHookID,
		headers: map[string]string{"x-github-event": "push", "x-github-delivery": "a1b2c3d4-cc78-11e3-81ab-4c9367dc0958"},
		corpus:  "github/push.tag.json", sign: "x-hub-signature-256", secret: SampleSecret},
	{file: "github-ping.json", method: "POST", route: "POST /hooks/{vcs}/{hookID}", path: "/hooks/github/" + SampleHookID,
		headers: map[string]string{"x-github-event": "ping", "x-github-delivery": "0c3a4b5e-cc78-11e3-81ab-4c9367dc0958"},
		corpus:  "github/ping.json", sign: "x-hub-signature-256", secret: SampleSecret},
	{file: "github-push-bad-signature.json", method: "POST", route: "POST /hooks/{vcs}/{hookID}", path: "/hooks/github/" + SampleHookID,
		headers: map[string]string{"x-github-event": "push", "x-github-delivery": "deadbeef-cc78-11e3-81ab-4c9367dc0958"},
		corpus:  "github/push.json", sign: "x-hub-signature-256", secret: "not-the-secret"},
	{file: "bitbucket-push.json", method: "POST", route: "POST /hooks/{vcs}/{hookID}", path: "/hooks/bitbucket/" + SampleBBHookID,
		headers: map[string]string{"x-event-key": "repo:push", "x-request-uuid": "3b4f7a52-1f0e-4d8a-9a58-6f1f0f3c2b11", "x-hook-uuid": "{9f6a1c2e-4b7d-4e3f-8a2b-1c0d9e8f7a6b}", "x-attempt-number": "1"},
		corpus:  "bitbucket/repo-push.json", sign: "x-hub-signature", secret: SampleSecret},
	{file: "keys-get-project.json", method: "GET", route: "GET /api/v2/{proxy+}", path: "/api/v2/project/gh/" + SampleOrg + "/" + SampleRepo,
		headers: map[string]string{"circle-token": SampleAPIToken}},
	{file: "keys-list-checkout-keys.json", method: "GET", route: "ANY /api/v1.1/{proxy+}", path: "/api/v1.1/project/gh/" + SampleOrg + "/" + SampleRepo + "/checkout-key",
		headers: map[string]string{"circle-token": SampleAPIToken}},
	{file: "keys-create-checkout-key.json", method: "POST", route: "ANY /api/v2/{proxy+}", path: "/api/v2/project/gh/" + SampleOrg + "/" + SampleRepo + "/checkout-key",
		headers: map[string]string{"circle-token": SampleAPIToken}, body: `{"type":"deploy-key"}`},
	{file: "badge.json", method: "GET", route: "GET /gh/{proxy+}", path: "/gh/" + SampleOrg + "/" + SampleRepo + ".svg"},
	{file: "pages-home.json", method: "GET", route: "GET /", path: "/", headers: map[string]string{"accept": "text/html"}},
	{file: "status-report.json", method: "POST", route: "POST /api/v2/pipeline/{id}/status", path: "/api/v2/pipeline/" + SamplePipelineID + "/status",
		headers: map[string]string{"circle-token": SampleAPIToken}, body: `{"state":"running","workflow":"ci"}`},
}

// buildEvent returns the API Gateway HTTP API (v2) event for s, with the
// body read from the corpus in corpusDir and signed with s.secret.
func buildEvent(s sampleEvent, corpusDir string) (*events.APIGatewayV2HTTPRequest, error) {
	headers := map[string]string{
		"host":            "abc123.execute-api.us-east-1.amazonaws.com",
		"user-agent":      "GitHub-Hookshot/044aadd",
		"x-forwarded-for": "192.30.252.1",
	}
	if strings.HasPrefix(s.path, "/hooks/bitbucket") {
		headers["user-agent"] = "Bitbucket-Webhooks/2.0"
	}
	if !strings.HasPrefix(s.path, "/hooks/") {
		headers["user-agent"] = "curl/8.5.0"
	}
	for k, v := range s.headers {
		headers[k] = v
	}
	body := s.body
	if body != "" {
		headers["content-type"] = "application/json"
		headers["content-length"] = fmt.Sprint(len(body))
	}
	if s.corpus != "" {
		b, err := os.ReadFile(filepath.Join(corpusDir, s.corpus))
		if err != nil {
			return nil, fmt.Errorf("sample %s: %w", s.file, err)
		}
		body = string(b)
		headers["content-type"] = "application/json"
		headers["content-length"] = fmt.Sprint(len(b))
		if s.sign != "" {
			mac := hmac.New(sha256.New, []byte(s.secret))
			mac.Write(b)
			headers[s.sign] = "sha256=" + hex.EncodeToString(mac.Sum(nil))
		}
	}
	return &events.APIGatewayV2HTTPRequest{
		Version:  "2.0",
		RouteKey: s.route,
		RawPath:  s.path,
		Headers:  headers,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     s.route,
			AccountID:    "123456789012",
			Stage:        "$default",
			RequestID:    "JKJaXmPLvHcESHA=",
			APIID:        "abc123",
			DomainName:   "abc123.execute-api.us-east-1.amazonaws.com",
			DomainPrefix: "abc123",
			Time:         "25/Nov/2026:12:00:00 +0000",
			TimeEpoch:    1795608000000,
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    s.method,
				Path:      s.path,
				Protocol:  "HTTP/1.1",
				SourceIP:  "192.30.252.1",
				UserAgent: headers["user-agent"],
			},
		},
		Body: body,
	}, nil
}

// sqsSamples are SQS events as the trigger function receives them: intake's
// message for a corpus delivery, normalized as intake normalizes it.
var sqsSamples = []struct {
	file, event, corpus, deliveryID string
}{
	{"sqs-push.json", "push", "github/push.json", "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
	{"sqs-branch-delete.json", "push", "github/push.delete.json", "5d1e6f70-cc78-11e3-81ab-4c9367dc0958"},
}

func buildSQSEvent(file, event, corpusFile, deliveryID, corpusDir string) (*events.SQSEvent, error) {
	b, err := os.ReadFile(filepath.Join(corpusDir, corpusFile))
	if err != nil {
		return nil, fmt.Errorf("sample %s: %w", file, err)
	}
	evs, err := ghhook.ParseEvent(event, b)
	if err != nil {
		return nil, fmt.Errorf("sample %s: %w", file, err)
	}
	msg := forgelink.Message{
		HookID:     SampleHookID,
		DeliveryID: deliveryID,
		Project:    "gh/" + SampleOrg + "/" + SampleRepo,
		Event:      event,
		ReceivedAt: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		Events:     evs,
	}
	return sqsEvent(msg, "059f36b4-87a3-44ab-83d2-661975830a7d", "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...", "forgelink-IntakeQueue")
}

// sqsEvent is an SQS batch of one message with v as its JSON body, as
// Lambda delivers it from queue.
func sqsEvent(v any, messageID, receipt, queue string) (*events.SQSEvent, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &events.SQSEvent{Records: []events.SQSMessage{{
		MessageId:     messageID,
		ReceiptHandle: receipt,
		Body:          string(body),
		Attributes: map[string]string{
			"ApproximateReceiveCount":          "1",
			"SentTimestamp":                    "1795608000000",
			"SenderId":                         "AIDAIENQZJOLO23YVJ4VO",
			"ApproximateFirstReceiveTimestamp": "1795608000001",
		},
		MessageAttributes: map[string]events.SQSMessageAttribute{},
		Md5OfBody:         md5hex(body),
		EventSource:       "aws:sqs",
		EventSourceARN:    "arn:aws:sqs:us-east-1:123456789012:" + queue,
		AWSRegion:         "us-east-1",
	}}}, nil
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// buildStatusEvent is the SQS event the status function receives for the
// sample pipeline's first status request.
func buildStatusEvent() (*events.SQSEvent, error) {
	return sqsEvent(forgelink.StatusRequest{
		PipelineID: SamplePipelineID, Project: "gh/" + SampleOrg + "/" + SampleRepo, Revision: SampleRevision,
		State: string(forgelink.StatusPending), RequestedAt: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
	}, "7c1e2f0a-5b3d-4e8f-9a6b-2d4c8e0f1a3b", "AQEBzWwaftRI0KuVm4tP+/7q1rGgNqicHq...", "forgelink-StatusQueue")
}

// scheduledEvent is the EventBridge event the schedule in template.yaml
// sends the orgaccess function.
func scheduledEvent() *events.EventBridgeEvent {
	return &events.EventBridgeEvent{
		Version:    "0",
		ID:         "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
		DetailType: "Scheduled Event",
		Source:     "aws.events",
		AccountID:  "123456789012",
		Time:       time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		Region:     "us-east-1",
		Resources:  []string{"arn:aws:events:us-east-1:123456789012:rule/forgelink-OrgAccessSweep"},
		Detail:     json.RawMessage(`{}`),
	}
}

// writeEvents regenerates every sample event into dir.
func writeEvents(dir, corpusDir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	write := func(file string, ev any, err error) error {
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(ev, "", "  ")
		if err != nil {
			return fmt.Errorf("sample %s: %w", file, err)
		}
		if err := os.WriteFile(filepath.Join(dir, file), append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("sample %s: %w", file, err)
		}
		return nil
	}
	for _, s := range samples {
		ev, err := buildEvent(s, corpusDir)
		if err := write(s.file, ev, err); err != nil {
			return err
		}
	}
	for _, s := range sqsSamples {
		ev, err := buildSQSEvent(s.file, s.event, s.corpus, s.deliveryID, corpusDir)
		if err := write(s.file, ev, err); err != nil {
			return err
		}
	}
	ev, err := buildStatusEvent()
	if err := write("sqs-status.json", ev, err); err != nil {
		return err
	}
	return write("scheduled.json", scheduledEvent(), nil)
}
