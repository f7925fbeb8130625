package uploader_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/uploader"
)

// leftover starts a multipart upload of full (a key with the prefix) and uploads one part, as a
// worker killed mid-upload leaves it, and returns its upload id.
func leftover(t *testing.T, u *uploader.Uploader, bucket, full string) string {
	t.Helper()
	ctx := context.Background()
	out, err := u.Client().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(full)})
	if err != nil {
		t.Fatalf("create multipart upload %s: %v", full, err)
	}
	_, err = u.Client().UploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(bucket), Key: aws.String(full), UploadId: out.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(bytes.Repeat([]byte("p"), 1<<20)),
	})
	if err != nil {
		t.Fatalf("upload part of %s: %v", full, err)
	}
	return aws.ToString(out.UploadId)
}

// openUploads lists the open multipart uploads in the bucket as "key upload-id", sorted.
func openUploads(t *testing.T, u *uploader.Uploader, bucket string) []string {
	t.Helper()
	out, err := u.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var list []string
	for _, up := range out.Uploads {
		list = append(list, aws.ToString(up.Key)+" "+aws.ToString(up.UploadId))
	}
	sort.Strings(list)
	return list
}

// noSuchUpload reports whether storage says the upload id is gone (aborted or completed).
func noSuchUpload(t *testing.T, u *uploader.Uploader, bucket, full, id string) bool {
	t.Helper()
	_, err := u.Client().ListParts(context.Background(), &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String(full), UploadId: aws.String(id)})
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "NoSuchUpload"
}

// AbortStale aborts the multipart uploads under the prefix started more than olderThan ago; a
// fresh one (younger than olderThan) and one outside the prefix are left alone.
func TestAbortStale(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Versity(t)
	u := srv.Uploader(t, func(c *uploader.Config) { c.Prefix = "srs/" })
	mine := leftover(t, u, srv.Bucket, u.Key("live/cam1.1763935200123.flv"))
	other := leftover(t, u, srv.Bucket, "elsewhere/x.flv")
	before := openUploads(t, u, srv.Bucket)
	if len(before) != 2 {
		t.Fatalf("open uploads %v, want 2", before)
	}

	n, err := u.AbortStale(ctx, time.Hour)
	if err != nil || n != 0 {
		t.Fatalf("AbortStale(1h) = %d, %v; want nothing aborted", n, err)
	}
	if got := openUploads(t, u, srv.Bucket); len(got) != 2 {
		t.Fatalf("after AbortStale(1h): %v, want both uploads still open", got)
	}

	n, err = u.AbortStale(ctx, 0)
	if err != nil || n != 1 {
		t.Fatalf("AbortStale(0) = %d, %v; want 1 aborted", n, err)
	}
	if !noSuchUpload(t, u, srv.Bucket, u.Key("live/cam1.1763935200123.flv"), mine) {
		t.Fatal("the stale upload under the prefix is still open")
	}
	got := openUploads(t, u, srv.Bucket)
	if len(got) != 1 || got[0] != "elsewhere/x.flv "+other {
		t.Fatalf("open uploads %v, want only the one outside the prefix", got)
	}
}

// A multipart PutNew first aborts the open uploads of the same key that an earlier, killed
// attempt left; uploads of other keys are not touched, and the new object is stored intact.
func TestPutNewAbortsEarlierAttempt(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Versity(t)
	u := srv.Uploader(t, func(c *uploader.Config) { c.MultipartThreshold, c.PartSize = 5<<20, 5<<20 })
	const key = "live/cam1/cam1.1763935200123.flv"
	const size = 12 << 20
	earlier := leftover(t, u, srv.Bucket, u.Key(key))
	neighbour := leftover(t, u, srv.Bucket, u.Key(key+".other"))

	f, want := randomFile(t, size)
	typ, _ := media.ForDVR(key)
	got, obj, err := u.PutNew(ctx, key, f, size, typ, "dvr-0123456789abcdef")
	if err != nil || got != key {
		t.Fatalf("PutNew: key %q, %v", got, err)
	}
	if obj.Parts != 3 {
		t.Errorf("stored in %d parts, want 3 (a multipart upload)", obj.Parts)
	}
	if !noSuchUpload(t, u, srv.Bucket, u.Key(key), earlier) {
		t.Fatal("the earlier attempt's multipart upload is still open")
	}
	open := openUploads(t, u, srv.Bucket)
	if len(open) != 1 || open[0] != u.Key(key+".other")+" "+neighbour {
		t.Fatalf("open uploads %v, want only the other key's", open)
	}
	stored, err := u.Get(ctx, key)
	if err != nil || !bytes.Equal(stored, want) {
		t.Fatalf("stored object: %d bytes, err %v; want the %d local bytes", len(stored), err, len(want))
	}
}

// The janitor aborts a killed worker's upload as soon as it starts and again every Every, and
// Shutdown stops it: an upload left after that stays.
func TestJanitor(t *testing.T) {
	srv := s3test.Fake(t, nil)
	u := srv.Uploader(t, nil)
	first := leftover(t, u, srv.Bucket, "live/a.flv")
	j := &uploader.Janitor{Uploader: u, OlderThan: 0, Every: 50 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	j.Start()
	deadline := time.Now().Add(5 * time.Second)
	for !noSuchUpload(t, u, srv.Bucket, "live/a.flv", first) {
		if time.Now().After(deadline) {
			t.Fatal("the janitor did not abort the stale upload")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Only created, no part: with OlderThan 0 the running janitor may abort it at once, before a
	// part could be uploaded to it.
	created, err := u.Client().CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: aws.String(srv.Bucket), Key: aws.String("live/b.flv")})
	if err != nil {
		t.Fatal(err)
	}
	second := aws.ToString(created.UploadId)
	for !noSuchUpload(t, u, srv.Bucket, "live/b.flv", second) {
		if time.Now().After(deadline) {
			t.Fatal("the janitor did not come back for an upload left later")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := j.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	third := leftover(t, u, srv.Bucket, "live/c.flv")
	time.Sleep(200 * time.Millisecond)
	if noSuchUpload(t, u, srv.Bucket, "live/c.flv", third) {
		t.Fatal("the janitor still ran after Shutdown returned")
	}
}
