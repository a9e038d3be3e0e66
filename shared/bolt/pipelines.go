package bolt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/google/uuid"
	bbolt "go.etcd.io/bbolt"

	"forgelink/shared/forgelink"
)

var _ forgelink.PipelineStore = (*Store)(nil)

// The pipeline buckets. They are created by the first write that needs
// them, so Open and files written before pipelines existed are unchanged;
// reads treat a missing bucket as empty. Each holds one sub-bucket per
// project, named by its slug string, so a project's keys sort together and
// a listing is a walk of one bucket.
var (
	pipelinesBucket         = []byte("pipelines")           // id → JSON forgelink.Pipeline
	projectPipelinesBucket  = []byte("project_pipelines")   // slug / big-endian number → id; Sequence is the last number
	pipelineRevsBucket      = []byte("pipeline_revs")       // slug / revKey → id
	deliveryRecordsBucket   = []byte("delivery_records")    // slug / recordKey → JSON forgelink.DeliveryRecord
	deliveryRecordIDsBucket = []byte("delivery_record_ids") // slug / deliveryKey → its recordKey, to replace a record
	openPRsBucket           = []byte("open_prs")            // slug / branch → JSON []int, sorted
)

// Page sizes of the listings.
const (
	defaultPageLimit = 20
	maxPageLimit     = 100
)

// pageLimit applies forgelink.Page's default and cap.
func pageLimit(p forgelink.Page) int {
	switch {
	case p.Limit <= 0:
		return defaultPageLimit
	case p.Limit > maxPageLimit:
		return maxPageLimit
	}
	return p.Limit
}

// invalidToken is the error for a page token the store did not hand out.
func invalidToken() error {
	return forgelink.Errorf(forgelink.Invalid, "invalid page token")
}

// projectBucket returns the project's sub-bucket of the top-level bucket
// name, creating both if create is set (tx must then be writable). It
// returns nil when they do not exist and create is not set.
func projectBucket(tx *bbolt.Tx, name []byte, slug string, create bool) (*bbolt.Bucket, error) {
	if !create {
		top := tx.Bucket(name)
		if top == nil {
			return nil, nil
		}
		return top.Bucket([]byte(slug)), nil
	}
	top, err := tx.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", name, err)
	}
	b, err := top.CreateBucketIfNotExists([]byte(slug))
	if err != nil {
		return nil, fmt.Errorf("create bucket %s/%s: %w", name, slug, err)
	}
	return b, nil
}

// appendPart appends s with a length prefix, so that a key made of several
// parts cannot be read two ways whatever bytes the parts hold.
func appendPart(k []byte, s string) []byte {
	k = binary.AppendUvarint(k, uint64(len(s)))
	return append(k, s...)
}

// revKey is the key of a pipeline's (RefKey, Revision) in its project's
// pipeline_revs bucket.
func revKey(p *forgelink.Pipeline) []byte {
	return appendPart(appendPart(nil, p.RefKey()), p.Revision)
}

// numberKey is the key of pipeline number n in its project's
// project_pipelines bucket: big-endian, so keys sort by number.
func numberKey(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// timeKeyLen is the length of the time prefix of a recordKey.
const timeKeyLen = 12

// recordKey is the key of a delivery record in its project's
// delivery_records bucket: the receive time, encoded so that keys sort by
// time (seconds with the sign bit flipped, then nanoseconds, big-endian),
// then the record's identity.
func recordKey(r *forgelink.DeliveryRecord) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(r.ReceivedAt.Unix())^(1<<63))
	k = binary.BigEndian.AppendUint32(k, uint32(r.ReceivedAt.Nanosecond()))
	return append(k, recordIDKey(r)...)
}

// recordIDKey identifies a delivery record within its project.
func recordIDKey(r *forgelink.DeliveryRecord) []byte {
	return appendPart(appendPart(nil, r.HookID), r.DeliveryID)
}

