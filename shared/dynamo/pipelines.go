package dynamo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/google/uuid"

	"forgelink/shared/forgelink"
)

var _ forgelink.PipelineStore = (*Store)(nil)

// The pipelines table (Tables.Pipelines) has a hash key pk and a range key
// sk, both strings. A project's partition, pk "project#<slug>", holds
//
//	sk "pipeline#<number, 20 digits>"   the pipeline (body), so a Query lists by number, and
//	                                    its StatusVersion (sv, absent while 0), the
//	                                    condition of UpdatePipelineStatus
//	sk "counter"                        the last number given (last)
//	sk "delivery#<received>#<hook>#<id>" a delivery record (body); received is
//	                                    UTC with nine fraction digits, so it sorts by time
//	sk "delivery-id#<hook>#<id>"        the sk of that record (record_sk), to replace it
//	sk "branch#<branch>"                the branch's open PRs (prs, a number set,
//	                                    absent when none); the item makes the branch known
//
// and two more kinds of item locate a pipeline:
//
//	pk "pipeline#<id>", sk "pipeline"   its slug and number, for GetPipeline
//	pk "rev#<slug>#<refkey>#<revision>", sk "rev"
//	                                    its id, slug and number: at most one pipeline
//	                                    per (project, RefKey, Revision)
//
// and, apart from pipelines, the commit statuses posted for a revision:
//
//	pk "status#<slug>#<revision>#<context>", sk "status"
//	                                    a forgelink.PostedStatus (body) and its
//	                                    Version (version), the condition of PutPostedStatus
//
// Key parts that callers choose are escaped (see keyPart), so no two keys
// meet however the parts are cut, and each kind of partition key has a
// prefix of its own. CreatePipeline writes the pointer, rev and pipeline
// items and the counter in one transaction, conditional on the counter
// being unchanged since it was read.

// Range keys and key prefixes of the pipelines table.
const (
	pipelineSKPrefix    = "pipeline#"
	deliverySKPrefix    = "delivery#"
	deliveryRefSKPrefix = "delivery-id#"
	branchSKPrefix      = "branch#"
	counterSK           = "counter"
	pointerSK           = "pipeline"
	revSK               = "rev"
)

// Attribute names of the pipelines table; pk, sk, body and slug are as in
// the other tables.
const (
	attrNumber   = "number"    // pointer and rev items: the pipeline's number
	attrID       = "id"        // rev item: the pipeline's id
	attrLast     = "last"      // counter item: the last number given
	attrRecordSK = "record_sk" // delivery-id item: the sk of the record
	attrPRs      = "prs"       // branch item: the open PRs, a number set
	attrKnown    = "known"     // branch item: always true
	attrStatusV  = "sv"        // pipeline item: its StatusVersion, absent while 0
)

// receivedLayout formats a record's receive time in its sort key:
// fixed-width, unlike RFC3339Nano, so the keys sort by time.
const receivedLayout = "2006-01-02T15:04:05.000000000Z"

// Tries of the optimistic loops. Every lost try means another caller won,
// so createPipelineAttempts is well above the number of concurrent
// creators a project is expected to see.
const (
	createPipelineAttempts = 50
	putRecordAttempts      = 20
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

// keyEscaper escapes the separator and the escape character itself.
var keyEscaper = strings.NewReplacer("%", "%25", "#", "%23")

// keyPart escapes s for use between the '#' separators of a key.
func keyPart(s string) string { return keyEscaper.Replace(s) }

func pipelineSK(n int64) string { return fmt.Sprintf("%s%020d", pipelineSKPrefix, n) }

func pointerKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: strValue("pipeline#" + id), attrSK: strValue(pointerSK)}
}

func revKey(p *forgelink.Pipeline) map[string]types.AttributeValue {
	pk := "rev#" + p.Project + "#" + keyPart(p.RefKey()) + "#" + keyPart(p.Revision)
	return map[string]types.AttributeValue{attrPK: strValue(pk), attrSK: strValue(revSK)}
}

// itemKey returns the key of the item (pk, sk).
func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: strValue(pk), attrSK: strValue(sk)}
}

