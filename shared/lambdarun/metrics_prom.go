//go:build !lambda.norpc

package lambdarun

import (
	"net/http"

	"forgelink/shared/metrics"
	"forgelink/shared/metrics/promexport"
)

// metricsHandler is the Prometheus exporter: container platforms (and
// anything else that builds without -tags lambda.norpc) scrape GET /metrics.
func metricsHandler() http.Handler { return promexport.Handler(metrics.Default) }
