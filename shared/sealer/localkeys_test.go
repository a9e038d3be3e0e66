package sealer_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"forgelink/shared/forgelink"
	"forgelink/shared/sealer"
)

func TestOpenKeyFileCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "keys")
	path := filepath.Join(dir, "kek")
	k1, err := sealer.OpenKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode(); got != 0o600 {
		t.Errorf("key file mode = %v, want -rw-------", got)
	}
	if fi.Size() != 32 {
		t.Errorf("key file is %d bytes, want 32", fi.Size())
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		di, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := di.Mode().Perm(); got != 0o700 {
			t.Errorf("created directory %s has mode %#o, want 0700", d, got)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("key directory holds %d entries, want only the key file", len(entries))
	}
	before, _ := os.ReadFile(path)

	ctx := context.Background()
	aad := []byte("project/acme/widgets")
	blob, err := sealer.NewEnvelope(k1).Seal(ctx, secret, aad)
	if err != nil {
		t.Fatal(err)
	}

	// A second open, as after a restart, reuses the key and opens old
	// ciphertexts.
	k2, err := sealer.OpenKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sealer.NewEnvelope(k2).Open(ctx, blob, aad)
	if err != nil {
		t.Fatalf("Open after reopening the key file: %v", err)
	}
	if !bytes.Equal(got, secret) {
		t.Error("Open after reopening the key file returned other bytes")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("reopening the key file changed it")
	}

	// Another key file's keys cannot open it.
	other, err := sealer.OpenKeyFile(filepath.Join(t.TempDir(), "kek"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sealer.NewEnvelope(other).Open(ctx, blob, aad); err == nil || err.Error() != wantOpenError {
		t.Errorf("Open with another key file: err = %v, want %q", err, wantOpenError)
	}
}

func TestOpenKeyFileAcceptsReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(path, bytes.Repeat([]byte{7}, 32), 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := sealer.OpenKeyFile(path); err != nil {
		t.Errorf("OpenKeyFile(0400 file): %v", err)
	}
}

func TestOpenKeyFileRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(path string) error
		want string // in the error, after the path
	}{
		{"empty", writeKey(0, 0o600), "is 0 bytes, want 32"},
		{"31 bytes", writeKey(31, 0o600), "is 31 bytes, want 32"},
		{"33 bytes", writeKey(33, 0o600), "is 33 bytes, want 32"},
		{"64 hex digits", writeKey(64, 0o600), "is 64 bytes, want 32"},
		{"mode 0644", writeKey(32, 0o644), "allows more than 0600"},
		{"mode 0640", writeKey(32, 0o640), "allows more than 0600"},
		{"mode 0700", writeKey(32, 0o700), "allows more than 0600"},
		{"mode 0606", writeKey(32, 0o606), "allows more than 0600"},
		{"directory", func(path string) error { return os.Mkdir(path, 0o700) }, "is not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kek")
			if err := tc.make(path); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)
			k, err := sealer.OpenKeyFile(path)
			if err == nil {
				t.Fatalf("OpenKeyFile = %v, want an error", k)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q, want it to name %s and say %q", err, path, tc.want)
			}
			if got := forgelink.KindOf(err); got != forgelink.Invalid {
				t.Errorf("error kind = %v, want invalid", got)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("OpenKeyFile changed a file it rejected")
			}
		})
	}
}

// writeKey returns a function that writes an n-byte key file with mode perm
// (set explicitly, so the umask does not narrow it).
func writeKey(n int, perm fs.FileMode) func(string) error {
	return func(path string) error {
		if err := os.WriteFile(path, bytes.Repeat([]byte{'k'}, n), perm); err != nil {
			return err
		}
		return os.Chmod(path, perm)
	}
}

func TestOpenKeyFileConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "kek")
	const n = 16
	keys := make([]*sealer.LocalKeys, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = sealer.OpenKeyFile(path) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("OpenKeyFile #%d: %v", i, err)
		}
	}
	// All of them must have ended up with the same key.
	ctx := context.Background()
	blob, err := sealer.NewEnvelope(keys[0]).Seal(ctx, secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if _, err := sealer.NewEnvelope(k).Open(ctx, blob, nil); err != nil {
			t.Errorf("keys #%d cannot open what keys #0 sealed: %v", i, err)
		}
	}
}
