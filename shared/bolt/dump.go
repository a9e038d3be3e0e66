package bolt

import (
	"bytes"
	"fmt"
	"strings"

	bbolt "go.etcd.io/bbolt"
)

// Dump returns every key and value in the file, for tests that check a
// request left the store byte for byte unchanged. A key is the path of
// buckets to it and the key itself, joined by "\x00"; a bucket (nested
// ones included) appears under its own path with a nil value, so an empty
// bucket created and left behind is seen too. It reads in one
// transaction: a consistent snapshot.
func (s *Store) Dump() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			return dumpBucket(out, []string{string(name)}, b)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: dump: %w", err)
	}
	return out, nil
}

func dumpBucket(out map[string][]byte, path []string, b *bbolt.Bucket) error {
	out[strings.Join(path, "\x00")] = nil
	return b.ForEach(func(k, v []byte) error {
		p := append(path[:len(path):len(path)], string(k))
		if v == nil { // a nested bucket
			return dumpBucket(out, p, b.Bucket(k))
		}
		out[strings.Join(p, "\x00")] = bytes.Clone(v) // non-nil, also when empty
		return nil
	})
}