func deliverySK(r *forgelink.DeliveryRecord) string {
	return deliverySKPrefix + r.ReceivedAt.UTC().Format(receivedLayout) + "#" + keyPart(r.HookID) + "#" + keyPart(r.DeliveryID)
}

func deliveryRefSK(r *forgelink.DeliveryRecord) string {
	return deliveryRefSKPrefix + keyPart(r.HookID) + "#" + keyPart(r.DeliveryID)
}

// validPipelineSK reports whether sk may be a pipeline's sort key.
func validPipelineSK(sk string) bool {
	digits, ok := strings.CutPrefix(sk, pipelineSKPrefix)
	if !ok || len(digits) != 20 {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// validDeliverySK reports whether sk may be a delivery record's sort key.
func validDeliverySK(sk string) bool {
	rest, ok := strings.CutPrefix(sk, deliverySKPrefix)
	if !ok || len(rest) <= len(receivedLayout) || rest[len(receivedLayout)] != '#' {
		return false
	}
	_, err := time.Parse(receivedLayout, rest[:len(receivedLayout)])
	return err == nil
}

// sleepJitter waits a random time that grows with attempt, or until ctx
// is done.
func sleepJitter(ctx context.Context, attempt int) error {
	d := time.Millisecond + time.Duration(mathrand.Int64N(int64(time.Duration(min(attempt, 10))*2*time.Millisecond)))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// CreatePipeline stores a copy of p with the project's next Number and,
// when p.ID is empty, a new random ID, and returns that copy; on success it
// also sets p.Number and p.ID. It reads the project's counter and writes
// the pipeline, its two index items and the counter in one transaction on
// condition that the counter has not moved; a caller that loses that race
// reads again, up to createPipelineAttempts times, then gets a Transient.
// If the project already has a pipeline for p's (RefKey, Revision),
// nothing is written and it returns that pipeline with a Conflict. An ID
// already in use is Invalid.
func (s *Store) CreatePipeline(ctx context.Context, p *forgelink.Pipeline) (*forgelink.Pipeline, error) {
	slug, err := p.Validate()
	if err != nil {
		return nil, fmt.Errorf("dynamo: create pipeline %s %s@%s: %w", p.Project, p.RefKey(), p.Revision, err)
	}
	rec := *p
	rec.Project = slug.String()
	if rec.ID == "" {
		rec.ID = uuid.NewString()
	}
	got, err := s.createPipeline(ctx, slug, &rec)
	if err != nil {
		return got, fmt.Errorf("dynamo: create pipeline %s %s@%s: %w", p.Project, p.RefKey(), p.Revision, err)
	}
	p.ID, p.Number = got.ID, got.Number
	return got, nil
}

// The items of createPipeline's transaction, in order.
const (
	createRev = iota
	createPipelineItem
	createPointer
	createCounter
)

func (s *Store) createPipeline(ctx context.Context, slug forgelink.Slug, rec *forgelink.Pipeline) (*forgelink.Pipeline, error) {
	pk := projectKey(slug)
	notExists := aws.String("attribute_not_exists(pk)")
	var err error
	for attempt := 1; attempt <= createPipelineAttempts; attempt++ {
		if attempt > 1 {
			if err := sleepJitter(ctx, attempt); err != nil {
				return nil, forgelink.E(forgelink.Transient, "gave up creating the pipeline", err)
			}
		}
		var last int64
		if last, err = s.lastPipelineNumber(ctx, pk); err != nil {
			return nil, err
		}
		rec.Number = last + 1
		body, merr := json.Marshal(rec)
		if merr != nil {
			return nil, fmt.Errorf("encode pipeline: %w", merr)
		}
		counter := &types.Put{
			TableName: &s.tables.Pipelines,
			Item: map[string]types.AttributeValue{
				attrPK: strValue(pk), attrSK: strValue(counterSK), attrLast: numValue(rec.Number),
			},
			ConditionExpression: notExists,
		}
		if last > 0 {
			counter.ConditionExpression = aws.String("#last = :last")
			counter.ExpressionAttributeNames = map[string]string{"#last": attrLast}
			counter.ExpressionAttributeValues = map[string]types.AttributeValue{":last": numValue(last)}
		}
		located := func(key map[string]types.AttributeValue) map[string]types.AttributeValue {
			key[attrSlug] = strValue(rec.Project)
			key[attrNumber] = numValue(rec.Number)
			key[attrID] = strValue(rec.ID)
			return key
		}
		items := make([]types.TransactWriteItem, 4)
		items[createRev] = types.TransactWriteItem{Put: &types.Put{
			TableName: &s.tables.Pipelines, Item: located(revKey(rec)), ConditionExpression: notExists,
		}}
		pipeline := itemKey(pk, pipelineSK(rec.Number))
		pipeline[attrBody] = strValue(string(body))
		if rec.StatusVersion != 0 {
			// UpdatePipelineStatus checks the attribute, not the body.
			pipeline[attrStatusV] = numValue(rec.StatusVersion)
		}
		items[createPipelineItem] = types.TransactWriteItem{Put: &types.Put{
			TableName: &s.tables.Pipelines, Item: pipeline, ConditionExpression: notExists,
		}}
		items[createPointer] = types.TransactWriteItem{Put: &types.Put{
			TableName: &s.tables.Pipelines, Item: located(pointerKey(rec.ID)), ConditionExpression: notExists,
		}}
		items[createCounter] = types.TransactWriteItem{Put: counter}

		_, err = s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return decodePipeline(body)
		}
		failed := conditionFailures(err)
		switch {
		case failed != nil && failed[createRev]:
			existing, gerr := s.pipelineByRev(ctx, rec)
			if gerr != nil {
				return nil, gerr
			}
			return existing, forgelink.E(forgelink.Conflict,
				fmt.Sprintf("project %s has pipeline %d for %s at %s", rec.Project, existing.Number, rec.RefKey(), rec.Revision), err)
		case failed != nil && failed[createPointer]:
			return nil, forgelink.E(forgelink.Invalid, fmt.Sprintf("pipeline id %s is in use", rec.ID), err)
		case failed == nil && !transactionConflict(err):
			return nil, classify(err)
		}
		// Another pipeline took the number (or the transaction met
		// another one on the counter): read the counter again.
	}
	return nil, forgelink.E(forgelink.Transient, "too many pipelines are being created at once", err)
}

// lastPipelineNumber reads the project's counter: 0 before its first
// pipeline.
func (s *Store) lastPipelineNumber(ctx context.Context, pk string) (int64, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.tables.Pipelines,
		Key:            itemKey(pk, counterSK),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return 0, classify(err)
	}
	if out.Item == nil {
		return 0, nil
	}
	n, err := num(out.Item, attrLast)
	if err != nil {
		return 0, fmt.Errorf("decode pipeline counter of %s: %w", pk, err)
	}
	return n, nil
}

// pipelineByRev reads the pipeline that holds rec's (RefKey, Revision).
func (s *Store) pipelineByRev(ctx context.Context, rec *forgelink.Pipeline) (*forgelink.Pipeline, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.tables.Pipelines,
		Key:            revKey(rec),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, classify(err)
	}
	if out.Item == nil {
		// Written in the same transaction as the pipeline, and never deleted.
		return nil, fmt.Errorf("the pipeline for %s at %s vanished", rec.RefKey(), rec.Revision)
	}
	return s.locatedPipeline(ctx, out.Item)
}

