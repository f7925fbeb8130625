package reconcile_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/queue"
)

// Finding 1 of the security review (issue 11), through the reconciler: the spool folder is
// replaced by a symlink to a folder outside the root. Neither the watcher's spot (a new file) nor
// a scan (an old file whose hook never came) creates anything there; the files are still
// enqueued, under SRS's names.
func TestSpoolFolderSymlinkedOut(t *testing.T) {
	t.Parallel()
	const minAge = time.Second
	e := newEnv(t, minAge)
	e.rec.Watch = true
	outside, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	spoolDir := filepath.Join(e.root, ".srs-offload")
	if err := os.Remove(spoolDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, spoolDir); err != nil {
		t.Fatal(err)
	}
	old := e.write("live/cam1-1.ts", time.Hour, "an old segment whose hook never came")
	if err := os.MkdirAll(filepath.Join(e.root, "live", "cam2"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.run()

	oldTask := e.hookTask(queue.KindHLS, old, "live/cam1-1.ts")
	e.waitTask(oldTask, 10*time.Second)

	// A young file is spooled only by the watcher; once it logs the refusal for one (or links
	// something outside), the spot path has run (the watcher may not be in place for the first
	// files).
	leaked := func() bool {
		entries, _ := os.ReadDir(outside)
		return len(entries) > 0
	}
	deadline := time.Now().Add(10 * time.Second)
	var young string
	for i := 0; ; i++ {
		young = e.write(fmt.Sprintf("live/cam2-%d.ts", i), 0, "a new segment")
		if pollFor(500*time.Millisecond, func() bool {
			return leaked() || e.logs.has("could not spool the file\" path="+young)
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watcher never tried to spool a new file")
		}
	}
	rel, _ := filepath.Rel(e.root, young)
	e.waitTask(e.hookTask(queue.KindHLS, young, rel), minAge+10*time.Second)

	entries, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("the reconciler created %v outside the root", entries)
	}
	if fi, err := os.Lstat(spoolDir); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was changed: %v", err)
	}
}

// A spool folder that is a symlink to a folder inside the root is not scanned as the spool: the
// files there would otherwise pass for spooled links of files SRS never wrote.
func TestScanSkipsSymlinkedSpoolInside(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Minute)
	spoolDir := filepath.Join(e.root, ".srs-offload")
	if err := os.Remove(spoolDir); err != nil {
		t.Fatal(err)
	}
	fake := e.write("other/live/999-cam9-1.ts", time.Hour, "not a spooled file")
	if err := os.Symlink("other", spoolDir); err != nil {
		t.Fatal(err)
	}
	st := e.scan()
	for _, p := range e.tasks() {
		t.Errorf("enqueued %s (from %s)", p.Path, fake)
	}
	if st.Enqueued != 0 {
		t.Errorf("scan: %s", counts(st))
	}
	if !e.logs.has("the spool folder is not a real folder") {
		t.Error("no warning about the spool folder")
	}
}
