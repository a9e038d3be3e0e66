package dynamo

import (
	"fmt"
	"testing"

	"github.com/aws/smithy-go"

	"forgelink/shared/forgelink"
)

// TestClassifyKeyTooLong checks that DynamoDB's refusal of an oversized
// key (which the local server does not give for reads) is NotFound - a
// request's id that long names nothing - and that other validation errors
// stay unclassified (Internal).
func TestClassifyKeyTooLong(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want forgelink.Kind
	}{
		{"One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes", forgelink.NotFound},
		{"One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes", forgelink.NotFound},
		{"The provided key element does not match the schema", forgelink.Internal},
		{"Item size has exceeded the maximum allowed size", forgelink.Internal},
	} {
		err := fmt.Errorf("operation error DynamoDB: GetItem: %w", &smithy.GenericAPIError{Code: "ValidationException", Message: tc.msg})
		if got := forgelink.KindOf(classify(err)); got != tc.want {
			t.Errorf("classify(%q) kind = %v, want %v", tc.msg, got, tc.want)
		}
	}
	other := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "Size of hashkey has exceeded"}
	if got := forgelink.KindOf(classify(other)); got == forgelink.NotFound {
		t.Errorf("an AccessDeniedException naming the key size is NotFound")
	}
}
