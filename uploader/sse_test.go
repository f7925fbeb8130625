package uploader_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/uploader"
)

// Encryption settings that do not go together are refused by New, naming the config key; no
// error quotes the SSE-C key.
func TestEncryptionConfigErrors(t *testing.T) {
	key := bytes.Repeat([]byte("k"), 32)
	for _, c := range []struct {
		cfg uploader.Config
		key string
	}{
		{uploader.Config{SSE: "aes256"}, "storage.sse"},
		{uploader.Config{KMSKeyID: "k1"}, "storage.kms_key_id"},
		{uploader.Config{SSE: uploader.SSES3, KMSKeyID: "k1"}, "storage.kms_key_id"},
		{uploader.Config{SSE: uploader.SSES3, BucketKey: true}, "storage.bucket_key"},
		{uploader.Config{SSE: uploader.SSEKMS, SSECKey: key}, "storage.sse_c_key_env"},
		{uploader.Config{SSECKey: key[:31]}, "storage.sse_c_key_env"},
		{uploader.Config{SSECKey: append(key, 'k')}, "storage.sse_c_key_env"},
	} {
		c.cfg.Bucket = "b"
		_, err := uploader.New(context.Background(), c.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), c.key+":") {
			t.Errorf("%+v: err = %v, want one naming %s", c.cfg.SSE, err, c.key)
			continue
		}
		if strings.Contains(err.Error(), "kkkkkkkk") {
			t.Errorf("the error quotes the SSE-C key: %v", err)
		}
	}
}

// Every request about an object carries the encryption it needs: SSE-S3 and SSE-KMS (with the
// key id and bucket key) on PutObject and CreateMultipartUpload; SSE-C's three headers on
// PutObject, CreateMultipartUpload, UploadPart, CompleteMultipartUpload, HeadObject and GetObject.
func TestEncryptionHeaders(t *testing.T) {
	ts, _ := media.ForHLS("x.ts")
	ssec := bytes.Repeat([]byte{7}, 32)
	sum := md5.Sum(ssec)
	for _, c := range []struct {
		name   string
		change func(*uploader.Config)
		// want is the headers each kind of request must carry
		want map[string]map[string]string
	}{
		{"sse-s3", func(c *uploader.Config) { c.SSE = uploader.SSES3 }, map[string]map[string]string{
			"PutObject":             {"X-Amz-Server-Side-Encryption": "AES256"},
			"CreateMultipartUpload": {"X-Amz-Server-Side-Encryption": "AES256"},
		}},
		{"sse-kms", func(c *uploader.Config) { c.SSE, c.KMSKeyID, c.BucketKey = uploader.SSEKMS, "key-1", true }, map[string]map[string]string{
			"PutObject": {"X-Amz-Server-Side-Encryption": "aws:kms", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": "key-1",
				"X-Amz-Server-Side-Encryption-Bucket-Key-Enabled": "true"},
			"CreateMultipartUpload": {"X-Amz-Server-Side-Encryption": "aws:kms", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": "key-1",
				"X-Amz-Server-Side-Encryption-Bucket-Key-Enabled": "true"},
		}},
		{"sse-c", func(c *uploader.Config) { c.SSECKey = ssec }, func() map[string]map[string]string {
			h := map[string]string{
				"X-Amz-Server-Side-Encryption-Customer-Algorithm": "AES256",
				"X-Amz-Server-Side-Encryption-Customer-Key":       base64.StdEncoding.EncodeToString(ssec),
				"X-Amz-Server-Side-Encryption-Customer-Key-Md5":   base64.StdEncoding.EncodeToString(sum[:]),
			}
			m := map[string]map[string]string{}
			for _, op := range []string{"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "HeadObject", "GetObject"} {
				m[op] = h
			}
			return m
		}()},
	} {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string][]http.Header{}
			srv := s3test.Fake(t, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if op := operation(r); op != "" {
						mu.Lock()
						seen[op] = append(seen[op], r.Header.Clone())
						mu.Unlock()
					}
					next.ServeHTTP(w, r)
				})
			})
			u := srv.Uploader(t, func(cfg *uploader.Config) {
				cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
				// gofakes3 echoes the SSE headers but stores no checksums, so auto (checksum for
				// SSE-KMS/SSE-C objects) could not prove them here; this test is about the headers.
				cfg.Verify = uploader.VerifyMD5
				c.change(cfg)
			})
			ctx := context.Background()
			for _, size := range []int{100 << 10, 11 << 20} {
				f, want := randomFile(t, size)
				key := fmt.Sprintf("live/%d.ts", size)
				if _, err := u.Put(ctx, key, f, int64(size), ts, "o"); err != nil {
					t.Fatal(err)
				}
				if got, err := u.Get(ctx, key); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("get %s: %d bytes, %v", key, len(got), err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for op, hs := range c.want {
				if len(seen[op]) == 0 {
					t.Errorf("no %s request seen", op)
				}
				for name, val := range hs {
					for _, r := range seen[op] {
						if got := r.Get(name); got != val {
							t.Errorf("%s: %s: %q, want %q", op, name, got, val)
						}
					}
				}
			}
		})
	}
}

// operation names the S3 operation of an object request.
func operation(r *http.Request) string {
	q := r.URL.Query()
	if strings.Count(strings.Trim(r.URL.Path, "/"), "/") < 1 {
		return "" // a bucket request
	}
	switch {
	case r.Method == http.MethodPut && q.Has("partNumber"):
		return "UploadPart"
	case r.Method == http.MethodPut:
		return "PutObject"
	case r.Method == http.MethodPost && q.Has("uploads"):
		return "CreateMultipartUpload"
	case r.Method == http.MethodPost && q.Has("uploadId"):
		return "CompleteMultipartUpload"
	case r.Method == http.MethodHead:
		return "HeadObject"
	case r.Method == http.MethodGet:
		return "GetObject"
	}
	return ""
}
