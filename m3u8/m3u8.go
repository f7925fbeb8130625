// Package m3u8 is srs-offload's one reader of HLS media playlists (RFC 8216): SRS's own .m3u8 on
// disk, read by the worker for a segment's EXT-X-KEY and by the reconciler for a found segment's
// place and duration, and the playlists srs-offload stores, read back by the tests. It owns how a
// playlist's lines are parsed, how a segment is found in one, and how a URI in one resolves to a
// path or object key. The playlists srs-offload writes are rendered by package playlist.
package m3u8

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Segment is one media segment of a playlist.
type Segment struct {
	URI      string  // as written: relative to the playlist, or an absolute URL (SRS's hls_entry_prefix)
	Seq      int64   // its media sequence number: EXT-X-MEDIA-SEQUENCE plus its position
	Duration float64 // its EXTINF
	Disc     bool    // an EXT-X-DISCONTINUITY comes before it
	Map      string  // the URI of the EXT-X-MAP in effect (fMP4), as written, if any
	Key      string  // the EXT-X-KEY line in effect, "" when none (or METHOD=NONE)
}

// Playlist is a media playlist.
type Playlist struct {
	Version   int
	Target    int64 // EXT-X-TARGETDURATION
	HasTarget bool  // EXT-X-TARGETDURATION is present
	MSN       int64 // EXT-X-MEDIA-SEQUENCE
	DiscSeq   int64 // EXT-X-DISCONTINUITY-SEQUENCE
	Type      string
	Ended     bool // EXT-X-ENDLIST
	// Encrypted: some EXT-X-KEY other than METHOD=NONE appears.
	Encrypted bool
	Segments  []Segment
}

// ErrMalformed is wrapped by every error of Parse.
var ErrMalformed = errors.New("malformed media playlist")

// maxLine bounds one line; a longer one ends the playlist with an error.
const maxLine = 1 << 20

// Parse reads a media playlist. It always returns what it could read, and with it the first
// thing that makes the playlist invalid (ErrMalformed): no #EXTM3U first, no or a bad
// EXT-X-TARGETDURATION, a bad EXTINF, a URI without EXTINF (which is then not a segment), an
// EXT-X-MAP without URI. Tags it does not know are skipped. A reader of SRS's playlists, which
// looks only for the places of segments, uses the playlist and ignores the error; a checker of
// stored playlists refuses it.
func Parse(body []byte) (*Playlist, error) {
	p := &Playlist{}
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, maxLine)
	first := true
	var dur float64
	inf, disc := false, false
	var curMap, curKey string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if first {
			first = false
			if line == "#EXTM3U" {
				continue
			}
			bad("first line %q, want #EXTM3U", line)
		}
		switch {
		case line == "":
		case strings.HasPrefix(line, "#EXT-X-VERSION:"):
			p.Version, _ = strconv.Atoi(line[len("#EXT-X-VERSION:"):])
		case strings.HasPrefix(line, "#EXT-X-TARGETDURATION:"):
			t, err := strconv.ParseInt(line[len("#EXT-X-TARGETDURATION:"):], 10, 64)
			if err != nil {
				bad("bad %q", line)
				continue
			}
			p.Target, p.HasTarget = t, true
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			p.MSN, _ = strconv.ParseInt(line[len("#EXT-X-MEDIA-SEQUENCE:"):], 10, 64)
		case strings.HasPrefix(line, "#EXT-X-DISCONTINUITY-SEQUENCE:"):
			p.DiscSeq, _ = strconv.ParseInt(line[len("#EXT-X-DISCONTINUITY-SEQUENCE:"):], 10, 64)
		case strings.HasPrefix(line, "#EXT-X-PLAYLIST-TYPE:"):
			p.Type = line[len("#EXT-X-PLAYLIST-TYPE:"):]
		case line == "#EXT-X-ENDLIST":
			p.Ended = true
		case line == "#EXT-X-DISCONTINUITY":
			disc = true
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			curMap = Attr(line, "URI")
			if curMap == "" {
				bad("EXT-X-MAP without URI: %q", line)
			}
		case strings.HasPrefix(line, "#EXT-X-KEY:"):
			curKey = line
			if strings.Contains(line, "METHOD=NONE") {
				curKey = ""
			} else {
				p.Encrypted = true
			}
		case strings.HasPrefix(line, "#EXTINF:"):
			v, _, _ := strings.Cut(line[len("#EXTINF:"):], ",")
			d, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			inf = err == nil && d >= 0
			if !inf {
				bad("bad %q", line)
			}
			dur = d
		case strings.HasPrefix(line, "#"):
			// other tags are allowed
		default:
			if !inf {
				bad("URI %q without #EXTINF", line)
				continue
			}
			p.Segments = append(p.Segments, Segment{URI: line, Duration: dur, Disc: disc, Map: curMap, Key: curKey})
			inf, disc = false, false
		}
	}
	for i := range p.Segments {
		p.Segments[i].Seq = p.MSN + int64(i)
	}
	switch {
	case sc.Err() != nil:
		bad("%v", sc.Err())
	case first:
		bad("empty playlist")
	case !p.HasTarget:
		bad("no #EXT-X-TARGETDURATION")
	}
	if len(errs) > 0 {
		return p, fmt.Errorf("%w: %s", ErrMalformed, errs[0])
	}
	return p, nil
}

