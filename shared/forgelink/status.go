package forgelink

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// StatusState is where one workflow of a pipeline (or, through Overall, the
// whole pipeline) is, as reported to the VCS as a commit status.
//
// States only move forward: pending → running → one terminal state
// (success, failed, error, canceled). See Transition.
type StatusState string

// The status states. Pending is forgelink's own: every new pipeline gets it
// for each workflow. The executor reports the others.
const (
	StatusPending  StatusState = "pending"
	StatusRunning  StatusState = "running"
	StatusSuccess  StatusState = "success"
	StatusFailed   StatusState = "failed"
	StatusError    StatusState = "error"
	StatusCanceled StatusState = "canceled"
)

// allStates and executorStates are in the order the error messages list them.
var (
	allStates      = []StatusState{StatusPending, StatusRunning, StatusSuccess, StatusFailed, StatusError, StatusCanceled}
	executorStates = allStates[1:]
)

// ParseStatusState returns the state named s (exactly, lower case), or an
// Invalid error listing the allowed values. It accepts every state,
// including pending: use it for states forgelink itself wrote (a
// StatusRequest, a stored status). Use ParseExecutorState for what an
// executor reports.
func ParseStatusState(s string) (StatusState, error) {
	return parseState(s, allStates)
}

// ParseExecutorState is ParseStatusState for the state an executor reports
// with POST /api/v2/pipeline/:id/status: every state but pending, which only
// forgelink sets (when it creates the pipeline).
func ParseExecutorState(s string) (StatusState, error) {
	return parseState(s, executorStates)
}

func parseState(s string, allowed []StatusState) (StatusState, error) {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		if s == string(a) {
			return a, nil
		}
		names[i] = string(a)
	}
	return "", Errorf(Invalid, "invalid state %q: want one of %s", s, strings.Join(names, ", "))
}

// Terminal reports whether s is final: success, failed, error or canceled.
func (s StatusState) Terminal() bool {
	switch s {
	case StatusSuccess, StatusFailed, StatusError, StatusCanceled:
		return true
	}
	return false
}

// rank orders states for Transition: 0 pending, 1 running, 2 terminal,
// -1 unknown.
func (s StatusState) rank() int {
	switch {
	case s == StatusPending:
		return 0
	case s == StatusRunning:
		return 1
	case s.Terminal():
		return 2
	}
	return -1
}

// Transition decides what to do when a workflow whose last posted state is
// from is reported to be in state to: post is true when the new state must
// be posted to the VCS (and recorded).
//
//   - from "" (nothing posted yet): any state is posted.
//   - the same state again: (false, nil), a no-op, so retries and duplicate
//     reports are harmless.
//   - forward (pending → running → terminal, or pending → terminal): posted.
//   - pending after anything: (false, nil). Pending is only ever forgelink's
//     own initial state, so a late one (a queue message delivered after the
//     executor's first report) is stale, not a client's mistake.
//   - any other backwards move (terminal → running) or one terminal state
//     to another: (false, Conflict), whose message names both states, e.g.
//     "cannot go from success to running".
//
// An unknown from or to is Invalid.
func Transition(from, to StatusState) (post bool, err error) {
	if to.rank() < 0 {
		return false, Errorf(Invalid, "invalid state %q", to)
	}
	if from == "" {
		return true, nil
	}
	if from.rank() < 0 {
		return false, Errorf(Invalid, "invalid state %q", from)
	}
	switch {
	case from == to, to == StatusPending:
		return false, nil
	case to.rank() > from.rank():
		return true, nil
	}
	return false, Errorf(Conflict, "cannot go from %s to %s", from, to)
}

// GitHubState is s as a GitHub commit status state: pending and running are
// "pending", success "success", failed "failure", error and canceled
// "error" (GitHub has no canceled). It is "" for an unknown state.
func GitHubState(s StatusState) string {
	switch s {
	case StatusPending, StatusRunning:
		return "pending"
	case StatusSuccess:
		return "success"
	case StatusFailed:
		return "failure"
	case StatusError, StatusCanceled:
		return "error"
	}
	return ""
}

// BitbucketState is s as a Bitbucket Cloud build status state: pending and
// running are "INPROGRESS", success "SUCCESSFUL", failed and error "FAILED",
// canceled "STOPPED". It is "" for an unknown state.
func BitbucketState(s StatusState) string {
	switch s {
	case StatusPending, StatusRunning:
		return "INPROGRESS"
	case StatusSuccess:
		return "SUCCESSFUL"
	case StatusFailed, StatusError:
		return "FAILED"
	case StatusCanceled:
		return "STOPPED"
	}
	return ""
}

