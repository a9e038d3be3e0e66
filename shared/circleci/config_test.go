package circleci_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"forgelink/shared/circleci"
	"forgelink/shared/forgelink"

	"github.com/google/go-cmp/cmp"
)

var comparePatterns = cmp.Comparer(func(a, b forgelink.Pattern) bool { return a.String() == b.String() })

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

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseTestdata(t *testing.T) {
	tests := []struct {
		file string
		want *forgelink.Config
	}{
		{"orb-pipeline.yml", &forgelink.Config{Workflows: []forgelink.Workflow{{
			Name: "build-test-deploy",
			Jobs: []forgelink.WorkflowJob{
				{Name: "build"},
				{Name: "node/test", Requires: []string{"build"}},
				{Name: "test", Requires: []string{"build"}, Branches: &forgelink.Filter{Ignore: pats(t, `/dependabot\/.*/`, "gh-pages")}},
				{Name: "deploy-staging", Requires: []string{"test", "node/test"}, Branches: &forgelink.Filter{Only: pats(t, `/main|release\/.*/`)}},
				{Name: "hold", Requires: []string{"deploy-staging"}, Branches: &forgelink.Filter{Only: pats(t, "main")}},
				{Name: "deploy-prod", Requires: []string{"hold"}, Branches: &forgelink.Filter{Only: pats(t, "main")}},
			},
		}}}},
		{"release-tags.yml", &forgelink.Config{Workflows: []forgelink.Workflow{{
			Name: "ci",
			Jobs: []forgelink.WorkflowJob{
				{Name: "test", Tags: &forgelink.Filter{Only: pats(t, "/.*/")}},
				{Name: "release", Requires: []string{"test"},
					Branches: &forgelink.Filter{Ignore: pats(t, "/.*/")},
					Tags:     &forgelink.Filter{Only: pats(t, `/^v\d+\.\d+\.\d+(-rc\.\d+)?$/`)}},
				{Name: "publish-docs", Requires: []string{"release"},
					Branches: &forgelink.Filter{Ignore: pats(t, "/.*/")},
					Tags:     &forgelink.Filter{Only: pats(t, `/^v\d+\.\d+\.\d+$/`), Ignore: pats(t, "v0.0.0")}},
			},
		}}}},
		{"legacy-2.0.yml", &forgelink.Config{Workflows: []forgelink.Workflow{{
			Name: circleci.ImplicitWorkflow,
			Jobs: []forgelink.WorkflowJob{{Name: "build", Branches: &forgelink.Filter{Ignore: pats(t, "gh-pages")}}},
		}}}},
		{"scheduled.yml", &forgelink.Config{Workflows: []forgelink.Workflow{
			{Name: "commit", Jobs: []forgelink.WorkflowJob{{Name: "unit"}, {Name: "report", Requires: []string{"unit"}}}},
			{Name: "integration", Jobs: []forgelink.WorkflowJob{{Name: "integration"}}},
		}}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got, err := circleci.Parse(readTestdata(t, tc.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, comparePatterns); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseEvaluate runs the testdata configs through the trigger rules.
func TestParseEvaluate(t *testing.T) {
	tests := []struct {
		file          string
		event         forgelink.Event
		wantWorkflows []string
		wantReason    string
	}{
		{"orb-pipeline.yml", forgelink.Event{Type: forgelink.BranchPush, Branch: "main"}, []string{"build-test-deploy"}, ""},
		{"orb-pipeline.yml", forgelink.Event{Type: forgelink.BranchPush, Branch: "dependabot/npm/lodash"}, []string{"build-test-deploy"}, ""},
		{"orb-pipeline.yml", forgelink.Event{Type: forgelink.TagPush, Tag: "v1.0.0"}, nil, "no workflow matches tag v1.0.0"},
		{"release-tags.yml", forgelink.Event{Type: forgelink.TagPush, Tag: "v1.2.3"}, []string{"ci"}, ""},
		{"release-tags.yml", forgelink.Event{Type: forgelink.BranchPush, Branch: "main"}, []string{"ci"}, ""},
		{"legacy-2.0.yml", forgelink.Event{Type: forgelink.BranchPush, Branch: "feature"}, []string{"workflow"}, ""},
		{"legacy-2.0.yml", forgelink.Event{Type: forgelink.BranchPush, Branch: "gh-pages"}, nil, "no workflow matches branch gh-pages"},
		{"legacy-2.0.yml", forgelink.Event{Type: forgelink.TagPush, Tag: "v1"}, nil, "no workflow matches tag v1"},
		{"scheduled.yml", forgelink.Event{Type: forgelink.BranchPush, Branch: "main"}, []string{"commit", "integration"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.file+"/"+tc.event.Branch+tc.event.Tag, func(t *testing.T) {
			cfg, err := circleci.Parse(readTestdata(t, tc.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			d := forgelink.Evaluate(forgelink.TriggerInput{Event: tc.event, DefaultBranch: "main", Config: cfg})
			if d.Reason != tc.wantReason {
				t.Errorf("Reason = %q, want %q", d.Reason, tc.wantReason)
			}
			if diff := cmp.Diff(tc.wantWorkflows, d.Workflows); diff != "" {
				t.Errorf("Workflows mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseShapes(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want []forgelink.WorkflowJob // of the only workflow, "w"
	}{
		{"filter values that YAML reads as numbers are names", `
workflows:
  w:
    jobs:
      - build: {filters: {branches: {only: 2024}, tags: {only: [1.0, v2]}}}`,
			[]forgelink.WorkflowJob{{Name: "build", Branches: &forgelink.Filter{Only: pats(t, "2024")}, Tags: &forgelink.Filter{Only: pats(t, "1.0", "v2")}}}},
		{"empty tags runs no tag, tags {} every tag", `
workflows:
  w:
    jobs:
      - a: {filters: {tags: }}
      - b: {filters: {tags: {}}}`,
			[]forgelink.WorkflowJob{{Name: "a"}, {Name: "b", Tags: &forgelink.Filter{}}}},
		{"requires as one name and with statuses", `
workflows:
  w:
    jobs:
      - a
      - b: {requires: a}
      - c:
          requires:
            - a: success
            - b: [success, failed]`,
			[]forgelink.WorkflowJob{{Name: "a"}, {Name: "b", Requires: []string{"a"}}, {Name: "c", Requires: []string{"a", "b"}}}},
		{"entry without parameters", `
workflows:
  w:
    jobs:
      - build:`,
			[]forgelink.WorkflowJob{{Name: "build"}}},
		{"name override, requires by the new name", `
workflows:
  w:
    jobs:
      - deploy: {name: deploy-eu}
      - deploy: {name: deploy-us, requires: [deploy-eu]}`,
			[]forgelink.WorkflowJob{{Name: "deploy-eu"}, {Name: "deploy-us", Requires: []string{"deploy-eu"}}}},
		{"matrix alias", `
workflows:
  w:
    jobs:
      - test: {matrix: {alias: tests, parameters: {v: [1, 2]}}, name: test-<< matrix.v >>}
      - report: {requires: [tests]}`,
			[]forgelink.WorkflowJob{{Name: "tests"}, {Name: "report", Requires: []string{"tests"}}}},
		{"merge keys: explicit wins, then the first merged", `
a: &a {only: a, ignore: a}
b: &b {only: b, ignore: b}
workflows:
  w:
    jobs:
      - build:
          filters:
            branches:
              <<: [*a, *b]
              only: x`,
			[]forgelink.WorkflowJob{{Name: "build", Branches: &forgelink.Filter{Only: pats(t, "x"), Ignore: pats(t, "a")}}}},
		{"aliased job entry and requires", `
x: &deploy {deploy: {requires: &reqs [build]}}
workflows:
  version: 2
  w:
    jobs:
      - build
      - *deploy
      - check: {requires: *reqs}`,
			[]forgelink.WorkflowJob{{Name: "build"}, {Name: "deploy", Requires: []string{"build"}}, {Name: "check", Requires: []string{"build"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := circleci.Parse([]byte(tc.yml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := &forgelink.Config{Workflows: []forgelink.Workflow{{Name: "w", Jobs: tc.want}}}
			if diff := cmp.Diff(want, cfg, comparePatterns); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseNoWorkflows(t *testing.T) {
	for _, yml := range []string{"workflows: {version: 2}", "workflows: {}", "workflows:\n  nightly:\n    triggers: [{schedule: {cron: '0 0 * * *'}}]\n    jobs: [build]"} {
		cfg, err := circleci.Parse([]byte(yml))
		if err != nil {
			t.Fatalf("Parse(%q): %v", yml, err)
		}
		if len(cfg.Workflows) != 0 {
			t.Errorf("Parse(%q) = %d workflows, want none", yml, len(cfg.Workflows))
		}
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		want string // the whole error message, or its prefix when it ends in "…"
	}{
		{"testdata requires", string(readTestdata(t, "invalid-requires.yml")),
			`circleci: line 11: workflow "ci" job "test": requires "biuld", which is not a job of this workflow`},
		{"testdata regex", string(readTestdata(t, "invalid-regex.yml")),
			"circleci: line 8: workflow \"release\" job \"publish\": filters: tags: only: invalid regular expression /^v(\\d+/: missing closing ): `^v(\\d+`"},
		{"testdata yaml", string(readTestdata(t, "invalid-yaml.yml")), "circleci: invalid YAML: line 6: found a tab character that violates indentation"},
		{"empty", "", "circleci: the config is empty"},
		{"comment only", "# nothing\n", "circleci: the config is empty"},
		{"not a mapping", "hello", `circleci: line 1: config: want a mapping, got "hello"`},
		{"unknown alias", "workflows: *nope", "circleci: invalid YAML: …"},
		{"workflows a list", "workflows: [a]", "circleci: line 1: workflows: want a mapping, got a list"},
		{"workflow null", "workflows:\n  ci:\n", `circleci: line 2: workflow "ci": want a mapping, got nothing`},
		{"workflow without jobs", "workflows:\n  ci: {triggers: []}\n", `circleci: line 2: workflow "ci": no jobs`},
		{"jobs not a list", "workflows:\n  ci:\n    jobs: {build: {}}\n", `circleci: line 3: workflow "ci": jobs: want a list, got a mapping`},
		{"job entry with two keys", "workflows:\n  ci:\n    jobs:\n      - build: {}\n        test: {}\n", `circleci: line 4: workflow "ci": a job is a name or a mapping with one key, the job's name; got 2 keys`},
		{"job entry a list", "workflows:\n  ci:\n    jobs:\n      - [build]\n", `circleci: line 4: workflow "ci": a job is a name or a mapping with one key, the job's name; got a list`},
		{"empty job name", "workflows:\n  ci:\n    jobs:\n      - ''\n", `circleci: line 4: workflow "ci": job: want a name, got ""`},
		{"duplicate job", "workflows:\n  ci:\n    jobs:\n      - build\n      - test\n      - build\n", `circleci: line 6: workflow "ci": job "build" is already listed at line 4; give one of them another name with "name:"`},
		{"duplicate through name", "workflows:\n  ci:\n    jobs:\n      - build\n      - test: {name: build}\n", `circleci: line 5: workflow "ci": job "build" is already listed at line 4; give one of them another name with "name:"`},
		{"self requirement", "workflows:\n  ci:\n    jobs:\n      - build: {requires: [build]}\n", `circleci: line 4: workflow "ci": job "build" requires itself, directly or through other jobs`},
		{"cycle", "workflows:\n  ci:\n    jobs:\n      - a: {requires: [c]}\n      - b: {requires: [a]}\n      - c: {requires: [b]}\n", `circleci: line 4: workflow "ci": job "a" requires itself, directly or through other jobs`},
		{"requires in another workflow", "workflows:\n  one: {jobs: [build]}\n  two:\n    jobs:\n      - test: {requires: [build]}\n", `circleci: line 5: workflow "two" job "test": requires "build", which is not a job of this workflow`},
		{"requires a mapping", "workflows:\n  ci:\n    jobs:\n      - a\n      - b: {requires: {a: success}}\n", `circleci: line 5: workflow "ci" job "b": requires: want a list of job names, got a mapping`},
		{"requires item with two keys", "workflows:\n  ci:\n    jobs:\n      - a\n      - b: {requires: [{a: success, c: x}]}\n", `circleci: line 5: workflow "ci" job "b": requires: want a job name or a mapping of one job name to statuses, got 2 keys`},
		{"expression filter", "workflows:\n  ci:\n    jobs:\n      - a: {filters: pipeline.git.branch == \"main\"}\n", `circleci: line 4: workflow "ci" job "a": filters: expression filters are not supported; use branches and tags`},
		{"filters typo", "workflows:\n  ci:\n    jobs:\n      - a:\n          filters:\n            branch: {only: main}\n", `circleci: line 6: workflow "ci" job "a": filters: unknown key "branch"; want branches or tags`},
		{"only typo", "workflows:\n  ci:\n    jobs:\n      - a:\n          filters:\n            branches: {onyl: main}\n", `circleci: line 6: workflow "ci" job "a": filters: branches: unknown key "onyl"; want only or ignore`},
		{"branches a list", "workflows:\n  ci:\n    jobs:\n      - a: {filters: {branches: [main]}}\n", `circleci: line 4: workflow "ci" job "a": filters: branches: want a mapping, got a list`},
		{"only a mapping", "workflows:\n  ci:\n    jobs:\n      - a: {filters: {branches: {only: {main: 1}}}}\n", `circleci: line 4: workflow "ci" job "a": filters: branches: only: want a name, a /regex/ or a list of them, got a mapping`},
		{"only list of lists", "workflows:\n  ci:\n    jobs:\n      - a: {filters: {tags: {only: [[v1]]}}}\n", `circleci: line 4: workflow "ci" job "a": filters: tags: only: want a name or a /regex/, got a list`},
		{"duplicate key", "workflows:\n  ci: {jobs: [a]}\n  ci: {jobs: [b]}\n", `circleci: line 3: workflows: key "ci" already defined at line 2`},
		{"merge of a string", "workflows:\n  ci:\n    <<: hello\n    jobs: [a]\n", `circleci: line 3: workflow "ci": a merge key (<<) wants a mapping or a list of mappings, got "hello"`},
		{"complex key", "workflows:\n  ? [a]\n  : {jobs: [a]}\n", `circleci: line 2: workflows: want a name as key, got a list`},
		{"no workflows, no build", "version: 2\njobs:\n  test: {}\n", `circleci: line 3: jobs: no "workflows" and no "build" job to run`},
		{"no workflows, no jobs", "version: 2\n", `circleci: line 1: config: no "workflows" and no "jobs"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := circleci.Parse([]byte(tc.yml))
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", cfg)
			}
			if k := forgelink.KindOf(err); k != forgelink.Invalid {
				t.Errorf("KindOf(err) = %v, want invalid (err: %v)", k, err)
			}
			got := err.Error()
			if prefix, ok := strings.CutSuffix(tc.want, "…"); ok {
				if !strings.HasPrefix(got, prefix) {
					t.Errorf("error = %q, want prefix %q", got, prefix)
				}
			} else if got != tc.want {
				t.Errorf("error = %q\nwant      %q", got, tc.want)
			}
			if forgelink.MessageOf(err) != got {
				t.Errorf("MessageOf(err) = %q, want the whole error, for the pipeline's error state", forgelink.MessageOf(err))
			}
		})
	}
}

// TestParseMergeBomb checks that nested merge keys cannot make Parse do
// exponential work.
func TestParseMergeBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("m0: &m0 {k: v}\n")
	for i := 1; i <= 40; i++ {
		b.WriteString("m")
		b.WriteString(itoa(i))
		b.WriteString(": &m")
		b.WriteString(itoa(i))
		b.WriteString(" {<<: [*m")
		b.WriteString(itoa(i - 1))
		b.WriteString(", *m")
		b.WriteString(itoa(i - 1))
		b.WriteString("]}\n")
	}
	b.WriteString("workflows:\n  ci:\n    <<: *m40\n    jobs: [a]\n")
	_, err := circleci.Parse([]byte(b.String()))
	if forgelink.KindOf(err) != forgelink.Invalid {
		t.Fatalf("Parse = %v, want an Invalid error", err)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("workflows: {w: {jobs: [{a: {requires: [b]}}, {b: {filters: {tags: {only: /x/}}}}]}}"))
	events := []forgelink.Event{
		{Type: forgelink.BranchPush, Branch: "main"},
		{Type: forgelink.BranchPush, Branch: "release/1.0"},
		{Type: forgelink.TagPush, Tag: "v1.2.3"},
	}
	f.Fuzz(func(t *testing.T, yml []byte) {
		cfg, err := circleci.Parse(yml)
		if err != nil {
			if k := forgelink.KindOf(err); k != forgelink.Invalid {
				t.Fatalf("KindOf(%v) = %v, want invalid", err, k)
			}
			if !strings.HasPrefix(err.Error(), "circleci: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			return
		}
		// A parsed config is consistent: unique job names and requires
		// that resolve within the workflow.
		for _, w := range cfg.Workflows {
			names := map[string]bool{}
			for _, j := range w.Jobs {
				if j.Name == "" || names[j.Name] {
					t.Fatalf("workflow %q: empty or duplicate job name %q", w.Name, j.Name)
				}
				names[j.Name] = true
			}
			for _, j := range w.Jobs {
				for _, r := range j.Requires {
					if !names[r] {
						t.Fatalf("workflow %q job %q requires unknown %q", w.Name, j.Name, r)
					}
				}
			}
		}
		for _, e := range events {
			forgelink.Evaluate(forgelink.TriggerInput{Event: e, DefaultBranch: "main", Config: cfg})
		}
	})
}
