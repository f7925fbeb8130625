package media_test

import (
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/media"
)

const (
	immutable = "public, max-age=31536000, immutable"
	noCache   = "no-cache"
)

func TestForHLS(t *testing.T) {
	tests := []struct {
		name  string
		kind  media.Kind
		ctype string
	}{
		{"live/livestream-0.ts", media.Segment, "video/mp2t"},
		{"/usr/local/srs/objs/nginx/html/live/livestream-12.ts", media.Segment, "video/mp2t"},
		{"livestream-0.TS", media.Segment, "video/mp2t"},
		{"live/livestream-1.m4s", media.Segment, "video/iso.segment"},
		{"live/seg.M4S", media.Segment, "video/iso.segment"},
		{"live/audio-0.aac", media.Segment, "audio/aac"},
		{"live/audio-0.mp3", media.Segment, "audio/mpeg"},
		{"live/init.mp4", media.Init, "video/mp4"},
		{"live/INIT.Mp4", media.Init, "video/mp4"},
		{"live/a.b.ts", media.Segment, "video/mp2t"},
	}
	for _, tc := range tests {
		typ, ok := media.ForHLS(tc.name)
		if !ok {
			t.Errorf("ForHLS(%q) refused", tc.name)
			continue
		}
		if typ.Kind != tc.kind || typ.ContentType != tc.ctype {
			t.Errorf("ForHLS(%q) = %+v, want kind %v, type %s", tc.name, typ, tc.kind, tc.ctype)
		}
		switch tc.kind {
		case media.Segment:
			if typ.CacheControl != immutable {
				t.Errorf("ForHLS(%q): segment cached as %q", tc.name, typ.CacheControl)
			}
		case media.Init:
			if typ.CacheControl == immutable || typ.CacheControl == noCache || !strings.Contains(typ.CacheControl, "max-age=") {
				t.Errorf("ForHLS(%q): init cached as %q, want short-lived", tc.name, typ.CacheControl)
			}
			if typ.CacheControl != "public, max-age=2" {
				t.Errorf("init Cache-Control = %q", typ.CacheControl)
			}
		}
	}
}

func TestForDVR(t *testing.T) {
	tests := []struct {
		name  string
		ctype string
	}{
		{"/data/dvr/live/livestream.1700000000000.flv", "video/x-flv"},
		{"rec.FLV", "video/x-flv"},
		{"/data/dvr/live/livestream.mp4", "video/mp4"},
		{"rec.MP4", "video/mp4"},
	}
	for _, tc := range tests {
		typ, ok := media.ForDVR(tc.name)
		if !ok {
			t.Errorf("ForDVR(%q) refused", tc.name)
			continue
		}
		if typ.Kind != media.Recording || typ.ContentType != tc.ctype || typ.CacheControl != immutable {
			t.Errorf("ForDVR(%q) = %+v, want recording %s, immutable", tc.name, typ, tc.ctype)
		}
	}
}

func TestForPlaylist(t *testing.T) {
	for _, name := range []string{"live/livestream.m3u8", "/abs/x.M3U8", "a.M3u8"} {
		typ, ok := media.ForPlaylist(name)
		if !ok {
			t.Errorf("ForPlaylist(%q) refused", name)
			continue
		}
		if typ != media.PlaylistType {
			t.Errorf("ForPlaylist(%q) = %+v", name, typ)
		}
	}
	if p := media.PlaylistType; p.Kind != media.Playlist || p.ContentType != "application/vnd.apple.mpegurl" || p.CacheControl != noCache {
		t.Errorf("PlaylistType = %+v", p)
	}
}

// The same extension means different things to different hooks: .mp4 from on_hls is an fMP4 init
// segment that SRS may rewrite, from on_dvr a finished recording.
func TestMP4DependsOnHook(t *testing.T) {
	h, _ := media.ForHLS("x.mp4")
	d, _ := media.ForDVR("x.mp4")
	if h.Kind != media.Init || d.Kind != media.Recording || h.CacheControl == d.CacheControl {
		t.Errorf("on_hls .mp4 = %+v, on_dvr .mp4 = %+v", h, d)
	}
}

