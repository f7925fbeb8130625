package reconcile

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/spool"
)

// The watcher's look at a new file (spot) is skipped for a file this process's hook has just
// taken into the spool: no claim, no link, no check scheduled. A file without a hook, and one that
// another process took (a worker's holder over the same root), are taken at once and scheduled as
// before. Not parallel: it reads the process's srs_offload_watch_files_total.
func TestSpotSkipsHookedFile(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := roots.New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spool.New(rs, ".srs-offload")
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Probe(); err != nil {
		t.Fatal(err)
	}
	layout, err := NewLayout([]string{"[app]/[stream]-[seq].ts"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := objkey.Parse("{url}")
	if err != nil {
		t.Fatal(err)
	}
	redis := redistest.Start(t)
	client := queue.NewClient(asynq.RedisClientOpt{Addr: redis.Addr}, queue.Options{Node: "test", MaxRetry: 3, Timeout: time.Minute, Dedup: time.Hour})
	t.Cleanup(func() { client.Close() })
	r := &Reconciler{Roots: rs, Spool: sp, Layout: layout, HLSKey: key, DVRKey: key, Queue: client,
		MinAge: time.Hour, Recheck: time.Hour, Log: slog.New(slog.DiscardHandler)}
	r.watching = true

	write := func(rel string) (string, os.FileInfo) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(rel), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return p, fi
	}
	linked := func(p string, fi os.FileInfo) bool {
		link, _ := sp.Path(p, fileid.Inode(fi))
		lfi, err := os.Lstat(link)
		return err == nil && os.SameFile(lfi, fi)
	}
	scheduled := func(p string) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		_, ok := r.due[p]
		return ok
	}
	count := func(res string) float64 { return testutil.ToFloat64(watchFiles.WithLabelValues(res)) }
	held, looked := count("held"), count("looked")

	// The hook came first: it took the file.
	hooked, hfi := write("live/cam1-0.ts")
	if _, err := sp.Take(hooked, hfi); err != nil {
		t.Fatal(err)
	}
	r.spot(hooked, hfi)
	if scheduled(hooked) {
		t.Error("the watcher scheduled a file its hook took")
	}
	if got := count("held") - held; got != 1 {
		t.Errorf("held counted %v times, want 1", got)
	}
	if got := count("looked") - looked; got != 0 {
		t.Errorf("looked counted %v times, want 0", got)
	}

	// No hook: taken at once, checked at min_age.
	lone, lfi := write("live/cam2-0.ts")
	r.spot(lone, lfi)
	if !linked(lone, lfi) {
		t.Error("a file without a hook was not spooled at once")
	}
	if !scheduled(lone) {
		t.Error("a file without a hook was not scheduled")
	}

	// Taken by another process (its own spool over the same root): looked at as before.
	other, err := spool.New(rs, ".srs-offload")
	if err != nil {
		t.Fatal(err)
	}
	theirs, tfi := write("live/cam3-0.ts")
	if _, err := other.Take(theirs, tfi); err != nil {
		t.Fatal(err)
	}
	r.spot(theirs, tfi)
	if !scheduled(theirs) {
		t.Error("a file another process took was not scheduled")
	}

	// SRS replaced the hooked file under its name (a republish reusing [seq] names): looked at.
	if err := os.Remove(hooked); err != nil {
		t.Fatal(err)
	}
	again, afi := write("live/cam1-0.ts")
	r.spot(again, afi)
	if !linked(again, afi) || !scheduled(again) {
		t.Error("a new file under a hooked file's name was not taken and scheduled")
	}
	if got := count("looked") - looked; got != 3 {
		t.Errorf("looked counted %v times, want 3", got)
	}

	// A file that reappears under its name stored and marked (purge off, moved away and back):
	// the watcher takes it without reading the mark; the check at min_age reads it and releases
	// the link, and enqueues nothing.
	stored, sfi := write("live/cam4-0.ts")
	task, res := r.offload(candidate{orig: stored, disk: stored, fi: sfi})
	if res != resultEnqueued {
		t.Fatalf("offload: %v", res)
	}
	f, err := os.Open(stored)
	if err != nil {
		t.Fatal(err)
	}
	if err := queue.Mark(f, task.TaskID()); err != nil {
		t.Skip("no user xattrs on this file system:", err)
	}
	f.Close()
	r.spot(stored, sfi)
	if !linked(stored, sfi) || !scheduled(stored) {
		t.Fatal("a fresh file was not taken at once")
	}
	r.mu.Lock()
	d := r.due[stored]
	r.mu.Unlock()
	got, err := r.considerDue(t.Context(), d)
	if err != nil || got != resultStored {
		t.Fatalf("considerDue = %v, %v; want resultStored", got, err)
	}
	if linked(stored, sfi) {
		t.Error("the stored file's link was not released at min_age")
	}
}
