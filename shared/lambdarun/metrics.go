package lambdarun

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"forgelink/shared/metrics"
)

// emf writes metrics.Default's changes after each Lambda invocation, as
// CloudWatch embedded metric format lines on stdout (CloudWatch Logs
// extracts them).
var emf = &metrics.EMF{Registry: metrics.Default, Function: metrics.FunctionName(), Out: os.Stdout}

// flushing wraps a Lambda handler so that each invocation ends with one
// EMF line (per vcs) of the counters it moved. Lambda runs one invocation
// at a time per process, so the changes are the invocation's own.
func flushing[E, R any](h func(context.Context, E) (R, error)) func(context.Context, E) (R, error) {
	return func(ctx context.Context, ev E) (R, error) {
		defer flushMetrics()
		return h(ctx, ev)
	}
}

func flushMetrics() {
	if err := emf.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "forgelink:", err)
	}
}

// withMetrics serves GET /metrics (the Prometheus text format, without the
// API token: no label holds a name, an id or a secret) beside h, in builds
// that link the exporter (not the Lambda build, -tags lambda.norpc). Any
// other path goes to h untouched.
func withMetrics(h http.Handler) http.Handler {
	m := metricsHandler()
	if m == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			m.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
