package main

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"syscall"

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

// fakeGitHub serves the fake GitHub API with the sample repository and
// config until interrupted, after printing GITHUB_API_URL and GITHUB_TOKEN.
func fakeGitHub() error {
	tb := &vcsfake.ProcessTB{OnFatal: func(msg string) {
		fmt.Fprintln(os.Stderr, "devstack fakegithub:", msg)
		os.Exit(1)
	}}
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
	tb.Close()
	return nil
}
