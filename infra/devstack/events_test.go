package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/google/go-cmp/cmp"

	"forgelink/shared/apiauth"
	"forgelink/shared/awslocal"
	"forgelink/shared/dynamo"
	"forgelink/shared/follow"
	"forgelink/shared/forgelink"
	"forgelink/shared/httpapi"
	"forgelink/shared/intake"
	"forgelink/shared/keysvc"
	"forgelink/shared/queue"
	"forgelink/shared/sealer"
)

// TestEventsUpToDate fails when events/ differs from what `make events`
// would write, so the signed samples never drift from the corpus.
func TestEventsUpToDate(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := writeEvents(dir, filepath.Join(root, "testdata", "corpus")); err != nil {
		t.Fatal(err)
	}
	files := []string{}
	for _, s := range samples {
		files = append(files, s.file)
	}
	for _, s := range sqsSamples {
		files = append(files, s.file)
	}
	for _, f := range files {
		want, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, "events", f))
		if err != nil {
			t.Fatalf("events/%s: %v (run make events)", f, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("events/%s is stale: run make events", f)
		}
	}
}

// lambdaStack is the AWS side of the functions on a local AWS server:
// DynamoDB tables made from template.yaml, a KMS key, an SQS queue.
type lambdaStack struct {
	calls *callCounter
	env   map[string]string
	store *dynamo.Store
	seal  forgelink.Sealer
	sqs   *sqs.Client
	queue string
}

// endpoint is the local AWS server shared by this test binary.
var endpoint string

