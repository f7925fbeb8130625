package playlist

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/rdb"
)

// entry is one segment of a playlist, as the ledger stores it (JSON from ledger.lua).
type entry struct {
	Index    int64   `json:"i"` // media sequence number (live only)
	Ord      int64   `json:"o"` // hook order (VoD only)
	Kind     string  `json:"k"` // VoD only: s, m or i
	Seq      int64   `json:"q"` // SRS's seq_no (VoD only)
	Duration float64 `json:"d"`
	Key      string  `json:"u"`  // object key
	Disc     int     `json:"x"`  // a discontinuity comes before it (live only)
	Map      string  `json:"m"`  // EXT-X-MAP object key (fMP4, live only)
	KeyTag   string  `json:"kt"` // SRS's EXT-X-KEY line
}

// live is a consistent snapshot of a stream's live playlist.
type live struct {
	Version  int64
	Target   int64 // the ledger's largest duration ever (not used: the target comes from the window)
	DiscSeq  int64
	FMP4     bool
	Ended    bool
	Entries  []entry
	Playlist string // its object key
	// Base, when set, is the URL segments are named under (absolute URIs); else they are named
	// relative to Playlist.
	Base string
}

// snapshot reads the live state and window in one transaction.
func (l *Ledger) snapshot(ctx context.Context, playlistKey string) (live, error) {
	k := rdb.StreamKeys(playlistKey)
	var st *redis.MapStringStringCmd
	var win *redis.StringSliceCmd
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		st = p.HGetAll(ctx, k.St)
		win = p.LRange(ctx, k.W, 0, -1)
		return nil
	})
	if err != nil {
		return live{}, fmt.Errorf("playlist %s: %w", playlistKey, err)
	}
	return liveFrom(playlistKey, st.Val(), win.Val())
}

// liveOf reads the snapshot rdb.Publish returns: {HGETALL of St, LRANGE of W}.
func liveOf(playlistKey string, res any) (live, error) {
	parts, ok := res.([]any)
	if !ok || len(parts) != 2 {
		return live{}, fmt.Errorf("playlist %s: unexpected snapshot %T", playlistKey, res)
	}
	flat, _ := parts[0].([]any)
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		f, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		m[f] = v
	}
	raw, _ := parts[1].([]any)
	win := make([]string, 0, len(raw))
	for _, e := range raw {
		s, _ := e.(string)
		win = append(win, s)
	}
	return liveFrom(playlistKey, m, win)
}

func liveFrom(playlistKey string, m map[string]string, win []string) (live, error) {
	s := live{
		Version: atoi(m["ver"]), Target: atoi(m["tdur"]), DiscSeq: atoi(m["dseq"]),
		FMP4: m["fmp4"] == "1", Ended: m["ended"] == "1", Playlist: playlistKey,
	}
	s.Entries = make([]entry, 0, len(win))
	for _, raw := range win {
		var e entry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return live{}, fmt.Errorf("playlist %s: window entry %q: %w", playlistKey, raw, err)
		}
		s.Entries = append(s.Entries, e)
	}
	return s, nil
}

// render writes the live playlist (RFC 8216). URIs are relative to the playlist's own key, so the
// playlist works wherever the bucket is served from.
func (s live) render() []byte {
	var b strings.Builder
	version := 3
	if s.FMP4 {
		version = 7
	}
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n", version)
	entries := playable(s.Entries)
	// The target comes from the window alone, not from the ledger's never-shrinking maximum
	// (s.Target): one outlier duration would otherwise pin it for the rest of the stream.
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", max(targetOf(entries), 1))
	seq := s.Entries[0].Index
	if len(entries) > 0 {
		seq = entries[0].Index
	}
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", seq)
	if s.DiscSeq > 0 {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", s.DiscSeq)
	}
	uri := relTo(s.Playlist)
	if s.Base != "" {
		uri = under(s.Base)
	}
	writeSegmentsURI(&b, uri, entries)
	if s.Ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String())
}

// playable drops the entries without a positive duration (a hook from before the receiver refused
// them): an EXTINF must be positive. A discontinuity before a dropped entry moves to the next one.
func playable(entries []entry) []entry {
	out := make([]entry, 0, len(entries))
	disc := 0
	for _, e := range entries {
		if !(e.Duration > 0) || math.IsInf(e.Duration, 0) {
			disc |= e.Disc
			continue
		}
		e.Disc |= disc
		disc = 0
		out = append(out, e)
	}
	return out
}

