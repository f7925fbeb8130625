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

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/media"
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
// arriving after its file was purged is answered and still completes the segment's playlists.
type PurgeRecorder interface {
	Purged(ctx context.Context, path string, f fileid.ID) error
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
	if got := fileid.Of(fi); got != p.File {
		return fmt.Errorf("file %s changed since its hook (now %d bytes, inode %d; hooked %d bytes, inode %d): SRS reused the name, and the new file's own hook uploads it: %w",
			p.Path, got.Size, got.Ino, p.File.Size, p.File.Ino, asynq.SkipRetry)
	}
	start := time.Now()
	// The stream's names go with every upload of this task (the file, its key file, its
	// playlists), for the object options' templates.
	ctx = storage.WithNames(ctx, storage.Names{Vhost: p.Vhost, App: p.App, Stream: p.Stream})
	key, obj, err := o.Store.PutNew(ctx, p.Key, f, fi.Size(), typ, p.TaskID())
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
	if now, err := f.Stat(); err != nil || fileid.Of(now) != p.File {
		purgeFailures.Inc()
		o.Log.Error("offload: stored and verified, but the local file changed during the upload; keeping it", "path", p.Path, "err", err)
	} else if o.Purge && typ.Kind != media.Init {
		o.purge(ctx, p, fi)
	} else {
		if err := queue.Mark(f, p.TaskID()); err != nil {
			o.Log.Debug("offload: could not mark the kept file as stored; the reconciler will check it in storage", "path", p.Path, "err", err)
		}
		// The spool's hold ends with the verification; keeping files is SRS's name's job.
		o.release(p, fi)
	}
	return o.stored(ctx, p, key)
}

// open opens the file of a task: its spooled link when there is one, else SRS's name. Both are
// opened through the roots, so nothing outside them is read whatever was swapped for a symlink.
func (o *Offloader) open(p queue.Offload) (*os.File, fs.FileInfo, error) {
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

// refused reports whether opening a file failed for good: missing, or refused by the roots.
func refused(err error) bool {
	return errors.Is(err, roots.ErrNotExist) || errors.Is(err, roots.ErrOutside) ||
		errors.Is(err, roots.ErrSymlink) || errors.Is(err, roots.ErrNotRegular)
}

// purge deletes the verified file: SRS's name if it still names this file, and the spooled link.
// Both go through roots.Set.Remove, which follows no symlink and prunes emptied folders up to the
// root, never the spool folder itself.
func (o *Offloader) purge(ctx context.Context, p queue.Offload, fi fs.FileInfo) {
	err := o.Roots.Remove(p.Path, fi)
	if err == nil && o.Purges != nil {
		if rerr := o.Purges.Purged(ctx, p.Path, p.File); rerr != nil {
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

// release removes the spooled link of a verified file.
func (o *Offloader) release(p queue.Offload, fi fs.FileInfo) bool {
	if o.Spool == nil {
		return true
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
	return fmt.Errorf("file %s was deleted before it was uploaded (SRS hls_cleanup/hls_dispose, or by hand), and storage has no copy under %q: %w",
		p.Path, p.Key, asynq.SkipRetry)
}

func typeOf(p queue.Offload) (media.Type, error) {
	t, ok := p.Type()
	if !ok {
		return t, fmt.Errorf("%s is not a %s file srs-offload moves", p.Path, p.Kind)
	}
	return t, nil
}
