package github

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"forgelink/shared/forgelink"
)

// DefaultAPIURL is the github.com REST API base. GitHub Enterprise Server
// serves the same API under https://HOST/api/v3/.
const DefaultAPIURL = "https://api.github.com/"

// secondaryLimitWait is how long to wait after a secondary rate limit that
// names no Retry-After: GitHub's documentation says at least a minute.
const secondaryLimitWait = time.Minute

// apiBaseURL parses the configured API base and gives it the trailing slash
// go-github requires. An empty raw means github.com.
func apiBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		raw = DefaultAPIURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, forgelink.Errorf(forgelink.Invalid, "invalid GitHub API URL %q: %v", raw, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, forgelink.Errorf(forgelink.Invalid, "invalid GitHub API URL %q: want https://api.github.com/ or https://HOST/api/v3/", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, forgelink.Errorf(forgelink.Invalid, "invalid GitHub API URL %q: it may not carry credentials, a query or a fragment", u.Redacted())
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u, nil
}

// uploadURL returns the upload API base that goes with an API base:
// uploads.github.com for github.com, HOST/api/uploads/ for Enterprise Server.
// forgelink uploads nothing; go-github only wants a valid URL.
func uploadURL(base *url.URL) *url.URL {
	u := *base
	switch {
	case u.Host == "api.github.com":
		u.Host, u.Path = "uploads.github.com", "/"
	case strings.HasSuffix(u.Path, "/api/v3/"):
		u.Path = strings.TrimSuffix(u.Path, "v3/") + "uploads/"
	}
	return &u
}

// OAuthAppRestricted reports whether err is GitHub's refusal because an
// organization restricts OAuth App access. The org-access check turns it
// into the "restricted" state; the message (forgelink.MessageOf) is
// GitHub's, naming the organization.
func OAuthAppRestricted(err error) bool {
	return forgelink.KindOf(err) == forgelink.Forbidden && isOAuthRestriction(forgelink.MessageOf(err))
}

func isOAuthRestriction(msg string) bool {
	return strings.Contains(msg, "OAuth App access restrictions")
}

// rateLimitWait is how long to wait after a rate-limited answer with
// header h, as GitHub's documentation says: Retry-After seconds when
// given; else, when the primary limit is spent (X-RateLimit-Remaining: 0),
// until X-RateLimit-Reset; else a minute.
func rateLimitWait(h http.Header) time.Duration {
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if h.Get("X-RateLimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return max(time.Until(time.Unix(reset, 0)), 0)
		}
	}
	return secondaryLimitWait
}

func isSecondaryLimit(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "secondary rate limit") || strings.Contains(m, "abuse detection")
}

// apiError maps an error from go-github to a forgelink kind with a message
// that is safe to show to the user; the original error stays the cause.
// what names the thing asked for, for NotFound messages ("repository o/r").
// Errors never contain the token: go-github's errors name only the method
// and the URL, and the token travels in a header.
func apiError(err error, what string) error {
	if err == nil {
		return nil
	}
	var (
		rate  *gh.RateLimitError
		abuse *gh.AbuseRateLimitError
		resp  *gh.ErrorResponse
	)
	switch {
	case errors.As(err, &rate):
		reset := rate.Rate.Reset.Time
		return forgelink.E(forgelink.Transient,
			fmt.Sprintf("GitHub API rate limit exceeded; it resets at %s", reset.UTC().Format(time.RFC3339)),
			forgelink.WithRetryAfter(err, max(time.Until(reset), 0)))
	case errors.As(err, &abuse):
		// go-github falls back to X-RateLimit-Reset, the primary window's
		// end, when there is no Retry-After; GitHub says to wait a minute.
		after := secondaryLimitWait
		if abuse.Response != nil {
			after = rateLimitWait(abuse.Response.Header)
		} else if abuse.RetryAfter != nil {
			after = max(*abuse.RetryAfter, 0)
		}
		return forgelink.E(forgelink.Transient,
			fmt.Sprintf("GitHub secondary rate limit exceeded; retry after %s", after),
			forgelink.WithRetryAfter(err, after))
	case errors.As(err, &resp) && resp.Response != nil:
		return responseError(err, resp, what)
	case isNetworkError(err):
		return forgelink.E(forgelink.Transient, "could not reach GitHub; try again later", err)
	}
	return forgelink.E(forgelink.Internal, "unexpected error talking to GitHub", err)
}

func responseError(err error, resp *gh.ErrorResponse, what string) error {
	status := resp.Response.StatusCode
	msg := describe(resp)
	switch {
	case status == http.StatusUnauthorized:
		return forgelink.E(forgelink.Unauthorized, "GitHub rejected the token: "+msg, err)
	case status == http.StatusForbidden && (isSecondaryLimit(resp.Message) || resp.Response.Header.Get("Retry-After") != ""),
		status == http.StatusTooManyRequests:
		after := rateLimitWait(resp.Response.Header)
		return forgelink.E(forgelink.Transient,
			fmt.Sprintf("GitHub rate limit exceeded; retry after %s", after),
			forgelink.WithRetryAfter(err, after))
	case status == http.StatusForbidden:
		// Includes OAuth App access restrictions: the message is kept
		// intact because it names the organization and what to do.
		return forgelink.E(forgelink.Forbidden, msg, err)
	case status == http.StatusNotFound:
		return forgelink.E(forgelink.NotFound, fmt.Sprintf("GitHub: %s not found, or the token cannot see it", what), err)
	case status >= 500:
		return forgelink.E(forgelink.Transient, fmt.Sprintf("GitHub is unavailable (HTTP %d); try again later", status), err)
	}
	return forgelink.E(forgelink.Upstream, fmt.Sprintf("GitHub refused the request (HTTP %d): %s", status, msg), err)
}

// describe joins GitHub's message with the messages of its field errors:
// "Validation Failed: key is invalid".
func describe(resp *gh.ErrorResponse) string {
	msg := resp.Message
	if msg == "" {
		msg = http.StatusText(resp.Response.StatusCode)
	}
	var details []string
	for _, e := range resp.Errors {
		switch {
		case e.Message != "":
			details = append(details, e.Message)
		case e.Code != "":
			details = append(details, fmt.Sprintf("%s %s %s", e.Resource, e.Field, e.Code))
		}
	}
	if len(details) > 0 {
		msg += ": " + strings.Join(details, "; ")
	}
	return msg
}

// hasFieldError reports whether err is a GitHub 422 with a field error whose
// message contains text.
func hasFieldError(err error, text string) bool {
	var resp *gh.ErrorResponse
	if !errors.As(err, &resp) || resp.Response == nil || resp.Response.StatusCode != http.StatusUnprocessableEntity {
		return false
	}
	for _, e := range resp.Errors {
		if strings.Contains(strings.ToLower(e.Message), strings.ToLower(text)) {
			return true
		}
	}
	return false
}

func isNetworkError(err error) bool {
	var (
		uerr *url.Error
		nerr net.Error
	)
	return errors.As(err, &uerr) || errors.As(err, &nerr) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

// keyMaterial returns the key type and base64 blob of an authorized_keys
// line ("ssh-ed25519 AAAA..."), without options or comment, or "" when the
// line does not look like a public key. GitHub and Bitbucket both return
// keys without the comment, so keys compare by this.
func keyMaterial(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return ""
	}
	return f[0] + " " + f[1]
}
