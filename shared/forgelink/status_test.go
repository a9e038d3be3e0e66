package forgelink_test

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"forgelink/shared/forgelink"

	"github.com/google/go-cmp/cmp"
)

var statusStates = []forgelink.StatusState{
	forgelink.StatusPending, forgelink.StatusRunning, forgelink.StatusSuccess,
	forgelink.StatusFailed, forgelink.StatusError, forgelink.StatusCanceled,
}

func TestParseStatusState(t *testing.T) {
	tests := []struct {
		in           string
		want         forgelink.StatusState
		wantErr      bool // from ParseStatusState
		executorErr  bool // from ParseExecutorState
		wantContains string
	}{
		{in: "pending", want: forgelink.StatusPending, executorErr: true},
		{in: "running", want: forgelink.StatusRunning},
		{in: "success", want: forgelink.StatusSuccess},
		{in: "failed", want: forgelink.StatusFailed},
		{in: "error", want: forgelink.StatusError},
		{in: "canceled", want: forgelink.StatusCanceled},
		{in: "", wantErr: true, executorErr: true},
		{in: "Success", wantErr: true, executorErr: true},
		{in: "cancelled", wantErr: true, executorErr: true},
		{in: "failure", wantErr: true, executorErr: true},
		{in: " running", wantErr: true, executorErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := forgelink.ParseStatusState(tc.in)
			checkParse(t, "ParseStatusState", tc.in, got, err, tc.want, tc.wantErr,
				"want one of pending, running, success, failed, error, canceled")
			got, err = forgelink.ParseExecutorState(tc.in)
			checkParse(t, "ParseExecutorState", tc.in, got, err, tc.want, tc.executorErr,
				"want one of running, success, failed, error, canceled")
		})
	}
}

func checkParse(t *testing.T, fn, in string, got forgelink.StatusState, err error, want forgelink.StatusState, wantErr bool, list string) {
	t.Helper()
	if wantErr {
		if got, want := forgelink.KindOf(err), forgelink.Invalid; err == nil || got != want {
			t.Fatalf("%s(%q) = _, %v (kind %v), want kind %v", fn, in, err, got, want)
		}
		if msg := forgelink.MessageOf(err); !strings.Contains(msg, list) {
			t.Errorf("%s(%q) message %q does not list %q", fn, in, msg, list)
		}
		return
	}
	if err != nil || got != want {
		t.Errorf("%s(%q) = %q, %v, want %q, nil", fn, in, got, err, want)
	}
}

func TestTerminal(t *testing.T) {
	got := map[forgelink.StatusState]bool{}
	for _, s := range append(statusStates, "", "bogus") {
		got[s] = s.Terminal()
	}
	want := map[forgelink.StatusState]bool{
		forgelink.StatusPending: false, forgelink.StatusRunning: false,
		forgelink.StatusSuccess: true, forgelink.StatusFailed: true,
		forgelink.StatusError: true, forgelink.StatusCanceled: true,
		"": false, "bogus": false,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Terminal (-want +got):\n%s", diff)
	}
}

func TestTransition(t *testing.T) {
	type result struct {
		Post bool
		Kind string // "" for no error
		Msg  string
	}
	post := result{Post: true}
	noop := result{}
	conflict := func(from, to string) result {
		return result{Kind: "conflict", Msg: fmt.Sprintf("cannot go from %s to %s", from, to)}
	}
	const (
		P = "pending"
		R = "running"
		S = "success"
		F = "failed"
		E = "error"
		C = "canceled"
	)
	// want[from][to], for every pair.
	want := map[string]map[string]result{
		"": {P: post, R: post, S: post, F: post, E: post, C: post},
		P:  {P: noop, R: post, S: post, F: post, E: post, C: post},
		R:  {P: noop, R: noop, S: post, F: post, E: post, C: post},
		S:  {P: noop, R: conflict(S, R), S: noop, F: conflict(S, F), E: conflict(S, E), C: conflict(S, C)},
		F:  {P: noop, R: conflict(F, R), S: conflict(F, S), F: noop, E: conflict(F, E), C: conflict(F, C)},
		E:  {P: noop, R: conflict(E, R), S: conflict(E, S), F: conflict(E, F), E: noop, C: conflict(E, C)},
		C:  {P: noop, R: conflict(C, R), S: conflict(C, S), F: conflict(C, F), E: conflict(C, E), C: noop},
	}
	got := map[string]map[string]result{}
	for _, from := range append([]forgelink.StatusState{""}, statusStates...) {
		got[string(from)] = map[string]result{}
		for _, to := range statusStates {
			p, err := forgelink.Transition(from, to)
			r := result{Post: p}
			if err != nil {
				r.Kind = forgelink.KindOf(err).String()
				r.Msg = forgelink.MessageOf(err)
			}
			got[string(from)][string(to)] = r
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Transition (-want +got):\n%s", diff)
	}
}

func TestTransitionUnknown(t *testing.T) {
	tests := []struct {
		name     string
		from, to forgelink.StatusState
	}{
		{"empty to", "", ""},
		{"empty to after running", forgelink.StatusRunning, ""},
		{"unknown to", forgelink.StatusPending, "done"},
		{"unknown from", "done", forgelink.StatusSuccess},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			post, err := forgelink.Transition(tc.from, tc.to)
			if post || forgelink.KindOf(err) != forgelink.Invalid || err == nil {
				t.Errorf("Transition(%q, %q) = %v, %v, want false, Invalid", tc.from, tc.to, post, err)
			}
		})
	}
}

