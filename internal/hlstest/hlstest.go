// Package hlstest checks the invariants srs-offload promises for every playlist in storage: valid
// HLS (RFC 8216), every URI already stored, and no going back. It reads playlists with package
// m3u8 and resolves their URIs to object keys.
package hlstest

import (
	"fmt"
	"math"
	"strings"

	"github.com/srs-offload/srs-offload/m3u8"
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
// that is not a well-formed media playlist (m3u8.Parse's ErrMalformed), and on a URI that is not
// relative or leaves the bucket.
func Parse(key string, body []byte) (*Playlist, error) {
	m, err := m3u8.Parse(body)
	if err != nil {
		return nil, err
	}
	p := &Playlist{Version: m.Version, Target: m.Target, MSN: m.MSN, DiscSeq: m.DiscSeq, Type: m.Type, Ended: m.Ended}
	for _, s := range m.Segments {
		k, err := m3u8.ResolveKey(key, s.URI)
		if err != nil {
			return nil, err
		}
		seg := Segment{URI: s.URI, Key: k, Duration: s.Duration, Disc: s.Disc, KeyTag: s.Key, MSN: s.Seq}
		if s.Map != "" {
			if seg.Map, err = m3u8.ResolveKey(key, s.Map); err != nil {
				return nil, err
			}
		}
		p.Segments = append(p.Segments, seg)
	}
	return p, nil
}

// Resolve turns a URI in the playlist stored under key into an object key (m3u8.ResolveKey).
func Resolve(key, uri string) (string, error) { return m3u8.ResolveKey(key, uri) }

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
