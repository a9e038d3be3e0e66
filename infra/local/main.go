// Command local is the one-process forgelink behind `make run`: every
// route on FORGELINK_ADDR (default :8080), the embedded store and key file
// in FORGELINK_DATA (default .forgelink/), queues in-process.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"forgelink/infra/local/server"
	"forgelink/shared/config"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "forgelink:", err)
		os.Exit(2)
	}
}

// tuneGC sets the garbage collector for a long-running server with a small
// live heap (tens of MB): Go's default (GOGC=100) collects every time the
// heap doubles, a few MB here, which under load is about a tenth of the
// process's CPU. GOGC=400 collects a fifth as often; the 512 MiB soft limit
// makes it collect harder before the heap grows past that. GOGC and
// GOMEMLIMIT, when set, win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(512 << 20)
	}
}

func run() error {
	tuneGC()
	cfg, err := config.FromEnv(os.LookupEnv)
	if err != nil {
		return err
	}
	log := cfg.Logger()
	srv, err := server.New(cfg, log, server.Options{})
	if err != nil {
		return err
	}
	defer srv.Close()

	hs := &http.Server{Addr: cfg.Addr, Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()

	fmt.Printf("forgelink is running\n  URL:       %s\n  API token: %s\n  data:      %s\n", cfg.PublicURL, srv.Token, cfg.DataDir)
	fmt.Printf("  try:       curl -H 'Circle-Token: %s' -X POST %s/api/v1.1/project/gh/ORG/REPO/follow\n", srv.Token, cfg.PublicURL)
	select {
	case err := <-errc:
		return fmt.Errorf("FORGELINK_ADDR: listen %s: %w", cfg.Addr, err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
