package dynamo

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"forgelink/shared/forgelink"
)

var _ forgelink.UserStore = (*Store)(nil)

// The users table (Tables.Users) holds, by (pk, sk):
//
//	user#<id>       user                  a forgelink.User (body) and its Version (version),
//	                                      the condition of UpdateUser
//	user#<id>       token#<created>#<id>  a copy of one of the user's API tokens (body), so
//	                                      one Query lists them oldest first
//	token#<hash>    token                 an API token (body) and its user (user_id)
//	token-id#<id>   token                 the token's hash (hash), user (user_id) and the
//	                                      sk of its copy (index_sk): ids are unique, and
//	                                      DeleteAPIToken finds the token with one read
//	session#<hash>  session               a forgelink.Session (body) and its exact expiry
//	                                      (expires_ns), which wins over the body's
//	state#<hash>    state                 an OAuth state and its exact expiry (expires_ns)
//
// Sessions and states also carry the TTL attribute expires_at, their
// expiry in epoch seconds rounded up, so DynamoDB never deletes one early.
// It deletes them late, though, so reads and conditions compare the exact
// expiry themselves. A token's three items are written and deleted in one
// transaction. Key parts are escaped (see keyPart); created is UTC with
// nine fraction digits, so the sort keys sort by time.
const (
	userSK          = "user"
	userTokenPrefix = "token#"
	tokenSK         = "token"
	sessionSK       = "session"
	stateSK         = "state"
	attrUserID      = "user_id"    // token and token-id items: the token's user
	attrHash        = "hash"       // token-id item: the token's hash
	attrIndexSK     = "index_sk"   // token-id item: the sk of the user's copy
	attrExpiresNS   = "expires_ns" // session and state: the exact expiry, epoch nanoseconds
)

func userPK(id string) string      { return "user#" + keyPart(id) }
func tokenPK(hash string) string   { return "token#" + keyPart(hash) }
func tokenIDPK(id string) string   { return "token-id#" + keyPart(id) }
func sessionPK(hash string) string { return "session#" + keyPart(hash) }
func statePK(hash string) string   { return "state#" + keyPart(hash) }

// userTokenSK is the sk of t's copy in its user's partition.
func userTokenSK(t *forgelink.APIToken) string {
	return userTokenPrefix + t.CreatedAt.UTC().Format(receivedLayout) + "#" + keyPart(t.ID)
}

// ttlSeconds is t in epoch seconds, rounded up: the TTL attribute of an
// item that expires at t.
func ttlSeconds(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// isConditionFailed reports whether err is a failed condition of a
// single-item write.
func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// PutUser stores u, creating it or replacing the stored user whatever its
// Version, and sets u.Version to the stored version: one more than the
// replaced user's, or 1. One UpdateItem does both, so concurrent puts and
// updates each see a version of their own.
func (s *Store) PutUser(ctx context.Context, u *forgelink.User) error {
	if u.ID == "" {
		return fmt.Errorf("dynamo: put user: %w", forgelink.Errorf(forgelink.Invalid, "user has no id"))
	}
	rec := *u
	rec.Version = 0 // the version attribute is the truth
	body, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("dynamo: put user %s: %w", u.ID, err)
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.tables.Users,
		Key:                       itemKey(userPK(u.ID), userSK),
		UpdateExpression:          aws.String("SET #body = :body, #version = if_not_exists(#version, :zero) + :one"),
		ExpressionAttributeNames:  map[string]string{"#body": attrBody, "#version": attrVersion},
		ExpressionAttributeValues: map[string]types.AttributeValue{":body": strValue(string(body)), ":zero": numValue(0), ":one": numValue(1)},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return fmt.Errorf("dynamo: put user %s: %w", u.ID, classify(err))
	}
	v, err := num(out.Attributes, attrVersion)
	if err != nil {
		return fmt.Errorf("dynamo: put user %s: %w", u.ID, err)
	}
	u.Version = v
	return nil
}

// GetUser returns the user, or NotFound.
func (s *Store) GetUser(ctx context.Context, id string) (*forgelink.User, error) {
	u, err := s.getUser(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("dynamo: get user %s: %w", id, err)
	}
	return u, nil
}

func (s *Store) getUser(ctx context.Context, id string) (*forgelink.User, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.tables.Users,
		Key:            itemKey(userPK(id), userSK),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, classify(err)
	}
	if out.Item == nil {
		return nil, forgelink.Errorf(forgelink.NotFound, "user %s not found", id)
	}
	var u forgelink.User
	if err := json.Unmarshal([]byte(str(out.Item, attrBody)), &u); err != nil {
		return nil, fmt.Errorf("decode user: %w", err)
	}
	if u.Version, err = num(out.Item, attrVersion); err != nil {
		return nil, fmt.Errorf("decode user: %w", err)
	}
	return &u, nil
}

