package reconcile

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/queue"
)

// watch is the fast path for files whose hook never comes: inotify tells of each file SRS
// renames into place. The file is spooled at once (SRS's cleanup may delete it before min_age),
// and considered once it is min_age old. fsnotify does not watch recursively, so every folder is
// added, and a new folder is added and then scanned (files may land in it before the watch). When
// the kernel queue overflows or a folder cannot be watched, a full scan covers what was missed.
func (r *Reconciler) watch(ctx context.Context) {
	w, err := fsnotify.NewBufferedWatcher(4096)
	if err != nil {
		watchTrouble.WithLabelValues("add").Inc()
		r.Log.Error("reconcile: no fsnotify watcher; relying on periodic scans", "err", err)
		return
	}
	defer w.Close()
	dirs := 0
	for _, root := range r.Roots.Dirs() {
		dirs += r.addTree(w, root)
	}
	watchedDirs.Set(float64(dirs))
	r.mu.Lock()
	r.watching = true
	r.mu.Unlock()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if !ev.Has(fsnotify.Create) {
				continue
			}
			fi, err := r.Roots.Lstat(ev.Name)
			if err != nil {
				continue
			}
			if fi.IsDir() {
				if r.Spool != nil && r.Spool.Contains(ev.Name) {
					continue
				}
				dirs += r.addTree(w, ev.Name)
				watchedDirs.Set(float64(dirs))
				// Files created before the watch was in place have no event.
				_ = r.Roots.WalkDir(ev.Name, func(p string, d fs.DirEntry, err error) error {
					if err == nil && d.Type().IsRegular() && queue.Moved(p) {
						if fi, err := d.Info(); err == nil {
							r.spot(p, fi)
						}
					}
					return nil
				})
				continue
			}
			if fi.Mode().IsRegular() && queue.Moved(ev.Name) {
				r.spot(ev.Name, fi)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				watchTrouble.WithLabelValues("overflow").Inc()
				r.Log.Warn("reconcile: inotify queue overflowed (raise fs.inotify.max_queued_events); scanning the roots")
				r.Kick()
				continue
			}
			r.Log.Warn("reconcile: watcher error", "err", err)
		case now := <-tick.C:
			for _, d := range r.takeDue(now) {
				res, err := r.considerDue(ctx, d)
				switch {
				case err != nil:
					r.Kick() // Redis is down: the scan retries until it is back
				case res == resultYoung:
					r.schedule(d.path, d.ino, now.Add(time.Second))
				}
			}
		}
	}
}

// spot takes a new file (fi: its Lstat) into the spool and schedules its check, unless this
// process has just taken it: its hook came first (the hook's receiver and the watcher share the
// spool in serve and hooks), and the hook records its task or, failing that, kicks a scan. Such a
// file costs the watcher no read, link or schedule. A file of another process's hook (a worker's
// holder, another host on a shared volume) is looked at as before.
func (r *Reconciler) spot(p string, fi fs.FileInfo) {
	if r.Spool != nil && r.Spool.Holds(p, fi) {
		watchFiles.WithLabelValues("held").Inc()
		return
	}
	watchFiles.WithLabelValues("looked").Inc()
	// Only a file the reconciler can enqueue is held: the spool must not keep forever a file
	// nobody will upload.
	if _, res := r.claim(candidate{orig: p, disk: p, fi: fi, fresh: true}); res != resultEnqueued || r.Queue == nil {
		return
	}
	r.schedule(p, fileid.Inode(fi), time.Now().Add(r.MinAge))
}

// addTree watches dir and every folder below it (not the spool), and returns how many it added.
func (r *Reconciler) addTree(w *fsnotify.Watcher, dir string) int {
	n := 0
	_ = r.Roots.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if r.Spool != nil && r.Spool.Contains(p) {
			return fs.SkipDir
		}
		if err := w.Add(p); err != nil {
			watchTrouble.WithLabelValues("add").Inc()
			r.Log.Warn("reconcile: cannot watch a folder (fs.inotify.max_user_watches?); the periodic scan covers it", "path", p, "err", err)
			return nil
		}
		n++
		return nil
	})
	return n
}
