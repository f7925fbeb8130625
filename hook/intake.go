package hook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
)

// Enqueuer records a task durably.
type Enqueuer interface {
	Enqueue(ctx context.Context, p queue.Offload) (dup bool, err error)
	EnqueueEnd(ctx context.Context, e queue.End) error
}

// Announcer learns each hooked HLS file in the order SRS reported it (the playlist ledger).
type Announcer interface {
	Announce(ctx context.Context, p queue.Offload) error
	// Lost withdraws an announced file whose task could not be enqueued, when no reconciler
	// (Intake.Unrecorded) will enqueue it later.
	Lost(ctx context.Context, p queue.Offload) error
}

// PurgedFiles remembers files stored and purged in the last hour (playlist.Manager).
type PurgedFiles interface {
	PurgedFile(ctx context.Context, path string) (fileid.ID, bool, error)
}

// Taker takes ownership of a hooked file before SRS can delete it (package spool).
type Taker interface {
	Take(orig string, fi fs.FileInfo) (string, error)
}

// Keys are the key templates of each kind of object.
type Keys struct {
	HLS, Playlist, DVR objkey.Template
}

// Intake turns a hook request into at most one enqueued task. It is the logic behind the HTTP
// handler, usable without HTTP.
type Intake struct {
	Roots   *roots.Set
	Keys    Keys
	Queue   Enqueuer
	Timeout time.Duration // for the enqueue
	// Playlists, when set, is told of every on_hls in hook order, and on_unpublish ends the
	// publish session (its VoD playlist).
	Playlists Announcer
	// Spool, when set, hard-links each hooked file into the spool before anything else, so that
	// SRS's hls_cleanup/hls_dispose cannot delete it before it is uploaded, and so that a file
	// whose task cannot be recorded (Redis down) is still on disk for the reconciler.
	Spool Taker
	// Purged, when set, is asked about a hooked file that is gone: a hook coming late or again
	// after the file was stored and purged is accepted (its task finds the object stored and
	// completes the segment's playlists) instead of refused with 404.
	Purged PurgedFiles
	// Unrecorded, when set, is called when a file's task could not be recorded (Redis down), so
	// the reconciler looks for it as soon as Redis is back.
	Unrecorded func()
	// Scope makes each task a shared volume's (queue.scope shared:<name>): the same task id on
	// every host mounting it. The zero Scope is the node's.
	Scope queue.Scope
	Log   *slog.Logger
}

// Outcome says what Accept did.
type Outcome int

const (
	Ignored   Outcome = iota // an action that needs no work
	Enqueued                 // a new task
	Duplicate                // the same file was enqueued before
	Ended                    // the end of a publish session was recorded
)

// InputError is a request srs-offload refuses. Status is the HTTP status to answer with.
type InputError struct {
	Status int
	Msg    string
	Err    error
}

func (e *InputError) Error() string { return e.Msg }
func (e *InputError) Unwrap() error { return e.Err }

func bad(status int, err error, format string, a ...any) *InputError {
	return &InputError{Status: status, Msg: fmt.Sprintf(format, a...), Err: err}
}

