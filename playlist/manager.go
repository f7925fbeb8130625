package playlist

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/queue"
)

// ErrNotYet means a session cannot end yet: some of its segments are still in flight.
var ErrNotYet = queue.ErrNotYet

// Manager is what the worker uses: it publishes the live and VoD playlists to Store, which must
// be set. The hook receiver uses a Receiver, which has no storage.
type Manager struct {
	Ledger *Ledger
	Store  Store
	// VODKey names each session's VoD playlist; nil writes none.
	VODKey *objkey.Template
	// Written, when set, learns of every VoD playlist written (post-processing).
	Written VODWritten
	// EndLive adds EXT-X-ENDLIST to the live playlist when a session ends.
	EndLive bool
	// VODWait is how long an ended session waits for segments still in flight.
	VODWait time.Duration
	// LockTTL bounds one playlist upload (a third of it) and the publish lock.
	LockTTL time.Duration
	// Served: the live playlist is served from the ledger (see Served), not written to Store;
	// the VoD playlists still are.
	Served bool
	// Interval, when set, keeps uploads of one stream's live playlist at least this far apart:
	// changes within it (segments stored in a burst: a backlog draining) go up together at its
	// end. A change after a quiet spell goes up at once.
	Interval time.Duration
	pending  sync.Map // the streams with a later publish scheduled
	Node     string
	Log      *slog.Logger
}

// itemOf is the ledger item of an HLS task, or false when the task has no playlist.
func itemOf(p queue.Offload) (Item, bool) {
	if p.Kind != queue.KindHLS || p.PlaylistKey == "" {
		return Item{}, false
	}
	it := Item{ID: p.TaskID(), Client: p.Client, Seq: p.SeqNo, Duration: p.Duration, Kind: KindSegment}
	if p.File.MtimeNs != 0 {
		it.Written = time.Unix(0, p.File.MtimeNs)
	}
	t, _ := p.Type()
	switch {
	case t.Kind == media.Init:
		it.Kind, it.Seq = KindInit, 0
	case strings.EqualFold(path.Ext(p.Path), ".m4s"):
		it.Kind = KindFMP4
	}
	return it, true
}

func (m *Manager) info(p queue.Offload) SessionInfo {
	return SessionInfo{Vhost: p.Vhost, App: p.App, Stream: p.Stream, StreamID: p.StreamID, Client: p.Client, Node: m.Node}
}

// Announce records a hooked segment in hook order (see Receiver).
func (m *Manager) Announce(ctx context.Context, p queue.Offload) error {
	return m.receiver().Announce(ctx, p)
}

// Folder returns the folder of a stream's m3u8_url (see Receiver).
func (m *Manager) Folder(ctx context.Context, app, stream string) (string, bool, error) {
	return m.receiver().Folder(ctx, app, stream)
}

func (m *Manager) receiver() *Receiver { return &Receiver{Ledger: m.Ledger, Node: m.Node} }

// Stored records a verified segment under the key it was stored at, and publishes the live
// playlist if that moved it.
func (m *Manager) Stored(ctx context.Context, p queue.Offload, key, keyTag string) error {
	it, ok := itemOf(p)
	if !ok {
		return nil
	}
	it.Key, it.KeyTag = key, keyTag
	res, err := m.Ledger.completeTouch(ctx, p.PlaylistKey, streamName(p.Vhost, p.App, p.Stream), it, m.info(p))
	if err != nil {
		return err
	}
	if res.Reopened {
		// A late segment of a session whose VoD playlist is written: write it again, whole.
		if err := m.rewriteVOD(ctx, p.PlaylistKey, res.Session); err != nil {
			return err
		}
	}
	if !res.Changed {
		return nil
	}
	return m.publish(ctx, p.PlaylistKey)
}

// rewriteVOD writes the VoD playlist of an ended session again, with what its record holds now.
func (m *Manager) rewriteVOD(ctx context.Context, pk string, number int64) error {
	s, found, err := m.Ledger.sessionNumbered(ctx, pk, number)
	if err != nil || !found {
		return err
	}
	return m.settleVOD(ctx, pk, s, -1)
}

