package trigger_test

import (
	"os"
	"path/filepath"
	"testing"

	"forgelink/shared/bbhook"
	"forgelink/shared/circleci"
	"forgelink/shared/forgelink"
	"forgelink/shared/ghhook"
)

const benchConfig = `version: 2.1
jobs:
  build: {docker: [{image: cimg/base:stable}], steps: [checkout]}
  test: {docker: [{image: cimg/base:stable}], steps: [checkout]}
  deploy: {docker: [{image: cimg/base:stable}], steps: [checkout]}
workflows:
  ci:
    jobs:
      - build
      - test: {requires: [build]}
      - deploy:
          requires: [test]
          filters:
            branches: {only: [main, /release\/.*/]}
            tags: {only: /^v.*/}
`

// corpusEvents normalizes every build-relevant corpus delivery.
func corpusEvents(b *testing.B) []forgelink.Event {
	b.Helper()
	var out []forgelink.Event
	add := func(parse func(string, []byte) ([]forgelink.Event, error), event, file string) {
		body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "corpus", file))
		if err != nil {
			b.Fatal(err)
		}
		evs, err := parse(event, body)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, evs...)
	}
	for _, f := range []struct{ event, file string }{
		{"push", "github/push.json"}, {"push", "github/push.tag.json"}, {"push", "github/push.created.json"},
		{"push", "github/push.delete.json"}, {"push", "github/push.forced.json"},
		{"pull_request", "github/pull_request.opened.json"}, {"pull_request", "github/pull_request.opened.fork.json"},
		{"pull_request", "github/pull_request.synchronize.json"}, {"pull_request", "github/pull_request.closed.json"},
	} {
		add(ghhook.ParseEvent, f.event, f.file)
	}
	for _, f := range []struct{ event, file string }{
		{"repo:push", "bitbucket/repo-push.json"}, {"repo:push", "bitbucket/repo-push.tag-create.json"},
		{"pullrequest:created", "bitbucket/pullrequest-created.json"}, {"pullrequest:updated", "bitbucket/pullrequest-updated.json"},
	} {
		add(bbhook.ParseEvent, f.event, f.file)
	}
	return out
}

// BenchmarkDecideWarm is one decision for a mixed stream of corpus events
// with the config already parsed (the trigger function's warm cache).
func BenchmarkDecideWarm(b *testing.B) {
	evs := corpusEvents(b)
	cfg, err := circleci.Parse([]byte(benchConfig))
	if err != nil {
		b.Fatal(err)
	}
	settings := forgelink.Settings{BuildPRsOnly: true, BuildForkPRs: true}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ev := evs[i%len(evs)]
		i++
		d := forgelink.Evaluate(forgelink.TriggerInput{Event: ev, Settings: settings, DefaultBranch: "main", BranchHasOpenPR: i%2 == 0, Config: cfg})
		_ = d
	}
}

// BenchmarkDecideCold is the baseline: the same decisions parsing the
// config every time, as without the cache.
func BenchmarkDecideCold(b *testing.B) {
	evs := corpusEvents(b)
	settings := forgelink.Settings{BuildPRsOnly: true, BuildForkPRs: true}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ev := evs[i%len(evs)]
		i++
		cfg, err := circleci.Parse([]byte(benchConfig))
		if err != nil {
			b.Fatal(err)
		}
		_ = forgelink.Evaluate(forgelink.TriggerInput{Event: ev, Settings: settings, DefaultBranch: "main", BranchHasOpenPR: i%2 == 0, Config: cfg})
	}
}
