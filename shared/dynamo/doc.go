// Package dynamo is the forgelink.Store on DynamoDB, the one the Lambda
// functions use, and the table schema read from template.yaml.
//
//	client, err := dynamo.NewClient(ctx, os.Getenv("DYNAMODB_ENDPOINT"))
//	if err != nil {
//		return err
//	}
//	tables, err := dynamo.TablesFromEnv()
//	if err != nil {
//		return err
//	}
//	store := dynamo.New(client, tables)
//
// template.yaml is the only schema: CreateTables builds tables from it for
// tests and local runs, so they cannot drift from the deployed ones.
package dynamo
