package vcsfake

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Key is a deploy key or a user's SSH key as a fake stores it.
type Key struct {
	ID string
	// Title is GitHub's title or Bitbucket's label.
	Title string
	// Key is the key type and base64 material, without the comment, as
	// both VCSs return it.
	Key string
	// ReadOnly is false only for GitHub deploy keys added writable and for
	// user keys. Bitbucket deploy keys are always read-only.
	ReadOnly bool
}

// Hook is a repository webhook as a fake stores it.
type Hook struct {
	// ID is GitHub's decimal id or Bitbucket's uuid with braces.
	ID     string
	URL    string
	Secret string
	Events []string
	// ContentType is GitHub's "json" or "form"; "" on Bitbucket.
	ContentType string
	Active      bool
}

// Status is a commit status posted to a fake.
type Status struct {
	SHA   string
	State string
	// Context is GitHub's context or Bitbucket's key.
	Context     string
	TargetURL   string
	Description string
}

// Email is one of the token user's email addresses, as /user/emails lists
// it. Verified is GitHub's verified and Bitbucket's is_confirmed.
type Email struct {
	Address  string
	Primary  bool
	Verified bool
}

// DefaultEmail is the primary, verified email of the user of every fake
// token until SetEmails changes it.
const DefaultEmail = "octocat@example.com"

// Request is one request a fake answered.
type Request struct {
	Method string
	Path   string // as received, e.g. "/api/v3/repos/o/r/keys"
	Query  string
	Status int
}

// fault is an injected failure.
type fault struct {
	method, suffix string
	n              int
	status         int
	header         http.Header
	body           []byte // nil: the VCS's default body for status
}

// core is what both fakes share: faults, the request log, the original
// user's token and the OAuth codes.
type core struct {
	t  testing.TB
	mu sync.Mutex

	token    string // the original user's current token: Token, or SetToken's
	faults   []*fault
	requests []Request
	nextID   int64
	emails   []Email
	oauth    oauthState
}

// newCore returns the shared state of a fake for t.
func newCore(t testing.TB) *core {
	return &core{t: t, emails: []Email{{Address: DefaultEmail, Primary: true, Verified: true}}}
}

// SetEmails sets the token user's email addresses, in the order
// /user/emails lists them; none leaves the user without any.
func (c *core) SetEmails(emails ...Email) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.emails = append([]Email(nil), emails...)
}

// CountRequests returns how many answered requests had method ("" for any)
// and a path ending with pathSuffix, so a test can check that something
// asked the VCS once.
func (c *core) CountRequests(method, pathSuffix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.requests {
		if (method == "" || strings.EqualFold(method, r.Method)) && strings.HasSuffix(r.Path, pathSuffix) {
			n++
		}
	}
	return n
}

// FailNext makes the next n requests whose method is method ("" for any)
// and whose path ends with pathSuffix answer status with the VCS's
// realistic body for it: for GitHub 403 and 429 the secondary rate limit
// body from the corpus with Retry-After: 1, 401 Bad credentials, 404 Not
// Found, 5xx a generic server error; for Bitbucket its error format, 429
// with Retry-After: 1.
func (c *core) FailNext(method, pathSuffix string, status, n int) {
	c.FailNextResponse(method, pathSuffix, n, status, nil, "")
}

// FailNextResponse is FailNext with the response given: header (may be nil)
// and body ("" for the VCS's default body for status, with its default
// headers such as Retry-After: 1). A body given is sent with exactly the
// headers given, e.g. a 429 without Retry-After. A status of 200 with a
// body makes a stale or doctored answer, e.g. an empty list "[]".
func (c *core) FailNextResponse(method, pathSuffix string, n, status int, header http.Header, body string) {
	f := &fault{method: strings.ToUpper(method), suffix: pathSuffix, n: n, status: status, header: header.Clone()}
	if body != "" {
		f.body = []byte(body)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = append(c.faults, f)
}

// takeFault returns the fault that r triggers, if any, and counts it.
// c.mu must be held.
func (c *core) takeFault(r *http.Request) *fault {
	for i, f := range c.faults {
		if (f.method == "" || f.method == r.Method) && strings.HasSuffix(r.URL.Path, f.suffix) {
			f.n--
			if f.n <= 0 {
				c.faults = append(c.faults[:i], c.faults[i+1:]...)
			}
			return f
		}
	}
	return nil
}

// Requests returns the requests answered so far, oldest first.
func (c *core) Requests() []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Request(nil), c.requests...)
}

