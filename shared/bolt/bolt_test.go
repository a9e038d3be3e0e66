package bolt

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"forgelink/shared/forgelink"
	"forgelink/shared/forgelink/storetest"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) forgelink.Store {
		return open(t, filepath.Join(t.TempDir(), "forgelink.db"))
	})
}

func TestOpenFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "forgelink.db")
	open(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got&0o077 != 0 {
		t.Errorf("file mode %v, want no group or other bits (0600)", got)
	}
}

func TestOpenSweepsExpiredDeliveries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "forgelink.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, d := range []*forgelink.Delivery{
		{HookID: "h", ID: "expired-1", ExpiresAt: now.Add(-time.Hour)},
		{HookID: "h", ID: "live", ExpiresAt: now.Add(time.Hour)},
		{HookID: "h", ID: "expired-2", ExpiresAt: now.Add(-time.Minute)},
	} {
		if err := s.CreateDelivery(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	var got []string
	err = s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(deliveriesBucket).ForEach(func(k, _ []byte) error {
			got = append(got, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := string(deliveryKey("h", "live")); len(got) != 1 || got[0] != want {
		t.Errorf("after reopening, deliveries bucket holds %q, want only %q", got, want)
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "forgelink.db")
	open(t, path)
	s, err := Open(path)
	if err == nil {
		s.Close()
		t.Fatal("second Open of a file in use succeeded, want an error")
	}
}
