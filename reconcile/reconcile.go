// Package reconcile finds the files whose hook never came and enqueues them.
//
// SRS sends each hook once and never retries, so hooks get lost: srs-offload restarting, Redis
// down, a hook misconfigured, SRS's own losses at unpublish. The reconciler scans the roots at
// start, periodically and whenever the receiver could not record a task, and an fsnotify watcher
// sees new files at once. A finished media file (SRS renames its .tmp when done) older than
// min_age, not marked as stored and with no task in the queue, is enqueued under the same task id
// its hook would have had, so a late hook and the reconciler never upload one file twice. Its key
// comes from SRS's own path templates (Layout).
//
// Take first, decide later: every such file is taken into the spool as soon as the reconciler
// sees it (TakeAll at start, before Redis or storage are asked; each watcher event; each scan,
// also one that fails because Redis is down), whatever its age. min_age delays only the enqueue,
// so SRS's hls_cleanup cannot delete a file while it waits for its hook, or while srs-offload
// was down.
//
// What a found file is, is decided as for a hook (queue.TypeOf): a DVR .mp4 recording is held, an
// fMP4 init segment is not. A found segment's place comes from SRS's playlist, read with m3u8.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/spool"
)

// Enqueuer records a task; dup is true when a task with its id exists.
type Enqueuer interface {
	Enqueue(ctx context.Context, p queue.Offload) (dup bool, err error)
}

// Reconciler scans and watches the roots.
type Reconciler struct {
	Roots *roots.Set
	// Spool, when set, is walked too (files held for tasks that were never recorded), and the
	// watcher takes each new file into it at once, before SRS's cleanup can delete it.
	Spool  *spool.Spool
	Layout *Layout
	// Placer, when set, gives each HLS segment it enqueues its place in the playlists.
	Placer *Placer
	HLSKey objkey.Template
	DVRKey objkey.Template
	// Queue records the tasks. Nil makes a holder: it takes files into the spool and never
	// enqueues (a worker process, which keeps files safe while the hooks process is down).
	Queue Enqueuer
	// MinAge leaves a file younger than this to its hook.
	MinAge time.Duration
	// Interval is the time between full scans (0: only at start and when kicked).
	Interval time.Duration
	// Recheck is how long a file found enqueued is not asked about again.
	Recheck time.Duration
	// Watch turns on the fsnotify watcher.
	Watch bool
	// PruneAfter, when set, leaves the folders that a purge or a release empties (SRS's and the
	// spool's) in place while Run runs, and removes them once they have stayed empty this long
	// (roots.Set.DeferPruning, Prune): a stream's next segment does not have to make its folder,
	// its spool folder and the watcher's watch of it again. When Run ends, what is left is pruned
	// at once. Zero: a purge prunes at once.
	PruneAfter time.Duration
	// Scope makes each task a shared volume's (queue.scope shared:<name>): the same task id on
	// every host mounting it. The zero Scope is the node's.
	Scope queue.Scope
	// Busy, when set, reports whether some worker (of any host) holds the claim of a shared
	// volume's file (by its path relative to the volume): such a file is in flight and is not
	// enqueued again (see package claim).
	Busy func(ctx context.Context, rel string) (bool, error)
	Log  *slog.Logger

	stop context.CancelFunc // Start's
	done chan struct{}      // closed when Start's Run returned

	mu         sync.Mutex
	due        map[string]due       // files to look at again once old enough (watcher running)
	watching   bool                 // the watcher runs and looks at due files
	seen       map[string]time.Time // task id → when it was found in the queue or enqueued
	unmatched  map[string]bool      // paths no layout matches, logged once
	kick       chan struct{}
	kickOnce   sync.Once
	scanMu     sync.Mutex
	lastReport Stats
}

// Stats describe one scan.
type Stats struct {
	Files    int           // media files looked at
	Pending  int           // not yet known to be stored (on disk, waiting or in flight)
	Bytes    int64         // their size
	Oldest   time.Duration // age of the oldest of them
	Enqueued int           // tasks this scan recorded
	Known    int           // files whose task was already in the queue
	Young    int           // left to their hook for now (younger than MinAge)
	Stored   int           // kept on disk and marked as stored
	Unmatch  int           // no layout gives their key variables
	Held     int           // taken into the spool, not enqueued (a holder without a Queue)
	Took     time.Duration

	unscheduled int // young files the watcher does not look at again
}

