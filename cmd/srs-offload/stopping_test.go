package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/internal/loopback"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/internal/s3test"
)

// A graceful stop of `serve` (systemctl restart: SIGTERM, then a new process) lets running
// uploads finish for up to worker.shutdown_timeout, and the hook listener is closed first; a
// start reaches Redis and storage before the hook listener opens. A segment SRS closes in either
// time has no hook (refused, or queued in systemd's socket) and, under a short hls_window, is
// deleted by SRS's cleanup before any hook could take it. The reconciler must hold such a file
// in the spool from the take pass at start until the worker has shut down, so that a process
// uploads it from there.
func TestE2EServeHoldsFilesWhileStopping(t *testing.T) {
	if testing.Short() {
		t.Skip("about 15 s")
	}
	// Storage holds the upload of slow-0.ts until released: the worker's shutdown waits for it.
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	inFlight := make(chan struct{}, 1)
	// While slowStart is set, storage answers the bucket check at start 4 s late.
	var slowStart sync.Mutex
	slowStartOn := false
	checking := make(chan struct{}, 1)
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			slowStart.Lock()
			slowCheck := slowStartOn && r.Method == http.MethodHead && strings.Trim(r.URL.Path, "/") == "test"
			slowStart.Unlock()
			if slowCheck {
				select {
				case checking <- struct{}{}:
				default:
				}
				time.Sleep(4 * time.Second)
			}
			if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/slow-0.ts") {
				select {
				case inFlight <- struct{}{}:
				default:
				}
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	}
	s3 := s3test.Fake(t, wrap)
	s := &stack{t: t, redis: redistest.Start(t), s3: s3, dir: t.TempDir()}
	s.store = s3.Uploader(t, nil)
	s.listen = fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	s.admin = fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	root := filepath.Join(s.dir, "hls")
	os.MkdirAll(filepath.Join(root, "live"), 0o755)
	s.config = filepath.Join(s.dir, "srs-offload.yaml")
	os.WriteFile(s.config, []byte(fmt.Sprintf(`listen: %s
admin: {listen: %s}
node: stopping
log: {level: debug}
redis: {addr: %s}
roots: [%q]
storage:
  endpoint: %s
  bucket: %s
  access_key: ${E2E_AK}
  secret_key: ${E2E_SK}
worker: {retry_base: 100ms, retry_max: 1s, poll_interval: 10ms, shutdown_timeout: 6s}
reconcile: {min_age: 1s, interval: 1h, watch: true}
playlist: {enabled: false}
`, s.listen, s.admin, s.redis.Addr, root, s3.Endpoint, s3.Bucket)), 0o644)
	t.Setenv("E2E_AK", s3.AccessKey)
	t.Setenv("E2E_SK", s3.SecretKey)
	b := s3Bucket{s.store}

	p := s.start("serve")
	slow := filepath.Join(root, "live", "slow-0.ts")
	writeSegment(t, slow, randomBytes(64<<10, 1))
	post(t, "http://"+s.listen+"/api/v1/hls", srsHook("c1", "slow", root, "./live/slow-0.ts", "live/slow-0.ts", filepath.Join(root, "live/slow.m3u8"), 0, 2))
	select {
	case <-inFlight:
	case <-time.After(10 * time.Second):
		t.Fatalf("the upload of slow-0.ts never reached storage\n%s", p.log.String())
	}

	// SIGTERM: the hook listener closes, the worker waits for the upload in flight.
	p.cmd.Process.Signal(syscall.SIGTERM)
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.DialTimeout("tcp", s.listen, 200*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the hook listener still accepts 5 s after SIGTERM\n%s", p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// SRS closes a segment (its hook cannot be delivered) and deletes it 2 s later, while the
	// process is still stopping.
	rel := "live/cam1-7.ts"
	path := filepath.Join(root, rel)
	data := randomBytes(48<<10, 2)
	writeSegment(t, path, data)
	time.Sleep(2 * time.Second)
	select {
	case err := <-p.done:
		p.done <- err
		t.Fatalf("serve exited before the test could check its stop (%v): the upload in flight should hold it for 6 s\n%s", err, p.log.String())
	default:
	}
	if err := os.Remove(path); err != nil { // SRS's hls_cleanup
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not exit 20 s after SIGTERM\n%s", p.log.String())
	}
	releaseOnce.Do(func() { close(release) })

	// The next process starts slowly (storage answers its bucket check late): before its hook
	// listener is up, SRS closes another segment, whose hook is refused, and deletes it.
	slowStart.Lock()
	slowStartOn = true
	slowStart.Unlock()
	started := make(chan *proc, 1)
	go func() { started <- s.start("serve") }()
	select {
	case <-checking:
	case <-time.After(15 * time.Second):
		t.Fatal("the next serve never checked the bucket")
	}
	rel2 := "live/cam1-8.ts"
	path2 := filepath.Join(root, rel2)
	data2 := randomBytes(40<<10, 3)
	writeSegment(t, path2, data2)
	time.Sleep(2 * time.Second)
	if err := os.Remove(path2); err != nil { // SRS's hls_cleanup
		t.Fatal(err)
	}
	p2 := <-started
	slowStart.Lock()
	slowStartOn = false
	slowStart.Unlock()

	// The next process uploads both from the spool.
	for _, w := range []struct {
		rel, when string
		data      []byte
	}{{rel, "while serve was stopping", data}, {rel2, "while the next serve was starting", data2}} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, _, found, err := b.get(w.rel)
			if err == nil && found {
				if !bytes.Equal(got, w.data) {
					t.Fatalf("%s: stored %d bytes that differ from the %d written", w.rel, len(got), len(w.data))
				}
				break
			}
			if time.Now().After(deadline) {
				held, _ := filepath.Glob(filepath.Join(root, ".srs-offload", "live", "*"))
				t.Fatalf("%s, closed %s and deleted by SRS before a hook could take it, never reached storage (spool: %v)\nstopping process:\n%s\nnext process:\n%s",
					w.rel, w.when, held, p.log.String(), p2.log.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