// locatedPipeline reads the pipeline that a pointer or rev item locates.
func (s *Store) locatedPipeline(ctx context.Context, loc map[string]types.AttributeValue) (*forgelink.Pipeline, error) {
	_, item, err := s.locatedItem(ctx, loc)
	if err != nil {
		return nil, err
	}
	return decodePipeline([]byte(str(item, attrBody)))
}

// locatedItem reads the pipeline item that a pointer or rev item locates,
// and returns its key and the item.
func (s *Store) locatedItem(ctx context.Context, loc map[string]types.AttributeValue) (key, item map[string]types.AttributeValue, err error) {
	n, err := num(loc, attrNumber)
	if err != nil {
		return nil, nil, fmt.Errorf("decode %s: %w", str(loc, attrPK), err)
	}
	key = itemKey("project#"+str(loc, attrSlug), pipelineSK(n))
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.tables.Pipelines,
		Key:            key,
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, nil, classify(err)
	}
	if out.Item == nil {
		return nil, nil, fmt.Errorf("pipeline %d of %s, located by %s, is missing", n, str(loc, attrSlug), str(loc, attrPK))
	}
	return key, out.Item, nil
}

func decodePipeline(body []byte) (*forgelink.Pipeline, error) {
	var p forgelink.Pipeline
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("decode pipeline: %w", err)
	}
	return &p, nil
}

