package worker_test

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/spool"
)

const spoolDir = ".srs-offload"

// withSpool gives the rig's Offloader the spool the receiver would have used.
func (r *rig) withSpool() *spool.Spool {
	r.t.Helper()
	set, err := roots.New([]string{r.root})
	if err != nil {
		r.t.Fatal(err)
	}
	sp, err := spool.New(set, spoolDir)
	if err != nil {
		r.t.Fatal(err)
	}
	r.off.Spool = sp
	return sp
}

// take spools the file of p as the hook receiver does, and returns the spooled path.
func (r *rig) take(sp *spool.Spool, p string) string {
	r.t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		r.t.Fatal(err)
	}
	dst, err := sp.Take(p, fi)
	if err != nil {
		r.t.Fatal(err)
	}
	return dst
}

// spooled lists the files left in the spool folder.
func (r *rig) spooled() []string {
	r.t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(r.root, spoolDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			out = append(out, strings.TrimPrefix(p, r.root+"/"))
		}
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

func nlink(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(fi.Sys().(*syscall.Stat_t).Nlink)
}

// SRS's hls_cleanup deletes a hooked segment before the worker gets to it (a backlog): the worker
// uploads it from the spooled link, byte for byte, lists it in the live playlist, and empties
// the spool.
func TestSpoolOriginalDeletedBeforeUpload(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{})
	sp := r.withSpool()
	rel := "live/cam1/20261123/1763935200123-1.ts"
	want := r.writeRandom(rel, 300<<10)
	r.write("live/cam1/index.m3u8", playlistText([]string{rel}))
	p := r.hls(rel, rel, "live/cam1/index.m3u8", "live/cam1/index.m3u8")
	link := r.take(sp, p.Path)
	if err := os.Remove(p.Path); err != nil {
		t.Fatal(err)
	}
	r.enqueue(p)
	r.start(0)
	r.wait(p, asynq.TaskStateCompleted, 10*time.Second)
	r.stored(p.Key, want)
	r.livePlaylist(p.PlaylistKey, []string{rel})
	gone(t, link)
	if left := r.spooled(); len(left) != 0 {
		t.Fatalf("spool still holds %v", left)
	}
}

// The usual case: SRS's name and the spooled link are both removed after the upload.
func TestSpoolPurgesBothNames(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{})
	sp := r.withSpool()
	rel := "dvr/live/cam1.1763935200123.flv"
	want := r.writeRandom(rel, 100<<10)
	p := r.payload(queue.KindDVR, rel, "recordings/cam1.1763935200123.flv")
	link := r.take(sp, p.Path)
	r.enqueue(p)
	r.start(0)
	r.wait(p, asynq.TaskStateCompleted, 10*time.Second)
	r.stored(p.Key, want)
	gone(t, p.Path)
	gone(t, link)
	if left := r.spooled(); len(left) != 0 {
		t.Fatalf("spool still holds %v", left)
	}
}

// SRS deleted its name and reused it for a new file after the spool took the old one (seq_no
// restarting after a republish): the old bytes are stored from the spool, the new file under
// SRS's name is left exactly as it is (its own hook uploads it), and the spooled link is removed.
func TestSpoolNameReused(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{})
	sp := r.withSpool()
	rel := "live/cam1-0.ts"
	old := r.writeRandom(rel, 200<<10)
	r.write("live/cam1.m3u8", playlistText([]string{rel}))
	p := r.hls(rel, rel, "live/cam1.m3u8", "live/cam1.m3u8")
	link := r.take(sp, p.Path)
	// SRS writes the new segment to a .tmp and renames it over the old name.
	newer := r.writeRandom(rel+".tmp", 150<<10)
	if err := os.Rename(p.Path+".tmp", p.Path); err != nil {
		t.Fatal(err)
	}
	r.enqueue(p)
	r.start(0)
	r.wait(p, asynq.TaskStateCompleted, 10*time.Second)
	r.stored(p.Key, old)
	hasContent(t, p.Path, newer)
	if n := nlink(t, p.Path); n != 1 {
		t.Errorf("the new file has %d links, want 1", n)
	}
	gone(t, link)
	if left := r.spooled(); len(left) != 0 {
		t.Fatalf("spool still holds %v", left)
	}
}

