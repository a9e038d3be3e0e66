package server_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"forgelink/shared/sshkeys"
)

// The bad-input matrix: every route of the one-process server (hooks, the
// API, badges, the pages) gets requests it must refuse - a wrong method,
// missing and duplicated headers, bad signatures, another project's
// secret, bodies over the limit or cut short, JSON nested 100,000 deep, a
// wrong content type, path tricks in names and fingerprints, oversized
// fields, missing or another session's CSRF tokens. Each must be answered
// 4xx with a message that names the problem (JSON {"message"} from hooks,
// the API and badges; an HTML page from the pages) and leave the bbolt
// store byte for byte as it was. infra/devstack's TestBadInputDynamoDB
// does the same against DynamoDB.

// badCase is one request the server must refuse.
type badCase struct {
	name   string
	method string
	// path is sent as written: escapes, dots and all.
	path string
	// header is name, value pairs, added in order, so a name may repeat.
	header []string
	body   []byte
	// chunked sends the body in chunked transfer encoding, without a
	// Content-Length.
	chunked bool
	// cut > 0 declares a Content-Length cut bytes longer than body and
	// closes the connection after body: a delivery cut off in transit.
	cut    int
	status int
	// msg is a part of the message the answer must carry.
	msg string
}

// answerKind is how a family answers an error.
type answerKind int

const (
	jsonAnswer answerKind = iota // application/json {"message": "..."}
	htmlAnswer                   // text/html, the message in the page
)

// badFamily is a group of routes and its cases.
type badFamily struct {
	name   string
	answer answerKind
	cases  []badCase
}

// cookieSession is a browser session: its cookie and CSRF token.
type cookieSession struct{ id, csrf string }

// cookie is the Cookie header of s.
func (s cookieSession) cookie() string {
	return "forgelink_session=" + s.id + "; forgelink_csrf=" + s.csrf
}

// badFixture is what the cases act on: two followed GitHub projects (A,
// and O whose secret signs "another project's" deliveries), a followed
// private Bitbucket project, a pipeline of A, an SSH key on A, and
// sessions.
type badFixture struct {
	s *stack
	// hook paths and secrets by provider name; otherSecret is project O's.
	hook        map[string]string
	secret      map[string]string
	otherSecret string
	pipelineID  string
	deployFP    string // A's deploy key, MD5
	sshFP       string // A's additional SSH key for deploy.example.com, MD5
	privateKey  string // a valid private key for forms and the API
	// envA and envB are sessions of the environment user (signed in with
	// the API token); octo and mona are OAuth sessions of GitHub users.
	envA, envB, octo, mona cookieSession
	// tokenID and personalToken are a personal API token of octo.
	tokenID, personalToken string
}

const (
	slugA     = "gh/octo-org/hello-world"
	slugOther = "gh/octo-org/other"
)