// candidate is a media file found on disk.
type candidate struct {
	orig string      // the path SRS wrote (its hook's file)
	disk string      // where it is now: orig or its spooled link
	fi   fs.FileInfo // Lstat of disk
	// fresh is a file the watcher saw appear under orig. Its stored mark is not read: the mark
	// names its task (path, inode, size, mtime), which a file renamed into place carries only if
	// it was moved back where it was stored; the check at min_age reads it.
	fresh bool
}

func (r *Reconciler) init() {
	r.kickOnce.Do(func() { r.kick = make(chan struct{}, 1) })
}

// Kick asks for a scan as soon as possible (a task could not be recorded).
func (r *Reconciler) Kick() {
	r.init()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Start runs Run (the scans and the watcher) in the background until Shutdown.
func (r *Reconciler) Start() {
	if r.stop != nil {
		return // started already (a process starts it right after its take pass)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		r.Run(ctx)
	}()
}

// Shutdown stops the scans and the watcher and waits for them to end, or for ctx. Files that
// appear until then are still taken into the spool: a process shuts its reconciler down last.
func (r *Reconciler) Shutdown(ctx context.Context) error {
	if r.stop == nil {
		return nil
	}
	r.stop()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("reconcile: %w", ctx.Err())
	}
}

// Run scans at once, then every Interval and when kicked, until ctx ends; it returns once the
// watcher ended too. A scan that fails (Redis unreachable) is tried again every few seconds, so
// files are enqueued as soon as Redis is back, without anyone's help.
func (r *Reconciler) Run(ctx context.Context) {
	r.init()
	var wg sync.WaitGroup
	defer wg.Wait()
	if r.Watch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.watch(ctx)
		}()
	}
	if r.PruneAfter > 0 {
		undo := r.Roots.DeferPruning()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.prune(ctx, undo)
		}()
	}
	retry := time.Second
	next := time.Duration(0)
	failing := false
	for {
		t := time.NewTimer(next)
		// After a failed scan (Redis down) only the backoff brings the next one: every hook that
		// fails meanwhile kicks, and must not turn into a scan each.
		kick := r.kick
		if failing {
			kick = nil
		}
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-kick:
			t.Stop()
		}
		st, err := r.Scan(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.Log.Warn("reconcile: scan failed; trying again", "in", retry, "err", err)
			next = retry
			retry = min(retry*2, 30*time.Second)
			failing = true
			continue
		}
		retry, failing = time.Second, false
		if st.Enqueued > 0 || st.Unmatch > 0 {
			r.Log.Info("reconcile: scanned", "files", st.Files, "enqueued", st.Enqueued, "known", st.Known,
				"unmatched", st.Unmatch, "pending", st.Pending, "pending_bytes", st.Bytes, "took", st.Took)
		}
		next = r.Interval
		if next <= 0 {
			next = 24 * time.Hour
		}
		// A scan that found files too young to judge comes back when they are old enough,
		// unless the watcher took them on.
		if st.unscheduled > 0 && r.MinAge < next {
			next = r.MinAge
		}
	}
}

// prune removes the folders left empty for PruneAfter, every PruneAfter/4, until ctx ends; then
// it undoes the deferral and prunes every folder left empty at once, as a purge without a
// reconciler does.
func (r *Reconciler) prune(ctx context.Context, undo func()) {
	t := time.NewTicker(max(r.PruneAfter/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			undo()
			r.Roots.Prune(time.Now())
			return
		case now := <-t.C:
			r.Roots.Prune(now.Add(-r.PruneAfter))
		}
	}
}