// CreatePipeline stores a copy of p with the project's next Number and,
// when p.ID is empty, a new random ID, and returns that copy; on success it
// also sets p.Number and p.ID. Numbering and the (RefKey, Revision) check
// happen in one transaction, which bbolt runs alone. If the project
// already has a pipeline for p's (RefKey, Revision), nothing is written and
// it returns that pipeline with a Conflict. An ID already in use is
// Invalid.
func (s *Store) CreatePipeline(ctx context.Context, p *forgelink.Pipeline) (*forgelink.Pipeline, error) {
	slug, err := p.Validate()
	if err != nil {
		return nil, fmt.Errorf("bolt: create pipeline %s %s@%s: %w", p.Project, p.RefKey(), p.Revision, err)
	}
	rec := *p
	rec.Project = slug.String()
	if rec.ID == "" {
		rec.ID = uuid.NewString()
	}
	var (
		existing *forgelink.Pipeline
		stored   []byte // the record as written
	)
	// Batch (group commit) may run the function again: it only touches tx
	// and what it sets afresh.
	err = s.db.Batch(func(tx *bbolt.Tx) error {
		existing, stored = nil, nil
		revs, err := projectBucket(tx, pipelineRevsBucket, rec.Project, true)
		if err != nil {
			return err
		}
		if id := revs.Get(revKey(&rec)); id != nil {
			if existing, err = getPipeline(tx, id); err != nil {
				return err
			}
			return forgelink.Errorf(forgelink.Conflict, "project %s has pipeline %d for %s at %s", rec.Project, existing.Number, rec.RefKey(), rec.Revision)
		}
		pipelines, err := tx.CreateBucketIfNotExists(pipelinesBucket)
		if err != nil {
			return fmt.Errorf("create bucket %s: %w", pipelinesBucket, err)
		}
		if pipelines.Get([]byte(rec.ID)) != nil {
			return forgelink.Errorf(forgelink.Invalid, "pipeline id %s is in use", rec.ID)
		}
		numbers, err := projectBucket(tx, projectPipelinesBucket, rec.Project, true)
		if err != nil {
			return err
		}
		n, err := numbers.NextSequence()
		if err != nil {
			return err
		}
		rec.Number = int64(n)
		v, err := json.Marshal(&rec)
		if err != nil {
			return fmt.Errorf("encode pipeline: %w", err)
		}
		if err := pipelines.Put([]byte(rec.ID), v); err != nil {
			return err
		}
		stored = v
		if err := numbers.Put(numberKey(n), []byte(rec.ID)); err != nil {
			return err
		}
		return revs.Put(revKey(&rec), []byte(rec.ID))
	})
	if err != nil {
		return existing, fmt.Errorf("bolt: create pipeline %s %s@%s: %w", p.Project, p.RefKey(), p.Revision, err)
	}
	p.ID, p.Number = rec.ID, rec.Number
	// The copy returned is decoded from the bytes stored: it shares
	// nothing with p or the store.
	var c forgelink.Pipeline
	if err := json.Unmarshal(stored, &c); err != nil {
		return nil, fmt.Errorf("bolt: create pipeline %s: decode: %w", rec.ID, err)
	}
	return &c, nil
}

// getPipeline decodes the pipeline stored under id, or returns NotFound.
func getPipeline(tx *bbolt.Tx, id []byte) (*forgelink.Pipeline, error) {
	var v []byte
	if b := tx.Bucket(pipelinesBucket); b != nil {
		v = b.Get(id)
	}
	if v == nil {
		return nil, forgelink.Errorf(forgelink.NotFound, "pipeline %s not found", id)
	}
	var p forgelink.Pipeline
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("decode pipeline %s: %w", id, err)
	}
	return &p, nil
}

