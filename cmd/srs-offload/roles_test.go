package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/settings"
)

// flakyQueue is the real queue client, failing on demand after the hook's announce succeeded,
// as Redis does when it goes away between the two.
type flakyQueue struct {
	*queue.Client
	fail atomic.Bool
	mu   sync.Mutex
	ok   []queue.Offload
}

func (f *flakyQueue) Enqueue(ctx context.Context, p queue.Offload) (bool, error) {
	if f.fail.Load() {
		return false, errors.New("enqueue: connection refused (Redis went away after the announce)")
	}
	dup, err := f.Client.Enqueue(ctx, p)
	if err == nil {
		f.mu.Lock()
		f.ok = append(f.ok, p)
		f.mu.Unlock()
	}
	return dup, err
}

// The `hooks` role has no storage: its playlists are a Receiver, which records in the ledger and
// never publishes. A hook whose enqueue fails after its announce is withdrawn from the ledger
// (here at a moment when that moves the live playlist: the head segment stalled and the next one
// is verified), answered 503, and the process goes on; a worker's sweep then publishes the live
// playlist the withdrawal moved. With the worker's Manager in the hooks role (no Store), this
// withdrawal published through a nil store.
func TestHooksRoleEnqueueFailsAfterAnnounce(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rds := redistest.Start(t)
	cfg := settings.Default()
	cfg.Roots, cfg.Node, cfg.Hooks.EnqueueTimeout = []string{root}, "roles", 2*time.Second
	cfg.Spool.Enabled = false
	p, err := compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	rdb := redis.NewClient(&redis.Options{Addr: rds.Addr})
	t.Cleanup(func() { rdb.Close() })
	const stall = 300 * time.Millisecond
	ledger := playlist.New(rdb, playlist.Settings{Stall: stall})
	qc := queue.NewClient(asynq.RedisClientOpt{Addr: rds.Addr}, queue.Options{Node: cfg.Node, MaxRetry: 3, Timeout: time.Minute, Dedup: time.Hour})
	t.Cleanup(func() { qc.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pr := &process{p: p, r: roles{hooks: true}, log: log, qc: qc}
	h := pr.newHooks(&playlist.Receiver{Ledger: ledger, Node: cfg.Node})
	flaky := &flakyQueue{Client: qc}
	h.Intake.Queue = flaky
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	m3u8 := filepath.Join(root, "live", "cam1.m3u8")
	hook := func(seq int64) (int, string, error) {
		rel := "live/cam1-" + string(rune('0'+seq)) + ".ts"
		writeSegment(t, filepath.Join(root, rel), randomBytes(1000+int(seq), uint64(seq)))
		resp, err := http.Post(srv.URL+"/api/v1/hls", "application/json",
			bytes.NewReader(srsHook("c1", "cam1", root, "./"+rel, rel, m3u8, seq, 2)))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	for seq := range int64(2) {
		if code, body, err := hook(seq); err != nil || code != 200 {
			t.Fatalf("hook %d: %d %s %v", seq, code, body, err)
		}
	}
	// A worker stored segment 1; segment 0 is still uploading, past the stall.
	p1 := flaky.ok[1]
	if _, err := ledger.Complete(context.Background(), p1.PlaylistKey,
		playlist.Item{ID: p1.TaskID(), Kind: playlist.KindSegment, Client: p1.Client, Seq: p1.SeqNo, Key: p1.Key, Duration: p1.Duration},
		playlist.SessionInfo{Vhost: p1.Vhost, App: p1.App, Stream: p1.Stream, Client: p1.Client}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * stall)

	flaky.fail.Store(true)
	code, body, err := hook(2)
	if err != nil {
		t.Fatalf("the hook whose enqueue failed after its announce got no answer (did the receiver crash?): %v", err)
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"code":503`) {
		t.Fatalf("hook with a failed enqueue: %d %s, want 503", code, body)
	}
	// The withdrawal moved the live playlist: the stream is marked for the workers' sweep.
	if _, err := rdb.ZScore(context.Background(), "so:active", "live/cam1.m3u8").Result(); err != nil {
		t.Fatalf("the withdrawn segment did not mark its playlist for the sweep: %v", err)
	}
	flaky.fail.Store(false)
	if code, body, err := hook(3); err != nil || code != 200 {
		t.Fatalf("hook after the failure: %d %s %v", code, body, err)
	}

	// The worker's side publishes it.
	up := s3test.Fake(t, nil).Uploader(t, nil)
	mgr := newPlaylists(p, ledger, up, log)
	if err := mgr.Sweep(context.Background(), time.Hour, func(queue.End) error { return nil }); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	out, err := up.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(up.Bucket()), Key: aws.String("live/cam1.m3u8")})
	if err != nil {
		t.Fatalf("the sweep did not publish the live playlist: %v", err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Contains(b, []byte("\ncam1-1.ts\n")) {
		t.Fatalf("live playlist lacks the stored segment 1:\n%s", b)
	}
}
