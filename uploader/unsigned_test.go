package uploader_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/uploader"
)

// Bodies are not hashed for the signature (UNSIGNED-PAYLOAD): over plain http the SDK would read
// each byte once more for a SHA-256 that proves nothing Content-MD5 and the ETag check do not.
// Single PUTs still carry Content-MD5. (The stored bytes are checked by the other tests, also on
// versitygw, which verifies signatures.)
func TestBodiesAreNotHashedForTheSignature(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]string{} // request kind → x-amz-content-sha256 values
	md5s := 0
	srv := s3test.Fake(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut {
				kind := "put"
				if r.URL.Query().Has("partNumber") {
					kind = "part"
				}
				mu.Lock()
				seen[kind] = append(seen[kind], r.Header.Get("X-Amz-Content-Sha256"))
				if kind == "put" && r.Header.Get("Content-Md5") != "" {
					md5s++
				}
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	})
	u := srv.Uploader(t, func(c *uploader.Config) { c.MultipartThreshold, c.PartSize = 5<<20, 5<<20 })
	ts, _ := media.ForHLS("x.ts")
	for _, size := range []int{100 << 10, 11 << 20} {
		f, _ := randomFile(t, size)
		if _, _, err := u.PutNew(context.Background(), fmt.Sprintf("k%d", size), f, int64(size), ts, "o"); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen["put"]) != 1 || len(seen["part"]) != 3 {
		t.Fatalf("requests seen: %v", seen)
	}
	for kind, vals := range seen {
		for _, v := range vals {
			if v != "UNSIGNED-PAYLOAD" {
				t.Errorf("%s request signed with x-amz-content-sha256 %q, want UNSIGNED-PAYLOAD", kind, v)
			}
		}
	}
	if md5s != 1 {
		t.Errorf("single PUT without Content-MD5")
	}
}
