// Command benchload measures the webhook intake of forgelink's one-process
// server (make run) against the intake floor (../shared/perf/floorserver)
// with the same load in one run, on loopback: N signed GitHub push
// deliveries (testdata/corpus/github/push.json, each with its own after sha
// and delivery id) from C concurrent senders, then R redeliveries of
// accepted ids.
//
// For each server it reports the CPU seconds of its process group per
// accepted delivery (from /proc, before the first request and once every
// delivery is accounted for: a pipeline for forgelink, a stored entry for
// the floor), split into the part spent while answering (until the send
// phase ends) and after it (trigger evaluation); the throughput of the
// send phase; and the p50/p99 latency of the 202 answers. It exits 1 when
// a delivery was lost or a redelivery was not answered as a duplicate or
// created anything, and 2 when the benchmark could not run. Missed ratio
// targets are reported, not failed.
//
// forgelink runs as its own binary (go build ./infra/local) with a fake
// GitHub API (shared/vcsfake) served by this process; the floor is built
// from its own module into a temporary directory.
//
//	go run ./infra/benchload [-n 2000] [-c 8] [-resend 200] [-timeout 90s]
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"forgelink/shared/vcsfake"
)

const (
	repoName   = "acme/widget"
	slug       = "gh/acme/widget"
	pushCorpus = "testdata/corpus/github/push.json"
	// ciConfig builds every branch: one workflow, no filters.
	ciConfig = `version: 2.1
jobs:
  build:
    docker: [{image: cimg/base:stable}]
    steps: [checkout, {run: make test}]
workflows:
  ci:
    jobs: [build]
`
	pollEvery = 50 * time.Millisecond
)

// Targets: forgelink/floor ratios.
const (
	targetCPU        = 2.0 // CPU per delivery at most 2x the floor
	targetThroughput = 1.0 // throughput at least the floor's
	targetP99        = 1.5 // p99 latency at most 1.5x the floor
)

type options struct {
	n, c, resend int
	timeout      time.Duration
	floorSrc     string
	floorSecret  string
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 2000, "deliveries to send to each server")
	flag.IntVar(&o.c, "c", 8, "concurrent senders")
	flag.IntVar(&o.resend, "resend", 200, "accepted deliveries to send again at the end (must answer 200 duplicate)")
	flag.DurationVar(&o.timeout, "timeout", 90*time.Second, "bound on the run after the builds (servers, load, waits)")
	flag.StringVar(&o.floorSrc, "floor", "", "floorserver module (default ../shared/perf/floorserver next to the repository)")
	flag.StringVar(&o.floorSecret, "floor-secret", "floor-secret", "the floorserver's webhook secret")
	flag.Parse()
	if o.n < 1 || o.c < 1 || o.resend < 0 || o.resend > o.n || o.timeout <= 0 {
		fmt.Fprintln(os.Stderr, "benchload: want -n >= 1, -c >= 1, 0 <= -resend <= -n, -timeout > 0")
		os.Exit(2)
	}
	os.Exit(run(o))
}

// errLost marks a failed check: something lost or duplicated (exit 1).
var errLost = errors.New("lost or duplicated")

func run(o options) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := bench(ctx, o)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errLost):
		fmt.Fprintln(os.Stderr, "benchload: FAIL:", err)
		return 1
	default:
		fmt.Fprintln(os.Stderr, "benchload:", err)
		return 2
	}
}

