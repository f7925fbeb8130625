package uploader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// A worker killed mid-upload (SIGKILL, OOM, power) leaves its multipart upload open: its parts
// are billed and invisible until someone aborts it. The manager aborts on every error it sees,
// but not after the process is gone. Two sweeps cover that:
//   - before a multipart upload, earlier uploads of the same key are aborted (they belong to an
//     earlier attempt of the same file: keys are unique per file, see PutNew);
//   - the Janitor (in every worker process) runs AbortStale every minute: it aborts uploads under
//     the prefix older than the longest attempt (worker.timeout), for files whose task never ran
//     again.
// A bucket lifecycle rule (AbortIncompleteMultipartUpload) is still a good idea on AWS.

// abortEarlier aborts the open multipart uploads of exactly key (full, with prefix) started
// before this attempt.
func (u *Uploader) abortEarlier(ctx context.Context, full string, before time.Time) (int, error) {
	return u.abortUploads(ctx, full, func(key string, initiated time.Time) bool {
		return key == full && initiated.Before(before)
	})
}

// AbortStale aborts the multipart uploads under the storage prefix started more than olderThan
// ago, and returns how many it aborted.
func (u *Uploader) AbortStale(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	return u.abortUploads(ctx, u.prefix, func(_ string, initiated time.Time) bool {
		return initiated.Before(cutoff)
	})
}

// ErrCannotListUploads is what storage that does not implement ListMultipartUploads (501
// NotImplemented) makes the sweeps return: stale uploads cannot be found there.
var ErrCannotListUploads = errors.New("storage does not list multipart uploads (NotImplemented)")

func (u *Uploader) abortUploads(ctx context.Context, prefix string, stale func(key string, initiated time.Time) bool) (int, error) {
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(u.bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	n := 0
	for {
		out, err := u.client.ListMultipartUploads(ctx, in)
		var api smithy.APIError
		var re *awshttp.ResponseError
		switch {
		case err == nil:
		case errors.As(err, &api) && api.ErrorCode() == "NoSuchUpload":
			// No upload id was asked for: gofakes3 (the embedded S3 of `dev`) answers so for a
			// bucket no multipart upload was ever started in. There is nothing to abort.
			return n, nil
		case errors.As(err, &api) && api.ErrorCode() == "NotImplemented",
			errors.As(err, &re) && re.HTTPStatusCode() == 501:
			return n, fmt.Errorf("list multipart uploads in s3://%s/%s: %w", u.bucket, prefix, ErrCannotListUploads)
		default:
			return n, fmt.Errorf("list multipart uploads in s3://%s/%s: %w", u.bucket, prefix, err)
		}
		for _, up := range out.Uploads {
			if !stale(aws.ToString(up.Key), aws.ToTime(up.Initiated)) {
				continue
			}
			_, err := u.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(u.bucket), Key: up.Key, UploadId: up.UploadId,
			})
			if err != nil {
				return n, fmt.Errorf("abort multipart upload %s of s3://%s/%s: %w", aws.ToString(up.UploadId), u.bucket, aws.ToString(up.Key), err)
			}
			n++
		}
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// Janitor aborts the multipart uploads killed workers left behind: AbortStale every Every (a
// minute when zero), for uploads older than OlderThan. It is the one home of that cleanup; like
// asynq's janitor it runs from Start until Shutdown.
type Janitor struct {
	Uploader  *Uploader
	OlderThan time.Duration
	Every     time.Duration
	Log       *slog.Logger

	stop context.CancelFunc
	done chan struct{}
}

// Start runs the janitor in the background: once at once, then every Every.
func (j *Janitor) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	j.stop, j.done = cancel, make(chan struct{})
	every := j.Every
	if every <= 0 {
		every = time.Minute
	}
	go func() {
		defer close(j.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if !j.sweep(ctx) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// sweep runs AbortStale once, and reports whether sweeping again is of use: not on storage that
// cannot list multipart uploads, which is said once (not every minute).
func (j *Janitor) sweep(ctx context.Context) bool {
	n, err := j.Uploader.AbortStale(ctx, j.OlderThan)
	switch {
	case errors.Is(err, ErrCannotListUploads):
		j.Log.Info("multipart janitor off: storage cannot list multipart uploads, so uploads left by killed workers are not aborted here (a lifecycle rule AbortIncompleteMultipartUpload does it)", "err", err)
		return false
	case err != nil && ctx.Err() == nil:
		j.Log.Warn("could not look for stale multipart uploads", "err", err)
	case n > 0:
		j.Log.Info("aborted multipart uploads left by killed workers", "uploads", n)
	}
	return true
}

// Shutdown stops the janitor (a sweep under way is cancelled) and waits for it, or for ctx.
func (j *Janitor) Shutdown(ctx context.Context) error {
	if j.stop == nil {
		return nil
	}
	j.stop()
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("multipart janitor: %w", ctx.Err())
	}
}
