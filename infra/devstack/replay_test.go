package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"forgelink/infra/replay"
	"forgelink/shared/apiauth"
	"forgelink/shared/config"
	"forgelink/shared/dynamo"
	"forgelink/shared/follow"
	"forgelink/shared/forgelink"
	"forgelink/shared/forges"
	"forgelink/shared/intake"
	"forgelink/shared/keysvc"
	"forgelink/shared/orgaccess"
	"forgelink/shared/queue"
	"forgelink/shared/sealer"
	"forgelink/shared/statusapi"
	"forgelink/shared/statussvc"
	"forgelink/shared/trigger"
)

// TestReplayLambda is the replay of infra/local's TestReplayMakeRun (100
// deliveries; FORGELINK_REPLAY_LAMBDA_DELIVERIES or
// FORGELINK_REPLAY_DELIVERIES for more) through the functions' handlers on
// DynamoDB, SQS and KMS of the local AWS server, as Lambda runs them: the webhook function's intake handler behind API
// Gateway v2 events (httpadapter), the trigger function's SQS handler
// consuming the intake queue, the status function's SQS handler consuming
// the status queue and its report route behind API Gateway v2 events,
// with the executor's tokens taken from the pipelines queue. The checks
// are the same.
//
// It is small by default because moto is slow here: every request is
// sent alone (see replaySerialStore), and each TransactWriteItems
// deep-copies the tables it writes, so a delivery costs more the more the
// tables hold: 200 deliveries took three minutes with -race on a busy two-core
// machine. make replay runs it at 1,000.
func TestReplayLambda(t *testing.T) {
	runReplayLambda(t, replay.Deliveries(t, 100, "FORGELINK_REPLAY_LAMBDA_DELIVERIES", "FORGELINK_REPLAY_DELIVERIES"), 3, 0)
}

// TestReplayLambdaDynamoDBOutage is TestReplayLambda (100 deliveries;
// FORGELINK_REPLAY_FAULT_DELIVERIES) with DynamoDB refusing every
// connection for 8 s from the middle of the deliveries on, as a stopped
// server does: the deliveries sent meanwhile are answered 5xx and sent
// again afterwards, as GitHub and Bitbucket redeliver; the trigger and
// status functions fail their messages meanwhile and SQS delivers them
// again. Afterwards the checks are the same.
func TestReplayLambdaDynamoDBOutage(t *testing.T) {
	runReplayLambda(t, replay.Deliveries(t, 100, "FORGELINK_REPLAY_FAULT_DELIVERIES"), 7, 8*time.Second)
}

