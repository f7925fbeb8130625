package uploader

import (
	"context"
	"errors"
	"fmt"
	"net"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/srs-offload/srs-offload/storage"
)

// Unavailable reports whether err means storage could not be reached or asked us to come back
// later: a transport error, a timeout, a 5xx, or throttling. Such an error says nothing about
// the file, so retrying it must not use up a task's retries: an outage is waited out however long
// it lasts. A verification failure, a refusal (403) or a bad request is not "unavailable".
func Unavailable(err error) bool {
	if errors.Is(err, storage.ErrUnavailable) {
		return true
	}
	if err == nil || errors.Is(err, ErrVerify) || errors.Is(err, ErrConflict) || errors.Is(err, context.Canceled) {
		return false
	}
	var netErr net.Error
	var opErr *net.OpError
	if errors.As(err, &netErr) || errors.As(err, &opErr) || errors.Is(err, context.DeadlineExceeded) {
		return true // wrapped in a response error with status 0 when the request was never answered
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
		code := re.HTTPStatusCode()
		return code >= 500 || code == 429 || code == 408
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling", "ThrottlingException", "RequestLimitExceeded":
			return true
		}
	}
	return false
}

// classify marks an error that means storage is unavailable with storage.ErrUnavailable, so that
// callers outside this package tell an outage from a failure without knowing the SDK's errors.
func classify(err error) error {
	if err == nil || errors.Is(err, storage.ErrUnavailable) || !Unavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
}
