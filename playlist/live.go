package playlist

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/rdb"
)

// Live is what the ledger says of one active stream (for `srs-offload status`).
type Live struct {
	// Name is vhost/app/stream, when the ledger knows it.
	Name string `json:"name,omitempty"`
	// Playlist is the live playlist's object key.
	Playlist string `json:"playlist"`
	// Session is the publish session the live playlist is in.
	Session int64 `json:"session"`
	// Announced is the seq_no of the newest segment SRS announced (-1 when none).
	Announced int64 `json:"announced"`
	// LastSegment is the object key of the newest segment in the live playlist ("" when empty).
	LastSegment string `json:"last_segment,omitempty"`
	// MediaSequence is the live playlist's EXT-X-MEDIA-SEQUENCE, and Segments its length.
	MediaSequence int64 `json:"media_sequence"`
	Segments      int64 `json:"segments"`
	// InFlight is the number of segments announced but not yet stored or lost.
	InFlight int64 `json:"in_flight"`
	// Changed is the time of the stream's last change.
	Changed time.Time `json:"changed"`
	Ended   bool      `json:"ended,omitempty"`
}

// Live lists the streams the sweep visits (those with a change in the last playlist.retain), in
// playlist key order. It only reads.
func (l *Ledger) Live(ctx context.Context) ([]Live, error) {
	act, err := l.active(ctx)
	if err != nil {
		return nil, err
	}
	names, err := l.rdb.HGetAll(ctx, rdb.Streams).Result()
	if err != nil {
		return nil, err
	}
	nameOf := map[string]string{}
	for n, pk := range names {
		if cur, ok := nameOf[pk]; !ok || n < cur {
			nameOf[pk] = n
		}
	}
	out := make([]Live, 0, len(act))
	for _, z := range act {
		pk, _ := z.Member.(string)
		k := rdb.StreamKeys(pk)
		pipe := l.rdb.Pipeline()
		st := pipe.HGetAll(ctx, k.St)
		first := pipe.LIndex(ctx, k.W, 0)
		last := pipe.LIndex(ctx, k.W, -1)
		n := pipe.LLen(ctx, k.W)
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return nil, err
		}
		f := st.Val()
		lv := Live{Name: nameOf[pk], Playlist: pk, Changed: time.UnixMilli(int64(z.Score)),
			Session: num(f["sess"]), Announced: -1, Segments: n.Val(), Ended: f["ended"] == "1"}
		if v, ok := f["aseq"]; ok {
			lv.Announced = num(v)
		}
		if s := num(f["asess"]); s > lv.Session {
			lv.Session = s
		}
		lv.InFlight = num(f["if:"+strconv.FormatInt(lv.Session, 10)])
		var e struct {
			I int64  `json:"i"`
			U string `json:"u"`
		}
		if json.Unmarshal([]byte(first.Val()), &e) == nil {
			lv.MediaSequence = e.I
		} else {
			lv.MediaSequence = num(f["next"])
		}
		if json.Unmarshal([]byte(last.Val()), &e) == nil {
			lv.LastSegment = e.U
		}
		out = append(out, lv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Playlist < out[j].Playlist })
	return out, nil
}

func num(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
