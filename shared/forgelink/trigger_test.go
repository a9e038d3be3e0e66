package forgelink_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"forgelink/shared/forgelink"

	"github.com/google/go-cmp/cmp"
)

// Test helpers build configs the way package circleci would.

func pats(t testing.TB, ss ...string) []forgelink.Pattern {
	t.Helper()
	var out []forgelink.Pattern
	for _, s := range ss {
		p, err := forgelink.ParsePattern(s)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", s, err)
		}
		out = append(out, p)
	}
	return out
}

func only(t testing.TB, ss ...string) *forgelink.Filter {
	t.Helper()
	return &forgelink.Filter{Only: pats(t, ss...)}
}

func ignore(t testing.TB, ss ...string) *forgelink.Filter {
	t.Helper()
	return &forgelink.Filter{Ignore: pats(t, ss...)}
}

func job(name string, requires ...string) forgelink.WorkflowJob {
	return forgelink.WorkflowJob{Name: name, Requires: requires}
}

func withBranches(j forgelink.WorkflowJob, f *forgelink.Filter) forgelink.WorkflowJob {
	j.Branches = f
	return j
}

func withTags(j forgelink.WorkflowJob, f *forgelink.Filter) forgelink.WorkflowJob {
	j.Tags = f
	return j
}

func config(ws ...forgelink.Workflow) *forgelink.Config { return &forgelink.Config{Workflows: ws} }

func workflow(name string, jobs ...forgelink.WorkflowJob) forgelink.Workflow {
	return forgelink.Workflow{Name: name, Jobs: jobs}
}

func push(branch, msg string) forgelink.Event {
	return forgelink.Event{Type: forgelink.BranchPush, Branch: branch, Revision: "c0ffee", Message: msg}
}

func tagPush(tag string) forgelink.Event {
	return forgelink.Event{Type: forgelink.TagPush, Tag: tag, Revision: "7a9"}
}

func pr(action forgelink.PRAction, number int, branch string, fork bool) forgelink.Event {
	head := "octo-org/hello"
	if fork {
		head = "mallory/hello"
	}
	return forgelink.Event{
		Type: forgelink.PullRequest, Branch: branch, Revision: "beef",
		PR: &forgelink.PR{Number: number, Action: action, BaseBranch: "main", HeadRepo: head, Fork: fork},
	}
}

// outcome is what every row of TestEvaluate asserts.
type outcome struct {
	Build          bool
	Reason         string
	Workflows      []string
	SecretsExposed bool
}

func built(workflows ...string) outcome {
	return outcome{Build: true, Workflows: workflows, SecretsExposed: true}
}

func skipped(reason string) outcome { return outcome{Reason: reason} }

