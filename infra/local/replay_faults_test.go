package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"forgelink/infra/replay"
)

// replayFaultProxy stands in front of a fake VCS and, while on, answers some
// requests itself instead of passing them on: 502 and 503, 429 with
// Retry-After, a connection reset, a stall of 30 s (longer than
// forgelink's 20 s client timeout), and 502 for every config read at a
// doomed revision. A request it answers never reaches the fake, so the
// fake's statuses are exactly what forgelink got posted.
type replayFaultProxy struct {
	next http.Handler
	on   atomic.Bool
	// doomed reports whether config reads at a revision always fail.
	doomed func(rev string) bool

	mu     sync.Mutex
	r      *rand.Rand
	stalls int // left to inject
	counts map[string]int
}

func newReplayFaultProxy(t *testing.T, next http.Handler, doomed func(string) bool, seed uint64) (*replayFaultProxy, *httptest.Server) {
	p := &replayFaultProxy{next: next, doomed: doomed, r: rand.New(rand.NewPCG(seed, 5)), stalls: 4, counts: map[string]int{}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv
}

// replayConfigRevision returns the revision of a config read: GitHub's
// .../contents/.circleci/config.yml?ref=REV, Bitbucket's
// .../src/REV/.circleci/config.yml.
func replayConfigRevision(r *http.Request) (string, bool) {
	p := r.URL.Path
	if !strings.HasSuffix(p, "/.circleci/config.yml") {
		return "", false
	}
	if ref := r.URL.Query().Get("ref"); ref != "" {
		return ref, true
	}
	parts := strings.Split(p, "/")
	if len(parts) >= 4 && parts[len(parts)-4] == "src" {
		return parts[len(parts)-3], true
	}
	return "", false
}

// replayVCSFailure reports whether a delivery's error is one the fault
// proxy injects: a 5xx, a rate limit or a cut connection.
func replayVCSFailure(err string) bool {
	for _, s := range []string{"(HTTP 502)", "(HTTP 503)", "rate limit", "could not reach"} {
		if strings.Contains(err, s) {
			return true
		}
	}
	return false
}

func (p *replayFaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.on.Load() {
		p.next.ServeHTTP(w, r)
		return
	}
	fault := ""
	if rev, ok := replayConfigRevision(r); ok && p.doomed(rev) {
		fault = "doomed"
	} else {
		p.mu.Lock()
		switch x := p.r.IntN(100); {
		case x < 4:
			fault = "5xx"
		case x < 7:
			fault = "429"
		case x < 9:
			fault = "reset"
		case x < 10 && p.stalls > 0:
			fault = "stall"
			p.stalls--
		}
		p.mu.Unlock()
	}
	if fault == "" {
		p.next.ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	p.counts[fault]++
	p.mu.Unlock()
	switch fault {
	case "doomed", "5xx":
		status := http.StatusBadGateway
		if fault == "5xx" && r.URL.Path[len(r.URL.Path)-1]%2 == 0 {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"message":"Server Error (injected %s)"}`, fault)
	case "429":
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"message":"You have exceeded a secondary rate limit (injected)"}`)
	case "reset":
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0) // close with RST
		}
		conn.Close()
	case "stall":
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
			w.WriteHeader(http.StatusGatewayTimeout)
		}
	}
}