// GetPipeline returns the pipeline with this id, or NotFound.
func (s *Store) GetPipeline(ctx context.Context, id string) (*forgelink.Pipeline, error) {
	p, err := s.getPipeline(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("dynamo: get pipeline %s: %w", id, err)
	}
	return p, nil
}

func (s *Store) getPipeline(ctx context.Context, id string) (*forgelink.Pipeline, error) {
	loc, err := s.pointer(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.locatedPipeline(ctx, loc)
}

// pointer reads the pointer item of pipeline id, or returns NotFound.
func (s *Store) pointer(ctx context.Context, id string) (map[string]types.AttributeValue, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.tables.Pipelines,
		Key:            pointerKey(id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, classify(err)
	}
	if out.Item == nil {
		return nil, forgelink.Errorf(forgelink.NotFound, "pipeline %s not found", id)
	}
	return out.Item, nil
}

// ListPipelines returns the project's pipelines newest (highest Number)
// first and the token of the next page ("" when there is none). A token
// this store did not hand out is Invalid.
func (s *Store) ListPipelines(ctx context.Context, project forgelink.Slug, page forgelink.Page) ([]*forgelink.Pipeline, string, error) {
	items, next, err := s.queryNewest(ctx, projectKey(project), pipelineSKPrefix, page, validPipelineSK)
	if err != nil {
		return nil, "", fmt.Errorf("dynamo: list pipelines of %s: %w", project, err)
	}
	ps := make([]*forgelink.Pipeline, 0, len(items))
	for _, item := range items {
		p, err := decodePipeline([]byte(str(item, attrBody)))
		if err != nil {
			return nil, "", fmt.Errorf("dynamo: list pipelines of %s: %s: %w", project, str(item, attrSK), err)
		}
		ps = append(ps, p)
	}
	return ps, next, nil
}

// queryNewest returns up to a page of the items of partition pk whose sort
// key starts with prefix, greatest sort key first, after the one in
// page.Token, and the token of the next page. The token is the last
// returned sort key in base64: it names a position only within pk, and
// validSK checks it is one of prefix's. One item more than the page is
// read, so that the last page has no token.
func (s *Store) queryNewest(ctx context.Context, pk, prefix string, page forgelink.Page, validSK func(string) bool) ([]map[string]types.AttributeValue, string, error) {
	limit := pageLimit(page)
	in := &dynamodb.QueryInput{
		TableName:                 &s.tables.Pipelines,
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": strValue(pk), ":prefix": strValue(prefix)},
		ScanIndexForward:          aws.Bool(false),
		ConsistentRead:            aws.Bool(true),
	}
	if page.Token != "" {
		b, err := base64.RawURLEncoding.DecodeString(page.Token)
		if err != nil || !validSK(string(b)) {
			return nil, "", forgelink.Errorf(forgelink.Invalid, "invalid page token")
		}
		in.ExclusiveStartKey = itemKey(pk, string(b))
	}
	var items []map[string]types.AttributeValue
	for {
		in.Limit = aws.Int32(int32(limit + 1 - len(items)))
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, "", classify(err)
		}
		items = append(items, out.Items...)
		// A query stops at 1 MB: go on until the page is full or the
		// partition ends.
		if len(items) > limit || out.LastEvaluatedKey == nil {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	if len(items) <= limit {
		return items, "", nil
	}
	items = items[:limit]
	return items, base64.RawURLEncoding.EncodeToString([]byte(str(items[limit-1], attrSK))), nil
}

// PutDeliveryRecord stores r, replacing the record with the same
// (Project, HookID, DeliveryID), even one received at another time: the
// record's sort key starts with its receive time, so a "delivery-id" item
// remembers it, and the new record, the old one's deletion and the
// remembered key are written in one transaction on condition that the key
// has not changed since it was read.
func (s *Store) PutDeliveryRecord(ctx context.Context, r *forgelink.DeliveryRecord) error {
	slug, err := r.Validate()
	if err == nil {
		rec := *r
		rec.Project = slug.String()
		err = s.putDeliveryRecord(ctx, projectKey(slug), &rec)
	}
	if err != nil {
		return fmt.Errorf("dynamo: put delivery record %s %s/%s: %w", r.Project, r.HookID, r.DeliveryID, err)
	}
	return nil
}

func (s *Store) putDeliveryRecord(ctx context.Context, pk string, r *forgelink.DeliveryRecord) error {
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode delivery record: %w", err)
	}
	sk, refSK := deliverySK(r), deliveryRefSK(r)
	record := itemKey(pk, sk)
	record[attrBody] = strValue(string(body))
	ref := itemKey(pk, refSK)
	ref[attrRecordSK] = strValue(sk)
	for attempt := 1; attempt <= putRecordAttempts; attempt++ {
		if attempt > 1 {
			if err := sleepJitter(ctx, attempt); err != nil {
				return forgelink.E(forgelink.Transient, "gave up storing the delivery record", err)
			}
		}
		out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      &s.tables.Pipelines,
			Key:            itemKey(pk, refSK),
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return classify(err)
		}
		refPut := &types.Put{TableName: &s.tables.Pipelines, Item: ref, ConditionExpression: aws.String("attribute_not_exists(pk)")}
		items := []types.TransactWriteItem{
			{Put: &types.Put{TableName: &s.tables.Pipelines, Item: record}},
			{Put: refPut},
		}
		if out.Item != nil {
			old := str(out.Item, attrRecordSK)
			refPut.ConditionExpression = aws.String("#rsk = :old")
			refPut.ExpressionAttributeNames = map[string]string{"#rsk": attrRecordSK}
			refPut.ExpressionAttributeValues = map[string]types.AttributeValue{":old": strValue(old)}
			if old != sk {
				items = append(items, types.TransactWriteItem{Delete: &types.Delete{
					TableName: &s.tables.Pipelines, Key: itemKey(pk, old),
				}})
			}
		}
		_, err = s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return nil
		}
		if conditionFailures(err) == nil && !transactionConflict(err) {
			return classify(err)
		}
		// Another put of the same record moved it meanwhile: read again.
	}
	return forgelink.Errorf(forgelink.Transient, "too many concurrent puts of the delivery record")
}

