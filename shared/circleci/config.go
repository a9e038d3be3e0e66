package circleci

import (
	"fmt"
	"strings"

	"forgelink/shared/forgelink"

	"go.yaml.in/yaml/v3"
)

// ImplicitWorkflow is the name of the one workflow of a config that has no
// "workflows" key: as CircleCI 2.0 does, such a config runs its job "build"
// on every branch (subject to that job's own "branches" filter) and on no tag.
const ImplicitWorkflow = "workflow"

// Limits that keep a hostile config (nested YAML merge keys can describe
// exponentially many entries) cheap to read.
const (
	maxMergeDepth = 16
	maxWork       = 1 << 20 // mapping entries visited, merges included
)

// Parse reads the workflows of a CircleCI config (version 2.0 or 2.1).
//
// A workflow's jobs are a list whose entries are a job name or a mapping
// with one key, the job name, holding the entry's parameters; of those Parse
// reads "name" (the job's name within the workflow, which requires refer
// to), "requires" (names, or single-key mappings of a name to the statuses
// it waits for), "filters" with "branches" and "tags", each with "only" and
// "ignore" holding a pattern or a list of them (see forgelink.ParsePattern),
// and "matrix" (the entry is then known by its alias, or by the job name).
// The "version" key of workflows is skipped. Workflows with "triggers"
// (scheduled), "when: false" or "unless: true" never run for a VCS event and
// are left out of the result. YAML anchors, aliases and merge keys work.
// A config without "workflows" runs its job "build" in one workflow named
// ImplicitWorkflow, as CircleCI 2.0 did; without a "build" job it is invalid.
//
// A required job that is not in the workflow, a cycle of requires, a job
// listed twice under one name, an invalid regular expression, an unknown key
// under filters, an expression filter (a string instead of branches and
// tags), invalid YAML or a wrong shape is an error of kind forgelink.Invalid
// whose message names the line, e.g.
// `circleci: line 12: workflow "ci" job "deploy": requires "tset", which is not a job of this workflow`.
func Parse(yml []byte) (*forgelink.Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(yml, &doc); err != nil {
		return nil, forgelink.Errorf(forgelink.Invalid, "circleci: invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil, forgelink.Errorf(forgelink.Invalid, "circleci: the config is empty")
	}
	p := &parser{}
	return p.config(doc.Content[0])
}

type parser struct {
	work int
}

// pair is one entry of a YAML mapping.
type pair struct {
	key, val *yaml.Node
}

func errAt(n *yaml.Node, format string, args ...any) error {
	return forgelink.Errorf(forgelink.Invalid, "circleci: line %d: %s", n.Line, fmt.Sprintf(format, args...))
}

// deref follows an alias to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the shape of n for error messages.
func describe(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case isNull(n):
		return "nothing"
	case n.Kind == yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unresolved alias"
}

// entries returns the entries of the mapping n, with merge keys ("<<")
// expanded: explicit keys win over merged ones, and an earlier merged
// mapping over a later one. A key defined twice is an error.
func (p *parser) entries(n *yaml.Node, what string) ([]pair, error) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, "%s: want a mapping, got %s", what, describe(n))
	}
	return p.mapping(n, what, 0)
}

func (p *parser) mapping(n *yaml.Node, what string, depth int) ([]pair, error) {
	if depth > maxMergeDepth {
		return nil, errAt(n, "%s: merge keys (<<) nested more than %d deep", what, maxMergeDepth)
	}
	out := make([]pair, 0, len(n.Content)/2)
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		p.work++
		if p.work > maxWork {
			return nil, errAt(n, "%s: the config is too large", what)
		}
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, errAt(k, "%s: want a name as key, got %s", what, describe(k))
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			return nil, errAt(k, "%s: key %q already defined at line %d", what, k.Value, prev.Line)
		}
		seen[k.Value] = k
		out = append(out, pair{k, v})
	}
	for _, m := range merges {
		m = deref(m)
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, s := range srcs {
			s = deref(s)
			if s.Kind != yaml.MappingNode {
				return nil, errAt(s, "%s: a merge key (<<) wants a mapping or a list of mappings, got %s", what, describe(s))
			}
			sub, err := p.mapping(s, what, depth+1)
			if err != nil {
				return nil, err
			}
			for _, e := range sub {
				if _, dup := seen[e.key.Value]; !dup {
					seen[e.key.Value] = e.key
					out = append(out, e)
				}
			}
		}
	}
	return out, nil
}

