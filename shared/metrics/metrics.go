package metrics

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Kind is how a family's values behave.
type Kind int

const (
	// Counter only goes up; exporters send a delta (EMF) or the total
	// (Prometheus).
	Counter Kind = iota
	// Gauge is set to the latest value.
	Gauge
)

// Label is one label of a family with the only values it takes. A value
// outside Values is counted as Other: labels never carry what a client
// sent, a name, an id or a secret.
type Label struct {
	Name   string
	Values []string
}

// Other stands for a label value outside its Label's Values.
const Other = "other"

// Desc describes a family of series.
type Desc struct {
	// Name is the family's name without the forgelink_ prefix and, for a
	// counter, without the _total suffix: "deliveries".
	Name string
	Help string
	Kind Kind
	// Labels: the first is always "vcs" (an EMF dimension); the others
	// name the series within the family.
	Labels []Label
}

// Label values shared by the families.
var vcsLabel = Label{Name: "vcs", Values: []string{"github", "bitbucket"}}

// Delivery outcomes: how intake answered a delivery.
const (
	// Accepted: stored and queued (202).
	Accepted = "accepted"
	// Duplicate: a delivery id already accepted (200 {"duplicate": true}).
	Duplicate = "duplicate"
	// Rejected: answered 4xx (unknown hook, bad signature, too large,
	// unreadable body, missing headers).
	Rejected = "rejected"
	// Ignored: a ping or an event forgelink does not act on (200
	// {"ignored": true}); stored nowhere.
	Ignored = "ignored"
	// Failed: answered 5xx (the store or the queue failed); the VCS
	// redelivers.
	Failed = "failed"
)

// Pipeline outcomes: what the trigger decided for one event.
const (
	Created = "created"
	Skipped = "skipped"
	// Existing: the rules build it, but the revision already has its
	// pipeline (a push and a PR synchronize for one commit).
	Existing = "existing"
)

// Status post outcomes (Failed is shared with deliveries).
const (
	// Posted: the VCS accepted the commit status.
	Posted = "posted"
	// Refused: the VCS refused for good (401, 403, 404, 422, too many
	// statuses); recorded on the pipeline, not retried.
	Refused = "refused"
	// GaveUp: a status request failed every attempt (dead-lettered).
	GaveUp = "gave_up"
)

// Deferred: a project the org-access sweep left for the next one (rate
// limit, timeout, a transient failure).
const Deferred = "deferred"

// AccessStates are forgelink.AccessState's values (kept here so that the
// metrics package needs nothing but the standard library).
var AccessStates = []string{"ok", "deliveries_failing", "deploy_key_missing", "hook_inactive", "hook_missing", "repo_missing", "restricted", "token_revoked"}

// The families forgelink counts.
var (
	Deliveries = &Desc{
		Name: "deliveries", Kind: Counter,
		Help:   "Webhook deliveries by how intake answered them.",
		Labels: []Label{vcsLabel, {Name: "outcome", Values: []string{Accepted, Duplicate, Rejected, Ignored, Failed}}},
	}
	Pipelines = &Desc{
		Name: "pipelines", Kind: Counter,
		Help:   "Trigger decisions per event: pipelines created, events skipped, and builds whose revision already had a pipeline.",
		Labels: []Label{vcsLabel, {Name: "outcome", Values: []string{Created, Skipped, Existing}}},
	}
	StatusPosts = &Desc{
		Name: "status_posts", Kind: Counter,
		Help:   "Commit status posts: posted, failed (retried), refused by the VCS, given up after every attempt.",
		Labels: []Label{vcsLabel, {Name: "outcome", Values: []string{Posted, Failed, Refused, GaveUp}}},
	}
	AccessChecks = &Desc{
		Name: "access_checks", Kind: Counter,
		Help:   "Org-access sweep checks of a project, by the state found (deferred: left for the next sweep).",
		Labels: []Label{vcsLabel, {Name: "state", Values: append(slices.Clone(AccessStates), Deferred)}},
	}
	AccessOrgs = &Desc{
		Name: "access_orgs", Kind: Gauge,
		Help:   "Organizations (workspaces) by access state after the latest full org-access sweep.",
		Labels: []Label{vcsLabel, {Name: "state", Values: AccessStates}},
	}
)

// Families lists every family in a fixed order.
var Families = []*Desc{Deliveries, Pipelines, StatusPosts, AccessChecks, AccessOrgs}

// Registry holds the values of every family. The zero value is not
// usable; use New. A nil *Registry stands for Default, so a service's
// optional Metrics field needs no wiring. Safe for concurrent use.
type Registry struct {
	mu     sync.RWMutex
	series map[string]*cell // by key(desc, values)
}