func TestMain(m *testing.M) {
	e, stop, err := awslocal.Start(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	endpoint = e
	code := m.Run()
	stop()
	os.Exit(code)
}

func newLambdaStack(t *testing.T) *lambdaStack {
	t.Helper()
	ctx := context.Background()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	lines, err := seed(ctx, endpoint, filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range lines {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	cfg := awsConfig(endpoint)
	calls := &callCounter{}
	cfg.APIOptions = append(cfg.APIOptions, calls.middleware)
	return &lambdaStack{
		calls: calls,
		env:   env,
		store: dynamo.New(dynamodb.NewFromConfig(cfg), dynamo.Tables{Projects: env["FORGELINK_PROJECTS_TABLE"], Deliveries: env["FORGELINK_DELIVERIES_TABLE"], Pipelines: env["FORGELINK_PIPELINES_TABLE"], Keys: env["FORGELINK_KEYS_TABLE"]}),
		seal:  sealer.NewEnvelope(sealer.NewKMS(kms.NewFromConfig(cfg), env["FORGELINK_KMS_KEY_ID"])),
		sqs:   sqs.NewFromConfig(cfg),
		queue: env["FORGELINK_INTAKE_QUEUE_URL"],
	}
}

func loadEvent(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	root, _ := repoRoot()
	b, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("events/%s: %v", name, err)
	}
	return ev
}

// TestWebhookLambdaEvents sends every webhook sample through the same path
// AWS uses - API Gateway v2 event, aws-lambda-go-api-proxy, the intake
// handler - against DynamoDB, KMS and SQS on a local AWS server.
func TestWebhookLambdaEvents(t *testing.T) {
	st := newLambdaStack(t)
	in := &intake.Intake{Store: st.store, Sealer: st.seal, Inbox: &queue.SQSInbox{Deliveries: st.store, Queue: queue.NewSQS(st.sqs, st.queue)}, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	proxy := httpadapter.NewV2(in.Handler()).ProxyWithContext
	ctx := context.Background()

	tests := []struct {
		event      string
		wantStatus int
		wantBody   string
	}{
		{"github-push.json", http.StatusAccepted, `"delivery":"72d3162e-cc78-11e3-81ab-4c9367dc0958"`},
		{"github-push.json", http.StatusOK, `"duplicate":true`}, // redelivery
		{"github-pull-request.json", http.StatusAccepted, `"delivery"`},
		{"github-tag.json", http.StatusAccepted, `"delivery"`},
		{"github-ping.json", http.StatusOK, `"ping":true`},
		{"github-push-bad-signature.json", http.StatusUnauthorized, `"message":"github: signature does not match"`},
		{"bitbucket-push.json", http.StatusAccepted, `"delivery":"3b4f7a52-1f0e-4d8a-9a58-6f1f0f3c2b11"`},
	}
	for _, tc := range tests {
		resp, err := proxy(ctx, loadEvent(t, tc.event))
		if err != nil {
			t.Fatalf("%s: %v", tc.event, err)
		}
		if resp.StatusCode != tc.wantStatus || !strings.Contains(resp.Body, tc.wantBody) {
			t.Errorf("%s: %d %s, want %d with %s", tc.event, resp.StatusCode, resp.Body, tc.wantStatus, tc.wantBody)
		}
	}

	// Exactly the four accepted deliveries are on the queue, each once,
	// but for the push: its redelivery came before any decision, so it was
	// queued again (evaluation is idempotent; nothing is built twice).
	got := map[string]int{}
	for i := 0; i < 10; i++ {
		out, err := st.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(st.queue), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			var msg forgelink.Message
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &msg); err != nil {
				t.Fatalf("queue message is not a forgelink.Message: %v", err)
			}
			got[msg.DeliveryID]++
		}
	}
	want := map[string]int{
		"72d3162e-cc78-11e3-81ab-4c9367dc0958": 2,
		"8f6a9c10-cc78-11e3-81ab-4c9367dc0958": 1,
		"a1b2c3d4-cc78-11e3-81ab-4c9367dc0958": 1,
		"3b4f7a52-1f0e-4d8a-9a58-6f1f0f3c2b11": 1,
	}
	if len(got) != len(want) {
		t.Errorf("queued deliveries %v, want %v", got, want)
	}
	for id, n := range want {
		if got[id] != n {
			t.Errorf("delivery %s queued %d times, want %d", id, got[id], n)
		}
	}
	// Nothing was stored for the badly signed one.
	if _, err := st.store.GetDelivery(ctx, SampleHookID, "deadbeef-cc78-11e3-81ab-4c9367dc0958"); forgelink.KindOf(err) != forgelink.NotFound {
		t.Errorf("badly signed delivery: GetDelivery = %v, want NotFound", err)
	}
}

// TestKeysLambdaEvent reads the sample project through the keys API as
// Lambda calls it, and checks the token is required.
func TestKeysLambdaEvent(t *testing.T) {
	st := newLambdaStack(t)
	auth := apiauth.NewStaticToken(SampleAPIToken, apiauth.User{Login: SampleUser})
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	api := &httpapi.Projects{
		Store:  st.store,
		Follow: &follow.Service{Store: st.store, Sealer: st.seal},
		Auth:   auth,
		Log:    logger,
	}
	keys := &httpapi.Keys{Service: &keysvc.Service{Store: st.store, Keys: st.store, Pipelines: st.store, Sealer: st.seal}, Auth: auth, Log: logger}
	proxy := httpadapter.NewV2(keys.Handler(api.Handler())).ProxyWithContext
	ev := loadEvent(t, "keys-get-project.json")
	resp, err := proxy(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.Unmarshal([]byte(resp.Body), &body)
	if resp.StatusCode != http.StatusOK || body["slug"] != "gh/octo-org/hello-world" || body["following"] != true {
		t.Errorf("GET project: %d %s", resp.StatusCode, resp.Body)
	}
	if strings.Contains(resp.Body, "PRIVATE KEY") {
		t.Error("the answer contains private key material")
	}
	// The checkout-key list as Lambda serves it: the seeded project's deploy key.
	resp, err = proxy(context.Background(), loadEvent(t, "keys-list-checkout-keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	var keyList []map[string]any
	_ = json.Unmarshal([]byte(resp.Body), &keyList)
	if resp.StatusCode != http.StatusOK || len(keyList) != 1 || keyList[0]["type"] != "deploy-key" || keyList[0]["preferred"] != true {
		t.Errorf("GET checkout-key: %d %s, want the project's deploy key", resp.StatusCode, resp.Body)
	}
	if strings.Contains(resp.Body, "PRIVATE KEY") {
		t.Error("the checkout-key list contains private key material")
	}

	delete(ev.Headers, "circle-token")
	resp, err = proxy(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without token: %d, want 401", resp.StatusCode)
	}
}

// callCounter counts AWS API calls by "Service.Operation", as a middleware
// on every client.
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *callCounter) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("forgelink-count-calls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			if c.calls == nil {
				c.calls = map[string]int{}
			}
			c.calls[awsmiddleware.GetServiceID(ctx)+"."+awsmiddleware.GetOperationName(ctx)]++
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

// take returns the calls so far and starts counting afresh.
func (c *callCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

// TestWebhookAWSCallsPerDelivery counts what a new delivery costs the
// webhook function in AWS, through the Lambda event path against the local
// AWS server: one read (the hook item, which carries the project), one
// conditional write (the delivery) and one SQS send; a warm function opens
// the webhook secret from its cache, without KMS.
func TestWebhookAWSCallsPerDelivery(t *testing.T) {
	st := newLambdaStack(t)
	secrets := sealer.NewCache(st.seal, 5*time.Minute, 16)
	in := &intake.Intake{Store: st.store, Sealer: secrets, Inbox: &queue.SQSInbox{Deliveries: st.store, Queue: queue.NewSQS(st.sqs, st.queue)}, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	proxy := httpadapter.NewV2(in.Handler()).ProxyWithContext
	send := func(event string, want int) {
		t.Helper()
		resp, err := proxy(context.Background(), loadEvent(t, event))
		if err != nil || resp.StatusCode != want {
			t.Fatalf("%s: %d %s %v, want %d", event, resp.StatusCode, resp.Body, err, want)
		}
	}
	send("github-push.json", http.StatusAccepted) // a cold function: KMS opens the secret
	if cold := st.calls.take(); cold["KMS.Decrypt"] != 1 {
		t.Errorf("cold start calls = %v, want one KMS.Decrypt", cold)
	}
	send("github-pull-request.json", http.StatusAccepted)
	got := st.calls.take()
	want := map[string]int{"DynamoDB.GetItem": 1, "DynamoDB.PutItem": 1, "SQS.SendMessage": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AWS calls for a new delivery (-want +got):\n%s", diff)
	}
	t.Logf("AWS calls per new delivery: %v", got)
}
