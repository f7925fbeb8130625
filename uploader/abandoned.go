package uploader

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// A worker killed mid-upload (SIGKILL, OOM, power) leaves its multipart upload open: its parts
// are billed and invisible until someone aborts it. The manager aborts on every error it sees,
// but not after the process is gone. Two sweeps cover that:
//   - before a multipart upload, earlier uploads of the same key are aborted (they belong to an
//     earlier attempt of the same file: keys are unique per file, see PutNew);
//   - AbortStale, run after each reconcile scan, aborts uploads under the prefix older than the
//     longest attempt (worker.timeout), for files whose task never ran again.
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

func (u *Uploader) abortUploads(ctx context.Context, prefix string, stale func(key string, initiated time.Time) bool) (int, error) {
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(u.bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	n := 0
	for {
		out, err := u.client.ListMultipartUploads(ctx, in)
		if err != nil {
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
