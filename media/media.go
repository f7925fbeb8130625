// Package media is the one table of the files srs-offload moves: which extensions SRS produces, what
// kind of file each is, and the Content-Type and Cache-Control it is stored with.
package media

import (
	"path"
	"strings"
)

// Kind says what role a file plays, which decides which hook may name it and how it is cached.
type Kind int

const (
	// Segment is an HLS media segment (.ts, .m4s, …): written once, never changed.
	Segment Kind = iota + 1
	// Init is an fMP4 HLS initialisation segment. SRS rewrites it when a sequence header changes, so
	// it is stored under a short cache lifetime.
	Init
	// Playlist is an HLS playlist. SRS rewrites it for every segment; it is never cached.
	Playlist
	// Recording is a DVR file (FLV or MP4), written once.
	Recording
	// Key is an HLS AES-128 key file (hls_keys on), named by EXT-X-KEY.
	Key
)

func (k Kind) String() string {
	switch k {
	case Segment:
		return "segment"
	case Init:
		return "init"
	case Playlist:
		return "playlist"
	case Recording:
		return "recording"
	case Key:
		return "key"
	}
	return "unknown"
}

// Type is how one kind of file is stored.
type Type struct {
	Kind         Kind
	ContentType  string
	CacheControl string
}

const (
	immutable = "public, max-age=31536000, immutable"
	noCache   = "no-cache"
	// An init segment may be rewritten in the first seconds of a publish (video then audio header).
	shortLived = "public, max-age=2"
)

// hls lists what on_hls may report, by extension.
var hls = map[string]Type{
	".ts":  {Segment, "video/mp2t", immutable},
	".m4s": {Segment, "video/iso.segment", immutable},
	".aac": {Segment, "audio/aac", immutable},
	".mp3": {Segment, "audio/mpeg", immutable},
	".mp4": {Init, "video/mp4", shortLived}, // SRS 7 fMP4: init.mp4 is reported through on_hls
}

// dvr lists what on_dvr may report.
var dvr = map[string]Type{
	".flv": {Recording, "video/x-flv", immutable},
	".mp4": {Recording, "video/mp4", immutable},
}

// PlaylistType is how an .m3u8 is stored.
var PlaylistType = Type{Playlist, "application/vnd.apple.mpegurl", noCache}

// KeyType is how an HLS key file is stored.
var KeyType = Type{Key, "application/octet-stream", immutable}

// ForHLS returns the type of a file reported by on_hls, or false when SRS's HLS muxer never writes
// such a file.
func ForHLS(name string) (Type, bool) {
	t, ok := hls[ext(name)]
	return t, ok
}

// ForDVR returns the type of a file reported by on_dvr, or false when SRS's DVR never writes one.
// An fMP4 init segment's name (init.mp4, <stream>-init.mp4) is an init segment whichever hook
// names it: SRS rewrites it in place and serves every segment with it, so it is never purged, not
// even when on_dvr reports it (a dvr_path pointing into the HLS folder, or a forged hook).
func ForDVR(name string) (Type, bool) {
	if IsInit(name) {
		return hls[".mp4"], true
	}
	t, ok := dvr[ext(name)]
	return t, ok
}

// IsInit reports whether name is an fMP4 init segment's name: init.mp4 (SRS's hls_init_file
// default [app]/[stream]/init.mp4) or ending in -init.mp4 ([app]/[stream]-init.mp4), in any case.
// ForHLS takes every .mp4 as an init segment; ForDVR only these names.
func IsInit(name string) bool {
	b := strings.ToLower(path.Base(name))
	return b == "init.mp4" || strings.HasSuffix(b, "-init.mp4")
}

// ForPlaylist reports whether name is an HLS playlist.
func ForPlaylist(name string) (Type, bool) {
	if ext(name) == ".m3u8" {
		return PlaylistType, true
	}
	return Type{}, false
}

// Extensions lists the accepted extensions of one hook, for error messages.
func Extensions(action string) string {
	var m map[string]Type
	switch action {
	case "on_hls":
		m = hls
	case "on_dvr":
		m = dvr
	default:
		return ""
	}
	var out []string
	for _, e := range []string{".ts", ".m4s", ".aac", ".mp3", ".mp4", ".flv"} {
		if _, ok := m[e]; ok {
			out = append(out, e)
		}
	}
	return strings.Join(out, " ")
}

func ext(name string) string { return strings.ToLower(path.Ext(name)) }
