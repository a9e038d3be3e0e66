package replay

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// Key names a pipeline: one per project, ref ("branch/<name>" or
// "tag/<name>") and revision.
type Key struct{ Project, Ref, Revision string }

// WantPipeline is a pipeline the plan must come to.
type WantPipeline struct {
	Key
	Project   *Project
	Workflows []string
	// Deliveries are the good deliveries with an event that names it: any
	// of them may be the one that made it.
	Deliveries []string
}

// Pipelines returns the pipelines the plan must come to: one per
// (project, ref, revision) that a good delivery's event builds.
func (p *Plan) Pipelines() map[Key]*WantPipeline {
	out := map[Key]*WantPipeline{}
	for _, d := range p.Deliveries {
		if d.Bad != "" {
			continue
		}
		for _, w := range d.Wants {
			if !w.Build {
				continue
			}
			k := Key{d.Project.Slug(), w.Ref(), w.Revision}
			wp := out[k]
			if wp == nil {
				wp = &WantPipeline{Key: k, Project: d.Project, Workflows: d.Project.Workflows}
				out[k] = wp
			}
			if !slices.Contains(wp.Deliveries, d.ID) {
				wp.Deliveries = append(wp.Deliveries, d.ID)
			}
		}
	}
	return out
}

// Counts summarizes a plan.
type Counts struct {
	// Sends is every request; Distinct the delivery ids among them, Good
	// and Bad; Resends the sends of an id sent before (in plan order);
	// Moved the sends taken out of their place.
	Sends, Distinct, Good, Bad, Resends, Moved int
	// Events of the good deliveries, those that build and those skipped;
	// Pipelines they come to; PendingPosts, one per workflow of each.
	Events, Builds, Skips, Pipelines, PendingPosts int
	// Kinds counts the good deliveries by kind, Rules the skipped events
	// by rule, BadKinds the bad deliveries by how they are signed.
	Kinds, Rules, BadKinds map[string]int
}

// Counts counts the plan.
func (p *Plan) Counts() Counts {
	c := Counts{Sends: len(p.Sends), Distinct: len(p.Deliveries), Kinds: map[string]int{}, Rules: map[string]int{}, BadKinds: map[string]int{}}
	for _, s := range p.Sends {
		if s.Copy > 0 {
			c.Resends++
		}
		if s.Moved {
			c.Moved++
		}
	}
	for _, d := range p.Deliveries {
		if d.Bad != "" {
			c.Bad++
			c.BadKinds[d.Bad]++
			continue
		}
		c.Good++
		c.Kinds[d.Kind]++
		for _, w := range d.Wants {
			c.Events++
			if w.Build {
				c.Builds++
			} else {
				c.Skips++
				c.Rules[w.Rule]++
			}
		}
	}
	for _, wp := range p.Pipelines() {
		c.Pipelines++
		c.PendingPosts += len(wp.Workflows)
	}
	return c
}

// String is the counts in one paragraph.
func (c Counts) String() string {
	return fmt.Sprintf("%d sends: %d distinct delivery ids (%d good, %d badly signed %v), %d resends, %d sent out of order; "+
		"good deliveries %v carry %d events: %d build (%d distinct pipelines, %d pending statuses), %d skipped %v",
		c.Sends, c.Distinct, c.Good, c.Bad, sortedCounts(c.BadKinds), c.Resends, c.Moved,
		sortedCounts(c.Kinds), c.Events, c.Builds, c.Pipelines, c.PendingPosts, c.Skips, sortedCounts(c.Rules))
}

func sortedCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// problems collects what is wrong, listing at most a few of each kind.
type problems struct {
	list  []string
	count map[string]int
}

const maxListed = 10

func (p *problems) add(kind, format string, args ...any) {
	if p.count == nil {
		p.count = map[string]int{}
	}
	p.count[kind]++
	if p.count[kind] <= maxListed {
		p.list = append(p.list, kind+": "+fmt.Sprintf(format, args...))
	}
}

