package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"forgelink/shared/accessapi"
	"forgelink/shared/config"
	"forgelink/shared/dynamo"
	"forgelink/shared/follow"
	"forgelink/shared/forgelink"
	"forgelink/shared/forges"
	"forgelink/shared/httpapi"
	"forgelink/shared/intake"
	"forgelink/shared/keysvc"
	"forgelink/shared/orgaccess"
	"forgelink/shared/pages"
	"forgelink/shared/queue"
	"forgelink/shared/sealer"
	"forgelink/shared/signin"
	"forgelink/shared/sshkeys"
	"forgelink/shared/statusapi"
	"forgelink/shared/statussvc"
	"forgelink/shared/vcsfake"
)

// TestBadInputDynamoDB is the bad-input matrix of infra/local/server's
// TestBadInput on the AWS side: every route, through the handlers the
// Lambda functions serve (wired as their mains wire them), as API Gateway
// v2 events through aws-lambda-go-api-proxy, against DynamoDB, KMS and
// SQS on the local AWS server. Every request must be answered 4xx with a
// message that names the problem (JSON {"message"} from hooks, the API
// and badges; an HTML page from the pages) and change nothing: no
// DynamoDB or SQS call that writes may succeed during it, and every table
// - scanned item by item, every attribute - and the functions' queues are
// as before each family of cases (and, after a write, before the case).
// A scan of every table per case would cost the local server most of a
// minute; the write log makes the per-case check exact without it, and
// the controls show both checks see a change.
//
// DynamoDB refuses a key over its size limits (2,048 bytes of partition
// key, 1,024 of sort key) with a ValidationException; the local server
// does so only on writes, so a middleware does it on reads too, as the
// service does (dynamoKeyLimits).
//
// API Gateway hands a function the whole body, and joins a repeated
// header's values with commas (which the adapter splits again), so the
// bbolt matrix's transport cases (a body cut off, chunked bodies) have no
// counterpart here; everything else is sent as API Gateway would. Routes
// are picked by path alone, so that each handler meets the wrong methods
// API Gateway's own route table may already refuse.
func TestBadInputDynamoDB(t *testing.T) {
	bs := newBadInputStack(t)
	before := bs.snapshot(t)
	for _, fam := range bs.families(t) {
		t.Run(fam.name, func(t *testing.T) {
			bs.writes.take()
			for _, tc := range fam.cases {
				t.Run(tc.name, func(t *testing.T) {
					if tc.msg == "" || tc.status < 400 || tc.status > 499 {
						t.Fatalf("the case wants %d %q: every case wants a 4xx and names its message", tc.status, tc.msg)
					}
					status, header, body := bs.send(t, tc)
					checkBadInputAnswer(t, fam.answer, tc, status, header, body)
					if w := bs.writes.take(); len(w) > 0 {
						after := bs.snapshot(t)
						t.Errorf("writes %v; changed: %s", w, snapshotDiff(before, after))
						before = after
					}
				})
			}
			after := bs.snapshot(t)
			if diff := snapshotDiff(before, after); diff != "" {
				t.Errorf("the tables or queues changed: %s", diff)
			}
			before = after
		})
	}

	// The controls: the requests the cases spoil, made right, are accepted,
	// write, and change a table or queue, so the checks above can fail.
	t.Run("controls", func(t *testing.T) {
		for _, tc := range bs.controls(t) {
			t.Run(tc.name, func(t *testing.T) {
				status, _, body := bs.send(t, tc)
				if status != tc.status {
					t.Fatalf("status %d %.300s, want %d", status, body, tc.status)
				}
				if len(bs.writes.take()) == 0 {
					t.Error("no write was logged")
				}
				after := bs.snapshot(t)
				if snapshotDiff(before, after) == "" {
					t.Error("no table or queue changed")
				}
				before = after
			})
		}
	})
	counts := []string{}
	for _, fam := range bs.families(t) {
		counts = append(counts, fmt.Sprintf("%s %d", fam.name, len(fam.cases)))
	}
	t.Logf("cases: %s", strings.Join(counts, ", "))
}

// badInputWrites logs the DynamoDB and SQS calls that succeeded in
// changing something, as a middleware on the stack's clients.
type badInputWrites struct {
	mu  sync.Mutex
	ops []string
}

var badInputWriteOps = map[string]bool{
	"DynamoDB.PutItem": true, "DynamoDB.UpdateItem": true, "DynamoDB.DeleteItem": true,
	"DynamoDB.BatchWriteItem": true, "DynamoDB.TransactWriteItems": true,
	"SQS.SendMessage": true, "SQS.SendMessageBatch": true, "SQS.DeleteMessage": true,
	"SQS.DeleteMessageBatch": true, "SQS.ChangeMessageVisibility": true, "SQS.PurgeQueue": true,
}

func (w *badInputWrites) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("forgelink-log-writes",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			op := awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx)
			if err == nil && badInputWriteOps[op] {
				w.mu.Lock()
				w.ops = append(w.ops, op)
				w.mu.Unlock()
			}
			return out, md, err
		}), middleware.After)
}

