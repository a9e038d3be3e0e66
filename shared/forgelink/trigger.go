package forgelink

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Config is the part of a project's .circleci/config.yml that decides which
// workflows an event starts: the workflows, their jobs, and the jobs' filters
// and requirements. Package circleci parses it from YAML. Evaluate only
// reads a Config, so one parsed Config may serve concurrent calls.
type Config struct {
	Workflows []Workflow
}

// Workflow is one workflow of a Config. It runs for an event when at least
// one of its jobs does.
type Workflow struct {
	Name string
	Jobs []WorkflowJob
}

// WorkflowJob is one job entry of a workflow.
type WorkflowJob struct {
	// Name is the job's name within its workflow: the `name:` override when
	// there is one, otherwise the job's own name. Requires refer to it.
	Name string
	// Requires names the jobs of the same workflow that must run first. A
	// job runs only if all of them run, so a job requiring a name that is
	// not in its workflow, or requiring itself through a cycle, never runs
	// (circleci.Parse rejects such configs).
	Requires []string
	// Branches filters branch pushes and pull requests; nil runs on every
	// branch. Tags filters tag pushes; nil never runs on a tag.
	Branches, Tags *Filter
}

// Filter is a CircleCI workflow job filter (filters.branches or filters.tags).
type Filter struct {
	// Only, when not empty, lists the names the job runs for.
	Only []Pattern
	// Ignore lists the names the job does not run for; it is considered
	// after Only, so a name must match Only and not Ignore.
	Ignore []Pattern
}

// Match reports whether a job with filter f runs for the branch or tag name:
// Only is empty or one of its patterns matches, and no Ignore pattern
// matches. A nil filter matches every name, which is CircleCI's rule for
// branches; for tags the caller must first check that a tag filter exists,
// because a job without one never runs for a tag.
func (f *Filter) Match(name string) bool {
	if f == nil {
		return true
	}
	if len(f.Only) > 0 && !anyMatch(f.Only, name) {
		return false
	}
	return !anyMatch(f.Ignore, name)
}

func anyMatch(ps []Pattern, name string) bool {
	for i := range ps {
		if ps[i].Match(name) {
			return true
		}
	}
	return false
}

// Pattern is one filter value: an exact branch or tag name, or a regular
// expression written between slashes that must match the entire name.
// The zero Pattern matches only the empty name.
type Pattern struct {
	text string         // as written, for String
	re   *regexp.Regexp // nil for an exact name
}