// settleVOD makes sure the VoD playlist in storage holds every item of the session's record,
// after the session was marked ended. written is how many items the last write held (-1: none
// yet). Several writers may race (End, and the Stored of each late segment): each writes, then
// reads the record's size again, and writes again while it grew meanwhile. An item recorded
// after a writer's last check finds the session ended and starts a writer of its own, so the
// last write holds every item. Without this, End could render the record just before a late
// segment joined it and mark the session ended just after: the VoD playlist lacked that segment.
func (m *Manager) settleVOD(ctx context.Context, pk string, s session, written int) error {
	if m.VODKey == nil {
		return nil
	}
	for range 20 {
		n, err := m.Ledger.vodSize(ctx, pk, s.Number)
		if err != nil {
			return err
		}
		if int(n) == written {
			return nil
		}
		if written, err = m.writeVOD(ctx, pk, s, 0); err != nil {
			return err
		}
	}
	return fmt.Errorf("vod playlist of session %d of %s: its record kept growing while written", s.Number, pk)
}

// writeVOD writes a session's VoD playlist (none without playlist.vod_key), from every verified
// segment of it; n is how many were still in flight, for the log. It returns how many items of
// the session's record the playlist was rendered from.
func (m *Manager) writeVOD(ctx context.Context, pk string, s session, n int64) (int, error) {
	if m.VODKey == nil {
		return 0, nil
	}
	items, err := m.Ledger.vodEntries(ctx, pk, s.Number)
	if err != nil {
		return 0, err
	}
	key, err := vodKey(*m.VODKey, s)
	if err != nil {
		return 0, fmt.Errorf("playlist.vod_key: %w", err)
	}
	body := renderVOD(key, items)
	if body == nil {
		return len(items), nil
	}
	if _, err := m.Store.Put(ctx, key, bytes.NewReader(body), int64(len(body)), media.PlaylistType, "vod"); err != nil {
		return 0, fmt.Errorf("vod playlist %s: %w", key, err)
	}
	m.log().Info("playlist: VoD written", "playlist", pk, "session", s.Number, "vod", key, "items", len(items), "in_flight", n)
	if m.Written != nil {
		v := VOD{Key: key, Vhost: s.Info.Vhost, App: s.Info.App, Stream: s.Info.Stream, Client: s.Info.Client,
			Session: sessionName(s), Items: len(items)}
		for _, it := range items {
			v.Duration += it.Duration
		}
		// A failure fails the end (or the segment) task, which writes and announces again.
		if err := m.Written.VODWritten(ctx, v); err != nil {
			return 0, fmt.Errorf("vod playlist %s: post-processing: %w", key, err)
		}
	}
	return len(items), nil
}

// Lost records that a segment will never be stored; the live playlist moves past it.
func (m *Manager) Lost(ctx context.Context, p queue.Offload) error {
	it, ok := itemOf(p)
	if !ok {
		return nil
	}
	res, err := m.Ledger.Lost(ctx, p.PlaylistKey, it, m.info(p))
	if err != nil || !res.Changed {
		return err
	}
	return m.publish(ctx, p.PlaylistKey)
}

// End finishes a publish session: once its segments are all stored (or VODWait has passed since
// e.Since) it writes the session's VoD playlist and, with EndLive, ends the live playlist.
func (m *Manager) End(ctx context.Context, e queue.End) error {
	pk := e.PlaylistKey
	if pk == "" {
		named, found, err := m.Ledger.playlistOf(ctx, streamName(e.Vhost, e.App, e.Stream))
		if err != nil || !found {
			return err // !found: no HLS for this stream
		}
		pk = named
	}
	s, found, err := m.Ledger.sessionOf(ctx, pk, e.Client)
	if err != nil || !found || s.Info.Ended {
		return err
	}
	n, err := m.Ledger.inFlight(ctx, pk, s.Number)
	if err != nil {
		return err
	}
	wait := m.VODWait
	if wait <= 0 {
		wait = 10 * time.Minute
	}
	if n > 0 && time.Since(e.Since) < wait {
		return fmt.Errorf("session %d of %s: %d %w", s.Number, pk, n, ErrNotYet)
	}
	written, err := m.writeVOD(ctx, pk, s, n)
	if err != nil {
		return err
	}
	changed, err := m.Ledger.endSession(ctx, pk, s, m.EndLive)
	if err != nil {
		return err
	}
	// A late segment recorded between the write and the mark found the session not ended, so
	// nothing else writes it: write again while the record grew.
	if err := m.settleVOD(ctx, pk, s, written); err != nil {
		return err
	}
	if !changed {
		return nil
	}
	return m.publish(ctx, pk)
}

