package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"forgelink/infra/replay"
)

// replayDataDir is where the replayed server keeps its data: on /dev/shm
// where there is one, so that bbolt's fsyncs do not make the replay a
// disk benchmark (make fuzz does the same).
func replayDataDir(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "forgelink-replay-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return filepath.Join(dir, "data")
		}
	}
	return filepath.Join(t.TempDir(), "data")
}

// TestReplayMakeRun replays signed GitHub and Bitbucket deliveries (2,000;
// FORGELINK_REPLAY_DELIVERIES for more) - 30% resent, 10% out of order, 5%
// badly signed - from 8 concurrent senders at the real `make run` binary
// with fake GitHub and Bitbucket APIs, then plays the executor on every
// pipeline (reports duplicated and reordered), and checks it all against
// what the replay package works out from what was sent: the answers, one
// pipeline per (project, ref, revision) the rules build, a decided record
// per accepted delivery, nothing of a badly signed one, and exactly the
// commit statuses of each forward transition the VCS can see.
func TestReplayMakeRun(t *testing.T) {
	n := replay.Deliveries(t, 2000, "FORGELINK_REPLAY_DELIVERIES")
	ctx := context.Background()
	began := time.Now()
	bin := buildLocal(t)
	projects := replay.Projects()
	fakes := replay.NewFakes(t, projects)
	proc := startLocal(t, bin,
		"FORGELINK_ADDR="+freeAddr(t),
		"FORGELINK_DATA="+replayDataDir(t),
		"FORGELINK_API_TOKEN=",
		"FORGELINK_PUBLIC_URL=",
		"FORGELINK_LOG_LEVEL=warn",
		"FORGELINK_SWEEP_INTERVAL=0",
		"GITHUB_API_URL="+fakes.GitHub.URL,
		"GITHUB_TOKEN="+fakes.GitHub.Token,
		"BITBUCKET_API_URL="+fakes.Bitbucket.URL,
		"BITBUCKET_TOKEN="+fakes.Bitbucket.Token,
	)
	proc.waitReady(t)
	c := &apiCaller{t: t, base: proc.url, token: proc.token}
	for _, p := range projects {
		c.do(http.MethodPost, "/api/v1.1/project/"+p.Slug()+"/follow", http.StatusCreated, nil)
		h := fakes.Hook(t, p)
		p.HookURL, p.Secret, p.HookUUID = h.URL, h.Secret, h.ID
	}
	plan, err := replay.NewPlan(replay.Options{Deliveries: n, Projects: projects, Testdata: "../../testdata", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	fakes.Configs(plan)
	counts := plan.Counts()
	t.Logf("plan: %s", counts)

	// The deliveries, from 8 senders.
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	sendStart := time.Now()
	answers := replay.SendAll(ctx, plan.Sends, 8, replay.HTTP(hc))
	sendTook := time.Since(sendStart)
	tally, problems := plan.CheckAnswers(answers)
	t.Logf("sent %d deliveries in %v (%.0f/s): %s", len(answers), sendTook.Round(time.Millisecond), float64(len(answers))/sendTook.Seconds(), tally)
	replay.Check(t, "answers", problems)
	if len(problems) > 0 && tally.Accepted == 0 {
		t.FailNow()
	}

	// Every accepted delivery decided, every pipeline's pending posted.
	wantPending := plan.WantPending()
	records := func() []replay.Record { return replayRecords(c, projects) }
	decided := func() bool {
		k := 0
		for _, r := range records() {
			if r.State == "decided" {
				k++
			}
		}
		return k >= counts.Good
	}
	settled := fakes.WaitPosts(t, replay.PostCount(wantPending), time.Now().Add(time.Minute+time.Duration(n)*20*time.Millisecond), decided)
	t.Logf("every delivery decided and %d pending statuses posted %v after the last answer", replay.PostCount(wantPending), settled.Round(time.Millisecond))
	pipelines := replayPipelines(c, projects)
	replay.Check(t, "pipelines", plan.CheckPipelines(pipelines))
	replay.Check(t, "delivery records", plan.CheckRecords(records()))
	replay.Check(t, "pending statuses", replay.CheckPosts(wantPending, fakes.Posts(projects)))
	if t.Failed() {
		t.FailNow()
	}

	// The executor's reports, one executor per pipeline, 8 at once.
	scripts := replay.Scripts(projects, pipelines, 2, 0.30, 0.10)
	reports, changed, unchanged, conflicts, _ := replay.ReportCounts(scripts)
	wantPosts := replay.WantPosts(scripts)
	reportStart := time.Now()
	replay.Check(t, "reports", replay.RunScripts(ctx, scripts, 8, func(ctx context.Context, r *replay.Report) (int, []byte, error) {
		h := http.Header{"Content-Type": {"application/json"}, "Circle-Token": {proc.token}}
		return replay.HTTP(hc)(ctx, &replay.Request{URL: proc.url + "/api/v2/pipeline/" + r.Pipeline.ID + "/status", Header: h, Body: r.Body()})
	}))
	reportTook := time.Since(reportStart)
	settled = fakes.WaitPosts(t, replay.PostCount(wantPosts), time.Now().Add(time.Minute+time.Duration(reports)*10*time.Millisecond), nil)
	t.Logf("%d reports (%d moved a workflow, %d repeated one, %d refused as backwards) in %v; %d status posts in all, settled %v later",
		reports, changed, unchanged, conflicts, reportTook.Round(time.Millisecond), replay.PostCount(wantPosts), settled.Round(time.Millisecond))
	replay.Check(t, "statuses", replay.CheckPosts(wantPosts, fakes.Posts(projects)))
	replay.Check(t, "workflow states", replay.CheckFinal(scripts, replayPipelines(c, projects)))
	t.Logf("replay of %d deliveries through make run: %d pipelines, %d status posts (%d expected); %v in all",
		n, len(pipelines), fakes.PostCount(), replay.PostCount(wantPosts), time.Since(began).Round(time.Millisecond))

	// Nothing of a badly signed delivery was kept under its id: signed
	// right, each is accepted as new.
	resigned := replay.SendAll(ctx, plan.Resigned(25), 4, replay.HTTP(hc))
	for _, a := range resigned {
		if a.Err != nil || a.Status != http.StatusAccepted {
			t.Errorf("%s %s signed right after the replay: %d %s %v; want 202", a.Send.Kind, a.Send.ID, a.Status, a.Body, a.Err)
		}
	}
}

// replayPipelines lists every pipeline of the projects through the API.
func replayPipelines(c *apiCaller, projects []*replay.Project) []replay.Pipeline {
	c.t.Helper()
	type item struct {
		ID      string `json:"id"`
		Number  int64  `json:"number"`
		Trigger struct {
			DeliveryID string `json:"delivery_id"`
		} `json:"trigger"`
		VCS struct {
			Revision string `json:"revision"`
			Branch   string `json:"branch"`
			Tag      string `json:"tag"`
		} `json:"vcs"`
		Workflows      []string          `json:"workflows"`
		WorkflowStatus map[string]string `json:"workflow_status"`
	}
	var out []replay.Pipeline
	for _, p := range projects {
		for _, it := range listAll[item](c, "/api/v2/project/"+p.Slug()+"/pipeline") {
			out = append(out, replay.Pipeline{
				ID: it.ID, Project: p.Slug(), Number: it.Number, Branch: it.VCS.Branch, Tag: it.VCS.Tag, Revision: it.VCS.Revision,
				DeliveryID: it.Trigger.DeliveryID, Workflows: it.Workflows, WorkflowStatus: it.WorkflowStatus,
			})
		}
	}
	return out
}

// replayRecords lists every processed delivery of the projects through the API.
func replayRecords(c *apiCaller, projects []*replay.Project) []replay.Record {
	c.t.Helper()
	type item struct {
		ID        string `json:"id"`
		State     string `json:"state"`
		Decisions []struct {
			Branch   string `json:"branch"`
			Tag      string `json:"tag"`
			Revision string `json:"revision"`
			Build    bool   `json:"build"`
			Reason   string `json:"reason"`
		} `json:"decisions"`
	}
	var out []replay.Record
	for _, p := range projects {
		for _, it := range listAll[item](c, "/api/v2/project/"+p.Slug()+"/deliveries") {
			r := replay.Record{Project: p.Slug(), ID: it.ID, State: it.State}
			for _, d := range it.Decisions {
				r.Decisions = append(r.Decisions, replay.Decision{Branch: d.Branch, Tag: d.Tag, Revision: d.Revision, Build: d.Build, Reason: d.Reason})
			}
			out = append(out, r)
		}
	}
	return out
}
