package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/goleak"

	"github.com/srs-offload/srs-offload/internal/loopback"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/settings"
)

// hangingS3 is a proxy in front of a real S3 server that, once hang is set, holds every request
// until its client gives up: storage as slow as it gets.
func hangingS3(t *testing.T, target string) (endpoint string, hang *atomic.Bool) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	hang = &atomic.Bool{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			io.Copy(io.Discard, r.Body) // then net/http sees the client go away
			select {
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	return srv.URL, hang
}

// contentsUnder returns the MD5 of every regular file below dir, spool included.
func contentsUnder(t *testing.T, dir string) map[[16]byte]string {
	t.Helper()
	out := map[[16]byte]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil {
				out[md5.Sum(b)] = p
			}
		}
		return nil
	})
	return out
}

// SIGTERM during a backlog, with storage hanging: uploads in flight, tasks waiting, the watcher,
// the sweeper and the janitor running. The process exits within worker.shutdown_timeout (and a
// small margin), every file is still on disk or stored, and a file SRS writes while the process
// shuts down is still taken into the spool: the reconciler's watcher stops last.
func TestE2EShutdownDuringBacklog(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rds := redistest.Start(t)
	s3srv := s3test.Versity(t)
	endpoint, hang := hangingS3(t, s3srv.Endpoint)
	listen := fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	const shutdownTimeout = 3 * time.Second
	cfg := fmt.Sprintf(`
listen: %s
admin: {listen: %s}
node: shutdown
redis: {addr: %s}
roots: [%q]
storage: {endpoint: %s, bucket: %s, access_key: %s, secret_key: %s}
reconcile: {min_age: 1s, interval: 1m, watch: true}
playlist: {idle: 4s}
worker: {concurrency: 4, retry_base: 100ms, retry_max: 1s, poll_interval: 10ms, shutdown_timeout: %s}
`, listen, admin, rds.Addr, root, endpoint, s3srv.Bucket, s3srv.AccessKey, s3srv.SecretKey, shutdownTimeout)
	cfgPath := filepath.Join(t.TempDir(), "srs-offload.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command(binary(t), "serve", "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		if t.Failed() {
			t.Logf("srs-offload serve log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if resp, err := http.Get("http://" + admin + "/metrics"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The backlog: storage hangs, 4 uploads are in flight, the rest wait in the queue.
	hang.Store(true)
	var written [][]byte
	m3u8 := filepath.Join(root, "live", "cam1.m3u8")
	for seq := range int64(12) {
		rel := fmt.Sprintf("live/cam1-%d.ts", seq)
		data := randomBytes(20000+int(seq), uint64(1000+seq))
		writeSegment(t, filepath.Join(root, rel), data)
		written = append(written, data)
		post(t, "http://"+listen+"/api/v1/hls", srsHook("c1", "cam1", root, "./"+rel, rel, m3u8, seq, 2))
	}
	// A file whose hook never comes, in a new folder: the watcher takes it.
	lost := randomBytes(30000, 7)
	writeSegment(t, filepath.Join(root, "live", "cam2", "20260101", "1767225600000-0.ts"), lost)
	written = append(written, lost)
	time.Sleep(1500 * time.Millisecond) // uploads under way, hanging

	t0 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// SRS goes on writing while srs-offload shuts down; SRS's cleanup may delete the file at any
	// moment, so it must be held in the spool.
	time.Sleep(300 * time.Millisecond)
	during := randomBytes(25000, 8)
	writeSegment(t, filepath.Join(root, "live", "cam1-99.ts"), during)
	written = append(written, during)

	var exitErr error
	select {
	case exitErr = <-done:
	case <-time.After(shutdownTimeout + 10*time.Second):
		t.Fatalf("no exit %s after SIGTERM", time.Since(t0))
	}
	took := time.Since(t0)
	t.Logf("exit %v after SIGTERM in %s (shutdown_timeout %s)", exitErr, took.Round(time.Millisecond), shutdownTimeout)
	if exitErr != nil {
		t.Errorf("exit after SIGTERM: %v", exitErr)
	}
	if max := shutdownTimeout + shutdownMargin + time.Second; took > max {
		t.Errorf("exit took %s, want at most %s (worker.shutdown_timeout + margin)", took, max)
	}

	// Nothing lost: every file is on disk (where SRS wrote it, or in the spool) or stored.
	have := contentsUnder(t, root)
	hang.Store(false)
	store := s3srv.Uploader(t, nil)
	list, err := store.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(s3srv.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, o := range list.Contents {
		out, err := store.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(s3srv.Bucket), Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(out.Body)
		out.Body.Close()
		have[md5.Sum(b)] = "s3://" + aws.ToString(o.Key)
		stored++
	}
	for i, data := range written {
		if _, ok := have[md5.Sum(data)]; !ok {
			t.Errorf("file %d (%d bytes) is neither on disk nor stored", i, len(data))
		}
	}
	// The file written during the shutdown was taken: a hard link in the spool holds it.
	spooled := false
	filepath.WalkDir(filepath.Join(root, ".srs-offload"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, "-cam1-99.ts") {
			spooled = true
		}
		return nil
	})
	if !spooled {
		t.Errorf("the file written during the shutdown was not taken into the spool (the watcher stopped before the worker)")
	}
	t.Logf("after exit: %d objects stored, %d files on disk", stored, len(have)-stored)
}

// Every goroutine serve starts (listeners, worker, sweeper, janitor, reconciler, watcher, admin
// checks) has ended when it returns.
func TestServeShutdownEndsEveryGoroutine(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rds := redistest.Start(t)
	s3srv := s3test.Versity(t)
	cfg := settings.Default()
	cfg.Listen = fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	cfg.Admin.Listen = fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	cfg.Node, cfg.Roots, cfg.Redis.Addr = "leak", []string{root}, rds.Addr
	cfg.Storage.Endpoint, cfg.Storage.Bucket = s3srv.Endpoint, s3srv.Bucket
	cfg.Storage.AccessKey, cfg.Storage.SecretKey = s3srv.AccessKey, s3srv.SecretKey
	cfg.Reconcile.MinAge, cfg.Playlist.Idle = time.Second, 4*time.Second
	cfg.Worker.ShutdownTimeout, cfg.Worker.PollInterval = 5*time.Second, 10*time.Millisecond

	// Whatever runs before (the test's own servers) is not serve's.
	ignore := goleak.IgnoreCurrent()
	p, err := compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, p, roles{hooks: true, worker: true}, slog.New(slog.NewTextHandler(io.Discard, nil)), ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	m3u8 := filepath.Join(root, "live", "cam1.m3u8")
	for seq := range int64(3) {
		rel := fmt.Sprintf("live/cam1-%d.ts", seq)
		writeSegment(t, filepath.Join(root, rel), randomBytes(5000, uint64(seq)))
		post(t, "http://"+addr+"/api/v1/hls", srsHook("c1", "cam1", root, "./"+rel, rel, m3u8, seq, 2))
	}
	writeSegment(t, filepath.Join(root, "live", "cam2", "20260101", "1767225600000-0.ts"), randomBytes(5000, 9))
	time.Sleep(1500 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	p.close()
	http.DefaultClient.CloseIdleConnections() // the test's own hook requests
	goleak.VerifyNone(t, ignore,
		// Idle keep-alive connections of HTTP clients' pools (the storage client's among them)
		// are not duties: they close with their peer or the process.
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"))
}
