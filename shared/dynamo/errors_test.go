package dynamo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"forgelink/shared/forgelink"
)

func cancelled(codes ...string) error {
	var reasons []types.CancellationReason
	for _, c := range codes {
		reasons = append(reasons, types.CancellationReason{Code: aws.String(c)})
	}
	return &types.TransactionCanceledException{CancellationReasons: reasons}
}

// httpError is err as the SDK returns it for an HTTP response with status.
func httpError(status int, err error) error {
	return &smithy.OperationError{
		ServiceID:     "DynamoDB",
		OperationName: "PutItem",
		Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
				Err:      err,
			},
		},
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want forgelink.Kind
	}{
		{"condition failed", &types.ConditionalCheckFailedException{}, forgelink.Conflict},
		{"condition failed, wrapped", httpError(400, &types.ConditionalCheckFailedException{}), forgelink.Conflict},
		{"transaction condition failed", cancelled("None", "ConditionalCheckFailed"), forgelink.Conflict},
		{"transaction conflict", cancelled("TransactionConflict", "None"), forgelink.Transient},
		{"transaction throttled", cancelled("None", "ThrottlingError"), forgelink.Transient},
		{"transaction invalid", cancelled("ValidationError", "None"), forgelink.Internal},
		{"throughput exceeded", &types.ProvisionedThroughputExceededException{}, forgelink.Transient},
		{"request limit", &types.RequestLimitExceeded{}, forgelink.Transient},
		{"internal server error", &types.InternalServerError{}, forgelink.Transient},
		{"throttling", &types.ThrottlingException{}, forgelink.Transient},
		{"transaction in progress", &types.TransactionInProgressException{}, forgelink.Transient},
		{"503", httpError(503, &smithy.GenericAPIError{Code: "ServiceUnavailable", Fault: smithy.FaultServer}), forgelink.Transient},
		{"unmodeled throttle code", httpError(400, &smithy.GenericAPIError{Code: "ThrottlingException"}), forgelink.Transient},
		{"deadline", fmt.Errorf("put: %w", context.DeadlineExceeded), forgelink.Transient},
		{"validation", httpError(400, &smithy.GenericAPIError{Code: "ValidationException", Fault: smithy.FaultClient}), forgelink.Internal},
		{"missing table", &types.ResourceNotFoundException{}, forgelink.Internal},
		{"canceled", context.Canceled, forgelink.Internal},
		{"already kinded", forgelink.Errorf(forgelink.NotFound, "gone"), forgelink.NotFound},
		{"plain", errors.New("boom"), forgelink.Internal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			if k := forgelink.KindOf(got); k != tc.want {
				t.Errorf("KindOf(classify(%v)) = %v, want %v", tc.err, k, tc.want)
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("classify(%v) = %v, which lost the cause", tc.err, got)
			}
		})
	}
	if err := classify(nil); err != nil {
		t.Errorf("classify(nil) = %v, want nil", err)
	}
}

func TestConditionFailures(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []bool
	}{
		{"first", cancelled("ConditionalCheckFailed", "None"), []bool{true, false}},
		{"second", cancelled("None", "ConditionalCheckFailed"), []bool{false, true}},
		{"conflict only", cancelled("TransactionConflict", "None"), nil},
		{"other error", &types.ConditionalCheckFailedException{}, nil},
		{"nil", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := conditionFailures(tc.err)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("conditionFailures = %v, want %v", got, tc.want)
			}
		})
	}
}