// name returns the non-empty string n holds.
func name(n *yaml.Node, what string) (string, error) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || isNull(n) || n.Value == "" {
		return "", errAt(n, "%s: want a name, got %s", what, describe(n))
	}
	return n.Value, nil
}

// literalBool returns the value of n when it is a YAML boolean.
func literalBool(n *yaml.Node) (value, ok bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		return false, false
	}
	return strings.EqualFold(n.Value, "true"), true
}

func (p *parser) config(root *yaml.Node) (*forgelink.Config, error) {
	top, err := p.entries(root, "config")
	if err != nil {
		return nil, err
	}
	var workflows, jobs *yaml.Node
	for _, e := range top {
		switch e.key.Value {
		case "workflows":
			workflows = e.val
		case "jobs":
			jobs = e.val
		}
	}
	if workflows == nil {
		return p.implicit(deref(root), jobs)
	}
	ws, err := p.entries(workflows, "workflows")
	if err != nil {
		return nil, err
	}
	cfg := &forgelink.Config{}
	for _, e := range ws {
		if e.key.Value == "version" {
			continue
		}
		w, runs, err := p.workflow(e.key.Value, e.val)
		if err != nil {
			return nil, err
		}
		if runs {
			cfg.Workflows = append(cfg.Workflows, w)
		}
	}
	return cfg, nil
}

// implicit returns the config of a version 2.0 config without workflows.
func (p *parser) implicit(root, jobs *yaml.Node) (*forgelink.Config, error) {
	if jobs == nil {
		return nil, errAt(root, `config: no "workflows" and no "jobs"`)
	}
	es, err := p.entries(jobs, "jobs")
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		if e.key.Value != "build" {
			continue
		}
		j := forgelink.WorkflowJob{Name: "build"}
		// CircleCI 2.0 read a job-level branches filter when there were
		// no workflows.
		if v := deref(e.val); v.Kind == yaml.MappingNode {
			params, err := p.entries(v, `job "build"`)
			if err != nil {
				return nil, err
			}
			for _, pe := range params {
				if pe.key.Value == "branches" {
					if j.Branches, err = p.filter(pe.val, `job "build": branches`); err != nil {
						return nil, err
					}
				}
			}
		}
		return &forgelink.Config{Workflows: []forgelink.Workflow{{Name: ImplicitWorkflow, Jobs: []forgelink.WorkflowJob{j}}}}, nil
	}
	return nil, errAt(deref(jobs), `jobs: no "workflows" and no "build" job to run`)
}