func (p *replayFaultProxy) injected() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// TestReplayFaultsMakeRun replays deliveries (600; FORGELINK_REPLAY_FAULT_DELIVERIES)
// at the `make run` binary while the fake VCSs behind a fault proxy answer
// some requests 502/503, 429 with Retry-After, reset the connection or
// stall past the client timeout, and fail every config read at about one
// revision in sixteen; the process is killed (SIGKILL) halfway and started
// again on the same data. Afterwards: every accepted delivery was
// answered once and decided, except those whose config could never be
// read, which wait as dead letters with their error and attempts until
// retried once the VCS is well; the pipelines are exactly the plan's; and
// the VCS shows each forward transition once (a post the kill interrupted
// may be repeated with the same state, counted).
func TestReplayFaultsMakeRun(t *testing.T) {
	n := replay.Deliveries(t, 600, "FORGELINK_REPLAY_FAULT_DELIVERIES")
	ctx := context.Background()
	began := time.Now()
	bin := buildLocal(t)
	projects := replay.Projects()
	fakes := replay.NewFakes(t, projects)
	doomed := func(rev string) bool { return strings.HasPrefix(rev, "0") }
	ghFaults, ghProxy := newReplayFaultProxy(t, fakes.GitHub, doomed, 1)
	bbFaults, bbProxy := newReplayFaultProxy(t, fakes.Bitbucket, doomed, 2)
	proxied := func(proxy, fake string) string {
		u, _ := url.Parse(fake)
		return proxy + u.Path
	}
	env := []string{
		"FORGELINK_ADDR=" + freeAddr(t), // the same on restart: hook URLs name it
		"FORGELINK_DATA=" + replayDataDir(t),
		"FORGELINK_API_TOKEN=",
		"FORGELINK_PUBLIC_URL=",
		"FORGELINK_LOG_LEVEL=warn",
		"FORGELINK_SWEEP_INTERVAL=0",
		"GITHUB_API_URL=" + proxied(ghProxy.URL, fakes.GitHub.URL),
		"GITHUB_TOKEN=" + fakes.GitHub.Token,
		"BITBUCKET_API_URL=" + proxied(bbProxy.URL, fakes.Bitbucket.URL),
		"BITBUCKET_TOKEN=" + fakes.Bitbucket.Token,
	}
	faults := func(on bool) { ghFaults.on.Store(on); bbFaults.on.Store(on) }
	proc := startLocal(t, bin, env...)
	proc.waitReady(t)
	c := &apiCaller{t: t, base: proc.url, token: proc.token}
	for _, p := range projects {
		c.do(http.MethodPost, "/api/v1.1/project/"+p.Slug()+"/follow", http.StatusCreated, nil)
		h := fakes.Hook(t, p)
		p.HookURL, p.Secret, p.HookUUID = h.URL, h.Secret, h.ID
	}
	plan, err := replay.NewPlan(replay.Options{Deliveries: n, Projects: projects, Testdata: "../../testdata", Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	fakes.Configs(plan)
	t.Logf("plan: %s", plan.Counts())
	// The deliveries that must die: those with an event that reads the
	// config at a doomed revision.
	wantDead := map[string]bool{}
	for _, d := range plan.Deliveries {
		for _, w := range d.Wants {
			if d.Bad == "" && w.Build && doomed(w.Revision) {
				wantDead[d.ID] = true
			}
		}
	}

	// Half the deliveries, a kill while they are evaluated, a restart, the other half.
	faults(true)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	half := len(plan.Sends) / 2
	answers := replay.SendAll(ctx, plan.Sends[:half], 8, replay.HTTP(hc))
	time.Sleep(2 * time.Second)
	if err := proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-proc.done
	before := fakes.PostCount()
	proc = startLocal(t, bin, env...)
	proc.waitReady(t)
	c = &apiCaller{t: t, base: proc.url, token: proc.token}
	answers = append(answers, replay.SendAll(ctx, plan.Sends[half:], 8, replay.HTTP(hc))...)
	tally, problems := plan.CheckAnswers(answers)
	t.Logf("killed after %d of %d sends with %d status posts made; %s", half, len(plan.Sends), before, tally)
	replay.Check(t, "answers", problems)

	// Every delivery is decided but the doomed ones, which die.
	counts := plan.Counts()
	var records []replay.Record
	var dead []replayDead
	deadline := time.Now().Add(3*time.Minute + time.Duration(n)*50*time.Millisecond)
	for {
		records, dead = replayRecords(c, projects), replayDeadLetters(c, projects)
		settled := 0
		for _, r := range records {
			if r.State == "decided" || r.State == "dead" {
				settled++
			}
		}
		if settled >= counts.Good || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	deadIDs := map[string]bool{}
	for _, d := range dead {
		deadIDs[d.ID] = true
		if !wantDead[d.ID] {
			t.Errorf("delivery %s of %s is dead (%s); only deliveries whose config cannot be read may die", d.ID, d.project, d.Error)
		}
		// The last attempt's error is the VCS's: the doomed config read's 502,
		// or a fault injected into another read of the same attempt.
		if d.Attempts != 5 || !replayVCSFailure(d.Error) {
			t.Errorf("dead delivery %s: %d attempts, error %q; want 5 and the VCS's failure", d.ID, d.Attempts, d.Error)
		}
	}
	for id := range wantDead {
		if !deadIDs[id] {
			t.Errorf("delivery %s reads its config at a doomed revision, but is not dead", id)
		}
	}
	t.Logf("%d deliveries dead as planned, e.g. %+v", len(dead), dead[:min(1, len(dead))])

	// The VCS is well again: every dead letter is retried, and decided.
	faults(false)
	for _, d := range dead {
		c.do(http.MethodPost, "/api/v2/project/"+d.project+"/deliveries/"+d.ID+"/retry", http.StatusAccepted, nil)
	}
	wantPending := plan.WantPending()
	decided := func() bool {
		k := 0
		for _, r := range replayRecords(c, projects) {
			if r.State == "decided" {
				k++
			}
		}
		return k >= counts.Good
	}
	// A post cut short by the kill waits for its claim's lease (a minute).
	settled := fakes.WaitPosts(t, replay.PostCount(wantPending), time.Now().Add(3*time.Minute+time.Duration(n)*50*time.Millisecond), decided)
	pipelines := replayPipelines(c, projects)
	replay.Check(t, "pipelines", plan.CheckPipelines(pipelines))
	replay.Check(t, "delivery records", plan.CheckRecords(replayRecords(c, projects)))
	posts, repeated := replay.Collapse(fakes.Posts(projects))
	replay.Check(t, "pending statuses", replay.CheckPosts(wantPending, posts))
	t.Logf("every delivery decided and the pending statuses posted %v later; %d repeated after the kill", settled.Round(time.Millisecond), repeated)
	if t.Failed() {
		t.FailNow()
	}

	// The executor's reports, the VCS failing now and then again.
	faults(true)
	scripts := replay.Scripts(projects, pipelines, 6, 0.30, 0.10)
	wantPosts := replay.WantPosts(scripts)
	replay.Check(t, "reports", replay.RunScripts(ctx, scripts, 8, func(ctx context.Context, r *replay.Report) (int, []byte, error) {
		h := http.Header{"Content-Type": {"application/json"}, "Circle-Token": {proc.token}}
		return replay.HTTP(hc)(ctx, &replay.Request{URL: proc.url + "/api/v2/pipeline/" + r.Pipeline.ID + "/status", Header: h, Body: r.Body()})
	}))
	fakes.WaitPosts(t, replay.PostCount(wantPosts)+repeated, time.Now().Add(3*time.Minute), nil)
	posts, repeated = replay.Collapse(fakes.Posts(projects))
	replay.Check(t, "statuses", replay.CheckPosts(wantPosts, posts))
	replay.Check(t, "workflow states", replay.CheckFinal(scripts, replayPipelines(c, projects)))
	for _, pl := range replayStatusErrors(c, projects) {
		if len(pl.statusErrors) > 0 {
			t.Errorf("pipeline %s #%d: status errors %v; want none (every failure was retried)", pl.project, pl.number, pl.statusErrors)
		}
	}
	t.Logf("faults injected: GitHub %v, Bitbucket %v; %d pipelines, %d status posts (%d expected, %d repeated); %v in all",
		ghFaults.injected(), bbFaults.injected(), len(pipelines), fakes.PostCount(), replay.PostCount(wantPosts), repeated, time.Since(began).Round(time.Millisecond))
}

// replayDead is a dead letter in the deliveries API.
type replayDead struct {
	project, ID string
	Error       string
	Attempts    int
}

// replayDeadLetters lists the dead deliveries of the projects through the API.
func replayDeadLetters(c *apiCaller, projects []*replay.Project) []replayDead {
	c.t.Helper()
	type item struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Error    string `json:"error"`
		Attempts int    `json:"attempts"`
	}
	var out []replayDead
	for _, p := range projects {
		for _, it := range listAll[item](c, "/api/v2/project/"+p.Slug()+"/deliveries") {
			if it.State == "dead" {
				out = append(out, replayDead{project: p.Slug(), ID: it.ID, Error: it.Error, Attempts: it.Attempts})
			}
		}
	}
	slices.SortFunc(out, func(a, b replayDead) int { return strings.Compare(a.ID, b.ID) })
	return out
}

type replayPipelineErrors struct {
	project      string
	number       int64
	statusErrors []string
}

// replayStatusErrors lists the projects' pipelines with their status errors.
func replayStatusErrors(c *apiCaller, projects []*replay.Project) []replayPipelineErrors {
	c.t.Helper()
	type item struct {
		Number       int64    `json:"number"`
		StatusErrors []string `json:"status_errors"`
	}
	var out []replayPipelineErrors
	for _, p := range projects {
		for _, it := range listAll[item](c, "/api/v2/project/"+p.Slug()+"/pipeline") {
			out = append(out, replayPipelineErrors{p.Slug(), it.Number, it.StatusErrors})
		}
	}
	return out
}
