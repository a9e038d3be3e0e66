// Package dynamoschema reads forgelink's DynamoDB tables from template.yaml,
// the only schema, and creates them on a local server for tests and make
// invoke. It is kept out of the functions' binaries (it needs a YAML parser);
// a test checks the store's key names against it.
//
//	defs, err := dynamoschema.TableDefinitions(templateYAML)
//	err = dynamoschema.CreateTables(ctx, client, templateYAML, tables.Names())
package dynamoschema

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.yaml.in/yaml/v3"

	"forgelink/shared/forgelink"
)

// tableType is the CloudFormation type of a DynamoDB table.
const tableType = "AWS::DynamoDB::Table"

// tableWait bounds how long CreateTables waits for a new table to become
// active.
const tableWait = 5 * time.Minute

// The parts of an AWS::DynamoDB::Table's Properties that shape the table.
// Other properties (SSE, point-in-time recovery, tags) are ignored.
type tableProperties struct {
	BillingMode             string                 `yaml:"BillingMode"`
	AttributeDefinitions    []attributeDefinition  `yaml:"AttributeDefinitions"`
	KeySchema               []keySchemaElement     `yaml:"KeySchema"`
	ProvisionedThroughput   *provisionedThroughput `yaml:"ProvisionedThroughput"`
	GlobalSecondaryIndexes  []secondaryIndex       `yaml:"GlobalSecondaryIndexes"`
	LocalSecondaryIndexes   []secondaryIndex       `yaml:"LocalSecondaryIndexes"`
	TimeToLiveSpecification *struct {
		AttributeName string `yaml:"AttributeName"`
		Enabled       bool   `yaml:"Enabled"`
	} `yaml:"TimeToLiveSpecification"`
}

// shapingProperties are the property names tableProperties reads; they
// must hold plain values, not intrinsic functions.
var shapingProperties = []string{
	"BillingMode", "AttributeDefinitions", "KeySchema", "ProvisionedThroughput",
	"GlobalSecondaryIndexes", "LocalSecondaryIndexes", "TimeToLiveSpecification",
}

type attributeDefinition struct {
	AttributeName string `yaml:"AttributeName"`
	AttributeType string `yaml:"AttributeType"`
}

type keySchemaElement struct {
	AttributeName string `yaml:"AttributeName"`
	KeyType       string `yaml:"KeyType"`
}

type provisionedThroughput struct {
	ReadCapacityUnits  int64 `yaml:"ReadCapacityUnits"`
	WriteCapacityUnits int64 `yaml:"WriteCapacityUnits"`
}

type secondaryIndex struct {
	IndexName  string             `yaml:"IndexName"`
	KeySchema  []keySchemaElement `yaml:"KeySchema"`
	Projection struct {
		ProjectionType   string   `yaml:"ProjectionType"`
		NonKeyAttributes []string `yaml:"NonKeyAttributes"`
	} `yaml:"Projection"`
	ProvisionedThroughput *provisionedThroughput `yaml:"ProvisionedThroughput"`
}

// table is one AWS::DynamoDB::Table resource of a template.
type table struct {
	input        *dynamodb.CreateTableInput // TableName unset
	ttlAttribute string                     // "" when TTL is not enabled
}

// TableDefinitions returns a CreateTableInput, without TableName, for every
// AWS::DynamoDB::Table resource of the CloudFormation template, keyed by
// logical id. It reads AttributeDefinitions, KeySchema, BillingMode,
// ProvisionedThroughput and the secondary indexes; those must be plain
// values, while the rest of the template may use intrinsic functions
// (!Ref, !Sub, !If, ...).
func TableDefinitions(templateYAML []byte) (map[string]*dynamodb.CreateTableInput, error) {
	tables, err := parseTemplate(templateYAML)
	if err != nil {
		return nil, err
	}
	defs := make(map[string]*dynamodb.CreateTableInput, len(tables))
	for id, t := range tables {
		defs[id] = t.input
	}
	return defs, nil
}

// TimeToLiveAttributes returns the TTL attribute of every table of the
// template that enables TimeToLiveSpecification, keyed by logical id.
func TimeToLiveAttributes(templateYAML []byte) (map[string]string, error) {
	tables, err := parseTemplate(templateYAML)
	if err != nil {
		return nil, err
	}
	ttls := make(map[string]string)
	for id, t := range tables {
		if t.ttlAttribute != "" {
			ttls[id] = t.ttlAttribute
		}
	}
	return ttls, nil
}

// CreateTables creates the template's tables named in names (logical id →
// table name), waits until they are active, and enables their TTL. It is
// how tests and the local server get tables that match the deployed ones.
// A table that already exists with the template's key schema is used as it
// is (so running it again, or a retried CreateTable that did succeed, is
// harmless); one with another key schema is an error.
func CreateTables(ctx context.Context, client *dynamodb.Client, templateYAML []byte, names map[string]string) error {
	tables, err := parseTemplate(templateYAML)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(names))
	for id := range names {
		if _, ok := tables[id]; !ok {
			return fmt.Errorf("dynamoschema: create tables: the template has no table %s", id)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		t, name := tables[id], names[id]
		in := *t.input
		in.TableName = aws.String(name)
		if _, err := client.CreateTable(ctx, &in); err != nil {
			var inUse *types.ResourceInUseException
			if !errors.As(err, &inUse) {
				return fmt.Errorf("dynamoschema: create table %s (%s): %w", name, id, err)
			}
			if err := sameKeySchema(ctx, client, &in); err != nil {
				return fmt.Errorf("dynamoschema: create table %s (%s): %w", name, id, err)
			}
		}
		waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay = 100 * time.Millisecond
			o.MaxDelay = 5 * time.Second
		})
		if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName}, tableWait); err != nil {
			return fmt.Errorf("dynamoschema: wait for table %s (%s): %w", name, id, err)
		}
		if t.ttlAttribute == "" {
			continue
		}
		_, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName: in.TableName,
			TimeToLiveSpecification: &types.TimeToLiveSpecification{
				AttributeName: aws.String(t.ttlAttribute),
				Enabled:       aws.Bool(true),
			},
		})
		if err != nil {
			return fmt.Errorf("dynamoschema: enable ttl on table %s (%s): %w", name, id, err)
		}
	}
	return nil
}

