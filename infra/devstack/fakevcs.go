package main

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"forgelink/shared/vcsfake"
)

// sampleConfig is the .circleci/config.yml the fake GitHub serves for the
// sample project at every sample revision.
const sampleConfig = `version: 2.1
jobs:
  build:
    docker: [{image: cimg/base:stable}]
    steps: [checkout, {run: make test}]
workflows:
  ci:
    jobs: [build]
`

// sampleRevisions are the revisions of the sample events.
var sampleRevisions = []string{
	"366701fde727cb7a9e7f21eb88264f59f6f9b89c", // github/push.json
	"ec26c3e57ca3a959ca5aad62de7213c562f8c821", // github/pull_request.opened.json
	"d2b75aa7797ec26b088fa2dd527e9d2c052fcedd", // github/push.tag.json
}

// processTB lets the test fakes run in a plain process for make invoke:
// the fakes use only Helper, Fatalf and Cleanup. The embedded nil TB is
// never called.
type processTB struct {
	testing.TB
	cleanups []func()
}

// Helper does nothing outside a test.
func (p *processTB) Helper() {}

// Fatalf prints the message and exits.
func (p *processTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "devstack fakegithub: "+format+"\n", args...)
	os.Exit(1)
}

// Cleanup runs f when the fake stops.
func (p *processTB) Cleanup(f func()) { p.cleanups = append(p.cleanups, f) }

// fakeGitHub serves the fake GitHub API with the sample repository and
// config until interrupted, after printing GITHUB_API_URL and GITHUB_TOKEN.
func fakeGitHub() error {
	tb := &processTB{}
	gh := vcsfake.NewGitHub(tb)
	gh.AddRepo(SampleOrg+"/"+SampleRepo, "main", false)
	for _, rev := range sampleRevisions {
		gh.SetFile(SampleOrg+"/"+SampleRepo, rev, ".circleci/config.yml", []byte(sampleConfig))
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "GITHUB_API_URL=%s\nGITHUB_TOKEN=%s\n", gh.URL, gh.Token)
	if err := w.Flush(); err != nil {
		return err
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	<-ch
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
	return nil
}
