package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/queue"
)

// The bound contender of B2's archive-only targets: the durable-queue PUT loop, in the harness.
// Each file is recorded durably (one asynq enqueue into the run's Redis, srs-offload's payload
// type and task options) and an asynq server (concurrency 16) does the raw loop's work for it
// (MD5, PutObject with Content-MD5, ETag compared), then unlinks it: what any uploader that never
// loses a file must do, without hooks, spool, conditional write or playlists.

// putBoundQueue is the bound's asynq queue (srs-offload's is hls@bench).
var putBoundQueue = queue.Name(queue.KindHLS, "putbound")

// quietLog is the bound's asynq logger: only errors, into the harness's log.
type quietLog struct{ e *env }

func (quietLog) Debug(...any)     {}
func (quietLog) Info(...any)      {}
func (quietLog) Warn(...any)      {}
func (l quietLog) Error(a ...any) { l.e.logf("durable-queue PUT loop, asynq: %s", fmt.Sprint(a...)) }
func (l quietLog) Fatal(a ...any) {
	l.e.logf("durable-queue PUT loop, asynq (fatal): %s", fmt.Sprint(a...))
}

// queuePut runs the durable-queue PUT loop on hard links of d's files in a new root: from the
// first enqueue until the last file is unlinked.
func (e *env) queuePut(d *dataset) (usage, error) {
	var u usage
	root, err := e.newRoot("b2-bound")
	if err != nil {
		return u, err
	}
	defer os.RemoveAll(root)
	paths := make([]string, len(d.files))
	for i, f := range d.files {
		paths[i] = filepath.Join(root, f.rel)
		if err := os.MkdirAll(filepath.Dir(paths[i]), 0o755); err != nil {
			return u, err
		}
		if err := os.Link(filepath.Join(d.dir, f.rel), paths[i]); err != nil {
			return u, err
		}
	}
	bucket := e.name("b2-bound")
	if err := e.s3.CreateBucket(bucket); err != nil {
		return u, err
	}

	redisOpt := asynq.RedisClientOpt{Addr: e.redis.Addr}
	c := asynq.NewClient(redisOpt)
	defer c.Close()
	var handled atomic.Int64
	var errOnce sync.Once
	var handlerErr error
	done := make(chan struct{})
	finish := func(err error) {
		errOnce.Do(func() {
			handlerErr = err
			close(done)
		})
	}
	mux := asynq.NewServeMux()
	mux.HandleFunc(queue.TypeOffload, func(ctx context.Context, t *asynq.Task) error {
		p, err := queue.DecodeOffload(t.Payload())
		if err == nil {
			err = e.putFile(ctx, bucket, p.Key, p.Path, p.File.Size)
		}
		if err == nil {
			err = os.Remove(p.Path)
		}
		if err != nil {
			finish(err)
			return err
		}
		if int(handled.Add(1)) == len(d.files) {
			finish(nil)
		}
		return nil
	})
	srv := asynq.NewServer(redisOpt, asynq.Config{
		Concurrency:       16,
		Queues:            map[string]int{putBoundQueue: 1},
		TaskCheckInterval: 20 * time.Millisecond, // srs-offload's worker.poll_interval in B2
		ShutdownTimeout:   5 * time.Second,
		Logger:            quietLog{e},
	})
	if err := srv.Start(mux); err != nil {
		return u, err
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			srv.Shutdown()
		}
	}
	defer stop()

	m := e.meter(0)
	start := time.Now()
	err = parallel(len(d.files), e.sc.offloadConns, func(i int) error {
		st := streamOf(d.files[i].rel)
		fi, err := os.Lstat(paths[i])
		if err != nil {
			return err
		}
		p := queue.Offload{Kind: queue.KindHLS, Path: paths[i], Key: d.files[i].rel, File: fileid.Of(fi),
			App: "live", Stream: st, M3U8URL: "live/" + st + ".m3u8", Client: "bench",
			Playlist: filepath.Join(root, "live", st+".m3u8"), PlaylistKey: "live/" + st + ".m3u8",
			SeqNo: int64(i / d.streams), Duration: 2, Hooked: time.Now()}
		b, err := p.Encode()
		if err != nil {
			return err
		}
		_, err = c.Enqueue(asynq.NewTask(queue.TypeOffload, b), asynq.TaskID(p.QueueID()), asynq.Queue(putBoundQueue),
			asynq.MaxRetry(25), asynq.Timeout(2*time.Hour), asynq.Retention(10*time.Minute)) // srs-offload's defaults
		return err
	})
	if err != nil {
		return u, fmt.Errorf("enqueue: %w", err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		finish(fmt.Errorf("%d of %d files done after 5 minutes", handled.Load(), len(d.files)))
	}
	u.elapsed = time.Since(start)
	m.stop(&u)
	stop()
	if handlerErr != nil {
		return u, handlerErr
	}
	if left := filesUnder(root); len(left) > 0 {
		return u, fmt.Errorf("%d local links left, e.g. %s", len(left), left[0])
	}
	if err := e.redis.Flush(); err != nil {
		return u, err
	}
	e.takeReqs(&u, bucket)
	return u, e.checkAndDrop(bucket, d.files, "")
}
