package playlist

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/rdb"
)

// session is one publish session of a stream.
type session struct {
	Number int64
	Info   SessionInfo
}

// sessionOf finds the newest session of a publisher (client "": the newest session).
func (l *Ledger) sessionOf(ctx context.Context, playlistKey, client string) (session, bool, error) {
	all, err := l.rdb.HGetAll(ctx, rdb.StreamKeys(playlistKey).Vs).Result()
	if err != nil {
		return session{}, false, err
	}
	var best session
	found := false
	for n, raw := range all {
		num, _ := strconv.ParseInt(n, 10, 64)
		var si SessionInfo
		if json.Unmarshal([]byte(raw), &si) != nil || (client != "" && si.Client != client) {
			continue
		}
		if !found || num > best.Number {
			best, found = session{num, si}, true
		}
	}
	return best, found, nil
}

// sessionNumbered reads the session with a number.
func (l *Ledger) sessionNumbered(ctx context.Context, playlistKey string, number int64) (session, bool, error) {
	raw, err := l.rdb.HGet(ctx, rdb.StreamKeys(playlistKey).Vs, strconv.FormatInt(number, 10)).Result()
	if err == redis.Nil {
		return session{}, false, nil
	}
	if err != nil {
		return session{}, false, err
	}
	var si SessionInfo
	if err := json.Unmarshal([]byte(raw), &si); err != nil {
		return session{}, false, fmt.Errorf("playlist %s: session %d: %w", playlistKey, number, err)
	}
	return session{number, si}, true, nil
}

// inFlight counts a session's items announced but neither verified nor lost.
func (l *Ledger) inFlight(ctx context.Context, playlistKey string, sess int64) (int64, error) {
	n, err := l.rdb.HGet(ctx, rdb.StreamKeys(playlistKey).St, "if:"+strconv.FormatInt(sess, 10)).Int64()
	if err == redis.Nil {
		return 0, nil
	}
	return n, err
}

// vodSize is how many items a session's VoD record holds.
func (l *Ledger) vodSize(ctx context.Context, playlistKey string, sess int64) (int64, error) {
	return l.rdb.ZCard(ctx, rdb.StreamKeys(playlistKey).VOD(sess)).Result()
}

// vodEntries reads every verified item of a session in hook order.
func (l *Ledger) vodEntries(ctx context.Context, playlistKey string, sess int64) ([]entry, error) {
	raws, err := l.rdb.ZRange(ctx, rdb.StreamKeys(playlistKey).VOD(sess), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]entry, 0, len(raws))
	for _, raw := range raws {
		var e entry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, fmt.Errorf("vod entry %q: %w", raw, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// renderVOD writes the whole session as a VoD playlist: every segment, EXT-X-PLAYLIST-TYPE:VOD,
// EXT-X-ENDLIST; a discontinuity where a segment is missing (a lost hook or file).
func renderVOD(vodKey string, items []entry) []byte {
	var segs []entry
	var curMap string
	fmp4 := false
	last := int64(-1)
	for _, it := range items {
		switch it.Kind {
		case KindInit:
			curMap, fmp4 = it.Key, true
			continue
		case KindFMP4:
			if curMap == "" {
				continue // no init in storage: it cannot play
			}
			it.Map = curMap
		}
		if last >= 0 && it.Seq != last+1 && len(segs) > 0 {
			it.Disc = 1
		}
		last = it.Seq
		segs = append(segs, it)
	}
	if len(segs) == 0 {
		return nil
	}
	var b strings.Builder
	version := 3
	if fmp4 {
		version = 7
	}
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-PLAYLIST-TYPE:VOD\n", version)
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n", max(targetOf(segs), 1))
	writeSegments(&b, vodKey, segs)
	b.WriteString("#EXT-X-ENDLIST\n")
	return []byte(b.String())
}

// endSession marks a session ended, lets its records expire, and (endLive) marks the live
// playlist ended when no newer session has begun. It returns whether the live playlist changed.
func (l *Ledger) endSession(ctx context.Context, playlistKey string, s session, endLive bool) (bool, error) {
	k := rdb.StreamKeys(playlistKey)
	s.Info.Ended = true
	info, _ := json.Marshal(s.Info)
	el := "0"
	if endLive {
		el = "1"
	}
	r, err := rdb.EndSession.Run(ctx, l.rdb, []string{k.St, k.Vs, k.VOD(s.Number)}, s.Number, string(info), l.set.Retain.Milliseconds(), el).Int()
	return r == 1, err
}