// writeSegments writes each entry with the tags that change before it: a discontinuity, the
// init segment (EXT-X-MAP), the key (EXT-X-KEY), each URI relative to the playlist stored under
// from. Entries without a positive duration are left out (see playable).
func writeSegments(b *strings.Builder, from string, entries []entry) {
	writeSegmentsURI(b, relTo(from), entries)
}

// uriOf turns an object key into the URI a playlist names it by.
type uriOf func(key string) string

// relTo names keys relative to the object key from (both in one bucket).
func relTo(from string) uriOf { return func(key string) string { return relURI(from, key) } }

// under names keys by an absolute URL: base (the bucket or CDN as players reach it) and the key.
func under(base string) uriOf {
	base = strings.TrimRight(base, "/")
	return func(key string) string { return base + "/" + strings.TrimPrefix(escapeURI(key), "./") }
}

func writeSegmentsURI(b *strings.Builder, uri uriOf, entries []entry) {
	var curMap, curKey string
	for _, e := range playable(entries) {
		if e.Disc == 1 {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if e.Map != "" && (e.Map != curMap || e.Disc == 1) {
			fmt.Fprintf(b, "#EXT-X-MAP:URI=\"%s\"\n", uri(e.Map))
			curMap = e.Map
		}
		if e.KeyTag != curKey {
			if e.KeyTag == "" {
				b.WriteString("#EXT-X-KEY:METHOD=NONE\n")
			} else {
				b.WriteString(keyTagURI(uri, e.KeyTag) + "\n")
			}
			curKey = e.KeyTag
		}
		fmt.Fprintf(b, "#EXTINF:%.3f,\n%s\n", e.Duration, uri(e.Key))
	}
}

// keyURIScheme marks an EXT-X-KEY URI that is an object key in the bucket (see KeyURI).
const keyURIScheme = "srs-offload-key:"

// KeyURI is how a stored key file is named inside an EXT-X-KEY tag given to the ledger: by object
// key, made relative to each playlist when it is rendered.
func KeyURI(objectKey string) string { return keyURIScheme + objectKey }

// keyTagFor rewrites a KeyURI in tag into a URI relative to the playlist stored under from.
func keyTagFor(from, tag string) string { return keyTagURI(relTo(from), tag) }

// keyTagURI rewrites a KeyURI in tag into the URI uri names its key by.
func keyTagURI(uri uriOf, tag string) string {
	i := strings.Index(tag, `URI="`+keyURIScheme)
	if i < 0 {
		return tag
	}
	start := i + len(`URI="`)
	end := strings.IndexByte(tag[start:], '"')
	if end < 0 {
		return tag
	}
	key := tag[start+len(keyURIScheme) : start+end]
	return tag[:start] + uri(key) + tag[start+end:]
}

// targetOf is the smallest target duration the entries allow: every EXTINF, rounded to the
// nearest integer, must not exceed it (RFC 8216 4.3.3.1). Rounding up is always enough.
func targetOf(entries []entry) int64 {
	var t int64
	for _, e := range playable(entries) {
		t = max(t, int64(math.Ceil(e.Duration-0.0005)))
	}
	return t
}

// relURI is the URI of object key to, relative to the object key from (both in one bucket).
func relURI(from, to string) string {
	fromDir := path.Dir(from)
	if fromDir == "." {
		return escapeURI(to)
	}
	fd := strings.Split(fromDir, "/")
	td := strings.Split(to, "/")
	i := 0
	for i < len(fd) && i < len(td)-1 && fd[i] == td[i] {
		i++
	}
	parts := make([]string, 0, len(fd)-i+len(td)-i)
	for range fd[i:] {
		parts = append(parts, "..")
	}
	parts = append(parts, td[i:]...)
	return escapeURI(strings.Join(parts, "/"))
}

// escapeURI escapes what a URI path cannot hold, keeping the slashes. A first segment with a
// colon would read as a scheme ("cam:1.ts"), so such a path starts with "./" (RFC 3986 4.2).
func escapeURI(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	if strings.Contains(segs[0], ":") {
		return "./" + strings.Join(segs, "/")
	}
	return strings.Join(segs, "/")
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
