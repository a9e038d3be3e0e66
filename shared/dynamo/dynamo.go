package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"forgelink/shared/config"
	"forgelink/shared/forgelink"
)

var _ forgelink.Store = (*Store)(nil)

// The logical ids of the tables in template.yaml.
const (
	ProjectsTableID   = "ProjectsTable"
	DeliveriesTableID = "DeliveriesTable"
	PipelinesTableID  = "PipelinesTable"
	KeysTableID       = "KeysTable"
	UsersTableID      = "UsersTable"
)

// The environment variables that name the tables; template.yaml sets them
// on every function.
const (
	ProjectsTableEnv   = "FORGELINK_PROJECTS_TABLE"
	DeliveriesTableEnv = "FORGELINK_DELIVERIES_TABLE"
	PipelinesTableEnv  = "FORGELINK_PIPELINES_TABLE"
	KeysTableEnv       = "FORGELINK_KEYS_TABLE"
	UsersTableEnv      = "FORGELINK_USERS_TABLE"
)

// Tables names the store's tables.
type Tables struct {
	Projects   string // projects and the hook-id index; hash key pk
	Deliveries string // deliveries; hash key pk (hook id), range key sk (delivery id)
	Pipelines  string // pipelines, delivery records, open PRs; hash key pk, range key sk (see pipelines.go)
	Keys       string // checkout keys, SSH keys, runner tokens; hash key pk, range key sk (see keys.go)
	Users      string // users, sessions, API tokens, OAuth states; hash key pk, range key sk (see users.go)
}

// TablesOf returns the table names in cfg.
func TablesOf(cfg *config.Config) Tables {
	return Tables{Projects: cfg.ProjectsTable, Deliveries: cfg.DeliveriesTable, Pipelines: cfg.PipelinesTable, Keys: cfg.KeysTable, Users: cfg.UsersTable}
}

// Names maps the tables' logical ids in template.yaml to t's names, as
// CreateTables wants them.
func (t Tables) Names() map[string]string {
	return map[string]string{ProjectsTableID: t.Projects, DeliveriesTableID: t.Deliveries, PipelinesTableID: t.Pipelines, KeysTableID: t.Keys, UsersTableID: t.Users}
}

// TablesFromEnv reads the table names from FORGELINK_PROJECTS_TABLE,
// FORGELINK_DELIVERIES_TABLE and FORGELINK_PIPELINES_TABLE.
func TablesFromEnv() (Tables, error) {
	var t Tables
	for _, v := range []struct {
		env  string
		dest *string
	}{
		{ProjectsTableEnv, &t.Projects},
		{DeliveriesTableEnv, &t.Deliveries},
		{PipelinesTableEnv, &t.Pipelines},
	} {
		*v.dest = os.Getenv(v.env)
		if *v.dest == "" {
			return Tables{}, fmt.Errorf("dynamo: %s is not set", v.env)
		}
	}
	// Not every function uses the keys and users tables; those that do
	// require them (awsenv.Setup).
	t.Keys = os.Getenv(KeysTableEnv)
	t.Users = os.Getenv(UsersTableEnv)
	return t, nil
}

// NewClient returns a DynamoDB client on cfg (see package awsenv). A
// non-empty endpoint, such as DYNAMODB_ENDPOINT for a local server,
// replaces the AWS endpoint.
func NewClient(cfg aws.Config, endpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
}

// Store is a forgelink.Store on two DynamoDB tables.
//
// The projects table holds two items per project, written together in one
// transaction: "project#<slug>" with the project and "hook#<hookID>" with
// the slug and a copy of the project, so a hook id resolves with one
// consistent read (intake's only read) and cannot be taken twice. The deliveries table is keyed by (hook id, delivery id);
// its TTL attribute expires_at deletes old deliveries, but lazily, so reads
// and conditional writes treat an expired item as absent themselves.
type Store struct {
	client *dynamodb.Client
	tables Tables
	now    func() time.Time
}

