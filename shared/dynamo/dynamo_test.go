package dynamo_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"forgelink/shared/dynamo"
	"forgelink/shared/dynamo/dynamoschema"
	"forgelink/shared/dynamo/dynamotest"
	"forgelink/shared/forgelink"
	"forgelink/shared/forgelink/storetest"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) forgelink.Store {
		return dynamo.New(dynamotest.New(t))
	})
}

// ignoreSDK skips the SDK types' unexported fields.
var ignoreSDK = cmpopts.IgnoreUnexported(
	dynamodb.CreateTableInput{}, types.AttributeDefinition{}, types.KeySchemaElement{},
	types.GlobalSecondaryIndex{}, types.LocalSecondaryIndex{}, types.Projection{},
	types.ProvisionedThroughput{},
)

func key(name string, kt types.KeyType) types.KeySchemaElement {
	return types.KeySchemaElement{AttributeName: aws.String(name), KeyType: kt}
}

func attr(name string, at types.ScalarAttributeType) types.AttributeDefinition {
	return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: at}
}

// TestTableDefinitionsTemplate checks the schema the store relies on in
// the real template.yaml.
func TestTableDefinitionsTemplate(t *testing.T) {
	tmpl := dynamotest.Template(t)
	got, err := dynamoschema.TableDefinitions(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*dynamodb.CreateTableInput{
		dynamo.ProjectsTableID: {
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{attr("pk", types.ScalarAttributeTypeS)},
			KeySchema:            []types.KeySchemaElement{key("pk", types.KeyTypeHash)},
		},
		dynamo.DeliveriesTableID: {
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				attr("pk", types.ScalarAttributeTypeS),
				attr("sk", types.ScalarAttributeTypeS),
			},
			KeySchema: []types.KeySchemaElement{key("pk", types.KeyTypeHash), key("sk", types.KeyTypeRange)},
		},
		dynamo.PipelinesTableID: {
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				attr("pk", types.ScalarAttributeTypeS),
				attr("sk", types.ScalarAttributeTypeS),
			},
			KeySchema: []types.KeySchemaElement{key("pk", types.KeyTypeHash), key("sk", types.KeyTypeRange)},
		},
	}
	// Other tables may come and go; the store's must be as it expects.
	for id := range want {
		if diff := cmp.Diff(want[id], got[id], ignoreSDK); diff != "" {
			t.Errorf("TableDefinitions(template.yaml)[%s] mismatch (-want +got):\n%s", id, diff)
		}
	}

	ttls, err := dynamoschema.TimeToLiveAttributes(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	wantTTL := map[string]string{dynamo.ProjectsTableID: "", dynamo.DeliveriesTableID: "expires_at"}
	for id, want := range wantTTL {
		if got := ttls[id]; got != want {
			t.Errorf("TimeToLiveAttributes(template.yaml)[%s] = %q, want %q", id, got, want)
		}
	}
}

const indexedTemplate = `
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${AWS::StackName}-queue"
  Things:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !If [IsProd, things, !Sub "things-${Stage}"]
      BillingMode: PROVISIONED
      ProvisionedThroughput: {ReadCapacityUnits: 5, WriteCapacityUnits: 2}
      AttributeDefinitions:
        - {AttributeName: id, AttributeType: S}
        - {AttributeName: owner, AttributeType: S}
        - {AttributeName: created, AttributeType: N}
      KeySchema:
        - {AttributeName: id, KeyType: HASH}
        - {AttributeName: created, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: by-owner
          KeySchema:
            - {AttributeName: owner, KeyType: HASH}
          Projection:
            ProjectionType: INCLUDE
            NonKeyAttributes: [title]
          ProvisionedThroughput: {ReadCapacityUnits: 1, WriteCapacityUnits: 1}
      LocalSecondaryIndexes:
        - IndexName: by-id-owner
          KeySchema:
            - {AttributeName: id, KeyType: HASH}
            - {AttributeName: owner, KeyType: RANGE}
          Projection: {ProjectionType: KEYS_ONLY}
      TimeToLiveSpecification:
        AttributeName: gone_at
        Enabled: false
      Tags:
        - Key: stage
          Value: !Ref Stage
`

func TestTableDefinitionsIndexes(t *testing.T) {
	got, err := dynamoschema.TableDefinitions([]byte(indexedTemplate))
	if err != nil {
		t.Fatal(err)
	}
	throughput := func(r, w int64) *types.ProvisionedThroughput {
		return &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(r), WriteCapacityUnits: aws.Int64(w)}
	}
	want := map[string]*dynamodb.CreateTableInput{
		"Things": {
			BillingMode:           types.BillingModeProvisioned,
			ProvisionedThroughput: throughput(5, 2),
			AttributeDefinitions: []types.AttributeDefinition{
				attr("id", types.ScalarAttributeTypeS),
				attr("owner", types.ScalarAttributeTypeS),
				attr("created", types.ScalarAttributeTypeN),
			},
			KeySchema: []types.KeySchemaElement{key("id", types.KeyTypeHash), key("created", types.KeyTypeRange)},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
				IndexName:             aws.String("by-owner"),
				KeySchema:             []types.KeySchemaElement{key("owner", types.KeyTypeHash)},
				Projection:            &types.Projection{ProjectionType: types.ProjectionTypeInclude, NonKeyAttributes: []string{"title"}},
				ProvisionedThroughput: throughput(1, 1),
			}},
			LocalSecondaryIndexes: []types.LocalSecondaryIndex{{
				IndexName:  aws.String("by-id-owner"),
				KeySchema:  []types.KeySchemaElement{key("id", types.KeyTypeHash), key("owner", types.KeyTypeRange)},
				Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
			}},
		},
	}
	if diff := cmp.Diff(want, got, ignoreSDK); diff != "" {
		t.Errorf("TableDefinitions mismatch (-want +got):\n%s", diff)
	}
	ttls, err := dynamoschema.TimeToLiveAttributes([]byte(indexedTemplate))
	if err != nil {
		t.Fatal(err)
	}
	if len(ttls) != 0 {
		t.Errorf("TimeToLiveAttributes = %v, want none (TTL is disabled)", ttls)
	}
}

func TestTableDefinitionsErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
	}{
		{"not yaml", "Resources: [unclosed"},
		{"empty", ""},
		{"no resources", "Parameters: {}"},
		{"intrinsic in key schema", `
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: !Ref KeyName, KeyType: HASH}]
`},
		{"long-form intrinsic", `
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: {"Fn::If": [Cheap, PAY_PER_REQUEST, PROVISIONED]}
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
`},
		{"no key schema", `
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dynamoschema.TableDefinitions([]byte(tc.yaml))
			if err == nil {
				t.Errorf("TableDefinitions = %v, want an error", got)
			}
		})
	}
}

// TestCreateTables checks the tables New creates against the template.
func TestCreateTables(t *testing.T) {
	client, tables := dynamotest.New(t)
	defs, err := dynamoschema.TableDefinitions(dynamotest.Template(t))
	if err != nil {
		t.Fatal(err)
	}
	for id, name := range tables.Names() {
		out, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			t.Fatalf("DescribeTable(%s): %v", name, err)
		}
		opt := cmpopts.SortSlices(func(a, b types.AttributeDefinition) bool { return *a.AttributeName < *b.AttributeName })
		if diff := cmp.Diff(defs[id].KeySchema, out.Table.KeySchema, ignoreSDK); diff != "" {
			t.Errorf("%s key schema mismatch (-template +table):\n%s", id, diff)
		}
		if diff := cmp.Diff(defs[id].AttributeDefinitions, out.Table.AttributeDefinitions, ignoreSDK, opt); diff != "" {
			t.Errorf("%s attribute definitions mismatch (-template +table):\n%s", id, diff)
		}
	}
	ttl, err := client.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(tables.Deliveries)})
	if err != nil {
		t.Fatal(err)
	}
	d := ttl.TimeToLiveDescription
	if d == nil || aws.ToString(d.AttributeName) != "expires_at" || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Errorf("deliveries table TTL = %+v, want enabled on expires_at", d)
	}
}

func TestCreateTablesUnknownTable(t *testing.T) {
	client, _ := dynamotest.New(t)
	err := dynamoschema.CreateTables(t.Context(), client, dynamotest.Template(t), map[string]string{"NoSuchTable": "x"})
	if err == nil {
		t.Error("CreateTables with an unknown logical id succeeded, want an error")
	}
}

func TestTablesFromEnv(t *testing.T) {
	tests := []struct {
		name        string
		projects    string
		deliveries  string
		want        dynamo.Tables
		wantMissing string // the variable the error must name
	}{
		{"all", "p-table", "d-table", dynamo.Tables{Projects: "p-table", Deliveries: "d-table", Pipelines: "pl-table"}, ""},
		{"no projects", "", "d-table", dynamo.Tables{}, dynamo.ProjectsTableEnv},
		{"no deliveries", "p-table", "", dynamo.Tables{}, dynamo.DeliveriesTableEnv},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(dynamo.ProjectsTableEnv, tc.projects)
			t.Setenv(dynamo.DeliveriesTableEnv, tc.deliveries)
			t.Setenv(dynamo.PipelinesTableEnv, "pl-table")
			got, err := dynamo.TablesFromEnv()
			switch {
			case tc.wantMissing == "" && err != nil:
				t.Fatalf("TablesFromEnv: %v", err)
			case tc.wantMissing != "" && (err == nil || !strings.Contains(err.Error(), tc.wantMissing)):
				t.Fatalf("TablesFromEnv error = %v, want one naming %s", err, tc.wantMissing)
			}
			if got != tc.want {
				t.Errorf("TablesFromEnv = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNewClientEndpoint(t *testing.T) {
	c := dynamo.NewClient(aws.Config{Region: "eu-west-1"}, "http://127.0.0.1:1234")
	if got := aws.ToString(c.Options().BaseEndpoint); got != "http://127.0.0.1:1234" {
		t.Errorf("BaseEndpoint = %q, want the given endpoint", got)
	}
	if got := c.Options().Region; got != "eu-west-1" {
		t.Errorf("Region = %q, want eu-west-1 from the config", got)
	}
	if got := dynamo.NewClient(aws.Config{Region: "eu-west-1"}, "").Options().BaseEndpoint; got != nil {
		t.Errorf("BaseEndpoint = %q without an endpoint, want AWS's", *got)
	}
}

// TestCreateTablesAgain: creating tables that exist with the template's
// schema is harmless (a retried CreateTable, or seeding twice); a table of
// the same name with another key schema is refused.
func TestCreateTablesAgain(t *testing.T) {
	client, tables := dynamotest.New(t)
	tmpl := dynamotest.Template(t)
	if err := dynamoschema.CreateTables(t.Context(), client, tmpl, map[string]string{dynamo.ProjectsTableID: tables.Projects}); err != nil {
		t.Errorf("CreateTables on an existing table = %v, want nil", err)
	}
	// The deliveries table has a range key; the projects definition under its name does not match.
	err := dynamoschema.CreateTables(t.Context(), client, tmpl, map[string]string{dynamo.ProjectsTableID: tables.Deliveries})
	if err == nil || !strings.Contains(err.Error(), "key schema") {
		t.Errorf("CreateTables over a table with another key schema = %v, want a key schema error", err)
	}
}