// log records a request as its response is about to be sent, so that a
// client that has its answer finds it in Requests. c.mu must be held.
func (c *core) log(r *http.Request, status int) {
	c.requests = append(c.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: status})
}

// id returns a new numeric id. c.mu must be held.
func (c *core) id() int64 {
	c.nextID++
	return c.nextID
}

// response is what a route answers; it is written after the lock is released.
type response struct {
	status int
	header http.Header
	body   any // marshalled as JSON; []byte is written as is; nil writes nothing
	// then, if set, runs after the lock is released and its answer is sent
	// instead: work that calls out (a webhook redelivery) must not hold
	// the lock, as the receiver may call the fake back.
	then func() *response
}

func jsonResponse(status int, body any) *response {
	return &response{status: status, body: body}
}

// recorder captures the status and lets the fake add headers just before
// they are sent (GitHub's rate limit headers depend on the status).
type recorder struct {
	http.ResponseWriter
	status int
	before func(h http.Header, status int)
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		if w.before != nil {
			w.before(w.Header(), code)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// write sends resp. A 200 answer to a GET gets a strong ETag derived from
// its body (the resource's current JSON), and a 304 with no body when
// If-None-Match names it.
func write(w http.ResponseWriter, r *http.Request, resp *response) {
	var body []byte
	switch b := resp.body.(type) {
	case nil:
	case []byte:
		body = b
	default:
		var err error
		if body, err = json.Marshal(b); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	if body != nil && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	if r.Method == http.MethodGet && resp.status == http.StatusOK {
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:16]) + `"`
		w.Header().Set("ETag", etag)
		if etagMatch(r.Header.Get("If-None-Match"), etag) {
			w.Header().Del("Content-Type")
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(body)
}

// etagMatch is If-None-Match's weak comparison.
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	strip := func(s string) string { return strings.TrimPrefix(strings.TrimSpace(s), "W/") }
	for _, cand := range strings.Split(header, ",") {
		if c := strings.TrimSpace(cand); c == "*" || strip(c) == strip(etag) {
			return true
		}
	}
	return false
}

// decode reads a JSON request body into v.
func decode(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return errors.New("empty body")
	}
	return json.Unmarshal(b, v)
}

// keyMaterial returns the type and base64 blob of an OpenSSH public key
// line, or "" if it is not one.
func keyMaterial(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return ""
	}
	switch {
	case f[0] == "ssh-rsa", f[0] == "ssh-dss", f[0] == "ssh-ed25519",
		strings.HasPrefix(f[0], "ecdsa-sha2-"), strings.HasPrefix(f[0], "sk-"):
	default:
		return ""
	}
	if _, err := base64.StdEncoding.DecodeString(f[1]); err != nil {
		return ""
	}
	return f[0] + " " + f[1]
}

// keyComment returns what follows the material of a key line.
func keyComment(line string) string {
	f := strings.Fields(line)
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[2:], " ")
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newUUID returns a random UUID in braces, as Bitbucket writes them.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("{%x-%x-%x-%x-%x}", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// corpus reads testdata/corpus/rel from the module root: the first
// directory at or above the working directory with a go.mod.
func corpus(t testing.TB, rel string) []byte {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("vcsfake: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("vcsfake: no go.mod at or above the working directory; cannot find testdata/corpus")
		}
		dir = parent
	}
	b, err := os.ReadFile(filepath.Join(dir, "testdata", "corpus", filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("vcsfake: read corpus: %v", err)
	}
	return b
}

// lower returns s in lower case, for case-insensitive repository names.
func lower(s string) string { return strings.ToLower(s) }

// splitPath splits a URL path into its non-empty segments.
func splitPath(p string) []string {
	var segs []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	return segs
}

// pageBounds returns the slice bounds of page (1-based) of size per over n
// items.
func pageBounds(page, per, n int) (lo, hi int) {
	lo = min((page-1)*per, n)
	hi = min(lo+per, n)
	return lo, hi
}

// NewPublicKey returns a fresh ed25519 public key in authorized_keys format
// ("ssh-ed25519 AAAA... comment"), for tests that need distinct keys.
func NewPublicKey(comment string) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic("vcsfake: " + err.Error())
	}
	var wire []byte
	for _, field := range [][]byte{[]byte("ssh-ed25519"), pub} {
		wire = binary.BigEndian.AppendUint32(wire, uint32(len(field)))
		wire = append(wire, field...)
	}
	line := "ssh-ed25519 " + base64.StdEncoding.EncodeToString(wire)
	if comment != "" {
		line += " " + comment
	}
	return line
}