// Scan walks every root (and its spool) once and enqueues what needs it.
func (r *Reconciler) Scan(ctx context.Context) (Stats, error) {
	r.scanMu.Lock()
	defer r.scanMu.Unlock()
	start := time.Now()
	var st Stats
	found := map[string]time.Time{} // task ids met in this scan, to drop the rest from seen
	var oldest time.Time
	var firstErr error
	visit := func(c candidate) {
		if firstErr != nil {
			// Redis failed: nothing more is enqueued in this scan, but every file is still
			// taken, so SRS's cleanup cannot delete it before the scan is retried.
			r.claim(c)
			return
		}
		res, err := r.consider(ctx, c, start, found)
		if err != nil {
			firstErr = err
			return
		}
		st.add(res)
		if res != resultStored && res != resultNone {
			st.Pending++
			st.Bytes += c.fi.Size()
			if mt := c.fi.ModTime(); oldest.IsZero() || mt.Before(oldest) {
				oldest = mt
			}
		}
	}
	for _, root := range r.Roots.Dirs() {
		if err := r.walk(ctx, root, visit); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return st, firstErr
	}
	r.mu.Lock()
	r.seen = found
	r.mu.Unlock()
	if !oldest.IsZero() {
		st.Oldest = start.Sub(oldest)
	}
	st.Took = time.Since(start)
	report(st)
	return st, nil
}