func TestVCSStates(t *testing.T) {
	type states struct{ GitHub, Bitbucket string }
	got := map[forgelink.StatusState]states{}
	for _, s := range append(statusStates, "bogus") {
		got[s] = states{forgelink.GitHubState(s), forgelink.BitbucketState(s)}
	}
	want := map[forgelink.StatusState]states{
		forgelink.StatusPending:  {"pending", "INPROGRESS"},
		forgelink.StatusRunning:  {"pending", "INPROGRESS"},
		forgelink.StatusSuccess:  {"success", "SUCCESSFUL"},
		forgelink.StatusFailed:   {"failure", "FAILED"},
		forgelink.StatusError:    {"error", "FAILED"},
		forgelink.StatusCanceled: {"error", "STOPPED"},
		"bogus":                  {"", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GitHubState/BitbucketState (-want +got):\n%s", diff)
	}
}

func TestStatusContext(t *testing.T) {
	tests := []struct{ workflow, want string }{
		{"", "ci/forgelink"},
		{"build", "ci/forgelink: build"},
		{"build and test", "ci/forgelink: build and test"},
	}
	for _, tc := range tests {
		if got := forgelink.StatusContext(tc.workflow); got != tc.want {
			t.Errorf("StatusContext(%q) = %q, want %q", tc.workflow, got, tc.want)
		}
	}
}

func TestBitbucketStatusKey(t *testing.T) {
	long := strings.Repeat("w", 60)
	tests := []struct {
		name, workflow, want string
	}{
		{"empty", "", "forgelink"},
		{"plain", "build", "forgelink-build"},
		{"allowed punctuation", "Build_and.test-2", "forgelink-Build_and.test-2"},
		{"exactly 40", strings.Repeat("x", 30), "forgelink-" + strings.Repeat("x", 30)},
		{"41 gets a hash", strings.Repeat("x", 31), "forgelink-" + strings.Repeat("x", 19) + "-0f46e4b080"},
		{"long", long, "forgelink-" + strings.Repeat("w", 19) + "-e0bd8d50bd"},
		{"space", "build and test", "forgelink-build-and-test-bf591e8954"},
		{"slash", "build/test", "forgelink-build-test-039f20fd3b"},
		{"non-ASCII", "tést", "forgelink-t-st-4ab085ecf1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := forgelink.BitbucketStatusKey(tc.workflow)
			if len(got) > forgelink.MaxBitbucketKey {
				t.Errorf("BitbucketStatusKey(%q) = %q, %d bytes, over %d", tc.workflow, got, len(got), forgelink.MaxBitbucketKey)
			}
			if again := forgelink.BitbucketStatusKey(tc.workflow); again != got {
				t.Errorf("BitbucketStatusKey(%q) not stable: %q then %q", tc.workflow, got, again)
			}
			if got != tc.want {
				t.Errorf("BitbucketStatusKey(%q) = %q, want %q", tc.workflow, got, tc.want)
			}
		})
	}
}

