// Package hlstest reads HLS media playlists and checks the invariants srs-offload promises for
// every playlist in storage: valid HLS (RFC 8216), every URI already stored, and no going back.
package hlstest

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Segment is one media segment of a playlist.
type Segment struct {
	URI      string // as written
	Key      string // the object key it resolves to, relative to the playlist's key
	Duration float64
	Disc     bool   // an EXT-X-DISCONTINUITY comes before it
	Map      string // the object key of the EXT-X-MAP in effect, if any
	KeyTag   string // the EXT-X-KEY line in effect, if any
	MSN      int64  // its media sequence number
}

// Playlist is a parsed media playlist.
type Playlist struct {
	Version  int
	Target   int64
	MSN      int64 // EXT-X-MEDIA-SEQUENCE
	DiscSeq  int64
	Type     string // EXT-X-PLAYLIST-TYPE
	Ended    bool
	Segments []Segment
}

// Parse reads a playlist stored under key (URIs are resolved against it). It fails on anything
// that is not a well-formed media playlist.
func Parse(key string, body []byte) (*Playlist, error) {
	p := &Playlist{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	first := true
	var dur float64
	haveInf, disc := false, false
	var curMap, curKey string
	seenTarget := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if first {
			if line != "#EXTM3U" {
				return nil, fmt.Errorf("first line %q, want #EXTM3U", line)
			}
			first = false
			continue
		}
		switch {
		case line == "":
		case strings.HasPrefix(line, "#EXT-X-VERSION:"):
			p.Version, _ = strconv.Atoi(line[len("#EXT-X-VERSION:"):])
		case strings.HasPrefix(line, "#EXT-X-TARGETDURATION:"):
			t, err := strconv.ParseInt(line[len("#EXT-X-TARGETDURATION:"):], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("bad %q", line)
			}
			p.Target, seenTarget = t, true
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
			u := attr(line, "URI")
			if u == "" {
				return nil, fmt.Errorf("EXT-X-MAP without URI: %q", line)
			}
			k, err := Resolve(key, u)
			if err != nil {
				return nil, err
			}
			curMap = k
		case strings.HasPrefix(line, "#EXT-X-KEY:"):
			curKey = line
			if strings.Contains(line, "METHOD=NONE") {
				curKey = ""
			}
		case strings.HasPrefix(line, "#EXTINF:"):
			v := strings.TrimSuffix(strings.SplitN(line[len("#EXTINF:"):], ",", 2)[0], ",")
			d, err := strconv.ParseFloat(v, 64)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("bad %q", line)
			}
			dur, haveInf = d, true
		case strings.HasPrefix(line, "#"):
			// other tags are allowed
		default:
			if !haveInf {
				return nil, fmt.Errorf("URI %q without #EXTINF", line)
			}
			k, err := Resolve(key, line)
			if err != nil {
				return nil, err
			}
			p.Segments = append(p.Segments, Segment{URI: line, Key: k, Duration: dur, Disc: disc, Map: curMap, KeyTag: curKey,
				MSN: p.MSN + int64(len(p.Segments))})
			haveInf, disc = false, false
		}
	}
	if first {
		return nil, fmt.Errorf("empty playlist")
	}
	if !seenTarget {
		return nil, fmt.Errorf("no #EXT-X-TARGETDURATION")
	}
	return p, nil
}

// Resolve turns a URI in the playlist stored under key into an object key.
func Resolve(key, uri string) (string, error) {
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

// Check verifies the RFC 8216 rules srs-offload relies on: a target duration at least every
// EXTINF rounded, EXT-X-MAP (and version ≥ 6) for fMP4 segments, a VoD playlist that ends.
// stored reports whether an object key is in storage.
func (p *Playlist) Check(stored func(key string) bool) error {
	if len(p.Segments) == 0 {
		return fmt.Errorf("no segments")
	}
	for _, s := range p.Segments {
		if r := int64(math.Round(s.Duration)); r > p.Target {
			return fmt.Errorf("EXTINF %.3f (%s) rounds above EXT-X-TARGETDURATION %d", s.Duration, s.URI, p.Target)
		}
		if strings.HasSuffix(s.Key, ".m4s") && s.Map == "" {
			return fmt.Errorf("fMP4 segment %s without EXT-X-MAP", s.URI)
		}
		if s.Map != "" && p.Version < 6 {
			return fmt.Errorf("EXT-X-MAP needs EXT-X-VERSION 6 or more, have %d", p.Version)
		}
		if stored != nil && !stored(s.Key) {
			return fmt.Errorf("segment %s (%s) is not in storage", s.URI, s.Key)
		}
		if stored != nil && s.Map != "" && !stored(s.Map) {
			return fmt.Errorf("EXT-X-MAP %s is not in storage", s.Map)
		}
	}
	if p.Type == "VOD" && !p.Ended {
		return fmt.Errorf("VOD playlist without #EXT-X-ENDLIST")
	}
	return nil
}

// Follows reports whether p may replace prev in storage: the media sequence does not go back,
// and every segment both list under one media sequence number is the same object.
func (p *Playlist) Follows(prev *Playlist) error {
	if p.MSN < prev.MSN {
		return fmt.Errorf("media sequence went back from %d to %d", prev.MSN, p.MSN)
	}
	if p.DiscSeq < prev.DiscSeq {
		return fmt.Errorf("discontinuity sequence went back from %d to %d", prev.DiscSeq, p.DiscSeq)
	}
	if len(p.Segments) > 0 && len(prev.Segments) > 0 && p.MSN+int64(len(p.Segments)) < prev.MSN+int64(len(prev.Segments)) {
		return fmt.Errorf("the playlist shrank at its end: %d..%d after %d..%d", p.MSN, p.MSN+int64(len(p.Segments)),
			prev.MSN, prev.MSN+int64(len(prev.Segments)))
	}
	byMSN := map[int64]string{}
	for _, s := range prev.Segments {
		byMSN[s.MSN] = s.Key
	}
	for _, s := range p.Segments {
		if k, ok := byMSN[s.MSN]; ok && k != s.Key {
			return fmt.Errorf("media sequence %d was %s, now %s", s.MSN, k, s.Key)
		}
	}
	return nil
}

// Duration is the sum of the EXTINF durations.
func (p *Playlist) Duration() float64 {
	var d float64
	for _, s := range p.Segments {
		d += s.Duration
	}
	return d
}

func attr(line, name string) string {
	i := strings.Index(line, name+"=\"")
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