// dynamoKeyLimits refuses, as DynamoDB does and the local server does not
// for reads, a key whose partition key value is over 2,048 bytes or whose
// sort key value is over 1,024: a ValidationException, which no item
// could satisfy.
func dynamoKeyLimits(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("forgelink-dynamodb-key-limits",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			var keys []map[string]types.AttributeValue
			switch p := in.Parameters.(type) {
			case *dynamodb.GetItemInput:
				keys = append(keys, p.Key)
			case *dynamodb.DeleteItemInput:
				keys = append(keys, p.Key)
			case *dynamodb.UpdateItemInput:
				keys = append(keys, p.Key)
			case *dynamodb.PutItemInput:
				keys = append(keys, p.Item)
			case *dynamodb.TransactWriteItemsInput:
				for _, it := range p.TransactItems {
					switch {
					case it.Put != nil:
						keys = append(keys, it.Put.Item)
					case it.Update != nil:
						keys = append(keys, it.Update.Key)
					case it.Delete != nil:
						keys = append(keys, it.Delete.Key)
					case it.ConditionCheck != nil:
						keys = append(keys, it.ConditionCheck.Key)
					}
				}
			}
			size := func(av types.AttributeValue) int {
				switch v := av.(type) {
				case *types.AttributeValueMemberS:
					return len(v.Value)
				case *types.AttributeValueMemberB:
					return len(v.Value)
				}
				return 0
			}
			for _, k := range keys {
				if size(k["pk"]) > 2048 {
					return middleware.InitializeOutput{}, middleware.Metadata{}, &smithy.GenericAPIError{Code: "ValidationException",
						Message: "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes"}
				}
				if size(k["sk"]) > 1024 {
					return middleware.InitializeOutput{}, middleware.Metadata{}, &smithy.GenericAPIError{Code: "ValidationException",
						Message: "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes"}
				}
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

// take returns the writes so far and starts afresh.
func (w *badInputWrites) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.ops
	w.ops = nil
	return out
}

// badInputCase is one request a function must refuse.
type badInputCase struct {
	name, method string
	// path is the raw path and query, escapes and all.
	path string
	// header is name, value pairs, in order; a name may repeat.
	header []string
	body   []byte
	status int
	// msg is a part of the message the answer must carry.
	msg string
}

type badInputFamily struct {
	name   string
	answer badInputAnswer
	cases  []badInputCase
}

// badInputAnswer is how a family answers an error.
type badInputAnswer int

const (
	badInputJSON badInputAnswer = iota // application/json {"message": "..."}
	badInputHTML                       // text/html, the message in the page
)

// badInputSession is a browser session: its cookie and CSRF token.
type badInputSession struct{ id, csrf string }

func (s badInputSession) cookie() string {
	return "forgelink_session=" + s.id + "; forgelink_csrf=" + s.csrf
}

// badInputStack is the functions on the local AWS server, with the seeded
// projects (gh/ and bb/octo-org/hello-world, SampleHookID and
// SampleBBHookID, SampleSecret), a private project whose secret signs
// "another project's" deliveries, the sample pipeline, an SSH key, and
// sessions.
type badInputStack struct {
	writes *badInputWrites
	ddb    *dynamodb.Client
	sqs    *sqs.Client
	store  *dynamo.Store
	tables []string
	queues []string
	// functions by name; route picks one for a path.
	functions map[string]func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

	hook                   map[string]string
	otherSecret            string
	deployFP, sshFP        string
	privateKey             string
	envA, envB, octo, mona badInputSession
	tokenID, personalToken string
}

const (
	badInputOtherSlug   = "gh/octo-org/other"
	badInputOtherHook   = "hk_other_private"
	badInputOtherSecret = "another-projects-secret"
)

func newBadInputStack(t *testing.T) *badInputStack {
	t.Helper()
	ctx := context.Background()
	st := newLambdaStack(t)
	gh := vcsfake.NewGitHub(t)
	gh.AddRepo(SampleOrg+"/"+SampleRepo, "main", false)
	env := map[string]string{"GITHUB_API_URL": gh.URL, "GITHUB_TOKEN": gh.Token}
	for k, v := range st.env {
		env[k] = v
	}
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	awsCfg := awsConfig(endpoint)
	writes := &badInputWrites{}
	awsCfg.APIOptions = append(awsCfg.APIOptions, writes.middleware, dynamoKeyLimits)
	bs := &badInputStack{
		writes:    writes,
		ddb:       dynamodb.NewFromConfig(awsCfg),
		sqs:       sqs.NewFromConfig(awsCfg),
		hook:      map[string]string{"github": "/hooks/github/" + SampleHookID, "bitbucket": "/hooks/bitbucket/" + SampleBBHookID},
		functions: map[string]func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error){},
	}
	bs.store = dynamo.New(bs.ddb, dynamo.TablesOf(cfg))
	for k, v := range env {
		if strings.HasSuffix(k, "_TABLE") {
			bs.tables = append(bs.tables, v)
		}
	}
	sort.Strings(bs.tables)
	if len(bs.tables) < 5 {
		t.Fatalf("tables %v: want every table of template.yaml", bs.tables)
	}
	// The queues these functions send to (the pipelines queue is the
	// trigger function's).
	bs.queues = []string{cfg.IntakeQueueURL, cfg.StatusQueue}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	seal := sealer.NewEnvelope(sealer.NewKMS(kms.NewFromConfig(awsCfg), cfg.KMSKeyID))
	proxy := func(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return httpadapter.NewV2(h).ProxyWithContext
	}

	// functions/webhook
	bs.functions["webhook"] = proxy((&intake.Intake{
		Store: bs.store, Sealer: sealer.NewCache(seal, 5*time.Minute, 1024),
		Inbox: &queue.SQSInbox{Deliveries: bs.store, Queue: queue.NewSQS(bs.sqs, cfg.IntakeQueueURL)}, Log: log,
	}).Handler())

	// functions/keys
	{
		users := signin.New(cfg, bs.store, seal, nil, cfg.APIToken)
		users.Log = log
		vcs := forges.ForUsers(cfg, nil, users.Token)
		keys := &keysvc.Service{Store: bs.store, Keys: bs.store, Pipelines: bs.store, Sealer: seal, Forges: vcs, GitHubAPIURL: cfg.GitHubAPIURL, Log: log}
		projects := &httpapi.Projects{
			Store: bs.store, Pipelines: bs.store,
			Follow: &follow.Service{Store: bs.store, Sealer: seal, Forges: vcs, BeforeUnfollow: keys.RemoveProjectKeys, Log: log},
			Inbox:  &queue.SQSInbox{Deliveries: bs.store, Queue: queue.NewSQS(bs.sqs, cfg.IntakeQueueURL)},
			Auth:   users, Authz: users, PublicURL: cfg.PublicURL, Log: log,
		}
		api := &httpapi.Keys{Service: keys, Auth: users, Authz: users, Log: log}
		mux := http.NewServeMux()
		for _, route := range signin.Routes {
			mux.Handle(route, users.Handler())
		}
		mux.Handle("/", api.Handler(projects.Handler()))
		bs.functions["keys"] = proxy(mux)
	}

	// functions/pages
	{
		users := signin.New(cfg, bs.store, seal, nil, cfg.APIToken)
		users.Log = log
		vcs := forges.ForUsers(cfg, nil, users.Token)
		keys := &keysvc.Service{Store: bs.store, Keys: bs.store, Pipelines: bs.store, Sealer: seal, Forges: vcs, GitHubAPIURL: cfg.GitHubAPIURL, Log: log}
		settings := (&pages.Pages{
			Users: users, Store: bs.store, Pipelines: bs.store,
			Follow:      &follow.Service{Store: bs.store, Sealer: seal, Forges: vcs, BeforeUnfollow: keys.RemoveProjectKeys, Log: log},
			Keys:        keys,
			Access:      &orgaccess.Service{Store: bs.store, GitHubWebURL: cfg.GitHubWebURL, OAuthClientID: cfg.OAuthClientID, Log: log},
			TokenSignIn: !users.Enabled(forgelink.GitHub) && !users.Enabled(forgelink.Bitbucket),
			PublicURL:   cfg.PublicURL, Log: log,
		}).Handler()
		mux := http.NewServeMux()
		for _, route := range pages.Routes {
			mux.Handle(route, settings)
		}
		bs.functions["pages"] = proxy(mux)
	}

	// functions/status
	{
		users := signin.New(cfg, bs.store, seal, nil, cfg.APIToken)
		users.Log = log
		svc := &statussvc.Service{
			Store: bs.store, Posters: forges.Posters(forges.ForUsers(cfg, nil, users.Token)),
			Requests: queue.NewSQSStatus(bs.sqs, cfg.StatusQueue), PublicURL: cfg.PublicURL,
			Access: &orgaccess.Service{Store: bs.store, Log: log}, Log: log,
		}
		mux := http.NewServeMux()
		mux.Handle("/api/", (&statusapi.Reports{Reporter: svc, Tokens: bs.store, Auth: users, Authz: users, Pipelines: bs.store, PublicURL: cfg.PublicURL, Log: log}).Handler())
		mux.Handle("/", (&statusapi.Badges{Projects: bs.store, Pipelines: bs.store, Auth: users, Authz: users, Log: log}).Handler())
		bs.functions["status"] = proxy(mux)
	}

	// functions/orgaccess
	{
		users := signin.New(cfg, bs.store, seal, nil, cfg.APIToken)
		users.Log = log
		vcs := forges.ForUsers(cfg, nil, users.Token)
		repair := &follow.Service{Store: bs.store, Sealer: seal, Forges: vcs, Log: log}
		svc := &orgaccess.Service{
			Store: bs.store, Checkers: forges.Checkers(vcs), Repair: repair.Repair, PublicURL: cfg.PublicURL,
			GitHubWebURL: cfg.GitHubWebURL, OAuthClientID: cfg.OAuthClientID, Log: log,
		}
		bs.functions["orgaccess"] = proxy((&accessapi.API{Service: svc, Auth: users, Authz: users, Log: log}).Handler())
	}

	// Another project, private, with its own secret.
	other, err := forgelink.ParseSlug(badInputOtherSlug)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := seal.Seal(ctx, []byte(badInputOtherSecret), other.AAD(follow.PurposeWebhookSecret))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := bs.store.CreateProject(ctx, &forgelink.Project{
		Slug: other, State: forgelink.Following, HookID: badInputOtherHook, DefaultBranch: "main", Private: true, FollowedBy: SampleUser,
		Secrets: []forgelink.WebhookSecret{{Sealed: sealed}}, Settings: forgelink.DefaultSettings(), CreatedAt: now, UpdatedAt: now,
	}); err != nil {
		t.Fatal(err)
	}
	bs.otherSecret = badInputOtherSecret
	a, err := bs.store.GetProject(ctx, forgelink.Slug{VCS: forgelink.GitHub, Org: SampleOrg, Repo: SampleRepo})
	if err != nil {
		t.Fatal(err)
	}
	bs.deployFP = a.DeployKey.FingerprintMD5

	// An SSH key, added as a user adds one.
	key, err := sshkeys.Generate(sshkeys.ED25519, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bs.privateKey = string(key.PrivatePEM)
	otherKey, err := sshkeys.Generate(sshkeys.ED25519, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := bs.send(t, badInputCase{method: "POST", path: "/api/v1.1/project/gh/" + SampleOrg + "/" + SampleRepo + "/ssh-key",
		header: []string{"Circle-Token", SampleAPIToken, "Content-Type", "application/json"},
		body:   badInputJSONOf(map[string]string{"hostname": "deploy.example.com", "private_key": string(otherKey.PrivatePEM)})})
	var added map[string]any
	if err := json.Unmarshal(body, &added); status != http.StatusCreated || err != nil {
		t.Fatalf("add an SSH key: %d %s", status, body)
	}
	bs.sshFP, _ = added["fingerprint"].(string)

	// Sessions: two of the environment user, signed in with the API
	// token on the sign-in page, and two of GitHub users (stored as a
	// sign-in stores them), one with a personal token.
	bs.envA, bs.envB = bs.tokenSignIn(t), bs.tokenSignIn(t)
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	for i, u := range []struct {
		login string
		ss    *badInputSession
	}{{"octo-two", &bs.octo}, {"mona", &bs.mona}} {
		user := &forgelink.User{ID: fmt.Sprint("github:", 9100+i), VCS: forgelink.GitHub, VCSUserID: fmt.Sprint(9100 + i), Login: u.login, CreatedAt: now, UpdatedAt: now}
		if err := bs.store.PutUser(ctx, user); err != nil {
			t.Fatal(err)
		}
		*u.ss = badInputSession{id: fmt.Sprint("fls_bad_input_session_", i), csrf: fmt.Sprint("bad-input-csrf-", i)}
		if err := bs.store.CreateSession(ctx, &forgelink.Session{Hash: hash(u.ss.id), UserID: user.ID, CSRF: u.ss.csrf, CreatedAt: now, ExpiresAt: now.Add(forgelink.SessionTTL)}); err != nil {
			t.Fatal(err)
		}
	}
	bs.tokenID, bs.personalToken = "badinputtoken001", "flp_bad_input_personal_token"
	if err := bs.store.CreateAPIToken(ctx, &forgelink.APIToken{ID: bs.tokenID, Hash: hash(bs.personalToken), UserID: "github:9100", Label: "setup", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return bs
}

// tokenSignIn signs in with the API token on the sign-in page.
func (bs *badInputStack) tokenSignIn(t *testing.T) badInputSession {
	t.Helper()
	status, header, body := bs.send(t, badInputCase{method: "GET", path: "/"})
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindSubmatch(body)
	login := badInputCookie(header, "forgelink_login_csrf")
	if status != http.StatusOK || m == nil || login == "" {
		t.Fatalf("sign-in page: %d, csrf_token %q, cookie %q", status, m, login)
	}
	form := url.Values{"csrf_token": {string(m[1])}, "token": {SampleAPIToken}}.Encode()
	status, header, body = bs.send(t, badInputCase{method: "POST", path: "/login", body: []byte(form),
		header: []string{"Content-Type", "application/x-www-form-urlencoded", "Cookie", "forgelink_login_csrf=" + login}})
	ss := badInputSession{badInputCookie(header, "forgelink_session"), badInputCookie(header, "forgelink_csrf")}
	if status != http.StatusSeeOther || ss.id == "" || ss.csrf == "" {
		t.Fatalf("sign in with the API token: %d %s", status, body)
	}
	return ss
}

func badInputCookie(h http.Header, name string) string {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name && c.MaxAge >= 0 {
			return c.Value
		}
	}
	return ""
}

// route names the function whose API Gateway route serves path
// (template.yaml), by path alone.
func badInputRoute(path string) string {
	switch {
	case strings.HasPrefix(path, "/hooks/"):
		return "webhook"
	case regexp.MustCompile(`^/api/v2/pipeline/[^/]*/status$`).MatchString(path),
		strings.HasPrefix(path, "/gh/"), strings.HasPrefix(path, "/bb/"):
		return "status"
	case path == "/api/v2/org-access" || path == "/api/v2/org-access/check":
		return "orgaccess"
	case strings.HasPrefix(path, "/api/"), strings.HasPrefix(path, "/login/"), path == "/logout":
		return "keys"
	}
	return "pages"
}

// send hands tc to its function as API Gateway v2 would: cookies apart,
// a repeated header's values joined by commas, the body base64-encoded.
func (bs *badInputStack) send(t *testing.T, tc badInputCase) (int, http.Header, []byte) {
	t.Helper()
	path, query, _ := strings.Cut(tc.path, "?")
	headers := map[string]string{}
	var cookies []string
	for i := 0; i+1 < len(tc.header); i += 2 {
		name, v := strings.ToLower(tc.header[i]), tc.header[i+1]
		if name == "cookie" {
			cookies = append(cookies, strings.Split(v, "; ")...)
			continue
		}
		if old, ok := headers[name]; ok {
			v = old + "," + v
		}
		headers[name] = v
	}
	unescaped, err := url.PathUnescape(path)
	if err != nil {
		unescaped = path
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: path, RawQueryString: query, Cookies: cookies, Headers: headers,
		Body: base64.StdEncoding.EncodeToString(tc.body), IsBase64Encoded: true,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			DomainName: "abc123.execute-api.us-east-1.amazonaws.com",
			HTTP:       events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: tc.method, Path: unescaped, SourceIP: "203.0.113.9"},
		},
	}
	resp, err := bs.functions[badInputRoute(path)](context.Background(), ev)
	if err != nil {
		t.Fatalf("%s %.200s: %v", tc.method, tc.path, err)
	}
	header := http.Header{}
	for k, v := range resp.Headers {
		header.Set(k, v)
	}
	for _, c := range resp.Cookies {
		header.Add("Set-Cookie", c)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, header, body
}

// snapshot is every item of every table, each attribute written out
// exactly (numbers as their decimal strings, binary as hex), keyed by
// table and primary key; and how many messages each queue holds.
func (bs *badInputStack) snapshot(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, table := range bs.tables {
		p := dynamodb.NewScanPaginator(bs.ddb, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("scan %s: %v", table, err)
			}
			for _, item := range page.Items {
				key := table + " " + attributeText(item["pk"]) + " " + attributeText(item["sk"])
				if _, dup := out[key]; dup {
					t.Fatalf("two items under %s", key)
				}
				out[key] = attributeText(&types.AttributeValueMemberM{Value: item})
			}
		}
	}
	for _, q := range bs.queues {
		attrs, err := bs.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q), AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		}})
		if err != nil {
			t.Fatalf("queue %s: %v", q, err)
		}
		out["queue "+q[strings.LastIndex(q, "/")+1:]] = fmt.Sprint(attrs.Attributes)
	}
	return out
}

