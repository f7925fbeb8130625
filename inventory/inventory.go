// Package inventory says what is stored per stream (`srs-offload ls`): its HLS publish sessions
// (start, end, segments, duration, bytes, VoD playlist), read from the playlist ledger in Redis
// and the bucket, and its DVR recordings (key, size, time), read from a bucket listing under the
// keys.dvr layout. It only reads.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/srs-offload/srs-offload/m3u8"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/storage"
)

// Ledger is the playlist ledger's read side (playlist.Ledger).
type Ledger interface {
	Streams(ctx context.Context) (map[string]string, error)
	Sessions(ctx context.Context, playlistKey string) ([]playlist.Session, error)
}

// Bucket is what the inventory reads of object storage (uploader.Uploader).
type Bucket interface {
	List(ctx context.Context, prefix string) ([]storage.Listed, error)
	Get(ctx context.Context, key string) ([]byte, error)
}

// Inventory reads the ledger and the bucket.
type Inventory struct {
	Ledger Ledger // nil: no HLS sessions (playlist.enabled off)
	Bucket Bucket
	// DVRKey is keys.dvr, the layout of recordings.
	DVRKey objkey.Template
	// VODKey is playlist.vod_key; nil: sessions have no VoD playlist.
	VODKey *objkey.Template
}

// Stream is what is stored for one stream.
type Stream struct {
	Vhost  string `json:"vhost,omitempty"`
	App    string `json:"app"`
	Stream string `json:"stream"`
	// Playlist is the key of its live playlist ("" for a stream with recordings only).
	Playlist string    `json:"playlist,omitempty"`
	Sessions []Session `json:"sessions,omitempty"`
	DVR      []File    `json:"dvr,omitempty"`
}

// Session is one HLS publish session.
type Session struct {
	Number int64  `json:"number"`
	Name   string `json:"name"`
	Client string `json:"client,omitempty"`
	Node   string `json:"node,omitempty"`
	// Start is when its first segment was announced; End is when its last segment was stored
	// (the object's time in the bucket).
	Start time.Time `json:"start"`
	End   time.Time `json:"end,omitzero"`
	Ended bool      `json:"ended"`
	// Segments and Duration are its media segments (init segments not counted); Bytes is what
	// the bucket holds of them (Missing: listed but not in the bucket).
	Segments int     `json:"segments"`
	Duration float64 `json:"duration"`
	Bytes    int64   `json:"bytes"`
	Missing  int     `json:"missing,omitempty"`
	// VOD is the key of its VoD playlist, VODStored whether the bucket has it.
	VOD       string `json:"vod,omitempty"`
	VODStored bool   `json:"vod_stored"`
	// From says where the segment list came from: "ledger", or "vod" once the ledger's record
	// expired (playlist.retain) and the stored VoD playlist is what is left.
	From string `json:"from"`
}

// File is one stored recording.
type File struct {
	Key  string    `json:"key"`
	Size int64     `json:"size"`
	Time time.Time `json:"time"`
}

// List returns what is stored for the streams app/stream selects ("" selects all; stream needs
// app), sorted by app and stream.
func (inv *Inventory) List(ctx context.Context, app, stream string) ([]Stream, error) {
	if stream != "" && app == "" {
		return nil, errors.New("ls: a stream needs its app (app/stream)")
	}
	byName := map[string]*Stream{}
	get := func(vhost, a, s string) *Stream {
		k := a + "/" + s
		if st, ok := byName[k]; ok {
			if st.Vhost == "" {
				st.Vhost = vhost
			}
			return st
		}
		st := &Stream{Vhost: vhost, App: a, Stream: s}
		byName[k] = st
		return st
	}
	hlsKeys := map[string]bool{}
	if inv.Ledger != nil {
		streams, err := inv.Ledger.Streams(ctx)
		if err != nil {
			return nil, err
		}
		for name, pk := range streams {
			vhost, rest, _ := strings.Cut(name, "/")
			a, s, _ := strings.Cut(rest, "/")
			if (app != "" && a != app) || (stream != "" && s != stream) {
				continue
			}
			st := get(vhost, a, s)
			st.Playlist = pk
			if err := inv.sessions(ctx, st, hlsKeys); err != nil {
				return nil, err
			}
		}
	}
	if err := inv.recordings(ctx, app, stream, hlsKeys, get); err != nil {
		return nil, err
	}
	out := make([]Stream, 0, len(byName))
	for _, st := range byName {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].App != out[j].App {
			return out[i].App < out[j].App
		}
		return out[i].Stream < out[j].Stream
	})
	return out, nil
}

