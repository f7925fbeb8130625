package worker_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/queue"
)

// The security review (issue 11) found these; the tests run as root, so the worker could delete
// anywhere, and the outside is a second temporary folder.

// swapOut moves the folder dir of the root aside and puts a symlink to target in its place.
func swapOut(t *testing.T, dir, target string) {
	t.Helper()
	if err := os.Rename(dir, dir+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, dir); err != nil {
		t.Fatal(err)
	}
}

// Finding 2: after the hook (the file is spooled), the file's folder is swapped for a symlink to
// an outside folder holding a hard link of the same file under the same name, so an inode check
// passes. The worker uploads from the spooled link, and its purge deletes nothing outside and
// removes no outside folder.
func TestPurgeThroughSwappedFolder(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{})
	sp := r.withSpool()
	rel := "live/cam1/seg-1.ts"
	want := r.writeRandom(rel, 20<<10)
	p := r.payload(queue.KindHLS, rel, rel)
	r.take(sp, p.Path)

	outside := t.TempDir()
	victim := filepath.Join(outside, "etc", "cam1", "seg-1.ts")
	if err := os.MkdirAll(filepath.Dir(victim), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(p.Path, victim); err != nil {
		t.Fatal(err)
	}
	swapOut(t, filepath.Join(r.root, "live", "cam1"), filepath.Dir(victim))

	r.enqueue(p)
	r.start(0)
	r.wait(p, asynq.TaskStateCompleted, 10*time.Second)
	r.stored(p.Key, want)
	hasContent(t, victim, want)
	for _, d := range []string{filepath.Dir(victim), filepath.Join(outside, "etc")} {
		if fi, err := os.Lstat(d); err != nil || !fi.IsDir() {
			t.Fatalf("the outside folder %s was removed: %v", d, err)
		}
	}
}

// An upload whose folder was swapped, after the hook, for a symlink to an outside folder holding
// the same file under the same name (a hard link: size and inode match) reads nothing outside:
// the task fails for good and nothing is stored.
func TestOpenThroughSwappedFolder(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{})
	rel := "live/cam1/seg-1.ts"
	r.writeRandom(rel, 20<<10)
	p := r.payload(queue.KindHLS, rel, rel)
	outside := t.TempDir()
	victim := filepath.Join(outside, "cam1", "seg-1.ts")
	if err := os.MkdirAll(filepath.Dir(victim), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(p.Path, victim); err != nil {
		t.Fatal(err)
	}
	swapOut(t, filepath.Join(r.root, "live", "cam1"), filepath.Dir(victim))

	r.enqueue(p)
	r.start(0)
	ti := r.wait(p, asynq.TaskStateArchived, 10*time.Second)
	if ti.Retried != 0 || !strings.Contains(ti.LastErr, "outside every root") {
		t.Errorf("retried %d, last error %q; want no retry and an outside-the-root error", ti.Retried, ti.LastErr)
	}
	r.notStored(p.Key)
	if _, err := os.Lstat(victim); err != nil {
		t.Fatalf("the outside file: %v", err)
	}
}

// The spool folder survives the purge of its last file (the review: a removed spool folder frees
// the name for a symlink).
func TestSpoolFolderSurvivesPurge(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{})
	sp := r.withSpool()
	rel := "live/cam1/seg-1.ts"
	want := r.writeRandom(rel, 20<<10)
	p := r.payload(queue.KindHLS, rel, rel)
	link := r.take(sp, p.Path)
	r.enqueue(p)
	r.start(0)
	r.wait(p, asynq.TaskStateCompleted, 10*time.Second)
	r.stored(p.Key, want)
	gone(t, p.Path)
	gone(t, link)
	gone(t, filepath.Join(r.root, spoolDir, "live"))
	fi, err := os.Lstat(filepath.Join(r.root, spoolDir))
	if err != nil || !fi.IsDir() {
		t.Fatalf("the spool folder did not survive the purge of its last file: %v", err)
	}
}