// New returns a store on the given tables.
func New(client *dynamodb.Client, tables Tables) *Store {
	return &Store{client: client, tables: tables, now: time.Now}
}

// Attribute names.
const (
	attrPK        = "pk"
	attrSK        = "sk"
	attrBody      = "body"       // the JSON-encoded project or delivery
	attrVersion   = "version"    // project, posted status: Version, for the update condition
	attrHookID    = "hook_id"    // project: HookID, which cannot change
	attrSlug      = "slug"       // hook item: the slug of its project
	attrState     = "state"      // delivery: State, updated in place
	attrExpiresAt = "expires_at" // delivery: the TTL attribute, epoch seconds
)

// deleteAttempts bounds DeleteProject's read-then-delete loop when the
// project changes between the two.
const deleteAttempts = 3

// transactAttempts bounds the tries of a transaction that DynamoDB cancels
// because another transaction on the same items was in flight.
const transactAttempts = 5

func projectKey(slug forgelink.Slug) string { return "project#" + slug.String() }
func hookKey(hookID string) string          { return "hook#" + hookID }

// strValue and numValue return string and number attribute values.
func strValue(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func numValue(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// str returns the string attribute name of item, or "".
func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// num returns the number attribute name of item.
func num(item map[string]types.AttributeValue, name string) (int64, error) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("attribute %s is missing or not a number", name)
	}
	return strconv.ParseInt(v.Value, 10, 64)
}

// projectItem returns the item that stores p.
func projectItem(p *forgelink.Project) (map[string]types.AttributeValue, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode project: %w", err)
	}
	return map[string]types.AttributeValue{
		attrPK:      strValue(projectKey(p.Slug)),
		attrBody:    strValue(string(body)),
		attrVersion: numValue(p.Version),
		attrHookID:  strValue(p.HookID),
	}, nil
}

// hookItem returns the hook-id item of p: its slug and a copy of the
// project, written in the same transaction as the project item, so intake
// resolves a hook id with one read.
func hookItem(p *forgelink.Project) (map[string]types.AttributeValue, error) {
	item, err := projectItem(p)
	if err != nil {
		return nil, err
	}
	item[attrPK] = strValue(hookKey(p.HookID))
	item[attrSlug] = strValue(p.Slug.String())
	return item, nil
}

func decodeProject(item map[string]types.AttributeValue) (*forgelink.Project, error) {
	var p forgelink.Project
	if err := json.Unmarshal([]byte(str(item, attrBody)), &p); err != nil {
		return nil, fmt.Errorf("decode project %s: %w", str(item, attrPK), err)
	}
	v, err := num(item, attrVersion)
	if err != nil {
		return nil, fmt.Errorf("decode project %s: %w", str(item, attrPK), err)
	}
	// The attribute is what the update condition checks, so it wins.
	p.Version = v
	return &p, nil
}

// CreateProject stores a new project and its hook id in one transaction,
// or returns a Conflict when the slug or the hook id is taken. It sets
// p.Version to 1.
func (s *Store) CreateProject(ctx context.Context, p *forgelink.Project) error {
	if p.HookID == "" {
		return fmt.Errorf("dynamo: create project %s: %w", p.Slug, forgelink.Errorf(forgelink.Invalid, "project %s has no hook id", p.Slug))
	}
	rec := *p
	rec.Version = 1
	item, err := projectItem(&rec)
	if err != nil {
		return fmt.Errorf("dynamo: create project %s: %w", p.Slug, err)
	}
	hook, err := hookItem(&rec)
	if err != nil {
		return fmt.Errorf("dynamo: create project %s: %w", p.Slug, err)
	}
	notExists := aws.String("attribute_not_exists(pk)")
	err = s.transactWrite(ctx, []types.TransactWriteItem{
		{Put: &types.Put{TableName: &s.tables.Projects, Item: item, ConditionExpression: notExists}},
		{Put: &types.Put{TableName: &s.tables.Projects, Item: hook, ConditionExpression: notExists}},
	})
	if err != nil {
		if reasons := conditionFailures(err); reasons != nil {
			msg := fmt.Sprintf("project %s exists", p.Slug)
			if !reasons[0] {
				msg = fmt.Sprintf("hook id of project %s is in use", p.Slug)
			}
			err = forgelink.E(forgelink.Conflict, msg, err)
		}
		return fmt.Errorf("dynamo: create project %s: %w", p.Slug, classify(err))
	}
	p.Version = 1
	return nil
}