// Accept validates a request and, for on_dvr and on_hls, enqueues the offload of its file.
// Refused input returns an *InputError and enqueues nothing; a queue failure returns another error.
func (in *Intake) Accept(ctx context.Context, r Request) (Outcome, *queue.Offload, error) {
	var kind string
	var ok bool
	switch {
	case r.Action == "on_hls":
		kind = queue.KindHLS
		_, ok = queue.TypeOf(kind, r.File)
	case r.Action == "on_dvr":
		kind = queue.KindDVR
		_, ok = queue.TypeOf(kind, r.File)
	case r.Action == "on_unpublish" && in.Playlists != nil:
		return in.end(ctx, r)
	case ignored[r.Action]:
		return Ignored, nil, nil
	case r.Action == "":
		return 0, nil, bad(http.StatusBadRequest, nil, "missing action")
	default:
		return 0, nil, bad(http.StatusBadRequest, nil, "unknown action %q", r.Action)
	}
	if r.Cwd == "" {
		return 0, nil, bad(http.StatusBadRequest, nil, "%s: missing cwd", r.Action)
	}
	if r.File == "" {
		return 0, nil, bad(http.StatusBadRequest, nil, "%s: missing file", r.Action)
	}
	if !ok {
		return 0, nil, bad(http.StatusBadRequest, nil, "%s: %q is not a file SRS produces for this hook (extensions: %s)",
			r.Action, filepath.Base(r.File), media.Extensions(r.Action))
	}
	joined, err := in.Roots.Join(r.Cwd, r.File)
	if err != nil {
		return 0, nil, pathError(err)
	}
	real, fi, err := in.Roots.Resolve(r.Cwd, r.File)
	var fid fileid.ID
	purged := false
	if errors.Is(err, roots.ErrNotExist) {
		real, fid, purged = in.purgedFile(ctx, joined)
	}
	if err != nil && !purged {
		return 0, nil, pathError(err)
	}
	if !purged {
		fid = fileid.Of(fi)
	}
	rel, _ := in.Roots.Rel(joined)
	vars := objkey.Vars{
		Vhost: r.Vhost, App: r.App, Stream: r.Stream,
		Basename: filepath.Base(joined), URL: r.URL, M3U8URL: r.M3U8URL, Path: rel,
	}
	p := queue.Offload{
		Kind: kind, Path: real, File: fid,
		Vhost: r.Vhost, App: r.App, Stream: r.Stream, Client: clientID(r.ClientID), StreamID: r.StreamID, M3U8URL: r.M3U8URL,
		Hooked: time.Now(),
	}
	tmpl := in.Keys.DVR
	if kind == queue.KindHLS {
		tmpl = in.Keys.HLS
		if err := checkDuration(r); err != nil {
			return 0, nil, err
		}
		p.SeqNo, p.Duration = r.SeqNo, r.Duration
		if r.M3U8 != "" {
			if p.Playlist, err = in.Roots.Join(r.Cwd, r.M3U8); err != nil {
				return 0, nil, pathError(fmt.Errorf("m3u8: %w", err))
			}
			if _, ok := media.ForPlaylist(p.Playlist); !ok {
				return 0, nil, bad(http.StatusBadRequest, nil, "m3u8 %q is not an .m3u8 file", r.M3U8)
			}
			if p.PlaylistKey, err = in.Keys.Playlist.Expand(vars); err != nil {
				return 0, nil, bad(http.StatusBadRequest, err, "playlist key: %v", err)
			}
		}
	}
	if p.Key, err = tmpl.Expand(vars); err != nil {
		return 0, nil, bad(http.StatusBadRequest, err, "object key: %v", err)
	}
	in.Scope.Stamp(&p)
	if !purged {
		if err := in.take(kind, real, fi); err != nil {
			return 0, nil, err
		}
	}
	if in.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, in.Timeout)
		defer cancel()
	}
	// The playlist ledger learns the file first, in SRS's order; only then is the task
	// recorded, so every task's file has its place in the order.
	if in.Playlists != nil {
		if err := in.Playlists.Announce(ctx, p); err != nil {
			in.unrecorded()
			return 0, nil, err
		}
	}
	dup, err := in.Queue.Enqueue(ctx, p)
	if err != nil {
		in.unrecorded()
		// With a reconciler (Unrecorded), the file is kept and enqueued later under this very
		// task id, which completes the announced segment: withdrawing it now would leave the
		// stored segment out of its playlists. Without one, nothing will upload it.
		if in.Playlists != nil && in.Unrecorded == nil {
			if lerr := in.Playlists.Lost(context.WithoutCancel(ctx), p); lerr != nil && in.Log != nil {
				in.Log.Warn("hook: could not withdraw the announced segment", "path", p.Path, "err", lerr)
			}
		}
		return 0, nil, err
	}
	if dup {
		in.followup(ctx, p)
		return Duplicate, &p, nil
	}
	return Enqueued, &p, nil
}

// followup enqueues a second task for a hooked segment whose file already had a task: that task
// may be the reconciler's (the hook came after min_age), which knows nothing of the playlist this
// hook just announced the segment to. The follow-up finds the file stored (the same TaskID is its
// origin in storage) and completes the segment in the ledger; for a plain repeated hook it is a
// no-op. Its failure is only logged: the file's own task exists.
func (in *Intake) followup(ctx context.Context, p queue.Offload) {
	if in.Playlists == nil || p.PlaylistKey == "" {
		return
	}
	p.Followup = true
	if _, err := in.Queue.Enqueue(ctx, p); err != nil && in.Log != nil {
		in.Log.Warn("hook: could not enqueue the playlist follow-up of a repeated hook", "path", p.Path, "err", err)
	}
}

