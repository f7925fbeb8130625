package reconcile_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/reconcile"
)

// At start-up, before Redis answers, TakeAll holds every file a hook or the reconciler would
// upload, young or old: SRS's cleanup can then delete its names while Redis is down and while the
// files wait for min_age. What is never uploaded is not held: a .tmp, SRS's playlist, a file no
// layout matches, a file marked as stored (purge off), an fMP4 init (but a DVR .mp4 is held). Once Redis is back the scan
// enqueues the old files from the spool, and the young one once it is min_age old.
func TestTakeAllWithoutRedis(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	old := 2 * time.Hour
	held := map[string]string{ // path → key
		e.write("live/cam1-0.ts", old, "written while srs-offload was down"): "live/cam1-0.ts",
		e.write("live/cam2-3.ts", 0, "written a moment ago"):                 "live/cam2-3.ts",
		e.write("live/cam3.1763935200123.flv", old, "a DVR file"):            "live/cam3/cam3.1763935200123.flv",
		e.write("live/cam5.1763935200456.mp4", old, "a DVR MP4 file"):        "live/cam5/cam5.1763935200456.mp4",
	}
	stored := e.write("live/cam1-1.ts", old, "stored and kept (purge off)")
	mark := e.hookTask(queue.KindHLS, stored, "live/cam1-1.ts")
	f, err := os.Open(stored)
	if err != nil {
		t.Fatal(err)
	}
	if err := queue.Mark(f, mark.TaskID()); err != nil {
		t.Fatalf("mark (user xattrs on %s?): %v", stored, err)
	}
	f.Close()
	notHeld := []string{
		stored,
		e.write("live/cam4/init.mp4", old, "fMP4 init"),
		e.write("live/cam1-2.ts.tmp", old, "still being written"),
		e.write("live/cam1.m3u8", old, "#EXTM3U\n"),
		e.write("live/extra/deep/cam6-0.ts", old, "no template"),
	}
	var hooks []queue.Offload
	for p, key := range held {
		kind := queue.KindHLS
		if ext := filepath.Ext(p); ext == ".flv" || ext == ".mp4" {
			kind = queue.KindDVR
		}
		hooks = append(hooks, e.hookTask(kind, p, key))
	}

	e.redis.Stop()
	n, err := e.rec.TakeAll(context.Background())
	if err != nil {
		t.Fatalf("TakeAll with Redis down: %v", err)
	}
	if n != len(held) {
		t.Errorf("TakeAll held %d files, want %d", n, len(held))
	}
	for p := range held {
		if !sameFile(t, e.spooled(p), p) {
			t.Errorf("%s not held in the spool", p)
		}
	}
	for _, p := range notHeld {
		if exists(e.spooled(p)) {
			t.Errorf("%s was held in the spool, but it is never uploaded", p)
		}
	}
	// SRS's hls_cleanup deletes its names while Redis is still down.
	for p := range held {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.redis.Start(); err != nil {
		t.Fatal(err)
	}
	st := e.scan()
	if st.Enqueued != 4 || st.Young != 1 {
		t.Fatalf("scan after Redis came back: %s, want the 3 old files and the init (uploaded, never purged) enqueued and the young one waiting", counts(st))
	}
	e.rec.MinAge = 0 // the young file is min_age old now
	if st := e.scan(); st.Enqueued != 1 {
		t.Fatalf("scan once the young file is old enough: %s, want it enqueued", counts(st))
	}
	for _, h := range hooks {
		got, ok := e.task(h)
		if !ok {
			t.Errorf("%s: no task under its hook's id", h.Path)
			continue
		}
		if got.Path != h.Path || got.Key != h.Key || got.File != h.File {
			t.Errorf("task %+v, want path %s key %s file %+v", got, h.Path, h.Key, h.File)
		}
	}
}

// A scan that fails because Redis is down still holds every file it walks, not only those
// before the first failed enqueue.
func TestScanTakesEverythingWhileRedisDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Minute)
	var paths []string
	for i := range 20 {
		paths = append(paths, e.write(fmt.Sprintf("live/cam1-%d.ts", i), time.Hour, fmt.Sprint(i)))
	}
	e.redis.Stop()
	if st, err := e.rec.Scan(context.Background()); err == nil {
		t.Fatalf("scan with Redis down succeeded: %s", counts(st))
	}
	for _, p := range paths {
		if !sameFile(t, e.spooled(p), p) {
			t.Errorf("%s not held after a scan that failed on Redis", p)
		}
	}
}

