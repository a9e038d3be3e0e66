package dynamo

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"forgelink/shared/forgelink"
)

// Cancellation reason codes of TransactionCanceledException, one per item.
const (
	reasonConditionFailed = "ConditionalCheckFailed"
)

// transientReasons are the cancellation reasons a retry may clear.
var transientReasons = map[string]bool{
	"TransactionConflict":           true,
	"ProvisionedThroughputExceeded": true,
	"ThrottlingError":               true,
	"RequestLimitExceeded":          true,
	"InternalServerError":           true,
}

// retryable is the SDK's own test for errors worth retrying: connection
// errors, 5xx statuses, throttling codes, errors that say they are
// retryable.
var retryable = retry.IsErrorRetryables(retry.DefaultRetryables)

// conditionFailures reports, for a transaction cancelled because a
// condition failed, which of its items failed theirs. It returns nil for
// any other error.
func conditionFailures(err error) []bool {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil
	}
	var failed []bool
	anyFailed := false
	for _, r := range tce.CancellationReasons {
		f := aws.ToString(r.Code) == reasonConditionFailed
		anyFailed = anyFailed || f
		failed = append(failed, f)
	}
	if !anyFailed {
		return nil
	}
	return failed
}

// transactionConflict reports whether err is a transaction cancelled
// because another transaction on the same items was in flight, and for no
// other reason.
func transactionConflict(err error) bool {
	var (
		tce      *types.TransactionCanceledException
		conflict *types.TransactionConflictException
	)
	if errors.As(err, &conflict) {
		return true
	}
	if !errors.As(err, &tce) {
		return false
	}
	found := false
	for _, r := range tce.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "TransactionConflict":
			found = true
		case "None", "":
		default:
			return false
		}
	}
	return found
}

// classify attaches a kind to an error from the DynamoDB client: Conflict
// for a failed condition, Transient for throttling, 5xx and timeouts,
// Internal for the rest (validation errors and missing tables are bugs or
// misconfiguration). An error that already has a kind keeps it.
func classify(err error) error {
	var fe *forgelink.Error
	if err == nil || errors.As(err, &fe) {
		return err
	}
	var (
		ccf *types.ConditionalCheckFailedException
		tce *types.TransactionCanceledException
	)
	switch {
	case keyTooLong(err):
		// A key from a request (an id in a URL) over DynamoDB's size
		// limits names no item: no item can have a key that long.
		return forgelink.E(forgelink.NotFound, "not found: the id is too long", err)
	case errors.As(err, &ccf):
		return forgelink.E(forgelink.Conflict, "a conditional write failed", err)
	case errors.As(err, &tce):
		if conditionFailures(err) != nil {
			return forgelink.E(forgelink.Conflict, "a conditional write failed", err)
		}
		for _, r := range tce.CancellationReasons {
			if transientReasons[aws.ToString(r.Code)] {
				return forgelink.E(forgelink.Transient, "dynamodb is busy", err)
			}
		}
		return err
	case isTransient(err):
		return forgelink.E(forgelink.Transient, "dynamodb is unavailable", err)
	}
	return err
}

// keyTooLong reports whether err is DynamoDB's refusal of a partition key
// value over 2,048 bytes or a sort key value over 1,024 (the local server
// lets reads through).
func keyTooLong(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
		return false
	}
	msg := api.ErrorMessage()
	return strings.Contains(msg, "Size of hashkey has exceeded") || strings.Contains(msg, "range keys has exceeded the size limit")
}

// isTransient reports whether err may pass on a later try.
func isTransient(err error) bool {
	var (
		throughput *types.ProvisionedThroughputExceededException
		limit      *types.RequestLimitExceeded
		internal   *types.InternalServerError
		throttling *types.ThrottlingException
		conflict   *types.TransactionConflictException
		inProgress *types.TransactionInProgressException
		api        smithy.APIError
		netErr     net.Error
	)
	switch {
	case errors.As(err, &throughput), errors.As(err, &limit), errors.As(err, &internal),
		errors.As(err, &throttling), errors.As(err, &conflict), errors.As(err, &inProgress):
		return true
	case errors.As(err, &api) && api.ErrorFault() == smithy.FaultServer:
		return true
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return true
	}
	return retryable.IsErrorRetryable(err).Bool()
}