func (p *problems) result() []string {
	kinds := make([]string, 0, len(p.count))
	for k, n := range p.count {
		if n > maxListed {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		p.list = append(p.list, fmt.Sprintf("%s: %d in all", k, p.count[k]))
	}
	return p.list
}

// Tally counts answers by what they said.
type Tally struct {
	Accepted, Duplicate, Unauthorized, Other, Failed int
}

func (t Tally) String() string {
	return fmt.Sprintf("%d accepted (202), %d duplicate (200), %d rejected (401), %d other, %d failed to send", t.Accepted, t.Duplicate, t.Unauthorized, t.Other, t.Failed)
}

// CheckAnswers checks every answer against the plan: each good delivery
// id is answered 202 {"delivery": id} exactly once, on whichever copy
// arrived first, and 200 {"duplicate": true, "delivery": id} on every
// other copy; each badly signed delivery 401 with a message.
func (p *Plan) CheckAnswers(answers []Answer) (Tally, []string) {
	var t Tally
	var probs problems
	accepted := map[*Delivery]int{}
	for _, a := range answers {
		d := a.Send.Delivery
		if a.Err != nil {
			t.Failed++
			probs.add("send failed", "%s %s: %v", d.Kind, d.ID, a.Err)
			continue
		}
		var body struct {
			Delivery  string `json:"delivery"`
			Duplicate bool   `json:"duplicate"`
			Message   string `json:"message"`
		}
		jsonErr := json.Unmarshal(a.Body, &body)
		switch {
		case a.Status == http.StatusUnauthorized:
			t.Unauthorized++
		case a.Status == http.StatusAccepted:
			t.Accepted++
		case a.Status == http.StatusOK && body.Duplicate:
			t.Duplicate++
		default:
			t.Other++
		}
		if d.Bad != "" {
			if a.Status != http.StatusUnauthorized || jsonErr != nil || body.Message == "" {
				probs.add("bad signature not refused", "%s (%s) %s copy %d: %d %.200s; want 401 with a message", d.Kind, d.Bad, d.ID, a.Send.Copy, a.Status, a.Body)
			}
			continue
		}
		switch {
		case a.Status == http.StatusAccepted && jsonErr == nil && body.Delivery == d.ID && !body.Duplicate:
			accepted[d]++
		case a.Status == http.StatusOK && jsonErr == nil && body.Delivery == d.ID && body.Duplicate:
		default:
			probs.add("unexpected answer", "%s %s copy %d: %d %.200s; want 202 or 200 duplicate with its id", d.Kind, d.ID, a.Send.Copy, a.Status, a.Body)
		}
	}
	sent := map[*Delivery]bool{}
	for _, a := range answers {
		sent[a.Send.Delivery] = true
	}
	for _, d := range p.Deliveries {
		if d.Bad == "" && sent[d] && accepted[d] != 1 {
			probs.add("not accepted exactly once", "%s %s accepted %d times", d.Kind, d.ID, accepted[d])
		}
	}
	return t, probs.result()
}

// Pipeline is a pipeline as forgelink lists it.
type Pipeline struct {
	ID, Project string // Project is the slug
	Number      int64
	// Branch or Tag, and the revision built.
	Branch, Tag, Revision string
	DeliveryID            string
	Workflows             []string
	// WorkflowStatus is each workflow's state.
	WorkflowStatus map[string]string
}

// Key is the pipeline's key.
func (pl *Pipeline) Key() Key {
	ref := "branch/" + pl.Branch
	if pl.Tag != "" {
		ref = "tag/" + pl.Tag
	}
	return Key{pl.Project, ref, pl.Revision}
}

// CheckPipelines checks the pipelines forgelink holds against the plan:
// exactly one per wanted key and none other (so none at a badly signed
// delivery's revisions), each made by a delivery that names it, running
// its project's workflows, and each project's numbered 1..n.
func (p *Plan) CheckPipelines(got []Pipeline) []string {
	var probs problems
	want := p.Pipelines()
	bad := map[string]string{}
	for _, d := range p.Deliveries {
		if d.Bad != "" {
			for _, r := range d.Revisions {
				bad[r] = d.ID
			}
		}
	}
	seen := map[Key]int{}
	numbers := map[string][]int64{}
	for _, pl := range got {
		k := pl.Key()
		seen[k]++
		numbers[pl.Project] = append(numbers[pl.Project], pl.Number)
		w, ok := want[k]
		switch {
		case bad[pl.Revision] != "":
			probs.add("pipeline of a badly signed delivery", "%s #%d %s at %s (delivery %s)", pl.Project, pl.Number, k.Ref, pl.Revision, bad[pl.Revision])
			continue
		case !ok:
			probs.add("pipeline nothing builds", "%s #%d %s at %s (delivery %s)", pl.Project, pl.Number, k.Ref, pl.Revision, pl.DeliveryID)
			continue
		}
		if seen[k] == 2 {
			probs.add("pipeline twice", "%s %s at %s", pl.Project, k.Ref, pl.Revision)
		}
		if !slices.Contains(w.Deliveries, pl.DeliveryID) {
			probs.add("pipeline by the wrong delivery", "%s #%d %s at %s made by %q; want one of %v", pl.Project, pl.Number, k.Ref, pl.Revision, pl.DeliveryID, w.Deliveries)
		}
		if !slices.Equal(pl.Workflows, w.Workflows) {
			probs.add("wrong workflows", "%s #%d: %v; want %v", pl.Project, pl.Number, pl.Workflows, w.Workflows)
		}
	}
	for k, w := range want {
		if seen[k] == 0 {
			probs.add("pipeline missing", "%s %s at %s (deliveries %v)", k.Project, k.Ref, k.Revision, w.Deliveries)
		}
	}
	for project, ns := range numbers {
		slices.Sort(ns)
		for i, n := range ns {
			if n != int64(i+1) {
				probs.add("pipeline numbers not 1..n", "%s: number %d at position %d of %d", project, n, i+1, len(ns))
				break
			}
		}
	}
	return probs.result()
}

// Record is a processed delivery as forgelink lists it.
type Record struct {
	Project, ID, State string
	Decisions          []Decision
}

// Decision is one event's decision in a Record.
type Decision struct {
	Branch, Tag, Revision string
	Build                 bool
	Reason                string
}

// CheckRecords checks forgelink's delivery records against the plan: one
// decided record per good delivery, with a decision per event that builds
// or skips as the plan says, and none for a badly signed delivery.
func (p *Plan) CheckRecords(got []Record) []string {
	var probs problems
	byID := map[string][]Record{}
	for _, r := range got {
		byID[r.ID] = append(byID[r.ID], r)
	}
	known := map[string]bool{}
	for _, d := range p.Deliveries {
		known[d.ID] = true
		rs := byID[d.ID]
		if d.Bad != "" {
			if len(rs) > 0 {
				probs.add("record of a badly signed delivery", "%s (%s) %s: %+v", d.Kind, d.Bad, d.ID, rs[0])
			}
			continue
		}
		if len(rs) != 1 {
			probs.add("not one record", "%s %s: %d records", d.Kind, d.ID, len(rs))
			continue
		}
		r := rs[0]
		if r.Project != d.Project.Slug() || r.State != "decided" {
			probs.add("record not decided", "%s %s: project %s state %q", d.Kind, d.ID, r.Project, r.State)
		}
		if len(r.Decisions) != len(d.Wants) {
			probs.add("wrong decisions", "%s %s: %d decisions %+v; want %d", d.Kind, d.ID, len(r.Decisions), r.Decisions, len(d.Wants))
			continue
		}
		for i, w := range d.Wants {
			dec := r.Decisions[i]
			if dec.Build != w.Build || dec.Branch != w.Branch || dec.Tag != w.Tag || dec.Revision != w.Revision {
				probs.add("wrong decision", "%s %s event %d: %+v; want %+v", d.Kind, d.ID, i, dec, w)
			}
		}
	}
	for id, rs := range byID {
		if !known[id] {
			probs.add("record of a delivery never sent", "%s in %s", id, rs[0].Project)
		}
	}
	return probs.result()
}

// Resigned returns up to n of the plan's badly signed deliveries, signed
// right this time: sent after the replay, each must be accepted (202), as
// nothing of the bad copy may have been kept under its id.
func (p *Plan) Resigned(n int) []*Send {
	var out []*Send
	for _, d := range p.Deliveries {
		if d.Bad == "" || len(out) == n {
			continue
		}
		good := *d
		good.Bad, good.Kind = "", "resigned "+d.Kind
		out = append(out, &Send{Delivery: &good})
	}
	return out
}
