//go:build lambda.norpc

package lambdarun

import "net/http"

// metricsHandler is nil in the Lambda build: there the metrics go out as
// EMF lines, and the Prometheus client (and its protobuf runtime) is not
// linked into the bootstraps.
func metricsHandler() http.Handler { return nil }