// purgedFile looks up a hooked file that is gone among those purged lately (under its path as
// joined, or with its folder's symlinks resolved): its resolved path and identity.
func (in *Intake) purgedFile(ctx context.Context, joined string) (string, fileid.ID, bool) {
	if in.Purged == nil {
		return "", fileid.ID{}, false
	}
	cands := []string{joined}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(joined)); err == nil && dir != filepath.Dir(joined) {
		cands = append(cands, filepath.Join(dir, filepath.Base(joined)))
	}
	for _, c := range cands {
		f, ok, err := in.Purged.PurgedFile(ctx, c)
		if err != nil && in.Log != nil {
			in.Log.Warn("hook: could not look the gone file up among the purged ones", "path", c, "err", err)
		}
		if ok {
			return c, f, true
		}
	}
	return "", fileid.ID{}, false
}

func (in *Intake) unrecorded() {
	if in.Unrecorded != nil {
		in.Unrecorded()
	}
}

// take spools a hooked file. Only a file that vanished is refused: a spool that cannot link
// (another filesystem, permissions) loses the protection against SRS's cleanup, not the upload.
func (in *Intake) take(kind, real string, fi fs.FileInfo) error {
	if in.Spool == nil {
		return nil
	}
	// The worker and the reconciler decide by the same queue.TypeOf: a DVR .mp4 recording is
	// spooled, an init segment (whichever hook named it) is not.
	typ, _ := queue.TypeOf(kind, real)
	if typ.Kind == media.Init {
		return nil // rewritten in place by SRS and never purged: nothing to hold
	}
	_, err := in.Spool.Take(real, fi)
	switch {
	case err == nil:
		spooled.WithLabelValues("ok").Inc()
	case errors.Is(err, roots.ErrNotExist):
		spooled.WithLabelValues("gone").Inc()
		return pathError(err)
	default:
		spooled.WithLabelValues("failed").Inc()
		if in.Log != nil {
			in.Log.Warn("hook: could not spool the file; SRS's cleanup may delete it before it is uploaded", "path", real, "err", err)
		}
	}
	return nil
}

// end records the end of a publish session (on_unpublish).
func (in *Intake) end(ctx context.Context, r Request) (Outcome, *queue.Offload, error) {
	if in.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, in.Timeout)
		defer cancel()
	}
	err := in.Queue.EnqueueEnd(ctx, queue.End{Vhost: r.Vhost, App: r.App, Stream: r.Stream, Client: clientID(r.ClientID), Since: time.Now()})
	if err != nil {
		return 0, nil, err
	}
	return Ended, nil, nil
}

// clientID turns client_id (a JSON string since SRS 4.0.30, a number before) into a string.
func clientID(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

// MaxDuration is the longest segment duration on_hls may report. SRS's hls_fragment is seconds
// long; anything near an hour is a broken or forged hook, and one such value would otherwise set
// the live playlist's EXT-X-TARGETDURATION.
const MaxDuration = 3600

// checkDuration refuses an on_hls duration outside (0, MaxDuration] s. An fMP4 init segment is
// reported with duration 0 (it has no media), so 0 is allowed for it.
func checkDuration(r Request) error {
	d := r.Duration
	if t, _ := queue.TypeOf(queue.KindHLS, r.File); t.Kind == media.Init && d == 0 {
		return nil
	}
	if !(d > 0 && d <= MaxDuration) {
		return bad(http.StatusBadRequest, nil, "on_hls: duration %v s: want more than 0 and at most %d", d, MaxDuration)
	}
	return nil
}

func pathError(err error) *InputError {
	switch {
	case errors.Is(err, roots.ErrOutside):
		return bad(http.StatusForbidden, err, "%v", err)
	case errors.Is(err, roots.ErrNotExist):
		return bad(http.StatusNotFound, err, "%v", err)
	default:
		return bad(http.StatusBadRequest, err, "%v", err)
	}
}
