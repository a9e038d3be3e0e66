package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFunctionsLinkOnlyWhatTheyUse lists each function's packages as the
// Lambda build links them (go list -deps -tags lambda.norpc) and fails when
// a function links what it must not: test and dev-only code and the
// Prometheus client in any of them, and in the webhook function (on
// GitHub's 10-second clock) a VCS API client, SSH or a YAML parser.
func TestFunctionsLinkOnlyWhatTheyUse(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	everywhere := []string{
		"forgelink/shared/dynamo/dynamoschema", // table creation from template.yaml
		"forgelink/shared/dynamo/dynamotest",
		"forgelink/shared/vcsfake",
		"forgelink/shared/bolt", // the local store
		"go.etcd.io/bbolt",
		"github.com/aws/aws-sdk-go-v2/config", // the default credential chain: not in the Lambda build
		// The SDK's SSM client initialises 1.4 MB of schemas at every cold
		// start for one call: ssmsecrets.Client makes that call itself.
		"github.com/aws/aws-sdk-go-v2/service/ssm",
		// The Prometheus exporter (and its protobuf runtime): container
		// builds only; in Lambda metrics go out as EMF lines.
		"github.com/prometheus/client_golang/prometheus",
		"forgelink/shared/metrics/promexport",
		"testing",
	}
	// text/template and html/template call methods by reflection, so the
	// linker keeps every exported method of every linked type (the keys
	// function grew from 12.6 to 22.7 MB): only the pages function, which
	// renders HTML, may link them.
	templates := []string{"text/template", "html/template"}
	forbidden := map[string][]string{
		"pages": everywhere,
		"webhook": append([]string{
			"text/template", "html/template",
			"forgelink/shared/ssmsecrets", // the OAuth secrets: sign-in and token refresh only
			"github.com/google/go-github/v60/github",
			"golang.org/x/crypto/ssh",
			"go.yaml.in/yaml/v3",
			"gopkg.in/yaml.v3",
			"forgelink/shared/github",
			"forgelink/shared/bitbucket",
			"forgelink/shared/sshkeys",
			"forgelink/shared/follow",
			"forgelink/shared/keysvc",
		}, everywhere...),
	}
	fns, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) == 0 {
		t.Fatal("no functions")
	}
	for _, fn := range fns {
		name := fn.Name()
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", "-tags", "lambda.norpc", "./functions/"+name)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			deps := map[string]bool{}
			for _, p := range strings.Fields(string(out)) {
				deps[p] = true
			}
			if !deps["forgelink/functions/"+name] {
				t.Fatalf("go list printed no forgelink/functions/%s: %s", name, out)
			}
			bad, ok := forbidden[name]
			if !ok {
				bad = append(templates, everywhere...)
			}
			for _, p := range bad {
				if deps[p] {
					t.Errorf("functions/%s links %s", name, p)
				}
			}
		})
	}
}

// TestLambdaBuildsLinkNoHTTPServer builds each function as the Makefile's
// Lambda build does and fails when the bootstrap holds net/http's server
// (the container build's listener, about 0.3 MB): under Lambda the API
// Gateway events go through the adapter, never a socket.
func TestLambdaBuildsLinkNoHTTPServer(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	fns, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, fn := range fns {
		name := fn.Name()
		t.Run(name, func(t *testing.T) {
			bin := filepath.Join(dir, name)
			build := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", bin, "./functions/"+name)
			build.Dir = root
			build.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0")
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, out)
			}
			nm := exec.Command("go", "tool", "nm", bin)
			out, err := nm.Output()
			if err != nil {
				t.Fatalf("go tool nm: %v", err)
			}
			if !strings.Contains(string(out), " forgelink/shared/lambdarun.") && !strings.Contains(string(out), "main.main") {
				t.Fatalf("go tool nm printed no forgelink symbols")
			}
			for _, sym := range []string{"net/http.(*Server).Serve", "net/http.(*conn).serve"} {
				if strings.Contains(string(out), " "+sym+"\n") {
					t.Errorf("functions/%s (Lambda build) links %s", name, sym)
				}
			}
		})
	}
}
