// Package server is forgelink's one-process server: every HTTP route of
// every function on one listener, the queue consumers in-process, and the
// embedded bbolt store and local key file under FORGELINK_DATA. It runs the
// same handlers as the Lambda functions.
//
//	srv, err := server.New(cfg, logger)
//	if err != nil { ... }
//	defer srv.Close()
//	http.ListenAndServe(cfg.Addr, srv.Handler())
package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"forgelink/shared/accessapi"
	"forgelink/shared/bolt"
	"forgelink/shared/config"
	"forgelink/shared/follow"
	"forgelink/shared/forges"
	"forgelink/shared/httpapi"
	"forgelink/shared/intake"
	"forgelink/shared/keysvc"
	"forgelink/shared/metrics"
	"forgelink/shared/metrics/promexport"
	"forgelink/shared/orgaccess"
	"forgelink/shared/pages"
	"forgelink/shared/queue"
	"forgelink/shared/sealer"
	"forgelink/shared/signin"
	"forgelink/shared/statusapi"
	"forgelink/shared/statussvc"
	"forgelink/shared/trigger"
)

// Server is the one-process forgelink.
type Server struct {
	// Token is the API token (FORGELINK_API_TOKEN, or generated on first run
	// and kept in FORGELINK_DATA/api-token).
	Token string
	// Store, Queue, Statuses and Handoff are exposed for end-to-end tests.
	Store    *bolt.Store
	Queue    *queue.Local
	Statuses *queue.LocalStatus
	Handoff  *queue.LocalHandoff
	// Access runs org-access sweeps (on FORGELINK_SWEEP_INTERVAL's timer).
	Access *orgaccess.Service

	handler http.Handler
	stop    chan struct{}
	sweeps  sync.WaitGroup
}

// sweepEvery runs an org-access sweep every interval until Close: the
// one-process server's stand-in for the EventBridge schedule.
func (s *Server) sweepEvery(interval time.Duration, log *slog.Logger) {
	defer s.sweeps.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				select {
				case <-s.stop:
					cancel()
				case <-done:
				}
			}()
			if _, err := s.Access.Sweep(ctx, orgaccess.Scope{}); err != nil {
				log.Error("org access sweep failed", "err", err)
			}
			close(done)
			cancel()
		}
	}
}

// Options adjust the server for tests.
type Options struct {
	// HTTPClient is used for VCS API calls (default: 20s timeout).
	HTTPClient *http.Client
	// RetryBackoff is the in-process queue's first retry delay (default 1s).
	RetryBackoff time.Duration
	// MaxReceives is how often a delivery is tried before it is dead (default 5).
	MaxReceives int
	// Consume handles intake messages; default: the trigger function.
	Consume queue.Consumer
}