// runReplayLambda replays n deliveries through the Lambda handlers; with
// an outage, DynamoDB is down that long from the middle of the sends on.
func runReplayLambda(t *testing.T, n int, seed uint64, outage time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	began := time.Now()
	st := newLambdaStack(t)
	var dynamoDB *replaySerialTransport
	st.store, dynamoDB = replaySerialStore(st)
	logs, err := os.Create(filepath.Join(t.TempDir(), "functions.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	t.Cleanup(func() { replayWarnings(t, logs.Name()) })
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	projects := replay.Projects()
	fakes := replay.NewFakes(t, projects)
	for i, p := range projects {
		hookID, secret := replayProject(t, st, p, i)
		vcs := "github"
		if p.VCS == replay.Bitbucket {
			vcs = "bitbucket"
		}
		p.HookURL = "https://abc123.execute-api.us-east-1.amazonaws.com/hooks/" + vcs + "/" + hookID
		p.Secret, p.HookUUID = secret, "{"+hookID+"}"
	}
	plan, err := replay.NewPlan(replay.Options{Deliveries: n, Projects: projects, Testdata: "../../testdata", Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	fakes.Configs(plan)
	counts := plan.Counts()
	t.Logf("plan: %s", counts)

	// The functions, wired as their mains wire them, the VCS clients with
	// the environment's tokens (the projects have no follower).
	env := map[string]string{
		"GITHUB_API_URL": fakes.GitHub.URL, "GITHUB_TOKEN": fakes.GitHub.Token,
		"BITBUCKET_API_URL": fakes.Bitbucket.URL, "BITBUCKET_TOKEN": fakes.Bitbucket.Token,
		"FORGELINK_PUBLIC_URL": "https://ci.example.com",
	}
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	vcs := forges.ForUsers(cfg, &http.Client{Timeout: 20 * time.Second}, nil)
	intakeQ, pipelinesQ, statusQ := st.queue, st.env["FORGELINK_PIPELINES_QUEUE_URL"], st.env["FORGELINK_STATUS_QUEUE_URL"]

	// webhook
	in := &intake.Intake{Store: st.store, Sealer: sealer.NewCache(st.seal, 5*time.Minute, 1024), Inbox: &queue.SQSInbox{Deliveries: st.store, Queue: queue.NewSQS(st.sqs, intakeQ)}, Log: logger}
	webhook := httpadapter.NewV2(in.Handler()).ProxyWithContext
	// trigger
	keys := &keysvc.Service{Store: st.store, Keys: st.store, Pipelines: st.store, Sealer: st.seal, Forges: vcs, Log: logger}
	handoff := queue.NewSQSHandoff(st.sqs, pipelinesQ, statusQ)
	handoff.Runner = &queue.RunnerAccess{Mint: keys.MintPipelineTokens, PublicURL: cfg.PublicURL}
	access := &orgaccess.Service{Store: st.store, Log: logger}
	trig := &trigger.Service{Store: st.store, Readers: forges.Readers(vcs), Handoff: handoff, Access: access, Log: logger}
	triggerPump := &replaySQSPump{client: st.sqs, url: intakeQ, handle: queue.SQSHandler(trig.Handle, queue.SQSOptions{Deliveries: st.store, OnDead: trig.RecordDead, Log: logger})}
	// status
	statusSvc := &statussvc.Service{Store: st.store, Posters: forges.Posters(vcs), Requests: queue.NewSQSStatus(st.sqs, statusQ), PublicURL: cfg.PublicURL, Access: access, Log: logger}
	statusPump := &replaySQSPump{client: st.sqs, url: statusQ, handle: queue.SQSStatusHandler(statusSvc.Post, queue.SQSStatusOptions{
		Visibility: st.sqs, QueueURL: statusQ, Backoff: time.Second, OnDead: statusSvc.GiveUp, Log: logger,
	})}
	reports := httpadapter.NewV2((&statusapi.Reports{
		Reporter: statusSvc, Tokens: st.store, Auth: apiauth.NewStaticToken(SampleAPIToken, apiauth.User{Login: SampleUser}),
		Pipelines: st.store, PublicURL: cfg.PublicURL, Log: logger,
	}).Handler()).ProxyWithContext
	// the executor: each pipeline's executor token, from the pipelines queue
	var mu sync.Mutex
	tokens := map[string]string{}
	executorPump := &replaySQSPump{client: st.sqs, url: pipelinesQ, handle: func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		for _, rec := range ev.Records {
			var m queue.PipelineMessage
			if err := json.Unmarshal([]byte(rec.Body), &m); err != nil || m.Pipeline == nil || m.ExecutorToken == "" {
				t.Errorf("pipelines queue message %.300s: %v; want a pipeline with an executor token", rec.Body, err)
				continue
			}
			mu.Lock()
			tokens[m.Pipeline.ID] = m.ExecutorToken
			mu.Unlock()
		}
		return events.SQSEventResponse{}, nil
	}}
	var pumps sync.WaitGroup
	for _, p := range []*replaySQSPump{triggerPump, triggerPump, triggerPump, triggerPump, statusPump, statusPump, statusPump, statusPump, executorPump} {
		pumps.Go(func() { p.run(ctx) })
	}
	defer func() { cancel(); pumps.Wait() }()
	drained := func() bool {
		for _, q := range []string{intakeQ, statusQ, pipelinesQ} {
			if !replayQueueEmpty(ctx, t, st.sqs, q) {
				return false
			}
		}
		return true
	}

	// The deliveries, from 8 senders, as API Gateway v2 events.
	sendStart := time.Now()
	send := func(sends []*replay.Send) []replay.Answer {
		return replay.SendAll(ctx, sends, 8, func(ctx context.Context, r *replay.Request) (int, []byte, error) {
			resp, err := webhook(ctx, replayAPIEvent(r.URL, r.Header, r.Body))
			return resp.StatusCode, []byte(resp.Body), err
		})
	}
	var answers []replay.Answer
	if outage == 0 {
		answers = send(plan.Sends)
	} else {
		// Half the sends, then a quarter while DynamoDB is down (each
		// answered 5xx, to be redelivered), then those again and the rest.
		half, q := len(plan.Sends)/2, len(plan.Sends)/4
		answers = send(plan.Sends[:half])
		dynamoDB.down.Store(true)
		down := time.Now()
		refused := send(plan.Sends[half : half+q])
		for _, a := range refused {
			if a.Err != nil || a.Status < 500 || !json.Valid(a.Body) {
				t.Errorf("during the outage, %s %s: %d %.200s %v; want 5xx with a JSON message", a.Send.Kind, a.Send.ID, a.Status, a.Body, a.Err)
			}
		}
		time.Sleep(outage - time.Since(down))
		dynamoDB.down.Store(false)
		t.Logf("DynamoDB down for %v: %d deliveries answered %d, sent again afterwards", time.Since(down).Round(time.Millisecond), len(refused), refused[0].Status)
		answers = append(answers, send(plan.Sends[half:])...)
	}
	sendTook := time.Since(sendStart)
	tally, problems := plan.CheckAnswers(answers)
	t.Logf("sent %d deliveries in %v (%.0f/s): %s", len(answers), sendTook.Round(time.Millisecond), float64(len(answers))/sendTook.Seconds(), tally)
	replay.Check(t, "answers", problems)
	if len(problems) > 0 && tally.Accepted == 0 {
		t.FailNow()
	}

	wantPending := plan.WantPending()
	settled := fakes.WaitPosts(t, replay.PostCount(wantPending), time.Now().Add(5*time.Minute+time.Duration(n)*2*time.Second), drained)
	t.Logf("every queue drained and %d pending statuses posted %v after the last answer (trigger: %d messages, %d failed; status: %d, %d failed)",
		replay.PostCount(wantPending), settled.Round(time.Millisecond), triggerPump.handled.Load(), triggerPump.failed.Load(), statusPump.handled.Load(), statusPump.failed.Load())
	pipelines, records := replayPipelines(ctx, t, st, projects), replayRecords(ctx, t, st, projects)
	replay.Check(t, "pipelines", plan.CheckPipelines(pipelines))
	if problems := plan.CheckRecords(records); len(problems) > 0 {
		replay.Check(t, "delivery records", problems)
		// Where the deliveries without a record are: never decided, or decided and lost?
		have := map[string]bool{}
		for _, r := range records {
			have[r.ID] = true
		}
		for _, d := range plan.Deliveries {
			if d.Bad == "" && !have[d.ID] {
				hookID := d.Project.HookURL[strings.LastIndex(d.Project.HookURL, "/")+1:]
				got, err := st.store.GetDelivery(ctx, hookID, d.ID)
				if err == nil {
					t.Logf("delivery %s without a record is %s", d.ID, got.State)
				} else {
					t.Logf("delivery %s without a record: %v", d.ID, err)
				}
			}
		}
	}
	posts, repeated := fakes.Posts(projects), 0
	if outage > 0 {
		posts, repeated = replay.Collapse(posts)
	}
	replay.Check(t, "pending statuses", replay.CheckPosts(wantPending, posts))
	// Nothing of a badly signed delivery is stored, not even for de-duplication.
	for _, d := range plan.Deliveries {
		if d.Bad == "" {
			continue
		}
		hookID := d.Project.HookURL[strings.LastIndex(d.Project.HookURL, "/")+1:]
		if _, err := st.store.GetDelivery(ctx, hookID, d.ID); forgelink.KindOf(err) != forgelink.NotFound {
			t.Errorf("badly signed %s (%s) %s: GetDelivery = %v; want NotFound", d.Kind, d.Bad, d.ID, err)
		}
	}
	mu.Lock()
	if len(tokens) != len(pipelines) {
		t.Errorf("the pipelines queue carried %d pipelines; want %d", len(tokens), len(pipelines))
	}
	mu.Unlock()
	if t.Failed() {
		t.FailNow()
	}

	// The executor's reports with each pipeline's executor token, one
	// executor per pipeline, 8 at once, through the status function's route.
	scripts := replay.Scripts(projects, pipelines, 4, 0.30, 0.10)
	nReports, changed, unchanged, conflicts, _ := replay.ReportCounts(scripts)
	wantPosts := replay.WantPosts(scripts)
	reportStart := time.Now()
	replay.Check(t, "reports", replay.RunScripts(ctx, scripts, 8, func(ctx context.Context, r *replay.Report) (int, []byte, error) {
		mu.Lock()
		tok := tokens[r.Pipeline.ID]
		mu.Unlock()
		h := http.Header{"Content-Type": {"application/json"}, "Circle-Token": {tok}}
		resp, err := reports(ctx, replayAPIEvent(cfg.PublicURL+"/api/v2/pipeline/"+r.Pipeline.ID+"/status", h, r.Body()))
		return resp.StatusCode, []byte(resp.Body), err
	}))
	reportTook := time.Since(reportStart)
	settled = fakes.WaitPosts(t, replay.PostCount(wantPosts), time.Now().Add(5*time.Minute+time.Duration(nReports)*500*time.Millisecond), drained)
	t.Logf("%d reports (%d moved a workflow, %d repeated one, %d refused as backwards) in %v; %d status posts in all, settled %v later (status: %d messages, %d failed)",
		nReports, changed, unchanged, conflicts, reportTook.Round(time.Millisecond), replay.PostCount(wantPosts), settled.Round(time.Millisecond), statusPump.handled.Load(), statusPump.failed.Load())
	posts = fakes.Posts(projects)
	if outage > 0 {
		// A post made while the store was down is made again (at least once).
		posts, repeated = replay.Collapse(posts)
		t.Logf("%d posts repeated a state the store could not record", repeated)
	}
	replay.Check(t, "statuses", replay.CheckPosts(wantPosts, posts))
	replay.Check(t, "workflow states", replay.CheckFinal(scripts, replayPipelines(ctx, t, st, projects)))
	t.Logf("replay of %d deliveries through the Lambda handlers on DynamoDB: %d pipelines, %d status posts (%d expected); %v in all",
		n, len(pipelines), fakes.PostCount(), replay.PostCount(wantPosts), time.Since(began).Round(time.Millisecond))
}

// replayWarnings logs the functions' warnings and errors when the test
// failed: at most the first 30 of each message.
func replayWarnings(t *testing.T, path string) {
	if !t.Failed() {
		return
	}
	b, _ := os.ReadFile(path)
	seen := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		var l struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		if seen[l.Msg]++; seen[l.Msg] <= 30 {
			t.Log(line)
		}
	}
	for msg, n := range seen {
		t.Logf("%d× %s", n, msg)
	}
}

// replaySerialStore is st's store with a client that sends moto_server one
// DynamoDB request at a time. moto 5.2 is not safe for concurrent
// DynamoDB requests: TransactWriteItems deep-copies whole tables while
// other threads write to them (RuntimeError "dictionary changed size
// during iteration", answered 500), and a transaction whose condition
// fails restores its tables from that copy, undoing whatever other
// requests wrote meanwhile - pipelines, delivery records and posted
// statuses vanish, and the replay sees lost writes that DynamoDB never
// makes. DynamoDB applies each request atomically; one request at a time
// at the server keeps every race between forgelink's callers (each reads,
// then writes on a condition) and loses moto's.
func replaySerialStore(st *lambdaStack) (*dynamo.Store, *replaySerialTransport) {
	cfg := awsConfig(endpoint)
	tr := &replaySerialTransport{next: http.DefaultTransport}
	// A request moto never answers must not hold up every other one.
	cfg.HTTPClient = &http.Client{Timeout: time.Minute, Transport: tr}
	cfg.APIOptions = append(cfg.APIOptions, st.calls.middleware)
	return dynamo.New(dynamodb.NewFromConfig(cfg), dynamo.Tables{
		Projects: st.env["FORGELINK_PROJECTS_TABLE"], Deliveries: st.env["FORGELINK_DELIVERIES_TABLE"],
		Pipelines: st.env["FORGELINK_PIPELINES_TABLE"], Keys: st.env["FORGELINK_KEYS_TABLE"],
	}), tr
}

// replaySerialTransport sends one request at a time, each answer read in
// full; while down, it refuses every request as a stopped server does.
type replaySerialTransport struct {
	mu   sync.Mutex
	next http.RoundTripper
	down atomic.Bool
}

func (s *replaySerialTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if s.down.Load() {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp, err := s.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, err
}

// replayProject stores p as followed, with a new hook id and webhook
// secret (sealed with KMS), as follow does, and returns both.
func replayProject(t *testing.T, st *lambdaStack, p *replay.Project, i int) (hookID, secret string) {
	t.Helper()
	ctx := context.Background()
	owner, repo, _ := strings.Cut(p.FullName, "/")
	slug, err := forgelink.NewSlug(string(p.VCS), owner, repo)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 20)
	_, _ = rand.Read(raw)
	secret = hex.EncodeToString(raw)
	hookID = fmt.Sprintf("hk_replay%d_%s", i, base64.RawURLEncoding.EncodeToString(raw[:9]))
	sealed, err := st.seal.Seal(ctx, []byte(secret), slug.AAD(follow.PurposeWebhookSecret))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := st.store.CreateProject(ctx, &forgelink.Project{
		Slug: slug, State: forgelink.Following, HookID: hookID, DefaultBranch: p.DefaultBranch(),
		WebhookVCSID: "1", Secrets: []forgelink.WebhookSecret{{Sealed: sealed}},
		Settings: forgelink.DefaultSettings(), CreatedAt: now, UpdatedAt: now,
	}); err != nil {
		t.Fatal(err)
	}
	return hookID, secret
}

// replayAPIEvent is an HTTP request as API Gateway (HTTP API, payload 2.0)
// hands it to a function.
func replayAPIEvent(rawURL string, h http.Header, body []byte) events.APIGatewayV2HTTPRequest {
	u, _ := url.Parse(rawURL)
	headers := map[string]string{"host": u.Host, "content-length": fmt.Sprint(len(body)), "x-forwarded-for": "192.30.252.1"}
	for k, v := range h {
		headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: u.Path, Headers: headers,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: "$default", AccountID: "123456789012", Stage: "$default", APIID: "abc123",
			DomainName: u.Host, DomainPrefix: "abc123", TimeEpoch: time.Now().UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: http.MethodPost, Path: u.Path, Protocol: "HTTP/1.1", SourceIP: "192.30.252.1", UserAgent: h.Get("User-Agent"),
			},
		},
		Body: string(body),
	}
}

