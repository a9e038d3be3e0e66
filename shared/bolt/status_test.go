package bolt

import (
	"path/filepath"
	"testing"

	"forgelink/shared/forgelink/storetest"
)

func TestStatusStore(t *testing.T) {
	storetest.RunStatus(t, func(t *testing.T) storetest.StatusPipelineStore {
		return open(t, filepath.Join(t.TempDir(), "forgelink.db"))
	})
}
