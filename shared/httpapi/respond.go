package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"forgelink/shared/forgelink"
)

// statusOf maps error kinds to HTTP status codes, in one place.
var statusOf = map[forgelink.Kind]int{
	forgelink.Invalid:      http.StatusBadRequest,
	forgelink.NotFound:     http.StatusNotFound,
	forgelink.Conflict:     http.StatusConflict,
	forgelink.Unauthorized: http.StatusUnauthorized,
	forgelink.Forbidden:    http.StatusForbidden,
	forgelink.TooLarge:     http.StatusRequestEntityTooLarge,
	forgelink.Transient:    http.StatusServiceUnavailable,
	forgelink.Upstream:     http.StatusBadGateway,
	forgelink.Internal:     http.StatusInternalServerError,
}

// writeJSON answers v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers {"message": ...} with the status of err's kind. An
// Internal error (or one without a kind) is logged and answered with a
// generic message, never err.Error().
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	kind := forgelink.KindOf(err)
	status := statusOf[kind]
	msg := forgelink.MessageOf(err)
	if kind == forgelink.Internal || msg == "" {
		msg = "internal error"
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	} else {
		log.InfoContext(r.Context(), "request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, status, map[string]string{"message": msg})
}

// notFound answers unknown routes with forgelink's JSON error shape.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]string{"message": "no route " + r.Method + " " + r.URL.Path})
}

// methodNotAllowed answers 405 with the allowed methods.
func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": r.Method + " is not allowed here; use " + allow})
	}
}