// New opens the data directory and builds the server.
func New(cfg *config.Config, log *slog.Logger, opts Options) (*Server, error) {
	cfg.LocalDefaults()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("FORGELINK_DATA: create %s: %w", cfg.DataDir, err)
	}
	token, err := apiToken(cfg)
	if err != nil {
		return nil, err
	}
	st, err := bolt.Open(filepath.Join(cfg.DataDir, "forgelink.db"))
	if err != nil {
		return nil, fmt.Errorf("FORGELINK_DATA: %w", err)
	}
	keys, err := sealer.OpenKeyFile(filepath.Join(cfg.DataDir, "master.key"))
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("FORGELINK_DATA: %w", err)
	}
	sl := sealer.NewEnvelope(keys)

	// Signed-in users act with their own VCS tokens; local mode's
	// environment user (the API token) with GITHUB_TOKEN / BITBUCKET_TOKEN.
	users := signin.New(cfg, st, sl, opts.HTTPClient, token)
	users.Log = log
	vcs := forges.ForUsers(cfg, opts.HTTPClient, users.Token)
	followSvc := &follow.Service{Store: st, Sealer: sl, Forges: vcs, Log: log}
	access := &orgaccess.Service{
		Store: st, Checkers: forges.Checkers(vcs), Repair: followSvc.Repair, PublicURL: cfg.PublicURL,
		GitHubWebURL: cfg.GitHubWebURL, OAuthClientID: cfg.OAuthClientID, Log: log,
	}
	keySvc := &keysvc.Service{Store: st, Keys: st, Pipelines: st, Sealer: sl, Forges: vcs, GitHubAPIURL: cfg.GitHubAPIURL, Log: log}
	statusSvc := &statussvc.Service{Store: st, Posters: forges.Posters(vcs), PublicURL: cfg.PublicURL, Access: access, Log: log}
	statuses, err := queue.NewLocalStatus(context.Background(), st, statusSvc.Post, statusSvc.GiveUp, queue.LocalOptions{
		Workers: cfg.Workers, Backoff: opts.RetryBackoff, MaxReceives: cmp.Or(opts.MaxReceives, cfg.MaxReceives), Log: log,
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("FORGELINK_DATA: %w", err)
	}
	statusSvc.Requests = statuses
	handoff := &queue.LocalHandoff{Log: log, Statuses: statuses, Runner: &queue.RunnerAccess{
		Mint: keySvc.MintPipelineTokens, PublicURL: cfg.PublicURL,
	}}
	consume, onDead := opts.Consume, queue.DeadLetterFunc(nil)
	if consume == nil {
		trig := &trigger.Service{Store: st, Readers: forges.Readers(vcs), Handoff: handoff, Access: access, Log: log}
		consume, onDead = trig.Handle, trig.RecordDead
	}
	// The delivery store is the queue's outbox: what intake accepted is
	// resumed here after any crash.
	q, err := queue.NewLocal(context.Background(), st, consume, queue.LocalOptions{
		Workers: cfg.Workers, Backoff: opts.RetryBackoff, MaxReceives: cmp.Or(opts.MaxReceives, cfg.MaxReceives), OnDead: onDead, Log: log,
	})
	if err != nil {
		statuses.Close()
		st.Close()
		return nil, fmt.Errorf("FORGELINK_DATA: %w", err)
	}

	followSvc.BeforeUnfollow = keySvc.RemoveProjectKeys
	in := &intake.Intake{Store: st, Sealer: sl, Inbox: q, Log: log}
	projects := &httpapi.Projects{
		Store:     st,
		Pipelines: st,
		Follow:    followSvc,
		Inbox:     q,
		Auth:      users,
		Authz:     users,
		PublicURL: cfg.PublicURL,
		Log:       log,
	}
	mux := http.NewServeMux()
	mux.Handle("/hooks/", in.Handler())
	keysAPI := &httpapi.Keys{
		Service: keySvc,
		Auth:    projects.Auth,
		Authz:   users,
		Log:     log,
	}
	mux.Handle("/api/", keysAPI.Handler(projects.Handler()))
	reports := &statusapi.Reports{Reporter: statusSvc, Tokens: st, Auth: projects.Auth, Authz: users, Pipelines: st, PublicURL: cfg.PublicURL, Log: log}
	mux.Handle("/api/v2/pipeline/{id}/status", reports.Handler())
	badges := (&statusapi.Badges{Projects: st, Pipelines: st, Auth: projects.Auth, Authz: users, Log: log}).Handler()
	for _, prefix := range []string{"/gh/", "/bb/", "/github/", "/bitbucket/"} {
		mux.Handle(prefix, badges)
	}
	for _, prefix := range signin.Routes {
		mux.Handle(prefix, users.Handler())
	}
	// The settings pages, signed in with the API token (or OAuth where
	// configured); the same handler the keys function serves.
	settingsPages := (&pages.Pages{
		Users: users, Store: st, Pipelines: st, Follow: followSvc, Keys: keySvc, Access: access,
		TokenSignIn: true, PublicURL: cfg.PublicURL, Log: log,
	}).Handler()
	for _, route := range pages.Routes {
		mux.Handle(route, settingsPages)
	}
	accessAPI := (&accessapi.API{Service: access, Auth: projects.Auth, Authz: users, Log: log}).Handler()
	mux.Handle("/api/v2/org-access", accessAPI)
	mux.Handle("/api/v2/org-access/check", accessAPI)
	// The Prometheus scrape, without the API token: no label holds a name,
	// an id or a secret (docs/security.md).
	mux.Handle("GET /metrics", promexport.Handler(metrics.Default))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}` + "\n"))
	})
	srv := &Server{Token: token, Store: st, Queue: q, Statuses: statuses, Handoff: handoff, Access: access, handler: mux, stop: make(chan struct{})}
	if cfg.SweepInterval > 0 {
		srv.sweeps.Add(1)
		go srv.sweepEvery(cfg.SweepInterval, log)
	}
	return srv, nil
}

// Handler serves every route.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the queues' workers after their current message (what is
// still queued is resumed on the next start) and closes the store.
func (s *Server) Close() error {
	close(s.stop)
	s.sweeps.Wait()
	s.Queue.Close()
	s.Statuses.Close()
	return s.Store.Close()
}

// apiToken returns FORGELINK_API_TOKEN, or the token kept in the data
// directory, generating it (0600) on first run.
func apiToken(cfg *config.Config) (string, error) {
	if cfg.APIToken != "" {
		return cfg.APIToken, nil
	}
	path := filepath.Join(cfg.DataDir, "api-token")
	b, err := os.ReadFile(path)
	if err == nil {
		if t := strings.TrimSpace(string(b)); len(t) >= 16 {
			return t, nil
		}
		return "", fmt.Errorf("FORGELINK_DATA: %s holds no valid token; delete it to generate a new one", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("FORGELINK_DATA: read %s: %w", path, err)
	}
	raw := make([]byte, 20)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate API token: %w", err)
	}
	t := "fl_" + hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("FORGELINK_DATA: write %s: %w", path, err)
	}
	return t, nil
}