// TakeAll takes every finished media file under the roots that is not yet held into the spool,
// and returns how many files it holds. It asks neither Redis nor storage, so it runs first at
// start-up: files written while srs-offload was down are safe from SRS's cleanup from then on,
// whatever Redis does; the scans enqueue them (from the spool, should SRS delete its name).
func (r *Reconciler) TakeAll(ctx context.Context) (int, error) {
	if r.Spool == nil {
		return 0, nil
	}
	r.scanMu.Lock()
	defer r.scanMu.Unlock()
	n := 0
	for _, root := range r.Roots.Dirs() {
		err := r.walk(ctx, root, func(c candidate) {
			if p, res := r.claim(c); res == resultEnqueued && !isInit(p) {
				n++
			}
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// walk visits the media files below root, then those in its spool.
func (r *Reconciler) walk(ctx context.Context, root string, visit func(candidate)) error {
	sp := ""
	if r.Spool != nil {
		sp = r.Spool.Root(root)
	}
	err := r.Roots.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // SRS deleted it while we walked
			}
			r.Log.Warn("reconcile: cannot read", "path", p, "err", err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() {
			if p == sp {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !queue.Moved(p) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		visit(candidate{orig: p, disk: p, fi: fi})
		return nil
	})
	if err != nil || sp == "" {
		return err
	}
	// The spool folder must be a real folder: a symlink there (even one that stays inside the
	// root) would make other files look spooled.
	if fi, err := r.Roots.Lstat(sp); err != nil || !fi.IsDir() {
		if err == nil {
			r.Log.Warn("reconcile: the spool folder is not a real folder (a symlink?); not scanning it", "path", sp)
		}
		return nil
	}
	err = r.Roots.WalkDir(sp, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !d.Type().IsRegular() {
			return nil
		}
		orig, ino, ok := r.Spool.Orig(p)
		if !ok || !queue.Moved(orig) {
			return nil
		}
		if fi, err := os.Lstat(orig); err == nil && fileid.Inode(fi) == ino {
			return nil // visited under SRS's name
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		visit(candidate{orig: orig, disk: p, fi: fi})
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// isInit reports whether the task's file is an fMP4 init segment: uploaded, never purged, so
// never held in the spool. A DVR .mp4 recording is not one.
func isInit(p queue.Offload) bool {
	t, ok := p.Type()
	return ok && t.Kind == media.Init
}

type result int

const (
	resultNone      result = iota // not a file srs-offload moves
	resultYoung                   // left to its hook for now
	resultStored                  // kept locally, marked as stored
	resultKnown                   // its task is in the queue
	resultEnqueued                // a task was recorded now
	resultUnmatched               // no layout gives its key
	resultScheduled               // young, and the watcher looks at it again once old enough
	resultHeld                    // taken into the spool by a holder (no Queue)
)

func (st *Stats) add(r result) {
	switch r {
	case resultNone:
		return
	case resultYoung, resultScheduled:
		st.Young++
		if r == resultYoung {
			st.unscheduled++
		}
	case resultStored:
		st.Stored++
	case resultKnown:
		st.Known++
	case resultEnqueued:
		st.Enqueued++
	case resultUnmatched:
		st.Unmatch++
	case resultHeld:
		st.Held++
	}
	st.Files++
}

// offload builds the task a hook would have made for the file, from its path.
func (r *Reconciler) offload(c candidate) (queue.Offload, result) {
	rel, ok := r.Roots.Rel(c.orig)
	if !ok {
		return queue.Offload{}, resultNone
	}
	for _, kind := range []string{queue.KindHLS, queue.KindDVR} {
		if _, ok := queue.TypeOf(kind, c.orig); !ok {
			continue
		}
		vars, ok := r.Layout.Vars(kind, filepath.ToSlash(rel))
		if !ok {
			continue
		}
		tmpl := r.DVRKey
		if kind == queue.KindHLS {
			tmpl = r.HLSKey
		}
		key, err := tmpl.Expand(vars)
		if err != nil {
			continue
		}
		p := queue.Offload{
			Kind: kind, Path: c.orig, Key: key, File: fileid.Of(c.fi),
			Vhost: vars.Vhost, App: vars.App, Stream: vars.Stream,
		}
		r.Scope.Stamp(&p)
		return p, resultEnqueued
	}
	return queue.Offload{}, resultUnmatched
}

// claim builds the task a hook would have made for a file and takes the file into the spool,
// whatever its age and whether or not Redis answers. It returns resultEnqueued for a file still
// to be enqueued (or known); resultNone, resultUnmatched or resultStored for one that is not:
// a file no layout matches is not held (nobody would ever upload it), nor one marked as stored
// (purge off: SRS's name keeps it; a spooled link of it is released here).
func (r *Reconciler) claim(c candidate) (queue.Offload, result) {
	p, res := r.offload(c)
	if res == resultUnmatched {
		r.mu.Lock()
		first := !r.unmatched[c.orig]
		if r.unmatched == nil {
			r.unmatched = map[string]bool{}
		}
		r.unmatched[c.orig] = true
		r.mu.Unlock()
		if first {
			r.Log.Error("reconcile: no reconcile.hls_ts_file/dvr_path template matches this file, so its key is unknown; it stays on disk",
				"path", c.orig)
		}
		reconciled.WithLabelValues("", "unmatched").Inc()
		return p, res
	}
	if res == resultNone {
		return p, res
	}
	if !c.fresh && r.marked(c, p.TaskID()) {
		// Stored and kept under SRS's name (purge off): the spool's hold is not needed.
		link := c.disk
		if link == c.orig && r.Spool != nil {
			link, _ = r.Spool.Path(c.orig, fileid.Inode(c.fi))
		}
		if link != "" && link != c.orig {
			if err := r.Spool.Release(link, c.fi); err != nil {
				r.Log.Warn("reconcile: could not release a spooled file already stored", "path", link, "err", err)
			}
		}
		return p, resultStored
	}
	// Taken before any task exists. A worker purging the same file removes SRS's name before the
	// spooled link, so a link made here either exists before that removal (and the worker
	// removes it next) or fails because the file is gone. A link made just after a worker kept
	// and marked the file (purge off) is released by the next scan (above).
	if r.Spool != nil && c.disk == c.orig {
		r.take(p, c)
	}
	return p, resultEnqueued
}

// consider decides about one file and enqueues it when its hook never came.
func (r *Reconciler) consider(ctx context.Context, c candidate, now time.Time, found map[string]time.Time) (result, error) {
	p, res := r.claim(c)
	if res != resultEnqueued {
		return res, nil
	}
	if r.Queue == nil {
		return resultHeld, nil
	}
	if now.Sub(c.fi.ModTime()) < r.MinAge {
		if found != nil && !r.schedule(c.orig, fileid.Inode(c.fi), c.fi.ModTime().Add(r.MinAge)) {
			return resultYoung, nil
		}
		if found != nil {
			return resultScheduled, nil
		}
		return resultYoung, nil
	}
	id := p.TaskID()
	if found != nil {
		if _, dup := found[id]; dup {
			return resultNone, nil // the same file under its name and in the spool
		}
	}
	r.mu.Lock()
	at, ok := r.seen[id]
	r.mu.Unlock()
	if ok && now.Sub(at) < r.Recheck {
		if found != nil {
			found[id] = at
		}
		return resultKnown, nil
	}
	if rel, ok := p.Rel(); ok && r.Busy != nil {
		busy, err := r.Busy(ctx, rel)
		if err != nil {
			return 0, fmt.Errorf("reconcile %s: %w", c.orig, err)
		}
		if busy {
			// A worker (maybe another host's) is uploading it now; its task exists, or
			// existed, under this very id.
			reconciled.WithLabelValues(p.Kind, "known").Inc()
			return resultKnown, nil
		}
	}
	r.place(&p, c)
	dup, err := r.Queue.Enqueue(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("reconcile %s: %w", c.orig, err)
	}
	if found != nil {
		found[id] = now
	}
	r.mu.Lock()
	if r.seen == nil {
		r.seen = map[string]time.Time{}
	}
	r.seen[id] = now
	r.mu.Unlock()
	if dup {
		reconciled.WithLabelValues(p.Kind, "known").Inc()
		return resultKnown, nil
	}
	reconciled.WithLabelValues(p.Kind, "enqueued").Inc()
	r.Log.Info("reconcile: enqueued a file whose hook never came", "path", c.orig, "key", p.Key)
	return resultEnqueued, nil
}

// marked reports whether the file c found carries the stored mark of task id. The file is opened
// through the roots (never following a symlink out of them) and must still be the file found.
func (r *Reconciler) marked(c candidate, id string) bool {
	f, fi, err := r.Roots.Open(c.disk)
	if err != nil {
		return false
	}
	defer f.Close()
	return os.SameFile(fi, c.fi) && queue.Marked(f, id)
}

// take holds a file in the spool while it waits, unless it is an fMP4 init (never purged).
func (r *Reconciler) take(p queue.Offload, c candidate) {
	if isInit(p) {
		return
	}
	if _, err := r.Spool.Take(c.orig, c.fi); err != nil && !errors.Is(err, roots.ErrNotExist) {
		r.Log.Warn("reconcile: could not spool the file", "path", c.orig, "err", err)
	}
}

// due is a file to look at again: SRS's path and the inode it had (to find it in the spool
// once SRS deleted its name).
type due struct {
	path string
	ino  uint64
	at   time.Time
}

// schedule has the watcher look at a file again at a time. It reports false when no watcher runs.
func (r *Reconciler) schedule(p string, ino uint64, at time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.watching {
		return false
	}
	if r.due == nil {
		r.due = map[string]due{}
	}
	r.due[p] = due{path: p, ino: ino, at: at}
	return true
}

// takeDue removes and returns the files due at now.
func (r *Reconciler) takeDue(now time.Time) []due {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []due
	for p, d := range r.due {
		if !now.Before(d.at) {
			out = append(out, d)
			delete(r.due, p)
		}
	}
	return out
}

// considerDue is consider for one file outside a scan: under SRS's name, or in the spool when
// SRS deleted its name meanwhile (hls_cleanup).
func (r *Reconciler) considerDue(ctx context.Context, d due) (result, error) {
	c := candidate{orig: d.path, disk: d.path}
	fi, err := r.Roots.Lstat(d.path)
	if err != nil || fileid.Inode(fi) != d.ino {
		sp, ok := "", false
		if r.Spool != nil {
			sp, ok = r.Spool.Path(d.path, d.ino)
		}
		if !ok {
			return resultNone, nil
		}
		if fi, err = r.Roots.Lstat(sp); err != nil {
			return resultNone, nil // uploaded and purged, or never held
		}
		c.disk = sp
	}
	if !fi.Mode().IsRegular() {
		return resultNone, nil
	}
	c.fi = fi
	return r.consider(ctx, c, time.Now(), nil)
}
