package pages

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedTemplatesCurrent generates the pages' Go code from their
// .templ files into a temporary directory, with the templ version of
// go.mod's tool directive, and fails unless each committed *_templ.go is
// what its .templ makes (and none is left without one).
func TestGeneratedTemplatesCurrent(t *testing.T) {
	templs, err := filepath.Glob("*.templ")
	if err != nil {
		t.Fatal(err)
	}
	if len(templs) == 0 {
		t.Fatal("no .templ files")
	}
	dir := t.TempDir()
	for _, name := range templs {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "tool", "templ", "generate", "-path", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go tool templ generate: %v\n%s", err, out)
	}
	for _, name := range templs {
		gen := strings.TrimSuffix(name, ".templ") + "_templ.go"
		want, err := os.ReadFile(filepath.Join(dir, gen))
		if err != nil {
			t.Fatalf("templ generated no %s: %v", gen, err)
		}
		got, err := os.ReadFile(gen)
		if err != nil {
			t.Errorf("%s: %v: run make generate", gen, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what %s generates: run make generate", gen, name)
		}
	}
	gens, err := filepath.Glob("*_templ.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, gen := range gens {
		if _, err := os.Stat(strings.TrimSuffix(gen, "_templ.go") + ".templ"); err != nil {
			t.Errorf("%s has no .templ: remove it, or run make generate", gen)
		}
	}
}