func bench(ctx context.Context, o options) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if o.floorSrc == "" {
		o.floorSrc = filepath.Join(filepath.Dir(root), "shared", "perf", "floorserver")
	}
	tmp, err := os.MkdirTemp("", "benchload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// Builds: outside -timeout (a cold build cache can take minutes).
	fmt.Println("benchload: building ./infra/local and the floorserver ...")
	flBin, floorBin := filepath.Join(tmp, "forgelink-local"), filepath.Join(tmp, "floorserver")
	if err := goBuild(ctx, root, "-o", flBin, "./infra/local"); err != nil {
		return err
	}
	if err := goBuild(ctx, root, "-C", o.floorSrc, "-o", floorBin, "."); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	tmpl, err := os.ReadFile(filepath.Join(root, pushCorpus))
	if err != nil {
		return err
	}
	ds, err := makeDeliveries(tmpl, o.n)
	if err != nil {
		return err
	}

	// The fake GitHub, in this process: the repository, and a config at
	// every revision (the trigger reads it at the pushed sha).
	tb := &vcsfake.ProcessTB{}
	defer tb.Close()
	gh := vcsfake.NewGitHub(tb)
	gh.AddRepo(repoName, "main", false)
	if need := 2*o.n + 100; need > vcsfake.GitHubRateLimit {
		gh.SetRateLimitRemaining(need)
	}
	for _, d := range ds {
		gh.SetFile(repoName, d.sha, ".circleci/config.yml", []byte(ciConfig))
	}

	// forgelink.
	flAddr, err := freeAddr()
	if err != nil {
		return err
	}
	flURL := "http://" + flAddr
	token := "fl_bench_" + randomHex(16)
	fl, err := startChild("forgelink", flBin, nil, append(cleanEnv(),
		"FORGELINK_ADDR="+flAddr,
		"FORGELINK_PUBLIC_URL="+flURL,
		"FORGELINK_DATA="+filepath.Join(tmp, "forgelink-data"),
		"FORGELINK_API_TOKEN="+token,
		"GITHUB_API_URL="+gh.URL,
		"GITHUB_TOKEN="+gh.Token,
		"FORGELINK_LOG_LEVEL=warn",
	), filepath.Join(tmp, "forgelink.log"))
	if err != nil {
		return err
	}
	defer fl.stop()
	api := &apiClient{base: flURL, token: token, hc: &http.Client{Timeout: 30 * time.Second}}
	if err := waitReady(ctx, fl, flURL+"/healthz"); err != nil {
		return err
	}
	hookURL, secret, err := follow(ctx, api, gh)
	if err != nil {
		return err
	}

	// The floor.
	floorAddr, err := freeAddr()
	if err != nil {
		return err
	}
	floorURL := "http://" + floorAddr
	floor, err := startChild("floorserver", floorBin, []string{"-addr", floorAddr, "-db", filepath.Join(tmp, "floor.db"), "-secret", o.floorSecret},
		cleanEnv(), filepath.Join(tmp, "floorserver.log"))
	if err != nil {
		return err
	}
	defer floor.stop()
	if err := waitReady(ctx, floor, floorURL+"/"); err != nil {
		return err
	}

	targets := []*target{
		{name: "forgelink", child: fl, hookURL: hookURL, secret: []byte(secret), accounted: api},
		{name: "floor", child: floor, hookURL: floorURL + "/hooks/github/floor", secret: []byte(o.floorSecret),
			accounted: &floorCounter{base: floorURL, hc: &http.Client{Timeout: 30 * time.Second}}},
	}
	fmt.Printf("benchload: %d GitHub push deliveries (%d B each, distinct after sha and delivery id), %d senders, %d resends, loopback\n",
		o.n, len(tmpl), o.c, o.resend)
	var results []*result
	for _, t := range targets {
		fmt.Printf("benchload: %s ...\n", t.name)
		r, err := measure(ctx, t, ds, o)
		if err != nil {
			return fmt.Errorf("%s: %w%s", t.name, err, t.child.tail(10))
		}
		results = append(results, r)
	}
	report(os.Stdout, results[0], results[1], o)
	if n := fl.logCount(`"level":"WARN"`, `"level":"ERROR"`); n > 0 {
		fmt.Printf("note: forgelink logged %d warnings/errors (retries?); see them with FORGELINK_LOG_LEVEL and make run\n", n)
	}
	var problems []string
	for _, r := range results {
		for _, p := range r.problems {
			problems = append(problems, r.name+": "+p)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w:\n  %s", errLost, strings.Join(problems, "\n  "))
	}
	fmt.Println("ok: every delivery accepted and accounted for once; every resend a duplicate that created nothing")
	return nil
}

// delivery is one signed push.
type delivery struct {
	id, sha string
	body    []byte
}

// makeDeliveries makes n copies of the push payload tmpl, each with its own
// after sha (every occurrence of the original after sha replaced: after,
// head_commit.id, commits[].id, compare URL) and delivery id.
func makeDeliveries(tmpl []byte, n int) ([]delivery, error) {
	var p struct {
		After string `json:"after"`
	}
	if err := json.Unmarshal(tmpl, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", pushCorpus, err)
	}
	if !isSHA(p.After) {
		return nil, fmt.Errorf("%s: after %q is not a 40-hex sha", pushCorpus, p.After)
	}
	salt := randomHex(8)
	ds := make([]delivery, n)
	for i := range ds {
		sum := sha1.Sum([]byte(fmt.Sprintf("benchload %s %d", salt, i)))
		sha := hex.EncodeToString(sum[:])
		ds[i] = delivery{id: uuid.NewString(), sha: sha, body: bytes.ReplaceAll(tmpl, []byte(p.After), []byte(sha))}
	}
	var check struct {
		After string `json:"after"`
	}
	if err := json.Unmarshal(ds[0].body, &check); err != nil || check.After != ds[0].sha {
		return nil, fmt.Errorf("%s: rewritten payload has after %q (%v), want %s", pushCorpus, check.After, err, ds[0].sha)
	}
	return ds, nil
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

func isSHA(s string) bool { return shaRE.MatchString(s) }

// sign is X-Hub-Signature-256 of body with secret.
func sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// counter says how many deliveries a server has accounted for.
type counter interface {
	// waitAccounted returns once at least n deliveries are accounted for.
	waitAccounted(ctx context.Context, n int) error
	// verify checks that exactly the deliveries ids are accounted for, once
	// each; it returns what it counted ("2000 pipelines") and the problems.
	verify(ctx context.Context, ids []string) (string, []string, error)
}

// target is one server under load.
type target struct {
	name      string
	child     *child
	hookURL   string
	secret    []byte
	accounted counter
}

// result is one server's measurements.
type result struct {
	name        string
	accepted    int
	lat         []time.Duration // of the 202 answers
	sendWall    time.Duration
	settle      time.Duration // end of the send phase until every delivery is accounted for
	cpuSend     time.Duration // CPU while answering: first request to end of the send phase
	cpuTotal    time.Duration // CPU from the first request until every delivery is accounted for
	resent, dup int
	counted     string        // after the resends
	verifyCPU   time.Duration // of one full count (not in cpuTotal), to size the polls' share
	listings    int           // full deliveries listings while waiting (in cpuTotal)
	problems    []string
}

// answer is one delivery's answer.
type answer struct {
	status int
	body   []byte
	lat    time.Duration
	err    error
}

func measure(ctx context.Context, t *target, ds []delivery, o options) (*result, error) {
	r := &result{name: t.name}
	sigs := make([]string, len(ds))
	for i, d := range ds {
		sigs[i] = sign(t.secret, d.body)
	}
	hc := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: o.c, DisableCompression: true},
	}
	defer hc.CloseIdleConnections()
	all := make([]int, len(ds))
	for i := range all {
		all[i] = i
	}
	pgid := t.child.pgid()

	cpu0, err := groupCPU("/proc", pgid)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	answers := sendAll(ctx, hc, t.hookURL, ds, sigs, all, o.c)
	r.sendWall = time.Since(start)
	cpuSend, err := groupCPU("/proc", pgid)
	if err != nil {
		return nil, err
	}
	r.cpuSend = cpuSend - cpu0
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("send phase: %w", err)
	}

	var accepted []int
	bad := map[string]int{}
	for i, a := range answers {
		var body struct {
			Delivery string `json:"delivery"`
		}
		switch {
		case a.err != nil:
			bad[a.err.Error()]++
		case a.status == http.StatusAccepted && json.Unmarshal(a.body, &body) == nil && body.Delivery == ds[i].id:
			accepted = append(accepted, i)
			r.lat = append(r.lat, a.lat)
		default:
			bad[fmt.Sprintf("%d %s", a.status, bytes.TrimSpace(a.body))]++
		}
	}
	r.accepted = len(accepted)
	for what, n := range bad {
		r.problems = append(r.problems, fmt.Sprintf("%d deliveries not accepted: %s", n, what))
	}

	endSend := time.Now()
	if err := t.accounted.waitAccounted(ctx, len(accepted)); err != nil {
		return nil, err
	}
	r.settle = time.Since(endSend)
	if a, ok := t.accounted.(*apiClient); ok {
		r.listings = a.listings
	}
	cpuEnd, err := groupCPU("/proc", pgid)
	if err != nil {
		return nil, err
	}
	r.cpuTotal = cpuEnd - cpu0

	ids := make([]string, len(accepted))
	for i, k := range accepted {
		ids[i] = ds[k].id
	}
	_, probs, err := t.accounted.verify(ctx, ids)
	if err != nil {
		return nil, err
	}
	r.problems = append(r.problems, probs...)
	if cpu, err := groupCPU("/proc", pgid); err == nil {
		r.verifyCPU = cpu - cpuEnd
	}

	// Redeliveries of accepted ids: 200 {"duplicate":true}, nothing new.
	re := accepted[:min(o.resend, len(accepted))]
	for _, a := range sendAll(ctx, hc, t.hookURL, ds, sigs, re, o.c) {
		r.resent++
		var body struct {
			Duplicate bool `json:"duplicate"`
		}
		if a.err == nil && a.status == http.StatusOK && json.Unmarshal(a.body, &body) == nil && body.Duplicate {
			r.dup++
		}
	}
	if r.dup != r.resent {
		r.problems = append(r.problems, fmt.Sprintf("%d of %d resends answered other than 200 duplicate", r.resent-r.dup, r.resent))
	}
	// Give a wrongly enqueued redelivery time to become a pipeline.
	select {
	case <-time.After(500 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	counted, probs, err := t.accounted.verify(ctx, ids)
	if err != nil {
		return nil, err
	}
	r.counted = counted
	for _, p := range probs {
		r.problems = append(r.problems, "after the resends: "+p)
	}
	return r, nil
}

// sendAll posts the deliveries ds[idx[...]] from c concurrent senders and
// returns their answers, in the order of idx.
func sendAll(ctx context.Context, hc *http.Client, url string, ds []delivery, sigs []string, idx []int, c int) []answer {
	out := make([]answer, len(idx))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(c, len(idx)) {
		wg.Go(func() {
			for {
				j := int(next.Add(1)) - 1
				if j >= len(idx) || ctx.Err() != nil {
					return
				}
				out[j] = post(ctx, hc, url, ds[idx[j]], sigs[idx[j]])
			}
		})
	}
	wg.Wait()
	return out
}

func post(ctx context.Context, hc *http.Client, url string, d delivery, sig string) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(d.body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/benchload")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", d.id)
	req.Header.Set("X-Hub-Signature-256", sig)
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return answer{err: err}
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return answer{status: resp.StatusCode, body: body, lat: time.Since(start), err: err}
}