// replaySQSPump feeds a queue to a Lambda SQS handler as an event source mapping
// with ReportBatchItemFailures does: batches of up to 10 messages, the
// failed ones left to come back (after the visibility timeout, or as the
// handler changed it), the others deleted.
type replaySQSPump struct {
	client          *sqs.Client
	url             string
	handle          func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)
	handled, failed atomic.Int64
}

func (p *replaySQSPump) run(ctx context.Context) {
	for ctx.Err() == nil {
		out, err := p.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(p.url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil || len(out.Messages) == 0 {
			if err != nil && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		var ev events.SQSEvent
		for _, m := range out.Messages {
			ev.Records = append(ev.Records, events.SQSMessage{
				MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
				Attributes: m.Attributes, Md5OfBody: aws.ToString(m.MD5OfBody), EventSource: "aws:sqs",
				EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:" + p.url[strings.LastIndex(p.url, "/")+1:], AWSRegion: "us-east-1",
			})
		}
		resp, err := p.handle(ctx, ev)
		failed := map[string]bool{}
		if err != nil {
			for _, r := range ev.Records {
				failed[r.MessageId] = true
			}
		}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		var del []sqstypes.DeleteMessageBatchRequestEntry
		for _, r := range ev.Records {
			if !failed[r.MessageId] {
				del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(r.MessageId), ReceiptHandle: aws.String(r.ReceiptHandle)})
			}
		}
		p.handled.Add(int64(len(ev.Records)))
		p.failed.Add(int64(len(failed)))
		if len(del) > 0 {
			_, _ = p.client.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.url), Entries: del})
		}
	}
}