// sameKeySchema checks that the existing table has in's key schema.
func sameKeySchema(ctx context.Context, client *dynamodb.Client, in *dynamodb.CreateTableInput) error {
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName})
	if err != nil {
		return err
	}
	key := func(ks []types.KeySchemaElement) string {
		var b strings.Builder
		for _, k := range ks {
			fmt.Fprintf(&b, "%s:%s,", aws.ToString(k.AttributeName), k.KeyType)
		}
		return b.String()
	}
	if got, want := key(out.Table.KeySchema), key(in.KeySchema); got != want {
		return forgelink.Errorf(forgelink.Conflict, "table exists with key schema %s, want %s", got, want)
	}
	return nil
}

// parseTemplate returns the template's tables by logical id. It walks the
// template as yaml.Nodes, so CloudFormation's short-form tags (!Ref, !Sub,
// ...) elsewhere in the template are no obstacle.
func parseTemplate(templateYAML []byte) (map[string]table, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(templateYAML, &doc); err != nil {
		return nil, fmt.Errorf("dynamoschema: parse template: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("dynamoschema: parse template: empty document")
	}
	resources := mapValue(doc.Content[0], "Resources")
	if resources == nil || resources.Kind != yaml.MappingNode {
		return nil, errors.New("dynamoschema: parse template: no Resources mapping")
	}
	tables := make(map[string]table)
	for i := 0; i+1 < len(resources.Content); i += 2 {
		id, res := resources.Content[i].Value, resources.Content[i+1]
		if typ := mapValue(res, "Type"); typ == nil || typ.Value != tableType {
			continue
		}
		t, err := parseTable(mapValue(res, "Properties"))
		if err != nil {
			return nil, fmt.Errorf("dynamoschema: parse template: table %s: %w", id, err)
		}
		tables[id] = t
	}
	return tables, nil
}

// mapValue returns the value of key in mapping node m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// intrinsic returns the first CloudFormation intrinsic-function tag
// (!Ref, !If, ...) in the tree under n, or "".
func intrinsic(n *yaml.Node) string {
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return n.Tag
	}
	if n.Kind == yaml.MappingNode {
		// The long form: {"Ref": ...} or {"Fn::If": ...}.
		for i := 0; i < len(n.Content); i += 2 {
			if k := n.Content[i].Value; k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
				return k
			}
		}
	}
	for _, c := range n.Content {
		if tag := intrinsic(c); tag != "" {
			return tag
		}
	}
	return ""
}

func parseTable(props *yaml.Node) (table, error) {
	if props == nil || props.Kind != yaml.MappingNode {
		return table{}, errors.New("no Properties mapping")
	}
	for _, name := range shapingProperties {
		if v := mapValue(props, name); v != nil {
			if tag := intrinsic(v); tag != "" {
				return table{}, fmt.Errorf("%s uses %s: only plain values are supported", name, tag)
			}
		}
	}
	var p tableProperties
	if err := props.Decode(&p); err != nil {
		return table{}, err
	}
	if len(p.KeySchema) == 0 || len(p.AttributeDefinitions) == 0 {
		return table{}, errors.New("no KeySchema or AttributeDefinitions")
	}
	in := &dynamodb.CreateTableInput{
		BillingMode:           types.BillingMode(p.BillingMode),
		KeySchema:             keySchema(p.KeySchema),
		ProvisionedThroughput: throughput(p.ProvisionedThroughput),
	}
	for _, a := range p.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(a.AttributeName),
			AttributeType: types.ScalarAttributeType(a.AttributeType),
		})
	}
	for _, ix := range p.GlobalSecondaryIndexes {
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName:             aws.String(ix.IndexName),
			KeySchema:             keySchema(ix.KeySchema),
			Projection:            projection(ix),
			ProvisionedThroughput: throughput(ix.ProvisionedThroughput),
		})
	}
	for _, ix := range p.LocalSecondaryIndexes {
		in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, types.LocalSecondaryIndex{
			IndexName:  aws.String(ix.IndexName),
			KeySchema:  keySchema(ix.KeySchema),
			Projection: projection(ix),
		})
	}
	t := table{input: in}
	if ttl := p.TimeToLiveSpecification; ttl != nil && ttl.Enabled {
		t.ttlAttribute = ttl.AttributeName
	}
	return t, nil
}

func keySchema(elems []keySchemaElement) []types.KeySchemaElement {
	var ks []types.KeySchemaElement
	for _, e := range elems {
		ks = append(ks, types.KeySchemaElement{
			AttributeName: aws.String(e.AttributeName),
			KeyType:       types.KeyType(e.KeyType),
		})
	}
	return ks
}

func throughput(t *provisionedThroughput) *types.ProvisionedThroughput {
	if t == nil {
		return nil
	}
	return &types.ProvisionedThroughput{
		ReadCapacityUnits:  aws.Int64(t.ReadCapacityUnits),
		WriteCapacityUnits: aws.Int64(t.WriteCapacityUnits),
	}
}

func projection(ix secondaryIndex) *types.Projection {
	return &types.Projection{
		ProjectionType:   types.ProjectionType(ix.Projection.ProjectionType),
		NonKeyAttributes: ix.Projection.NonKeyAttributes,
	}
}
