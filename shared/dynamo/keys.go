package dynamo

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"forgelink/shared/forgelink"
)

var _ forgelink.KeyStore = (*Store)(nil)

// The keys table (Tables.Keys) holds, by (pk, sk):
//
//	project#<slug>  checkout#<fingerprint>          a checkout key
//	project#<slug>  ssh#<fingerprint>#<hostname>    an additional SSH key
//	runner#<hash>   token                           a runner token, with the TTL attribute expires_at
//	                                                and executor (true for an Executor token)
//
// A project's keys are one partition, read with one consistent Query. An
// MD5 fingerprint has a fixed form without '#', so the SSH key's sort key
// is unambiguous whatever the hostname holds.
const (
	checkoutSKPrefix = "checkout#"
	sshSKPrefix      = "ssh#"
	runnerSK         = "token"
	attrUsed         = "used"     // runner token: consumed
	attrExecutor     = "executor" // runner token: an Executor token, which is never consumed
)

func keysPK(project forgelink.Slug) string { return "project#" + project.String() }
func runnerPK(hash string) string          { return "runner#" + hash }
func sshSK(hostname, fingerprint string) string {
	return sshSKPrefix + fingerprint + "#" + hostname
}

func keyItem(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: strValue(pk), attrSK: strValue(sk)}
}

// putNew writes item unless its key exists; a lost condition is conflict.
func (s *Store) putNew(ctx context.Context, item map[string]types.AttributeValue, conflict error) error {
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &s.tables.Keys,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return forgelink.E(forgelink.Conflict, conflict.Error(), err)
	}
	return classify(err)
}

// deleteExisting deletes the item with the key, or returns notFound.
func (s *Store) deleteExisting(ctx context.Context, pk, sk string, notFound error) error {
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:           &s.tables.Keys,
		Key:                 keyItem(pk, sk),
		ConditionExpression: aws.String("attribute_exists(pk)"),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return forgelink.E(forgelink.NotFound, notFound.Error(), err)
	}
	return classify(err)
}

// queryBodies returns the bodies of the items in partition pk whose sort
// key starts with prefix, following every page.
func (s *Store) queryBodies(ctx context.Context, pk, prefix string) ([]string, error) {
	in := &dynamodb.QueryInput{
		TableName:                 &s.tables.Keys,
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :prefix)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": strValue(pk), ":prefix": strValue(prefix)},
		ConsistentRead:            aws.Bool(true),
	}
	var bodies []string
	for {
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, classify(err)
		}
		for _, item := range out.Items {
			bodies = append(bodies, str(item, attrBody))
		}
		if len(out.LastEvaluatedKey) == 0 {
			return bodies, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// decodeAll decodes JSON bodies into new values of T.
func decodeAll[T any](bodies []string) ([]*T, error) {
	out := make([]*T, 0, len(bodies))
	for _, b := range bodies {
		v := new(T)
		if err := json.Unmarshal([]byte(b), v); err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		out = append(out, v)
	}
	return out, nil
}

// CreateCheckoutKey stores k unless its project has a checkout key with
// its fingerprint, in which case it returns a Conflict.
func (s *Store) CreateCheckoutKey(ctx context.Context, k *forgelink.CheckoutKey) error {
	if err := validKeyName(k.FingerprintMD5); err != nil {
		return fmt.Errorf("dynamo: create checkout key of %s: %w", k.Project, err)
	}
	body, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("dynamo: create checkout key %s of %s: %w", k.FingerprintMD5, k.Project, err)
	}
	item := keyItem(keysPK(k.Project), checkoutSKPrefix+k.FingerprintMD5)
	item[attrBody] = strValue(string(body))
	err = s.putNew(ctx, item, fmt.Errorf("project %s already has checkout key %s", k.Project, k.FingerprintMD5))
	if err != nil {
		return fmt.Errorf("dynamo: create checkout key %s of %s: %w", k.FingerprintMD5, k.Project, err)
	}
	return nil
}

// ListCheckoutKeys returns the project's checkout keys, oldest first.
func (s *Store) ListCheckoutKeys(ctx context.Context, project forgelink.Slug) ([]*forgelink.CheckoutKey, error) {
	bodies, err := s.queryBodies(ctx, keysPK(project), checkoutSKPrefix)
	if err != nil {
		return nil, fmt.Errorf("dynamo: list checkout keys of %s: %w", project, err)
	}
	keys, err := decodeAll[forgelink.CheckoutKey](bodies)
	if err != nil {
		return nil, fmt.Errorf("dynamo: list checkout keys of %s: %w", project, err)
	}
	slices.SortStableFunc(keys, func(a, b *forgelink.CheckoutKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.FingerprintMD5, b.FingerprintMD5))
	})
	return keys, nil
}

