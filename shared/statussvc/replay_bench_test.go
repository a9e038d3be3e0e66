package statussvc_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"forgelink/shared/bolt"
	"forgelink/shared/forgelink"
	"forgelink/shared/github"
	"forgelink/shared/statussvc"
	"forgelink/shared/vcsfake"
)

// The replay: 1,000 reports over 100 pipelines, 30% of them duplicates
// and 10% swapped with their neighbour.
const (
	replayPipelines = 100
	replayReports   = 1000
	replayDupShare  = 0.30
	replaySwapShare = 0.10
)

var replayWorkflows = []string{"build", "test", "deploy"}

// replayReport is one executor report of the replay.
type replayReport struct {
	pipeline int
	workflow string
	state    forgelink.StatusState
}

// replayScript builds the reports in the order they arrive: per pipeline
// running then a terminal state for each workflow (the unique reports),
// interleaved across pipelines, then duplicates of random earlier reports
// inserted after them, then random neighbours swapped.
func replayScript(r *rand.Rand) []replayReport {
	var unique []replayReport
	for p := range replayPipelines {
		for _, w := range replayWorkflows {
			end := forgelink.StatusSuccess
			if r.IntN(4) == 0 {
				end = forgelink.StatusFailed
			}
			unique = append(unique, replayReport{p, w, forgelink.StatusRunning}, replayReport{p, w, end})
		}
	}
	// Interleave pipelines, keeping each (pipeline, workflow)'s order.
	r.Shuffle(len(unique), func(i, j int) { unique[i], unique[j] = unique[j], unique[i] })
	next := map[[2]any]int{}
	for i, rep := range unique { // restore running before terminal per workflow
		k := [2]any{rep.pipeline, rep.workflow}
		if next[k] == 0 {
			unique[i].state = forgelink.StatusRunning
		} else if rep.state == forgelink.StatusRunning {
			unique[i].state = forgelink.StatusSuccess
		}
		next[k]++
	}
	out := unique
	for len(out) < replayReports {
		i := r.IntN(len(out))
		out = append(out[:i+1:i+1], append([]replayReport{out[i]}, out[i+1:]...)...)
	}
	for range int(replaySwapShare * replayReports) {
		i := r.IntN(len(out) - 1)
		out[i], out[i+1] = out[i+1], out[i]
	}
	return out
}

// expectedPosts counts, independently of statussvc, what GitHub must see:
// one pending per workflow of each new pipeline, then every report that
// moves its workflow forward (a late running after a terminal state is
// refused) and changes what GitHub shows (running is GitHub's pending).
func expectedPosts(script []replayReport) (posts, forward int) {
	posts = replayPipelines * len(replayWorkflows)
	state := map[[2]any]forgelink.StatusState{}
	rank := func(s forgelink.StatusState) int {
		switch s {
		case "", forgelink.StatusPending:
			return 0
		case forgelink.StatusRunning:
			return 1
		}
		return 2
	}
	for _, rep := range script {
		k := [2]any{rep.pipeline, rep.workflow}
		from := cmp.Or(state[k], forgelink.StatusPending)
		if rank(rep.state) <= rank(from) {
			continue
		}
		forward++
		if forgelink.GitHubState(rep.state) != forgelink.GitHubState(from) {
			posts++
		}
		state[k] = rep.state
	}
	return posts, forward
}

// direct runs each queued request at once, as a consumer would.
type direct struct{ svc *statussvc.Service }

