package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"forgelink/shared/forgelink"
)

// statusQueueBucket holds the one-process server's durable status queue:
// StatusRequest.Key() → JSON forgelink.StatusQueueEntry.
var statusQueueBucket = []byte("status-queue")

// PutStatusEntry stores e under its request's key, replacing one there.
// It commits through Batch, so concurrent requests share one fsync.
func (s *Store) PutStatusEntry(ctx context.Context, e *forgelink.StatusQueueEntry) error {
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("bolt: put status entry for pipeline %s: %w", e.Message.PipelineID, err)
	}
	key := []byte(e.Message.Key())
	err = s.db.Batch(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(statusQueueBucket)
		if err != nil {
			return err
		}
		return b.Put(key, v)
	})
	if err != nil {
		return fmt.Errorf("bolt: put status entry for pipeline %s: %w", e.Message.PipelineID, err)
	}
	return nil
}

// DeleteStatusEntry removes the entry with this key; a missing one is not
// an error.
func (s *Store) DeleteStatusEntry(ctx context.Context, key string) error {
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		b := tx.Bucket(statusQueueBucket)
		if b == nil {
			return nil
		}
		return b.Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("bolt: delete status entry: %w", err)
	}
	return nil
}

// StatusEntries returns every status queue entry, dead ones included.
func (s *Store) StatusEntries(ctx context.Context) ([]*forgelink.StatusQueueEntry, error) {
	var out []*forgelink.StatusQueueEntry
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(statusQueueBucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var e forgelink.StatusQueueEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode status entry %q: %w", k, err)
			}
			out = append(out, &e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: status entries: %w", err)
	}
	return out, nil
}