// GetProject returns the project, or NotFound.
func (s *Store) GetProject(ctx context.Context, slug forgelink.Slug) (*forgelink.Project, error) {
	p, err := s.getProject(ctx, slug.String())
	if err != nil {
		return nil, fmt.Errorf("dynamo: get project %s: %w", slug, err)
	}
	return p, nil
}

// getProject reads the project whose slug string is slug.
func (s *Store) getProject(ctx context.Context, slug string) (*forgelink.Project, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.tables.Projects,
		Key:            map[string]types.AttributeValue{attrPK: strValue("project#" + slug)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, classify(err)
	}
	if out.Item == nil {
		return nil, forgelink.Errorf(forgelink.NotFound, "project %s not found", slug)
	}
	return decodeProject(out.Item)
}

// GetProjectByHookID returns the project whose webhook URL carries hookID,
// or NotFound.
func (s *Store) GetProjectByHookID(ctx context.Context, hookID string) (*forgelink.Project, error) {
	p, err := s.getProjectByHookID(ctx, hookID)
	if err != nil {
		return nil, fmt.Errorf("dynamo: get project by hook id %q: %w", hookID, err)
	}
	return p, nil
}

func (s *Store) getProjectByHookID(ctx context.Context, hookID string) (*forgelink.Project, error) {
	notFound := forgelink.Errorf(forgelink.NotFound, "no project has hook id %q", hookID)
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.tables.Projects,
		Key:            map[string]types.AttributeValue{attrPK: strValue(hookKey(hookID))},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, classify(err)
	}
	if out.Item == nil {
		return nil, notFound
	}
	if _, ok := out.Item[attrBody]; ok {
		return decodeProject(out.Item) // the copy written with the project
	}
	// A hook item from before it carried the project: read the project.
	p, err := s.getProject(ctx, str(out.Item, attrSlug))
	if forgelink.KindOf(err) == forgelink.NotFound || (err == nil && p.HookID != hookID) {
		// Deleted (and perhaps re-created) between the two reads.
		return nil, notFound
	}
	return p, err
}

// UpdateProject replaces the project if its stored Version equals
// p.Version, then increments p.Version. It returns NotFound when the
// project is gone, Conflict when it changed meanwhile, and Invalid when p
// carries another hook id.
func (s *Store) UpdateProject(ctx context.Context, p *forgelink.Project) error {
	rec := *p
	rec.Version++
	item, err := projectItem(&rec)
	if err != nil {
		return fmt.Errorf("dynamo: update project %s: %w", p.Slug, err)
	}
	hook, err := hookItem(&rec)
	if err != nil {
		return fmt.Errorf("dynamo: update project %s: %w", p.Slug, err)
	}
	// The project and its hook item's copy change together.
	err = s.transactWrite(ctx, []types.TransactWriteItem{
		{Put: &types.Put{
			TableName:                 &s.tables.Projects,
			Item:                      item,
			ConditionExpression:       aws.String("#version = :version AND #hook = :hook"),
			ExpressionAttributeNames:  map[string]string{"#version": attrVersion, "#hook": attrHookID},
			ExpressionAttributeValues: map[string]types.AttributeValue{":version": numValue(p.Version), ":hook": strValue(p.HookID)},
		}},
		{Put: &types.Put{
			TableName:                 &s.tables.Projects,
			Item:                      hook,
			ConditionExpression:       aws.String("#slug = :slug"),
			ExpressionAttributeNames:  map[string]string{"#slug": attrSlug},
			ExpressionAttributeValues: map[string]types.AttributeValue{":slug": strValue(p.Slug.String())},
		}},
	})
	if conditionFailures(err) != nil {
		// Say which condition failed, from the project as it is now.
		old, gerr := s.getProject(ctx, p.Slug.String())
		switch {
		case forgelink.KindOf(gerr) == forgelink.NotFound:
			err = forgelink.E(forgelink.NotFound, fmt.Sprintf("project %s not found", p.Slug), err)
		case gerr != nil:
			err = gerr
		case old.HookID != p.HookID:
			err = forgelink.E(forgelink.Invalid, fmt.Sprintf("the hook id of project %s cannot change", p.Slug), err)
		default:
			err = forgelink.E(forgelink.Conflict, fmt.Sprintf("project %s changed meanwhile", p.Slug), err)
		}
	}
	if err != nil {
		return fmt.Errorf("dynamo: update project %s: %w", p.Slug, classify(err))
	}
	p.Version = rec.Version
	return nil
}

