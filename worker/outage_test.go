package worker_test

import (
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/internal/s3test"
)

// Storage answering 503 (an outage) is waited out: the task is retried without using up its
// retries, the file stays until storage takes it, and then it is stored and purged as usual.
func TestStorageOutageDoesNotUseUpRetries(t *testing.T) {
	t.Parallel()
	var failures atomic.Int32
	const outage = 4 // answers 503 this many times
	srv := s3test.Fake(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if strings.HasSuffix(req.URL.Path, ".ts") && failures.Load() < outage {
				failures.Add(1)
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte("<Error><Code>ServiceUnavailable</Code><Message>down</Message></Error>"))
				return
			}
			next.ServeHTTP(w, req)
		})
	})
	r := newRig(t, rigConfig{s3: srv})
	rel := "live/cam1/2026/11/23/22/cam1-1.ts"
	want := r.writeRandom(rel, 50<<10)
	p := r.hls(rel, rel, "live/cam1/index.m3u8", "live/cam1/index.m3u8")
	r.start(0)
	r.enqueue(p)
	// While storage is down the file stays.
	for failures.Load() < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := os.Stat(p.Path); err != nil {
		t.Fatalf("the file went during the outage: %v", err)
	}
	ti := r.wait(p, asynq.TaskStateCompleted, 30*time.Second)
	if failures.Load() < outage {
		t.Fatalf("only %d failed attempts", failures.Load())
	}
	if ti.Retried != 0 {
		t.Errorf("the outage used up %d retries", ti.Retried)
	}
	r.stored(p.Key, want)
	if _, err := os.Stat(p.Path); !os.IsNotExist(err) {
		t.Errorf("not purged after the outage: %v", err)
	}
}
