package bolt

import (
	"path/filepath"
	"regexp"
	"testing"

	"forgelink/shared/forgelink"
	"forgelink/shared/forgelink/storetest"
)

func TestPipelines(t *testing.T) {
	storetest.RunPipelines(t, func(t *testing.T) forgelink.PipelineStore {
		return open(t, filepath.Join(t.TempDir(), "forgelink.db"))
	})
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestCreatePipelineID checks what the contract leaves to the store: an
// empty ID becomes a random UUID, and an ID in use is Invalid.
func TestCreatePipelineID(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "forgelink.db"))
	p := &forgelink.Pipeline{Project: "gh/o/r", Branch: "main", Revision: "a"}
	got, err := s.CreatePipeline(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if !uuidPattern.MatchString(got.ID) || p.ID != got.ID {
		t.Errorf("CreatePipeline gave id %q (p.ID %q), want a version 4 UUID in both", got.ID, p.ID)
	}
	again := &forgelink.Pipeline{ID: got.ID, Project: "gh/o/other", Branch: "main", Revision: "a"}
	if _, err := s.CreatePipeline(t.Context(), again); forgelink.KindOf(err) != forgelink.Invalid {
		t.Errorf("CreatePipeline(id in use) = %v, want kind Invalid", err)
	}
}

// TestPipelinesPersist checks that pipelines, records and the open-PR index
// survive reopening the file, and that numbering goes on where it stopped.
func TestPipelinesPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "forgelink.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	slug := forgelink.Slug{VCS: forgelink.GitHub, Org: "o", Repo: "r"}
	first, err := s.CreatePipeline(t.Context(), &forgelink.Pipeline{Project: slug.String(), Branch: "main", Revision: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetPROpen(t.Context(), slug, "feature", 3, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	if _, err := s.GetPipeline(t.Context(), first.ID); err != nil {
		t.Errorf("GetPipeline after reopening: %v", err)
	}
	second, err := s.CreatePipeline(t.Context(), &forgelink.Pipeline{Project: slug.String(), Branch: "main", Revision: "b"})
	if err != nil || second.Number != 2 {
		t.Errorf("CreatePipeline after reopening = %+v, %v; want number 2", second, err)
	}
	prs, known, err := s.OpenPRs(t.Context(), slug, "feature")
	if err != nil || !known || len(prs) != 1 || prs[0] != 3 {
		t.Errorf("OpenPRs after reopening = %v, %t, %v; want [3], true", prs, known, err)
	}
}
