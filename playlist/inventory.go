package playlist

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/rdb"
)

// The ledger read for the inventory (`srs-offload ls`): which streams it knows, their publish
// sessions and each session's verified items. Nothing here changes the ledger.

// Streams returns every stream the ledger knows, by name (vhost/app/stream), with the object key
// of its live playlist.
func (l *Ledger) Streams(ctx context.Context) (map[string]string, error) {
	m, err := l.rdb.HGetAll(ctx, rdb.Streams).Result()
	if err != nil {
		return nil, fmt.Errorf("playlist ledger: streams: %w", err)
	}
	return m, nil
}

// Session is one publish session as the ledger records it.
type Session struct {
	Number int64
	Info   SessionInfo
	// Items are its verified items (segments and fMP4 init segments) in playlist order; Recorded
	// is false once the record expired (playlist.retain after the session ended): Items is then
	// empty and the VoD playlist in storage is what is left.
	Items    []SessionItem
	Recorded bool
}

// SessionItem is one verified file of a session.
type SessionItem struct {
	Kind     string // KindSegment, KindFMP4 or KindInit
	Seq      int64
	Duration float64
	Key      string
}

// Name names a session in VoD keys ({session}): its start time (UTC) and publisher.
func (s Session) Name() string { return sessionName(session{s.Number, s.Info}) }

// VODKey is the key of the session's VoD playlist under the playlist.vod_key template.
func (s Session) VODKey(t objkey.Template) (string, error) {
	return vodKey(t, session{s.Number, s.Info})
}

// vodKey expands playlist.vod_key for a session: the one place its variables are filled in.
func vodKey(t objkey.Template, s session) (string, error) {
	return t.Expand(objkey.Vars{
		Vhost: s.Info.Vhost, App: s.Info.App, Stream: s.Info.Stream, StreamID: s.Info.StreamID,
		ClientID: s.Info.Client, Session: sessionName(s),
	})
}

// Sessions returns the publish sessions of the stream whose live playlist is playlistKey, oldest
// first, each with its verified items while the ledger keeps them.
func (l *Ledger) Sessions(ctx context.Context, playlistKey string) ([]Session, error) {
	k := rdb.StreamKeys(playlistKey)
	all, err := l.rdb.HGetAll(ctx, k.Vs).Result()
	if err != nil {
		return nil, fmt.Errorf("playlist ledger %s: sessions: %w", playlistKey, err)
	}
	var out []Session
	for n, raw := range all {
		num, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			continue
		}
		var si SessionInfo
		if err := json.Unmarshal([]byte(raw), &si); err != nil {
			return nil, fmt.Errorf("playlist ledger %s: session %s: %w", playlistKey, n, err)
		}
		s := Session{Number: num, Info: si}
		exists, err := l.rdb.Exists(ctx, k.VOD(num)).Result()
		if err != nil {
			return nil, err
		}
		if s.Recorded = exists == 1; s.Recorded {
			es, err := l.vodEntries(ctx, playlistKey, num)
			if err != nil {
				return nil, fmt.Errorf("playlist ledger %s: session %d: %w", playlistKey, num, err)
			}
			for _, e := range es {
				s.Items = append(s.Items, SessionItem{Kind: e.Kind, Seq: e.Seq, Duration: e.Duration, Key: e.Key})
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}
