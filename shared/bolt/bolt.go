package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"forgelink/shared/forgelink"
)

var _ forgelink.Store = (*Store)(nil)

// The buckets. hooks maps a hook id to the slug of its project and is
// written in the same transaction as projects, so the two never disagree.
var (
	projectsBucket   = []byte("projects")   // slug → JSON forgelink.Project
	hooksBucket      = []byte("hooks")      // hook id → slug
	deliveriesBucket = []byte("deliveries") // deliveryKey → JSON forgelink.Delivery
)

// Store is a forgelink.Store on a bbolt file. It is safe for concurrent
// use: bbolt serializes writers, which makes every conditional write
// atomic.
type Store struct {
	db *bbolt.DB
	// now is the clock that decides whether a delivery has expired.
	now func() time.Time

	sweepMu   sync.Mutex
	lastSweep time.Time // of the runner tokens

	// projects holds each project's decoded record beside the bytes it
	// was decoded from (string key -> *cachedProject): a read that finds
	// the same bytes stored returns a clone instead of decoding the JSON
	// again (every delivery reads its project three times: intake,
	// trigger, status).
	projects sync.Map
}

// cachedProject is a project record as stored and as decoded.
type cachedProject struct {
	raw []byte
	p   *forgelink.Project
}

// Open opens the store in the bbolt file at path, creating it with mode
// 0600 if needed, and deletes the deliveries that have expired.
func Open(path string) (*Store, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: time.Second,
		// As etcd runs bbolt: a commit does not write the free-page list
		// (fewer pages per fsync); opening the file rebuilds it with a
		// scan. The map free list allocates without a linear search.
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	// Group commits: deliveries accepted within 2 ms share one fsync.
	db.MaxBatchDelay = 2 * time.Millisecond
	s := &Store{db: db, now: time.Now}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{projectsBucket, hooksBucket, deliveriesBucket, queueBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return s.sweep(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	return s, nil
}

// Close closes the file.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt: close: %w", err)
	}
	return nil
}

// sweep deletes the expired deliveries, which reads already treat as
// absent, so the file does not grow forever.
func (s *Store) sweep(tx *bbolt.Tx) error {
	b := tx.Bucket(deliveriesBucket)
	var expired [][]byte
	now := s.now()
	err := b.ForEach(func(k, v []byte) error {
		var d forgelink.Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("sweep deliveries: decode %q: %w", k, err)
		}
		if isExpired(&d, now) {
			expired = append(expired, k) // k is valid for the life of tx
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Deleting while iterating can skip keys, so delete afterwards.
	for _, k := range expired {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("sweep deliveries: %w", err)
		}
	}
	return nil
}

// CreateProject stores a new project and its hook id, or returns a
// Conflict when the slug or the hook id is taken. It sets p.Version to 1.
func (s *Store) CreateProject(ctx context.Context, p *forgelink.Project) error {
	if p.HookID == "" {
		return fmt.Errorf("bolt: create project %s: %w", p.Slug, forgelink.Errorf(forgelink.Invalid, "project %s has no hook id", p.Slug))
	}
	rec := *p
	rec.Version = 1
	v, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("bolt: create project %s: %w", p.Slug, err)
	}
	key := []byte(p.Slug.String())
	err = s.db.Update(func(tx *bbolt.Tx) error {
		projects, hooks := tx.Bucket(projectsBucket), tx.Bucket(hooksBucket)
		if projects.Get(key) != nil {
			return forgelink.Errorf(forgelink.Conflict, "project %s exists", p.Slug)
		}
		if hooks.Get([]byte(p.HookID)) != nil {
			return forgelink.Errorf(forgelink.Conflict, "hook id of project %s is in use", p.Slug)
		}
		if err := projects.Put(key, v); err != nil {
			return err
		}
		return hooks.Put([]byte(p.HookID), key)
	})
	if err != nil {
		return fmt.Errorf("bolt: create project %s: %w", p.Slug, err)
	}
	p.Version = 1
	return nil
}

// GetProject returns the project, or NotFound.
func (s *Store) GetProject(ctx context.Context, slug forgelink.Slug) (*forgelink.Project, error) {
	var p *forgelink.Project
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		p, err = s.getProject(tx, []byte(slug.String()))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get project %s: %w", slug, err)
	}
	return p, nil
}

// GetProjectByHookID returns the project whose webhook URL carries hookID,
// or NotFound.
func (s *Store) GetProjectByHookID(ctx context.Context, hookID string) (*forgelink.Project, error) {
	var p *forgelink.Project
	err := s.db.View(func(tx *bbolt.Tx) error {
		key := tx.Bucket(hooksBucket).Get([]byte(hookID))
		if key == nil {
			return forgelink.Errorf(forgelink.NotFound, "no project has hook id %q", hookID)
		}
		var err error
		p, err = s.getProject(tx, key)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get project by hook id %q: %w", hookID, err)
	}
	return p, nil
}

// getProject decodes the project stored under key, or returns NotFound.
func (s *Store) getProject(tx *bbolt.Tx, key []byte) (*forgelink.Project, error) {
	v := tx.Bucket(projectsBucket).Get(key)
	if v == nil {
		return nil, forgelink.Errorf(forgelink.NotFound, "project %s not found", key)
	}
	if c, ok := s.projects.Load(string(key)); ok && bytes.Equal(c.(*cachedProject).raw, v) {
		return c.(*cachedProject).p.Clone(), nil
	}
	var p forgelink.Project
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("decode project: %w", err)
	}
	// v lives as long as the transaction: the cache keeps a copy.
	s.projects.Store(string(key), &cachedProject{raw: bytes.Clone(v), p: p.Clone()})
	return &p, nil
}