// statusContextPrefix names forgelink's statuses on GitHub.
const statusContextPrefix = "ci/forgelink"

// StatusContext is the GitHub status context of a workflow,
// "ci/forgelink: <workflow>", or "ci/forgelink" for workflow "" (a status
// about the whole pipeline, e.g. an errored one).
func StatusContext(workflow string) string {
	if workflow == "" {
		return statusContextPrefix
	}
	return statusContextPrefix + ": " + workflow
}

// MaxBitbucketKey is the longest Bitbucket build status key forgelink makes.
const MaxBitbucketKey = 40

// BitbucketStatusKey is the Bitbucket build status key of a workflow: the
// same for the same workflow on every call, so that each report updates
// that workflow's status instead of adding one, and at most MaxBitbucketKey
// bytes.
//
// It is "forgelink-<workflow>" ("forgelink" for workflow "") when the
// workflow name has only ASCII letters, digits, '-', '_' and '.' and the
// key fits. Otherwise it is a readable prefix (other characters replaced
// by '-', cut to fit) plus '-' and the first 10 hex digits of the SHA-256 of
// the workflow name, so that names that differ only in replaced or cut
// characters still get different keys.
func BitbucketStatusKey(workflow string) string {
	const prefix = "forgelink"
	if workflow == "" {
		return prefix
	}
	var b strings.Builder
	b.WriteString(prefix + "-")
	clean := true
	for _, r := range workflow {
		if r < utf8.RuneSelf && keyChar(byte(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
			clean = false
		}
	}
	key := b.String()
	if clean && len(key) <= MaxBitbucketKey {
		return key
	}
	sum := sha256.Sum256([]byte(workflow))
	suffix := "-" + hex.EncodeToString(sum[:5])
	if n := MaxBitbucketKey - len(suffix); len(key) > n {
		key = key[:n] // ASCII only: any byte is a boundary
	}
	return key + suffix
}

func keyChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.'
}

// MaxStatusDescription is the most characters (runes) a commit status
// description may have; GitHub's limit.
const MaxStatusDescription = 140

// StatusDescription is the description of a commit status: given, or when
// given is blank a default for state naming workflow ("Workflow build
// passed"; "Pipeline passed" for workflow ""). Runs of white space,
// newlines included, become one space (a parse error's message is often
// several lines), invalid UTF-8 becomes U+FFFD, and a text over
// MaxStatusDescription characters is cut on a character boundary and ends
// with "…".
func StatusDescription(state StatusState, workflow, given string) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(given, "\uFFFD")), " ")
	if s == "" {
		s = defaultDescription(state, workflow)
	}
	if utf8.RuneCountInString(s) <= MaxStatusDescription {
		return s
	}
	n := 0
	for i := range s {
		if n == MaxStatusDescription-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s // not reached
}

func defaultDescription(state StatusState, workflow string) string {
	subject := "Pipeline"
	if workflow != "" {
		subject = "Workflow " + workflow
	}
	switch state {
	case StatusPending:
		return subject + " is queued"
	case StatusRunning:
		return subject + " is running"
	case StatusSuccess:
		return subject + " passed"
	case StatusFailed:
		return subject + " failed"
	case StatusError:
		return subject + " could not run"
	case StatusCanceled:
		return subject + " was canceled"
	}
	return subject + " is " + string(state)
}

// Overall is the state of a pipeline whose workflows are in the given
// states; it is the pipeline's state in the API and on its badge. In order
// of precedence:
//
//   - any failed: failed (even while others still run, as GitHub's combined
//     status turns failure at the first failure);
//   - else any error: error;
//   - else any canceled: canceled;
//   - else all success: success;
//   - else all pending: pending;
//   - else (some running, or some done and some pending): running.
//
// A workflow with state "" or an unknown state counts as pending (nothing
// known yet), and so does a pipeline with no workflows: Overall of an empty
// map is pending.
func Overall(workflows map[string]StatusState) StatusState {
	var failed, errored, canceled, pending, success int
	for _, s := range workflows {
		switch s {
		case StatusFailed:
			failed++
		case StatusError:
			errored++
		case StatusCanceled:
			canceled++
		case StatusSuccess:
			success++
		case StatusRunning:
		default:
			pending++
		}
	}
	switch n := len(workflows); {
	case failed > 0:
		return StatusFailed
	case errored > 0:
		return StatusError
	case canceled > 0:
		return StatusCanceled
	case n == 0 || pending == n:
		return StatusPending
	case success == n:
		return StatusSuccess
	}
	return StatusRunning
}