func (d direct) Request(ctx context.Context, r *forgelink.StatusRequest) error {
	return d.svc.Post(ctx, r)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStatusReplay replays 1,000 status reports (30% duplicated, 10%
// reordered) over 100 pipelines through statussvc on the embedded store
// against the fake GitHub, and checks that GitHub saw exactly the expected
// posts. The baseline, bare_post, sends the same number of status posts
// straight to the fake. Compare cpu-µs/report between the two.
func BenchmarkStatusReplay(b *testing.B) {
	ctx := context.Background()
	gh := vcsfake.NewGitHub(b)
	gh.AddRepo("acme/widget", "main", false)
	forge, err := github.NewForge(gh.URL, gh.Token, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(b.TempDir(), "forgelink.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	slug, _ := forgelink.NewSlug("github", "acme", "widget")
	project := &forgelink.Project{Slug: slug, State: forgelink.Following, HookID: "hk-bench", DefaultBranch: "main", Settings: forgelink.DefaultSettings()}
	if err := st.CreateProject(ctx, project); err != nil {
		b.Fatal(err)
	}
	svc := &statussvc.Service{
		Store:     st,
		Posters:   func(context.Context, *forgelink.Project) (forgelink.StatusPoster, error) { return forge, nil },
		PublicURL: "https://forgelink.example",
		Log:       slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
	svc.Requests = direct{svc}

	round := 0 // across the runs the framework makes: revisions stay unique
	b.Run("forgelink", func(b *testing.B) {
		var cpu time.Duration
		var reports, posted, wanted, forward int
		for range b.N {
			b.StopTimer()
			round++
			i := round
			gh.SetRateLimitRemaining(vcsfake.GitHubRateLimit) // a new hour for each replay
			r := rand.New(rand.NewPCG(uint64(i), 42))
			ids := make([]string, replayPipelines)
			for p := range ids {
				pl := &forgelink.Pipeline{
					Project: slug.String(), State: forgelink.PipelineCreated, Trigger: forgelink.TriggerPush,
					Branch: "main", Revision: fmt.Sprintf("%040x", i*replayPipelines+p+1), Workflows: replayWorkflows,
					HookID: "hk-bench", DeliveryID: fmt.Sprint(i, "-", p), CreatedAt: time.Now().UTC(),
				}
				pl.InitStatus()
				got, err := st.CreatePipeline(ctx, pl)
				if err != nil {
					b.Fatal(err)
				}
				ids[p] = got.ID
				// The pending posts of new pipelines.
				if err := svc.Post(ctx, &forgelink.StatusRequest{PipelineID: got.ID, Project: got.Project, Revision: got.Revision, State: "pending"}); err != nil {
					b.Fatal(err)
				}
			}
			script := replayScript(r)
			want, fwd := expectedPosts(script)
			before := gh.StatusPosts()
			b.StartTimer()
			start := cpuTime()
			for _, rep := range script {
				_, _, err := svc.Report(ctx, ids[rep.pipeline], statussvc.Report{State: rep.state, Workflow: rep.workflow})
				if err != nil && forgelink.KindOf(err) != forgelink.Conflict {
					b.Fatal(err)
				}
			}
			cpu += cpuTime() - start
			b.StopTimer()
			got := gh.StatusPosts() - before + replayPipelines*len(replayWorkflows)
			if got != want {
				b.Fatalf("GitHub saw %d posts, want %d (forward transitions %d)", got, want, fwd)
			}
			reports += len(script)
			posted += got
			wanted += want
			forward += fwd
			b.StartTimer()
		}
		b.ReportMetric(float64(cpu.Microseconds())/float64(reports), "cpu-µs/report")
		b.ReportMetric(float64(posted)/float64(b.N), "posts/replay")
		b.ReportMetric(float64(forward)/float64(b.N), "forward/replay")
	})

	b.Run("bare_post", func(b *testing.B) {
		client := &http.Client{Timeout: 10 * time.Second}
		body := []byte(`{"state":"success","target_url":"https://forgelink.example/pipelines/x","description":"Workflow build passed","context":"ci/forgelink: build"}`)
		var cpu time.Duration
		n := 0
		for i := range b.N {
			gh.SetRateLimitRemaining(vcsfake.GitHubRateLimit)
			start := cpuTime()
			for j := range replayReports {
				url := fmt.Sprintf("%s/repos/acme/widget/statuses/%040x", gh.URL, 1<<40+(round+i)*replayReports+j)
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+gh.Token)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					b.Fatalf("bare post: %d", resp.StatusCode)
				}
				n++
			}
			cpu += cpuTime() - start
		}
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/report")
	})
}