// DeleteCheckoutKey removes a checkout key, or returns NotFound.
func (s *Store) DeleteCheckoutKey(ctx context.Context, project forgelink.Slug, fingerprint string) error {
	notFound := forgelink.Errorf(forgelink.NotFound, "project %s has no checkout key %s", project, fingerprint)
	err := notFound
	if validKeyName(fingerprint) == nil {
		err = s.deleteExisting(ctx, keysPK(project), checkoutSKPrefix+fingerprint, notFound)
	}
	if err != nil {
		return fmt.Errorf("dynamo: delete checkout key %s of %s: %w", fingerprint, project, err)
	}
	return nil
}

// CreateSSHKey stores k unless its project has a key with its (hostname,
// fingerprint), in which case it returns a Conflict.
func (s *Store) CreateSSHKey(ctx context.Context, k *forgelink.SSHKeyRecord) error {
	if err := validKeyName(k.FingerprintMD5); err != nil {
		return fmt.Errorf("dynamo: create ssh key of %s: %w", k.Project, err)
	}
	body, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("dynamo: create ssh key %s of %s: %w", k.FingerprintMD5, k.Project, err)
	}
	item := keyItem(keysPK(k.Project), sshSK(k.Hostname, k.FingerprintMD5))
	item[attrBody] = strValue(string(body))
	err = s.putNew(ctx, item, fmt.Errorf("project %s already has ssh key %s for host %q", k.Project, k.FingerprintMD5, k.Hostname))
	if err != nil {
		return fmt.Errorf("dynamo: create ssh key %s of %s: %w", k.FingerprintMD5, k.Project, err)
	}
	return nil
}

// ListSSHKeys returns the project's additional SSH keys, oldest first.
func (s *Store) ListSSHKeys(ctx context.Context, project forgelink.Slug) ([]*forgelink.SSHKeyRecord, error) {
	bodies, err := s.queryBodies(ctx, keysPK(project), sshSKPrefix)
	if err != nil {
		return nil, fmt.Errorf("dynamo: list ssh keys of %s: %w", project, err)
	}
	keys, err := decodeAll[forgelink.SSHKeyRecord](bodies)
	if err != nil {
		return nil, fmt.Errorf("dynamo: list ssh keys of %s: %w", project, err)
	}
	slices.SortStableFunc(keys, func(a, b *forgelink.SSHKeyRecord) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.Hostname, b.Hostname), cmp.Compare(a.FingerprintMD5, b.FingerprintMD5))
	})
	return keys, nil
}

// DeleteSSHKey removes an additional SSH key, or returns NotFound.
func (s *Store) DeleteSSHKey(ctx context.Context, project forgelink.Slug, hostname, fingerprint string) error {
	notFound := forgelink.Errorf(forgelink.NotFound, "project %s has no ssh key %s for host %q", project, fingerprint, hostname)
	err := notFound
	if validKeyName(fingerprint) == nil {
		err = s.deleteExisting(ctx, keysPK(project), sshSK(hostname, fingerprint), notFound)
	}
	if err != nil {
		return fmt.Errorf("dynamo: delete ssh key %s of %s: %w", fingerprint, project, err)
	}
	return nil
}

// validKeyName rejects a fingerprint that cannot be part of a sort key.
func validKeyName(fingerprint string) error {
	if fingerprint == "" || strings.Contains(fingerprint, "#") {
		return forgelink.Errorf(forgelink.Invalid, "invalid key fingerprint %q", fingerprint)
	}
	return nil
}

