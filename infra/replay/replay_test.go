package replay

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"forgelink/shared/bbhook"
	"forgelink/shared/forgelink"
	"forgelink/shared/ghhook"
)

func testProjects() []*Project {
	ps := Projects()
	for i, p := range ps {
		p.HookURL = fmt.Sprintf("http://forgelink.test/hooks/%s/hk_%d", p.VCS, i)
		p.Secret = fmt.Sprintf("secret-%d", i)
	}
	return ps
}

func testPlan(t *testing.T, n int) *Plan {
	t.Helper()
	plan, err := NewPlan(Options{Deliveries: n, Projects: testProjects(), Testdata: "../../testdata", Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// TestPlanShares: the plan sends what was asked - 30% resends, 5% bad,
// about 10% moved - and the same options give the same plan.
func TestPlanShares(t *testing.T) {
	plan := testPlan(t, 2000)
	c := plan.Counts()
	t.Log(c)
	if c.Sends != 2000 || c.Resends != 600 || c.Bad != 100 || c.Good != 1300 || c.Distinct != 1400 {
		t.Errorf("counts %+v; want 2000 sends, 600 resends, 100 bad, 1300 good", c)
	}
	if c.Moved < 150 || c.Moved > 200 {
		t.Errorf("%d sends moved; want about 200", c.Moved)
	}
	if c.Pipelines < 500 || c.Skips < 100 {
		t.Errorf("%d pipelines, %d skipped events: the story lacks variety", c.Pipelines, c.Skips)
	}
	again := testPlan(t, 2000)
	for i := range plan.Sends[:300] {
		a, b := plan.Sends[i], again.Sends[i]
		ra, err1 := a.Request()
		rb, err2 := b.Request()
		if a.ID != b.ID || err1 != nil || err2 != nil || string(ra.Body) != string(rb.Body) || ra.Header.Get("X-Hub-Signature-256") != rb.Header.Get("X-Hub-Signature-256") {
			t.Fatalf("send %d differs between two plans of the same options (%v %v)", i, err1, err2)
		}
	}
}

// TestPlanBodies parses every body the way forgelink does and checks it
// says what the plan wants of it, that good deliveries are signed with
// their project's secret and bad ones are not, and that no revision is
// built under two refs (a commit status is per revision and context).
func TestPlanBodies(t *testing.T) {
	plan := testPlan(t, 1500)
	revRef := map[string]string{}
	for _, d := range plan.Deliveries {
		req, err := (&Send{Delivery: d}).Request()
		if err != nil {
			t.Fatal(err)
		}
		p := d.Project
		secret := []byte(p.Secret)
		var events []forgelink.Event
		var verr error
		if p.VCS == GitHub {
			verr = ghhook.VerifySignature(req.Body, req.Header.Get(ghhook.SignatureHeader), secret)
			events, err = ghhook.ParseEvent(req.Header.Get(ghhook.EventHeader), req.Body)
			if req.Header.Get(ghhook.DeliveryHeader) != d.ID {
				t.Errorf("%s: delivery header %q", d.ID, req.Header.Get(ghhook.DeliveryHeader))
			}
		} else {
			verr = bbhook.VerifySignature(req.Body, req.Header.Get(bbhook.SignatureHeader), secret)
			events, err = bbhook.ParseEvent(req.Header.Get(bbhook.EventHeader), req.Body)
			if req.Header.Get(bbhook.DeliveryHeader) != d.ID {
				t.Errorf("%s: delivery header %q", d.ID, req.Header.Get(bbhook.DeliveryHeader))
			}
		}
		if err != nil {
			t.Fatalf("%s %s: %v", d.Kind, d.ID, err)
		}
		if (verr == nil) != (d.Bad == "") {
			t.Errorf("%s (bad %q): signature check %v", d.Kind, d.Bad, verr)
		}
		if len(events) != len(d.Wants) {
			t.Fatalf("%s: %d events %+v; want %d", d.Kind, len(events), events, len(d.Wants))
		}
		for i, w := range d.Wants {
			ev := events[i]
			rev := ev.Revision
			if len(rev) == 12 && strings.HasPrefix(w.Revision, rev) { // Bitbucket's abbreviation
				rev = w.Revision
			}
			if d.Bad == "tampered" {
				continue
			}
			if ev.Branch != w.Branch || ev.Tag != w.Tag || rev != w.Revision {
				t.Errorf("%s %s event %d: %+v; want %+v", d.Kind, d.ID, i, ev, w)
			}
			fork := ev.PR != nil && ev.PR.Fork
			if fork != strings.Contains(w.Rule, "fork") {
				t.Errorf("%s: fork %v; want rule %q", d.Kind, fork, w.Rule)
			}
			if w.Build {
				ref := w.Ref()
				if prev, ok := revRef[w.Revision]; ok && prev != p.Slug()+" "+ref {
					t.Errorf("revision %s built as %s and %s %s", w.Revision, prev, p.Slug(), ref)
				}
				revRef[w.Revision] = p.Slug() + " " + ref
			}
		}
	}
}

// TestScriptsModel: the model's answers and posts for hand-made orders.
func TestScriptsModel(t *testing.T) {
	gh := &Project{VCS: GitHub, FullName: "o/r", Workflows: []string{"a", "b"}}
	pl := &Pipeline{ID: "p1", Project: gh.Slug(), Revision: "abc", Workflows: gh.Workflows}
	sc := &Script{Pipeline: pl, Project: gh, Final: map[string]string{"a": Pending, "b": Pending}, Posts: map[string][]string{"a": {"pending"}, "b": {"pending"}}}
	steps := []struct {
		wf, state string
		status    int
		changed   bool
	}{
		{"", Running, 200, true},
		{"a", Running, 200, false},
		{"a", Failed, 200, true},
		{"a", Running, 409, false},
		{"", Running, 409, false}, // a is terminal: the whole report is refused
		{"b", Canceled, 200, true},
		{"b", Canceled, 200, false},
		{"b", Success, 409, false},
	}
	for i, s := range steps {
		r := sc.apply(s.wf, s.state)
		if r.WantStatus != s.status || r.WantChanged != s.changed {
			t.Errorf("step %d %+v: model says %d changed=%v", i, s, r.WantStatus, r.WantChanged)
		}
	}
	if got := fmt.Sprint(sc.Posts); got != "map[a:[pending failure] b:[pending error]]" {
		t.Errorf("posts %s", got)
	}
	bb := &Project{VCS: Bitbucket, FullName: "o/r", Workflows: []string{"a"}}
	sc = &Script{Pipeline: &Pipeline{Workflows: bb.Workflows}, Project: bb, Final: map[string]string{"a": Pending}, Posts: map[string][]string{"a": {"INPROGRESS"}}}
	sc.apply("a", Error)
	if got := fmt.Sprint(sc.Posts); got != "map[a:[INPROGRESS FAILED]]" {
		t.Errorf("bitbucket posts %s", got)
	}
}

// TestCheckAnswers: the checks find what is wrong.
func TestCheckAnswers(t *testing.T) {
	plan := testPlan(t, 200)
	answer := func(s *Send, first map[*Delivery]bool) Answer {
		switch {
		case s.Bad != "":
			return Answer{Send: s, Status: 401, Body: []byte(`{"message":"github: signature does not match"}`)}
		case !first[s.Delivery]:
			first[s.Delivery] = true
			return Answer{Send: s, Status: 202, Body: fmt.Appendf(nil, `{"delivery":%q}`, s.ID)}
		}
		return Answer{Send: s, Status: 200, Body: fmt.Appendf(nil, `{"duplicate":true,"delivery":%q}`, s.ID)}
	}
	first := map[*Delivery]bool{}
	var answers []Answer
	for _, s := range plan.Sends {
		answers = append(answers, answer(s, first))
	}
	if _, probs := plan.CheckAnswers(answers); len(probs) != 0 {
		t.Fatalf("right answers: %v", probs)
	}
	for i := range answers {
		if answers[i].Send.Bad != "" {
			answers[i].Status = http.StatusAccepted
			break
		}
	}
	for i := range answers {
		if answers[i].Status == http.StatusOK {
			answers[i].Status, answers[i].Body = http.StatusAccepted, fmt.Appendf(nil, `{"delivery":%q}`, answers[i].Send.ID)
			break
		}
	}
	if _, probs := plan.CheckAnswers(answers); len(probs) != 2 {
		t.Errorf("an accepted bad delivery and a duplicate accepted twice: %d problems %v; want 2", len(probs), probs)
	}
	// SendAll is the sender these answers come from: every send, once, in order.
	var sent atomic.Int64
	got := SendAll(context.Background(), plan.Sends, 4, func(_ context.Context, r *Request) (int, []byte, error) {
		sent.Add(1)
		return 200, nil, nil
	})
	if int(sent.Load()) != len(plan.Sends) || len(got) != len(plan.Sends) || got[7].Send != plan.Sends[7] {
		t.Errorf("SendAll sent %d of %d", sent.Load(), len(plan.Sends))
	}
}

// TestChecksFindFaults: the pipeline, record and status checks pass on
// what the plan wants and catch each kind of fault.
func TestChecksFindFaults(t *testing.T) {
	plan := testPlan(t, 300)
	var pls []Pipeline
	numbers := map[string]int64{}
	for _, w := range plan.Pipelines() {
		numbers[w.Key.Project]++
		pl := Pipeline{ID: fmt.Sprint("pl-", len(pls)), Project: w.Key.Project, Number: numbers[w.Key.Project], Revision: w.Revision, DeliveryID: w.Deliveries[0], Workflows: w.Workflows}
		if ref, ok := strings.CutPrefix(w.Ref, "tag/"); ok {
			pl.Tag = ref
		} else {
			pl.Branch = strings.TrimPrefix(w.Ref, "branch/")
		}
		pls = append(pls, pl)
	}
	if probs := plan.CheckPipelines(pls); len(probs) != 0 {
		t.Fatalf("the wanted pipelines: %v", probs)
	}
	var recs []Record
	for _, d := range plan.Deliveries {
		if d.Bad != "" {
			continue
		}
		r := Record{Project: d.Project.Slug(), ID: d.ID, State: "decided"}
		for _, w := range d.Wants {
			r.Decisions = append(r.Decisions, Decision{Branch: w.Branch, Tag: w.Tag, Revision: w.Revision, Build: w.Build})
		}
		recs = append(recs, r)
	}
	if probs := plan.CheckRecords(recs); len(probs) != 0 {
		t.Fatalf("the wanted records: %v", probs)
	}
	var bad *Delivery
	for _, d := range plan.Deliveries {
		if d.Bad != "" {
			bad = d
			break
		}
	}

	pipelineFaults := map[string]func([]Pipeline) []Pipeline{
		"missing":      func(p []Pipeline) []Pipeline { return p[1:] },
		"twice":        func(p []Pipeline) []Pipeline { x := p[0]; x.ID, x.Number = "again", 999; return append(p, x) },
		"renumbered":   func(p []Pipeline) []Pipeline { p[0].Number += 1000; return p },
		"bad delivery": func(p []Pipeline) []Pipeline { x := p[0]; x.Revision = bad.Revisions[0]; return append(p[1:], x) },
		"other maker":  func(p []Pipeline) []Pipeline { p[0].DeliveryID = "someone-else"; return p },
		"workflows":    func(p []Pipeline) []Pipeline { p[0].Workflows = []string{"x"}; return p },
	}
	for name, fault := range pipelineFaults {
		if probs := plan.CheckPipelines(fault(slices.Clone(pls))); len(probs) == 0 {
			t.Errorf("pipelines %s: no problem found", name)
		}
	}
	recordFaults := map[string]func([]Record) []Record{
		"missing":    func(r []Record) []Record { return r[1:] },
		"undecided":  func(r []Record) []Record { r[0].State = "received"; return r },
		"built skip": func(r []Record) []Record { r[0].Decisions = nil; return r },
		"of bad": func(r []Record) []Record {
			return append(r, Record{Project: bad.Project.Slug(), ID: bad.ID, State: "decided"})
		},
		"never sent": func(r []Record) []Record { return append(r, Record{ID: "nobody"}) },
		"twice":      func(r []Record) []Record { return append(r, r[0]) },
		"wrong build": func(r []Record) []Record {
			r[0].Decisions = []Decision{{Build: !plan.Deliveries[0].Wants[0].Build}}
			return r
		},
	}
	for name, fault := range recordFaults {
		c := slices.Clone(recs)
		c[0].Decisions = slices.Clone(c[0].Decisions)
		if probs := plan.CheckRecords(fault(c)); len(probs) == 0 {
			t.Errorf("records %s: no problem found", name)
		}
	}

	want := plan.WantPending()
	var posts []Post
	for k, states := range want {
		for _, s := range states {
			posts = append(posts, Post{k.Project, k.Revision, k.Context, s})
		}
	}
	if probs := CheckPosts(want, posts); len(probs) != 0 {
		t.Fatalf("the wanted posts: %v", probs)
	}
	if probs := CheckPosts(want, append(slices.Clone(posts), posts[0])); len(probs) != 1 {
		t.Errorf("a status posted twice: %v", probs)
	}
	if probs := CheckPosts(want, posts[1:]); len(probs) != 1 {
		t.Errorf("a status missing: %v", probs)
	}
	if probs := CheckPosts(want, append(slices.Clone(posts), Post{"gh/x/y", "abc", "ci/forgelink: build", "pending"})); len(probs) != 1 {
		t.Errorf("a status nobody wants: %v", probs)
	}
}