// attributeText writes an attribute value out in full, map keys sorted.
func attributeText(av types.AttributeValue) string {
	switch v := av.(type) {
	case nil:
		return "-"
	case *types.AttributeValueMemberS:
		return fmt.Sprintf("S%q", v.Value)
	case *types.AttributeValueMemberN:
		return "N" + v.Value
	case *types.AttributeValueMemberB:
		return "B" + hex.EncodeToString(v.Value)
	case *types.AttributeValueMemberBOOL:
		return fmt.Sprint("BOOL", v.Value)
	case *types.AttributeValueMemberNULL:
		return "NULL"
	case *types.AttributeValueMemberSS:
		s := slices.Clone(v.Value)
		sort.Strings(s)
		return fmt.Sprintf("SS%q", s)
	case *types.AttributeValueMemberNS:
		s := slices.Clone(v.Value)
		sort.Strings(s)
		return fmt.Sprint("NS", s)
	case *types.AttributeValueMemberBS:
		var s []string
		for _, b := range v.Value {
			s = append(s, hex.EncodeToString(b))
		}
		sort.Strings(s)
		return fmt.Sprint("BS", s)
	case *types.AttributeValueMemberL:
		var s []string
		for _, e := range v.Value {
			s = append(s, attributeText(e))
		}
		return "L[" + strings.Join(s, ",") + "]"
	case *types.AttributeValueMemberM:
		keys := make([]string, 0, len(v.Value))
		for k := range v.Value {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var s []string
		for _, k := range keys {
			s = append(s, fmt.Sprintf("%q:%s", k, attributeText(v.Value[k])))
		}
		return "M{" + strings.Join(s, ",") + "}"
	}
	return fmt.Sprintf("?%T", av)
}

// snapshotDiff names what was added, removed or changed; "" when nothing.
func snapshotDiff(before, after map[string]string) string {
	var out []string
	for k, v := range after {
		if w, ok := before[k]; !ok {
			out = append(out, "added "+k)
		} else if v != w {
			out = append(out, "changed "+k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, "removed "+k)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

func checkBadInputAnswer(t *testing.T, kind badInputAnswer, tc badInputCase, status int, header http.Header, body []byte) {
	t.Helper()
	if status != tc.status {
		t.Errorf("status %d, want %d; answer %.300q", status, tc.status, body)
	}
	ct := header.Get("Content-Type")
	var msg string
	switch kind {
	case badInputJSON:
		var m map[string]any
		if !strings.HasPrefix(ct, "application/json") || json.Unmarshal(body, &m) != nil {
			t.Fatalf("answer %s %.300q: want a JSON object", ct, body)
		}
		if msg, _ = m["message"].(string); msg == "" {
			t.Errorf("answer %.300s has no message", body)
		}
	case badInputHTML:
		if !strings.HasPrefix(ct, "text/html") || !strings.Contains(string(body), "<html") {
			t.Fatalf("answer %s %.300q: want an HTML page", ct, body)
		}
		msg = badInputPageText(body)
	}
	if !strings.Contains(msg, tc.msg) {
		t.Errorf("message %.400q does not say %q", msg, tc.msg)
	}
}

// badInputPageText is the text of a page's <main>, tags dropped.
func badInputPageText(body []byte) string {
	s := string(body)
	if i := strings.Index(s, "<main"); i >= 0 {
		s = s[i:]
	}
	if i := strings.Index(s, "</main>"); i >= 0 {
		s = s[:i]
	}
	s = regexp.MustCompile(`<[^>]*>`).ReplaceAllString(s, " ")
	return strings.Join(strings.Fields(html.UnescapeString(s)), " ")
}

func badInputJSONOf(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func badInputSign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// badInputPush is the corpus push of vcs.
func badInputPush(t *testing.T, vcs string) []byte {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	name := map[string]string{"github": "github/push.json", "bitbucket": "bitbucket/repo-push.json"}[vcs]
	b, err := os.ReadFile(filepath.Join(root, "testdata", "corpus", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Header helpers: without drops a name, with replaces (or adds) it, plus
// adds after a copy; no two cases share a backing array.
func badInputWithout(header []string, name string) []string {
	var out []string
	for i := 0; i+1 < len(header); i += 2 {
		if !strings.EqualFold(header[i], name) {
			out = append(out, header[i], header[i+1])
		}
	}
	return out
}

func badInputWith(header []string, pairs ...string) []string {
	out := slices.Clone(header)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(badInputWithout(out, pairs[i]), pairs[i], pairs[i+1])
	}
	return out
}

func badInputPlus(header []string, pairs ...string) []string {
	return append(slices.Clone(header), pairs...)
}

// badInputTricks are path tricks for an org, repo, id or fingerprint.
var badInputTricks = []struct{ name, segment string }{
	{"escaped dot-dot-slash", "..%2F..%2Fetc"},
	{"escaped dots", "%2e%2e"},
	{"fullwidth dots", "%EF%BC%8E%EF%BC%8E"},
	{"right-to-left override", "hello%E2%80%AEdlrow"},
	{"NUL", "hello%00world"},
	{"overlong", strings.Repeat("a", 4000)},
}

func badInputPad(field string, n int) []byte {
	head := `{"` + field + `":"`
	return []byte(head + strings.Repeat("a", n-len(head)-2) + `"}`)
}

func (bs *badInputStack) families(t *testing.T) []badInputFamily {
	t.Helper()
	var hooks []badInputCase
	for _, vcs := range []string{"github", "bitbucket"} {
		hooks = append(hooks, bs.hookCases(t, vcs)...)
	}
	return []badInputFamily{
		{name: "hooks", answer: badInputJSON, cases: hooks},
		{name: "api", answer: badInputJSON, cases: bs.apiCases()},
		{name: "badges", answer: badInputJSON, cases: bs.badgeCases()},
		{name: "pages", answer: badInputHTML, cases: bs.pageCases()},
	}
}

func (bs *badInputStack) hookCases(t *testing.T, vcs string) []badInputCase {
	t.Helper()
	push := badInputPush(t, vcs)
	hook := bs.hook[vcs]
	sigHeader, eventHeader, idHeader, event, other := "X-Hub-Signature-256", "X-GitHub-Event", "X-GitHub-Delivery", "push", "pull_request"
	good := []string{"Content-Type", "application/json", "X-GitHub-Event", "push", "X-GitHub-Delivery", "bad-input-1", sigHeader, badInputSign(SampleSecret, push)}
	otherVCSHook := "/hooks/github/" + SampleBBHookID
	if vcs == "bitbucket" {
		sigHeader, eventHeader, idHeader, event, other = "X-Hub-Signature", "X-Event-Key", "X-Request-UUID", "repo:push", "pullrequest:created"
		good = []string{"Content-Type", "application/json", "X-Event-Key", event, "X-Request-UUID", "bad-input-1",
			"X-Hook-UUID", "{00000000-0000-0000-0000-000000000000}", "X-Attempt-Number", "1", sigHeader, badInputSign(SampleSecret, push)}
		otherVCSHook = "/hooks/bitbucket/" + SampleHookID
	}
	signed := func(body []byte) []string { return badInputWith(good, sigHeader, badInputSign(SampleSecret, body)) }
	huge := []byte(strings.Repeat(" ", 25<<20+1))
	deep := []byte(strings.Repeat("[", 100000))
	cutShort := push[:len(push)/2]

	cases := []badInputCase{
		{name: "GET", method: "GET", path: hook, status: 405, msg: "use POST"},
		{name: "PUT", method: "PUT", path: hook, header: good, body: push, status: 405, msg: "use POST"},
		{name: "no signature", method: "POST", path: hook, header: badInputWithout(good, sigHeader), body: push, status: 401, msg: "missing " + sigHeader},
		{name: "two signatures, the right one first", method: "POST", path: hook, header: badInputPlus(good, sigHeader, badInputSign("x", push)), body: push, status: 400, msg: "one " + sigHeader},
		{name: "two signatures, the right one second", method: "POST", path: hook, header: badInputPlus(badInputWith(good, sigHeader, badInputSign("x", push)), sigHeader, badInputSign(SampleSecret, push)), body: push, status: 400, msg: "one " + sigHeader},
		{name: "two delivery ids", method: "POST", path: hook, header: badInputPlus(good, idHeader, "bad-input-2"), body: push, status: 400, msg: "one " + idHeader},
		{name: "two event headers", method: "POST", path: hook, header: badInputPlus(good, eventHeader, other), body: push, status: 400, msg: "one " + eventHeader},
		{name: "no event header", method: "POST", path: hook, header: badInputWithout(good, eventHeader), body: push, status: 400, msg: eventHeader},
		{name: "no delivery id", method: "POST", path: hook, header: badInputWithout(good, idHeader), body: push, status: 400, msg: idHeader},
		{name: "signature not hex", method: "POST", path: hook, header: badInputWith(good, sigHeader, "sha256=zz"+badInputSign(SampleSecret, push)[9:]), body: push, status: 401, msg: sigHeader + " is not hex"},
		{name: "signature of another body", method: "POST", path: hook, header: badInputWith(good, sigHeader, badInputSign(SampleSecret, cutShort)), body: push, status: 401, msg: "signature does not match"},
		{name: "SHA-1 signature", method: "POST", path: hook, header: badInputWith(good, sigHeader, "sha1=0123456789abcdef0123456789abcdef01234567"), body: push, status: 401, msg: `must start with "sha256="`},
		{name: "wrong secret: another project's", method: "POST", path: hook, header: badInputWith(good, sigHeader, badInputSign(bs.otherSecret, push)), body: push, status: 401, msg: "signature does not match"},
		{name: "the other VCS's hook id", method: "POST", path: otherVCSHook, header: good, body: push, status: 404, msg: "unknown hook"},
		{name: "unknown hook id", method: "POST", path: "/hooks/" + vcs + "/0000000000000000", header: good, body: push, status: 404, msg: "unknown hook"},
		{name: "huge body", method: "POST", path: hook, header: signed(huge), body: huge, status: 413, msg: "limit"},
		{name: "truncated JSON, signed", method: "POST", path: hook, header: signed(cutShort), body: cutShort, status: 400, msg: "malformed JSON"},
		{name: "100,000 nested arrays, signed", method: "POST", path: hook, header: signed(deep), body: deep, status: 400, msg: "malformed JSON"},
		{name: "content type text/plain", method: "POST", path: hook, header: badInputWith(good, "Content-Type", "text/plain"), body: push, status: 400, msg: "unsupported Content-Type"},
		{name: "content type unreadable", method: "POST", path: hook, header: badInputWith(good, "Content-Type", "application/json; charset"), body: push, status: 400, msg: "unreadable Content-Type"},
		{name: "delivery id too long", method: "POST", path: hook, header: badInputWith(good, idHeader, strings.Repeat("d", 201)), body: push, status: 400, msg: "too long"},
		{name: "delivery id with a C1 control character", method: "POST", path: hook, header: badInputWith(good, idHeader, "bad\u0085input"), body: push, status: 400, msg: "printable"},
		{name: "delivery id not UTF-8", method: "POST", path: hook, header: badInputWith(good, idHeader, "bad\xffinput"), body: push, status: 400, msg: "printable"},
	}
	for _, tr := range badInputTricks {
		cases = append(cases, badInputCase{name: "hook id: " + tr.name, method: "POST", path: "/hooks/" + vcs + "/" + tr.segment, header: good, body: push, status: 404, msg: "unknown hook"})
	}
	for i := range cases {
		cases[i].name = vcs + ": " + cases[i].name
	}
	return cases
}

func (bs *badInputStack) apiCases() []badInputCase {
	tok := []string{"Circle-Token", SampleAPIToken}
	js := func(h ...string) []string {
		return append(append([]string{"Content-Type", "application/json"}, tok...), h...)
	}
	slugA := "gh/" + SampleOrg + "/" + SampleRepo
	v1, v2 := "/api/v1.1/project/"+slugA, "/api/v2/project/"+slugA
	pl := "/api/v2/pipeline/" + SamplePipelineID
	settings := []byte(`{"advanced":{"build_prs_only":true}}`)
	sshBody := badInputJSONOf(map[string]string{"hostname": "git.example.com", "private_key": bs.privateKey})
	report := []byte(`{"state":"running"}`)
	octo := []string{"Content-Type", "application/json", "Cookie", bs.octo.cookie(), "X-CSRF-Token", bs.octo.csrf}
	const wrong = "fl_wrong_0123456789"
	// An id over DynamoDB's key limit is refused before the store looks.
	tokenNotFound := func(id string) string {
		if len(id) > 1024 {
			return "the id is too long"
		}
		return "has no api token"
	}

	cases := []badInputCase{
		{name: "PUT follow", method: "PUT", path: v1 + "/follow", header: tok, status: 405, msg: "not allowed"},
		{name: "GET webhook-secret/rotate", method: "GET", path: v2 + "/webhook-secret/rotate", header: tok, status: 405, msg: "not allowed"},
		{name: "POST settings", method: "POST", path: v2 + "/settings", header: js(), body: settings, status: 405, msg: "not allowed"},
		{name: "DELETE pipeline list", method: "DELETE", path: v2 + "/pipeline", header: tok, status: 405, msg: "not allowed"},
		{name: "PUT deliveries", method: "PUT", path: v2 + "/deliveries", header: tok, status: 405, msg: "not allowed"},
		{name: "GET delivery retry", method: "GET", path: v2 + "/deliveries/x/retry", header: tok, status: 405, msg: "not allowed"},
		{name: "POST pipeline", method: "POST", path: pl, header: tok, status: 405, msg: "not allowed"},
		{name: "POST user/repos", method: "POST", path: "/api/v1.1/user/repos", header: tok, status: 405, msg: "not allowed"},
		{name: "DELETE projects", method: "DELETE", path: "/api/v1.1/projects", header: tok, status: 405, msg: "not allowed"},
		{name: "PUT checkout-key", method: "PUT", path: v2 + "/checkout-key", header: tok, status: 405, msg: "not allowed"},
		{name: "POST checkout-key/{fingerprint}", method: "POST", path: v1 + "/checkout-key/" + bs.deployFP, header: tok, status: 405, msg: "not allowed"},
		{name: "PUT ssh-key", method: "PUT", path: v1 + "/ssh-key", header: tok, status: 405, msg: "not allowed"},
		{name: "POST me", method: "POST", path: "/api/v2/me", header: tok, status: 405, msg: "not allowed"},
		{name: "GET runner-token", method: "GET", path: pl + "/runner-token", header: tok, status: 405, msg: "not allowed"},
		{name: "POST checkout", method: "POST", path: pl + "/checkout", header: tok, status: 405, msg: "not allowed"},
		{name: "GET status", method: "GET", path: pl + "/status", header: tok, status: 405, msg: "not allowed"},
		{name: "POST org-access", method: "POST", path: "/api/v2/org-access", header: tok, status: 405, msg: "not allowed"},
		{name: "GET org-access/check", method: "GET", path: "/api/v2/org-access/check", header: tok, status: 405, msg: "not allowed"},
		{name: "PUT me/tokens", method: "PUT", path: "/api/v2/me/tokens", header: octo, status: 405, msg: "not allowed"},
		{name: "GET me/tokens/{id}", method: "GET", path: "/api/v2/me/tokens/" + bs.tokenID, header: []string{"Cookie", bs.octo.cookie()}, status: 405, msg: "not allowed"},
		{name: "GET logout", method: "GET", path: "/logout", header: []string{"Cookie", bs.envA.cookie()}, status: 405, msg: "not allowed"},

		{name: "no token", method: "PATCH", path: v2 + "/settings", header: []string{"Content-Type", "application/json"}, body: settings, status: 401, msg: "missing API token"},
		{name: "wrong token", method: "PATCH", path: v2 + "/settings", header: []string{"Content-Type", "application/json", "Circle-Token", wrong}, body: settings, status: 401, msg: "invalid API token"},
		{name: "two tokens, the right one first", method: "PATCH", path: v2 + "/settings", header: js("Circle-Token", wrong), body: settings, status: 400, msg: "one Circle-Token"},
		{name: "two tokens, the right one second", method: "PATCH", path: v2 + "/settings", header: []string{"Content-Type", "application/json", "Circle-Token", wrong, "Circle-Token", SampleAPIToken}, body: settings, status: 400, msg: "one Circle-Token"},
		{name: "two circle-token parameters", method: "PATCH", path: v2 + "/settings?circle-token=" + SampleAPIToken + "&circle-token=x", header: []string{"Content-Type", "application/json"}, body: settings, status: 400, msg: "one Circle-Token"},
		{name: "two tokens on a status report", method: "POST", path: pl + "/status", header: js("Circle-Token", wrong), body: report, status: 400, msg: "one Circle-Token"},
		{name: "made-up executor token on a status report", method: "POST", path: pl + "/status", header: []string{"Content-Type", "application/json", "Circle-Token", "fle_0123456789abcdef"}, body: report, status: 401, msg: "invalid or expired executor token"},
		{name: "status report with the session cookie only", method: "POST", path: pl + "/status", header: []string{"Content-Type", "application/json", "Cookie", bs.envA.cookie(), "X-CSRF-Token", bs.envA.csrf}, body: report, status: 401, msg: "missing token"},

		{name: "settings body over 64 KiB", method: "PATCH", path: v2 + "/settings", header: js(), body: badInputPad("advanced", 64<<10+1), status: 413, msg: "limit"},
		{name: "checkout-key body over 4 KiB", method: "POST", path: v2 + "/checkout-key", header: js(), body: badInputPad("type", 4<<10+1), status: 413, msg: "limit"},
		{name: "ssh-key body over its limit", method: "POST", path: v1 + "/ssh-key", header: js(), body: badInputPad("private_key", 2*sshkeys.MaxKeySize+4<<10+1), status: 413, msg: "limit"},
		{name: "ssh-key delete body over 4 KiB", method: "DELETE", path: v1 + "/ssh-key", header: js(), body: badInputPad("fingerprint", 4<<10+1), status: 413, msg: "limit"},
		{name: "status description over the 64 KiB body limit", method: "POST", path: pl + "/status", header: js(), body: badInputPad("description", 64<<10+1), status: 413, msg: "limit"},
		{name: "org-access check body over 4 KiB", method: "POST", path: "/api/v2/org-access/check", header: js(), body: badInputPad("org", 4<<10+1), status: 413, msg: "limit"},
		{name: "token body over 4 KiB", method: "POST", path: "/api/v2/me/tokens", header: octo, body: badInputPad("label", 4<<10+1), status: 413, msg: "limit"},

		{name: "settings truncated JSON", method: "PATCH", path: v2 + "/settings", header: js(), body: settings[:len(settings)-2], status: 400, msg: "invalid JSON"},
		{name: "settings empty body", method: "PATCH", path: v2 + "/settings", header: js(), body: []byte{}, status: 400, msg: "empty body"},
		{name: "ssh-key truncated JSON", method: "POST", path: v1 + "/ssh-key", header: js(), body: sshBody[:len(sshBody)/2], status: 400, msg: "invalid JSON"},
		{name: "status truncated JSON", method: "POST", path: pl + "/status", header: js(), body: report[:8], status: 400, msg: "invalid JSON"},
		{name: "org-access check truncated JSON", method: "POST", path: "/api/v2/org-access/check", header: js(), body: []byte(`{"org":`), status: 400, msg: "invalid JSON"},
		{name: "checkout-key truncated JSON", method: "POST", path: v2 + "/checkout-key", header: js(), body: []byte(`{"type":"deploy-`), status: 400, msg: "invalid JSON"},
		{name: "token truncated JSON", method: "POST", path: "/api/v2/me/tokens", header: octo, body: []byte(`{"label":"x"`), status: 400, msg: "invalid JSON"},

		{name: "ssh-key 100,000 nested arrays", method: "POST", path: v1 + "/ssh-key", header: js(), body: []byte(strings.Repeat("[", 100000)), status: 400, msg: "exceeded max depth"},
		{name: "settings 20,000 nested arrays", method: "PATCH", path: v2 + "/settings", header: js(), body: []byte(`{"advanced":` + strings.Repeat("[", 20000)), status: 400, msg: "exceeded max depth"},
		{name: "status 12,000 nested objects", method: "POST", path: pl + "/status", header: js(), body: []byte(strings.Repeat(`{"a":`, 12000)), status: 400, msg: "exceeded max depth"},
		{name: "settings 100,000 nested arrays (over the limit)", method: "PATCH", path: v2 + "/settings", header: js(), body: []byte(strings.Repeat("[", 100000)), status: 413, msg: "limit"},

		{name: "settings as text/plain", method: "PATCH", path: v2 + "/settings", header: badInputWith(js(), "Content-Type", "text/plain"), body: settings, status: 400, msg: "Content-Type must be application/json"},
		{name: "settings as a form", method: "PATCH", path: v2 + "/settings", header: badInputWith(js(), "Content-Type", "application/x-www-form-urlencoded"), body: settings, status: 400, msg: "Content-Type must be application/json"},
		{name: "ssh-key as multipart", method: "POST", path: v1 + "/ssh-key", header: badInputWith(js(), "Content-Type", "multipart/form-data; boundary=x"), body: sshBody, status: 400, msg: "Content-Type must be application/json"},
		{name: "status as text/plain", method: "POST", path: pl + "/status", header: badInputWith(js(), "Content-Type", "text/plain"), body: report, status: 400, msg: "Content-Type must be application/json"},
		{name: "checkout-key as XML", method: "POST", path: v2 + "/checkout-key", header: badInputWith(js(), "Content-Type", "application/xml"), body: []byte(`{"type":"deploy-key"}`), status: 400, msg: "Content-Type must be application/json"},
		{name: "org-access check as text/plain", method: "POST", path: "/api/v2/org-access/check", header: badInputWith(js(), "Content-Type", "text/plain"), body: []byte(`{"org":"gh/octo-org"}`), status: 400, msg: "Content-Type must be application/json"},
		{name: "token as text/plain", method: "POST", path: "/api/v2/me/tokens", header: badInputWith(octo, "Content-Type", "text/plain"), body: []byte(`{"label":"x"}`), status: 400, msg: "Content-Type must be application/json"},

		{name: "token label of 101 characters", method: "POST", path: "/api/v2/me/tokens", header: octo, body: []byte(`{"label":"` + strings.Repeat("é", 101) + `"}`), status: 400, msg: "label"},
		{name: "token label of two lines", method: "POST", path: "/api/v2/me/tokens", header: octo, body: []byte(`{"label":"a\nb"}`), status: 400, msg: "label"},
		{name: "ssh-key hostname of 254 characters", method: "POST", path: v1 + "/ssh-key", header: js(), body: badInputJSONOf(map[string]string{"hostname": strings.Repeat("a.", 127), "private_key": bs.privateKey}), status: 400, msg: "invalid hostname"},
		{name: "ssh-key hostname with fullwidth dots", method: "POST", path: v1 + "/ssh-key", header: js(), body: badInputJSONOf(map[string]string{"hostname": "git．example．com", "private_key": bs.privateKey}), status: 400, msg: "invalid hostname"},
		{name: "ssh-key hostname with a NUL", method: "POST", path: v1 + "/ssh-key", header: js(), body: badInputJSONOf(map[string]string{"hostname": "git.example.com\x00", "private_key": bs.privateKey}), status: 400, msg: "invalid hostname"},
		{name: "ssh-key hostname ../..", method: "POST", path: v1 + "/ssh-key", header: js(), body: badInputJSONOf(map[string]string{"hostname": "../..", "private_key": bs.privateKey}), status: 400, msg: "invalid hostname"},
		{name: "ssh-key private key not a key", method: "POST", path: v1 + "/ssh-key", header: js(), body: badInputJSONOf(map[string]string{"hostname": "git.example.com", "private_key": strings.Repeat("A", 60000)}), status: 400, msg: "not a PEM-encoded private key"},
		{name: "status target_url of 2049 characters", method: "POST", path: pl + "/status", header: js(), body: badInputJSONOf(map[string]string{"state": "running", "target_url": "https://ci.example.com/" + strings.Repeat("a", 2049-23)}), status: 400, msg: "target_url"},
		{name: "status target_url javascript:", method: "POST", path: pl + "/status", header: js(), body: []byte(`{"state":"running","target_url":"javascript:alert(1)"}`), status: 400, msg: "target_url"},
		{name: "status workflow of 60,000 characters", method: "POST", path: pl + "/status", header: js(), body: badInputJSONOf(map[string]string{"state": "running", "workflow": strings.Repeat("w", 60000)}), status: 400, msg: "has no workflow"},
		{name: "status state unknown", method: "POST", path: pl + "/status", header: js(), body: []byte(`{"state":"running\u202e"}`), status: 400, msg: "invalid state"},
		{name: "org-access check org ../..", method: "POST", path: "/api/v2/org-access/check", header: js(), body: []byte(`{"org":"gh/../.."}`), status: 400, msg: "want vcs/org"},
		{name: "org-access check project of 4000 characters", method: "POST", path: "/api/v2/org-access/check", header: js(), body: badInputJSONOf(map[string]string{"project": "gh/octo-org/" + strings.Repeat("r", 4000)}), status: 400, msg: "invalid repository"},
		{name: "settings branch pattern that does not compile", method: "PATCH", path: v2 + "/settings", header: js(), body: []byte(`{"advanced":{"pr_only_branch_overrides":["/(/"]}}`), status: 400, msg: "regular expression"},
		{name: "settings unknown field", method: "PATCH", path: v2 + "/settings", header: js(), body: []byte(`{"advanced":{"build_prs_only":true,"build_everything":true}}`), status: 400, msg: "unknown field"},
		{name: "org-access list org ../..", method: "GET", path: "/api/v2/org-access?org=gh/..%2F..", header: tok, status: 400, msg: "want vcs/org"},
	}
	for _, tr := range badInputTricks {
		cases = append(cases,
			badInputCase{name: "follow, org " + tr.name, method: "POST", path: "/api/v1.1/project/gh/" + tr.segment + "/hello-world/follow", header: tok, status: 400, msg: "invalid repository"},
			badInputCase{name: "settings, repo " + tr.name, method: "PATCH", path: "/api/v2/project/gh/octo-org/" + tr.segment + "/settings", header: js(), body: settings, status: 400, msg: "invalid repository"},
			badInputCase{name: "ssh-key, repo " + tr.name, method: "POST", path: "/api/v1.1/project/gh/octo-org/" + tr.segment + "/ssh-key", header: js(), body: sshBody, status: 400, msg: "invalid repository"},
			badInputCase{name: "delete checkout-key, fingerprint " + tr.name, method: "DELETE", path: v2 + "/checkout-key/" + tr.segment, header: tok, status: 404, msg: "no checkout key"},
			badInputCase{name: "get checkout-key, fingerprint " + tr.name, method: "GET", path: v1 + "/checkout-key/" + tr.segment, header: tok, status: 404, msg: "no checkout key"},
			badInputCase{name: "delete ssh-key, fingerprint " + tr.name, method: "DELETE", path: v1 + "/ssh-key?hostname=deploy.example.com&fingerprint=" + tr.segment, header: tok, status: 404, msg: "no SSH key"},
			badInputCase{name: "pipeline id " + tr.name, method: "GET", path: "/api/v2/pipeline/" + tr.segment, header: tok, status: 404, msg: "not found"},
			badInputCase{name: "runner-token, pipeline id " + tr.name, method: "POST", path: "/api/v2/pipeline/" + tr.segment + "/runner-token", header: tok, status: 404, msg: "not found"},
			badInputCase{name: "status, pipeline id " + tr.name, method: "POST", path: "/api/v2/pipeline/" + tr.segment + "/status", header: js(), body: report, status: 404, msg: "not found"},
			badInputCase{name: "retry, delivery id " + tr.name, method: "POST", path: v2 + "/deliveries/" + tr.segment + "/retry", header: tok, status: 404, msg: "not found"},
			badInputCase{name: "delete token, id " + tr.name, method: "DELETE", path: "/api/v2/me/tokens/" + tr.segment, header: octo, status: 404, msg: tokenNotFound(tr.segment)},
		)
	}
	cases = append(cases,
		badInputCase{name: "delete ssh-key, the right fingerprint with a right-to-left override", method: "DELETE", path: v1 + "/ssh-key", header: js(), body: []byte(`{"hostname":"deploy.example.com","fingerprint":"` + bs.sshFP + `\u202e"}`), status: 404, msg: "no SSH key"},
		badInputCase{name: "delete ssh-key, the right fingerprint for hostname ../..", method: "DELETE", path: v1 + "/ssh-key", header: js(), body: []byte(`{"hostname":"../..","fingerprint":"` + bs.sshFP + `"}`), status: 400, msg: "invalid hostname"},
		badInputCase{name: "delete checkout-key, the right fingerprint with fullwidth colons", method: "DELETE", path: v2 + "/checkout-key/" + url.PathEscape(strings.ReplaceAll(bs.deployFP, ":", "：")), header: tok, status: 404, msg: "no checkout key"},
		badInputCase{name: "delete checkout-key, the right fingerprint and a NUL", method: "DELETE", path: v2 + "/checkout-key/" + url.PathEscape(bs.deployFP) + "%00", header: tok, status: 404, msg: "no checkout key"},
		badInputCase{name: "settings, vcs unknown", method: "PATCH", path: "/api/v2/project/gitlab/octo-org/hello-world/settings", header: js(), body: settings, status: 400, msg: "gitlab"},
	)

	changes := []struct {
		name, method, path string
		body               []byte
		ss, other          badInputSession
	}{
		{"follow", "POST", v1 + "/follow", nil, bs.envA, bs.envB},
		{"unfollow", "DELETE", v1 + "/follow", nil, bs.envA, bs.envB},
		{"rotate the webhook secret", "POST", v2 + "/webhook-secret/rotate", nil, bs.envA, bs.envB},
		{"patch settings", "PATCH", v2 + "/settings", settings, bs.envA, bs.envB},
		{"retry a delivery", "POST", v2 + "/deliveries/bad-input-1/retry", nil, bs.envA, bs.envB},
		{"create a v1.1 checkout key", "POST", v1 + "/checkout-key", []byte(`{"type":"deploy-key"}`), bs.envA, bs.envB},
		{"create a v2 checkout key", "POST", v2 + "/checkout-key", []byte(`{"type":"deploy-key"}`), bs.envA, bs.envB},
		{"delete a checkout key", "DELETE", v2 + "/checkout-key/" + url.PathEscape(bs.deployFP), nil, bs.envA, bs.envB},
		{"add an SSH key", "POST", v1 + "/ssh-key", sshBody, bs.envA, bs.envB},
		{"delete an SSH key", "DELETE", v1 + "/ssh-key?hostname=deploy.example.com&fingerprint=" + url.QueryEscape(bs.sshFP), nil, bs.envA, bs.envB},
		{"mint a runner token", "POST", pl + "/runner-token", nil, bs.envA, bs.envB},
		{"check org access", "POST", "/api/v2/org-access/check", nil, bs.envA, bs.envB},
		{"create a personal token", "POST", "/api/v2/me/tokens", []byte(`{"label":"ci"}`), bs.octo, bs.mona},
		{"revoke a personal token", "DELETE", "/api/v2/me/tokens/" + bs.tokenID, nil, bs.octo, bs.mona},
		{"log out", "POST", "/logout", nil, bs.envA, bs.envB},
	}
	for _, c := range changes {
		h := []string{"Cookie", c.ss.cookie()}
		if c.body != nil {
			h = append(h, "Content-Type", "application/json")
		}
		cases = append(cases,
			badInputCase{name: c.name + " without a CSRF token", method: c.method, path: c.path, header: h, body: c.body, status: 403, msg: "CSRF"},
			badInputCase{name: c.name + " with another session's CSRF token", method: c.method, path: c.path, header: badInputPlus(h, "X-CSRF-Token", c.other.csrf), body: c.body, status: 403, msg: "CSRF"},
			badInputCase{name: c.name + " with another session's CSRF token in a form field", method: c.method, path: c.path,
				header: []string{"Cookie", c.ss.cookie(), "Content-Type", "application/x-www-form-urlencoded"}, body: []byte("csrf_token=" + url.QueryEscape(c.other.csrf)), status: 403, msg: "CSRF"},
		)
	}
	return append(cases,
		badInputCase{name: "log out with a token in the query and no CSRF token", method: "POST", path: "/logout?circle-token=" + SampleAPIToken, header: []string{"Cookie", bs.envA.cookie()}, status: 403, msg: "CSRF"},
		badInputCase{name: "log out without a session", method: "POST", path: "/logout", status: 401, msg: "not signed in"},
	)
}

func (bs *badInputStack) badgeCases() []badInputCase {
	private := "/gh/octo-org/other.svg"
	cases := []badInputCase{
		{name: "POST", method: "POST", path: "/gh/octo-org/hello-world.svg", status: 405, msg: "not allowed"},
		{name: "DELETE a branch badge", method: "DELETE", path: "/bb/octo-org/hello-world/tree/master.svg", header: []string{"Circle-Token", SampleAPIToken}, status: 405, msg: "not allowed"},
		{name: "private project, wrong token", method: "GET", path: private, header: []string{"Circle-Token", "fl_wrong_0123456789"}, status: 404, msg: "not found"},
		{name: "private project, two tokens, the right one first", method: "GET", path: private, header: []string{"Circle-Token", SampleAPIToken, "Circle-Token", "fl_wrong_0123456789"}, status: 400, msg: "one Circle-Token"},
		{name: "private project, two circle-token parameters", method: "GET", path: private + "?circle-token=" + SampleAPIToken + "&circle-token=x", status: 400, msg: "one Circle-Token"},
		{name: "no repository", method: "GET", path: "/gh/octo-org.svg", status: 404, msg: "no route"},
	}
	for _, tr := range badInputTricks {
		cases = append(cases,
			badInputCase{name: "org " + tr.name, method: "GET", path: "/gh/" + tr.segment + "/hello-world.svg", status: 404, msg: "not found"},
			badInputCase{name: "repo " + tr.name, method: "GET", path: "/bb/octo-org/" + tr.segment + "/tree/master.svg", header: []string{"Circle-Token", SampleAPIToken}, status: 404, msg: "not found"},
		)
	}
	return cases
}

func (bs *badInputStack) pageCases() []badInputCase {
	project := "/projects/gh/" + SampleOrg + "/" + SampleRepo
	form := func(ss badInputSession, fields ...string) ([]string, []byte) {
		v := url.Values{}
		for i := 0; i+1 < len(fields); i += 2 {
			v.Add(fields[i], fields[i+1])
		}
		return []string{"Cookie", ss.cookie(), "Content-Type", "application/x-www-form-urlencoded"}, []byte(v.Encode())
	}
	withCSRF := func(fields ...string) ([]string, []byte) {
		return form(bs.envA, append([]string{"csrf_token", bs.envA.csrf}, fields...)...)
	}
	set := func(body []byte, field, value string) []byte {
		v, err := url.ParseQuery(string(body))
		if err != nil {
			panic(err)
		}
		v.Set(field, value)
		return []byte(v.Encode())
	}
	h, settingsForm := withCSRF("build_prs_only", "on")
	cookie := []string{"Cookie", bs.envA.cookie()}
	sshH, sshForm := withCSRF("hostname", "git.example.com", "private_key", bs.privateKey)
	hugeForm := append([]byte("csrf_token="+url.QueryEscape(bs.envA.csrf)+"&hostname=x&private_key="), strings.Repeat("A", 3*sshkeys.MaxKeySize+16<<10)...)
	login := []string{"Content-Type", "application/x-www-form-urlencoded", "Cookie", "forgelink_login_csrf=same"}

	cases := []badInputCase{
		{name: "PUT /", method: "PUT", path: "/", header: cookie, status: 405, msg: "This page is not sent a PUT request"},
		{name: "DELETE a project page", method: "DELETE", path: project, header: cookie, status: 405, msg: "This page is not sent a DELETE request"},
		{name: "PUT a settings form", method: "PUT", path: project + "/settings", header: h, body: settingsForm, status: 405, msg: "This page is not sent a PUT request"},
		{name: "POST a pipeline page", method: "POST", path: "/pipelines/" + SamplePipelineID, header: h, body: settingsForm, status: 405, msg: "This page is not sent a POST request"},
		{name: "POST org-access", method: "POST", path: "/org-access", header: h, body: settingsForm, status: 405, msg: "This page is not sent a POST request"},
		{name: "DELETE /login", method: "DELETE", path: "/login", status: 405, msg: "This page is not sent a DELETE request"},
		{name: "POST /login/github", method: "POST", path: "/login/github", status: 405, msg: "not allowed"},
		{name: "POST /login/github/callback", method: "POST", path: "/login/github/callback?code=x&state=y", status: 405, msg: "not allowed"},

		{name: "ssh key form over the limit", method: "POST", path: project + "/ssh-keys", header: h, body: hugeForm, status: 413, msg: "larger than forgelink accepts"},
		{name: "settings form as JSON", method: "POST", path: project + "/settings", header: badInputWith(h, "Content-Type", "application/json"), body: badInputJSONOf(map[string]string{"csrf_token": bs.envA.csrf, "build_prs_only": "on"}), status: 415, msg: "application/x-www-form-urlencoded"},
		{name: "settings form as multipart", method: "POST", path: project + "/settings", header: badInputWith(h, "Content-Type", "multipart/form-data; boundary=x"),
			body: []byte("--x\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" + bs.envA.csrf + "\r\n--x--\r\n"), status: 415, msg: "application/x-www-form-urlencoded"},
		{name: "settings form from another site", method: "POST", path: project + "/settings", header: badInputPlus(h, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"), body: settingsForm, status: 403, msg: "sent from another site"},

		{name: "ssh key hostname of 254 characters", method: "POST", path: project + "/ssh-keys", header: sshH, body: set(sshForm, "hostname", strings.Repeat("a.", 127)), status: 400, msg: "Invalid hostname"},
		{name: "ssh key hostname with a right-to-left override", method: "POST", path: project + "/ssh-keys", header: sshH, body: set(sshForm, "hostname", "git\u202emoc.example.com"), status: 400, msg: "Invalid hostname"},
		{name: "remove a checkout key, fingerprint ../..", method: "POST", path: project + "/checkout-keys/remove", header: h, body: set(settingsForm, "fingerprint", "../../"+bs.deployFP), status: 404, msg: "checkout key"},
		{name: "remove an SSH key, the right fingerprint with a NUL", method: "POST", path: project + "/ssh-keys/remove", header: h,
			body: set(set(settingsForm, "fingerprint", bs.sshFP+"\x00"), "hostname", "deploy.example.com"), status: 404, msg: "no SSH key"},
		{name: "remove an SSH key, hostname of 4000 characters", method: "POST", path: project + "/ssh-keys/remove", header: h,
			body: set(set(settingsForm, "fingerprint", bs.sshFP), "hostname", strings.Repeat("h", 4000)), status: 400, msg: "Invalid hostname"},
		{name: "add a checkout key of an unknown type", method: "POST", path: project + "/checkout-keys", header: h, body: set(settingsForm, "type", "root-key"), status: 400, msg: "Add Deploy Key"},

		{name: "sign in without the form's cookie", method: "POST", path: "/login", header: []string{"Content-Type", "application/x-www-form-urlencoded"}, body: []byte("csrf_token=x&token=" + SampleAPIToken), status: 403, msg: "expired or came from another site"},
		{name: "sign in with another form's token", method: "POST", path: "/login", header: badInputWith(login, "Cookie", "forgelink_login_csrf=mine"), body: []byte("csrf_token=theirs&token=" + SampleAPIToken), status: 403, msg: "expired or came from another site"},
		{name: "sign in with a wrong token", method: "POST", path: "/login", header: login, body: []byte("csrf_token=same&token=fl_wrong_0123456789"), status: 401, msg: "not this forgelink's API token"},
		{name: "sign in with a personal token", method: "POST", path: "/login", header: login, body: []byte("csrf_token=same&token=" + bs.personalToken), status: 401, msg: "not this forgelink's API token"},
		{name: "sign in with no token", method: "POST", path: "/login", header: login, body: []byte("csrf_token=same"), status: 400, msg: "Enter the API token"},
		{name: "sign in with a body over 8 KiB", method: "POST", path: "/login", header: login, body: []byte("csrf_token=same&token=" + strings.Repeat("t", 8<<10)), status: 413, msg: "larger than"},
		{name: "sign in as JSON", method: "POST", path: "/login", header: badInputWith(login, "Content-Type", "application/json"), body: []byte(`{"csrf_token":"same","token":"` + SampleAPIToken + `"}`), status: 415, msg: "application/x-www-form-urlencoded"},
		{name: "sign in with an unknown VCS", method: "GET", path: "/login/gitlab", status: 404, msg: "not configured"},
		{name: "sign in with GitHub, not configured", method: "GET", path: "/login/github", status: 404, msg: "not configured"},
		{name: "sign-in callback, not configured", method: "GET", path: "/login/github/callback?code=x&state=" + strings.Repeat("s", 4000), status: 404, msg: "not configured"},
	}
	for _, action := range []string{"follow", "unfollow", "checkout-keys", "checkout-keys/remove", "ssh-keys", "ssh-keys/remove", "settings"} {
		fields := []string{"type", "deploy-key", "fingerprint", bs.deployFP, "hostname", "git.example.com", "private_key", bs.privateKey, "build_prs_only", "on"}
		mh, mb := form(bs.envA, fields...)
		fh, fb := form(bs.envA, append([]string{"csrf_token", bs.envB.csrf}, fields...)...)
		const refused = "security token is missing or out of date"
		cases = append(cases,
			badInputCase{name: action + " form without a CSRF token", method: "POST", path: project + "/" + action, header: mh, body: mb, status: 403, msg: refused},
			badInputCase{name: action + " form with another session's CSRF token", method: "POST", path: project + "/" + action, header: fh, body: fb, status: 403, msg: refused},
			badInputCase{name: action + " form with the CSRF token in a header only", method: "POST", path: project + "/" + action, header: badInputPlus(mh, "X-CSRF-Token", bs.envA.csrf), body: mb, status: 403, msg: refused},
		)
	}
	for _, tr := range badInputTricks {
		cases = append(cases,
			badInputCase{name: "project page, org " + tr.name, method: "GET", path: "/projects/gh/" + tr.segment + "/hello-world", header: cookie, status: 404, msg: "There is no page here"},
			badInputCase{name: "settings form, repo " + tr.name, method: "POST", path: "/projects/gh/octo-org/" + tr.segment + "/settings", header: h, body: settingsForm, status: 404, msg: "There is no page here"},
			badInputCase{name: "pipeline page, id " + tr.name, method: "GET", path: "/pipelines/" + tr.segment, header: cookie, status: 404, msg: "There is no pipeline"},
		)
	}
	return cases
}

// controls are right requests of the kinds the cases spoil.
func (bs *badInputStack) controls(t *testing.T) []badInputCase {
	t.Helper()
	js := []string{"Content-Type", "application/json", "Circle-Token", SampleAPIToken}
	slugA := "gh/" + SampleOrg + "/" + SampleRepo
	gh, bb := badInputPush(t, "github"), badInputPush(t, "bitbucket")
	return []badInputCase{
		{name: "github delivery", method: "POST", path: bs.hook["github"], body: gh, status: 202,
			header: []string{"Content-Type", "application/json", "X-GitHub-Event", "push", "X-GitHub-Delivery", "control-1", "X-Hub-Signature-256", badInputSign(SampleSecret, gh)}},
		{name: "bitbucket delivery", method: "POST", path: bs.hook["bitbucket"], body: bb, status: 202,
			header: []string{"Content-Type", "application/json", "X-Event-Key", "repo:push", "X-Request-UUID", "control-2", "X-Hub-Signature", badInputSign(SampleSecret, bb)}},
		{name: "settings with the API token", method: "PATCH", path: "/api/v2/project/" + slugA + "/settings", header: js, body: []byte(`{"advanced":{"build_prs_only":true}}`), status: 200},
		{name: "settings with the session and its CSRF token", method: "PATCH", path: "/api/v2/project/" + slugA + "/settings",
			header: []string{"Content-Type", "application/json", "Cookie", bs.envA.cookie(), "X-CSRF-Token", bs.envA.csrf}, body: []byte(`{"advanced":{"build_prs_only":false}}`), status: 200},
		{name: "ssh key", method: "POST", path: "/api/v1.1/project/" + slugA + "/ssh-key", header: js, body: badInputJSONOf(map[string]string{"hostname": "git.example.com", "private_key": bs.privateKey}), status: 201},
		{name: "status report", method: "POST", path: "/api/v2/pipeline/" + SamplePipelineID + "/status", header: js, body: []byte(`{"state":"running"}`), status: 200},
		{name: "personal token", method: "POST", path: "/api/v2/me/tokens", header: []string{"Content-Type", "application/json", "Cookie", bs.octo.cookie(), "X-CSRF-Token", bs.octo.csrf}, body: []byte(`{"label":"` + strings.Repeat("é", 100) + `"}`), status: 201},
		{name: "settings form", method: "POST", path: "/projects/" + slugA + "/settings", header: []string{"Content-Type", "application/x-www-form-urlencoded", "Cookie", bs.envA.cookie()},
			body: []byte(url.Values{"csrf_token": {bs.envA.csrf}, "build_prs_only": {"on"}}.Encode()), status: 303},
		{name: "log out with the CSRF token", method: "POST", path: "/logout", header: []string{"Cookie", bs.envB.cookie(), "X-CSRF-Token", bs.envB.csrf}, status: 303},
	}
}
