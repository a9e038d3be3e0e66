package bolt

import (
	"path/filepath"
	"testing"

	"forgelink/shared/forgelink"
	"forgelink/shared/forgelink/storetest"
)

func TestKeyStore(t *testing.T) {
	storetest.RunKeys(t, func(t *testing.T) forgelink.KeyStore {
		return open(t, filepath.Join(t.TempDir(), "forgelink.db"))
	})
}
