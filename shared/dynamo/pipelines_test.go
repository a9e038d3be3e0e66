package dynamo_test

import (
	"regexp"
	"testing"

	"forgelink/shared/dynamo"
	"forgelink/shared/dynamo/dynamotest"
	"forgelink/shared/forgelink"
	"forgelink/shared/forgelink/storetest"
)

func TestPipelines(t *testing.T) {
	storetest.RunPipelines(t, func(t *testing.T) forgelink.PipelineStore {
		return dynamo.New(dynamotest.New(t))
	})
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestCreatePipelineID checks what the contract leaves to the store: an
// empty ID becomes a random UUID, and an ID in use is Invalid.
func TestCreatePipelineID(t *testing.T) {
	s := dynamo.New(dynamotest.New(t))
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
	// The failed create left no gap in the other project's numbers.
	again.ID = ""
	if got, err := s.CreatePipeline(t.Context(), again); err != nil || got.Number != 1 {
		t.Errorf("CreatePipeline(gh/o/other) = %+v, %v; want number 1", got, err)
	}
}

func TestTablesFromEnvPipelines(t *testing.T) {
	t.Setenv(dynamo.ProjectsTableEnv, "p-table")
	t.Setenv(dynamo.DeliveriesTableEnv, "d-table")
	t.Setenv(dynamo.PipelinesTableEnv, "")
	if _, err := dynamo.TablesFromEnv(); err == nil {
		t.Errorf("TablesFromEnv without %s succeeded, want an error", dynamo.PipelinesTableEnv)
	}
}