// MintRunnerTokens stores the tokens all or none: one conditional PutItem
// for one token, one transaction for more; Conflict when a token with one
// of their hashes exists. expires_at, in epoch seconds, lets DynamoDB's
// TTL delete them later.
func (s *Store) MintRunnerTokens(ctx context.Context, ts ...*forgelink.RunnerToken) error {
	if err := forgelink.ValidRunnerTokens(ts); err != nil {
		return fmt.Errorf("dynamo: mint runner tokens: %w", err)
	}
	items := make([]map[string]types.AttributeValue, len(ts))
	for i, t := range ts {
		rec := *t
		rec.Used = false
		body, err := json.Marshal(&rec)
		if err != nil {
			return fmt.Errorf("dynamo: mint runner token for pipeline %s: %w", t.PipelineID, err)
		}
		item := keyItem(runnerPK(t.Hash), runnerSK)
		item[attrBody] = strValue(string(body))
		item[attrUsed] = &types.AttributeValueMemberBOOL{Value: false}
		item[attrExecutor] = &types.AttributeValueMemberBOOL{Value: t.Executor}
		item[attrExpiresAt] = numValue(t.ExpiresAt.Unix())
		items[i] = item
	}
	exists := errors.New("runner token exists")
	var err error
	if len(items) == 1 {
		err = s.putNew(ctx, items[0], exists)
	} else {
		writes := make([]types.TransactWriteItem, len(items))
		for i, item := range items {
			writes[i] = types.TransactWriteItem{Put: &types.Put{
				TableName:           &s.tables.Keys,
				Item:                item,
				ConditionExpression: aws.String("attribute_not_exists(pk)"),
			}}
		}
		if err = s.transactWrite(ctx, writes); conditionFailures(err) != nil {
			err = forgelink.E(forgelink.Conflict, exists.Error(), err)
		} else {
			err = classify(err)
		}
	}
	if err != nil {
		return fmt.Errorf("dynamo: mint runner tokens for pipeline %s: %w", ts[0].PipelineID, err)
	}
	return nil
}

// ConsumeRunnerToken marks the token used and returns it, or returns
// Unauthorized when it is unknown, used, expired at now or an Executor
// token. One conditional update decides, so of concurrent callers exactly
// one wins. Expiry is checked to the second, the precision of the TTL
// attribute. A token minted before the executor attribute existed has
// none, and is a checkout token.
func (s *Store) ConsumeRunnerToken(ctx context.Context, hash string, now time.Time) (*forgelink.RunnerToken, error) {
	refused := forgelink.Errorf(forgelink.Unauthorized, "invalid, used or expired runner token")
	if hash == "" {
		return nil, fmt.Errorf("dynamo: consume runner token: %w", refused)
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.tables.Keys,
		Key:                       keyItem(runnerPK(hash), runnerSK),
		UpdateExpression:          aws.String("SET #used = :true"),
		ConditionExpression:       aws.String("attribute_exists(pk) AND #used = :false AND #expires > :now AND (attribute_not_exists(#executor) OR #executor = :false)"),
		ExpressionAttributeNames:  map[string]string{"#used": attrUsed, "#expires": attrExpiresAt, "#executor": attrExecutor},
		ExpressionAttributeValues: map[string]types.AttributeValue{":true": &types.AttributeValueMemberBOOL{Value: true}, ":false": &types.AttributeValueMemberBOOL{Value: false}, ":now": numValue(now.Unix())},
		ReturnValues:              types.ReturnValueAllNew,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		return nil, fmt.Errorf("dynamo: consume runner token: %w", forgelink.E(forgelink.Unauthorized, refused.Error(), err))
	case err != nil:
		return nil, fmt.Errorf("dynamo: consume runner token: %w", classify(err))
	}
	var tok forgelink.RunnerToken
	if err := json.Unmarshal([]byte(str(out.Attributes, attrBody)), &tok); err != nil {
		return nil, fmt.Errorf("dynamo: consume runner token: decode: %w", err)
	}
	tok.Used = true
	return &tok, nil
}

// CheckRunnerToken returns the Executor token with this hash, or returns
// Unauthorized when it is unknown, expired at now or not an Executor
// token. It reads the token consistently and changes nothing, so a token
// checks any number of times. Expiry is checked on the token's own time,
// not the TTL attribute's whole seconds; DynamoDB's TTL deletes the item
// only later.
func (s *Store) CheckRunnerToken(ctx context.Context, hash string, now time.Time) (*forgelink.RunnerToken, error) {
	refused := forgelink.Errorf(forgelink.Unauthorized, "invalid or expired executor token")
	if hash == "" {
		return nil, fmt.Errorf("dynamo: check runner token: %w", refused)
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.tables.Keys,
		Key:            keyItem(runnerPK(hash), runnerSK),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("dynamo: check runner token: %w", classify(err))
	}
	if out.Item == nil {
		return nil, fmt.Errorf("dynamo: check runner token: %w", refused)
	}
	var tok forgelink.RunnerToken
	if err := json.Unmarshal([]byte(str(out.Item, attrBody)), &tok); err != nil {
		return nil, fmt.Errorf("dynamo: check runner token: decode: %w", err)
	}
	if !tok.Executor || !now.Before(tok.ExpiresAt) {
		return nil, fmt.Errorf("dynamo: check runner token: %w", refused)
	}
	return &tok, nil
}
