package uploader_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/uploader"
)

// lockedBuffer is a bytes.Buffer a logger writes to from the janitor's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// gofakes3 (the embedded S3 of `srs-offload dev`) answers ListMultipartUploads with NoSuchUpload
// for a bucket no multipart upload was started in: that is no upload to abort, not an error
// (it made `dev` warn every minute).
func TestAbortStaleFreshBucket(t *testing.T) {
	srv := s3test.Fake(t, nil)
	u := srv.Uploader(t, nil)
	n, err := u.AbortStale(context.Background(), 0)
	if err != nil || n != 0 {
		t.Fatalf("AbortStale on a bucket without multipart uploads = %d, %v; want 0, nil", n, err)
	}
	// And once one was started, the listing works and finds it.
	leftover(t, u, srv.Bucket, "live/a.flv")
	if n, err := u.AbortStale(context.Background(), 0); err != nil || n != 1 {
		t.Fatalf("AbortStale after a leftover upload = %d, %v; want 1, nil", n, err)
	}
}

// Storage that does not implement ListMultipartUploads (501 NotImplemented) gets one info line
// from the janitor, which then stops asking, instead of a warning every minute.
func TestJanitorStorageCannotList(t *testing.T) {
	var lists atomic.Int64
	srv := s3test.Fake(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := r.URL.Query()["uploads"]; ok && r.Method == http.MethodGet {
				lists.Add(1)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusNotImplemented)
				w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>`))
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	u := srv.Uploader(t, nil)
	log := &lockedBuffer{}
	j := &uploader.Janitor{Uploader: u, Every: 20 * time.Millisecond, Log: slog.New(slog.NewJSONHandler(log, nil))}
	j.Start()
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := j.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if lists.Load() != 1 || len(lines) != 1 || !strings.Contains(lines[0], `"level":"INFO"`) || !strings.Contains(lines[0], "multipart janitor off") {
		t.Fatalf("%d listings (want 1), log:\n%s", lists.Load(), log.String())
	}
}