func TestEvaluate(t *testing.T) {
	// ci runs everywhere but on tags; deploy only on main.
	cfgCI := config(
		workflow("ci", job("build"), job("test", "build")),
		workflow("deploy", withBranches(job("deploy"), only(t, "main"))),
	)
	// The usual release idiom: tags v*, never branches.
	cfgTags := config(
		workflow("ci", job("build")),
		workflow("release", withBranches(withTags(job("publish"), only(t, "/^v.*/")), ignore(t, "/.*/"))),
	)
	cfgTagsIgnore := config(workflow("release",
		withTags(job("publish"), &forgelink.Filter{Only: pats(t, "/^v.*/"), Ignore: pats(t, `/v.*-rc\d+/`)})))
	cfgTagsIgnoreOnly := config(workflow("release", withTags(job("publish"), ignore(t, "/test-.*/"))))
	// publish has tag filters but requires build, which has none.
	cfgTagRequires := config(workflow("release",
		job("build"),
		withTags(job("publish", "build"), only(t, "/.*/"))))
	// e2e requires test requires lint, and lint runs only on main.
	cfgChain := config(workflow("ci",
		withBranches(job("lint"), only(t, "main")),
		job("test", "lint"),
		job("e2e", "test")))
	cfgRel := config(workflow("ci", withBranches(job("build"), only(t, "/rel/"))))
	cfgOnlyIgnore := config(workflow("ci", withBranches(job("build"),
		&forgelink.Filter{Only: pats(t, `/release\/.*/`), Ignore: pats(t, "release/old")})))
	cfgReleaseOnly := config(workflow("ci", withBranches(job("build"), only(t, "/release-.*/"))))
	cfgUnknownRequires := config(workflow("ci", job("build", "tset")))
	cfgCycle := config(workflow("ci", job("a", "b"), job("b", "a")))
	cfgDiamond := config(workflow("ci",
		withBranches(job("deploy", "test", "build"), only(t, "main")),
		job("test", "build"),
		job("build")))
	// A long pipeline whose only job on feature branches is the last one.
	var long []forgelink.WorkflowJob
	for i := 0; i < 40; i++ {
		long = append(long, withBranches(job("step"+string(rune('A'+i))), only(t, "main")))
	}
	cfgLong := config(workflow("long", append(long, job("lint"))...))

	prsOnly := forgelink.Settings{BuildPRsOnly: true}
	forks := forgelink.Settings{BuildForkPRs: true}
	forksSecrets := forgelink.Settings{BuildForkPRs: true, ForksReceiveSecretEnvVars: true}

	tests := []struct {
		name string
		in   forgelink.TriggerInput
		want outcome
	}{
		// Rule 1 and 2: default branch and build_prs_only.
		{"default branch push", forgelink.TriggerInput{Event: push("main", "fix"), DefaultBranch: "main", Config: cfgCI},
			built("ci", "deploy")},
		{"default branch push with build_prs_only", forgelink.TriggerInput{Event: push("main", "fix"), Settings: prsOnly, DefaultBranch: "main", Config: cfgCI},
			built("ci", "deploy")},
		{"default branch from the event when the project has none", forgelink.TriggerInput{Event: func() forgelink.Event {
			e := push("trunk", "fix")
			e.DefaultBranch = "trunk"
			return e
		}(), Settings: prsOnly, Config: cfgCI},
			built("ci")},
		{"project default branch wins over the event's", forgelink.TriggerInput{Event: func() forgelink.Event {
			e := push("master", "fix")
			e.DefaultBranch = "master"
			return e
		}(), Settings: prsOnly, DefaultBranch: "main", Config: cfgCI},
			skipped("only build pull requests: no open pull request for master")},
		{"no default branch known: nothing is the default", forgelink.TriggerInput{Event: push("main", "fix"), Settings: prsOnly, Config: cfgCI},
			skipped("only build pull requests: no open pull request for main")},
		{"default branch push still obeys filters", forgelink.TriggerInput{Event: push("main", "fix"), Settings: prsOnly, DefaultBranch: "main", Config: cfgReleaseOnly},
			skipped("no workflow matches branch main")},
		{"other branch without build_prs_only", forgelink.TriggerInput{Event: push("feature", "wip"), DefaultBranch: "main", Config: cfgCI},
			built("ci")},
		{"other branch, build_prs_only, no open PR", forgelink.TriggerInput{Event: push("feature", "wip"), Settings: prsOnly, DefaultBranch: "main", Config: cfgCI},
			skipped("only build pull requests: no open pull request for feature")},
		{"other branch, build_prs_only, open PR", forgelink.TriggerInput{Event: push("feature", "wip"), Settings: prsOnly, DefaultBranch: "main", BranchHasOpenPR: true, Config: cfgCI},
			built("ci")},
		{"always-build exact name", forgelink.TriggerInput{Event: push("gh-readonly-queue", "x"),
			Settings: forgelink.Settings{BuildPRsOnly: true, AlwaysBuildBranches: []string{"gh-readonly-queue"}}, DefaultBranch: "main", Config: cfgCI},
			built("ci")},
		{"always-build regex", forgelink.TriggerInput{Event: push("release/1.2", "x"),
			Settings: forgelink.Settings{BuildPRsOnly: true, AlwaysBuildBranches: []string{"staging", `/release\/.*/`}}, DefaultBranch: "main", Config: cfgCI},
			built("ci")},
		{"always-build regex must match the entire name", forgelink.TriggerInput{Event: push("release", "x"),
			Settings: forgelink.Settings{BuildPRsOnly: true, AlwaysBuildBranches: []string{"/rel/"}}, DefaultBranch: "main", Config: cfgCI},
			skipped("only build pull requests: no open pull request for release")},
		{"always-build invalid regex never matches", forgelink.TriggerInput{Event: push("(", "x"),
			Settings: forgelink.Settings{BuildPRsOnly: true, AlwaysBuildBranches: []string{"/(/"}}, DefaultBranch: "main", Config: cfgCI},
			skipped("only build pull requests: no open pull request for (")},
		{"build_prs_only skip comes before the config", forgelink.TriggerInput{Event: push("feature", "wip"), Settings: prsOnly, DefaultBranch: "main", ConfigMissing: true},
			skipped("only build pull requests: no open pull request for feature")},

		// Pull requests, rule 2 and 3.
		{"PR opened with build_prs_only builds its head", forgelink.TriggerInput{Event: pr(forgelink.PROpened, 7, "feature", false), Settings: prsOnly, DefaultBranch: "main", Config: cfgCI},
			built("ci")},
		{"PR reopened", forgelink.TriggerInput{Event: pr(forgelink.PRReopened, 7, "feature", false), Settings: prsOnly, DefaultBranch: "main", Config: cfgCI},
			built("ci")},
		{"PR synchronize without build_prs_only is its own decision", forgelink.TriggerInput{Event: pr(forgelink.PRSynchronize, 7, "feature", false), DefaultBranch: "main", Config: cfgCI},
			built("ci")},
		{"same-repo PR head named main matches main filters", forgelink.TriggerInput{Event: pr(forgelink.PRSynchronize, 7, "main", false), DefaultBranch: "main", Config: cfgCI},
			built("ci", "deploy")},
		{"PR closed", forgelink.TriggerInput{Event: pr(forgelink.PRClosed, 7, "feature", false), Config: cfgCI},
			skipped("pull request closed")},
		{"PR merged", forgelink.TriggerInput{Event: pr(forgelink.PRMerged, 7, "feature", false), Config: cfgCI},
			skipped("pull request merged")},
		{"PR edited", forgelink.TriggerInput{Event: pr(forgelink.PREdited, 7, "feature", false), Config: cfgCI},
			skipped("pull request edited")},
		{"PR unknown action", forgelink.TriggerInput{Event: pr("labeled", 7, "feature", false), Config: cfgCI},
			skipped(`pull request action "labeled" is not built`)},
		{"PR event without PR", forgelink.TriggerInput{Event: forgelink.Event{Type: forgelink.PullRequest, Branch: "feature"}, Config: cfgCI},
			skipped("pull request event without a pull request")},
		{"fork PR with build_fork_prs off", forgelink.TriggerInput{Event: pr(forgelink.PROpened, 8, "patch-1", true), Settings: forgelink.Settings{ForksReceiveSecretEnvVars: true}, Config: cfgCI},
			skipped("forked pull requests are not built (build_fork_prs is off)")},
		{"fork PR check comes before an invalid config", forgelink.TriggerInput{Event: pr(forgelink.PROpened, 8, "patch-1", true), ConfigError: "bad"},
			skipped("forked pull requests are not built (build_fork_prs is off)")},
		{"fork PR on, secrets off", forgelink.TriggerInput{Event: pr(forgelink.PROpened, 8, "patch-1", true), Settings: forks, Config: cfgCI},
			outcome{Build: true, Workflows: []string{"ci"}}},
		{"fork PR on, secrets on", forgelink.TriggerInput{Event: pr(forgelink.PRSynchronize, 8, "patch-1", true), Settings: forksSecrets, Config: cfgCI},
			built("ci")},
		{"fork PR with build_prs_only", forgelink.TriggerInput{Event: pr(forgelink.PROpened, 8, "patch-1", true), Settings: forgelink.Settings{BuildPRsOnly: true, BuildForkPRs: true}, Config: cfgCI},
			outcome{Build: true, Workflows: []string{"ci"}}},
		{"fork branch named main is pull/N, not main", forgelink.TriggerInput{Event: pr(forgelink.PROpened, 8, "main", true), Settings: forksSecrets, DefaultBranch: "main", Config: cfgCI},
			built("ci")},
		{"same-repo PR has secrets without forks_receive_secret_env_vars", forgelink.TriggerInput{Event: pr(forgelink.PROpened, 7, "feature", false), Settings: forks, Config: cfgCI},
			built("ci")},

		// Rule 4: tags.
		{"tag matching only /^v.*/", forgelink.TriggerInput{Event: tagPush("v1.2.0"), Settings: prsOnly, DefaultBranch: "main", Config: cfgTags},
			built("release")},
		{"tag not matching only", forgelink.TriggerInput{Event: tagPush("1.2.0"), Config: cfgTags},
			skipped("no workflow matches tag 1.2.0")},
		{"branches ignore /.*/ keeps release off branches", forgelink.TriggerInput{Event: push("main", "x"), DefaultBranch: "main", Config: cfgTags},
			built("ci")},
		{"tag matching only and ignore", forgelink.TriggerInput{Event: tagPush("v1.2.0-rc1"), Config: cfgTagsIgnore},
			skipped("no workflow matches tag v1.2.0-rc1")},
		{"tag matching only, not ignore", forgelink.TriggerInput{Event: tagPush("v1.2.0"), Config: cfgTagsIgnore},
			built("release")},
		{"tag filter with ignore only runs other tags", forgelink.TriggerInput{Event: tagPush("anything"), Config: cfgTagsIgnoreOnly},
			built("release")},
		{"tag filter with ignore only skips ignored tags", forgelink.TriggerInput{Event: tagPush("test-1"), Config: cfgTagsIgnoreOnly},
			skipped("no workflow matches tag test-1")},
		{"job without tag filters never runs for tags", forgelink.TriggerInput{Event: tagPush("v1.2.0"), Config: cfgCI},
			skipped("no workflow matches tag v1.2.0")},
		{"tag job requiring a job without tag filters", forgelink.TriggerInput{Event: tagPush("v1.2.0"), Config: cfgTagRequires},
			skipped("no workflow matches tag v1.2.0")},
		{"tag branch filters are not applied to tags", forgelink.TriggerInput{Event: tagPush("v2"), Config: config(workflow("release",
			withBranches(withTags(job("publish"), only(t, "/v.*/")), only(t, "main"))))},
			built("release")},

		// Rule 4: branches.
		{"requires chain with the root filtered out", forgelink.TriggerInput{Event: push("feature", "x"), DefaultBranch: "main", Config: cfgChain},
			skipped("no workflow matches branch feature")},
		{"requires chain with the root running", forgelink.TriggerInput{Event: push("main", "x"), DefaultBranch: "main", Config: cfgChain},
			built("ci")},
		{"regex must match the entire name", forgelink.TriggerInput{Event: push("release", "x"), Config: cfgRel},
			skipped("no workflow matches branch release")},
		{"regex matching the entire name", forgelink.TriggerInput{Event: push("rel", "x"), Config: cfgRel},
			built("ci")},
		{"only matches, ignore does not", forgelink.TriggerInput{Event: push("release/1.0", "x"), Config: cfgOnlyIgnore},
			built("ci")},
		{"only matches, ignore matches too", forgelink.TriggerInput{Event: push("release/old", "x"), Config: cfgOnlyIgnore},
			skipped("no workflow matches branch release/old")},
		{"only does not match", forgelink.TriggerInput{Event: push("feature", "x"), Config: cfgOnlyIgnore},
			skipped("no workflow matches branch feature")},
		{"requires naming an unknown job", forgelink.TriggerInput{Event: push("main", "x"), Config: cfgUnknownRequires},
			skipped("no workflow matches branch main")},
		{"requires cycle", forgelink.TriggerInput{Event: push("main", "x"), Config: cfgCycle},
			skipped("no workflow matches branch main")},
		{"diamond requires", forgelink.TriggerInput{Event: push("main", "x"), Config: cfgDiamond},
			built("ci")},
		{"diamond requires with the top filtered out", forgelink.TriggerInput{Event: push("feature", "x"), Config: cfgDiamond},
			built("ci")},
		{"workflow with many jobs", forgelink.TriggerInput{Event: push("feature", "x"), Config: cfgLong},
			built("long")},
		{"empty config", forgelink.TriggerInput{Event: push("main", "x"), Config: config()},
			skipped("no workflow matches branch main")},

		// Rule 5.
		{"[ci skip]", forgelink.TriggerInput{Event: push("main", "docs: typo [ci skip]"), DefaultBranch: "main", Config: cfgCI},
			skipped("[ci skip] in commit message")},
		{"[skip ci] in the body, any case", forgelink.TriggerInput{Event: push("main", "docs: typo\n\nNothing to build [Skip CI]."), DefaultBranch: "main", Config: cfgCI},
			skipped("[ci skip] in commit message")},
		{"[CI SKIP] on a tag", forgelink.TriggerInput{Event: func() forgelink.Event { e := tagPush("v1"); e.Message = "[CI SKIP]"; return e }(), Config: cfgTags},
			skipped("[ci skip] in commit message")},
		{"near misses do not skip", forgelink.TriggerInput{Event: push("main", "[ci  skip] [ci-skip] ci skip [skip ci"), DefaultBranch: "main", Config: cfgCI},
			built("ci", "deploy")},
		{"branch delete", forgelink.TriggerInput{Event: forgelink.Event{Type: forgelink.BranchDelete, Branch: "feature"}, Config: cfgCI},
			skipped("branch deleted")},
		{"tag delete", forgelink.TriggerInput{Event: forgelink.Event{Type: forgelink.TagDelete, Tag: "v1"}, Config: cfgTags},
			skipped("tag deleted")},
		{"unknown event type", forgelink.TriggerInput{Event: forgelink.Event{Type: "star"}, Config: cfgCI},
			skipped(`unsupported event type "star"`)},

		// Config.
		{"missing config", forgelink.TriggerInput{Event: push("main", "x"), DefaultBranch: "main", ConfigMissing: true},
			skipped("no .circleci/config.yml")},
		{"nil config counts as missing", forgelink.TriggerInput{Event: push("main", "x"), DefaultBranch: "main"},
			skipped("no .circleci/config.yml")},
		{"invalid config builds an error pipeline", forgelink.TriggerInput{Event: push("main", "x"), DefaultBranch: "main", ConfigError: "line 3: bad"},
			built()},
		{"invalid config on a tag builds too", forgelink.TriggerInput{Event: tagPush("v1"), ConfigError: "line 3: bad"},
			built()},
		{"invalid config on a fork without secrets", forgelink.TriggerInput{Event: pr(forgelink.PROpened, 8, "patch-1", true), Settings: forks, ConfigError: "line 3: bad"},
			outcome{Build: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := forgelink.Evaluate(tc.in)
			got := outcome{Build: d.Build, Reason: d.Reason, Workflows: d.Workflows, SecretsExposed: d.SecretsExposed}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Evaluate() mismatch (-want +got):\n%s", diff)
			}
			if d.Build != (d.Reason == "") {
				t.Errorf("Build = %v with Reason %q", d.Build, d.Reason)
			}
			if (d.ConfigError != "") != (tc.in.ConfigError != "" && d.Build) {
				t.Errorf("ConfigError = %q for input ConfigError %q", d.ConfigError, tc.in.ConfigError)
			}
		})
	}
}