// replayQueueEmpty reports whether the queue holds no message, visible, in
// flight or delayed.
func replayQueueEmpty(ctx context.Context, t *testing.T, client *sqs.Client, url string) bool {
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible, sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
	}})
	if err != nil {
		t.Logf("queue attributes of %s: %v", url, err)
		return false
	}
	for _, v := range out.Attributes {
		if v != "0" {
			return false
		}
	}
	return true
}

// replayPipelines lists every pipeline of the projects from the store.
func replayPipelines(ctx context.Context, t *testing.T, st *lambdaStack, projects []*replay.Project) []replay.Pipeline {
	t.Helper()
	var out []replay.Pipeline
	for _, p := range projects {
		slug, err := forgelink.ParseSlug(p.Slug())
		if err != nil {
			t.Fatal(err)
		}
		for page := (forgelink.Page{Limit: 100}); ; {
			pls, next, err := st.store.ListPipelines(ctx, slug, page)
			if err != nil {
				t.Fatal(err)
			}
			for _, pl := range pls {
				ws := map[string]string{}
				for _, w := range pl.StatusWorkflows() {
					ws[w] = string(pl.WorkflowState(w))
				}
				out = append(out, replay.Pipeline{ID: pl.ID, Project: pl.Project, Number: pl.Number, Branch: pl.Branch, Tag: pl.Tag,
					Revision: pl.Revision, DeliveryID: pl.DeliveryID, Workflows: pl.Workflows, WorkflowStatus: ws})
			}
			if next == "" {
				break
			}
			page.Token = next
		}
	}
	return out
}

// replayRecords lists every delivery record of the projects from the store.
func replayRecords(ctx context.Context, t *testing.T, st *lambdaStack, projects []*replay.Project) []replay.Record {
	t.Helper()
	var out []replay.Record
	for _, p := range projects {
		slug, err := forgelink.ParseSlug(p.Slug())
		if err != nil {
			t.Fatal(err)
		}
		for page := (forgelink.Page{Limit: 100}); ; {
			recs, next, err := st.store.ListDeliveryRecords(ctx, slug, page)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				rec := replay.Record{Project: r.Project, ID: r.DeliveryID, State: string(r.State)}
				if rec.State == "" {
					rec.State = string(forgelink.Decided)
				}
				for _, d := range r.Decisions {
					rec.Decisions = append(rec.Decisions, replay.Decision{Branch: d.Branch, Tag: d.Tag, Revision: d.Revision, Build: d.Build, Reason: d.Reason})
				}
				out = append(out, rec)
			}
			if next == "" {
				break
			}
			page.Token = next
		}
	}
	return out
}
