package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
)

// The executor's states (POST /api/v2/pipeline/:id/status), and forgelink's
// own first one.
const (
	Pending  = "pending"
	Running  = "running"
	Success  = "success"
	Failed   = "failed"
	Error    = "error"
	Canceled = "canceled"
)

// rank orders states: pending, running, then the terminal ones. States
// only move forward (docs: commit statuses).
func rank(s string) int {
	switch s {
	case Pending:
		return 0
	case Running:
		return 1
	}
	return 2
}

// Visible is the state as the VCS shows it: GitHub's commit status states
// (pending, success, failure, error; running is pending there, canceled
// is error) and Bitbucket's build status states (INPROGRESS, SUCCESSFUL,
// FAILED, STOPPED).
func Visible(vcs VCS, s string) string {
	if vcs == Bitbucket {
		return map[string]string{Pending: "INPROGRESS", Running: "INPROGRESS", Success: "SUCCESSFUL", Failed: "FAILED", Error: "FAILED", Canceled: "STOPPED"}[s]
	}
	return map[string]string{Pending: "pending", Running: "pending", Success: "success", Failed: "failure", Error: "error", Canceled: "error"}[s]
}

// Report is one executor report of a script, with the answer the model
// expects.
type Report struct {
	Pipeline *Pipeline
	Project  *Project
	// Workflow is the workflow reported on; "" is the whole pipeline.
	Workflow string
	State    string
	// WantStatus is 200 or 409 (a backwards move); WantChanged whether a
	// 200 moved anything.
	WantStatus  int
	WantChanged bool
}

// Body is the report's JSON body.
func (r *Report) Body() []byte {
	b, _ := json.Marshal(map[string]string{"state": r.State, "workflow": r.Workflow})
	if r.Workflow == "" {
		b, _ = json.Marshal(map[string]string{"state": r.State})
	}
	return b
}

// Script is what one executor reports on one pipeline, in order.
type Script struct {
	Pipeline *Pipeline
	Project  *Project
	Reports  []*Report
	// Final is each workflow's state after the script.
	Final map[string]string
	// Posts are, per workflow, the states the VCS must show in order:
	// pending, then each forward move that changes what it shows.
	Posts map[string][]string
}

// Scripts makes each pipeline's executor script: for some pipelines a
// report that the whole pipeline runs, then per workflow mostly running
// and always one terminal state (success, failed, error, canceled), the
// workflows interleaved; then dupShare of the reports repeated at a later
// place and swapShare of them swapped with their neighbour. The model
// decides each report's answer and what the VCS must show: the script is
// sent in order, so its pipeline goes through exactly these states.
func Scripts(projects []*Project, pls []Pipeline, seed uint64, dupShare, swapShare float64) []*Script {
	r := rand.New(rand.NewPCG(seed, 0xe8ec))
	bySlug := map[string]*Project{}
	for _, p := range projects {
		bySlug[p.Slug()] = p
	}
	var out []*Script
	for i := range pls {
		pl := &pls[i]
		proj := bySlug[pl.Project]
		type step struct{ wf, state string }
		var unique []step
		if r.IntN(10) < 3 {
			unique = append(unique, step{"", Running})
		}
		// Per workflow: [running,] terminal; then interleaved, keeping each
		// workflow's order.
		perWF := map[string][]string{}
		for _, w := range pl.Workflows {
			if r.IntN(10) < 9 {
				perWF[w] = append(perWF[w], Running)
			}
			end := []string{Success, Success, Success, Success, Success, Success, Failed, Failed, Error, Canceled}[r.IntN(10)]
			perWF[w] = append(perWF[w], end)
		}
		for {
			var live []string
			for _, w := range pl.Workflows {
				if len(perWF[w]) > 0 {
					live = append(live, w)
				}
			}
			if len(live) == 0 {
				break
			}
			w := live[r.IntN(len(live))]
			unique = append(unique, step{w, perWF[w][0]})
			perWF[w] = perWF[w][1:]
		}
		steps := slices.Clone(unique)
		for range int(math.Round(float64(len(unique)) * dupShare)) {
			j := r.IntN(len(steps))
			at := j + 1 + r.IntN(len(steps)-j)
			steps = slices.Insert(steps, at, steps[j])
		}
		for range int(math.Round(float64(len(steps)) * swapShare)) {
			if len(steps) > 1 {
				j := r.IntN(len(steps) - 1)
				steps[j], steps[j+1] = steps[j+1], steps[j]
			}
		}
		sc := &Script{Pipeline: pl, Project: proj, Final: map[string]string{}, Posts: map[string][]string{}}
		for _, w := range pl.Workflows {
			sc.Final[w] = Pending
			sc.Posts[w] = []string{Visible(proj.VCS, Pending)}
		}
		for _, s := range steps {
			sc.Reports = append(sc.Reports, sc.apply(s.wf, s.state))
		}
		out = append(out, sc)
	}
	return out
}