func newBadFixture(t *testing.T) *badFixture {
	t.Helper()
	s := newSigninStack(t, false)
	si := newSignin(t, s)
	fx := &badFixture{s: s, hook: map[string]string{}, secret: map[string]string{}}
	s.gh.AddRepo("octo-org/other", "main", false)

	follow := func(slug string) string {
		t.Helper()
		status, body := s.call(t, http.MethodPost, "/api/v1.1/project/"+slug+"/follow")
		if status != http.StatusCreated {
			t.Fatalf("follow %s: %d %v", slug, status, body)
		}
		u, err := url.Parse(body["hook_url"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if slug == slugA {
			fx.deployFP = body["deploy_key"].(map[string]any)["fingerprint"].(string)
		}
		return u.Path
	}
	fx.hook["github"] = follow(slugA)
	fx.secret["github"] = s.gh.Hooks("octo-org/hello-world")[0].Secret
	fx.hook["bitbucket"] = follow("bb/octo-org/hello-world")
	fx.secret["bitbucket"] = s.bb.Hooks("octo-org/hello-world")[0].Secret
	follow(slugOther)
	fx.otherSecret = s.gh.Hooks("octo-org/other")[0].Secret

	// A pipeline of A: a push with a config.
	const rev = "366701fde727cb7a9e7f21eb88264f59f6f9b89c"
	s.gh.SetFile("octo-org/hello-world", rev, ".circleci/config.yml", []byte(ciConfig))
	push := providers[0].deliver(s.url+fx.hook["github"], fx.secret["github"], "push", "bad-input-setup", corpus(t, "github/push.json"))
	if status, body := do(t, push); status != http.StatusAccepted {
		t.Fatalf("setup push: %d %v", status, body)
	}
	s.waitDelivery(t, slugA, "bad-input-setup")
	pls := s.pipelines(t, slugA)
	if len(pls) != 1 {
		t.Fatalf("pipelines of A: %v, want one", pls)
	}
	fx.pipelineID = pls[0]["id"].(string)

	key, err := sshkeys.Generate(sshkeys.ED25519, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fx.privateKey = string(key.PrivatePEM)
	other, err := sshkeys.Generate(sshkeys.ED25519, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"hostname": "deploy.example.com", "private_key": string(other.PrivatePEM)})
	r := client(si.tr).do(t, http.MethodPost, s.url+"/api/v1.1/project/"+slugA+"/ssh-key", string(body), "Circle-Token", apiToken)
	if r.Status != http.StatusCreated {
		t.Fatalf("add an SSH key: %d %s", r.Status, r.Body)
	}
	fx.sshFP = r.json(t)["fingerprint"].(string)

	fx.envA, fx.envB = tokenSignIn(t, s), tokenSignIn(t, s)
	octo := si.signIn(t, "github")
	fx.octo = cookieSession{octo.id, octo.csrf}
	s.gh.AddUser("mona", 7310100, "Mona")
	s.gh.SetAuthorizeUser("mona")
	mona := si.signIn(t, "github")
	s.gh.SetAuthorizeUser("octocat")
	fx.mona = cookieSession{mona.id, mona.csrf}
	created := si.call(t, octo, http.MethodPost, "/api/v2/me/tokens", `{"label":"setup"}`, true)
	if created.Status != http.StatusCreated {
		t.Fatalf("create a personal token: %d %s", created.Status, created.Body)
	}
	tok := created.json(t)
	fx.tokenID, fx.personalToken = tok["id"].(string), tok["token"].(string)
	si.sec.add("a personal API token", tok["token"].(string), created)

	fx.quiet(t)
	return fx
}

// tokenSignIn signs in with the API token on the sign-in page, as a
// person would in local mode.
func tokenSignIn(t *testing.T, s *stack) cookieSession {
	t.Helper()
	status, header, body := send(t, s.url, badCase{method: http.MethodGet, path: "/"})
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindSubmatch(body)
	login := cookieOf(header, "forgelink_login_csrf")
	if status != http.StatusOK || m == nil || login == "" {
		t.Fatalf("sign-in page: %d, csrf_token %q, cookie %q", status, m, login)
	}
	form := url.Values{"csrf_token": {string(m[1])}, "token": {apiToken}}.Encode()
	status, header, body = send(t, s.url, badCase{method: http.MethodPost, path: "/login", body: []byte(form),
		header: []string{"Content-Type", "application/x-www-form-urlencoded", "Cookie", "forgelink_login_csrf=" + login}})
	ss := cookieSession{cookieOf(header, "forgelink_session"), cookieOf(header, "forgelink_csrf")}
	if status != http.StatusSeeOther || ss.id == "" || ss.csrf == "" {
		t.Fatalf("sign in with the API token: %d %s", status, body)
	}
	return ss
}

func cookieOf(h http.Header, name string) string {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name && c.MaxAge >= 0 {
			return c.Value
		}
	}
	return ""
}

// quiet waits until the background work of the setup (the trigger, status
// posts) has stopped changing the store.
func (fx *badFixture) quiet(t *testing.T) {
	t.Helper()
	prev := fx.dump(t)
	deadline := time.Now().Add(10 * time.Second)
	for stable := 0; stable < 5; {
		if time.Now().After(deadline) {
			t.Fatal("the store never stopped changing after the setup")
		}
		time.Sleep(50 * time.Millisecond)
		cur := fx.dump(t)
		if sameDump(prev, cur) {
			stable++
		} else {
			stable = 0
		}
		prev = cur
	}
}

func (fx *badFixture) dump(t *testing.T) map[string][]byte {
	t.Helper()
	d, err := fx.s.srv.Store.Dump()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func sameDump(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || (v == nil) != (w == nil) || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// dumpDiff names the keys added, removed or changed, bucket path and key
// joined by "/".
func dumpDiff(before, after map[string][]byte) string {
	var out []string
	for k, v := range after {
		w, ok := before[k]
		switch {
		case !ok:
			out = append(out, "added "+strings.ReplaceAll(k, "\x00", "/"))
		case !bytes.Equal(v, w) || (v == nil) != (w == nil):
			out = append(out, "changed "+strings.ReplaceAll(k, "\x00", "/"))
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, "removed "+strings.ReplaceAll(k, "\x00", "/"))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// send makes one request, as tc says, to the server at base and returns
// the answer. It writes the request by hand, so that the path, headers and
// body reach the server exactly as written, and from another goroutine,
// so that an answer the server sends before reading the whole body (413)
// is read even when the server then closes the connection.
func send(t *testing.T, base string, tc badCase) (int, http.Header, []byte) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", tc.method, tc.path, u.Host)
	switch {
	case tc.chunked:
		b.WriteString("Transfer-Encoding: chunked\r\n")
	case tc.body != nil || tc.cut > 0:
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(tc.body)+tc.cut)
	}
	for i := 0; i+1 < len(tc.header); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", tc.header[i], tc.header[i+1])
	}
	b.WriteString("\r\n")
	if tc.chunked {
		fmt.Fprintf(&b, "%x\r\n%s\r\n0\r\n\r\n", len(tc.body), tc.body)
	} else {
		b.Write(tc.body)
	}
	go func() {
		// A refused body may not be read: the write's error is no news.
		if _, err := conn.Write(b.Bytes()); err == nil && tc.cut > 0 {
			_ = conn.(*net.TCPConn).CloseWrite()
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %.200s: no answer: %v", tc.method, tc.path, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %.200s: read the answer: %v", tc.method, tc.path, err)
	}
	return resp.StatusCode, resp.Header, rb
}

// checkAnswer fails unless the answer is tc's status with a message,
// in the family's format, that contains tc.msg.
func checkAnswer(t *testing.T, kind answerKind, tc badCase, status int, header http.Header, body []byte) {
	t.Helper()
	if status != tc.status {
		t.Errorf("status %d, want %d; answer %.300q", status, tc.status, body)
	}
	ct := header.Get("Content-Type")
	var msg string
	switch kind {
	case jsonAnswer:
		var m map[string]any
		if !strings.HasPrefix(ct, "application/json") || json.Unmarshal(body, &m) != nil {
			t.Fatalf("answer %s %.300q: want a JSON object", ct, body)
		}
		msg, _ = m["message"].(string)
		if msg == "" {
			t.Errorf("answer %.300s has no message", body)
		}
	case htmlAnswer:
		if !strings.HasPrefix(ct, "text/html") || !bytes.Contains(body, []byte("<html")) {
			t.Fatalf("answer %s %.300q: want an HTML page", ct, body)
		}
		msg = pageText(body)
	}
	if !strings.Contains(msg, tc.msg) {
		t.Errorf("message %.400q does not say %q", msg, tc.msg)
	}
}

// pageText is the text of a page's <main>, tags dropped and spaces
// squeezed.
func pageText(body []byte) string {
	s := string(body)
	if i := strings.Index(s, "<main"); i >= 0 {
		s = s[i:]
	}
	if i := strings.Index(s, "</main>"); i >= 0 {
		s = s[:i]
	}
	s = regexp.MustCompile(`<[^>]*>`).ReplaceAllString(s, " ")
	return strings.Join(strings.Fields(html.UnescapeString(s)), " ")
}

// TestBadInput runs the matrix against the one-process server on bbolt.
func TestBadInput(t *testing.T) {
	fx := newBadFixture(t)
	for _, fam := range fx.families(t) {
		t.Run(fam.name, func(t *testing.T) {
			for _, tc := range fam.cases {
				t.Run(tc.name, func(t *testing.T) {
					if tc.msg == "" || tc.status < 400 || tc.status > 499 {
						t.Fatalf("the case wants %d %q: every case wants a 4xx and names its message", tc.status, tc.msg)
					}
					before := fx.dump(t)
					status, header, body := send(t, fx.s.url, tc)
					checkAnswer(t, fam.answer, tc, status, header, body)
					if after := fx.dump(t); !sameDump(before, after) {
						t.Errorf("the store changed: %s", dumpDiff(before, after))
					}
				})
			}
		})
	}

	// The controls: the requests the cases spoil, made right, are
	// accepted and change the store, so the checks above can fail.
	t.Run("controls", func(t *testing.T) {
		for _, tc := range fx.controls(t) {
			t.Run(tc.name, func(t *testing.T) {
				before := fx.dump(t)
				status, _, body := send(t, fx.s.url, tc)
				if status != tc.status {
					t.Fatalf("status %d %.300s, want %d", status, body, tc.status)
				}
				deadline := time.Now().Add(5 * time.Second)
				for after := fx.dump(t); sameDump(before, after); after = fx.dump(t) {
					if time.Now().After(deadline) {
						t.Fatal("the store did not change")
					}
					time.Sleep(10 * time.Millisecond)
				}
			})
		}
	})
	counts := []string{}
	for _, fam := range fx.families(t) {
		counts = append(counts, fmt.Sprintf("%s %d", fam.name, len(fam.cases)))
	}
	t.Logf("cases: %s", strings.Join(counts, ", "))
}

func (fx *badFixture) families(t *testing.T) []badFamily {
	t.Helper()
	var hooks []badCase
	for _, p := range providers {
		hooks = append(hooks, fx.hookCases(t, p)...)
	}
	return []badFamily{
		{"hooks", jsonAnswer, hooks},
		{"api", jsonAnswer, fx.apiCases()},
		{"badges", jsonAnswer, fx.badgeCases()},
		{"pages", htmlAnswer, fx.pageCases()},
	}
}

// Path tricks for an org, repo, id or fingerprint segment.
var pathTricks = []struct{ name, segment string }{
	{"escaped dot-dot-slash", "..%2F..%2Fetc"},
	{"escaped dots", "%2e%2e"},
	{"fullwidth dots", "%EF%BC%8E%EF%BC%8E"},
	{"right-to-left override", "hello%E2%80%AEdlrow"},
	{"NUL", "hello%00world"},
	{"overlong", strings.Repeat("a", 4000)},
}

// delivery is a signed delivery of p's push to path, as the VCS sends it,
// as name, value header pairs.
func delivery(p provider, secret string, body []byte) []string {
	r := p.deliver("http://x/", secret, p.pushEvent, "bad-input-1", body)
	var h []string
	for _, name := range []string{"Content-Type", "X-GitHub-Event", "X-GitHub-Delivery", "X-Hub-Signature-256",
		"X-Event-Key", "X-Request-UUID", "X-Hook-UUID", "X-Attempt-Number", "X-Hub-Signature"} {
		if v := r.Header.Get(name); v != "" {
			h = append(h, name, v)
		}
	}
	return h
}

// without returns header without name; with, header with name's value
// replaced (or added).
func without(header []string, name string) []string {
	var out []string
	for i := 0; i+1 < len(header); i += 2 {
		if !strings.EqualFold(header[i], name) {
			out = append(out, header[i], header[i+1])
		}
	}
	return out
}

// plus returns a copy of header with pairs added after it (a name may
// repeat); the cases never share a header's backing array.
func plus(header []string, pairs ...string) []string {
	return append(slices.Clone(header), pairs...)
}

func with(header []string, pairs ...string) []string {
	out := header
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(without(out, pairs[i]), pairs[i], pairs[i+1])
	}
	return out
}

func valueOf(header []string, name string) string {
	for i := 0; i+1 < len(header); i += 2 {
		if strings.EqualFold(header[i], name) {
			return header[i+1]
		}
	}
	return ""
}

func (fx *badFixture) hookCases(t *testing.T, p provider) []badCase {
	t.Helper()
	push := corpus(t, p.pushCorpus)
	secret := fx.secret[p.name]
	hook := fx.hook[p.name]
	sigHeader, eventHeader, idHeader := "X-Hub-Signature-256", "X-GitHub-Event", "X-GitHub-Delivery"
	otherVCSHook := fx.hook["bitbucket"]
	if p.name == "bitbucket" {
		sigHeader, eventHeader, idHeader = "X-Hub-Signature", "X-Event-Key", "X-Request-UUID"
		otherVCSHook = fx.hook["github"]
	}
	otherVCSHook = "/hooks/" + p.name + "/" + otherVCSHook[strings.LastIndex(otherVCSHook, "/")+1:]
	good := delivery(p, secret, push)
	signed := func(body []byte) []string { return with(good, sigHeader, sign(secret, body)) }
	huge := bytes.Repeat([]byte(" "), 25<<20+1)
	deep := []byte(strings.Repeat("[", 100000))
	cutShort := push[:len(push)/2]
	id201 := strings.Repeat("d", 201)

	cases := []badCase{
		{name: "GET", method: http.MethodGet, path: hook, status: 405, msg: "use POST"},
		{name: "PUT", method: http.MethodPut, path: hook, header: good, body: push, status: 405, msg: "use POST"},
		{name: "no signature", method: "POST", path: hook, header: without(good, sigHeader), body: push, status: 401, msg: "missing " + sigHeader},
		{name: "two signatures, the right one first", method: "POST", path: hook, header: plus(good, sigHeader, sign("x", push)), body: push, status: 400, msg: "one " + sigHeader},
		{name: "two signatures, the right one second", method: "POST", path: hook, header: plus(with(good, sigHeader, sign("x", push)), sigHeader, sign(secret, push)), body: push, status: 400, msg: "one " + sigHeader},
		{name: "two delivery ids", method: "POST", path: hook, header: plus(good, idHeader, "bad-input-2"), body: push, status: 400, msg: "one " + idHeader},
		{name: "two event headers", method: "POST", path: hook, header: plus(good, eventHeader, p.prEvent), body: push, status: 400, msg: "one " + eventHeader},
		{name: "no event header", method: "POST", path: hook, header: without(good, eventHeader), body: push, status: 400, msg: eventHeader},
		{name: "no delivery id", method: "POST", path: hook, header: without(good, idHeader), body: push, status: 400, msg: idHeader},
		{name: "signature not hex", method: "POST", path: hook, header: with(good, sigHeader, "sha256=zz"+sign(secret, push)[9:]), body: push, status: 401, msg: sigHeader + " is not hex"},
		{name: "signature of another body", method: "POST", path: hook, header: with(good, sigHeader, sign(secret, cutShort)), body: push, status: 401, msg: "signature does not match"},
		{name: "SHA-1 signature", method: "POST", path: hook, header: with(good, sigHeader, "sha1=0123456789abcdef0123456789abcdef01234567"), body: push, status: 401, msg: `must start with "sha256="`},
		{name: "wrong secret: another project's", method: "POST", path: hook, header: with(good, sigHeader, sign(fx.otherSecret, push)), body: push, status: 401, msg: "signature does not match"},
		{name: "the other VCS's hook id", method: "POST", path: otherVCSHook, header: good, body: push, status: 404, msg: "unknown hook"},
		{name: "unknown hook id", method: "POST", path: "/hooks/" + p.name + "/0000000000000000", header: good, body: push, status: 404, msg: "unknown hook"},
		{name: "huge body", method: "POST", path: hook, header: signed(huge), body: huge, status: 413, msg: "limit"},
		{name: "huge body, chunked", method: "POST", path: hook, header: signed(huge), body: huge, chunked: true, status: 413, msg: "limit"},
		{name: "body cut off in transit", method: "POST", path: hook, header: good, body: cutShort, cut: len(push) - len(cutShort), status: 400, msg: "could not read the request body"},
		{name: "truncated JSON, signed", method: "POST", path: hook, header: signed(cutShort), body: cutShort, status: 400, msg: "malformed JSON"},
		{name: "100,000 nested arrays, signed", method: "POST", path: hook, header: signed(deep), body: deep, status: 400, msg: "malformed JSON"},
		{name: "content type text/plain", method: "POST", path: hook, header: with(good, "Content-Type", "text/plain"), body: push, status: 400, msg: "unsupported Content-Type"},
		{name: "content type unreadable", method: "POST", path: hook, header: with(good, "Content-Type", "application/json; charset"), body: push, status: 400, msg: "unreadable Content-Type"},
		{name: "delivery id too long", method: "POST", path: hook, header: with(good, idHeader, id201), body: push, status: 400, msg: "too long"},
		{name: "delivery id with a C1 control character", method: "POST", path: hook, header: with(good, idHeader, "bad\u0085input"), body: push, status: 400, msg: "printable"},
		{name: "delivery id not UTF-8", method: "POST", path: hook, header: with(good, idHeader, "bad\xffinput"), body: push, status: 400, msg: "printable"},
	}
	for _, tr := range pathTricks {
		cases = append(cases, badCase{name: "hook id: " + tr.name, method: "POST", path: "/hooks/" + p.name + "/" + tr.segment, header: good, body: push, status: 404, msg: "unknown hook"})
	}
	for i := range cases {
		cases[i].name = p.name + ": " + cases[i].name
	}
	return cases
}

// padJSON returns {"<field>":"aaa..."} of exactly n bytes.
func padJSON(field string, n int) []byte {
	head := `{"` + field + `":"`
	return []byte(head + strings.Repeat("a", n-len(head)-2) + `"}`)
}

func (fx *badFixture) apiCases() []badCase {
	tok := []string{"Circle-Token", apiToken}
	js := func(h ...string) []string {
		return append(append([]string{"Content-Type", "application/json"}, tok...), h...)
	}
	v1, v2 := "/api/v1.1/project/"+slugA, "/api/v2/project/"+slugA
	pl := "/api/v2/pipeline/" + fx.pipelineID
	settings := []byte(`{"advanced":{"build_prs_only":true}}`)
	sshBody, _ := json.Marshal(map[string]string{"hostname": "git.example.com", "private_key": fx.privateKey})
	report := []byte(`{"state":"running"}`)

	cases := []badCase{
		// Wrong methods.
		{name: "PUT follow", method: "PUT", path: v1 + "/follow", header: tok, status: 405, msg: "not allowed"},
		{name: "GET webhook-secret/rotate", method: "GET", path: v2 + "/webhook-secret/rotate", header: tok, status: 405, msg: "not allowed"},
		{name: "POST settings", method: "POST", path: v2 + "/settings", header: js(), body: settings, status: 405, msg: "not allowed"},
		{name: "DELETE pipeline list", method: "DELETE", path: v2 + "/pipeline", header: tok, status: 405, msg: "not allowed"},
		{name: "PUT deliveries", method: "PUT", path: v2 + "/deliveries", header: tok, status: 405, msg: "not allowed"},
		{name: "GET delivery retry", method: "GET", path: v2 + "/deliveries/x/retry", header: tok, status: 405, msg: "not allowed"},
		{name: "POST pipeline", method: "POST", path: pl, header: tok, status: 405, msg: "not allowed"},
		{name: "POST user/repos", method: "POST", path: "/api/v1.1/user/repos", header: tok, status: 405, msg: "not allowed"},
		{name: "DELETE projects", method: "DELETE", path: "/api/v1.1/projects", header: tok, status: 405, msg: "not allowed"},
		{name: "PUT checkout-key", method: "PUT", path: v2 + "/checkout-key", header: tok, status: 405, msg: "not allowed"},
		{name: "POST checkout-key/{fingerprint}", method: "POST", path: v1 + "/checkout-key/" + fx.deployFP, header: tok, status: 405, msg: "not allowed"},
		{name: "PUT ssh-key", method: "PUT", path: v1 + "/ssh-key", header: tok, status: 405, msg: "not allowed"},
		{name: "POST me", method: "POST", path: "/api/v2/me", header: tok, status: 405, msg: "not allowed"},
		{name: "GET runner-token", method: "GET", path: pl + "/runner-token", header: tok, status: 405, msg: "not allowed"},
		{name: "POST checkout", method: "POST", path: pl + "/checkout", header: tok, status: 405, msg: "not allowed"},
		{name: "GET status", method: "GET", path: pl + "/status", header: tok, status: 405, msg: "not allowed"},
		{name: "POST org-access", method: "POST", path: "/api/v2/org-access", header: tok, status: 405, msg: "not allowed"},
		{name: "GET org-access/check", method: "GET", path: "/api/v2/org-access/check", header: tok, status: 405, msg: "not allowed"},
		{name: "PUT me/tokens", method: "PUT", path: "/api/v2/me/tokens", header: []string{"Cookie", fx.octo.cookie(), "X-CSRF-Token", fx.octo.csrf}, status: 405, msg: "not allowed"},
		{name: "GET me/tokens/{id}", method: "GET", path: "/api/v2/me/tokens/" + fx.tokenID, header: []string{"Cookie", fx.octo.cookie()}, status: 405, msg: "not allowed"},
		{name: "GET logout", method: "GET", path: "/logout", header: []string{"Cookie", fx.envA.cookie()}, status: 405, msg: "not allowed"},

		// Missing, wrong and duplicated tokens.
		{name: "no token", method: "PATCH", path: v2 + "/settings", header: []string{"Content-Type", "application/json"}, body: settings, status: 401, msg: "missing API token"},
		{name: "wrong token", method: "PATCH", path: v2 + "/settings", header: []string{"Content-Type", "application/json", "Circle-Token", "fl_wrong_0123456789"}, body: settings, status: 401, msg: "invalid API token"},
		{name: "two tokens, the right one first", method: "PATCH", path: v2 + "/settings", header: js("Circle-Token", "fl_wrong_0123456789"), body: settings, status: 400, msg: "one Circle-Token"},
		{name: "two tokens, the right one second", method: "PATCH", path: v2 + "/settings", header: []string{"Content-Type", "application/json", "Circle-Token", "fl_wrong_0123456789", "Circle-Token", apiToken}, body: settings, status: 400, msg: "one Circle-Token"},
		{name: "two circle-token parameters", method: "PATCH", path: v2 + "/settings?circle-token=" + apiToken + "&circle-token=x", header: []string{"Content-Type", "application/json"}, body: settings, status: 400, msg: "one Circle-Token"},
		{name: "two tokens on a status report", method: "POST", path: pl + "/status", header: js("Circle-Token", "fl_wrong_0123456789"), body: report, status: 400, msg: "one Circle-Token"},
		{name: "made-up executor token on a status report", method: "POST", path: pl + "/status", header: []string{"Content-Type", "application/json", "Circle-Token", "fle_0123456789abcdef"}, body: report, status: 401, msg: "invalid or expired executor token"},
		{name: "status report with the session cookie only", method: "POST", path: pl + "/status", header: []string{"Content-Type", "application/json", "Cookie", fx.envA.cookie(), "X-CSRF-Token", fx.envA.csrf}, body: report, status: 401, msg: "missing token"},

		// Bodies over each route's limit.
		{name: "settings body over 64 KiB", method: "PATCH", path: v2 + "/settings", header: js(), body: padJSON("advanced", 64<<10+1), status: 413, msg: "limit"},
		{name: "checkout-key body over 4 KiB", method: "POST", path: v2 + "/checkout-key", header: js(), body: padJSON("type", 4<<10+1), status: 413, msg: "limit"},
		{name: "ssh-key body over its limit", method: "POST", path: v1 + "/ssh-key", header: js(), body: padJSON("private_key", 2*sshkeys.MaxKeySize+4<<10+1), status: 413, msg: "limit"},
		{name: "ssh-key delete body over 4 KiB", method: "DELETE", path: v1 + "/ssh-key", header: js(), body: padJSON("fingerprint", 4<<10+1), status: 413, msg: "limit"},
		{name: "status description over the 64 KiB body limit", method: "POST", path: pl + "/status", header: js(), body: padJSON("description", 64<<10+1), status: 413, msg: "limit"},
		{name: "org-access check body over 4 KiB", method: "POST", path: "/api/v2/org-access/check", header: js(), body: padJSON("org", 4<<10+1), status: 413, msg: "limit"},
		{name: "token body over 4 KiB", method: "POST", path: "/api/v2/me/tokens", header: []string{"Content-Type", "application/json", "Cookie", fx.octo.cookie(), "X-CSRF-Token", fx.octo.csrf}, body: padJSON("label", 4<<10+1), status: 413, msg: "limit"},
		{name: "settings body over 64 KiB, chunked", method: "PATCH", path: v2 + "/settings", header: js(), body: padJSON("advanced", 64<<10+1), chunked: true, status: 413, msg: "limit"},

		// Bodies cut short.
		{name: "settings cut off in transit", method: "PATCH", path: v2 + "/settings", header: js(), body: settings[:10], cut: len(settings) - 10, status: 400, msg: "could not read the request body"},
		{name: "settings truncated JSON", method: "PATCH", path: v2 + "/settings", header: js(), body: settings[:len(settings)-2], status: 400, msg: "invalid JSON"},
		{name: "settings empty body", method: "PATCH", path: v2 + "/settings", header: js(), body: []byte{}, status: 400, msg: "empty body"},
		{name: "ssh-key truncated JSON", method: "POST", path: v1 + "/ssh-key", header: js(), body: sshBody[:len(sshBody)/2], status: 400, msg: "invalid JSON"},
		{name: "status truncated JSON", method: "POST", path: pl + "/status", header: js(), body: report[:8], status: 400, msg: "invalid JSON"},
		{name: "org-access check truncated JSON", method: "POST", path: "/api/v2/org-access/check", header: js(), body: []byte(`{"org":`), status: 400, msg: "invalid JSON"},
		{name: "checkout-key truncated JSON", method: "POST", path: v2 + "/checkout-key", header: js(), body: []byte(`{"type":"deploy-`), status: 400, msg: "invalid JSON"},
		{name: "token truncated JSON", method: "POST", path: "/api/v2/me/tokens", header: []string{"Content-Type", "application/json", "Cookie", fx.octo.cookie(), "X-CSRF-Token", fx.octo.csrf}, body: []byte(`{"label":"x"`), status: 400, msg: "invalid JSON"},

		// Deep nesting.
		{name: "ssh-key 100,000 nested arrays", method: "POST", path: v1 + "/ssh-key", header: js(), body: []byte(strings.Repeat("[", 100000)), status: 400, msg: "JSON"},
		{name: "settings 20,000 nested arrays", method: "PATCH", path: v2 + "/settings", header: js(), body: []byte(`{"advanced":` + strings.Repeat("[", 20000)), status: 400, msg: "JSON"},
		{name: "status 20,000 nested objects", method: "POST", path: pl + "/status", header: js(), body: []byte(strings.Repeat(`{"a":`, 12000)), status: 400, msg: "JSON"},
		{name: "settings 100,000 nested arrays (over the limit)", method: "PATCH", path: v2 + "/settings", header: js(), body: []byte(strings.Repeat("[", 100000)), status: 413, msg: "limit"},

		// Wrong content types, with bodies that are right otherwise.
		{name: "settings as text/plain", method: "PATCH", path: v2 + "/settings", header: with(js(), "Content-Type", "text/plain"), body: settings, status: 400, msg: "Content-Type must be application/json"},
		{name: "settings as a form", method: "PATCH", path: v2 + "/settings", header: with(js(), "Content-Type", "application/x-www-form-urlencoded"), body: settings, status: 400, msg: "Content-Type must be application/json"},
		{name: "ssh-key as multipart", method: "POST", path: v1 + "/ssh-key", header: with(js(), "Content-Type", "multipart/form-data; boundary=x"), body: sshBody, status: 400, msg: "Content-Type must be application/json"},
		{name: "status as text/plain", method: "POST", path: pl + "/status", header: with(js(), "Content-Type", "text/plain"), body: report, status: 400, msg: "Content-Type must be application/json"},
		{name: "checkout-key as XML", method: "POST", path: v2 + "/checkout-key", header: with(js(), "Content-Type", "application/xml"), body: []byte(`{"type":"deploy-key"}`), status: 400, msg: "Content-Type must be application/json"},
		{name: "org-access check as text/plain", method: "POST", path: "/api/v2/org-access/check", header: with(js(), "Content-Type", "text/plain"), body: []byte(`{"org":"gh/octo-org"}`), status: 400, msg: "Content-Type must be application/json"},
		{name: "token as text/plain", method: "POST", path: "/api/v2/me/tokens", header: []string{"Content-Type", "text/plain", "Cookie", fx.octo.cookie(), "X-CSRF-Token", fx.octo.csrf}, body: []byte(`{"label":"x"}`), status: 400, msg: "Content-Type must be application/json"},

		// Oversized and malformed fields.
		{name: "token label of 101 characters", method: "POST", path: "/api/v2/me/tokens", header: []string{"Content-Type", "application/json", "Cookie", fx.octo.cookie(), "X-CSRF-Token", fx.octo.csrf}, body: []byte(`{"label":"` + strings.Repeat("é", 101) + `"}`), status: 400, msg: "label"},
		{name: "token label of two lines", method: "POST", path: "/api/v2/me/tokens", header: []string{"Content-Type", "application/json", "Cookie", fx.octo.cookie(), "X-CSRF-Token", fx.octo.csrf}, body: []byte(`{"label":"a\nb"}`), status: 400, msg: "label"},
		{name: "ssh-key hostname of 254 characters", method: "POST", path: v1 + "/ssh-key", header: js(), body: jsonOf(map[string]string{"hostname": strings.Repeat("a.", 127), "private_key": fx.privateKey}), status: 400, msg: "hostname"},
		{name: "ssh-key hostname with fullwidth dots", method: "POST", path: v1 + "/ssh-key", header: js(), body: jsonOf(map[string]string{"hostname": "git．example．com", "private_key": fx.privateKey}), status: 400, msg: "hostname"},
		{name: "ssh-key hostname with a NUL", method: "POST", path: v1 + "/ssh-key", header: js(), body: jsonOf(map[string]string{"hostname": "git.example.com\x00", "private_key": fx.privateKey}), status: 400, msg: "hostname"},
		{name: "ssh-key hostname ../..", method: "POST", path: v1 + "/ssh-key", header: js(), body: jsonOf(map[string]string{"hostname": "../..", "private_key": fx.privateKey}), status: 400, msg: "hostname"},
		{name: "ssh-key private key not a key", method: "POST", path: v1 + "/ssh-key", header: js(), body: jsonOf(map[string]string{"hostname": "git.example.com", "private_key": strings.Repeat("A", 60000)}), status: 400, msg: "not a PEM-encoded private key"},
		{name: "status target_url of 2049 characters", method: "POST", path: pl + "/status", header: js(), body: jsonOf(map[string]string{"state": "running", "target_url": "https://ci.example.com/" + strings.Repeat("a", 2049-23)}), status: 400, msg: "target_url"},
		{name: "status target_url javascript:", method: "POST", path: pl + "/status", header: js(), body: []byte(`{"state":"running","target_url":"javascript:alert(1)"}`), status: 400, msg: "target_url"},
		{name: "status workflow of 60,000 characters", method: "POST", path: pl + "/status", header: js(), body: jsonOf(map[string]string{"state": "running", "workflow": strings.Repeat("w", 60000)}), status: 400, msg: "workflow"},
		{name: "status state unknown", method: "POST", path: pl + "/status", header: js(), body: []byte(`{"state":"running\u202e"}`), status: 400, msg: "invalid state"},
		{name: "org-access check org ../..", method: "POST", path: "/api/v2/org-access/check", header: js(), body: []byte(`{"org":"gh/../.."}`), status: 400, msg: "want vcs/org"},
		{name: "org-access check project of 4000 characters", method: "POST", path: "/api/v2/org-access/check", header: js(), body: jsonOf(map[string]string{"project": "gh/octo-org/" + strings.Repeat("r", 4000)}), status: 400, msg: "invalid repository"},
		{name: "settings branch pattern that does not compile", method: "PATCH", path: v2 + "/settings", header: js(), body: []byte(`{"advanced":{"pr_only_branch_overrides":["/(/"]}}`), status: 400, msg: "regular expression"},
		{name: "settings unknown field", method: "PATCH", path: v2 + "/settings", header: js(), body: []byte(`{"advanced":{"build_prs_only":true,"build_everything":true}}`), status: 400, msg: "unknown field"},
		{name: "org-access list org ../..", method: "GET", path: "/api/v2/org-access?org=gh/..%2F..", header: tok, status: 400, msg: "want vcs/org"},
	}

	// Path tricks in org and repo names, on a read and a change of each kind.
	for _, tr := range pathTricks {
		cases = append(cases,
			badCase{name: "follow, org " + tr.name, method: "POST", path: "/api/v1.1/project/gh/" + tr.segment + "/hello-world/follow", header: tok, status: 400, msg: "invalid repository"},
			badCase{name: "settings, repo " + tr.name, method: "PATCH", path: "/api/v2/project/gh/octo-org/" + tr.segment + "/settings", header: js(), body: settings, status: 400, msg: "invalid repository"},
			badCase{name: "ssh-key, repo " + tr.name, method: "POST", path: "/api/v1.1/project/gh/octo-org/" + tr.segment + "/ssh-key", header: js(), body: sshBody, status: 400, msg: "invalid repository"},
			badCase{name: "delete checkout-key, fingerprint " + tr.name, method: "DELETE", path: v2 + "/checkout-key/" + tr.segment, header: tok, status: 404, msg: "checkout key"},
			badCase{name: "get checkout-key, fingerprint " + tr.name, method: "GET", path: v1 + "/checkout-key/" + tr.segment, header: tok, status: 404, msg: "checkout key"},
			badCase{name: "delete ssh-key, fingerprint " + tr.name, method: "DELETE", path: v1 + "/ssh-key?hostname=deploy.example.com&fingerprint=" + tr.segment, header: tok, status: 404, msg: "no SSH key"},
			badCase{name: "pipeline id " + tr.name, method: "GET", path: "/api/v2/pipeline/" + tr.segment, header: tok, status: 404, msg: "not found"},
			badCase{name: "runner-token, pipeline id " + tr.name, method: "POST", path: "/api/v2/pipeline/" + tr.segment + "/runner-token", header: tok, status: 404, msg: "not found"},
			badCase{name: "status, pipeline id " + tr.name, method: "POST", path: "/api/v2/pipeline/" + tr.segment + "/status", header: js(), body: report, status: 404, msg: "not found"},
			badCase{name: "retry, delivery id " + tr.name, method: "POST", path: v2 + "/deliveries/" + tr.segment + "/retry", header: tok, status: 404, msg: "not found"},
			badCase{name: "delete token, id " + tr.name, method: "DELETE", path: "/api/v2/me/tokens/" + tr.segment, header: []string{"Cookie", fx.octo.cookie(), "X-CSRF-Token", fx.octo.csrf}, status: 404, msg: "has no api token"},
		)
	}
	cases = append(cases,
		badCase{name: "delete ssh-key, the right fingerprint with a right-to-left override", method: "DELETE", path: v1 + "/ssh-key", header: js(), body: []byte(`{"hostname":"deploy.example.com","fingerprint":"` + fx.sshFP + `\u202e"}`), status: 404, msg: "no SSH key"},
		badCase{name: "delete ssh-key, the right fingerprint for hostname ../..", method: "DELETE", path: v1 + "/ssh-key", header: js(), body: []byte(`{"hostname":"../..","fingerprint":"` + fx.sshFP + `"}`), status: 400, msg: "hostname"},
		badCase{name: "delete checkout-key, the right fingerprint with fullwidth colons", method: "DELETE", path: v2 + "/checkout-key/" + url.PathEscape(strings.ReplaceAll(fx.deployFP, ":", "：")), header: tok, status: 404, msg: "checkout key"},
		badCase{name: "delete checkout-key, the right fingerprint and a NUL", method: "DELETE", path: v2 + "/checkout-key/" + url.PathEscape(fx.deployFP) + "%00", header: tok, status: 404, msg: "checkout key"},
		badCase{name: "settings, vcs unknown", method: "PATCH", path: "/api/v2/project/gitlab/octo-org/hello-world/settings", header: js(), body: settings, status: 400, msg: "gitlab"},
	)

	// Cookie sessions: every change needs the session's own CSRF token.
	type change struct {
		name, method, path string
		body               []byte
		ss                 cookieSession
		other              cookieSession
	}
	changes := []change{
		{"follow", "POST", v1 + "/follow", nil, fx.envA, fx.envB},
		{"unfollow", "DELETE", v1 + "/follow", nil, fx.envA, fx.envB},
		{"rotate the webhook secret", "POST", v2 + "/webhook-secret/rotate", nil, fx.envA, fx.envB},
		{"patch settings", "PATCH", v2 + "/settings", settings, fx.envA, fx.envB},
		{"retry a delivery", "POST", v2 + "/deliveries/bad-input-setup/retry", nil, fx.envA, fx.envB},
		{"create a v1.1 checkout key", "POST", v1 + "/checkout-key", []byte(`{"type":"deploy-key"}`), fx.envA, fx.envB},
		{"create a v2 checkout key", "POST", v2 + "/checkout-key", []byte(`{"type":"deploy-key"}`), fx.envA, fx.envB},
		{"delete a checkout key", "DELETE", v2 + "/checkout-key/" + url.PathEscape(fx.deployFP), nil, fx.envA, fx.envB},
		{"add an SSH key", "POST", v1 + "/ssh-key", sshBody, fx.envA, fx.envB},
		{"delete an SSH key", "DELETE", v1 + "/ssh-key?hostname=deploy.example.com&fingerprint=" + url.QueryEscape(fx.sshFP), nil, fx.envA, fx.envB},
		{"mint a runner token", "POST", pl + "/runner-token", nil, fx.envA, fx.envB},
		{"check org access", "POST", "/api/v2/org-access/check", nil, fx.envA, fx.envB},
		{"create a personal token", "POST", "/api/v2/me/tokens", []byte(`{"label":"ci"}`), fx.octo, fx.mona},
		{"revoke a personal token", "DELETE", "/api/v2/me/tokens/" + fx.tokenID, nil, fx.octo, fx.mona},
		{"log out", "POST", "/logout", nil, fx.envA, fx.envB},
	}
	for _, c := range changes {
		h := []string{"Cookie", c.ss.cookie()}
		if c.body != nil {
			h = append(h, "Content-Type", "application/json")
		}
		cases = append(cases,
			badCase{name: c.name + " without a CSRF token", method: c.method, path: c.path, header: h, body: c.body, status: 403, msg: "CSRF"},
			badCase{name: c.name + " with another session's CSRF token", method: c.method, path: c.path, header: plus(h, "X-CSRF-Token", c.other.csrf), body: c.body, status: 403, msg: "CSRF"},
			badCase{name: c.name + " with another session's CSRF token in a form field", method: c.method, path: c.path,
				header: []string{"Cookie", c.ss.cookie(), "Content-Type", "application/x-www-form-urlencoded"}, body: []byte("csrf_token=" + url.QueryEscape(c.other.csrf)), status: 403, msg: "CSRF"},
		)
	}
	cases = append(cases,
		badCase{name: "log out with a token in the query and no CSRF token", method: "POST", path: "/logout?circle-token=" + apiToken, header: []string{"Cookie", fx.envA.cookie()}, status: 403, msg: "CSRF"},
		badCase{name: "log out without a session", method: "POST", path: "/logout", status: 401, msg: "not signed in"},
	)
	return cases
}

func jsonOf(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (fx *badFixture) badgeCases() []badCase {
	cases := []badCase{
		{name: "POST", method: "POST", path: "/gh/octo-org/hello-world.svg", status: 405, msg: "not allowed"},
		{name: "DELETE a branch badge", method: "DELETE", path: "/bb/octo-org/hello-world/tree/master.svg", header: []string{"Circle-Token", apiToken}, status: 405, msg: "not allowed"},
		{name: "private project, wrong token", method: "GET", path: "/bb/octo-org/hello-world.svg", header: []string{"Circle-Token", "fl_wrong_0123456789"}, status: 404, msg: "not found"},
		{name: "private project, two tokens, the right one first", method: "GET", path: "/bb/octo-org/hello-world.svg", header: []string{"Circle-Token", apiToken, "Circle-Token", "fl_wrong_0123456789"}, status: 400, msg: "one Circle-Token"},
		{name: "private project, two circle-token parameters", method: "GET", path: "/bb/octo-org/hello-world.svg?circle-token=" + apiToken + "&circle-token=x", status: 400, msg: "one Circle-Token"},
		{name: "no repository", method: "GET", path: "/gh/octo-org.svg", status: 404, msg: "no route"},
	}
	for _, tr := range pathTricks {
		cases = append(cases,
			badCase{name: "org " + tr.name, method: "GET", path: "/gh/" + tr.segment + "/hello-world.svg", status: 404, msg: "not found"},
			badCase{name: "repo " + tr.name, method: "GET", path: "/bb/octo-org/" + tr.segment + "/tree/master.svg", header: []string{"Circle-Token", apiToken}, status: 404, msg: "not found"},
		)
	}
	return cases
}

func (fx *badFixture) pageCases() []badCase {
	const project = "/projects/gh/octo-org/hello-world"
	form := func(ss cookieSession, fields ...string) ([]string, []byte) {
		v := url.Values{}
		for i := 0; i+1 < len(fields); i += 2 {
			v.Add(fields[i], fields[i+1])
		}
		return []string{"Cookie", ss.cookie(), "Content-Type", "application/x-www-form-urlencoded"}, []byte(v.Encode())
	}
	withCSRF := func(fields ...string) ([]string, []byte) {
		return form(fx.envA, append([]string{"csrf_token", fx.envA.csrf}, fields...)...)
	}
	h, settingsForm := withCSRF("build_prs_only", "on")
	cookie := []string{"Cookie", fx.envA.cookie()}
	sshH, sshForm := withCSRF("hostname", "git.example.com", "private_key", fx.privateKey)
	hugeForm := append([]byte("csrf_token="+url.QueryEscape(fx.envA.csrf)+"&hostname=x&private_key="), bytes.Repeat([]byte("A"), 3*sshkeys.MaxKeySize+16<<10)...)

	cases := []badCase{
		// Wrong methods.
		{name: "PUT /", method: "PUT", path: "/", header: cookie, status: 405, msg: "This page is not sent a PUT request"},
		{name: "DELETE a project page", method: "DELETE", path: project, header: cookie, status: 405, msg: "This page is not sent a DELETE request"},
		{name: "PUT a settings form", method: "PUT", path: project + "/settings", header: h, body: settingsForm, status: 405, msg: "This page is not sent a PUT request"},
		{name: "POST a pipeline page", method: "POST", path: "/pipelines/" + fx.pipelineID, header: h, body: settingsForm, status: 405, msg: "This page is not sent a POST request"},
		{name: "POST org-access", method: "POST", path: "/org-access", header: h, body: settingsForm, status: 405, msg: "This page is not sent a POST request"},
		{name: "DELETE /login", method: "DELETE", path: "/login", status: 405, msg: "This page is not sent a DELETE request"},
		{name: "POST /login/github", method: "POST", path: "/login/github", status: 405, msg: "not allowed"},
		{name: "POST /login/github/callback", method: "POST", path: "/login/github/callback?code=x&state=y", status: 405, msg: "not allowed"},

		// Bodies.
		{name: "settings form over the limit", method: "POST", path: project + "/ssh-keys", header: h, body: hugeForm, status: 413, msg: "larger than forgelink accepts"},
		{name: "settings form over the limit, chunked", method: "POST", path: project + "/ssh-keys", header: h, body: hugeForm, chunked: true, status: 413, msg: "larger than forgelink accepts"},
		{name: "settings form cut off in transit", method: "POST", path: project + "/settings", header: h, body: settingsForm[:5], cut: len(settingsForm) - 5, status: 400, msg: "could not read the form"},
		{name: "settings form as JSON", method: "POST", path: project + "/settings", header: with(h, "Content-Type", "application/json"), body: jsonOf(map[string]string{"csrf_token": fx.envA.csrf, "build_prs_only": "on"}), status: 415, msg: "application/x-www-form-urlencoded"},
		{name: "settings form as multipart", method: "POST", path: project + "/settings", header: with(h, "Content-Type", "multipart/form-data; boundary=x"),
			body: []byte("--x\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" + fx.envA.csrf + "\r\n--x--\r\n"), status: 415, msg: "application/x-www-form-urlencoded"},
		{name: "settings form from another site", method: "POST", path: project + "/settings", header: plus(h, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"), body: settingsForm, status: 403, msg: "sent from another site"},

		// Oversized and tricky fields.
		{name: "ssh key hostname of 254 characters", method: "POST", path: project + "/ssh-keys", header: sshH, body: replaceField(sshForm, "hostname", strings.Repeat("a.", 127)), status: 400, msg: "Invalid hostname"},
		{name: "ssh key hostname with a right-to-left override", method: "POST", path: project + "/ssh-keys", header: sshH, body: replaceField(sshForm, "hostname", "git\u202emoc.example.com"), status: 400, msg: "Invalid hostname"},
		{name: "remove a checkout key, fingerprint ../..", method: "POST", path: project + "/checkout-keys/remove", header: h, body: replaceField(settingsForm, "fingerprint", "../../"+fx.deployFP), status: 404, msg: "checkout key"},
		{name: "remove an SSH key, the right fingerprint with a NUL", method: "POST", path: project + "/ssh-keys/remove", header: h,
			body: replaceField(replaceField(settingsForm, "fingerprint", fx.sshFP+"\x00"), "hostname", "deploy.example.com"), status: 404, msg: "no SSH key"},
		{name: "remove an SSH key, hostname of 4000 characters", method: "POST", path: project + "/ssh-keys/remove", header: h,
			body: replaceField(replaceField(settingsForm, "fingerprint", fx.sshFP), "hostname", strings.Repeat("h", 4000)), status: 400, msg: "Invalid hostname"},
		{name: "add a checkout key of an unknown type", method: "POST", path: project + "/checkout-keys", header: h, body: replaceField(settingsForm, "type", "root-key"), status: 400, msg: "Add Deploy Key"},

		// Sign-in with the API token.
		{name: "sign in without the form's cookie", method: "POST", path: "/login", header: []string{"Content-Type", "application/x-www-form-urlencoded"}, body: []byte("csrf_token=x&token=" + apiToken), status: 403, msg: "expired or came from another site"},
		{name: "sign in with another form's token", method: "POST", path: "/login", header: []string{"Content-Type", "application/x-www-form-urlencoded", "Cookie", "forgelink_login_csrf=mine"}, body: []byte("csrf_token=theirs&token=" + apiToken), status: 403, msg: "expired or came from another site"},
		{name: "sign in with a wrong token", method: "POST", path: "/login", header: []string{"Content-Type", "application/x-www-form-urlencoded", "Cookie", "forgelink_login_csrf=same"}, body: []byte("csrf_token=same&token=fl_wrong_0123456789"), status: 401, msg: "not this forgelink's API token"},
		{name: "sign in with a personal token", method: "POST", path: "/login", header: []string{"Content-Type", "application/x-www-form-urlencoded", "Cookie", "forgelink_login_csrf=same"}, body: []byte("csrf_token=same&token=" + fx.personalToken), status: 401, msg: "not this forgelink's API token"},
		{name: "sign in with no token", method: "POST", path: "/login", header: []string{"Content-Type", "application/x-www-form-urlencoded", "Cookie", "forgelink_login_csrf=same"}, body: []byte("csrf_token=same"), status: 400, msg: "Enter the API token"},
		{name: "sign in with a body over 8 KiB", method: "POST", path: "/login", header: []string{"Content-Type", "application/x-www-form-urlencoded", "Cookie", "forgelink_login_csrf=same"},
			body: []byte("csrf_token=same&token=" + strings.Repeat("t", 8<<10)), status: 413, msg: "larger than"},
		{name: "sign in as JSON", method: "POST", path: "/login", header: []string{"Content-Type", "application/json", "Cookie", "forgelink_login_csrf=same"}, body: []byte(`{"csrf_token":"same","token":"` + apiToken + `"}`), status: 415, msg: "application/x-www-form-urlencoded"},
		{name: "sign in with an unknown VCS", method: "GET", path: "/login/gitlab", status: 404, msg: "not configured"},
		{name: "sign-in callback without state", method: "GET", path: "/login/github/callback?code=x", status: 400, msg: "state"},
		{name: "sign-in callback with a state of 4000 characters", method: "GET", path: "/login/github/callback?code=x&state=" + strings.Repeat("s", 4000), header: []string{"Cookie", "forgelink_oauth_state=" + strings.Repeat("s", 4000)}, status: 400, msg: "state"},
	}

	// Every form, without a CSRF token and with another session's.
	for _, action := range []string{"follow", "unfollow", "checkout-keys", "checkout-keys/remove", "ssh-keys", "ssh-keys/remove", "settings"} {
		fields := []string{"type", "deploy-key", "fingerprint", fx.deployFP, "hostname", "git.example.com", "private_key", fx.privateKey, "build_prs_only", "on"}
		mh, mb := form(fx.envA, fields...)
		fh, fb := form(fx.envA, append([]string{"csrf_token", fx.envB.csrf}, fields...)...)
		cases = append(cases,
			badCase{name: action + " form without a CSRF token", method: "POST", path: project + "/" + action, header: mh, body: mb, status: 403, msg: "security token is missing or out of date"},
			badCase{name: action + " form with another session's CSRF token", method: "POST", path: project + "/" + action, header: fh, body: fb, status: 403, msg: "security token is missing or out of date"},
			badCase{name: action + " form with the CSRF token in a header only", method: "POST", path: project + "/" + action, header: plus(mh, "X-CSRF-Token", fx.envA.csrf), body: mb, status: 403, msg: "security token is missing or out of date"},
		)
	}

	// Path tricks in org, repo and pipeline id.
	for _, tr := range pathTricks {
		cases = append(cases,
			badCase{name: "project page, org " + tr.name, method: "GET", path: "/projects/gh/" + tr.segment + "/hello-world", header: cookie, status: 404, msg: "There is no page here"},
			badCase{name: "settings form, repo " + tr.name, method: "POST", path: "/projects/gh/octo-org/" + tr.segment + "/settings", header: h, body: settingsForm, status: 404, msg: "There is no page here"},
			badCase{name: "pipeline page, id " + tr.name, method: "GET", path: "/pipelines/" + tr.segment, header: cookie, status: 404, msg: "There is no pipeline"},
		)
	}
	return cases
}

// replaceField sets field in the URL-encoded form body.
func replaceField(body []byte, field, value string) []byte {
	v, err := url.ParseQuery(string(body))
	if err != nil {
		panic(err)
	}
	v.Set(field, value)
	return []byte(v.Encode())
}

// controls are right requests of the kinds the cases spoil.
func (fx *badFixture) controls(t *testing.T) []badCase {
	t.Helper()
	js := []string{"Content-Type", "application/json", "Circle-Token", apiToken}
	sshBody := jsonOf(map[string]string{"hostname": "git.example.com", "private_key": fx.privateKey})
	var cases []badCase
	for i, p := range providers {
		push := corpus(t, p.pushCorpus)
		h := with(delivery(p, fx.secret[p.name], push), "X-GitHub-Delivery", fmt.Sprint("control-", i), "X-Request-UUID", fmt.Sprint("control-", i))
		if p.name == "github" {
			h = without(h, "X-Request-UUID")
		} else {
			h = without(h, "X-GitHub-Delivery")
		}
		cases = append(cases, badCase{name: p.name + " delivery", method: "POST", path: fx.hook[p.name], header: h, body: push, status: 202})
	}
	settingsForm := url.Values{"csrf_token": {fx.envA.csrf}, "build_prs_only": {"on"}}.Encode()
	cases = append(cases,
		badCase{name: "settings with the API token", method: "PATCH", path: "/api/v2/project/" + slugA + "/settings", header: js, body: []byte(`{"advanced":{"build_prs_only":true}}`), status: 200},
		badCase{name: "settings with the session and its CSRF token", method: "PATCH", path: "/api/v2/project/" + slugA + "/settings",
			header: []string{"Content-Type", "application/json", "Cookie", fx.envA.cookie(), "X-CSRF-Token", fx.envA.csrf}, body: []byte(`{"advanced":{"build_prs_only":false}}`), status: 200},
		badCase{name: "rotate with the session and its CSRF token in a form field", method: "POST", path: "/api/v2/project/" + slugA + "/webhook-secret/rotate",
			header: []string{"Content-Type", "application/x-www-form-urlencoded", "Cookie", fx.envA.cookie()}, body: []byte("csrf_token=" + url.QueryEscape(fx.envA.csrf)), status: 200},
		badCase{name: "ssh key", method: "POST", path: "/api/v1.1/project/" + slugA + "/ssh-key", header: js, body: sshBody, status: 201},
		badCase{name: "status report", method: "POST", path: "/api/v2/pipeline/" + fx.pipelineID + "/status", header: js, body: []byte(`{"state":"running","description":"` + strings.Repeat("d", 200) + `"}`), status: 200},
		badCase{name: "personal token", method: "POST", path: "/api/v2/me/tokens",
			header: []string{"Content-Type", "application/json", "Cookie", fx.octo.cookie(), "X-CSRF-Token", fx.octo.csrf}, body: []byte(`{"label":"` + strings.Repeat("é", 100) + `"}`), status: 201},
		badCase{name: "settings form", method: "POST", path: "/projects/" + slugA + "/settings",
			header: []string{"Content-Type", "application/x-www-form-urlencoded", "Cookie", fx.envA.cookie()}, body: []byte(settingsForm), status: 303},
		badCase{name: "log out with the CSRF token", method: "POST", path: "/logout", header: []string{"Cookie", fx.envB.cookie(), "X-CSRF-Token", fx.envB.csrf}, status: 303},
	)
	return cases
}
