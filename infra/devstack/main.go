// Command devstack prepares local AWS resources and sample events for
// `make invoke`:
//
//	devstack events [-out events]        regenerate the signed sample events
//	devstack seed -endpoint URL          create tables (from template.yaml), the intake
//	                                     queue and a KMS key on a local AWS server
//	                                     (moto_server), store the sample projects, and
//	                                     print the function's environment as KEY=VALUE lines
//	devstack fakegithub                  serve a fake GitHub API with the sample repository and
//	                                     its .circleci/config.yml; prints GITHUB_API_URL and GITHUB_TOKEN
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: devstack events|seed|fakegithub [flags]")
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	switch args[0] {
	case "events":
		fs := flag.NewFlagSet("events", flag.ContinueOnError)
		out := fs.String("out", filepath.Join(root, "events"), "directory to write the events to")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return writeEvents(*out, filepath.Join(root, "testdata", "corpus"))
	case "seed":
		fs := flag.NewFlagSet("seed", flag.ContinueOnError)
		endpoint := fs.String("endpoint", os.Getenv("AWS_ENDPOINT_URL"), "local AWS endpoint (moto_server)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *endpoint == "" {
			return fmt.Errorf("seed: -endpoint or AWS_ENDPOINT_URL is required")
		}
		env, err := seed(context.Background(), *endpoint, filepath.Join(root, "template.yaml"))
		if err != nil {
			return err
		}
		for _, kv := range env {
			fmt.Println(kv)
		}
		return nil
	}
	if args[0] == "fakegithub" {
		return fakeGitHub()
	}
	return fmt.Errorf("unknown command %q: want events, seed or fakegithub", args[0])
}

// repoRoot walks up from the working directory to the folder with go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}