// apply runs one report through the model: a report that moves no
// workflow backwards moves forward those it can, and each forward move
// that changes what the VCS shows is posted; one that would move any
// workflow backwards (running after a terminal state, one terminal state
// after another) is refused with 409 and changes nothing.
func (sc *Script) apply(wf, state string) *Report {
	rep := &Report{Pipeline: sc.Pipeline, Project: sc.Project, Workflow: wf, State: state, WantStatus: http.StatusOK}
	targets := []string{wf}
	if wf == "" {
		targets = sc.Pipeline.Workflows
	}
	var forward []string
	for _, w := range targets {
		from := sc.Final[w]
		switch {
		case from == state:
		case rank(state) > rank(from):
			forward = append(forward, w)
		default:
			rep.WantStatus = http.StatusConflict
			return rep
		}
	}
	for _, w := range forward {
		if Visible(sc.Project.VCS, state) != Visible(sc.Project.VCS, sc.Final[w]) {
			sc.Posts[w] = append(sc.Posts[w], Visible(sc.Project.VCS, state))
		}
		sc.Final[w] = state
	}
	rep.WantChanged = len(forward) > 0
	return rep
}

// Counts of a set of scripts.
func ReportCounts(scripts []*Script) (reports, changed, unchanged, conflicts, posts int) {
	for _, sc := range scripts {
		for _, r := range sc.Reports {
			reports++
			switch {
			case r.WantStatus == http.StatusConflict:
				conflicts++
			case r.WantChanged:
				changed++
			default:
				unchanged++
			}
		}
		for _, ps := range sc.Posts {
			posts += len(ps)
		}
	}
	return
}

// ReportTarget sends one report and returns the answer.
type ReportTarget func(ctx context.Context, r *Report) (status int, body []byte, err error)

// RunScripts sends the scripts from workers concurrent executors, each
// sending one pipeline's script in order, and checks every answer against
// the model.
func RunScripts(ctx context.Context, scripts []*Script, workers int, t ReportTarget) []string {
	results := make([][]string, len(scripts))
	each(len(scripts), workers, func(i int) {
		for _, rep := range scripts[i].Reports {
			status, body, err := t(ctx, rep)
			if err != nil {
				results[i] = append(results[i], fmt.Sprintf("report %s %q on %s: %v", rep.State, rep.Workflow, rep.Pipeline.ID, err))
				continue
			}
			var got struct {
				Changed bool   `json:"changed"`
				Message string `json:"message"`
			}
			jerr := json.Unmarshal(body, &got)
			if status != rep.WantStatus || jerr != nil || (status == http.StatusOK && got.Changed != rep.WantChanged) || (status != http.StatusOK && got.Message == "") {
				results[i] = append(results[i], fmt.Sprintf("report %s %q on pipeline %s (%s #%d): %d %.200s; want %d changed=%v", rep.State, rep.Workflow, rep.Pipeline.ID, rep.Pipeline.Project, rep.Pipeline.Number, status, body, rep.WantStatus, rep.WantChanged))
			}
		}
	})
	var probs problems
	for _, rs := range results {
		for _, r := range rs {
			probs.add("report answer", "%s", r)
		}
	}
	return probs.result()
}