// A holder (no Queue: a worker process) takes new files into the spool at once and never
// enqueues; once SRS deleted their names, the reconciler of the hooks process, started later,
// finds them in the spool and enqueues them.
func TestHolderTakesAndNeverEnqueues(t *testing.T) {
	t.Parallel()
	const minAge = 500 * time.Millisecond
	e := newEnv(t, minAge)
	queueRec := e.rec
	e.rec = &reconcile.Reconciler{
		Roots: queueRec.Roots, Spool: queueRec.Spool, Layout: queueRec.Layout, HLSKey: queueRec.HLSKey, DVRKey: queueRec.DVRKey,
		MinAge: minAge, Watch: true, Log: queueRec.Log,
	}
	if err := os.MkdirAll(filepath.Join(e.root, "live"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.run()
	var hooks []queue.Offload
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; len(hooks) < 3; i++ {
		rel := fmt.Sprintf("live/cam1-%d.ts", i)
		p := e.write(rel, 0, rel)
		h := e.hookTask(queue.KindHLS, p, rel)
		link := e.spooled(p)
		if pollFor(500*time.Millisecond, func() bool { return exists(link) }) {
			hooks = append(hooks, h)
		}
		if err := os.Remove(p); err != nil { // hls_cleanup
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the holder's watcher spooled only %d files within 10 s", len(hooks))
		}
	}
	time.Sleep(2 * minAge)
	if tasks := e.tasks(); len(tasks) != 0 {
		t.Fatalf("the holder enqueued %d tasks", len(tasks))
	}
	e.rec = queueRec
	st := e.scan()
	if st.Enqueued < len(hooks) {
		t.Fatalf("scan of the hooks process: %s, want the %d held files enqueued", counts(st), len(hooks))
	}
	for _, h := range hooks {
		if got, ok := e.task(h); !ok || got.Path != h.Path || got.Key != h.Key {
			t.Errorf("%s: task %+v (found %v)", h.Path, got, ok)
		}
	}
}

// The take pass races workers purging the same files: a worker removes SRS's name, then the
// spooled link (worker/offload.go purge, release). Whatever the interleaving, no link is left
// behind once the worker is done.
func TestTakeRacesPurge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Minute)
	const n = 300
	var paths []string
	for i := range n {
		paths = append(paths, e.write(fmt.Sprintf("live/cam1-%d.ts", i), time.Hour, fmt.Sprint(i)))
	}
	// The hook receiver took half of them.
	for _, p := range paths[:n/2] {
		fi, _ := os.Lstat(p)
		if _, err := e.sp.Take(p, fi); err != nil {
			t.Fatal(err)
		}
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	passes := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !done.Load() {
			if _, err := e.rec.TakeAll(context.Background()); err != nil {
				t.Errorf("TakeAll: %v", err)
				return
			}
			passes++
		}
	}()
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		link := e.spooled(p)
		if err := e.sp.Roots.Remove(p, fi); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // the worker's two removals are apart: widen the window
		if err := e.sp.Roots.Remove(link, fi); err != nil {
			t.Fatal(err)
		}
	}
	done.Store(true)
	wg.Wait()
	var left []string
	filepath.WalkDir(e.sp.Root(e.root), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Fatalf("%d spooled links left behind after the purge (%d take passes ran): %v", len(left), passes, firstOf(left, 5))
	}
	t.Logf("%d take passes raced the purge of %d files", passes, n)
}

func firstOf(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