// UpdateUser replaces the user if its stored Version equals u.Version,
// then increments u.Version. It returns NotFound when the user is absent
// and Conflict when it changed meanwhile. One conditional PutItem decides,
// so of concurrent callers from the same Version exactly one wins.
func (s *Store) UpdateUser(ctx context.Context, u *forgelink.User) error {
	if u.ID == "" {
		return fmt.Errorf("dynamo: update user: %w", forgelink.Errorf(forgelink.Invalid, "user has no id"))
	}
	rec := *u
	rec.Version++
	body, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("dynamo: update user %s: %w", u.ID, err)
	}
	item := itemKey(userPK(u.ID), userSK)
	item[attrBody] = strValue(string(body))
	item[attrVersion] = numValue(rec.Version)
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 &s.tables.Users,
		Item:                      item,
		ConditionExpression:       aws.String("attribute_exists(pk) AND #version = :version"),
		ExpressionAttributeNames:  map[string]string{"#version": attrVersion},
		ExpressionAttributeValues: map[string]types.AttributeValue{":version": numValue(u.Version)},
	})
	if isConditionFailed(err) {
		// Say which condition failed, from the user as it is now.
		_, gerr := s.getUser(ctx, u.ID)
		switch {
		case forgelink.KindOf(gerr) == forgelink.NotFound:
			err = forgelink.E(forgelink.NotFound, fmt.Sprintf("user %s not found", u.ID), err)
		case gerr != nil:
			err = gerr
		default:
			err = forgelink.E(forgelink.Conflict, fmt.Sprintf("user %s changed meanwhile", u.ID), err)
		}
	}
	if err != nil {
		return fmt.Errorf("dynamo: update user %s: %w", u.ID, classify(err))
	}
	u.Version = rec.Version
	return nil
}

// putNewUserItem writes item to the users table unless its key exists;
// a lost condition is conflict.
func (s *Store) putNewUserItem(ctx context.Context, item map[string]types.AttributeValue, conflict string) error {
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &s.tables.Users,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if isConditionFailed(err) {
		return forgelink.E(forgelink.Conflict, conflict, err)
	}
	return classify(err)
}

// expiresAt returns the exact expiry in item's expires_ns.
func expiresAt(item map[string]types.AttributeValue) (time.Time, error) {
	ns, err := num(item, attrExpiresNS)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, ns).UTC(), nil
}

// validExpiry rejects an expiry that expires_ns cannot hold.
func validExpiry(t time.Time) error {
	if t.IsZero() || t.Year() < 1970 || t.Year() > 2261 {
		return forgelink.Errorf(forgelink.Invalid, "expiry time %v out of range", t)
	}
	return nil
}

// CreateSession stores sess, or returns a Conflict when its hash exists.
func (s *Store) CreateSession(ctx context.Context, sess *forgelink.Session) error {
	if sess.Hash == "" || sess.UserID == "" {
		return fmt.Errorf("dynamo: create session: %w", forgelink.Errorf(forgelink.Invalid, "session needs a hash, a user id and an expiry time"))
	}
	if err := validExpiry(sess.ExpiresAt); err != nil {
		return fmt.Errorf("dynamo: create session of user %s: %w", sess.UserID, err)
	}
	body, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("dynamo: create session of user %s: %w", sess.UserID, err)
	}
	item := itemKey(sessionPK(sess.Hash), sessionSK)
	item[attrBody] = strValue(string(body))
	item[attrExpiresNS] = numValue(sess.ExpiresAt.UnixNano())
	item[attrExpiresAt] = numValue(ttlSeconds(sess.ExpiresAt))
	if err := s.putNewUserItem(ctx, item, "session exists"); err != nil {
		return fmt.Errorf("dynamo: create session of user %s: %w", sess.UserID, err)
	}
	return nil
}

// GetSession returns the session with this hash, or Unauthorized when
// there is none or it has expired at now (on its exact expiry, whatever
// DynamoDB's TTL has deleted yet).
func (s *Store) GetSession(ctx context.Context, hash string, now time.Time) (*forgelink.Session, error) {
	refused := forgelink.Errorf(forgelink.Unauthorized, "invalid or expired session")
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.tables.Users,
		Key:            itemKey(sessionPK(hash), sessionSK),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("dynamo: get session: %w", classify(err))
	}
	if out.Item == nil {
		return nil, fmt.Errorf("dynamo: get session: %w", refused)
	}
	var sess forgelink.Session
	if err := json.Unmarshal([]byte(str(out.Item, attrBody)), &sess); err != nil {
		return nil, fmt.Errorf("dynamo: get session: decode: %w", err)
	}
	if sess.ExpiresAt, err = expiresAt(out.Item); err != nil {
		return nil, fmt.Errorf("dynamo: get session: decode: %w", err)
	}
	if !now.Before(sess.ExpiresAt) {
		return nil, fmt.Errorf("dynamo: get session: %w", refused)
	}
	return &sess, nil
}

