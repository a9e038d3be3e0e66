package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"forgelink/shared/forgelink"
)

var _ forgelink.StatusStore = (*Store)(nil)

// postedStatusesBucket holds the posted commit statuses, created by the
// first write like the pipeline buckets: one sub-bucket per project.
var postedStatusesBucket = []byte("posted_statuses") // slug / postedStatusKey → JSON forgelink.PostedStatus

// postedStatusKey is the key of a (revision, context) in its project's
// posted_statuses bucket.
func postedStatusKey(revision, statusContext string) []byte {
	return appendPart(appendPart(nil, revision), statusContext)
}

// validPostedStatus checks what the store needs to key s and returns its
// project.
func validPostedStatus(s *forgelink.PostedStatus) (forgelink.Slug, error) {
	slug, err := forgelink.ParseSlug(s.Project)
	if err != nil {
		return forgelink.Slug{}, err
	}
	if s.Revision == "" || s.Context == "" {
		return forgelink.Slug{}, forgelink.Errorf(forgelink.Invalid, "posted status needs a revision and a context")
	}
	return slug, nil
}

// GetPostedStatus returns the posted status of (project, revision,
// context), or NotFound.
func (s *Store) GetPostedStatus(ctx context.Context, project forgelink.Slug, revision, statusContext string) (*forgelink.PostedStatus, error) {
	var ps *forgelink.PostedStatus
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, err := projectBucket(tx, postedStatusesBucket, project.String(), false)
		if err != nil {
			return err
		}
		ps, err = getPostedStatus(b, postedStatusKey(revision, statusContext))
		if err == nil && ps == nil {
			err = forgelink.Errorf(forgelink.NotFound, "no posted status for %s at %s, context %q", project, revision, statusContext)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: get posted status %s %s %q: %w", project, revision, statusContext, err)
	}
	return ps, nil
}

// getPostedStatus decodes the posted status under key in b, or returns
// nil when there is none (or no b).
func getPostedStatus(b *bbolt.Bucket, key []byte) (*forgelink.PostedStatus, error) {
	var v []byte
	if b != nil {
		v = b.Get(key)
	}
	if v == nil {
		return nil, nil
	}
	var ps forgelink.PostedStatus
	if err := json.Unmarshal(v, &ps); err != nil {
		return nil, fmt.Errorf("decode posted status: %w", err)
	}
	return &ps, nil
}

// PutPostedStatus stores ps if the stored Version equals ps.Version (0:
// none stored), then increments ps.Version; otherwise it returns a
// Conflict. The check and the write are one transaction, committed in a
// group with concurrent writers' (bbolt's Batch: one fsync for all). A status without a valid project, a revision or a context is
// Invalid.
func (s *Store) PutPostedStatus(ctx context.Context, ps *forgelink.PostedStatus) error {
	slug, err := validPostedStatus(ps)
	if err != nil {
		return fmt.Errorf("bolt: put posted status %s %s %q: %w", ps.Project, ps.Revision, ps.Context, err)
	}
	rec := *ps
	rec.Project = slug.String()
	rec.Version++
	v, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("bolt: put posted status %s %s %q: %w", ps.Project, ps.Revision, ps.Context, err)
	}
	err = s.db.Batch(func(tx *bbolt.Tx) error {
		b, err := projectBucket(tx, postedStatusesBucket, rec.Project, true)
		if err != nil {
			return err
		}
		key := postedStatusKey(rec.Revision, rec.Context)
		old, err := getPostedStatus(b, key)
		if err != nil {
			return err
		}
		var stored int64
		if old != nil {
			stored = old.Version
		}
		if stored != ps.Version {
			return forgelink.Errorf(forgelink.Conflict, "posted status of %s at %s, context %q, changed meanwhile", rec.Project, rec.Revision, rec.Context)
		}
		return b.Put(key, v)
	})
	if err != nil {
		return fmt.Errorf("bolt: put posted status %s %s %q: %w", ps.Project, ps.Revision, ps.Context, err)
	}
	ps.Version = rec.Version
	return nil
}

// UpdatePipelineStatus replaces the stored pipeline's Status,
// WorkflowStatus and StatusErrors with p's if its StatusVersion equals
// p.StatusVersion, and increments both; the rest of the pipeline stays as
// stored. Conflict when the version moved, NotFound for an unknown id.
func (s *Store) UpdatePipelineStatus(ctx context.Context, p *forgelink.Pipeline) error {
	var version int64
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		stored, err := getPipeline(tx, []byte(p.ID))
		if err != nil {
			return err
		}
		if stored.StatusVersion != p.StatusVersion {
			return forgelink.Errorf(forgelink.Conflict, "status of pipeline %s changed meanwhile", p.ID)
		}
		stored.Status = p.Status
		stored.WorkflowStatus = p.WorkflowStatus
		stored.StatusErrors = p.StatusErrors
		stored.StatusVersion++
		// Encoding copies the map and slice: the store keeps no alias.
		v, err := json.Marshal(stored)
		if err != nil {
			return fmt.Errorf("encode pipeline: %w", err)
		}
		version = stored.StatusVersion
		return tx.Bucket(pipelinesBucket).Put([]byte(p.ID), v)
	})
	if err != nil {
		return fmt.Errorf("bolt: update status of pipeline %s: %w", p.ID, err)
	}
	p.StatusVersion = version
	return nil
}
