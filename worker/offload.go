// Package worker runs srs-offload's asynq handlers: it uploads each hooked file, proves the stored
// bytes equal the local ones, purges the local copy, and publishes the stream's playlist. It owns
// the asynq server (Server) and the playlists' periodic upkeep (Sweeper), each with Start and
// Shutdown.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/claim"
	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/progress"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/spool"
	"github.com/srs-offload/srs-offload/storage"
)

// Store is the storage the worker writes to.
type Store interface {
	// PutNew uploads and verifies, never replacing another file's object; it returns nil only
	// when storage holds exactly the local bytes, and the key it used. origin names the local file.
	PutNew(ctx context.Context, key string, src storage.Source, size int64, t media.Type, origin string) (string, storage.Object, error)
	// Find reports whether an earlier PutNew for origin completed and its bytes are still
	// verified, and under which key.
	Find(ctx context.Context, key, origin string) (string, bool, error)
}

// Playlists learns the fate of every HLS file (see package playlist).
type Playlists interface {
	// Stored: the file's bytes are verified in storage under key.
	Stored(ctx context.Context, p queue.Offload, key, keyTag string) error
	// Lost: the file will never be in storage.
	Lost(ctx context.Context, p queue.Offload) error
}

// PurgeRecorder remembers purged files for a while (see playlist.Manager.Purged), so that a hook
// arriving after its file was purged is answered and still completes the segment's playlists,
// and a requeued task whose file changed after its hook finds what became of it.
type PurgeRecorder interface {
	Purged(ctx context.Context, path string, f fileid.ID) error
	// PurgedFile is the identity of the file purged at path lately, if any.
	PurgedFile(ctx context.Context, path string) (fileid.ID, bool, error)
}

// Warms learns of every stored HLS file, to warm CDN edges with it (see package warm).
type Warms interface {
	// Stored: the file whose hook computed key expected is stored and verified under actual.
	Stored(ctx context.Context, expected, actual string) error
}

// Recorded learns of every DVR recording stored and verified under key (see postproc.Stage).
type Recorded interface {
	Recorded(ctx context.Context, p queue.Offload, key string) error
}

// Offloader handles TypeOffload tasks.
type Offloader struct {
	Roots *roots.Set
	Store Store
	// Playlists, when set, keeps the stream's playlists in storage.
	Playlists Playlists
	// Warms, when set, warms CDN edges with each stored HLS file.
	Warms Warms
	// Spool, when set, is where the hook receiver hard-linked each file so that SRS's cleanup
	// cannot delete it first. The worker reads the spooled link when SRS's name is gone.
	Spool *spool.Spool
	// Purge deletes a local file once its stored copy is verified.
	Purge bool
	// Purges, when set, records each file purged under SRS's name.
	Purges PurgeRecorder
	// Progress, when set, publishes the progress of every upload of at least ProgressMin bytes
	// (the multipart threshold) while it runs.
	Progress    *progress.Tracker
	ProgressMin int64
	// Scope is where this worker's files live (queue.scope): a shared volume's task is read at
	// this host's mount point (queue.Scope.Local).
	Scope queue.Scope
	// Claims, when set, makes this worker the one owner of a shared volume's file while it
	// uploads, verifies and purges it (see package claim); a task whose file another worker
	// holds waits (queue.ErrNotYet) and then finds it stored.
	Claims *claim.Claims
	// Post, when set, learns of every stored DVR recording (see package postproc).
	Post Recorded
	Log  *slog.Logger
}

// ProcessTask is the asynq handler.
func (o *Offloader) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := queue.DecodeOffload(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	err = o.Offload(ctx, p)
	outcome := "ok"
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	switch {
	case err == nil:
	case errors.Is(err, asynq.SkipRetry) || (retried >= maxRetry && isFailure(err)):
		outcome = "permanent"
		o.Log.Error("offload: giving up, not retrying", "path", p.Path, "key", p.Key, "err", err)
		if o.Playlists != nil {
			if lerr := o.Playlists.Lost(ctx, p); lerr != nil {
				o.Log.Error("offload: could not record the loss in the playlist ledger", "path", p.Path, "err", lerr)
			}
		}
	default:
		outcome = "retry"
	}
	tasks.WithLabelValues(p.Kind, outcome).Inc()
	return err
}