func TestBitbucketStatusKeyDistinct(t *testing.T) {
	// Names that sanitize or cut to the same prefix still get distinct keys.
	names := []string{
		"build test", "build-test", "build/test", "build_test", "build.test",
		strings.Repeat("a", 40), strings.Repeat("a", 41), strings.Repeat("a", 40) + "b",
		"tést", "tëst", "t-st",
	}
	seen := map[string]string{}
	for _, n := range names {
		k := forgelink.BitbucketStatusKey(n)
		if other, ok := seen[k]; ok {
			t.Errorf("BitbucketStatusKey(%q) = BitbucketStatusKey(%q) = %q", n, other, k)
		}
		seen[k] = n
	}
}

func TestStatusDescription(t *testing.T) {
	long := strings.Repeat("é", 200)
	tests := []struct {
		name     string
		state    forgelink.StatusState
		workflow string
		given    string
		want     string
	}{
		{"pending default", forgelink.StatusPending, "build", "", "Workflow build is queued"},
		{"running default", forgelink.StatusRunning, "build", "", "Workflow build is running"},
		{"success default", forgelink.StatusSuccess, "build", "", "Workflow build passed"},
		{"failed default", forgelink.StatusFailed, "build", "", "Workflow build failed"},
		{"error default", forgelink.StatusError, "build", "", "Workflow build could not run"},
		{"canceled default", forgelink.StatusCanceled, "build", "", "Workflow build was canceled"},
		{"no workflow", forgelink.StatusSuccess, "", "", "Pipeline passed"},
		{"blank given", forgelink.StatusFailed, "", " \n\t", "Pipeline failed"},
		{"given", forgelink.StatusSuccess, "build", "All 42 tests passed", "All 42 tests passed"},
		{"whitespace collapsed", forgelink.StatusError, "", "config:\n  line 3: bad\tkey ", "config: line 3: bad key"},
		{"invalid UTF-8", forgelink.StatusError, "", "bad \xff byte", "bad \uFFFD byte"},
		{"exactly 140", forgelink.StatusError, "", strings.Repeat("é", 140), strings.Repeat("é", 140)},
		{"141 cut", forgelink.StatusError, "", strings.Repeat("x", 141), strings.Repeat("x", 139) + "…"},
		{"multibyte cut", forgelink.StatusError, "", long, strings.Repeat("é", 139) + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := forgelink.StatusDescription(tc.state, tc.workflow, tc.given)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("StatusDescription(%q, %q, %q) (-want +got):\n%s", tc.state, tc.workflow, tc.given, diff)
			}
			if n := utf8.RuneCountInString(got); n > forgelink.MaxStatusDescription || !utf8.ValidString(got) {
				t.Errorf("StatusDescription: %d characters (valid UTF-8: %v)", n, utf8.ValidString(got))
			}
		})
	}
}

func TestOverall(t *testing.T) {
	type m = map[string]forgelink.StatusState
	tests := []struct {
		name      string
		workflows m
		want      forgelink.StatusState
	}{
		{"no workflows", m{}, forgelink.StatusPending},
		{"nil", nil, forgelink.StatusPending},
		{"all pending", m{"a": "pending", "b": "pending"}, forgelink.StatusPending},
		{"unreported counts as pending", m{"a": "", "b": "pending"}, forgelink.StatusPending},
		{"one running", m{"a": "running", "b": "pending"}, forgelink.StatusRunning},
		{"done and pending", m{"a": "success", "b": "pending"}, forgelink.StatusRunning},
		{"done and unreported", m{"a": "success", "b": ""}, forgelink.StatusRunning},
		{"done and running", m{"a": "success", "b": "running"}, forgelink.StatusRunning},
		{"all success", m{"a": "success", "b": "success"}, forgelink.StatusSuccess},
		{"one success", m{"a": "success"}, forgelink.StatusSuccess},
		{"failed while running", m{"a": "failed", "b": "running"}, forgelink.StatusFailed},
		{"failed beats error", m{"a": "failed", "b": "error", "c": "canceled"}, forgelink.StatusFailed},
		{"error beats canceled", m{"a": "success", "b": "error", "c": "canceled"}, forgelink.StatusError},
		{"canceled", m{"a": "success", "b": "canceled"}, forgelink.StatusCanceled},
		{"canceled while running", m{"a": "running", "b": "canceled"}, forgelink.StatusCanceled},
		{"unknown counts as pending", m{"a": "success", "b": "bogus"}, forgelink.StatusRunning},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := forgelink.Overall(tc.workflows); got != tc.want {
				t.Errorf("Overall(%v) = %q, want %q", tc.workflows, got, tc.want)
			}
		})
	}
}
