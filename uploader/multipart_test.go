package uploader_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/uploader"
)

// A 2 GiB recording goes up in parts streamed from the file: the heap stays far below the file
// size (about part_concurrency small copy buffers, not the parts themselves), and storage holds a
// verified object of the full size.
func TestMultipartMemoryIsBounded(t *testing.T) {
	const size = 2 << 30
	srv := s3test.Versity(t)
	u := srv.Uploader(t, func(c *uploader.Config) {
		c.MultipartThreshold, c.PartSize, c.PartConcurrency = 16<<20, 16<<20, 4
	})
	p := filepath.Join(t.TempDir(), "big.flv")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A sparse file: 2 GiB to read, nothing to write. Mark the first and last bytes so a
	// misplaced part would change the checksums.
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("FLV"), 0)
	f.WriteAt([]byte("end"), size-3)

	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	typ, _ := media.ForDVR("big.flv")
	obj, err := u.Put(context.Background(), "live/big.flv", f, size, typ, "big")
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	if obj.Size != size || obj.Parts != 128 {
		t.Fatalf("object %+v, want %d bytes in 128 parts", obj, size)
	}
	// Limit: 64 MiB plus the part buffers the config allows (4 × 16 MiB), as the product promises.
	limit := uint64(64<<20 + 4*16<<20)
	t.Logf("peak heap in use during a 2 GiB upload: %.1f MiB (limit %d MiB)", float64(peak.Load())/(1<<20), limit>>20)
	if peak.Load() > limit {
		t.Fatalf("peak heap %d MiB exceeds %d MiB", peak.Load()>>20, limit>>20)
	}
}

// A multipart upload that fails part-way is aborted, so no orphaned parts are left to bill for.
func TestFailedMultipartIsAborted(t *testing.T) {
	var aborts, failedParts atomic.Int32
	srv := s3test.Fake(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			switch {
			case r.Method == http.MethodPut && q.Get("partNumber") == "2":
				failedParts.Add(1)
				http.Error(w, "<Error><Code>InternalError</Code></Error>", http.StatusInternalServerError)
				return
			case r.Method == http.MethodDelete && q.Has("uploadId"):
				aborts.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	u := srv.Uploader(t, func(c *uploader.Config) { c.MultipartThreshold, c.PartSize = 5<<20, 5<<20 })
	f, _ := randomFile(t, 12<<20)
	typ, _ := media.ForDVR("x.mp4")
	_, err := u.Put(context.Background(), "live/x.mp4", f, 12<<20, typ, "x")
	if err == nil || errors.Is(err, uploader.ErrVerify) {
		t.Fatalf("err = %v, want an upload error", err)
	}
	if failedParts.Load() == 0 || aborts.Load() != 1 {
		t.Fatalf("failed part requests %d, aborts %d; want >0 and 1", failedParts.Load(), aborts.Load())
	}
	if !strings.Contains(err.Error(), "live/x.mp4") {
		t.Errorf("error does not name the key: %v", err)
	}
	list, lerr := u.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(srv.Bucket)})
	if lerr != nil {
		t.Fatal(lerr)
	}
	if len(list.Uploads) != 0 {
		t.Fatalf("%d multipart uploads left after the abort", len(list.Uploads))
	}
	if _, found, _ := u.Stat(context.Background(), "live/x.mp4"); found {
		t.Fatal("an object exists after a failed upload")
	}
}
