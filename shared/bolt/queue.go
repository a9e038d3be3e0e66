package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"forgelink/shared/forgelink"
)

// queueBucket holds the one-process server's durable queue: deliveryKey →
// JSON forgelink.QueueEntry. It lives in the same file as the deliveries,
// so accepting a delivery and queueing it is one transaction (the delivery
// store is the queue's outbox), and a crash loses neither.
var queueBucket = []byte("queue")

// AcceptDelivery stores d and its queue entry e in one transaction, or
// returns a Conflict, writing nothing, when d's (HookID, ID) exists. It
// commits through bbolt's Batch, so concurrent deliveries share one fsync.
func (s *Store) AcceptDelivery(ctx context.Context, d *forgelink.Delivery, e *forgelink.QueueEntry) error {
	if err := validDelivery(d); err != nil {
		return fmt.Errorf("bolt: accept delivery %s/%s: %w", d.HookID, d.ID, err)
	}
	dv, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("bolt: accept delivery %s/%s: %w", d.HookID, d.ID, err)
	}
	ev, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("bolt: accept delivery %s/%s: %w", d.HookID, d.ID, err)
	}
	key := deliveryKey(d.HookID, d.ID)
	// Batch may run the function more than once: it only reads and puts.
	err = s.db.Batch(func(tx *bbolt.Tx) error {
		b := tx.Bucket(deliveriesBucket)
		if _, err := s.getDelivery(b, key); err == nil {
			return forgelink.Errorf(forgelink.Conflict, "delivery %s exists", d.ID)
		} else if forgelink.KindOf(err) != forgelink.NotFound {
			return err
		}
		if err := b.Put(key, dv); err != nil {
			return err
		}
		return tx.Bucket(queueBucket).Put(key, ev)
	})
	if err != nil {
		return fmt.Errorf("bolt: accept delivery %s/%s: %w", d.HookID, d.ID, err)
	}
	return nil
}

// PutQueueEntry stores e (a retry's attempt count, a dead letter, a
// requeue) and sets its delivery's state, in one transaction.
func (s *Store) PutQueueEntry(ctx context.Context, e *forgelink.QueueEntry, state forgelink.DeliveryState) error {
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("bolt: put queue entry %s: %w", e.Message.DeliveryID, err)
	}
	key := deliveryKey(e.Message.HookID, e.Message.DeliveryID)
	err = s.db.Batch(func(tx *bbolt.Tx) error {
		if err := s.setState(tx, key, state); err != nil {
			return err
		}
		return tx.Bucket(queueBucket).Put(key, v)
	})
	if err != nil {
		return fmt.Errorf("bolt: put queue entry %s: %w", e.Message.DeliveryID, err)
	}
	return nil
}

// FinishQueueEntry removes the entry of delivery (hookID, id) and marks
// the delivery Decided, in one transaction.
func (s *Store) FinishQueueEntry(ctx context.Context, hookID, id string) error {
	key := deliveryKey(hookID, id)
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		if err := s.setState(tx, key, forgelink.Decided); err != nil && forgelink.KindOf(err) != forgelink.NotFound {
			return err
		}
		return tx.Bucket(queueBucket).Delete(key)
	})
	if err != nil {
		return fmt.Errorf("bolt: finish queue entry %s: %w", id, err)
	}
	return nil
}

// QueueEntries returns every queued entry, dead ones included.
func (s *Store) QueueEntries(ctx context.Context) ([]*forgelink.QueueEntry, error) {
	var out []*forgelink.QueueEntry
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(queueBucket).ForEach(func(k, v []byte) error {
			var e forgelink.QueueEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode queue entry %q: %w", k, err)
			}
			out = append(out, &e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: queue entries: %w", err)
	}
	return out, nil
}

// setState sets the state of the delivery under key, or returns NotFound.
func (s *Store) setState(tx *bbolt.Tx, key []byte, state forgelink.DeliveryState) error {
	b := tx.Bucket(deliveriesBucket)
	d, err := s.getDelivery(b, key)
	if err != nil {
		return err
	}
	if d.State == state {
		return nil
	}
	d.State = state
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return b.Put(key, v)
}