// ExtendSession sets the session's expiry, or returns NotFound when it is
// gone. It updates the expiry attributes in place, conditional on the
// item, so it never brings back a deleted session.
func (s *Store) ExtendSession(ctx context.Context, hash string, expires time.Time) error {
	if err := validExpiry(expires); err != nil {
		return fmt.Errorf("dynamo: extend session: %w", err)
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.tables.Users,
		Key:                       itemKey(sessionPK(hash), sessionSK),
		UpdateExpression:          aws.String("SET #ns = :ns, #ttl = :ttl"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeNames:  map[string]string{"#ns": attrExpiresNS, "#ttl": attrExpiresAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":ns": numValue(expires.UnixNano()), ":ttl": numValue(ttlSeconds(expires))},
	})
	if isConditionFailed(err) {
		err = forgelink.E(forgelink.NotFound, "session not found", err)
	}
	if err != nil {
		return fmt.Errorf("dynamo: extend session: %w", classify(err))
	}
	return nil
}

// DeleteSession removes the session; a missing one is not an error.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &s.tables.Users,
		Key:       itemKey(sessionPK(hash), sessionSK),
	})
	if err != nil {
		return fmt.Errorf("dynamo: delete session: %w", classify(err))
	}
	return nil
}

// CreateAPIToken stores t, its user's copy and its id in one transaction,
// or returns a Conflict when its hash or its id exists.
func (s *Store) CreateAPIToken(ctx context.Context, t *forgelink.APIToken) error {
	if t.ID == "" || t.Hash == "" || t.UserID == "" {
		return fmt.Errorf("dynamo: create api token: %w", forgelink.Errorf(forgelink.Invalid, "api token needs an id, a hash and a user id"))
	}
	body, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("dynamo: create api token %s of user %s: %w", t.ID, t.UserID, err)
	}
	token := itemKey(tokenPK(t.Hash), tokenSK)
	token[attrBody] = strValue(string(body))
	token[attrUserID] = strValue(t.UserID)
	indexSK := userTokenSK(t)
	copied := itemKey(userPK(t.UserID), indexSK)
	copied[attrBody] = strValue(string(body))
	id := itemKey(tokenIDPK(t.ID), tokenSK)
	id[attrHash] = strValue(t.Hash)
	id[attrUserID] = strValue(t.UserID)
	id[attrIndexSK] = strValue(indexSK)
	notExists := aws.String("attribute_not_exists(pk)")
	err = s.transactWrite(ctx, []types.TransactWriteItem{
		{Put: &types.Put{TableName: &s.tables.Users, Item: token, ConditionExpression: notExists}},
		{Put: &types.Put{TableName: &s.tables.Users, Item: id, ConditionExpression: notExists}},
		{Put: &types.Put{TableName: &s.tables.Users, Item: copied, ConditionExpression: notExists}},
	})
	if reasons := conditionFailures(err); reasons != nil {
		msg := "api token exists"
		if !reasons[0] {
			msg = fmt.Sprintf("api token id %s is in use", t.ID)
		}
		err = forgelink.E(forgelink.Conflict, msg, err)
	}
	if err != nil {
		return fmt.Errorf("dynamo: create api token %s of user %s: %w", t.ID, t.UserID, classify(err))
	}
	return nil
}

// GetAPIToken returns the token with this hash, or Unauthorized.
func (s *Store) GetAPIToken(ctx context.Context, hash string) (*forgelink.APIToken, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.tables.Users,
		Key:            itemKey(tokenPK(hash), tokenSK),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("dynamo: get api token: %w", classify(err))
	}
	if out.Item == nil {
		return nil, fmt.Errorf("dynamo: get api token: %w", forgelink.Errorf(forgelink.Unauthorized, "invalid api token"))
	}
	var t forgelink.APIToken
	if err := json.Unmarshal([]byte(str(out.Item, attrBody)), &t); err != nil {
		return nil, fmt.Errorf("dynamo: get api token: decode: %w", err)
	}
	return &t, nil
}

