package uploader

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/srs-offload/srs-offload/media"
)

// Describe says, in words, how uploads are verified with this provider and config.
func (u *Uploader) Describe() string {
	alg := u.checksum
	multipart := "composite for multipart"
	if u.provider.fullObjectFor(alg) {
		multipart = "full-object for multipart"
	}
	sum := fmt.Sprintf("checksum %s (sent as a header, %s)", alg, multipart)
	if u.provider.googHash {
		// GCS: nothing x-amz-checksum-* is sent; every body carries Content-MD5.
		sum = fmt.Sprintf("checksum %s from x-goog-hash (whole object, multipart too; Content-MD5 sent with every body, "+
			"and x-goog-hash md5 compared where storage reports one)", alg)
		if u.verify == VerifyAuto {
			return fmt.Sprintf("auto for provider %s: %s", u.provider.name, sum)
		}
	}
	switch u.verify {
	case VerifyMD5:
		return "md5 (ETag = MD5 of the file; multipart: MD5 of the part MD5s)"
	case VerifyChecksum:
		return sum
	case VerifySize:
		return "size (the weakest: only the stored size is compared)"
	}
	var picks []string
	if u.provider.etagMD5 {
		picks = append(picks, "md5 for objects stored unencrypted or with SSE-S3")
	}
	if u.provider.checksums {
		picks = append(picks, sum+" for objects storage encrypts with SSE-KMS or SSE-C")
	} else {
		picks = append(picks, "size for objects storage encrypts with SSE-KMS or SSE-C (the provider reports no checksums)")
	}
	return fmt.Sprintf("auto for provider %s: %s", u.provider.name, strings.Join(picks, "; "))
}

// Probe proves the verify mode: it uploads a small probe object, verifies it as every upload is
// verified, deletes it, and says which mode it used. For check --connect.
func (u *Uploader) Probe(ctx context.Context) (string, error) {
	key := fmt.Sprintf(".srs-offload-probe-%d", time.Now().UnixNano())
	body := bytes.Repeat([]byte("srs-offload verify probe\n"), 2048)
	obj, err := u.Put(ctx, key, bytes.NewReader(body), int64(len(body)),
		media.Type{ContentType: "application/octet-stream", CacheControl: "no-store"}, "check --connect")
	full := u.Key(key)
	// Delete whatever was written, verified or not.
	_, derr := u.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(u.bucket), Key: aws.String(full)})
	if err != nil {
		return "", fmt.Errorf("storage.verify %s: the probe object s3://%s/%s failed: %w", u.verify, u.bucket, full, err)
	}
	if derr != nil {
		return "", fmt.Errorf("storage.verify %s: the probe object s3://%s/%s was verified by %s but not deleted: %w",
			u.verify, u.bucket, full, obj.Verified, classify(derr))
	}
	return fmt.Sprintf("storage.verify: %s; probe object s3://%s/%s written, verified by %s, deleted",
		u.Describe(), u.bucket, full, obj.Verified), nil
}