// ListDeliveryRecords returns the project's records newest first (by
// ReceivedAt) and the next page's token. A token this store did not hand
// out is Invalid.
func (s *Store) ListDeliveryRecords(ctx context.Context, project forgelink.Slug, page forgelink.Page) ([]*forgelink.DeliveryRecord, string, error) {
	items, next, err := s.queryNewest(ctx, projectKey(project), deliverySKPrefix, page, validDeliverySK)
	if err != nil {
		return nil, "", fmt.Errorf("dynamo: list delivery records of %s: %w", project, err)
	}
	rs := make([]*forgelink.DeliveryRecord, 0, len(items))
	for _, item := range items {
		var r forgelink.DeliveryRecord
		if err := json.Unmarshal([]byte(str(item, attrBody)), &r); err != nil {
			return nil, "", fmt.Errorf("dynamo: list delivery records of %s: decode %s: %w", project, str(item, attrSK), err)
		}
		rs = append(rs, &r)
	}
	return rs, next, nil
}

// branchKey is the key of the branch's open-PR item.
func branchKey(project forgelink.Slug, branch string) map[string]types.AttributeValue {
	return itemKey(projectKey(project), branchSKPrefix+branch)
}

// OpenPRs returns the numbers, ascending, of the open pull requests whose
// head is branch, and known=false when the index has never heard of the
// branch.
func (s *Store) OpenPRs(ctx context.Context, project forgelink.Slug, branch string) ([]int, bool, error) {
	prs, known, err := s.openPRs(ctx, project, branch)
	if err != nil {
		return nil, false, fmt.Errorf("dynamo: open prs of %s %s: %w", project, branch, err)
	}
	return prs, known, nil
}