// DeleteProject removes the project and its hook id in one transaction, or
// returns NotFound.
func (s *Store) DeleteProject(ctx context.Context, slug forgelink.Slug) error {
	var err error
	for range deleteAttempts {
		var p *forgelink.Project
		p, err = s.getProject(ctx, slug.String())
		if err != nil {
			return fmt.Errorf("dynamo: delete project %s: %w", slug, err)
		}
		err = s.transactWrite(ctx, []types.TransactWriteItem{
			{Delete: &types.Delete{
				TableName:                 &s.tables.Projects,
				Key:                       map[string]types.AttributeValue{attrPK: strValue(projectKey(slug))},
				ConditionExpression:       aws.String("#hook = :hook"),
				ExpressionAttributeNames:  map[string]string{"#hook": attrHookID},
				ExpressionAttributeValues: map[string]types.AttributeValue{":hook": strValue(p.HookID)},
			}},
			{Delete: &types.Delete{
				TableName:                 &s.tables.Projects,
				Key:                       map[string]types.AttributeValue{attrPK: strValue(hookKey(p.HookID))},
				ConditionExpression:       aws.String("#slug = :slug"),
				ExpressionAttributeNames:  map[string]string{"#slug": attrSlug},
				ExpressionAttributeValues: map[string]types.AttributeValue{":slug": strValue(slug.String())},
			}},
		})
		if conditionFailures(err) == nil {
			break
		}
		// Deleted, or deleted and re-created, since the read: read again.
	}
	if err != nil {
		return fmt.Errorf("dynamo: delete project %s: %w", slug, classify(err))
	}
	return nil
}

// transactWrite runs a write transaction. A transaction cancelled only
// because another one on the same items was in flight is tried again, so
// that it sees the other's outcome: a caller that lost a race for a slug
// gets a Conflict, not a Transient error.
func (s *Store) transactWrite(ctx context.Context, items []types.TransactWriteItem) error {
	for attempt := 1; ; attempt++ {
		_, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil || attempt == transactAttempts || !transactionConflict(err) {
			return err
		}
		backoff := time.Duration(rand.Int64N(int64(10 * time.Millisecond << attempt)))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
	}
}

// deliveryKey is the key of delivery (hookID, id).
func deliveryKey(hookID, id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: strValue(hookID), attrSK: strValue(id)}
}

// CreateDelivery stores d unless a delivery with its (HookID, ID) exists
// and has not expired, in which case it returns a Conflict.
func (s *Store) CreateDelivery(ctx context.Context, d *forgelink.Delivery) error {
	if err := validDelivery(d); err != nil {
		return fmt.Errorf("dynamo: create delivery %s/%s: %w", d.HookID, d.ID, err)
	}
	body, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("dynamo: create delivery %s/%s: encode: %w", d.HookID, d.ID, err)
	}
	item := deliveryKey(d.HookID, d.ID)
	item[attrBody] = strValue(string(body))
	item[attrState] = strValue(string(d.State))
	item[attrExpiresAt] = numValue(d.ExpiresAt.Unix())
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 &s.tables.Deliveries,
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR #expires < :now"),
		ExpressionAttributeNames:  map[string]string{"#expires": attrExpiresAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": numValue(s.now().Unix())},
	})
	if err != nil {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			err = forgelink.E(forgelink.Conflict, fmt.Sprintf("delivery %s exists", d.ID), err)
		}
		return fmt.Errorf("dynamo: create delivery %s/%s: %w", d.HookID, d.ID, classify(err))
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
	d, err := s.getDelivery(ctx, hookID, id)
	if err != nil {
		return nil, fmt.Errorf("dynamo: get delivery %s/%s: %w", hookID, id, err)
	}
	return d, nil
}