// apiClient calls forgelink's API.
type apiClient struct {
	base, token string
	hc          *http.Client
	listings    int // full deliveries listings made by waitAccounted
}

func (a *apiClient) do(ctx context.Context, method, path string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Circle-Token", a.token)
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

type pipelineItem struct {
	Number  int64 `json:"number"`
	Trigger struct {
		DeliveryID string `json:"delivery_id"`
	} `json:"trigger"`
	VCS struct {
		Revision string `json:"revision"`
	} `json:"vcs"`
}

type deliveryItem struct {
	ID        string `json:"id"`
	Decisions []struct {
		Build bool `json:"build"`
	} `json:"decisions"`
}

// list pages through a CircleCI v2 list (items, next_page_token).
func list[T any](ctx context.Context, a *apiClient, path string) ([]T, error) {
	var all []T
	token := ""
	for {
		p := path + "?limit=100"
		if token != "" {
			p += "&page-token=" + token
		}
		var page struct {
			Items         []T     `json:"items"`
			NextPageToken *string `json:"next_page_token"`
		}
		if _, err := a.do(ctx, http.MethodGet, p, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextPageToken == nil || *page.NextPageToken == "" {
			return all, nil
		}
		token = *page.NextPageToken
	}
}

const (
	pipelinesPath  = "/api/v2/project/" + slug + "/pipeline"
	deliveriesPath = "/api/v2/project/" + slug + "/deliveries"
)

// waitAccounted polls the newest pipeline's number (pipelines are numbered
// per project without gaps; one cheap request) until it reaches n, then
// until the deliveries list, which trigger evaluation writes after the
// pipeline, has n records. A full listing costs the server far more than
// the poll (tens of ms of CPU for thousands of records), so they back off:
// 50 ms, doubling to 800 ms; a.listings counts them for the report.
func (a *apiClient) waitAccounted(ctx context.Context, n int) error {
	var newest int64
	recorded := -1
	wait := pollEvery
	for {
		var page struct {
			Items []pipelineItem `json:"items"`
		}
		if _, err := a.do(ctx, http.MethodGet, pipelinesPath+"?limit=1", &page); err != nil {
			return fmt.Errorf("waiting for %d pipelines (newest #%d): %w", n, newest, err)
		}
		if len(page.Items) > 0 {
			newest = page.Items[0].Number
		}
		if newest >= int64(n) {
			recs, err := list[deliveryItem](ctx, a, deliveriesPath)
			if err != nil {
				return fmt.Errorf("waiting for %d delivery records: %w", n, err)
			}
			a.listings++
			if recorded = len(recs); recorded >= n {
				return nil
			}
			wait = min(2*wait, 16*pollEvery)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("%w: %v waiting for %d pipelines: newest is #%d, %d delivery records", errLost, ctx.Err(), n, newest, recorded)
		}
	}
}

// verify: exactly one pipeline per accepted delivery, each at its own
// revision, and one delivery record each, deciding a build.
func (a *apiClient) verify(ctx context.Context, ids []string) (string, []string, error) {
	pls, err := list[pipelineItem](ctx, a, pipelinesPath)
	if err != nil {
		return "", nil, err
	}
	recs, err := list[deliveryItem](ctx, a, deliveriesPath)
	if err != nil {
		return "", nil, err
	}
	var problems []string
	plIDs, revs := make([]string, len(pls)), map[string]bool{}
	for i, p := range pls {
		plIDs[i] = p.Trigger.DeliveryID
		revs[p.VCS.Revision] = true
	}
	problems = append(problems, compareIDs("pipelines", plIDs, ids)...)
	if len(revs) != len(pls) {
		problems = append(problems, fmt.Sprintf("%d pipelines at only %d revisions", len(pls), len(revs)))
	}
	recIDs, skipped := make([]string, len(recs)), 0
	for i, d := range recs {
		recIDs[i] = d.ID
		if len(d.Decisions) != 1 || !d.Decisions[0].Build {
			skipped++
		}
	}
	problems = append(problems, compareIDs("delivery records", recIDs, ids)...)
	if skipped > 0 {
		problems = append(problems, fmt.Sprintf("%d delivery records without exactly one build decision", skipped))
	}
	return fmt.Sprintf("%d pipelines", len(pls)), problems, nil
}

// compareIDs reports how got (one id per stored item) differs from want:
// missing ids, ids stored more than once, ids never sent.
func compareIDs(what string, got, want []string) []string {
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	var missing, dup, extra int
	wanted := map[string]bool{}
	for _, id := range want {
		wanted[id] = true
		switch seen[id] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	for id := range seen {
		if !wanted[id] {
			extra++
		}
	}
	var out []string
	if missing > 0 {
		out = append(out, fmt.Sprintf("%s: %d of %d accepted deliveries missing", what, missing, len(want)))
	}
	if dup > 0 {
		out = append(out, fmt.Sprintf("%s: %d deliveries stored more than once", what, dup))
	}
	if extra > 0 {
		out = append(out, fmt.Sprintf("%s: %d entries for deliveries never accepted", what, extra))
	}
	if len(got) != len(want) && missing == 0 && dup == 0 && extra == 0 {
		out = append(out, fmt.Sprintf("%s: %d, want %d", what, len(got), len(want)))
	}
	return out
}

// floorCounter reads the floor's GET /count.
type floorCounter struct {
	base string
	hc   *http.Client
}

func (f *floorCounter) count(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.base+"/count", nil)
	if err != nil {
		return 0, err
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var c struct {
		Count int `json:"count"`
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /count: %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return 0, fmt.Errorf("GET /count: %w", err)
	}
	return c.Count, nil
}

func (f *floorCounter) waitAccounted(ctx context.Context, n int) error {
	for {
		c, err := f.count(ctx)
		if err != nil {
			return err
		}
		if c >= n {
			return nil
		}
		select {
		case <-time.After(pollEvery):
		case <-ctx.Done():
			return fmt.Errorf("%w: %v waiting for %d floor entries: %d", errLost, ctx.Err(), n, c)
		}
	}
}

func (f *floorCounter) verify(ctx context.Context, ids []string) (string, []string, error) {
	c, err := f.count(ctx)
	if err != nil {
		return "", nil, err
	}
	var problems []string
	if c != len(ids) {
		problems = append(problems, fmt.Sprintf("%d entries stored, want %d", c, len(ids)))
	}
	return fmt.Sprintf("%d entries", c), problems, nil
}

// follow follows the repository through the API and returns the installed
// hook's URL and secret as the fake GitHub recorded them.
func follow(ctx context.Context, api *apiClient, gh *vcsfake.GitHub) (hookURL, secret string, err error) {
	var out struct {
		HookURL string `json:"hook_url"`
	}
	if _, err := api.do(ctx, http.MethodPost, "/api/v1.1/project/"+slug+"/follow", &out); err != nil {
		return "", "", fmt.Errorf("follow: %w", err)
	}
	hooks := gh.Hooks(repoName)
	if len(hooks) != 1 || hooks[0].URL != out.HookURL || hooks[0].Secret == "" {
		return "", "", fmt.Errorf("follow answered hook_url %q; the fake GitHub has hooks %+v", out.HookURL, hooks)
	}
	return hooks[0].URL, hooks[0].Secret, nil
}

func report(w io.Writer, fl, floor *result, o options) {
	perDel := func(d time.Duration, r *result) float64 {
		return d.Seconds() * 1000 / float64(max(r.accepted, 1))
	}
	tput := func(r *result) float64 { return float64(r.accepted) / r.sendWall.Seconds() }
	p := func(r *result, q float64) float64 {
		return percentile(sortedCopy(r.lat), q).Seconds() * 1000
	}
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	cpuR := ratio(perDel(fl.cpuTotal, fl), perDel(floor.cpuTotal, floor))
	tputR := ratio(tput(fl), tput(floor))
	p99R := ratio(p(fl, 99), p(floor, 99))

	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(label, a, b, r string) { fmt.Fprintf(tw, "%-27s\t%s\t%s\t%s\t\n", label, a, b, r) }
	f := func(format string, v float64) string { return fmt.Sprintf(format, v) }
	row("", "forgelink", "floor", "forgelink/floor")
	row("accepted (202)", fmt.Sprint(fl.accepted), fmt.Sprint(floor.accepted), "")
	row("send phase (s)", f("%.2f", fl.sendWall.Seconds()), f("%.2f", floor.sendWall.Seconds()), "")
	row("accounted for after (s)", f("%.2f", fl.settle.Seconds()), f("%.2f", floor.settle.Seconds()), "")
	row("CPU total (s)", f("%.2f", fl.cpuTotal.Seconds()), f("%.2f", floor.cpuTotal.Seconds()), "")
	row("CPU per delivery (ms)", f("%.3f", perDel(fl.cpuTotal, fl)), f("%.3f", perDel(floor.cpuTotal, floor)), f("%.2fx", cpuR))
	row("  while answering (ms)", f("%.3f", perDel(fl.cpuSend, fl)), f("%.3f", perDel(floor.cpuSend, floor)), "")
	row("  after (ms)", f("%.3f", perDel(fl.cpuTotal-fl.cpuSend, fl)), f("%.3f", perDel(floor.cpuTotal-floor.cpuSend, floor)), "")
	row("throughput (deliveries/s)", f("%.0f", tput(fl)), f("%.0f", tput(floor)), f("%.2fx", tputR))
	row("latency p50 (ms)", f("%.2f", p(fl, 50)), f("%.2f", p(floor, 50)), "")
	row("latency p99 (ms)", f("%.2f", p(fl, 99)), f("%.2f", p(floor, 99)), f("%.2fx", p99R))
	row("resends: 200 duplicate", fmt.Sprintf("%d/%d", fl.dup, fl.resent), fmt.Sprintf("%d/%d", floor.dup, floor.resent), "")
	row("stored after resends", fl.counted, floor.counted, "")
	tw.Flush()

	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	fmt.Fprintf(w, "\ntarget: CPU ≤ %.1f×, throughput ≥ %.1f×, p99 ≤ %.1f×\n", targetCPU, targetThroughput, targetP99)
	fmt.Fprintf(w, "  CPU per delivery  %5.2f×  %s\n", cpuR, met(cpuR <= targetCPU))
	fmt.Fprintf(w, "  throughput        %5.2f×  %s\n", tputR, met(tputR >= targetThroughput))
	fmt.Fprintf(w, "  p99 latency       %5.2f×  %s\n", p99R, met(p99R <= targetP99))
	fmt.Fprintf(w, "(CPU: utime+stime of each server's process group, %d ms ticks. forgelink's includes its polls: a newest-pipeline\n"+
		" request every %v, then full deliveries listings, backing off, %d of them; one full pipelines+deliveries listing took %.0f ms of CPU)\n",
		1000/clockTicks, pollEvery, fl.listings, fl.verifyCPU.Seconds()*1000)
}

// child is a server process in its own process group.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

func startChild(name, bin string, args, env []string, logPath string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	return c, nil
}

func (c *child) pgid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the child's process group, then SIGKILL after 10s.
func (c *child) stop() {
	if c.exited() {
		return
	}
	_ = syscall.Kill(-c.pgid(), syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-c.pgid(), syscall.SIGKILL)
		<-c.done
	}
}

// tail returns the last n lines of the child's output, for errors.
func (c *child) tail(n int) string {
	b, _ := os.ReadFile(c.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	lines = lines[max(len(lines)-n, 0):]
	return "\n" + c.name + " output (last lines):\n  " + strings.Join(lines, "\n  ")
}

// logCount counts the child's output lines holding any of subs.
func (c *child) logCount(subs ...string) int {
	f, err := os.Open(c.logPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		for _, s := range subs {
			if strings.Contains(sc.Text(), s) {
				n++
				break
			}
		}
	}
	return n
}

// waitReady polls url until it answers 200.
func waitReady(ctx context.Context, c *child, url string) error {
	hc := &http.Client{Timeout: time.Second}
	for {
		if c.exited() {
			return fmt.Errorf("%s exited at start-up: %v%s", c.name, c.err, c.tail(10))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s: %w%s", c.name, url, ctx.Err(), c.tail(10))
		}
	}
}

// goBuild runs go build args in dir, with $GO (as make passes it) or go.
func goBuild(ctx context.Context, dir string, args ...string) error {
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.CommandContext(ctx, goCmd, append([]string{"build"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// moduleRoot finds the forgelink module from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module forgelink\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the forgelink repository (no go.mod of module forgelink found upwards)")
		}
		dir = parent
	}
}

// cleanEnv is this process's environment without forgelink's and the
// VCSs' variables, so that only the ones the benchmark sets apply.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "FORGELINK_") || strings.HasPrefix(k, "GITHUB_") || strings.HasPrefix(k, "BITBUCKET_") ||
			k == "AWS_ENDPOINT_URL" || k == "DYNAMODB_ENDPOINT" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