func TestRejectsNonMedia(t *testing.T) {
	names := []string{
		"", "live", "live/", "notes.txt", "livestream-0.ts.tmp", "livestream.m3u8.tmp", "a.tmp",
		"livestream-0", "live.ts/segment", "x.ts~", "x.ts.", "x.tsx", "x.flv.bak", "x.jpg", "x.json",
	}
	for _, n := range names {
		if typ, ok := media.ForHLS(n); ok {
			t.Errorf("ForHLS(%q) = %+v", n, typ)
		}
		if typ, ok := media.ForDVR(n); ok {
			t.Errorf("ForDVR(%q) = %+v", n, typ)
		}
		if typ, ok := media.ForPlaylist(n); ok {
			t.Errorf("ForPlaylist(%q) = %+v", n, typ)
		}
	}
	// Each hook names only its own files.
	for _, n := range []string{"live/livestream.m3u8", "rec.flv"} {
		if typ, ok := media.ForHLS(n); ok {
			t.Errorf("ForHLS(%q) = %+v", n, typ)
		}
	}
	for _, n := range []string{"live/livestream.m3u8", "x.ts", "x.m4s", "x.aac", "x.mp3"} {
		if typ, ok := media.ForDVR(n); ok {
			t.Errorf("ForDVR(%q) = %+v", n, typ)
		}
	}
	for _, n := range []string{"x.ts", "x.flv", "x.mp4", "x.m3u"} {
		if typ, ok := media.ForPlaylist(n); ok {
			t.Errorf("ForPlaylist(%q) = %+v", n, typ)
		}
	}
}

func TestExtensions(t *testing.T) {
	for _, tc := range []struct{ action, want string }{
		{"on_hls", ".ts .m4s .aac .mp3 .mp4"},
		{"on_dvr", ".mp4 .flv"},
		{"on_publish", ""},
		{"", ""},
	} {
		if got := media.Extensions(tc.action); got != tc.want {
			t.Errorf("Extensions(%q) = %q, want %q", tc.action, got, tc.want)
		}
	}
	// Every listed extension is accepted by its hook.
	for _, e := range strings.Fields(media.Extensions("on_hls")) {
		if _, ok := media.ForHLS("x" + e); !ok {
			t.Errorf("on_hls lists %s but ForHLS refuses it", e)
		}
	}
	for _, e := range strings.Fields(media.Extensions("on_dvr")) {
		if _, ok := media.ForDVR("x" + e); !ok {
			t.Errorf("on_dvr lists %s but ForDVR refuses it", e)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[media.Kind]string{
		media.Segment: "segment", media.Init: "init", media.Playlist: "playlist", media.Recording: "recording",
		0: "unknown", 99: "unknown",
	} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

// An fMP4 init segment's name is an init segment whichever hook names it, so it is never purged;
// other .mp4 files from on_dvr are recordings.
func TestInitWhicheverHook(t *testing.T) {
	for _, n := range []string{"live/cam1/init.mp4", "live/cam1-init.mp4", "INIT.MP4", "/data/live/s/Init.mp4"} {
		if !media.IsInit(n) {
			t.Errorf("IsInit(%q) = false", n)
		}
		if d, ok := media.ForDVR(n); !ok || d.Kind != media.Init {
			t.Errorf("ForDVR(%q) = %+v, %v; want Init", n, d, ok)
		}
	}
	for _, n := range []string{"live/cam1.1795474211735.mp4", "live/init.flv", "live/initial.mp4", "init.mp4/x.flv"} {
		if media.IsInit(n) {
			t.Errorf("IsInit(%q) = true", n)
		}
		if d, ok := media.ForDVR(n); ok && d.Kind == media.Init {
			t.Errorf("ForDVR(%q) = %+v; want a recording", n, d)
		}
	}
}