// cell is one series' value; seq counts its updates, so an exporter can
// tell a gauge set again to the same value from one left alone.
type cell struct {
	desc   *Desc
	values []string
	v      atomic.Int64
	seq    atomic.Uint64
}

// Default is the process's registry: what the functions and make run
// export.
var Default = New()

// New returns a registry with every declared series at zero, so that
// exporters show each name before its first event.
func New() *Registry {
	r := &Registry{series: map[string]*cell{}}
	for _, d := range Families {
		for _, values := range combinations(d.Labels) {
			r.series[key(d, values)] = &cell{desc: d, values: values}
		}
	}
	return r
}

func combinations(labels []Label) [][]string {
	out := [][]string{nil}
	for _, l := range labels {
		var next [][]string
		for _, prefix := range out {
			for _, v := range l.Values {
				next = append(next, append(slices.Clone(prefix), v))
			}
		}
		out = next
	}
	return out
}

func key(d *Desc, values []string) string {
	return d.Name + "\x00" + strings.Join(values, "\x00")
}

func (r *Registry) reg() *Registry {
	if r == nil {
		return Default
	}
	return r
}

// cell returns the series of d with values, mapping a value outside its
// label's set to Other.
func (r *Registry) cell(d *Desc, values []string) *cell {
	values = slices.Clone(values)
	for i := range values {
		if i >= len(d.Labels) || !slices.Contains(d.Labels[i].Values, values[i]) {
			values[i] = Other
		}
	}
	for len(values) < len(d.Labels) {
		values = append(values, Other)
	}
	values = values[:len(d.Labels)]
	k := key(d, values)
	r.mu.RLock()
	c := r.series[k]
	r.mu.RUnlock()
	if c != nil {
		return c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c = r.series[k]; c == nil {
		c = &cell{desc: d, values: values}
		r.series[k] = c
	}
	return c
}

// Add adds n to the counter of d with the given label values.
func (r *Registry) Add(d *Desc, n int64, values ...string) {
	c := r.reg().cell(d, values)
	c.v.Add(n)
	c.seq.Add(1)
}

// Set sets the gauge of d with the given label values to n.
func (r *Registry) Set(d *Desc, n int64, values ...string) {
	c := r.reg().cell(d, values)
	c.v.Store(n)
	c.seq.Add(1)
}

// Value returns the current value of d's series with the given label
// values (0 for one never touched).
func (r *Registry) Value(d *Desc, values ...string) int64 {
	return r.reg().cell(d, values).v.Load()
}

// Delivery counts a webhook delivery of vcs ("github", "bitbucket") by
// outcome (Accepted, Duplicate, Rejected, Ignored, Failed).
func (r *Registry) Delivery(vcs, outcome string) { r.Add(Deliveries, 1, vcs, outcome) }

// Pipeline counts a trigger decision (Created, Skipped, Existing).
func (r *Registry) Pipeline(vcs, outcome string) { r.Add(Pipelines, 1, vcs, outcome) }

// StatusPost counts a commit status post (Posted, Failed, Refused, GaveUp).
func (r *Registry) StatusPost(vcs, outcome string) { r.Add(StatusPosts, 1, vcs, outcome) }

// AccessCheck counts a project's org-access check by the state found, or
// Deferred.
func (r *Registry) AccessCheck(vcs, state string) { r.Add(AccessChecks, 1, vcs, state) }

// SetAccessOrgs sets how many organizations of vcs are in state.
func (r *Registry) SetAccessOrgs(vcs, state string, n int) { r.Set(AccessOrgs, int64(n), vcs, state) }

// Sample is one series' value at a Snapshot.
type Sample struct {
	Desc   *Desc
	Values []string // label values, in Desc.Labels' order
	Value  int64
	// Seq counts the series' updates.
	Seq uint64
}

// Snapshot returns every series, in Families' order and then by label
// values.
func (r *Registry) Snapshot() []Sample {
	r = r.reg()
	r.mu.RLock()
	out := make([]Sample, 0, len(r.series))
	for _, c := range r.series {
		out = append(out, Sample{Desc: c.desc, Values: c.values, Value: c.v.Load(), Seq: c.seq.Load()})
	}
	r.mu.RUnlock()
	order := map[*Desc]int{}
	for i, d := range Families {
		order[d] = i
	}
	slices.SortFunc(out, func(a, b Sample) int {
		if a.Desc != b.Desc {
			return order[a.Desc] - order[b.Desc]
		}
		return slices.Compare(a.Values, b.Values)
	})
	return out
}
