package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"forgelink/shared/vcsfake"
)

const (
	crashRepo = "acme/widget"
	crashSlug = "gh/acme/widget"
	// crashConfig builds every branch: one workflow, no filters.
	crashConfig = `version: 2.1
jobs:
  build:
    docker: [{image: cimg/base:stable}]
    steps: [checkout]
workflows:
  ci:
    jobs: [build]
`
)

// TestCrashResumesAcceptedDeliveries: every delivery the `make run` binary
// answered 202 becomes exactly one pipeline, even when the process is
// killed (SIGKILL) while evaluations wait on a slow GitHub: the next start
// on the same data directory resumes what was accepted and not decided.
func TestCrashResumesAcceptedDeliveries(t *testing.T) {
	const (
		n    = 40
		free = 8 // config reads the slow GitHub answers before it stalls
	)
	bin := buildLocal(t)
	data := filepath.Join(t.TempDir(), "data")

	ds := pushDeliveries(t, n)
	gh := vcsfake.NewGitHub(t)
	gh.AddRepo(crashRepo, "main", false)
	for _, d := range ds {
		gh.SetFile(crashRepo, d.sha, ".circleci/config.yml", []byte(crashConfig))
	}
	// The first run's GitHub answers `free` config reads, then holds every
	// other one until the reader goes away (or release is closed).
	slow := &stallConfigReads{next: gh, free: free, release: make(chan struct{})}
	api := httptest.NewServer(slow)
	t.Cleanup(api.Close)
	env := func() []string {
		return []string{
			"FORGELINK_ADDR=" + freeAddr(t),
			"FORGELINK_DATA=" + data,
			"FORGELINK_API_TOKEN=",
			"FORGELINK_PUBLIC_URL=",
			"GITHUB_API_URL=" + api.URL + "/api/v3/",
			"GITHUB_TOKEN=" + gh.Token,
		}
	}

	first := startLocal(t, bin, env()...)
	first.waitReady(t)
	c := &apiCaller{t: t, base: first.url, token: first.token}
	c.do(http.MethodPost, "/api/v1.1/project/"+crashSlug+"/follow", http.StatusCreated, nil)
	hooks := gh.Hooks(crashRepo)
	if len(hooks) != 1 || hooks[0].Secret == "" {
		t.Fatalf("hooks on the fake GitHub = %+v; want one with a secret", hooks)
	}

	// N signed pushes at once; every one is accepted.
	var wg sync.WaitGroup
	problems := make([]string, n)
	for i, d := range ds {
		wg.Go(func() { problems[i] = d.send(hooks[0].URL, hooks[0].Secret) })
	}
	wg.Wait()
	for _, p := range problems {
		if p != "" {
			t.Fatal(p)
		}
	}

	// Kill it mid-evaluation: some pipelines exist, and evaluations are
	// waiting on GitHub for their config.
	var before []pipelineItem
	deadline := time.Now().Add(15 * time.Second)
	for {
		before = listAll[pipelineItem](c, "/api/v2/project/"+crashSlug+"/pipeline")
		if len(before) > 0 && slow.stalled.Load() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15s: %d pipelines, %d config reads stalled; want both > 0", len(before), slow.stalled.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(before) >= n {
		t.Fatalf("%d pipelines before the kill; want fewer than %d", len(before), n)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	if ws, ok := first.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("first run ended with %v; want killed by SIGKILL", first.err)
	}
	t.Logf("killed with %d of %d pipelines created, %d config reads stalled", len(before), n, slow.stalled.Load())

	// Again on the same data, with GitHub answering at once.
	close(slow.release)
	second := startLocal(t, bin, env()...)
	if second.token != first.token {
		t.Errorf("second run printed API token %q; want the first run's, kept in the data directory", second.token)
	}
	second.waitReady(t)
	c = &apiCaller{t: t, base: second.url, token: second.token}

	var pls []pipelineItem
	var recs []deliveryItem
	deadline = time.Now().Add(30 * time.Second)
	for {
		pls = listAll[pipelineItem](c, "/api/v2/project/"+crashSlug+"/pipeline")
		recs = listAll[deliveryItem](c, "/api/v2/project/"+crashSlug+"/deliveries")
		decided := 0
		for _, r := range recs {
			if r.State == "decided" {
				decided++
			}
		}
		if len(pls) >= n && decided >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30s after the restart: %d pipelines, %d delivery records (%d decided); want %d each", len(pls), len(recs), decided, n)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Exactly one pipeline per accepted delivery, at its own revision.
	wantRev := map[string]string{} // delivery id -> after sha
	for _, d := range ds {
		wantRev[d.id] = d.sha
	}
	if len(pls) != n {
		t.Errorf("%d pipelines; want %d", len(pls), n)
	}
	revs, byDelivery := map[string]int{}, map[string]int{}
	for _, p := range pls {
		revs[p.VCS.Revision]++
		byDelivery[p.Trigger.DeliveryID]++
		if want, ok := wantRev[p.Trigger.DeliveryID]; !ok || p.VCS.Revision != want {
			t.Errorf("pipeline #%d: delivery %q at revision %s; want a sent delivery at its own after sha", p.Number, p.Trigger.DeliveryID, p.VCS.Revision)
		}
	}
	if len(revs) != n {
		t.Errorf("%d pipelines at %d distinct revisions; want %d", len(pls), len(revs), n)
	}
	for rev, k := range revs {
		if k > 1 {
			t.Errorf("revision %s has %d pipelines; want one", rev, k)
		}
	}
	for id := range wantRev {
		if byDelivery[id] != 1 {
			t.Errorf("delivery %s has %d pipelines; want one", id, byDelivery[id])
		}
	}

	// And one delivery record each, decided.
	if len(recs) != n {
		t.Errorf("%d delivery records; want %d", len(recs), n)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if _, ok := wantRev[r.ID]; !ok || seen[r.ID] {
			t.Errorf("delivery record %q: not a sent delivery, or listed twice", r.ID)
		}
		seen[r.ID] = true
		if r.State != "decided" {
			t.Errorf("delivery %s is %q; want decided", r.ID, r.State)
		}
	}
}

// stallConfigReads passes every request to next, except that after the
// first `free` reads of .circleci/config.yml it holds each such read until
// its client goes away or release is closed.
type stallConfigReads struct {
	next    http.Handler
	free    int64
	release chan struct{}
	reads   atomic.Int64
	stalled atomic.Int64 // reads held so far
}

func (s *stallConfigReads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/contents/.circleci/config.yml") && s.reads.Add(1) > s.free {
		select {
		case <-s.release:
		default:
			s.stalled.Add(1)
			select {
			case <-s.release:
			case <-r.Context().Done():
				return
			}
		}
	}
	s.next.ServeHTTP(w, r)
}

