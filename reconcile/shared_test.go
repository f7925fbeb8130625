package reconcile_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/claim"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/reconcile"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/spool"
)

// Two SRS hosts mount one shared volume and each runs its reconciler over all of it. A file a
// worker holds the claim of is in flight: neither enqueues it. Once free, the first to scan
// enqueues it on the volume's queue under the one task id every host computes; the other finds
// that task. Each host holds the file in a spool folder of its own, and a host whose SRS name is
// gone finds the file by the other host's link, under the same task id.
func TestSharedVolumeReconcilers(t *testing.T) {
	e := newEnv(t, time.Second)
	const volume = "vol"
	rdb := redis.NewClient(&redis.Options{Addr: e.redis.Addr})
	t.Cleanup(func() { rdb.Close() })
	claims := &claim.Claims{RDB: rdb, Volume: volume}
	opt := asynq.RedisClientOpt{Addr: e.redis.Addr}
	qnode := queue.Scope{Volume: volume}.QueueNode("")
	client := queue.NewClient(opt, queue.Options{Node: qnode, MaxRetry: 3, Timeout: time.Minute, Dedup: time.Hour})
	t.Cleanup(func() { client.Close() })

	host := func(node string) *reconcile.Reconciler {
		rs, err := roots.New([]string{e.root})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rs.Close() })
		sp, err := spool.New(rs, ".srs-offload")
		if err != nil {
			t.Fatal(err)
		}
		if err := sp.Shared(node); err != nil {
			t.Fatal(err)
		}
		return &reconcile.Reconciler{
			Roots: rs, Spool: sp, Layout: e.rec.Layout, HLSKey: e.rec.HLSKey, DVRKey: e.rec.DVRKey, Queue: client,
			MinAge: time.Second, Recheck: 30 * time.Minute,
			Scope: queue.Scope{Volume: volume, Mount: e.root, Node: node}, Busy: claims.Busy,
			Log: slog.New(slog.NewTextHandler(e.logs, nil)),
		}
	}
	r1, r2 := host("srs1"), host("srs2")
	p := e.write("live/cam1-0.ts", time.Hour, "segment")
	held, err := claims.Take(context.Background(), "live/cam1-0.ts")
	if err != nil {
		t.Fatal(err)
	}
	pending := func() []*asynq.TaskInfo {
		list, err := e.insp.ListPendingTasks(queue.Name(queue.KindHLS, qnode))
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			t.Fatal(err)
		}
		return list
	}
	for _, r := range []*reconcile.Reconciler{r1, r2} {
		st, err := r.Scan(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Enqueued != 0 || st.Known != 1 {
			t.Fatalf("a claimed file: %s, want known and not enqueued", counts(st))
		}
	}
	if n := len(pending()); n != 0 {
		t.Fatalf("%d tasks for a file a worker holds", n)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"srs1", "srs2"} {
		link, _ := r1.Spool.PathOf(h, p, fi.Sys().(*syscall.Stat_t).Ino)
		if !sameFile(t, link, p) {
			t.Fatalf("host %s did not hold the file in its own spool folder (%s)", h, link)
		}
	}
	if err := held.Release(context.Background()); err != nil {
		t.Fatal(err)
	}

	st, err := r1.Scan(context.Background())
	if err != nil || st.Enqueued != 1 {
		t.Fatalf("srs1 scan after the claim: %s %v, want it enqueued", counts(st), err)
	}
	// SRS on srs2's side deletes its name: srs2 finds the file by its links (its own and srs1's).
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	st, err = r2.Scan(context.Background())
	if err != nil || st.Enqueued != 0 || st.Known != 1 {
		t.Fatalf("srs2 scan: %s %v, want the file known by its one task", counts(st), err)
	}
	list := pending()
	if len(list) != 1 {
		t.Fatalf("%d tasks on %s, want 1", len(list), queue.Name(queue.KindHLS, qnode))
	}
	task, err := queue.DecodeOffload(list[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	if task.Volume != volume || task.Mount != e.root || task.Node != "srs1" || task.Path != filepath.Join(e.root, "live/cam1-0.ts") {
		t.Fatalf("task %+v", task)
	}
}