// ListAPITokens returns the user's tokens, oldest first (then by id), from
// the copies in the user's partition: one consistent Query per page.
func (s *Store) ListAPITokens(ctx context.Context, userID string) ([]*forgelink.APIToken, error) {
	in := &dynamodb.QueryInput{
		TableName:                 &s.tables.Users,
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :prefix)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": strValue(userPK(userID)), ":prefix": strValue(userTokenPrefix)},
		ConsistentRead:            aws.Bool(true),
	}
	var bodies []string
	for {
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamo: list api tokens of user %s: %w", userID, classify(err))
		}
		for _, item := range out.Items {
			bodies = append(bodies, str(item, attrBody))
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	tokens, err := decodeAll[forgelink.APIToken](bodies)
	if err != nil {
		return nil, fmt.Errorf("dynamo: list api tokens of user %s: %w", userID, err)
	}
	// The sort keys order by time already; escaping may reorder equal times.
	slices.SortStableFunc(tokens, func(a, b *forgelink.APIToken) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return tokens, nil
}

// DeleteAPIToken removes the user's token id, its copy and its id in one
// transaction, or returns NotFound when the user has no such token. The
// transaction is conditional on the id item read first; if that changed
// meanwhile, it reads again.
func (s *Store) DeleteAPIToken(ctx context.Context, userID, id string) error {
	err := s.deleteAPIToken(ctx, userID, id)
	if err != nil {
		return fmt.Errorf("dynamo: delete api token %s of user %s: %w", id, userID, err)
	}
	return nil
}

func (s *Store) deleteAPIToken(ctx context.Context, userID, id string) error {
	notFound := forgelink.Errorf(forgelink.NotFound, "user %s has no api token %s", userID, id)
	var err error
	for range deleteAttempts {
		out, gerr := s.client.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      &s.tables.Users,
			Key:            itemKey(tokenIDPK(id), tokenSK),
			ConsistentRead: aws.Bool(true),
		})
		if gerr != nil {
			return classify(gerr)
		}
		if out.Item == nil || str(out.Item, attrUserID) != userID {
			return notFound
		}
		hash, indexSK := str(out.Item, attrHash), str(out.Item, attrIndexSK)
		mine := aws.String("#uid = :uid")
		names := map[string]string{"#uid": attrUserID}
		values := map[string]types.AttributeValue{":uid": strValue(userID)}
		err = s.transactWrite(ctx, []types.TransactWriteItem{
			{Delete: &types.Delete{
				TableName:                 &s.tables.Users,
				Key:                       itemKey(tokenIDPK(id), tokenSK),
				ConditionExpression:       aws.String("#uid = :uid AND #hash = :hash"),
				ExpressionAttributeNames:  map[string]string{"#uid": attrUserID, "#hash": attrHash},
				ExpressionAttributeValues: map[string]types.AttributeValue{":uid": strValue(userID), ":hash": strValue(hash)},
			}},
			{Delete: &types.Delete{
				TableName:                 &s.tables.Users,
				Key:                       itemKey(tokenPK(hash), tokenSK),
				ConditionExpression:       mine,
				ExpressionAttributeNames:  names,
				ExpressionAttributeValues: values,
			}},
			{Delete: &types.Delete{
				TableName:           &s.tables.Users,
				Key:                 itemKey(userPK(userID), indexSK),
				ConditionExpression: aws.String("attribute_exists(pk)"),
			}},
		})
		if conditionFailures(err) == nil {
			return classify(err)
		}
		// Deleted, or deleted and created again, since the read: read again.
	}
	return classify(err)
}

// CreateOAuthState stores the state's hash until expiresAt, or returns a
// Conflict when the hash exists.
func (s *Store) CreateOAuthState(ctx context.Context, hash string, expires time.Time) error {
	if hash == "" {
		return fmt.Errorf("dynamo: create oauth state: %w", forgelink.Errorf(forgelink.Invalid, "oauth state needs a hash and an expiry time"))
	}
	if err := validExpiry(expires); err != nil {
		return fmt.Errorf("dynamo: create oauth state: %w", err)
	}
	item := itemKey(statePK(hash), stateSK)
	item[attrExpiresNS] = numValue(expires.UnixNano())
	item[attrExpiresAt] = numValue(ttlSeconds(expires))
	if err := s.putNewUserItem(ctx, item, "oauth state exists"); err != nil {
		return fmt.Errorf("dynamo: create oauth state: %w", err)
	}
	return nil
}

// ConsumeOAuthState deletes the state with this hash if it has not
// expired at now, or returns Unauthorized. One conditional DeleteItem
// decides, so of concurrent callers exactly one succeeds. The condition
// compares the exact expiry, not the TTL attribute's seconds; a refused
// state is left for the TTL.
func (s *Store) ConsumeOAuthState(ctx context.Context, hash string, now time.Time) error {
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &s.tables.Users,
		Key:                       itemKey(statePK(hash), stateSK),
		ConditionExpression:       aws.String("attribute_exists(pk) AND #ns > :now"),
		ExpressionAttributeNames:  map[string]string{"#ns": attrExpiresNS},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": numValue(now.UnixNano())},
	})
	if isConditionFailed(err) {
		err = forgelink.E(forgelink.Unauthorized, "invalid, used or expired oauth state", err)
	}
	if err != nil {
		return fmt.Errorf("dynamo: consume oauth state: %w", classify(err))
	}
	return nil
}