func (s *Store) openPRs(ctx context.Context, project forgelink.Slug, branch string) ([]int, bool, error) {
	if branch == "" {
		return nil, false, forgelink.Errorf(forgelink.Invalid, "empty branch name")
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.tables.Pipelines,
		Key:            branchKey(project, branch),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, false, classify(err)
	}
	if out.Item == nil {
		return nil, false, nil
	}
	var prs []int
	if set, ok := out.Item[attrPRs].(*types.AttributeValueMemberNS); ok {
		for _, v := range set.Value {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, false, fmt.Errorf("decode open prs: %w", err)
			}
			prs = append(prs, n)
		}
	}
	slices.Sort(prs)
	return prs, true, nil
}

// validPR rejects a number no pull request has.
func validPR(pr int) error {
	if pr <= 0 {
		return forgelink.Errorf(forgelink.Invalid, "invalid pull request number %d", pr)
	}
	return nil
}

// SetPROpen records that pull request pr (head branch) is open or not. It
// makes the branch known. One UpdateItem adds pr to or deletes it from the
// branch's number set, so concurrent calls do not lose each other's work;
// DynamoDB drops the set when its last number goes.
func (s *Store) SetPROpen(ctx context.Context, project forgelink.Slug, branch string, pr int, open bool) error {
	err := s.setPROpen(ctx, project, branch, pr, open)
	if err != nil {
		return fmt.Errorf("dynamo: set pr %d of %s %s open=%t: %w", pr, project, branch, open, err)
	}
	return nil
}

func (s *Store) setPROpen(ctx context.Context, project forgelink.Slug, branch string, pr int, open bool) error {
	if branch == "" {
		return forgelink.Errorf(forgelink.Invalid, "empty branch name")
	}
	if err := validPR(pr); err != nil {
		return err
	}
	action := "DELETE"
	if open {
		action = "ADD"
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.tables.Pipelines,
		Key:                      branchKey(project, branch),
		UpdateExpression:         aws.String("SET #known = :known " + action + " #prs :pr"),
		ExpressionAttributeNames: map[string]string{"#known": attrKnown, "#prs": attrPRs},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":known": &types.AttributeValueMemberBOOL{Value: true},
			":pr":    &types.AttributeValueMemberNS{Value: []string{strconv.Itoa(pr)}},
		},
	})
	return classify(err)
}

// SetOpenPRs replaces the branch's open PRs and makes the branch known,
// even with none.
func (s *Store) SetOpenPRs(ctx context.Context, project forgelink.Slug, branch string, prs []int) error {
	err := s.setOpenPRs(ctx, project, branch, prs)
	if err != nil {
		return fmt.Errorf("dynamo: set open prs of %s %s: %w", project, branch, err)
	}
	return nil
}

func (s *Store) setOpenPRs(ctx context.Context, project forgelink.Slug, branch string, prs []int) error {
	if branch == "" {
		return forgelink.Errorf(forgelink.Invalid, "empty branch name")
	}
	item := branchKey(project, branch)
	item[attrKnown] = &types.AttributeValueMemberBOOL{Value: true}
	var set []string
	for _, pr := range slices.Compact(slices.Sorted(slices.Values(prs))) {
		if err := validPR(pr); err != nil {
			return err
		}
		set = append(set, strconv.Itoa(pr))
	}
	if len(set) > 0 {
		// A set cannot be empty: no PRs is no attribute.
		item[attrPRs] = &types.AttributeValueMemberNS{Value: set}
	}
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.tables.Pipelines, Item: item})
	return classify(err)
}
