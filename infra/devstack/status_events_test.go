package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"forgelink/shared/apiauth"
	"forgelink/shared/forgelink"
	"forgelink/shared/github"
	"forgelink/shared/queue"
	"forgelink/shared/statusapi"
	"forgelink/shared/statussvc"
	"forgelink/shared/vcsfake"
)

// TestStatusLambdaEvents runs the status function's three samples as
// Lambda delivers them - the SQS batch, the badge and the executor report
// through API Gateway v2 events - on DynamoDB and SQS of the local AWS
// server, posting to a fake GitHub.
func TestStatusLambdaEvents(t *testing.T) {
	st := newLambdaStack(t)
	ctx := context.Background()
	gh := vcsfake.NewGitHub(t)
	gh.AddRepo(SampleOrg+"/"+SampleRepo, "main", false)
	forge, err := github.NewForge(gh.URL, gh.Token, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	svc := &statussvc.Service{
		Store:     st.store,
		Posters:   func(context.Context, *forgelink.Project) (forgelink.StatusPoster, error) { return forge, nil },
		Requests:  queue.NewSQSStatus(st.sqs, st.env["FORGELINK_STATUS_QUEUE_URL"]),
		PublicURL: "https://ci.example.com",
		Log:       logger,
	}

	// The status queue's message: pending posted once, even when delivered twice.
	var batch events.SQSEvent
	root, _ := repoRoot()
	b, err := os.ReadFile(filepath.Join(root, "events", "sqs-status.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &batch); err != nil {
		t.Fatal(err)
	}
	consume := queue.SQSStatusHandler(svc.Post, queue.SQSStatusOptions{Log: logger})
	for range 2 {
		resp, err := consume(ctx, batch)
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("status batch: %+v %v", resp, err)
		}
	}
	got := gh.Statuses(SampleOrg+"/"+SampleRepo, SampleRevision)
	if len(got) != 1 || got[0].State != "pending" || got[0].Context != "ci/forgelink: ci" || got[0].TargetURL != "https://ci.example.com/pipelines/"+SamplePipelineID {
		t.Fatalf("GitHub statuses = %+v, want one pending for ci/forgelink: ci", got)
	}

	auth := apiauth.NewStaticToken(SampleAPIToken, apiauth.User{Login: SampleUser})
	mux := http.NewServeMux()
	mux.Handle("/api/", (&statusapi.Reports{Reporter: svc, Tokens: st.store, Auth: auth, Log: logger}).Handler())
	mux.Handle("/", (&statusapi.Badges{Projects: st.store, Pipelines: st.store, Auth: auth, Log: logger}).Handler())
	proxy := httpadapter.NewV2(mux).ProxyWithContext

	resp, err := proxy(ctx, loadEvent(t, "badge.json"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, "<title>forgelink: running</title>") || resp.Headers["Cache-Control"] != "no-cache" {
		t.Errorf("badge: %d %v %.200s", resp.StatusCode, resp.Headers, resp.Body)
	}

	resp, err = proxy(ctx, loadEvent(t, "status-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"workflow_status":{"ci":"running"}`) || !strings.Contains(resp.Body, `"changed":true`) {
		t.Fatalf("report: %d %s", resp.StatusCode, resp.Body)
	}
	// The accepted report is on the status queue, with the API's own host in the link.
	out, err := st.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(st.env["FORGELINK_STATUS_QUEUE_URL"]), MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("status queue holds %d messages, want the report's request", len(out.Messages))
	}
	var req forgelink.StatusRequest
	if err := json.Unmarshal([]byte(*out.Messages[0].Body), &req); err != nil {
		t.Fatal(err)
	}
	if req.PipelineID != SamplePipelineID || req.State != "running" || req.TargetURL != "https://abc123.execute-api.us-east-1.amazonaws.com/pipelines/"+SamplePipelineID {
		t.Errorf("queued request = %+v", req)
	}
	// Replayed: 200, nothing changed, nothing queued.
	resp, _ = proxy(ctx, loadEvent(t, "status-report.json"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"changed":false`) {
		t.Errorf("replayed report: %d %s", resp.StatusCode, resp.Body)
	}
	// Without the token: 401.
	ev := loadEvent(t, "status-report.json")
	delete(ev.Headers, "circle-token")
	resp, _ = proxy(ctx, ev)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("report without a token: %d %s", resp.StatusCode, resp.Body)
	}
}