// Post is one commit status post the fake VCS accepted.
type Post struct{ Project, Revision, Context, State string }

// PostKey names one commit status: a project's revision and context.
type PostKey struct{ Project, Revision, Context string }

// WantPending is what the VCS must show once every pipeline got its
// first status: one pending post per workflow of each pipeline the plan
// comes to.
func (p *Plan) WantPending() map[PostKey][]string {
	out := map[PostKey][]string{}
	for _, wp := range p.Pipelines() {
		for _, w := range wp.Workflows {
			out[PostKey{wp.Key.Project, wp.Revision, wp.Project.StatusContext(w)}] = []string{Visible(wp.Project.VCS, Pending)}
		}
	}
	return out
}

// WantPosts is what the VCS must show after the scripts: per pipeline and
// workflow, pending then the scripts' visible forward moves.
func WantPosts(scripts []*Script) map[PostKey][]string {
	out := map[PostKey][]string{}
	for _, sc := range scripts {
		for w, states := range sc.Posts {
			out[PostKey{sc.Pipeline.Project, sc.Pipeline.Revision, sc.Project.StatusContext(w)}] = states
		}
	}
	return out
}

// CheckPosts compares the posts the fake VCS accepted, in the order it
// accepted them, with want: for every commit status exactly the wanted
// states in order, and no other post.
func CheckPosts(want map[PostKey][]string, got []Post) []string {
	var probs problems
	have := map[PostKey][]string{}
	for _, p := range got {
		k := PostKey{p.Project, p.Revision, p.Context}
		have[k] = append(have[k], p.State)
	}
	keys := make([]PostKey, 0, len(have))
	for k := range have {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
	for _, k := range keys {
		w, ok := want[k]
		switch {
		case !ok:
			probs.add("unexpected status", "%s at %s %q: %v", k.Project, k.Revision, k.Context, have[k])
		case !slices.Equal(have[k], w):
			probs.add("wrong statuses", "%s at %s %q: %v; want %v", k.Project, k.Revision, k.Context, have[k], w)
		}
	}
	for k, w := range want {
		if _, ok := have[k]; !ok {
			probs.add("status missing", "%s at %s %q: nothing; want %v", k.Project, k.Revision, k.Context, w)
		}
	}
	return probs.result()
}

// CheckFinal compares the pipelines' workflow states with the scripts'.
func CheckFinal(scripts []*Script, got []Pipeline) []string {
	var probs problems
	byID := map[string]*Pipeline{}
	for i := range got {
		byID[got[i].ID] = &got[i]
	}
	for _, sc := range scripts {
		pl := byID[sc.Pipeline.ID]
		if pl == nil {
			probs.add("pipeline gone", "%s", sc.Pipeline.ID)
			continue
		}
		for w, s := range sc.Final {
			if pl.WorkflowStatus[w] != s {
				probs.add("wrong workflow state", "%s #%d workflow %s: %q; want %q", pl.Project, pl.Number, w, pl.WorkflowStatus[w], s)
			}
		}
	}
	return probs.result()
}

// PostCount counts the posts of want.
func PostCount(want map[PostKey][]string) int {
	n := 0
	for _, s := range want {
		n += len(s)
	}
	return n
}

// Collapse drops each post that repeats the previous state of its commit
// status and returns what is left and how many it dropped. forgelink posts
// at least once: when it cannot record a post it made (the process was
// killed, the store was down), the same state is posted again once the
// claim's lease runs out, which the VCS shows as one state. Tests of such
// faults compare the collapsed posts with what they want and count the
// repeats.
func Collapse(posts []Post) ([]Post, int) {
	last := map[PostKey]string{}
	var out []Post
	dropped := 0
	for _, p := range posts {
		k := PostKey{p.Project, p.Revision, p.Context}
		if s, ok := last[k]; ok && s == p.State {
			dropped++
			continue
		}
		last[k] = p.State
		out = append(out, p)
	}
	return out, dropped
}
