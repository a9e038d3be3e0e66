package dynamo_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"forgelink/shared/config"
	"forgelink/shared/dynamo"
	"forgelink/shared/dynamo/dynamoschema"
	"forgelink/shared/dynamo/dynamotest"
	"forgelink/shared/forgelink"
	"forgelink/shared/forgelink/storetest"
)

func TestUserStore(t *testing.T) {
	storetest.RunUsers(t, func(t *testing.T) forgelink.UserStore {
		return dynamo.New(dynamotest.New(t))
	})
}

// TestUsersTableTemplate checks the users table the store relies on in
// the real template.yaml: (pk, sk) strings and TTL on expires_at, which
// sessions and OAuth states carry.
func TestUsersTableTemplate(t *testing.T) {
	tmpl := dynamotest.Template(t)
	got, err := dynamoschema.TableDefinitions(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	want := &dynamodb.CreateTableInput{
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			attr("pk", types.ScalarAttributeTypeS),
			attr("sk", types.ScalarAttributeTypeS),
		},
		KeySchema: []types.KeySchemaElement{key("pk", types.KeyTypeHash), key("sk", types.KeyTypeRange)},
	}
	if diff := cmp.Diff(want, got[dynamo.UsersTableID], ignoreSDK); diff != "" {
		t.Errorf("TableDefinitions(template.yaml)[%s] mismatch (-want +got):\n%s", dynamo.UsersTableID, diff)
	}
	ttls, err := dynamoschema.TimeToLiveAttributes(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if got := ttls[dynamo.UsersTableID]; got != "expires_at" {
		t.Errorf("TimeToLiveAttributes(template.yaml)[%s] = %q, want expires_at", dynamo.UsersTableID, got)
	}
}

// TestUsersTableCreated checks that dynamotest creates the users table
// with its TTL, as it does every table of Tables.
func TestUsersTableCreated(t *testing.T) {
	client, tables := dynamotest.New(t)
	if tables.Users == "" || tables.Names()[dynamo.UsersTableID] != tables.Users {
		t.Fatalf("Tables.Users = %q, Names()[%s] = %q: want the same non-empty name", tables.Users, dynamo.UsersTableID, tables.Names()[dynamo.UsersTableID])
	}
	ttl, err := client.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(tables.Users)})
	if err != nil {
		t.Fatal(err)
	}
	d := ttl.TimeToLiveDescription
	if d == nil || aws.ToString(d.AttributeName) != "expires_at" || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Errorf("users table TTL = %+v, want enabled on expires_at", d)
	}
}

func TestTablesOfUsers(t *testing.T) {
	cfg, err := config.FromEnv(func(k string) (string, bool) {
		v, ok := map[string]string{dynamo.UsersTableEnv: "u-table"}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := dynamo.TablesOf(cfg).Users; got != "u-table" {
		t.Errorf("TablesOf(cfg).Users = %q, want u-table from %s", got, dynamo.UsersTableEnv)
	}
}
