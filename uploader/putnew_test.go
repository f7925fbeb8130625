package uploader_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/uploader"
)

// PutNew never replaces another file's object: the same origin again is a no-op, another file
// under a taken name goes to an alternate key, and the first object stays as it was.
func TestPutNewNeverReplacesAnotherFile(t *testing.T) {
	ctx := context.Background()
	typ, _ := media.ForHLS("init.mp4")
	for _, srv := range s3test.Both(t) {
		u := srv.Uploader(t, func(c *uploader.Config) { c.MultipartThreshold, c.PartSize = 5<<20, 5<<20 })
		for _, size := range []int{3000, 6 << 20} { // single PUT and multipart
			t.Run(srv.Name, func(t *testing.T) {
				key := "live/livestream/init.mp4"
				if size > 5<<20 {
					key = "live/big.mp4"
				}
				f1, b1 := randomFile(t, size)
				k, _, err := u.PutNew(ctx, key, f1, int64(size), typ, "offload-aaaaaaaaaaaa1111")
				if err != nil || k != key {
					t.Fatalf("first: key %q err %v", k, err)
				}
				// The same file again (a repeated delivery): same key, nothing rewritten.
				k, _, err = u.PutNew(ctx, key, f1, int64(size), typ, "offload-aaaaaaaaaaaa1111")
				if err != nil || k != key {
					t.Fatalf("again: key %q err %v", k, err)
				}
				// Another file under the same name (SRS rewrote init.mp4).
				f2, _ := randomFile(t, size+1)
				b2 := make([]byte, size+1)
				f2.ReadAt(b2, 0)
				k2, _, err := u.PutNew(ctx, key, f2, int64(size+1), typ, "offload-bbbbbbbbbbbb2222")
				if err != nil {
					t.Fatal(err)
				}
				if k2 == key || !strings.Contains(k2, "~bbbbbbbbbbbb") {
					t.Fatalf("another file got key %q", k2)
				}
				if got, _ := u.Get(ctx, key); !bytes.Equal(got, b1) {
					t.Fatal("the first object was replaced")
				}
				if got, _ := u.Get(ctx, k2); !bytes.Equal(got, b2) {
					t.Fatal("the second file is not stored at its alternate key")
				}
			})
		}
	}
}
