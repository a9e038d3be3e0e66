package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"forgelink/shared/forgelink"
)

var _ forgelink.StatusStore = (*Store)(nil)

// postedStatusSK is the range key of a posted status's item in the
// pipelines table (see the key layout in pipelines.go).
const postedStatusSK = "status"

// postedStatusKey is the key of the posted status of (project, revision,
// statusContext).
func postedStatusKey(project, revision, statusContext string) map[string]types.AttributeValue {
	return itemKey("status#"+keyPart(project)+"#"+keyPart(revision)+"#"+keyPart(statusContext), postedStatusSK)
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
// statusContext), or NotFound. Its Version is the version attribute, which
// PutPostedStatus's condition checks.
func (s *Store) GetPostedStatus(ctx context.Context, project forgelink.Slug, revision, statusContext string) (*forgelink.PostedStatus, error) {
	ps, err := s.getPostedStatus(ctx, project, revision, statusContext)
	if err != nil {
		return nil, fmt.Errorf("dynamo: get posted status %s %s %q: %w", project, revision, statusContext, err)
	}
	return ps, nil
}

func (s *Store) getPostedStatus(ctx context.Context, project forgelink.Slug, revision, statusContext string) (*forgelink.PostedStatus, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.tables.Pipelines,
		Key:            postedStatusKey(project.String(), revision, statusContext),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, classify(err)
	}
	if out.Item == nil {
		return nil, forgelink.Errorf(forgelink.NotFound, "no posted status for %s at %s, context %q", project, revision, statusContext)
	}
	var ps forgelink.PostedStatus
	if err := json.Unmarshal([]byte(str(out.Item, attrBody)), &ps); err != nil {
		return nil, fmt.Errorf("decode posted status: %w", err)
	}
	if ps.Version, err = num(out.Item, attrVersion); err != nil {
		return nil, fmt.Errorf("decode posted status: %w", err)
	}
	return &ps, nil
}

// PutPostedStatus stores ps if the stored Version equals ps.Version (0:
// none stored), then increments ps.Version; otherwise it returns a
// Conflict. One conditional PutItem decides, so of concurrent callers
// from the same Version exactly one wins. A status without a valid
// project, a revision or a context is Invalid.
func (s *Store) PutPostedStatus(ctx context.Context, ps *forgelink.PostedStatus) error {
	err := s.putPostedStatus(ctx, ps)
	if err != nil {
		return fmt.Errorf("dynamo: put posted status %s %s %q: %w", ps.Project, ps.Revision, ps.Context, err)
	}
	return nil
}

func (s *Store) putPostedStatus(ctx context.Context, ps *forgelink.PostedStatus) error {
	slug, err := validPostedStatus(ps)
	if err != nil {
		return err
	}
	rec := *ps
	rec.Project = slug.String()
	rec.Version++
	body, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("encode posted status: %w", err)
	}
	item := postedStatusKey(rec.Project, rec.Revision, rec.Context)
	item[attrBody] = strValue(string(body))
	item[attrVersion] = numValue(rec.Version)
	in := &dynamodb.PutItemInput{
		TableName:           &s.tables.Pipelines,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	}
	if ps.Version != 0 {
		in.ConditionExpression = aws.String("#version = :version")
		in.ExpressionAttributeNames = map[string]string{"#version": attrVersion}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":version": numValue(ps.Version)}
	}
	_, err = s.client.PutItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return forgelink.E(forgelink.Conflict, fmt.Sprintf("posted status of %s at %s, context %q, changed meanwhile", rec.Project, rec.Revision, rec.Context), err)
	}
	if err != nil {
		return classify(err)
	}
	ps.Version = rec.Version
	return nil
}

// UpdatePipelineStatus replaces the stored pipeline's Status,
// WorkflowStatus and StatusErrors with p's if its StatusVersion equals
// p.StatusVersion, and increments both; the rest of the pipeline stays as
// stored. Conflict when the version moved, NotFound for an unknown id.
//
// It reads the pointer and the pipeline item, then writes the new body
// with one UpdateItem conditional on the item's sv attribute, so of
// concurrent callers from the same StatusVersion exactly one wins.
func (s *Store) UpdatePipelineStatus(ctx context.Context, p *forgelink.Pipeline) error {
	v, err := s.updatePipelineStatus(ctx, p)
	if err != nil {
		return fmt.Errorf("dynamo: update status of pipeline %s: %w", p.ID, err)
	}
	p.StatusVersion = v
	return nil
}

func (s *Store) updatePipelineStatus(ctx context.Context, p *forgelink.Pipeline) (int64, error) {
	conflict := fmt.Sprintf("status of pipeline %s changed meanwhile", p.ID)
	loc, err := s.pointer(ctx, p.ID)
	if err != nil {
		return 0, err
	}
	key, item, err := s.locatedItem(ctx, loc)
	if err != nil {
		return 0, err
	}
	stored, err := decodePipeline([]byte(str(item, attrBody)))
	if err != nil {
		return 0, err
	}
	// The attribute is what the condition checks; absent means 0.
	stored.StatusVersion = 0
	if _, ok := item[attrStatusV]; ok {
		if stored.StatusVersion, err = num(item, attrStatusV); err != nil {
			return 0, fmt.Errorf("decode pipeline: %w", err)
		}
	}
	if stored.StatusVersion != p.StatusVersion {
		return 0, forgelink.Errorf(forgelink.Conflict, "%s", conflict)
	}
	stored.Status = p.Status
	stored.WorkflowStatus = p.WorkflowStatus
	stored.StatusErrors = p.StatusErrors
	stored.StatusVersion++
	body, err := json.Marshal(stored)
	if err != nil {
		return 0, fmt.Errorf("encode pipeline: %w", err)
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                 &s.tables.Pipelines,
		Key:                       key,
		UpdateExpression:          aws.String("SET #body = :body, #sv = :sv"),
		ConditionExpression:       aws.String("attribute_exists(pk) AND attribute_not_exists(#sv)"),
		ExpressionAttributeNames:  map[string]string{"#body": attrBody, "#sv": attrStatusV},
		ExpressionAttributeValues: map[string]types.AttributeValue{":body": strValue(string(body)), ":sv": numValue(stored.StatusVersion)},
	}
	if p.StatusVersion != 0 {
		in.ConditionExpression = aws.String("#sv = :old")
		in.ExpressionAttributeValues[":old"] = numValue(p.StatusVersion)
	}
	_, err = s.client.UpdateItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return 0, forgelink.E(forgelink.Conflict, conflict, err)
	}
	if err != nil {
		return 0, classify(err)
	}
	return stored.StatusVersion, nil
}