// With purge disabled the file stays under SRS's name and carries the stored mark (so the
// reconciler skips it without asking Redis or storage), and the spooled link is removed: the
// spool holds a file only until it is verified in storage.
func TestSpoolPurgeDisabled(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{noPurge: true})
	sp := r.withSpool()
	rel := "live/cam1-3.ts"
	want := r.writeRandom(rel, 64<<10)
	r.write("live/cam1.m3u8", playlistText([]string{rel}))
	p := r.hls(rel, rel, "live/cam1.m3u8", "live/cam1.m3u8")
	link := r.take(sp, p.Path)
	r.enqueue(p)
	r.start(0)
	r.wait(p, asynq.TaskStateCompleted, 10*time.Second)
	r.stored(p.Key, want)
	hasContent(t, p.Path, want)
	if !marked(t, p.Path, p.TaskID()) {
		t.Fatalf("%s does not carry the mark of %s", p.Path, p.TaskID())
	}
	gone(t, link)
	if n := nlink(t, p.Path); n != 1 {
		t.Fatalf("the kept file has %d links, want 1 (SRS's name only)", n)
	}
	if left := r.spooled(); len(left) != 0 {
		t.Fatalf("spool still holds %v", left)
	}
}

// With purge off, the spooled link is the hold on a file SRS may delete; a file written to during
// its upload was not stored whole, so the link stays (and the file is not marked as stored).
func TestSpoolKeptWhenModifiedDuringUpload(t *testing.T) {
	t.Parallel()
	const rel = "live/cam1/cam1-1.ts"
	var root string
	appendOnPut := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, "/"+rel) {
				if f, err := os.OpenFile(filepath.Join(root, rel), os.O_WRONLY|os.O_APPEND, 0); err == nil {
					f.Write([]byte("written while the upload ran"))
					f.Close()
				}
			}
			next.ServeHTTP(w, req)
		})
	}
	r := newRig(t, rigConfig{s3: s3test.Fake(t, appendOnPut), noPurge: true})
	root = r.root
	sp := r.withSpool()
	want := r.writeRandom(rel, 50<<10)
	p := r.payload(queue.KindHLS, rel, rel)
	link := r.take(sp, p.Path)
	r.start(0)
	r.enqueue(p)
	r.wait(p, asynq.TaskStateCompleted, 10*time.Second)
	r.stored(rel, want)
	if _, err := os.Lstat(link); err != nil {
		t.Errorf("spooled link of a file changed during its upload was released: %v", err)
	}
	if marked(t, p.Path, p.TaskID()) {
		t.Errorf("a file changed during its upload is marked as stored")
	}
}

// marked reports whether the file at path carries the stored mark of task id.
func marked(t *testing.T, path, id string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return queue.Marked(f, id)
}

// While pruning is deferred (a reconciler runs in the process), the purge removes both names but
// leaves the folders it empties, SRS's and the spool's, for the stream's next segment; they go
// once they have stayed empty past Prune's cutoff.
func TestSpoolPurgeLeavesFoldersWhileDeferred(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{})
	sp := r.withSpool()
	defer r.off.Roots.DeferPruning()()
	defer sp.Roots.DeferPruning()()
	rel := "dvr/live/cam1/cam1.1763935200123.flv"
	want := r.writeRandom(rel, 100<<10)
	p := r.payload(queue.KindDVR, rel, "recordings/cam1.1763935200123.flv")
	link := r.take(sp, p.Path)
	r.enqueue(p)
	r.start(0)
	r.wait(p, asynq.TaskStateCompleted, 10*time.Second)
	r.stored(p.Key, want)
	gone(t, p.Path)
	gone(t, link)
	folders := []string{filepath.Dir(p.Path), filepath.Dir(link)}
	for _, d := range folders {
		if _, err := os.Lstat(d); err != nil {
			t.Fatalf("the purge pruned %s while pruning is deferred: %v", d, err)
		}
	}
	if n := r.off.Roots.Prune(time.Now().Add(-time.Hour)) + sp.Roots.Prune(time.Now().Add(-time.Hour)); n != 0 {
		t.Fatalf("pruned %d folders emptied after the cutoff", n)
	}
	r.off.Roots.Prune(time.Now().Add(time.Second))
	sp.Roots.Prune(time.Now().Add(time.Second))
	for _, d := range folders {
		gone(t, d)
	}
	if _, err := os.Lstat(filepath.Join(r.root, spoolDir)); err != nil {
		t.Fatal("the spool folder was removed:", err)
	}
}
