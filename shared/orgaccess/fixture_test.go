package orgaccess_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"forgelink/shared/bitbucket"
	"forgelink/shared/bolt"
	"forgelink/shared/follow"
	"forgelink/shared/forgelink"
	"forgelink/shared/forges"
	"forgelink/shared/github"
	"forgelink/shared/orgaccess"
	"forgelink/shared/sealer"
	"forgelink/shared/vcsfake"
)

// fixture is an orgaccess.Service over a bbolt store whose checkers and
// repairs are the real GitHub and Bitbucket adapters talking to the fakes.
// Projects are followed through follow.Service, so their hooks and keys
// exist on the fakes.
type fixture struct {
	st     *bolt.Store
	gh     *vcsfake.GitHub
	bb     *vcsfake.Bitbucket
	follow *follow.Service
	svc    *orgaccess.Service
	clock  *clock
	logs   *lockedBuffer
	// receiver stands in for forgelink's webhook endpoint: hooks are
	// installed at its URL, so (re)deliveries stay on this machine.
	receiver *receiver
	// ghURL is the GitHub API base the forges use (the fake's, or a proxy
	// in front of it). Set it before a sweep, not during one.
	ghURL string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "forgelink.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek, err := sealer.OpenKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, gh: vcsfake.NewGitHub(t), bb: vcsfake.NewBitbucket(t), clock: newClock(), logs: &lockedBuffer{}, receiver: newReceiver(t)}
	f.ghURL = f.gh.URL
	log := slog.New(slog.NewJSONHandler(f.logs, nil))
	vcs := func(ctx context.Context, v forgelink.VCS) (forgelink.Forge, error) {
		switch v {
		case forgelink.GitHub:
			return github.NewForge(f.ghURL, f.gh.Token, nil)
		case forgelink.Bitbucket:
			return bitbucket.NewForge(f.bb.URL, f.bb.Token, nil)
		}
		return nil, forgelink.Errorf(forgelink.Invalid, "unknown vcs %q", v)
	}
	f.follow = &follow.Service{Store: st, Sealer: sealer.NewEnvelope(kek), Forges: vcs, Log: log}
	f.svc = &orgaccess.Service{
		Store: st, Checkers: forges.Checkers(vcs), Repair: f.follow.Repair, PublicURL: f.receiver.URL,
		GitHubWebURL: "https://github.com", OAuthClientID: "Iv1.test0123456789", Now: f.clock.Now, Log: log,
	}
	return f
}

// followRepo adds the repository ("gh/org/repo" or "bb/ws/repo") to its
// fake and follows it.
func (f *fixture) followRepo(t testing.TB, slug string) *forgelink.Project {
	t.Helper()
	s := mustSlug(slug)
	if s.VCS == forgelink.Bitbucket {
		f.bb.AddRepo(s.FullName(), "main", true)
	} else {
		f.gh.AddRepo(s.FullName(), "main", false)
	}
	res, err := f.follow.Follow(context.Background(), s, "octocat", f.receiver.URL)
	if err != nil {
		t.Fatalf("follow %s: %v", slug, err)
	}
	return res.Project
}

func (f *fixture) project(t testing.TB, slug string) *forgelink.Project {
	t.Helper()
	p, err := f.st.GetProject(context.Background(), mustSlug(slug))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// access returns the project's stored access, failing when there is none.
func (f *fixture) access(t testing.TB, slug string) *forgelink.ProjectAccess {
	t.Helper()
	p := f.project(t, slug)
	if p.Access == nil {
		t.Fatalf("%s has no access record", slug)
	}
	return p.Access
}

func (f *fixture) sweep(t testing.TB, scope orgaccess.Scope) *orgaccess.Result {
	t.Helper()
	res, err := f.svc.Sweep(context.Background(), scope)
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	return res
}

// org returns the stored status of one org ("gh/acme").
func (f *fixture) org(t testing.TB, org string) orgaccess.Org {
	t.Helper()
	scope, err := orgaccess.ParseScope(org, "")
	if err != nil {
		t.Fatal(err)
	}
	orgs, err := f.svc.Status(context.Background(), scope)
	if err != nil {
		t.Fatal(err)
	}
	if len(orgs) != 1 {
		t.Fatalf("status of %s: %d orgs, want 1", org, len(orgs))
	}
	return orgs[0]
}

func mustSlug(s string) forgelink.Slug {
	slug, err := forgelink.ParseSlug(s)
	if err != nil {
		panic(err)
	}
	return slug
}

// receiver answers every webhook delivery 202 and keeps their
// X-GitHub-Delivery ids.
type receiver struct {
	URL string
	mu  sync.Mutex
	ids []string
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.ids = append(r.ids, req.Header.Get("X-GitHub-Delivery"))
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *receiver) deliveries() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

// clock is a Service.Now that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// newClock starts at the real time: rate limit resets and hook deliveries
// come from the fakes' real clocks.
func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Millisecond)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of a
// logger shared by the sweep's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// entries returns the logged JSON records whose msg is msg, oldest first.
func (b *lockedBuffer) entries(t testing.TB, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// repoGets lists the GET /repos/{fullName} requests (not those of its
// sub-resources) the GitHub fake answered, oldest first.
func repoGets(gh *vcsfake.GitHub) []string {
	var out []string
	for _, r := range gh.Requests() {
		rest, ok := strings.CutPrefix(r.Path, "/api/v3/repos/")
		if ok && r.Method == "GET" && strings.Count(rest, "/") == 1 {
			out = append(out, rest)
		}
	}
	return out
}