// GetPipeline returns the pipeline with this id, or NotFound.
func (s *Store) GetPipeline(ctx context.Context, id string) (*forgelink.Pipeline, error) {
	var p *forgelink.Pipeline
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		p, err = getPipeline(tx, []byte(id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get pipeline %s: %w", id, err)
	}
	return p, nil
}

// ListPipelines returns the project's pipelines newest (highest Number)
// first and the token of the next page ("" when there is none). A token
// this store did not hand out is Invalid.
func (s *Store) ListPipelines(ctx context.Context, project forgelink.Slug, page forgelink.Page) ([]*forgelink.Pipeline, string, error) {
	var (
		ps   []*forgelink.Pipeline
		next string
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, err := projectBucket(tx, projectPipelinesBucket, project.String(), false)
		if err != nil {
			return err
		}
		next, err = listNewest(b, page, func(k, v []byte) error {
			p, err := getPipeline(tx, v)
			if err != nil {
				return err
			}
			ps = append(ps, p)
			return nil
		}, func(k []byte) bool { return len(k) == 8 })
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("bolt: list pipelines of %s: %w", project, err)
	}
	return ps, next, nil
}

// listNewest calls f for up to a page of b's entries, from the greatest
// key down, starting below the key in page.Token, and returns the token of
// the next page. validKey says whether a decoded token may be a key of b.
// A nil b is an empty bucket.
func listNewest(b *bbolt.Bucket, page forgelink.Page, f func(k, v []byte) error, validKey func(k []byte) bool) (string, error) {
	var after []byte
	if page.Token != "" {
		k, err := base64.RawURLEncoding.DecodeString(page.Token)
		if err != nil || !validKey(k) {
			return "", invalidToken()
		}
		after = k
	}
	if b == nil {
		return "", nil
	}
	c := b.Cursor()
	var k, v []byte
	if after == nil {
		k, v = c.Last()
	} else if k, _ = c.Seek(after); k == nil {
		// Every key is below after.
		k, v = c.Last()
	} else {
		// k is the first key at or above after: step below it.
		k, v = c.Prev()
	}
	limit := pageLimit(page)
	var last []byte
	for n := 0; k != nil; k, v = c.Prev() {
		if n == limit {
			return base64.RawURLEncoding.EncodeToString(last), nil
		}
		if err := f(k, v); err != nil {
			return "", err
		}
		last = k
		n++
	}
	return "", nil
}

// PutDeliveryRecord stores r, replacing the record with the same
// (Project, HookID, DeliveryID), even one received at another time.
func (s *Store) PutDeliveryRecord(ctx context.Context, r *forgelink.DeliveryRecord) error {
	slug, err := r.Validate()
	if err != nil {
		return fmt.Errorf("bolt: put delivery record %s %s/%s: %w", r.Project, r.HookID, r.DeliveryID, err)
	}
	rec := *r
	rec.Project = slug.String()
	v, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("bolt: put delivery record %s %s/%s: %w", r.Project, r.HookID, r.DeliveryID, err)
	}
	err = s.db.Batch(func(tx *bbolt.Tx) error {
		records, err := projectBucket(tx, deliveryRecordsBucket, rec.Project, true)
		if err != nil {
			return err
		}
		ids, err := projectBucket(tx, deliveryRecordIDsBucket, rec.Project, true)
		if err != nil {
			return err
		}
		key, idKey := recordKey(&rec), recordIDKey(&rec)
		if old := ids.Get(idKey); old != nil && !bytes.Equal(old, key) {
			if err := records.Delete(slices.Clone(old)); err != nil {
				return err
			}
		}
		if err := records.Put(key, v); err != nil {
			return err
		}
		return ids.Put(idKey, key)
	})
	if err != nil {
		return fmt.Errorf("bolt: put delivery record %s %s/%s: %w", r.Project, r.HookID, r.DeliveryID, err)
	}
	return nil
}