// Sweep runs periodically: it moves live playlists past stalled segments, republishes any whose
// last publisher died, and ends sessions idle for longer than idle (their on_unpublish was lost).
func (m *Manager) Sweep(ctx context.Context, idle time.Duration, end func(queue.End) error) error {
	all, err := m.Ledger.active(ctx)
	if err != nil {
		return err
	}
	sweepStreams.Set(float64(len(all)))
	now := time.Now()
	for start := 0; start < len(all); start += sweepBatch {
		batch := all[start:min(start+sweepBatch, len(all))]
		pks := make([]string, len(batch))
		for i, z := range batch {
			pks[i] = z.Member.(string)
		}
		results, pubs, err := m.Ledger.advanceMany(ctx, pks)
		if err != nil {
			return err
		}
		for i, z := range batch {
			if err := m.sweepOne(ctx, pks[i], results[i], pubs[i], time.UnixMilli(int64(z.Score)), now, idle, end); err != nil {
				return err
			}
		}
	}
	return nil
}

// sweepBatch is how many streams one pipeline of the sweep advances.
const sweepBatch = 100

// sweepOne is the sweep's visit of one stream, advanced already: it publishes a live playlist
// that moved or was left unpublished, and ends the session of a stream idle since changed.
func (m *Manager) sweepOne(ctx context.Context, pk string, res Result, pub int64, changed, now time.Time, idle time.Duration, end func(queue.End) error) error {
	if res.Changed || pub < res.Version {
		if err := m.publish(ctx, pk); err != nil {
			m.log().Warn("playlist: sweep could not publish", "playlist", pk, "err", err)
		}
	}
	if now.Sub(changed) < idle {
		return nil
	}
	s, found, err := m.Ledger.sessionOf(ctx, pk, "")
	if err != nil {
		return err
	}
	if found && !s.Info.Ended {
		if err := end(queue.End{PlaylistKey: pk, Client: s.Info.Client, Node: s.Info.Node, Since: now,
			Vhost: s.Info.Vhost, App: s.Info.App, Stream: s.Info.Stream}); err != nil {
			return err
		}
	}
	m.Ledger.deactivate(ctx, pk)
	return nil
}

// publish uploads the live playlist of pk, unless it is served from the ledger.
func (m *Manager) publish(ctx context.Context, pk string) error {
	if m.Served {
		return nil
	}
	after, err := m.Ledger.publish(ctx, m.Store, pk, m.lockTTL(), m.Interval)
	if err == nil && after > 0 {
		m.later(pk, after)
	}
	return err
}

func (m *Manager) lockTTL() time.Duration {
	if m.LockTTL <= 0 {
		return 30 * time.Second
	}
	return m.LockTTL
}

func (m *Manager) log() *slog.Logger {
	if m.Log == nil {
		return slog.Default()
	}
	return m.Log
}

func streamName(vhost, app, stream string) string { return vhost + "/" + app + "/" + stream }

// sessionName names a session in keys: its start time (UTC) and publisher, e.g.
// 20261125T041500Z-2g6tz380.
func sessionName(s session) string {
	t := time.UnixMilli(s.Info.Start).UTC().Format("20060102T150405Z")
	c := s.Info.Client
	if c == "" {
		c = strconv.FormatInt(s.Number, 10)
	}
	return t + "-" + c
}

// purgedTTL is how long a purged file is remembered: its hook, should it come late or again, is
// then answered and completes the segment (SRS gives up on a hook after 30 s; its queue stalls
// for at most minutes).
const purgedTTL = time.Hour

// Purged records that the file at path, with identity f, was stored, verified and purged.
func (m *Manager) Purged(ctx context.Context, path string, f fileid.ID) error {
	return m.Ledger.purged(ctx, path, f)
}

// PurgedFile returns the identity of the file that was at path when it was purged (see Receiver).
func (m *Manager) PurgedFile(ctx context.Context, path string) (fileid.ID, bool, error) {
	return m.receiver().PurgedFile(ctx, path)
}

// VOD is a session's VoD playlist as written to storage.
type VOD struct {
	Key                        string
	Vhost, App, Stream, Client string
	// Session is the session's name (its start and publisher).
	Session string
	// Duration is the sum of its segments' durations, in seconds.
	Duration float64
	// Items is how many records it was rendered from; a rewrite with more is a new version.
	Items int
}

// VODWritten learns of every VoD playlist written (see postproc.Stage).
type VODWritten interface {
	VODWritten(ctx context.Context, v VOD) error
}
