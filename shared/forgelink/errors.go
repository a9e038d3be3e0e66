package forgelink

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error so that callers can decide what to do with it
// (answer 404, retry, roll back) without matching strings.
type Kind uint8

// The error kinds. The HTTP layer maps each to one status code; SQS consumers
// retry Transient only.
const (
	Internal     Kind = iota // a bug or an unexpected failure; never shown to clients verbatim
	Invalid                  // the request or input is malformed
	NotFound                 // the thing asked for does not exist
	Conflict                 // a conditional write lost: the thing exists or changed
	Unauthorized             // missing or bad credentials or signature
	Forbidden                // authenticated, but not allowed
	TooLarge                 // the input is over a size limit
	Transient                // a dependency failed in a way that may pass (5xx, 429, timeout)
	Upstream                 // a dependency refused the request in a way a retry will not fix
)

var kindNames = [...]string{
	Internal:     "internal",
	Invalid:      "invalid",
	NotFound:     "not found",
	Conflict:     "conflict",
	Unauthorized: "unauthorized",
	Forbidden:    "forbidden",
	TooLarge:     "too large",
	Transient:    "transient",
	Upstream:     "upstream",
}

// String returns the kind's name, e.g. "not found".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is an error with a Kind and a message that is safe to show to the
// client. Err, if set, is the cause and is never shown to clients.
type Error struct {
	Kind    Kind
	Message string // safe for clients
	Err     error  // cause, for logs
}

// Error returns the message and, after a colon, the cause: for logs, not clients.
func (e *Error) Error() string {
	switch {
	case e.Err != nil && e.Message != "":
		return e.Message + ": " + e.Err.Error()
	case e.Err != nil:
		return e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind k whose client-safe message is formatted
// from format and args. It has no cause; use E to keep one.
func Errorf(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// E wraps err with kind k and a client-safe message.
func E(k Kind, message string, err error) error {
	return &Error{Kind: k, Message: message, Err: err}
}

// KindOf returns the Kind of the outermost *Error in err's chain, Internal
// when there is none, and Internal for a nil error's absence of kind.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// MessageOf returns the client-safe message of the outermost *Error in err's
// chain, or "" when there is none.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return ""
}

// retryAfterError carries how long a dependency asked the caller to wait.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// WithRetryAfter returns err remembering that the dependency asked to wait
// d before retrying (a Retry-After header, a rate-limit reset).
func WithRetryAfter(err error, d time.Duration) error {
	return &retryAfterError{err: err, after: d}
}

// RetryAfter reports how long the dependency asked to wait before retrying
// (see WithRetryAfter), and whether it said.
func RetryAfter(err error) (time.Duration, bool) {
	var ra *retryAfterError
	if errors.As(err, &ra) {
		return ra.after, true
	}
	return 0, false
}