// ListDeliveryRecords returns the project's records newest first (by
// ReceivedAt) and the next page's token. A token this store did not hand
// out is Invalid.
func (s *Store) ListDeliveryRecords(ctx context.Context, project forgelink.Slug, page forgelink.Page) ([]*forgelink.DeliveryRecord, string, error) {
	var (
		rs   []*forgelink.DeliveryRecord
		next string
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, err := projectBucket(tx, deliveryRecordsBucket, project.String(), false)
		if err != nil {
			return err
		}
		next, err = listNewest(b, page, func(k, v []byte) error {
			var r forgelink.DeliveryRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode delivery record: %w", err)
			}
			rs = append(rs, &r)
			return nil
		}, func(k []byte) bool { return len(k) > timeKeyLen })
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("bolt: list delivery records of %s: %w", project, err)
	}
	return rs, next, nil
}

// OpenPRs returns the numbers, ascending, of the open pull requests whose
// head is branch, and known=false when the index has never heard of the
// branch.
func (s *Store) OpenPRs(ctx context.Context, project forgelink.Slug, branch string) ([]int, bool, error) {
	var (
		prs   []int
		known bool
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		if branch == "" {
			return forgelink.Errorf(forgelink.Invalid, "empty branch name")
		}
		b, err := projectBucket(tx, openPRsBucket, project.String(), false)
		if err != nil || b == nil {
			return err
		}
		prs, known, err = getOpenPRs(b, branch)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("bolt: open prs of %s %s: %w", project, branch, err)
	}
	return prs, known, nil
}

// getOpenPRs decodes the branch's entry of b.
func getOpenPRs(b *bbolt.Bucket, branch string) ([]int, bool, error) {
	v := b.Get([]byte(branch))
	if v == nil {
		return nil, false, nil
	}
	var prs []int
	if err := json.Unmarshal(v, &prs); err != nil {
		return nil, false, fmt.Errorf("decode open prs: %w", err)
	}
	return prs, true, nil
}

// SetPROpen records that pull request pr (head branch) is open or not. It
// makes the branch known.
func (s *Store) SetPROpen(ctx context.Context, project forgelink.Slug, branch string, pr int, open bool) error {
	err := s.updateOpenPRs(project, branch, func(prs []int) ([]int, error) {
		if pr <= 0 {
			return nil, forgelink.Errorf(forgelink.Invalid, "invalid pull request number %d", pr)
		}
		prs = slices.DeleteFunc(prs, func(n int) bool { return n == pr })
		if open {
			prs = append(prs, pr)
		}
		return prs, nil
	})
	if err != nil {
		return fmt.Errorf("bolt: set pr %d of %s %s open=%t: %w", pr, project, branch, open, err)
	}
	return nil
}

// SetOpenPRs replaces the branch's open PRs and makes the branch known,
// even with none.
func (s *Store) SetOpenPRs(ctx context.Context, project forgelink.Slug, branch string, prs []int) error {
	err := s.updateOpenPRs(project, branch, func([]int) ([]int, error) {
		for _, pr := range prs {
			if pr <= 0 {
				return nil, forgelink.Errorf(forgelink.Invalid, "invalid pull request number %d", pr)
			}
		}
		return slices.Clone(prs), nil
	})
	if err != nil {
		return fmt.Errorf("bolt: set open prs of %s %s: %w", project, branch, err)
	}
	return nil
}

// updateOpenPRs replaces the branch's open PRs with edit's answer, sorted
// and without duplicates, in one transaction.
func (s *Store) updateOpenPRs(project forgelink.Slug, branch string, edit func(prs []int) ([]int, error)) error {
	if branch == "" {
		return forgelink.Errorf(forgelink.Invalid, "empty branch name")
	}
	return s.db.Batch(func(tx *bbolt.Tx) error {
		b, err := projectBucket(tx, openPRsBucket, project.String(), true)
		if err != nil {
			return err
		}
		prs, _, err := getOpenPRs(b, branch)
		if err != nil {
			return err
		}
		if prs, err = edit(prs); err != nil {
			return err
		}
		slices.Sort(prs)
		v, err := json.Marshal(slices.Compact(prs))
		if err != nil {
			return fmt.Errorf("encode open prs: %w", err)
		}
		return b.Put([]byte(branch), v)
	})
}