// TestEvaluateRefs checks the fields that identify the pipeline.
func TestEvaluateRefs(t *testing.T) {
	cfg := config(workflow("ci", withTags(job("build"), only(t, "/.*/"))))
	all := forgelink.Settings{BuildForkPRs: true}
	tests := []struct {
		name string
		in   forgelink.TriggerInput
		want forgelink.Decision
	}{
		{"push", forgelink.TriggerInput{Event: push("feature", "x"), Config: cfg},
			forgelink.Decision{Build: true, Trigger: "push", Branch: "feature", Revision: "c0ffee", SecretsExposed: true, Workflows: []string{"ci"}}},
		{"same-repo PR", forgelink.TriggerInput{Event: pr(forgelink.PRSynchronize, 7, "feature", false), Config: cfg},
			forgelink.Decision{Build: true, Trigger: "pull_request", Branch: "feature", Revision: "beef", PRNumber: 7, SecretsExposed: true, Workflows: []string{"ci"}}},
		{"fork PR", forgelink.TriggerInput{Event: pr(forgelink.PROpened, 8, "patch-1", true), Settings: all, Config: cfg},
			forgelink.Decision{Build: true, Trigger: "pull_request", Branch: "pull/8", Revision: "beef", PRNumber: 8, Fork: true, Workflows: []string{"ci"}}},
		{"skipped fork PR keeps its refs", forgelink.TriggerInput{Event: pr(forgelink.PROpened, 8, "patch-1", true), Config: cfg},
			forgelink.Decision{Reason: forgelink.ReasonForkPR, Trigger: "pull_request", Branch: "pull/8", Revision: "beef", PRNumber: 8, Fork: true}},
		{"tag", forgelink.TriggerInput{Event: tagPush("v1"), Config: cfg},
			forgelink.Decision{Build: true, Trigger: "tag", Tag: "v1", Revision: "7a9", SecretsExposed: true, Workflows: []string{"ci"}}},
		{"config error", forgelink.TriggerInput{Event: push("main", "x"), ConfigError: "line 2: jobs: want a list"},
			forgelink.Decision{Build: true, Trigger: "push", Branch: "main", Revision: "c0ffee", SecretsExposed: true, ConfigError: "line 2: jobs: want a list"}},
		{"branch delete", forgelink.TriggerInput{Event: forgelink.Event{Type: forgelink.BranchDelete, Branch: "old", Before: "abc"}},
			forgelink.Decision{Reason: forgelink.ReasonBranchDeleted, Trigger: "push", Branch: "old"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := forgelink.Evaluate(tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Evaluate() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePattern(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		nomatch []string
	}{
		{"main", []string{"main"}, []string{"Main", "main2", "xmain", ""}},
		{"/rel/", []string{"rel"}, []string{"release", "prerel"}},
		{"/^v.*/", []string{"v1", "v"}, []string{"1v", "release-v1"}},
		{"/release\\/.*/", []string{"release/", "release/1.0"}, []string{"release", "xrelease/1"}},
		{"/a|b/", []string{"a", "b"}, []string{"ab", "xa", "bx"}}, // the alternation is grouped before anchoring
		{"/", []string{"/"}, []string{""}},
		{"//", []string{""}, []string{"/", "//"}},
		{"/x", []string{"/x"}, []string{"x"}},
	}
	for _, tc := range tests {
		p, err := forgelink.ParsePattern(tc.pattern)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", tc.pattern, err)
		}
		if p.String() != tc.pattern {
			t.Errorf("ParsePattern(%q).String() = %q", tc.pattern, p.String())
		}
		for _, s := range tc.match {
			if !p.Match(s) {
				t.Errorf("%q does not match %q, want match", tc.pattern, s)
			}
		}
		for _, s := range tc.nomatch {
			if p.Match(s) {
				t.Errorf("%q matches %q, want no match", tc.pattern, s)
			}
		}
	}
}

func TestParsePatternInvalid(t *testing.T) {
	for _, s := range []string{"/(/", "/[a-/", `/\8/`} {
		_, err := forgelink.ParsePattern(s)
		if forgelink.KindOf(err) != forgelink.Invalid {
			t.Errorf("ParsePattern(%q) = %v, want an Invalid error", s, err)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	var nilFilter *forgelink.Filter
	if !nilFilter.Match("anything") {
		t.Error("nil filter does not match, want match")
	}
	if !(&forgelink.Filter{}).Match("anything") {
		t.Error("empty filter does not match, want match")
	}
	f := &forgelink.Filter{Only: pats(t, "/feature-.*/", "main"), Ignore: pats(t, "feature-wip", "main")}
	for name, want := range map[string]bool{"feature-1": true, "feature-wip": false, "main": false, "dev": false} {
		if got := f.Match(name); got != want {
			t.Errorf("Match(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestAlwaysBuildPatternsRepeat evaluates many distinct always-build
// regexes, twice each, more than Evaluate memoizes: every answer must be the
// same as the first.
func TestAlwaysBuildPatternsRepeat(t *testing.T) {
	cfg := config(workflow("ci", job("build")))
	for round := 0; round < 2; round++ {
		for i := 0; i < 1500; i++ {
			n := strconv.Itoa(i)
			in := forgelink.TriggerInput{
				Event:         push("queue/"+n, "x"),
				Settings:      forgelink.Settings{BuildPRsOnly: true, AlwaysBuildBranches: []string{"/(/", `/queue\/` + n + `/`}},
				DefaultBranch: "main",
				Config:        cfg,
			}
			if d := forgelink.Evaluate(in); !d.Build {
				t.Fatalf("round %d, pattern %d: Evaluate skipped: %s", round, i, d.Reason)
			}
			in.Event.Branch += "x"
			if d := forgelink.Evaluate(in); d.Build {
				t.Fatalf("round %d, pattern %d: Evaluate built %s", round, i, in.Event.Branch)
			}
		}
	}
}

func TestConfigJSON(t *testing.T) {
	want := config(workflow("release",
		job("build"),
		withBranches(withTags(job("publish", "build"), &forgelink.Filter{Only: pats(t, `/^v\d+/`), Ignore: pats(t, "v0")}), ignore(t, "/.*/"))))
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got forgelink.Config
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	byText := cmp.Comparer(func(a, b forgelink.Pattern) bool { return a.String() == b.String() })
	if diff := cmp.Diff(want, &got, byText); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	if p := got.Workflows[0].Jobs[1].Tags.Only[0]; !p.Match("v12") || p.Match("v12x") {
		t.Errorf("unmarshaled pattern %s does not match like the original", p)
	}
	var bad forgelink.Config
	err = json.Unmarshal([]byte(`{"Workflows":[{"Jobs":[{"Tags":{"Only":["/(/"]}}]}]}`), &bad)
	if forgelink.KindOf(err) != forgelink.Invalid {
		t.Errorf("Unmarshal of an invalid pattern = %v, want an Invalid error", err)
	}
}

func BenchmarkEvaluate(b *testing.B) {
	cfg := config(
		workflow("ci",
			job("checkout"),
			job("lint", "checkout"),
			job("test", "checkout"),
			withBranches(job("e2e", "test"), ignore(b, "/dependabot\\/.*/"))),
		workflow("deploy",
			job("build"),
			withBranches(job("deploy-staging", "build"), only(b, "main", "/release\\/.*/")),
			withBranches(job("deploy-prod", "deploy-staging"), only(b, "main"))),
		workflow("release",
			withBranches(withTags(job("build"), only(b, "/^v.*/")), ignore(b, "/.*/")),
			withBranches(withTags(job("publish", "build"), &forgelink.Filter{Only: pats(b, "/^v.*/"), Ignore: pats(b, "/.*-rc.*/")}), ignore(b, "/.*/"))),
	)
	settings := forgelink.Settings{BuildPRsOnly: true, BuildForkPRs: true, AlwaysBuildBranches: []string{"staging", `/gh-readonly-queue\/.*/`}}
	events := []struct {
		name  string
		event forgelink.Event
	}{
		{"push-default", push("main", "feat: add badges")},
		{"push-no-pr", push("feature/x", "wip")},
		{"push-always-build", push("gh-readonly-queue/main/pr-7", "merge")},
		{"push-open-pr", push("release/1.2", "fix")},
		{"push-skip-ci", push("main", "docs [skip ci]")},
		{"pr-synchronize", pr(forgelink.PRSynchronize, 7, "feature/x", false)},
		{"pr-fork", pr(forgelink.PROpened, 8, "patch-1", true)},
		{"pr-closed", pr(forgelink.PRClosed, 7, "feature/x", false)},
		{"tag-release", tagPush("v1.2.0")},
		{"tag-unmatched", tagPush("nightly")},
		{"branch-delete", forgelink.Event{Type: forgelink.BranchDelete, Branch: "feature/x"}},
	}
	inputs := make([]forgelink.TriggerInput, len(events))
	for i, e := range events {
		inputs[i] = forgelink.TriggerInput{Event: e.event, Settings: settings, DefaultBranch: "main", BranchHasOpenPR: e.name == "push-open-pr", Config: cfg}
	}
	b.Run("mixed", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			forgelink.Evaluate(inputs[i%len(inputs)])
		}
	})
	for i, e := range events {
		b.Run(e.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				forgelink.Evaluate(inputs[i])
			}
		})
	}
}
