package bitbucket

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"forgelink/shared/forgelink"
)

// DefaultAPIURL is the Bitbucket Cloud REST API 2.0 base.
const DefaultAPIURL = "https://api.bitbucket.org/2.0/"

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// rateLimitWait is how long to wait after a 429 that names no Retry-After.
const rateLimitWait = time.Minute

// client makes JSON calls to the Bitbucket API.
type client struct {
	base *url.URL
	hc   *http.Client
	auth string // Authorization header value; never logged or put in errors
}

func newClient(baseURL, token string, hc *http.Client) (*client, error) {
	if baseURL == "" {
		baseURL = DefaultAPIURL
	}
	base, err := url.Parse(baseURL)
	if err != nil {
		return nil, forgelink.Errorf(forgelink.Invalid, "invalid Bitbucket API URL %q: %v", baseURL, err)
	}
	if (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, forgelink.Errorf(forgelink.Invalid, "invalid Bitbucket API URL %q: want https://api.bitbucket.org/2.0/", baseURL)
	}
	if base.User != nil || base.RawQuery != "" || base.Fragment != "" {
		return nil, forgelink.Errorf(forgelink.Invalid, "invalid Bitbucket API URL %q: it may not carry credentials, a query or a fragment", base.Redacted())
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, forgelink.Errorf(forgelink.Invalid, "the Bitbucket token is empty")
	}
	auth := "Bearer " + token
	if strings.Contains(token, ":") {
		// user:app_password
		auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(token))
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &client{base: base, hc: hc, auth: auth}, nil
}

// url returns the API URL of the path made of segments, each escaped.
func (c *client) url(segments ...string) string {
	esc := make([]string, len(segments))
	for i, s := range segments {
		esc[i] = url.PathEscape(s)
	}
	return c.base.String() + strings.Join(esc, "/")
}

// sameOrigin reports whether u may be sent the token: a `next` link from a
// page must point at the configured API, not anywhere the body says.
func (c *client) sameOrigin(u string) bool {
	p, err := url.Parse(u)
	return err == nil && p.Scheme == c.base.Scheme && p.Host == c.base.Host &&
		strings.HasPrefix(p.Path, c.base.Path)
}

// do sends a request with a JSON body (when in is not nil) and decodes a
// JSON response into out (when out is not nil). A non-2xx answer is an
// *apiError.
func (c *client) do(ctx context.Context, method, u string, in, out any) error {
	_, err := c.conditional(ctx, method, u, "", in, out)
	return err
}

// conditional is do with If-None-Match: etag when etag is not "". It
// returns the answer's ETag ("" when none); a 304 is no error, leaves out
// untouched and is Probe{NotModified: true, ETag: etag}.
func (c *client) conditional(ctx context.Context, method, u, etag string, in, out any) (forgelink.Probe, error) {
	p, _, err := c.send(ctx, method, u, etag, in, out)
	return p, err
}

// send is conditional that also returns the header of a 2xx or 304
// answer.
func (c *client) send(ctx context.Context, method, u, etag string, in, out any) (forgelink.Probe, http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return forgelink.Probe{}, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return forgelink.Probe{}, nil, err
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "forgelink")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return forgelink.Probe{}, nil, err
	}
	defer resp.Body.Close()
	if etag != "" && resp.StatusCode == http.StatusNotModified {
		_, _ = io.Copy(io.Discard, resp.Body)
		return forgelink.Probe{ETag: etag, NotModified: true}, resp.Header, nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return forgelink.Probe{}, nil, newAPIError(req, resp)
	}
	p := forgelink.Probe{ETag: resp.Header.Get("ETag")}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return p, resp.Header, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return forgelink.Probe{}, nil, &decodeError{method: method, url: req.URL.Redacted(), err: err}
	}
	return p, resp.Header, nil
}

// decodeError is a 2xx response whose body is not the JSON expected.
type decodeError struct {
	method, url string
	err         error
}

func (e *decodeError) Error() string {
	return fmt.Sprintf("%s %s: decode response: %v", e.method, e.url, e.err)
}

func (e *decodeError) Unwrap() error { return e.err }