// workflow parses one workflow; runs is false for workflows that never run
// for a VCS event (scheduled, or switched off with a literal when/unless).
func (p *parser) workflow(wname string, n *yaml.Node) (w forgelink.Workflow, runs bool, err error) {
	what := fmt.Sprintf("workflow %q", wname)
	es, err := p.entries(n, what)
	if err != nil {
		return w, false, err
	}
	var jobs *yaml.Node
	runs = true
	for _, e := range es {
		switch e.key.Value {
		case "jobs":
			jobs = e.val
		case "triggers":
			if !isNull(deref(e.val)) {
				runs = false
			}
		case "when":
			if b, ok := literalBool(e.val); ok && !b {
				runs = false
			}
		case "unless":
			if b, ok := literalBool(e.val); ok && b {
				runs = false
			}
		}
	}
	if jobs == nil {
		return w, false, errAt(deref(n), "%s: no jobs", what)
	}
	jobs = deref(jobs)
	if jobs.Kind != yaml.SequenceNode {
		return w, false, errAt(jobs, "%s: jobs: want a list, got %s", what, describe(jobs))
	}
	w = forgelink.Workflow{Name: wname, Jobs: make([]forgelink.WorkflowJob, 0, len(jobs.Content))}
	entries := make([]*yaml.Node, 0, len(jobs.Content)) // per job, for error lines
	requires := make([][]*yaml.Node, 0, len(jobs.Content))
	index := make(map[string]int, len(jobs.Content))
	for _, item := range jobs.Content {
		j, reqs, err := p.job(what, item)
		if err != nil {
			return w, false, err
		}
		if prev, dup := index[j.Name]; dup {
			return w, false, errAt(deref(item), "%s: job %q is already listed at line %d; give one of them another name with \"name:\"", what, j.Name, deref(entries[prev]).Line)
		}
		index[j.Name] = len(w.Jobs)
		w.Jobs = append(w.Jobs, j)
		entries = append(entries, item)
		requires = append(requires, reqs)
	}
	for i, j := range w.Jobs {
		for k, r := range j.Requires {
			if _, ok := index[r]; !ok {
				return w, false, errAt(requires[i][k], "%s job %q: requires %q, which is not a job of this workflow", what, j.Name, r)
			}
		}
	}
	if i := cycle(w.Jobs, index); i >= 0 {
		return w, false, errAt(deref(entries[i]), "%s: job %q requires itself, directly or through other jobs", what, w.Jobs[i].Name)
	}
	return w, runs, nil
}

// cycle returns the index of a job that is part of a requires cycle, or -1.
func cycle(jobs []forgelink.WorkflowJob, index map[string]int) int {
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]uint8, len(jobs))
	var visit func(i int) int
	visit = func(i int) int {
		switch state[i] {
		case visiting:
			return i
		case done:
			return -1
		}
		state[i] = visiting
		for _, r := range jobs[i].Requires {
			if c := visit(index[r]); c >= 0 {
				return c
			}
		}
		state[i] = done
		return -1
	}
	for i := range jobs {
		if c := visit(i); c >= 0 {
			return c
		}
	}
	return -1
}

// job parses one entry of a workflow's jobs list. It also returns the
// nodes of the required names, for error lines.
func (p *parser) job(wf string, item *yaml.Node) (forgelink.WorkflowJob, []*yaml.Node, error) {
	n := deref(item)
	var j forgelink.WorkflowJob
	switch n.Kind {
	case yaml.ScalarNode:
		s, err := name(n, wf+": job")
		j.Name = s
		return j, nil, err
	case yaml.MappingNode:
	default:
		return j, nil, errAt(n, "%s: a job is a name or a mapping with one key, the job's name; got %s", wf, describe(n))
	}
	es, err := p.entries(n, wf+": job")
	if err != nil {
		return j, nil, err
	}
	if len(es) != 1 {
		return j, nil, errAt(n, "%s: a job is a name or a mapping with one key, the job's name; got %d keys", wf, len(es))
	}
	key, err := name(es[0].key, wf+": job")
	if err != nil {
		return j, nil, err
	}
	j.Name = key
	what := fmt.Sprintf("%s job %q", wf, key)
	v := deref(es[0].val)
	if isNull(v) {
		return j, nil, nil
	}
	params, err := p.entries(v, what)
	if err != nil {
		return j, nil, err
	}
	var reqs []*yaml.Node
	matrix, alias := false, ""
	for _, e := range params {
		switch e.key.Value {
		case "name":
			j.Name, err = name(e.val, what+": name")
		case "requires":
			j.Requires, reqs, err = p.requires(e.val, what+": requires")
		case "filters":
			j.Branches, j.Tags, err = p.filters(e.val, what+": filters")
		case "matrix":
			matrix = true
			alias, err = p.matrixAlias(e.val, what+": matrix")
		}
		if err != nil {
			return j, nil, err
		}
	}
	if matrix {
		// A matrix entry expands to one job per combination, named by
		// the "name" template; requires name them all by the alias,
		// which defaults to the job's name.
		j.Name = key
		if alias != "" {
			j.Name = alias
		}
	}
	return j, reqs, nil
}

func (p *parser) matrixAlias(n *yaml.Node, what string) (string, error) {
	es, err := p.entries(n, what)
	if err != nil {
		return "", err
	}
	for _, e := range es {
		if e.key.Value == "alias" {
			return name(e.val, what+": alias")
		}
	}
	return "", nil
}

