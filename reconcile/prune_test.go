package reconcile_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// While the reconciler runs with PruneAfter, a purge (SRS's name, then the spooled link, as the
// worker removes them) leaves the stream's folder and its spool folder in place for the next
// segment; they go once they have stayed empty for PruneAfter, and whatever is left goes when
// the reconciler shuts down. Without it running, a purge prunes at once.
func TestRunDefersPruning(t *testing.T) {
	t.Parallel()
	const after = time.Second
	e := newEnv(t, time.Hour)
	e.rec.PruneAfter = after
	// purge takes the file into the spool (the hook) and removes both names (the worker).
	purge := func(rel string) (dir, spoolDir string) {
		t.Helper()
		p := e.write(rel, 0, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		link, err := e.sp.Take(p, fi)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.rec.Roots.Remove(p, fi); err != nil {
			t.Fatal(err)
		}
		if err := e.sp.Release(link, fi); err != nil {
			t.Fatal(err)
		}
		if exists(p) || exists(link) {
			t.Fatalf("%s not purged", rel)
		}
		return filepath.Dir(p), filepath.Dir(link)
	}

	dir, spoolDir := purge("live/cam0/0-a.ts")
	if exists(dir) || exists(spoolDir) {
		t.Fatal("a purge without a running reconciler left its folders")
	}

	e.rec.Start()
	t.Cleanup(func() { e.rec.Shutdown(context.Background()) })
	// Pruning is deferred once Run is under way.
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		if d, _ := purge(fmt.Sprintf("live/probe%d/0-a.ts", i)); exists(d) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("purges still prune at once while the reconciler runs")
		}
		time.Sleep(10 * time.Millisecond)
	}

	dir, spoolDir = purge("live/cam1/0-a.ts")
	if !exists(dir) || !exists(spoolDir) {
		t.Fatal("the purge pruned the stream's folder at once")
	}
	// The next segment lands in the folder that is still there, and is purged in turn.
	start := time.Now()
	purge("live/cam1/1-a.ts")
	if !pollFor(after+5*time.Second, func() bool { return !exists(dir) && !exists(spoolDir) }) {
		t.Fatal("the emptied folders were never pruned")
	}
	// (less a file system's coarse timestamps: a folder's mtime may lag the clock by a tick)
	if waited := time.Since(start); waited < after-50*time.Millisecond {
		t.Fatalf("pruned %v after the last purge, before PruneAfter (%v)", waited, after)
	}
	if !exists(e.root) || !exists(filepath.Join(e.root, ".srs-offload")) {
		t.Fatal("the root or the spool folder was removed")
	}

	// Shutting down prunes what is left at once.
	dir, spoolDir = purge("live/cam2/0-a.ts")
	if err := e.rec.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if exists(dir) || exists(spoolDir) {
		t.Fatal("folders left empty were not pruned when the reconciler stopped")
	}
	dir, _ = purge("live/cam3/0-a.ts")
	if exists(dir) {
		t.Fatal("a purge after the reconciler stopped did not prune at once")
	}
}
