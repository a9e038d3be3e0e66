package dynamo_test

import (
	"testing"

	"forgelink/shared/dynamo"
	"forgelink/shared/dynamo/dynamotest"
	"forgelink/shared/forgelink/storetest"
)

func TestStatusStore(t *testing.T) {
	storetest.RunStatus(t, func(t *testing.T) storetest.StatusPipelineStore {
		return dynamo.New(dynamotest.New(t))
	})
}