// Bytes writes the playlist: Parse(p.Bytes()) reads back the same playlist (the titles of EXTINF
// and tags Parse skips are not kept). Segment numbers follow from MSN.
func (p *Playlist) Bytes() []byte {
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n")
	if p.Version != 0 {
		fmt.Fprintf(&b, "#EXT-X-VERSION:%d\n", p.Version)
	}
	if p.HasTarget {
		fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", p.Target)
	}
	if p.Type != "" {
		fmt.Fprintf(&b, "#EXT-X-PLAYLIST-TYPE:%s\n", p.Type)
	}
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", p.MSN)
	if p.DiscSeq != 0 {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", p.DiscSeq)
	}
	curMap, curKey := "", ""
	for _, s := range p.Segments {
		if s.Key != curKey {
			if s.Key == "" {
				b.WriteString("#EXT-X-KEY:METHOD=NONE\n")
			} else {
				b.WriteString(s.Key + "\n")
			}
			curKey = s.Key
		}
		if s.Map != curMap {
			b.WriteString(`#EXT-X-MAP:URI="` + s.Map + "\"\n")
			curMap = s.Map
		}
		if s.Disc {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		fmt.Fprintf(&b, "#EXTINF:%s,\n%s\n", strconv.FormatFloat(s.Duration, 'f', -1, 64), s.URI)
	}
	if p.Encrypted && !anyKey(p.Segments) {
		// A key tag after the last segment still makes the playlist encrypted.
		b.WriteString("#EXT-X-KEY:METHOD=AES-128,URI=\"\"\n")
	}
	if p.Ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.Bytes()
}

func anyKey(segs []Segment) bool {
	for _, s := range segs {
		if s.Key != "" {
			return true
		}
	}
	return false
}

// Find returns the segment whose URI names the file at rel (a slash path below the root), the
// playlist itself being at m3u8Rel below the same root. A relative URI names it as written (SRS
// writes file names unescaped) or percent-decoded; an absolute URL (SRS's hls_entry_prefix) names
// it when its path ends with rel.
func (p *Playlist) Find(m3u8Rel, rel string) (Segment, bool) {
	for _, s := range p.Segments {
		r := ResolveURI(m3u8Rel, s.URI)
		if IsAbs(s.URI) {
			if r == rel || strings.HasSuffix("/"+r, "/"+rel) {
				return s, true
			}
			continue
		}
		if r == rel || path.Join(path.Dir(m3u8Rel), s.URI) == rel {
			return s, true
		}
	}
	return Segment{}, false
}

// IsAbs reports whether uri is an absolute URL (scheme://…, //host/…) or an absolute path, not
// relative to the playlist. A name with a colon ("cam:1.ts") is relative: SRS writes file names
// as they are.
func IsAbs(uri string) bool { return strings.Contains(uri, "://") || strings.HasPrefix(uri, "/") }

// ResolveURI is the slash path below the root that a URI in the playlist at m3u8Rel names:
// relative URIs against the playlist's folder (percent-decoded when they parse as a URI path,
// else as written); an absolute URL (hls_entry_prefix) by its path. It is "" for an absolute URL
// that does not parse.
func ResolveURI(m3u8Rel, uri string) string {
	u, err := url.Parse(uri)
	if IsAbs(uri) {
		if err != nil {
			return ""
		}
		return strings.TrimPrefix(path.Clean("/"+u.Path), "/")
	}
	if err != nil || u.Scheme != "" || u.Opaque != "" {
		return path.Join(path.Dir(m3u8Rel), uri)
	}
	return path.Join(path.Dir(m3u8Rel), u.Path)
}

// ResolveKey turns a URI in the playlist stored under object key into an object key. A URI that
// is not relative, or that leads out of the bucket, is an error.
func ResolveKey(key, uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.IsAbs() || u.Host != "" {
		return "", fmt.Errorf("URI %q is not relative", uri)
	}
	p := path.Join(path.Dir(key), u.Path)
	if strings.HasPrefix(p, "../") || p == ".." || strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("URI %q leaves the bucket", uri)
	}
	return p, nil
}

// Attr is the value of a quoted attribute (NAME="value") of a tag line, "" when it has none.
func Attr(line, name string) string {
	i := strings.Index(line, name+`="`)
	if i < 0 {
		return ""
	}
	rest := line[i+len(name)+2:]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return rest[:j]
}