// sessions fills in a stream's sessions from the ledger, and their bytes and times from one
// listing of the bucket under the folder their objects share.
func (inv *Inventory) sessions(ctx context.Context, st *Stream, hlsKeys map[string]bool) error {
	recs, err := inv.Ledger.Sessions(ctx, st.Playlist)
	if err != nil {
		return err
	}
	type items struct {
		s     *Session
		items []playlist.SessionItem
	}
	var all []items
	var keys []string
	for _, r := range recs {
		s := Session{Number: r.Number, Name: r.Name(), Client: r.Info.Client, Node: r.Info.Node, Ended: r.Info.Ended, From: "ledger"}
		if r.Info.Start > 0 {
			s.Start = time.UnixMilli(r.Info.Start).UTC()
		}
		if inv.VODKey != nil {
			if k, err := r.VODKey(*inv.VODKey); err == nil {
				s.VOD = k
				keys = append(keys, k)
			}
		}
		its := r.Items
		if !r.Recorded && s.VOD != "" {
			// The ledger's record expired: the VoD playlist stored for the session lists it.
			s.From = "vod"
			its, err = inv.fromVOD(ctx, s.VOD)
			if err != nil {
				return err
			}
		}
		for _, it := range its {
			keys = append(keys, it.Key)
			hlsKeys[it.Key] = true
		}
		all = append(all, items{&s, its})
	}
	stored, err := inv.listCommon(ctx, keys)
	if err != nil {
		return err
	}
	for _, x := range all {
		s := x.s
		for _, it := range x.items {
			o, ok := stored[it.Key]
			if it.Kind != playlist.KindInit {
				s.Segments++
				s.Duration += it.Duration
				if !ok {
					s.Missing++
				}
			}
			if ok {
				s.Bytes += o.Size
				if o.Modified.After(s.End) && it.Kind != playlist.KindInit {
					s.End = o.Modified.UTC()
				}
			}
		}
		if s.VOD != "" {
			_, s.VODStored = stored[s.VOD]
		}
		st.Sessions = append(st.Sessions, *s)
	}
	return nil
}

// fromVOD reads the segments of a stored VoD playlist (none when it is not stored).
func (inv *Inventory) fromVOD(ctx context.Context, key string) ([]playlist.SessionItem, error) {
	body, err := inv.Bucket.Get(ctx, key)
	if err != nil {
		return nil, nil // not stored (a session with no segment, or a VoD playlist deleted)
	}
	pl, _ := m3u8.Parse(body)
	var out []playlist.SessionItem
	maps := map[string]bool{}
	for _, s := range pl.Segments {
		k, err := m3u8.ResolveKey(key, s.URI)
		if err != nil {
			continue
		}
		if s.Map != "" && !maps[s.Map] {
			maps[s.Map] = true
			if mk, err := m3u8.ResolveKey(key, s.Map); err == nil {
				out = append(out, playlist.SessionItem{Kind: playlist.KindInit, Key: mk})
			}
		}
		out = append(out, playlist.SessionItem{Kind: playlist.KindSegment, Seq: s.Seq, Duration: s.Duration, Key: k})
	}
	return out, nil
}

// listCommon lists the bucket once under the folder every key shares.
func (inv *Inventory) listCommon(ctx context.Context, keys []string) (map[string]storage.Listed, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	prefix := path.Dir(keys[0]) + "/"
	for _, k := range keys[1:] {
		for !strings.HasPrefix(k, prefix) && prefix != "" {
			prefix = prefix[:strings.LastIndex(strings.TrimSuffix(prefix, "/"), "/")+1]
		}
	}
	if prefix == "./" {
		prefix = ""
	}
	objs, err := inv.Bucket.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string]storage.Listed, len(objs))
	for _, o := range objs {
		out[o.Key] = o
	}
	return out, nil
}

// recordings lists the bucket under the keys.dvr layout's prefix for app/stream and keeps the
// recordings its template can have made for them (by extension, and not an HLS file of a
// session).
func (inv *Inventory) recordings(ctx context.Context, app, stream string, hlsKeys map[string]bool, get func(vhost, app, stream string) *Stream) error {
	prefix := inv.DVRKey.Prefix(objkey.Vars{App: app, Stream: stream})
	objs, err := inv.Bucket.List(ctx, prefix)
	if err != nil {
		return fmt.Errorf("ls: recordings under %q: %w", prefix, err)
	}
	for _, o := range objs {
		if hlsKeys[o.Key] || media.IsInit(o.Key) {
			continue
		}
		if _, ok := media.ForDVR(o.Key); !ok {
			continue
		}
		v, ok := inv.DVRKey.Match(o.Key)
		if !ok || (app != "" && v.App != app) || (stream != "" && v.Stream != stream) {
			continue
		}
		st := get(v.Vhost, v.App, v.Stream)
		st.DVR = append(st.DVR, File{Key: o.Key, Size: o.Size, Time: o.Modified.UTC()})
	}
	return nil
}
