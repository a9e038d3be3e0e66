package dynamo_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"forgelink/shared/dynamo"
	"forgelink/shared/dynamo/dynamoschema"
	"forgelink/shared/dynamo/dynamotest"
	"forgelink/shared/forgelink"
	"forgelink/shared/forgelink/storetest"
)

func TestKeyStore(t *testing.T) {
	storetest.RunKeys(t, func(t *testing.T) forgelink.KeyStore {
		return dynamo.New(dynamotest.New(t))
	})
}

// TestKeysTableTemplate checks the keys table the store relies on in the
// real template.yaml: (pk, sk) strings and TTL on expires_at, which runner
// tokens carry.
func TestKeysTableTemplate(t *testing.T) {
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
	if diff := cmp.Diff(want, got[dynamo.KeysTableID], ignoreSDK); diff != "" {
		t.Errorf("TableDefinitions(template.yaml)[%s] mismatch (-want +got):\n%s", dynamo.KeysTableID, diff)
	}
	ttls, err := dynamoschema.TimeToLiveAttributes(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if got := ttls[dynamo.KeysTableID]; got != "expires_at" {
		t.Errorf("TimeToLiveAttributes(template.yaml)[%s] = %q, want expires_at", dynamo.KeysTableID, got)
	}
}

func TestTablesFromEnvKeys(t *testing.T) {
	t.Setenv(dynamo.ProjectsTableEnv, "p")
	t.Setenv(dynamo.DeliveriesTableEnv, "d")
	t.Setenv(dynamo.PipelinesTableEnv, "pl")
	t.Setenv(dynamo.KeysTableEnv, "k")
	got, err := dynamo.TablesFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if got.Keys != "k" {
		t.Errorf("TablesFromEnv().Keys = %q, want %q from %s", got.Keys, "k", dynamo.KeysTableEnv)
	}
	if got.Names()[dynamo.KeysTableID] != "k" {
		t.Errorf("Names()[%s] = %q, want k", dynamo.KeysTableID, got.Names()[dynamo.KeysTableID])
	}
}
