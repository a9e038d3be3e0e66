//go:build lambda.norpc

package lambdarun

import (
	"errors"
	"log/slog"
	"net/http"
)

// listen refuses in the Lambda build (-tags lambda.norpc), which links no
// HTTP server (about 0.3 MB of every bootstrap): it runs under Lambda or
// the Runtime Interface Emulator (make invoke). For a container platform,
// build without the tag; locally, make run serves every route.
func listen(http.Handler, string, *slog.Logger) error {
	return errors.New("this is the Lambda build (-tags lambda.norpc): it runs under Lambda or the Runtime Interface Emulator (make invoke); build without the tag to serve HTTP on FORGELINK_ADDR, or use make run")
}