// apiError is a non-2xx answer from Bitbucket.
type apiError struct {
	Method     string
	URL        string
	StatusCode int
	// Message is Bitbucket's error.message, with its field errors and detail.
	Message string
	// RetryAfterHeader is the Retry-After header, if any.
	RetryAfterHeader string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.StatusCode, e.Message)
}

// errorBody is Bitbucket's error format:
// {"type": "error", "error": {"message": "...", "detail": ..., "fields": {...}}}.
type errorBody struct {
	Error struct {
		Message string              `json:"message"`
		Detail  json.RawMessage     `json:"detail"`
		Fields  map[string][]string `json:"fields"`
	} `json:"error"`
}

func newAPIError(req *http.Request, resp *http.Response) *apiError {
	e := &apiError{
		Method:           req.Method,
		URL:              req.URL.Redacted(),
		StatusCode:       resp.StatusCode,
		RetryAfterHeader: resp.Header.Get("Retry-After"),
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var b errorBody
	if json.Unmarshal(raw, &b) == nil && b.Error.Message != "" {
		e.Message = b.Error.Message
		var details []string
		var detail string
		if json.Unmarshal(b.Error.Detail, &detail) == nil && detail != "" && detail != e.Message {
			details = append(details, detail)
		}
		names := make([]string, 0, len(b.Error.Fields))
		for name := range b.Error.Fields {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			details = append(details, name+": "+strings.Join(b.Error.Fields[name], ", "))
		}
		if len(details) > 0 {
			e.Message += " (" + strings.Join(details, "; ") + ")"
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// classify maps an error from do to a forgelink kind with a message that is
// safe to show to the user; the original error stays the cause. what names
// the thing asked for, for NotFound messages ("repository w/r").
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	var (
		fe   *forgelink.Error
		ae   *apiError
		de   *decodeError
		uerr *url.Error
		nerr net.Error
	)
	switch {
	case errors.As(err, &fe):
		return err // already classified
	case errors.As(err, &ae):
		return classifyStatus(err, ae, what)
	case errors.As(err, &de):
		return forgelink.E(forgelink.Upstream, "Bitbucket sent a response forgelink could not read", err)
	case errors.As(err, &uerr), errors.As(err, &nerr),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, io.ErrUnexpectedEOF):
		return forgelink.E(forgelink.Transient, "could not reach Bitbucket; try again later", err)
	}
	return forgelink.E(forgelink.Internal, "unexpected error talking to Bitbucket", err)
}

func classifyStatus(err error, ae *apiError, what string) error {
	switch s := ae.StatusCode; {
	case s == http.StatusUnauthorized:
		return forgelink.E(forgelink.Unauthorized, "Bitbucket rejected the token: "+ae.Message, err)
	case s == http.StatusForbidden:
		return forgelink.E(forgelink.Forbidden, ae.Message, err)
	case s == http.StatusNotFound:
		return forgelink.E(forgelink.NotFound, fmt.Sprintf("Bitbucket: %s not found, or the token cannot see it", what), err)
	case s == http.StatusTooManyRequests:
		after := rateLimitWait
		if n, perr := strconv.Atoi(ae.RetryAfterHeader); perr == nil && n >= 0 {
			after = time.Duration(n) * time.Second
		}
		return forgelink.E(forgelink.Transient, fmt.Sprintf("Bitbucket rate limit exceeded; retry after %s", after),
			forgelink.WithRetryAfter(err, after))
	case s >= 500:
		return forgelink.E(forgelink.Transient, fmt.Sprintf("Bitbucket is unavailable (HTTP %d); try again later", s), err)
	}
	return forgelink.E(forgelink.Upstream, fmt.Sprintf("Bitbucket refused the request (HTTP %d): %s", ae.StatusCode, ae.Message), err)
}

// statusOf returns the HTTP status of an *apiError in err's chain, or 0.
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.StatusCode
	}
	return 0
}

// keyMaterial returns the key type and base64 blob of an authorized_keys
// line, without comment, or "" when it does not look like a public key.
// Bitbucket returns keys without the comment (it keeps it apart).
func keyMaterial(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return ""
	}
	return f[0] + " " + f[1]
}
