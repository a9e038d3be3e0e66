package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestFunctionsLinkOnlyWhatTheyUse lists each function's packages as the
// Lambda build links them (go list -deps -tags lambda.norpc) and fails when
// a function links what it must not: test and dev-only code, the
// Prometheus client and text/template or html/template in any of them, and
// in the webhook function (on GitHub's 10-second clock) a VCS API client,
// SSH or a YAML parser.
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
		// text/template and html/template call methods by reflection, so
		// the linker keeps every exported method of every linked type (the
		// keys function grew from 12.6 to 22.7 MB, the pages function was
		// 17.5 MB): the pages render with templ's generated code instead.
		"text/template",
		"html/template",
		"testing",
	}
	// importedOnlyBy are packages of everywhere that a function may import
	// through these packages alone. templ's runtime imports html/template
	// for its FromGoHTML and ToGoHTML bridges, which nothing here calls: the
	// linker drops them, and only the packages' initialisation stays (about
	// 24 KB). TestLambdaBuildsLinkNoHTTPServer checks that no bootstrap holds
	// the template executor.
	importedOnlyBy := map[string][]string{
		"html/template": {"github.com/a-h/templ"},
		"text/template": {"html/template"},
	}
	forbidden := map[string][]string{
		"webhook": append([]string{
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
			cmd := exec.Command("go", "list", "-deps", "-tags", "lambda.norpc", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./functions/"+name)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			// deps maps each linked package to the packages importing it.
			deps := map[string][]string{}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				pkg, imports, _ := strings.Cut(line, " ")
				if _, ok := deps[pkg]; !ok {
					deps[pkg] = nil
				}
				for _, imp := range strings.Fields(imports) {
					deps[imp] = append(deps[imp], pkg)
				}
			}
			if _, ok := deps["forgelink/functions/"+name]; !ok {
				t.Fatalf("go list printed no forgelink/functions/%s: %s", name, out)
			}
			bad, ok := forbidden[name]
			if !ok {
				bad = everywhere
			}
			for _, p := range bad {
				importers, linked := deps[p]
				if !linked {
					continue
				}
				if allowed := importedOnlyBy[p]; allowed != nil && len(importers) > 0 && allOf(importers, allowed) {
					continue
				}
				t.Errorf("functions/%s links %s (imported by %s)", name, p, strings.Join(importers, ", "))
			}
		})
	}
}

// allOf reports whether every one of ss is in set.
func allOf(ss, set []string) bool {
	for _, s := range ss {
		if !slices.Contains(set, s) {
			return false
		}
	}
	return true
}

// TestLambdaBuildsLinkNoHTTPServer builds each function as the Makefile's
// Lambda build does and fails when the bootstrap holds net/http's server
// (the container build's listener, about 0.3 MB): under Lambda the API
// Gateway events go through the adapter, never a socket. It fails too when
// the bootstrap holds text/template's executor, whose calls by reflection
// make the linker keep every exported method of every linked type.
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
			for _, sym := range []string{"net/http.(*Server).Serve", "net/http.(*conn).serve",
				"text/template.(*state).walk", "text/template.(*state).evalField"} {
				if strings.Contains(string(out), " "+sym+"\n") {
					t.Errorf("functions/%s (Lambda build) links %s", name, sym)
				}
			}
		})
	}
}
