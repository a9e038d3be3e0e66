package bolt

import (
	"bytes"
	"path/filepath"
	"testing"

	bbolt "go.etcd.io/bbolt"
)

// TestDump checks that Dump sees every change: a value, an empty value, a
// new key, and a nested bucket created empty.
func TestDump(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "forgelink.db"))
	update := func(f func(tx *bbolt.Tx) error) {
		t.Helper()
		if err := s.db.Update(f); err != nil {
			t.Fatal(err)
		}
	}
	dump := func() map[string][]byte {
		t.Helper()
		d, err := s.Dump()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	same := func(a, b map[string][]byte) bool {
		if len(a) != len(b) {
			return false
		}
		for k, v := range a {
			w, ok := b[k]
			if !ok || (v == nil) != (w == nil) || !bytes.Equal(v, w) {
				return false
			}
		}
		return true
	}

	before := dump()
	if _, ok := before["projects"]; !ok {
		t.Fatalf("dump of a new store %q lacks the projects bucket", before)
	}
	if !same(before, dump()) {
		t.Fatal("two dumps of an unchanged store differ")
	}
	steps := []struct {
		name string
		f    func(tx *bbolt.Tx) error
		key  string
	}{
		{"new key", func(tx *bbolt.Tx) error { return tx.Bucket(projectsBucket).Put([]byte("k"), []byte("v1")) }, "projects\x00k"},
		{"changed value", func(tx *bbolt.Tx) error { return tx.Bucket(projectsBucket).Put([]byte("k"), []byte("v2")) }, "projects\x00k"},
		{"empty value", func(tx *bbolt.Tx) error { return tx.Bucket(projectsBucket).Put([]byte("k"), []byte{}) }, "projects\x00k"},
		{"empty nested bucket", func(tx *bbolt.Tx) error {
			_, err := tx.Bucket(projectsBucket).CreateBucket([]byte("sub"))
			return err
		}, "projects\x00sub"},
		{"key in the nested bucket", func(tx *bbolt.Tx) error {
			return tx.Bucket(projectsBucket).Bucket([]byte("sub")).Put([]byte("x"), []byte("y"))
		}, "projects\x00sub\x00x"},
	}
	for _, st := range steps {
		update(st.f)
		after := dump()
		if same(before, after) {
			t.Errorf("%s: the dump did not change", st.name)
		}
		if _, ok := after[st.key]; !ok {
			t.Errorf("%s: the dump lacks %q", st.name, st.key)
		}
		before = after
	}
	if v := before["projects\x00k"]; v == nil || len(v) != 0 {
		t.Errorf("an empty value dumps as %#v, want a non-nil empty slice (nil marks a bucket)", v)
	}
}
