package playlist

import (
	"context"
	"path"
	"strings"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/queue"
)

// Receiver is what the hook receiver uses of the playlists: it records each hooked segment in
// the ledger in hook order, withdraws one whose task could not be recorded, and knows each
// stream's folder (for on_hls_notify). It has no storage and never writes a playlist: a `hooks`
// process cannot reach the bucket. A withdrawal that moves the live playlist marks the stream
// active, so a worker's sweep publishes it (Manager.Sweep publishes what the ledger has newer
// than the last upload).
type Receiver struct {
	Ledger *Ledger
	Node   string
}

func (r *Receiver) info(p queue.Offload) SessionInfo {
	return SessionInfo{Vhost: p.Vhost, App: p.App, Stream: p.Stream, StreamID: p.StreamID, Client: p.Client, Node: r.Node}
}

// Announce records a hooked segment in hook order (the receiver calls it right before the enqueue).
func (r *Receiver) Announce(ctx context.Context, p queue.Offload) error {
	it, ok := itemOf(p)
	if !ok {
		return nil
	}
	res, err := r.Ledger.Announce(ctx, p.PlaylistKey, it, r.info(p))
	if err != nil || !res.NewSession {
		return err
	}
	// A session starts: on_unpublish (which names only the stream) must find its playlist, and
	// on_hls_notify (which names app and stream, no vhost) the folder its [ts_url] is relative to.
	folder := ""
	if p.M3U8URL != "" {
		folder = path.Dir(strings.TrimLeft(p.M3U8URL, "/"))
	}
	return r.Ledger.started(ctx, p.PlaylistKey, streamName(p.Vhost, p.App, p.Stream), p.App+"/"+p.Stream, folder)
}

// Lost withdraws an announced segment whose task could not be recorded: the live playlist moves
// past it. The upload of the playlist is left to the workers' sweep.
func (r *Receiver) Lost(ctx context.Context, p queue.Offload) error {
	it, ok := itemOf(p)
	if !ok {
		return nil
	}
	res, err := r.Ledger.Lost(ctx, p.PlaylistKey, it, r.info(p))
	if err != nil || !res.Changed {
		return err
	}
	return r.Ledger.markActive(ctx, p.PlaylistKey)
}

// Folder returns the folder of a stream's m3u8_url as its last on_hls reported it ("." for a
// playlist at the top), or false when no on_hls of the stream was seen.
func (r *Receiver) Folder(ctx context.Context, app, stream string) (string, bool, error) {
	return r.Ledger.folder(ctx, app+"/"+stream)
}

// PurgedFile returns the identity of the file that was at path when it was purged, if that was
// within the last hour (Manager.Purged records it).
func (r *Receiver) PurgedFile(ctx context.Context, path string) (fileid.ID, bool, error) {
	return r.Ledger.purgedFile(ctx, path)
}
