package sealer

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"forgelink/shared/forgelink"
)

// wrappedSize is the size of a data key wrapped by LocalKeys: nonce, key, tag.
const wrappedSize = nonceSize + keySize + tagSize

// LocalKeys is a DataKeys that wraps data keys with AES-256-GCM under a
// key-encryption key read from a local file; see OpenKeyFile. It is meant
// for the one-process server and for tests; deployed functions use KMS.
// It is safe for concurrent use.
type LocalKeys struct {
	kek cipher.AEAD
}

var _ DataKeys = (*LocalKeys)(nil)

// OpenKeyFile returns LocalKeys whose key-encryption key is the 32 bytes in
// the file at path. If the file does not exist, OpenKeyFile creates it with
// a random key, mode 0600, creating missing parent directories with mode
// 0700; concurrent first calls agree on one key. It refuses a file that is
// not exactly 32 bytes or whose mode allows more than 0600, naming the path.
//
// Losing the file makes every ciphertext sealed with it unreadable.
func OpenKeyFile(path string) (*LocalKeys, error) {
	kek, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		kek, err = createKeyFile(path)
	}
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	aead, err := newGCM(kek)
	if err != nil {
		return nil, forgelink.E(forgelink.Internal, "sealer: key file "+path, err)
	}
	return &LocalKeys{kek: aead}, nil
}

// readKeyFile reads and checks the key in path. The checks use the open
// file's own metadata, so the file cannot be swapped between check and read.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, forgelink.E(forgelink.Internal, "sealer: key file "+path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, forgelink.E(forgelink.Internal, "sealer: key file "+path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, forgelink.Errorf(forgelink.Invalid, "sealer: key file %s is not a regular file (mode %s)", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm&^0o600 != 0 {
		return nil, forgelink.Errorf(forgelink.Invalid, "sealer: key file %s has mode %#o, which allows more than 0600; run chmod 600 %s", path, perm, path)
	}
	if fi.Size() != keySize {
		return nil, forgelink.Errorf(forgelink.Invalid, "sealer: key file %s is %d bytes, want %d", path, fi.Size(), keySize)
	}
	// Read one byte more than the key, to notice a file that grew.
	buf := make([]byte, keySize+1)
	n, err := io.ReadFull(f, buf)
	if err != io.ErrUnexpectedEOF || n != keySize {
		clear(buf)
		if err == nil || err == io.ErrUnexpectedEOF || err == io.EOF {
			return nil, forgelink.Errorf(forgelink.Invalid, "sealer: key file %s changed size while being read", path)
		}
		return nil, forgelink.E(forgelink.Internal, "sealer: key file "+path, err)
	}
	return buf[:keySize], nil
}

// createKeyFile writes a random key to a temporary file beside path and
// links it into place, so that no reader ever sees a partial key and, when
// several processes race, all of them end up with the key of the winner.
func createKeyFile(path string) (kek []byte, err error) {
	fail := func(err error) ([]byte, error) {
		return nil, forgelink.E(forgelink.Internal, "sealer: create key file "+path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	tmp, err := os.CreateTemp(dir, ".forgelink-kek-*")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(tmp.Name())
	key := make([]byte, keySize)
	defer clear(key)
	rand.Read(key)
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(key)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fail(err)
	}
	syncDir(dir)
	// Read back what is now at path: our key, or the key of a process that
	// linked first.
	return readKeyFile(path)
}

// syncDir makes a new directory entry durable, best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// GenerateDataKey returns a random 32-byte data key and the key sealed
// under the key-encryption key with aad: a 12-byte nonce, then the
// ciphertext and tag.
func (k *LocalKeys) GenerateDataKey(ctx context.Context, aad []byte) (plaintext, wrapped []byte, err error) {
	plaintext = make([]byte, keySize)
	rand.Read(plaintext)
	wrapped = make([]byte, nonceSize, wrappedSize)
	rand.Read(wrapped)
	wrapped = k.kek.Seal(wrapped, wrapped[:nonceSize], plaintext, aad)
	return plaintext, wrapped, nil
}

// Decrypt unwraps a data key made by GenerateDataKey with the same aad.
// Any other input fails with the same error as a ciphertext that does not
// open.
func (k *LocalKeys) Decrypt(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	if len(wrapped) != wrappedSize {
		return nil, errOpen()
	}
	key, err := k.kek.Open(nil, wrapped[:nonceSize], wrapped[nonceSize:], aad)
	if err != nil {
		return nil, errOpen()
	}
	return key, nil
}

// String keeps the key out of fmt output.
func (k *LocalKeys) String() string { return fmt.Sprintf("sealer.LocalKeys{%p}", k) }