func (s *Store) getDelivery(ctx context.Context, hookID, id string) (*forgelink.Delivery, error) {
	notFound := forgelink.Errorf(forgelink.NotFound, "delivery %s not found", id)
	if hookID == "" || id == "" {
		return nil, notFound // DynamoDB rejects an empty key
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.tables.Deliveries,
		Key:            deliveryKey(hookID, id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, classify(err)
	}
	if out.Item == nil {
		return nil, notFound
	}
	// The same test as CreateDelivery's condition, so the two agree.
	expires, err := num(out.Item, attrExpiresAt)
	if err != nil {
		return nil, fmt.Errorf("decode delivery: %w", err)
	}
	if expires < s.now().Unix() {
		return nil, notFound
	}
	var d forgelink.Delivery
	if err := json.Unmarshal([]byte(str(out.Item, attrBody)), &d); err != nil {
		return nil, fmt.Errorf("decode delivery: %w", err)
	}
	d.State = forgelink.DeliveryState(str(out.Item, attrState))
	return &d, nil
}

// SetDeliveryState records the delivery's new state, or returns NotFound
// when it is absent or expired.
func (s *Store) SetDeliveryState(ctx context.Context, hookID, id string, state forgelink.DeliveryState) error {
	err := s.setDeliveryState(ctx, hookID, id, state)
	if err != nil {
		return fmt.Errorf("dynamo: set delivery %s/%s state %s: %w", hookID, id, state, err)
	}
	return nil
}

func (s *Store) setDeliveryState(ctx context.Context, hookID, id string, state forgelink.DeliveryState) error {
	notFound := forgelink.Errorf(forgelink.NotFound, "delivery %s not found", id)
	if hookID == "" || id == "" {
		return notFound
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.tables.Deliveries,
		Key:                       deliveryKey(hookID, id),
		UpdateExpression:          aws.String("SET #state = :state"),
		ConditionExpression:       aws.String("attribute_exists(pk) AND #expires >= :now"),
		ExpressionAttributeNames:  map[string]string{"#state": attrState, "#expires": attrExpiresAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":state": strValue(string(state)), ":now": numValue(s.now().Unix())},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return forgelink.E(forgelink.NotFound, notFound.Error(), err)
	}
	return classify(err)
}

// ListProjects returns every project, ordered by slug. It scans the
// projects table (the hook-id items are skipped by a filter), page by page:
// followed projects number in the thousands at most, and only the
// org-access sweep lists them all.
func (s *Store) ListProjects(ctx context.Context) ([]*forgelink.Project, error) {
	in := &dynamodb.ScanInput{
		TableName:                 &s.tables.Projects,
		FilterExpression:          aws.String("begins_with(#pk, :prefix)"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":prefix": strValue("project#")},
		ConsistentRead:            aws.Bool(true),
	}
	var out []*forgelink.Project
	for {
		page, err := s.client.Scan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamo: list projects: %w", classify(err))
		}
		for _, item := range page.Items {
			p, err := decodeProject(item)
			if err != nil {
				return nil, fmt.Errorf("dynamo: list projects: %w", err)
			}
			out = append(out, p)
		}
		if page.LastEvaluatedKey == nil {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	slices.SortFunc(out, func(a, b *forgelink.Project) int { return strings.Compare(a.Slug.String(), b.Slug.String()) })
	return out, nil
}