// pushDelivery is one signed GitHub push with its own delivery id and
// after sha.
type pushDelivery struct {
	id, sha string
	body    []byte
}

// pushDeliveries makes n copies of testdata/corpus/github/push.json, each
// with its own after sha (every occurrence of the original replaced) and
// delivery id.
func pushDeliveries(t *testing.T, n int) []pushDelivery {
	t.Helper()
	tmpl, err := os.ReadFile("../../testdata/corpus/github/push.json")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		After string `json:"after"`
	}
	if err := json.Unmarshal(tmpl, &p); err != nil || len(p.After) != 40 {
		t.Fatalf("push.json: after %q (%v); want a 40-hex sha", p.After, err)
	}
	ds := make([]pushDelivery, n)
	for i := range ds {
		sum := sha1.Sum(fmt.Appendf(nil, "%s %d", t.Name(), i))
		sha := hex.EncodeToString(sum[:])
		ds[i] = pushDelivery{id: uuid.NewString(), sha: sha, body: bytes.ReplaceAll(tmpl, []byte(p.After), []byte(sha))}
	}
	return ds
}

// send posts d to hookURL, signed with secret, and returns "" when it was
// accepted (202 with its delivery id), or what went wrong.
func (d pushDelivery) send(hookURL, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(d.body)
	req, err := http.NewRequest(http.MethodPost, hookURL, bytes.NewReader(d.body))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", d.id)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Sprintf("delivery %s: %v", d.id, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body struct {
		Delivery string `json:"delivery"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &body) != nil || body.Delivery != d.id {
		return fmt.Sprintf("delivery %s: %d %s; want 202 with its id", d.id, resp.StatusCode, bytes.TrimSpace(b))
	}
	return ""
}

// apiCaller calls forgelink's API with the API token, failing the test on
// any unexpected answer.
type apiCaller struct {
	t           *testing.T
	base, token string
}

func (c *apiCaller) do(method, path string, want int, out any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Circle-Token", c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d %s; want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
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
	ID    string `json:"id"`
	State string `json:"state"`
}

// listAll reads every page of a CircleCI v2 list.
func listAll[T any](c *apiCaller, path string) []T {
	c.t.Helper()
	var all []T
	token := ""
	for {
		p := path + "?limit=100"
		if token != "" {
			p += "&page-token=" + url.QueryEscape(token)
		}
		var page struct {
			Items         []T     `json:"items"`
			NextPageToken *string `json:"next_page_token"`
		}
		c.do(http.MethodGet, p, http.StatusOK, &page)
		all = append(all, page.Items...)
		if page.NextPageToken == nil || *page.NextPageToken == "" {
			return all
		}
		token = *page.NextPageToken
	}
}
