// Package httpjson holds forgelink's JSON answers and body reading, shared
// by every HTTP function: one table from error kinds to status codes, the
// {"message": ...} error shape, and bodies read through a size limit.
//
//	var req createRequest
//	if err := httpjson.Read(w, r, 64<<10, &req, false); err != nil {
//		httpjson.Error(w, r, log, err)
//		return
//	}
//	httpjson.Write(w, http.StatusCreated, resp)
package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"strings"

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

// StatusOf returns the HTTP status code for err's kind.
func StatusOf(err error) int { return statusOf[forgelink.KindOf(err)] }

// Write answers v as JSON with the given status.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Error answers {"message": ...} with the status of err's kind. An
// Internal error (or one without a kind) is logged and answered with a
// generic message, never err.Error().
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
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
	Write(w, status, map[string]string{"message": msg})
}

// NotFound answers unknown routes with forgelink's JSON error shape.
func NotFound(w http.ResponseWriter, r *http.Request) {
	Write(w, http.StatusNotFound, map[string]string{"message": "no route " + r.Method + " " + r.URL.Path})
}

// MethodNotAllowed answers 405 with the allowed methods.
func MethodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		Write(w, http.StatusMethodNotAllowed, map[string]string{"message": r.Method + " is not allowed here; use " + allow})
	}
}

// ReadLimited reads the whole body, refusing one over limit with TooLarge
// without reading past the limit.
func ReadLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, forgelink.Errorf(forgelink.TooLarge, "body is %d bytes; the limit is %d", r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, forgelink.Errorf(forgelink.TooLarge, "body is over the %d-byte limit", limit)
	case err != nil:
		return nil, forgelink.E(forgelink.Invalid, "could not read the request body", err)
	}
	return body, nil
}

// Read reads a JSON body of at most limit bytes into v with DecodeStrict.
// With optional, an empty body leaves v as it is. A body sent as another
// media type than JSON (a form, text/plain) is refused: its sender meant
// something else. A request without a Content-Type is read as JSON.
func Read(w http.ResponseWriter, r *http.Request, limit int64, v any, optional bool) error {
	body, err := ReadLimited(w, r, limit)
	if err != nil {
		return err
	}
	if optional && len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := checkJSONType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	return DecodeStrict(body, v)
}

// checkJSONType accepts no Content-Type, application/json and any
// application/*+json type.
func checkJSONType(contentType string) error {
	if contentType == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return forgelink.Errorf(forgelink.Invalid, "unreadable Content-Type %q: send application/json", contentType)
	}
	if mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json") {
		return nil
	}
	return forgelink.Errorf(forgelink.Invalid, "Content-Type must be application/json, not %s", mt)
}

// DecodeStrict decodes one JSON value, refusing unknown fields, wrong
// types and trailing data, with a message that names the problem.
func DecodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field == "":
			return forgelink.Errorf(forgelink.Invalid, "body must be a JSON object, not %s", typeErr.Value)
		case errors.As(err, &typeErr):
			return forgelink.Errorf(forgelink.Invalid, "field %q must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
		case errors.Is(err, io.EOF):
			return forgelink.Errorf(forgelink.Invalid, "empty body: want a JSON object")
		}
		return forgelink.Errorf(forgelink.Invalid, "invalid JSON: %s", err.Error())
	}
	// Not dec.More, which is false before a stray "}" or "]".
	if len(bytes.Trim(body[dec.InputOffset():], " \t\r\n")) > 0 {
		return forgelink.Errorf(forgelink.Invalid, "invalid JSON: data after the object")
	}
	return nil
}

// jsonKind names what JSON a Go type takes, for messages: clients know
// JSON, not forgelink's Go types.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a value"
}