// requires parses a requires value: a list of job names, or of single-key
// mappings from a job name to the statuses it waits for (`- build: success`).
// A single name is accepted too.
func (p *parser) requires(n *yaml.Node, what string) ([]string, []*yaml.Node, error) {
	n = deref(n)
	var items []*yaml.Node
	switch {
	case isNull(n):
		return nil, nil, nil
	case n.Kind == yaml.ScalarNode:
		items = []*yaml.Node{n}
	case n.Kind == yaml.SequenceNode:
		items = n.Content
	default:
		return nil, nil, errAt(n, "%s: want a list of job names, got %s", what, describe(n))
	}
	names := make([]string, 0, len(items))
	nodes := make([]*yaml.Node, 0, len(items))
	for _, it := range items {
		it = deref(it)
		if it.Kind == yaml.MappingNode {
			es, err := p.entries(it, what)
			if err != nil {
				return nil, nil, err
			}
			if len(es) != 1 {
				return nil, nil, errAt(it, "%s: want a job name or a mapping of one job name to statuses, got %d keys", what, len(es))
			}
			it = deref(es[0].key)
		}
		s, err := name(it, what)
		if err != nil {
			return nil, nil, err
		}
		names = append(names, s)
		nodes = append(nodes, it)
	}
	return names, nodes, nil
}

// filters parses a job's filters mapping.
func (p *parser) filters(n *yaml.Node, what string) (branches, tags *forgelink.Filter, err error) {
	n = deref(n)
	if isNull(n) {
		return nil, nil, nil
	}
	if n.Kind == yaml.ScalarNode {
		return nil, nil, errAt(n, "%s: expression filters are not supported; use branches and tags", what)
	}
	es, err := p.entries(n, what)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range es {
		switch e.key.Value {
		case "branches":
			branches, err = p.filter(e.val, what+": branches")
		case "tags":
			tags, err = p.filter(e.val, what+": tags")
		default:
			err = errAt(e.key, "%s: unknown key %q; want branches or tags", what, e.key.Value)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return branches, tags, nil
}

// filter parses a branches or tags filter. An empty (null) one is absent,
// so `tags:` with nothing under it does not enable tags; `tags: {}` does,
// for every tag.
func (p *parser) filter(n *yaml.Node, what string) (*forgelink.Filter, error) {
	n = deref(n)
	if isNull(n) {
		return nil, nil
	}
	es, err := p.entries(n, what)
	if err != nil {
		return nil, err
	}
	f := &forgelink.Filter{}
	for _, e := range es {
		switch e.key.Value {
		case "only":
			f.Only, err = patterns(e.val, what+": only")
		case "ignore":
			f.Ignore, err = patterns(e.val, what+": ignore")
		default:
			err = errAt(e.key, "%s: unknown key %q; want only or ignore", what, e.key.Value)
		}
		if err != nil {
			return nil, err
		}
	}
	return f, nil
}

// patterns parses a filter value: a pattern or a list of them.
func patterns(n *yaml.Node, what string) ([]forgelink.Pattern, error) {
	n = deref(n)
	var items []*yaml.Node
	switch {
	case isNull(n):
		return nil, nil
	case n.Kind == yaml.ScalarNode:
		items = []*yaml.Node{n}
	case n.Kind == yaml.SequenceNode:
		items = n.Content
	default:
		return nil, errAt(n, "%s: want a name, a /regex/ or a list of them, got %s", what, describe(n))
	}
	out := make([]forgelink.Pattern, 0, len(items))
	for _, it := range items {
		it = deref(it)
		if it.Kind != yaml.ScalarNode || isNull(it) {
			return nil, errAt(it, "%s: want a name or a /regex/, got %s", what, describe(it))
		}
		pat, err := forgelink.ParsePattern(it.Value)
		if err != nil {
			return nil, errAt(it, "%s: %s", what, forgelink.MessageOf(err))
		}
		out = append(out, pat)
	}
	return out, nil
}