// Offload moves one file. Every step is idempotent, so a task that runs twice (asynq delivers at
// least once) does no harm: a file already uploaded and purged is found in storage.
func (o *Offloader) Offload(ctx context.Context, p queue.Offload) error {
	typ, err := typeOf(p)
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	// orig is the task as its host made it: SRS's name there is what a late hook names.
	orig := p
	var held *claim.Held
	if p.Volume != "" {
		if p, err = o.Scope.Local(p); err != nil {
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		if o.Claims != nil {
			rel, _ := p.Rel()
			held, err = o.Claims.Take(ctx, rel)
			if errors.Is(err, claim.ErrHeld) {
				return fmt.Errorf("%s: %w: %w", p.Path, err, queue.ErrNotYet)
			}
			if err != nil {
				return err
			}
			defer func() {
				if rerr := held.Release(context.WithoutCancel(ctx)); rerr != nil {
					o.Log.Warn("offload: could not release the file's claim; it expires on its own", "path", p.Path, "err", rerr)
				}
			}()
		}
	}
	f, fi, err := o.open(p)
	switch {
	case errors.Is(err, roots.ErrNotExist):
		return o.gone(ctx, p)
	case errors.Is(err, roots.ErrOutside), errors.Is(err, roots.ErrNotRegular), errors.Is(err, roots.ErrBadPath),
		errors.Is(err, roots.ErrSymlink):
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	case err != nil:
		return err
	}
	defer f.Close()
	if got := fileid.Of(fi); !sameContent(got, p.File, p.Volume != "") {
		if key, ok := o.storedChanged(ctx, p, got); ok {
			return nil
		} else if key != "" {
			o.Log.Debug("offload: the changed file's upload is not (yet) in storage", "path", p.Path, "key", key)
		}
		return fmt.Errorf("file %s changed since its hook (now %d bytes, inode %d; hooked %d bytes, inode %d): SRS reused the name, and the new file's own hook uploads it: %w",
			p.Path, got.Size, got.Ino, p.File.Size, p.File.Ino, asynq.SkipRetry)
	}
	start := time.Now()
	// The stream's names go with every upload of this task (the file, its key file, its
	// playlists), for the object options' templates.
	ctx = storage.WithNames(ctx, storage.Names{Vhost: p.Vhost, App: p.App, Stream: p.Stream})
	key, obj, err := o.put(ctx, p, f, fi.Size(), typ)
	if err != nil {
		if errors.Is(err, storage.ErrVerify) {
			verifyFailures.Inc()
		}
		return err
	}
	uploadSeconds.WithLabelValues(p.Kind).Observe(time.Since(start).Seconds())
	uploadedBytes.WithLabelValues(p.Kind).Add(float64(obj.Size))
	if !p.Hooked.IsZero() {
		hookToStored.WithLabelValues(p.Kind).Observe(time.Since(p.Hooked).Seconds())
	}
	o.Log.Debug("offload: stored and verified", "path", p.Path, "key", obj.Key, "bytes", obj.Size, "etag", obj.ETag, "parts", obj.Parts, "verified", obj.Verified)

	// An fMP4 init segment is rewritten in place by SRS and needed by every segment SRS itself
	// serves; it is tiny, so it stays.
	// Nothing local goes, neither SRS's name nor the spooled link, unless the file is still what
	// was verified: a file written to during the upload is the same inode, but the bytes added
	// since were never stored.
	if now, err := f.Stat(); err != nil || !sameContent(fileid.Of(now), p.File, p.Volume != "") {
		purgeFailures.Inc()
		o.Log.Error("offload: stored and verified, but the local file changed during the upload; keeping it", "path", p.Path, "err", err)
	} else if err := stillHeld(ctx, held); err != nil {
		// The claim ran out (Redis unreachable for its TTL): another worker may own the file
		// now. Nothing is deleted by a worker that is not the owner; the retry finds it stored.
		return err
	} else if o.Purge && typ.Kind != media.Init {
		o.purge(ctx, p, orig, fi)
	} else {
		if err := queue.Mark(f, p.TaskID()); err != nil {
			o.Log.Debug("offload: could not mark the kept file as stored; the reconciler will check it in storage", "path", p.Path, "err", err)
		}
		// The spool's hold ends with the verification; keeping files is SRS's name's job.
		o.release(p, fi)
	}
	return o.stored(ctx, p, key)
}

// put uploads the file, counting the bytes sent (srs_offload_sent_bytes_total) and, for a file
// of at least ProgressMin bytes, publishing its progress while it runs.
func (o *Offloader) put(ctx context.Context, p queue.Offload, f *os.File, size int64, typ media.Type) (string, storage.Object, error) {
	counter := sentBytes.WithLabelValues(p.Kind)
	var run *progress.Run
	if o.Progress != nil && size >= o.ProgressMin {
		run = o.Progress.Start(p.TaskID(), p.Kind, p.Path, p.Key, size)
		defer run.End()
	}
	ctx = storage.WithSent(ctx, func(n int64) {
		counter.Add(float64(n))
		if run != nil {
			run.Sent(n)
		}
	})
	return o.Store.PutNew(ctx, p.Key, f, size, typ, p.TaskID())
}

// open opens the file of a task: its spooled link when there is one, else SRS's name. Both are
// opened through the roots, so nothing outside them is read whatever was swapped for a symlink.
func (o *Offloader) open(p queue.Offload) (*os.File, fs.FileInfo, error) {
	if o.Spool != nil && o.Spool.Host != "" {
		return o.openShared(p)
	}
	if o.Spool != nil {
		if sp, ok := o.Spool.Path(p.Path, p.File.Ino); ok {
			f, fi, err := o.Roots.Open(sp)
			if !refused(err) {
				return f, fi, err
			}
			// Not spooled, or the spool folder was tampered with: SRS's name may still hold
			// the file, and only its own refusal is final.
			o.Log.Debug("offload: no usable spooled link; opening SRS's name", "path", p.Path, "spooled", sp, "err", err)
			f, fi, nerr := o.Roots.Open(p.Path)
			if errors.Is(nerr, roots.ErrNotExist) && !errors.Is(err, roots.ErrNotExist) {
				return nil, nil, err
			}
			return f, fi, nerr
		}
	}
	return o.Roots.Open(p.Path)
}

// openShared opens a shared volume's file: SRS's name when it still holds the task's file, else
// a spooled link of it in any host's spool folder (the hook's host took it, reconcilers of other
// hosts may have too).
func (o *Offloader) openShared(p queue.Offload) (*os.File, fs.FileInfo, error) {
	f, fi, nerr := o.Roots.Open(p.Path)
	if nerr == nil {
		if sameContent(fileid.Of(fi), p.File, true) {
			return f, fi, nil
		}
		f.Close()
	} else if !refused(nerr) {
		return nil, nil, nerr
	}
	links := o.Spool.Links(p.Path, p.File.Ino)
	if p.Node != "" {
		if own, ok := o.Spool.PathOf(p.Node, p.Path, p.File.Ino); ok {
			links = append([]string{own}, links...)
		}
	}
	for _, sp := range links {
		f, fi, err := o.Roots.Open(sp)
		if err == nil {
			return f, fi, nil
		}
	}
	if nerr == nil {
		return o.Roots.Open(p.Path) // SRS's name holds another file: Offload says so
	}
	return nil, nil, nerr
}

// sameContent compares a file's identity with the task's: a shared volume's device number
// differs between the hosts that mount it, so there inode, size and mtime decide.
func sameContent(a, b fileid.ID, shared bool) bool {
	if shared {
		a.Dev, b.Dev = 0, 0
	}
	return a == b
}

// stillHeld is nil without a claim, or while this worker still owns it.
func stillHeld(ctx context.Context, h *claim.Held) error {
	if h == nil {
		return nil
	}
	return h.Still(ctx)
}

// refused reports whether opening a file failed for good: missing, or refused by the roots.
func refused(err error) bool {
	return errors.Is(err, roots.ErrNotExist) || errors.Is(err, roots.ErrOutside) ||
		errors.Is(err, roots.ErrSymlink) || errors.Is(err, roots.ErrNotRegular)
}

// purge deletes the verified file: SRS's name if it still names this file, and the spooled link.
// Both go through roots.Set.Remove, which follows no symlink and prunes emptied folders up to the
// root, never the spool folder itself.
// orig is the task as its host made it (a shared volume's path at that host's mount point): a
// late hook there names that path.
func (o *Offloader) purge(ctx context.Context, p, orig queue.Offload, fi fs.FileInfo) {
	err := o.Roots.Remove(p.Path, fi)
	if err == nil && o.Purges != nil {
		if rerr := o.Purges.Purged(ctx, orig.Path, orig.File); rerr != nil {
			o.Log.Warn("offload: could not record the purge; a hook for this file arriving now gets 404", "path", p.Path, "err", rerr)
		}
	}
	if errors.Is(err, roots.ErrReplaced) {
		// SRS deleted its name and reused it for a new file; only the spooled link is ours.
		o.Log.Debug("offload: SRS reused the name of a spooled file; leaving the new file", "path", p.Path)
	} else if err != nil {
		purgeFailures.Inc()
		o.Log.Error("offload: stored and verified, but the local file could not be purged", "path", p.Path, "err", err)
		return
	}
	if !o.release(p, fi) {
		return
	}
	purged.WithLabelValues(p.Kind).Inc()
}

// release removes the spooled link of a verified file; on a shared volume every host's link of
// it: this worker verified it, and SRS's name went first, so no host links it again.
func (o *Offloader) release(p queue.Offload, fi fs.FileInfo) bool {
	if o.Spool == nil {
		return true
	}
	if o.Spool.Host != "" {
		ok := true
		for _, sp := range o.Spool.Links(p.Path, p.File.Ino) {
			if err := o.Spool.Release(sp, fi); err != nil && !errors.Is(err, roots.ErrReplaced) {
				purgeFailures.Inc()
				o.Log.Error("offload: stored and verified, but a spooled link could not be removed", "path", sp, "err", err)
				ok = false
			}
		}
		return ok
	}
	sp, ok := o.Spool.Path(p.Path, p.File.Ino)
	if !ok {
		return true
	}
	if err := o.Spool.Release(sp, fi); err != nil {
		purgeFailures.Inc()
		o.Log.Error("offload: stored and verified, but the spooled link could not be removed", "path", sp, "err", err)
		return false
	}
	return true
}

// stored tells the playlists a file is in storage under key (with the EXT-X-KEY SRS wrote for it).
func (o *Offloader) stored(ctx context.Context, p queue.Offload, key string) error {
	if p.Kind == queue.KindDVR && o.Post != nil {
		// Only an enqueue: the post-processing itself runs on its own queue. A failed enqueue
		// retries the task, which finds the file stored and announces it again.
		if err := o.Post.Recorded(ctx, p, key); err != nil {
			return fmt.Errorf("post-processing: %w", err)
		}
	}
	if p.Kind != queue.KindHLS {
		return nil
	}
	if o.Playlists == nil {
		return o.warm(ctx, p, key)
	}
	tag, err := o.keyTag(ctx, p)
	if errors.Is(err, errKeyUnknown) {
		// Stored, but it cannot be listed without its key: the playlists move past it.
		o.Log.Error("offload: segment stored but left out of the playlists", "path", p.Path, "err", err)
		return o.Playlists.Lost(ctx, p)
	}
	if err != nil {
		return fmt.Errorf("playlist: %w", err)
	}
	if err := o.Playlists.Stored(ctx, p, key, tag); err != nil {
		return fmt.Errorf("playlist: %w", err)
	}
	return o.warm(ctx, p, key)
}

// warm hands a stored segment to the CDN warming. Its failure is logged, not retried: warming is
// best effort and must not hold back offloading.
func (o *Offloader) warm(ctx context.Context, p queue.Offload, key string) error {
	if o.Warms == nil {
		return nil
	}
	if err := o.Warms.Stored(ctx, p.Key, key); err != nil {
		o.Log.Warn("offload: could not schedule CDN warming", "key", key, "err", err)
	}
	return nil
}

// gone handles a file that no longer exists: done already if an earlier attempt of this very task
// stored and verified it (asynq delivers at least once), lost otherwise.
func (o *Offloader) gone(ctx context.Context, p queue.Offload) error {
	key, held, err := o.Store.Find(ctx, p.Key, p.TaskID())
	if err != nil {
		return err
	}
	if held {
		o.Log.Info("offload: file already stored and purged by an earlier attempt", "path", p.Path, "key", key)
		return o.stored(ctx, p, key)
	}
	if o.Purges != nil {
		later, found, err := o.Purges.PurgedFile(ctx, p.Path)
		if err != nil {
			return err
		}
		if found {
			if _, ok := o.storedChanged(ctx, p, later); ok {
				return nil
			}
		}
	}
	return fmt.Errorf("file %s was deleted before it was uploaded (SRS hls_cleanup/hls_dispose, or by hand), and storage has no copy under %q: %w",
		p.Path, p.Key, asynq.SkipRetry)
}

// storedChanged reports whether the file of p, changed after its hook (the same file, now with
// identity now: written to or touched since), is stored under p's key with its new content,
// verified in the bucket by that content's own task (the reconciler's, which found the changed
// file). The task of p then has nothing left to do: the file it was made for is in storage. That
// other task told the playlists and purged (or kept) the file; nothing is deleted here. key is
// where it looked ("" when now is not the same file).
func (o *Offloader) storedChanged(ctx context.Context, p queue.Offload, now fileid.ID) (string, bool) {
	if now == p.File || now.Dev != p.File.Dev || now.Ino != p.File.Ino {
		return "", false // another file (SRS reused the name), or p's own identity
	}
	later := p
	later.File, later.Followup = now, false
	key, held, err := o.Store.Find(ctx, p.Key, later.TaskID())
	if err != nil || !held {
		return key, false
	}
	o.Log.Info("offload: the file changed after its hook, and its changed content is stored and verified; nothing left to do",
		"path", p.Path, "key", key, "task", later.TaskID(), "hooked_bytes", p.File.Size, "stored_bytes", now.Size)
	return key, true
}

func typeOf(p queue.Offload) (media.Type, error) {
	t, ok := p.Type()
	if !ok {
		return t, fmt.Errorf("%s is not a %s file srs-offload moves", p.Path, p.Kind)
	}
	return t, nil
}
