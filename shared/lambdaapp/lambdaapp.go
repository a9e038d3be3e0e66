// Package lambdaapp wires forgelink's functions for AWS: configuration,
// AWS clients built once at cold start, and serving an http.Handler either
// as a Lambda function (behind API Gateway) or, outside Lambda, as a plain
// HTTP server for container platforms.
//
//	func main() {
//		lambdaapp.Main(func(ctx context.Context, app *lambdaapp.App) (http.Handler, error) {
//			return app.IntakeHandler(), nil
//		})
//	}
package lambdaapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"forgelink/shared/bitbucket"
	"forgelink/shared/config"
	"forgelink/shared/dynamo"
	"forgelink/shared/follow"
	"forgelink/shared/forgelink"
	"forgelink/shared/github"
	"forgelink/shared/queue"
	"forgelink/shared/sealer"
)

// App holds what every function shares: configuration, logger, and the
// AWS-backed store, sealer and queue.
type App struct {
	Config    *config.Config
	Log       *slog.Logger
	Store     *dynamo.Store
	Sealer    forgelink.Sealer
	Queue     forgelink.Queue
	Forges    follow.Forges
	Readers   func(ctx context.Context, p *forgelink.Project) (forgelink.RepoReader, error)
	SQSClient *sqs.Client
}

// NewLogger returns the JSON logger every function uses.
func NewLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// New builds the App from cfg. need names the AWS variables this function
// cannot run without; a missing one stops start-up naming it.
func New(ctx context.Context, cfg *config.Config, need ...string) (*App, error) {
	if err := cfg.RequireAWS(need...); err != nil {
		return nil, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	app := &App{Config: cfg, Log: NewLogger(cfg.LogLevel), Forges: EnvForges(cfg, nil)}
	app.Readers = ReadersFrom(app.Forges)
	ddb, err := dynamo.NewClient(ctx, cfg.DynamoDBEndpoint)
	if err != nil {
		return nil, err
	}
	app.Store = dynamo.New(ddb, dynamo.Tables{Projects: cfg.ProjectsTable, Deliveries: cfg.DeliveriesTable, Pipelines: cfg.PipelinesTable, Keys: cfg.KeysTable})
	app.Sealer = sealer.NewEnvelope(sealer.NewKMS(kms.NewFromConfig(awsCfg), cfg.KMSKeyID))
	app.SQSClient = sqs.NewFromConfig(awsCfg)
	if cfg.IntakeQueueURL != "" {
		app.Queue = queue.NewSQS(app.SQSClient, cfg.IntakeQueueURL)
	}
	return app, nil
}

// EnvForges returns Forges authenticated with the tokens in cfg
// (GITHUB_TOKEN, BITBUCKET_TOKEN): local mode's one user.
func EnvForges(cfg *config.Config, hc *http.Client) follow.Forges {
	if hc == nil {
		hc = &http.Client{Timeout: 20 * time.Second}
	}
	return func(ctx context.Context, vcs forgelink.VCS) (forgelink.Forge, error) {
		switch vcs {
		case forgelink.GitHub:
			if cfg.GitHubToken == "" {
				return nil, forgelink.Errorf(forgelink.Forbidden, "no GitHub token: set GITHUB_TOKEN")
			}
			return github.NewForge(cfg.GitHubAPIURL, cfg.GitHubToken, hc)
		case forgelink.Bitbucket:
			if cfg.BitbucketTok == "" {
				return nil, forgelink.Errorf(forgelink.Forbidden, "no Bitbucket token: set BITBUCKET_TOKEN")
			}
			return bitbucket.NewForge(cfg.BitbucketURL, cfg.BitbucketTok, hc)
		}
		return nil, forgelink.Errorf(forgelink.Invalid, "unknown vcs %q", vcs)
	}
}

// ReadersFrom returns, for a project, the RepoReader of its VCS.
func ReadersFrom(forges follow.Forges) func(ctx context.Context, p *forgelink.Project) (forgelink.RepoReader, error) {
	return func(ctx context.Context, p *forgelink.Project) (forgelink.RepoReader, error) {
		f, err := forges(ctx, p.Slug.VCS)
		if err != nil {
			return nil, err
		}
		r, ok := f.(forgelink.RepoReader)
		if !ok {
			return nil, forgelink.Errorf(forgelink.Internal, "%s adapter cannot read repositories", p.Slug.VCS)
		}
		return r, nil
	}
}

// MainSQS runs a queue-consumer function: SQS batches with
// ReportBatchItemFailures, so only failed messages are delivered again.
func MainSQS(need []string, build func(ctx context.Context, app *App) (queue.Consumer, error)) {
	app := startup(need)
	consume, err := build(context.Background(), app)
	if err != nil {
		fail(err)
	}
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") == "" {
		fail(fmt.Errorf("this queue consumer runs under Lambda (or the Runtime Interface Emulator: make invoke); locally, make run consumes the queue in-process"))
	}
	lambda.Start(queue.SQSHandler(consume, app.Log))
}

// Main runs an HTTP function: it reads the configuration, builds the App
// and the handler once (cold start), then serves. A bad configuration stops
// start-up with one line naming the variable.
func Main(need []string, build func(ctx context.Context, app *App) (http.Handler, error)) {
	app := startup(need)
	h, err := build(context.Background(), app)
	if err != nil {
		fail(err)
	}
	if err := Serve(h, app.Config.Addr, app.Log); err != nil {
		fail(err)
	}
}

// startup reads the configuration and builds the App, or exits with one
// line saying what is wrong.
func startup(need []string) *App {
	cfg, err := config.FromEnv(os.LookupEnv)
	if err != nil {
		fail(err)
	}
	app, err := New(context.Background(), cfg, need...)
	if err != nil {
		fail(err)
	}
	return app
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "forgelink:", err)
	os.Exit(2)
}

// Serve runs h as a Lambda function when the Lambda runtime API is present
// (AWS, sam local, the Runtime Interface Emulator), and otherwise listens
// on addr until SIGINT/SIGTERM, as on a container platform.
func Serve(h http.Handler, addr string, log *slog.Logger) error {
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		// ProxyWithContext, not Proxy: it keeps the Lambda context on the
		// request instead of copying it into headers.
		lambda.Start(httpadapter.NewV2(h).ProxyWithContext)
		return nil
	}
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("listening", "addr", addr)
	select {
	case err := <-errc:
		return fmt.Errorf("listen %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