// ParsePattern parses a filter value. "/re/" (at least two characters,
// starting and ending with a slash) is a Go regular expression anchored to
// match the whole name, so "/rel/" does not match "release"; anything else
// is an exact name. An invalid regular expression is an Invalid error.
func ParsePattern(s string) (Pattern, error) {
	if len(s) < 2 || s[0] != '/' || s[len(s)-1] != '/' {
		return Pattern{text: s}, nil
	}
	expr := s[1 : len(s)-1]
	// Compile the expression as written first, so that an error quotes
	// the user's text rather than the anchored one.
	_, err := regexp.Compile(expr)
	var re *regexp.Regexp
	if err == nil {
		re, err = regexp.Compile(`^(?:` + expr + `)$`)
	}
	if err != nil {
		return Pattern{}, Errorf(Invalid, "invalid regular expression %s: %s", s, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return Pattern{text: s, re: re}, nil
}

// Match reports whether name matches p.
func (p Pattern) Match(name string) bool {
	if p.re == nil {
		return name == p.text
	}
	return p.re.MatchString(name)
}

// String returns the pattern as written, slashes included.
func (p Pattern) String() string { return p.text }

// MarshalText returns the pattern as written, so that a Config can be
// cached as JSON.
func (p Pattern) MarshalText() ([]byte, error) { return []byte(p.text), nil }

// UnmarshalText parses text with ParsePattern.
func (p *Pattern) UnmarshalText(text []byte) error {
	q, err := ParsePattern(string(text))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// TriggerInput is everything Evaluate needs to decide about one event.
type TriggerInput struct {
	Event    Event
	Settings Settings
	// DefaultBranch is the project's default branch; when empty,
	// Event.DefaultBranch is used. With neither, no branch is the default.
	DefaultBranch string
	// BranchHasOpenPR is true when the open-PR index holds a pull request
	// whose head is Event.Branch in this repository.
	BranchHasOpenPR bool
	// Config is the parsed config at Event.Revision. It is not consulted
	// when ConfigMissing is true or ConfigError is set; a nil Config
	// otherwise counts as missing.
	Config *Config
	// ConfigMissing is true when the revision has no .circleci/config.yml.
	ConfigMissing bool
	// ConfigError is the reason the config could not be parsed, if it
	// could not; the pipeline is still created, in state error.
	ConfigError string
}

// Decision triggers. They are also the values of Decision.Trigger.
const (
	TriggerPush        = "push"
	TriggerPullRequest = "pull_request"
	TriggerTag         = "tag"
)

// Skip reasons that do not depend on the event's names. Reasons that name
// a branch or tag are built by Evaluate; see its documentation.
const (
	ReasonBranchDeleted = "branch deleted"
	ReasonTagDeleted    = "tag deleted"
	ReasonCISkip        = "[ci skip] in commit message"
	ReasonPRClosed      = "pull request closed"
	ReasonPRMerged      = "pull request merged"
	ReasonPREdited      = "pull request edited"
	ReasonForkPR        = "forked pull requests are not built (build_fork_prs is off)"
	ReasonNoConfig      = "no .circleci/config.yml"
)

// Decision is the outcome of Evaluate: a pipeline to create, or the one rule
// that skipped the event. Either way it is stored.
type Decision struct {
	// Build is true when a pipeline is to be created.
	Build bool `json:"build"`
	// Reason is the rule that skipped the event; "" when Build is true.
	Reason string `json:"reason,omitempty"`
	// Trigger is TriggerPush, TriggerPullRequest or TriggerTag; "" for an
	// event type Evaluate does not know.
	Trigger string `json:"trigger,omitempty"`
	// Branch is the pipeline's branch: the pushed branch, a same-repository
	// pull request's head branch, or "pull/<number>" for a pull request from
	// a fork (as CircleCI names it). "" for tags.
	Branch string `json:"branch,omitempty"`
	// Tag is the pushed tag, for tag triggers.
	Tag string `json:"tag,omitempty"`
	// Revision is the commit to build. A pipeline is unique per (project,
	// Branch, Revision): a push and a pull-request synchronize for the same
	// commit give two equal decisions and the store keeps one pipeline.
	Revision string `json:"revision,omitempty"`
	// PRNumber is the pull request's number, for pull-request triggers.
	PRNumber int `json:"pr_number,omitempty"`
	// Fork is true for a pull request from a fork.
	Fork bool `json:"fork,omitempty"`
	// SecretsExposed is true when the pipeline may see the project's secret
	// environment variables: always for the repository's own branches and
	// tags, for forks only with forks_receive_secret_env_vars on. It is
	// false when Build is false.
	SecretsExposed bool `json:"secrets_exposed"`
	// Workflows lists, in config order, the workflows that run.
	Workflows []string `json:"workflows,omitempty"`
	// ConfigError is set when the config is invalid: Build is true, no
	// workflow runs, and the pipeline is created in state error so the user
	// sees why.
	ConfigError string `json:"config_error,omitempty"`
}

// Evaluate applies the trigger rules of DESIGN.md to one event. It is pure:
// no clock, no I/O, and the same input always gives the same decision. The
// rules, in the order they are applied (the first that skips wins):
//
//   - a branch or tag deletion is skipped ("branch deleted", "tag deleted");
//   - a head commit message containing "[ci skip]" or "[skip ci]", in any
//     case, is skipped ("[ci skip] in commit message");
//   - pull request closed, merged or edited events only update the open-PR
//     index and are skipped ("pull request closed", ...); other unknown
//     actions and event types are skipped too;
//   - a push to the default branch is always built (filters still apply);
//   - with build_prs_only, a push to another branch is built only if the
//     branch has an open pull request or matches always_build_branches
//     ("only build pull requests: no open pull request for <branch>");
//     pull requests opened, reopened or synchronized build their head;
//   - a pull request from a fork is built only with build_fork_prs
//     ("forked pull requests are not built (build_fork_prs is off)");
//   - a revision without a config is skipped ("no .circleci/config.yml");
//     an invalid config is built, with ConfigError set and no workflows;
//   - the workflows whose job filters select the branch or tag run; if none
//     does, the event is skipped ("no workflow matches branch <name>",
//     "no workflow matches tag <name>").
//
// Tag pushes do not depend on build_prs_only. Always-build patterns that are
// not valid patterns never match; the settings API rejects them with
// ParsePattern.
func Evaluate(in TriggerInput) Decision {
	ev := &in.Event
	d := Decision{Revision: ev.Revision}

	switch ev.Type {
	case BranchDelete:
		d.Trigger, d.Branch = TriggerPush, ev.Branch
		return d.skip(ReasonBranchDeleted)
	case TagDelete:
		d.Trigger, d.Tag = TriggerTag, ev.Tag
		return d.skip(ReasonTagDeleted)
	case BranchPush:
		d.Trigger, d.Branch = TriggerPush, ev.Branch
	case TagPush:
		d.Trigger, d.Tag = TriggerTag, ev.Tag
	case PullRequest:
		d.Trigger, d.Branch = TriggerPullRequest, ev.Branch
		if ev.PR != nil {
			d.PRNumber, d.Fork = ev.PR.Number, ev.PR.Fork
			if d.Fork {
				// CircleCI names a fork's pull request pipeline "pull/N":
				// the fork's branch names mean nothing in this repository,
				// and a fork branch called "main" must not match filters
				// written for this repository's main.
				d.Branch = "pull/" + strconv.Itoa(ev.PR.Number)
			}
		}
	default:
		return d.skip("unsupported event type " + strconv.Quote(string(ev.Type)))
	}

	if hasCISkip(ev.Message) {
		return d.skip(ReasonCISkip)
	}

	if ev.Type == PullRequest {
		if ev.PR == nil {
			return d.skip("pull request event without a pull request")
		}
		switch ev.PR.Action {
		case PROpened, PRReopened, PRSynchronize:
		case PRClosed:
			return d.skip(ReasonPRClosed)
		case PRMerged:
			return d.skip(ReasonPRMerged)
		case PREdited:
			return d.skip(ReasonPREdited)
		default:
			return d.skip("pull request action " + strconv.Quote(string(ev.PR.Action)) + " is not built")
		}
	}

	if ev.Type == BranchPush {
		def := in.DefaultBranch
		if def == "" {
			def = ev.DefaultBranch
		}
		isDefault := ev.Branch != "" && ev.Branch == def
		if !isDefault && in.Settings.BuildPRsOnly && !in.BranchHasOpenPR &&
			!matchesAny(in.Settings.AlwaysBuildBranches, ev.Branch) {
			return d.skip("only build pull requests: no open pull request for " + ev.Branch)
		}
	}

	if d.Fork && !in.Settings.BuildForkPRs {
		return d.skip(ReasonForkPR)
	}

	switch {
	case in.ConfigMissing:
		return d.skip(ReasonNoConfig)
	case in.ConfigError != "":
		d.ConfigError = in.ConfigError
		return d.build(in.Settings)
	case in.Config == nil:
		return d.skip(ReasonNoConfig)
	}

	if ev.Type == TagPush {
		d.Workflows = runningWorkflows(in.Config, ev.Tag, true)
		if len(d.Workflows) == 0 {
			return d.skip("no workflow matches tag " + ev.Tag)
		}
	} else {
		d.Workflows = runningWorkflows(in.Config, d.Branch, false)
		if len(d.Workflows) == 0 {
			return d.skip("no workflow matches branch " + d.Branch)
		}
	}
	return d.build(in.Settings)
}

func (d Decision) skip(reason string) Decision {
	d.Build, d.Reason, d.SecretsExposed, d.Workflows = false, reason, false, nil
	return d
}

func (d Decision) build(s Settings) Decision {
	d.Build, d.Reason = true, ""
	d.SecretsExposed = !d.Fork || s.ForksReceiveSecretEnvVars
	return d
}

// hasCISkip reports whether msg contains "[ci skip]" or "[skip ci]",
// ignoring ASCII case, without allocating.
func hasCISkip(msg string) bool {
	const n = len("[ci skip]") // == len("[skip ci]")
	for i := 0; i+n <= len(msg); i++ {
		if msg[i] != '[' {
			continue
		}
		if w := msg[i : i+n]; equalFoldASCII(w, "[ci skip]") || equalFoldASCII(w, "[skip ci]") {
			return true
		}
	}
	return false
}

// equalFoldASCII compares s with the lower-case ASCII string lower,
// folding only ASCII letters in s.
func equalFoldASCII(s, lower string) bool {
	for i := 0; i < len(lower); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// matchesAny reports whether name matches one of the always-build patterns.
// Exact names are compared without compiling anything; a pattern that does
// not parse never matches.
func matchesAny(patterns []string, name string) bool {
	for _, s := range patterns {
		if s == name {
			return true
		}
		if len(s) < 2 || s[0] != '/' || s[len(s)-1] != '/' {
			continue
		}
		if p, ok := settingsPattern(s); ok && p.Match(name) {
			return true
		}
	}
	return false
}

// settingsPatterns memoizes ParsePattern for always-build patterns, which
// arrive as strings on every call: compiling one costs about a hundred
// allocations, matching none. Results never change, so the cache does not
// make Evaluate any less pure; its size is bounded because the strings come
// from users.
var settingsPatterns struct {
	sync.Map // string -> cachedPattern
	n        atomic.Int32
}

const maxCachedPatterns = 1024

type cachedPattern struct {
	p  Pattern
	ok bool
}

func settingsPattern(s string) (Pattern, bool) {
	if v, hit := settingsPatterns.Load(s); hit {
		c := v.(cachedPattern)
		return c.p, c.ok
	}
	p, err := ParsePattern(s)
	if settingsPatterns.n.Load() < maxCachedPatterns {
		if _, loaded := settingsPatterns.LoadOrStore(s, cachedPattern{p, err == nil}); !loaded {
			settingsPatterns.n.Add(1)
		}
	}
	return p, err == nil
}

// runningWorkflows returns the names of the workflows of cfg that run for
// the branch or (when tag is true) tag name.
func runningWorkflows(cfg *Config, name string, tag bool) []string {
	var out []string
	for i := range cfg.Workflows {
		w := &cfg.Workflows[i]
		if workflowRuns(w, name, tag) {
			if out == nil {
				out = make([]string, 0, len(cfg.Workflows)-i)
			}
			out = append(out, w.Name)
		}
	}
	return out
}

// Job states while resolving requires.
const (
	jobUnknown uint8 = iota
	jobVisiting
	jobRuns
	jobSkipped
)

// workflowRuns reports whether at least one job of w runs.
func workflowRuns(w *Workflow, name string, tag bool) bool {
	var buf [32]uint8
	state := buf[:0]
	if len(w.Jobs) <= len(buf) {
		state = buf[:len(w.Jobs)]
	} else {
		state = make([]uint8, len(w.Jobs))
	}
	for i := range w.Jobs {
		if jobRunsFor(w, i, state, name, tag) {
			return true
		}
	}
	return false
}

// jobRunsFor reports whether job i of w runs: its own filter selects name
// and every job it requires runs. A required job that is not in the
// workflow, or a cycle of requires, means the job does not run.
func jobRunsFor(w *Workflow, i int, state []uint8, name string, tag bool) bool {
	switch state[i] {
	case jobRuns:
		return true
	case jobSkipped, jobVisiting:
		return false
	}
	state[i] = jobVisiting
	j := &w.Jobs[i]
	var ok bool
	if tag {
		ok = j.Tags != nil && j.Tags.Match(name)
	} else {
		ok = j.Branches.Match(name)
	}
	for _, r := range j.Requires {
		if !ok {
			break
		}
		k := jobIndex(w, r)
		ok = k >= 0 && jobRunsFor(w, k, state, name, tag)
	}
	if ok {
		state[i] = jobRuns
	} else {
		state[i] = jobSkipped
	}
	return ok
}

// jobIndex returns the index of the first job of w named name, or -1.
func jobIndex(w *Workflow, name string) int {
	for i := range w.Jobs {
		if w.Jobs[i].Name == name {
			return i
		}
	}
	return -1
}