// UpdateProject replaces the project if its stored Version equals
// p.Version, then increments p.Version. It returns NotFound when the
// project is gone, Conflict when it changed meanwhile, and Invalid when p
// carries another hook id.
func (s *Store) UpdateProject(ctx context.Context, p *forgelink.Project) error {
	rec := *p
	rec.Version++
	v, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("bolt: update project %s: %w", p.Slug, err)
	}
	key := []byte(p.Slug.String())
	err = s.db.Update(func(tx *bbolt.Tx) error {
		old, err := s.getProject(tx, key)
		if err != nil {
			return err
		}
		if old.Version != p.Version {
			return forgelink.Errorf(forgelink.Conflict, "project %s changed meanwhile", p.Slug)
		}
		if old.HookID != p.HookID {
			return forgelink.Errorf(forgelink.Invalid, "the hook id of project %s cannot change", p.Slug)
		}
		return tx.Bucket(projectsBucket).Put(key, v)
	})
	if err != nil {
		return fmt.Errorf("bolt: update project %s: %w", p.Slug, err)
	}
	p.Version = rec.Version
	return nil
}

// DeleteProject removes the project and its hook id, or returns NotFound.
func (s *Store) DeleteProject(ctx context.Context, slug forgelink.Slug) error {
	key := []byte(slug.String())
	err := s.db.Update(func(tx *bbolt.Tx) error {
		p, err := s.getProject(tx, key)
		if err != nil {
			return err
		}
		if err := tx.Bucket(projectsBucket).Delete(key); err != nil {
			return err
		}
		return tx.Bucket(hooksBucket).Delete([]byte(p.HookID))
	})
	if err != nil {
		return fmt.Errorf("bolt: delete project %s: %w", slug, err)
	}
	s.projects.Delete(string(key))
	return nil
}

// deliveryKey is the key of delivery (hookID, id). The length prefix keeps
// ("a", "bc") and ("ab", "c") apart whatever bytes the ids hold.
func deliveryKey(hookID, id string) []byte {
	k := binary.AppendUvarint(nil, uint64(len(hookID)))
	k = append(k, hookID...)
	return append(k, id...)
}

// isExpired reports whether d may be forgotten at now.
func isExpired(d *forgelink.Delivery, now time.Time) bool {
	return !now.Before(d.ExpiresAt)
}

// CreateDelivery stores d unless a delivery with its (HookID, ID) exists
// and has not expired, in which case it returns a Conflict.
func (s *Store) CreateDelivery(ctx context.Context, d *forgelink.Delivery) error {
	if err := validDelivery(d); err != nil {
		return fmt.Errorf("bolt: create delivery %s/%s: %w", d.HookID, d.ID, err)
	}
	v, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("bolt: create delivery %s/%s: %w", d.HookID, d.ID, err)
	}
	key := deliveryKey(d.HookID, d.ID)
	err = s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(deliveriesBucket)
		if _, err := s.getDelivery(b, key); err == nil {
			return forgelink.Errorf(forgelink.Conflict, "delivery %s exists", d.ID)
		} else if forgelink.KindOf(err) != forgelink.NotFound {
			return err
		}
		return b.Put(key, v)
	})
	if err != nil {
		return fmt.Errorf("bolt: create delivery %s/%s: %w", d.HookID, d.ID, err)
	}
	return nil
}

// validDelivery rejects a delivery that cannot be keyed or would never
// expire.
func validDelivery(d *forgelink.Delivery) error {
	switch {
	case d.HookID == "" || d.ID == "":
		return forgelink.Errorf(forgelink.Invalid, "delivery needs a hook id and an id")
	case d.ExpiresAt.IsZero():
		return forgelink.Errorf(forgelink.Invalid, "delivery %s has no expiry time", d.ID)
	}
	return nil
}

// GetDelivery returns the delivery, or NotFound (also once expired).
func (s *Store) GetDelivery(ctx context.Context, hookID, id string) (*forgelink.Delivery, error) {
	var d *forgelink.Delivery
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		d, err = s.getDelivery(tx.Bucket(deliveriesBucket), deliveryKey(hookID, id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get delivery %s/%s: %w", hookID, id, err)
	}
	return d, nil
}

// getDelivery decodes the delivery under key, or returns NotFound when
// there is none or it has expired.
func (s *Store) getDelivery(b *bbolt.Bucket, key []byte) (*forgelink.Delivery, error) {
	v := b.Get(key)
	if v == nil {
		return nil, forgelink.Errorf(forgelink.NotFound, "delivery not found")
	}
	var d forgelink.Delivery
	if err := json.Unmarshal(v, &d); err != nil {
		return nil, fmt.Errorf("decode delivery: %w", err)
	}
	if isExpired(&d, s.now()) {
		return nil, forgelink.Errorf(forgelink.NotFound, "delivery not found")
	}
	return &d, nil
}

// SetDeliveryState records the delivery's new state, or returns NotFound
// when it is absent or expired.
func (s *Store) SetDeliveryState(ctx context.Context, hookID, id string, state forgelink.DeliveryState) error {
	err := s.db.Batch(func(tx *bbolt.Tx) error { return s.setState(tx, deliveryKey(hookID, id), state) })
	if err != nil {
		return fmt.Errorf("bolt: set delivery %s/%s state %s: %w", hookID, id, state, err)
	}
	return nil
}

// ListProjects returns every project, ordered by slug.
func (s *Store) ListProjects(ctx context.Context) ([]*forgelink.Project, error) {
	var out []*forgelink.Project
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(projectsBucket).ForEach(func(k, v []byte) error {
			var p forgelink.Project
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("decode project %s: %w", k, err)
			}
			out = append(out, &p)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: list projects: %w", err)
	}
	return out, nil
}
