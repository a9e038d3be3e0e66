package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestTemplateFunctionsBuild checks that every function in template.yaml
// is built by SAM's makefile method from a functions/ folder, and that
// every functions/ folder is deployed: no function exists in one path only.
func TestTemplateFunctionsBuild(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Resources map[string]struct {
			Type     string `yaml:"Type"`
			Metadata struct {
				BuildMethod string `yaml:"BuildMethod"`
			} `yaml:"Metadata"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(tmpl, &doc); err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	deployed := map[string]bool{}
	for id, r := range doc.Resources {
		if r.Type != "AWS::Serverless::Function" {
			continue
		}
		if r.Metadata.BuildMethod != "makefile" {
			t.Errorf("%s: BuildMethod %q, want makefile (go1.x cannot find the root go.mod)", id, r.Metadata.BuildMethod)
		}
		m := regexp.MustCompile(`(?m)^build-` + id + `:\n\t.*\./functions/(\w+)\s*$`).FindSubmatch(makefile)
		if m == nil {
			t.Errorf("Makefile has no build-%s target building ./functions/<name>", id)
			continue
		}
		fn := string(m[1])
		deployed[fn] = true
		if _, err := os.Stat(filepath.Join(root, "functions", fn, "main.go")); err != nil {
			t.Errorf("%s builds functions/%s: %v", id, fn, err)
		}
	}
	dirs, _ := os.ReadDir(filepath.Join(root, "functions"))
	for _, d := range dirs {
		if !deployed[d.Name()] {
			t.Errorf("functions/%s is not deployed by template.yaml", d.Name())
		}
	}
	if len(deployed) == 0 {
		t.Fatal("no functions found in template.yaml")
	}
}
