package m3u8_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/srs-offload/srs-offload/m3u8"
)

// srsTS is SRS's own MPEG-TS playlist, as SRS 6 writes it with hls_keys on.
const srsTS = `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-TARGETDURATION:10
#EXT-X-DISCONTINUITY
#EXTINF:10.000, no desc
live/cam-10.ts
#EXT-X-KEY:METHOD=AES-128,URI="cam-11.key",IV=0x0000000000000000000000000000000b
#EXTINF:9.983, no desc
live/cam-11.ts
#EXT-X-KEY:METHOD=NONE
#EXTINF:4.5, no desc
http://cdn.example/live/live/cam-12.ts
`

// srsFMP4 is SRS 7's fMP4 playlist.
const srsFMP4 = "#EXTM3U\r\n#EXT-X-VERSION:7\r\n#EXT-X-TARGETDURATION:4\r\n#EXT-X-MEDIA-SEQUENCE:0\r\n" +
	"#EXT-X-MAP:URI=\"init.mp4\"\r\n#EXTINF:4.000,\r\n0.m4s\r\n#EXTINF:3.5,\r\n1.m4s\r\n#EXT-X-ENDLIST\r\n"

func TestParseSRS(t *testing.T) {
	p, err := m3u8.Parse([]byte(srsTS))
	if err != nil {
		t.Fatal(err)
	}
	key := `#EXT-X-KEY:METHOD=AES-128,URI="cam-11.key",IV=0x0000000000000000000000000000000b`
	want := &m3u8.Playlist{Version: 3, Target: 10, HasTarget: true, MSN: 10, Encrypted: true, Segments: []m3u8.Segment{
		{URI: "live/cam-10.ts", Seq: 10, Duration: 10, Disc: true},
		{URI: "live/cam-11.ts", Seq: 11, Duration: 9.983, Key: key},
		{URI: "http://cdn.example/live/live/cam-12.ts", Seq: 12, Duration: 4.5},
	}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", p, want)
	}
	if got := m3u8.Attr(key, "URI"); got != "cam-11.key" {
		t.Errorf("Attr URI = %q", got)
	}

	f, err := m3u8.Parse([]byte(srsFMP4))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Segments) != 2 || f.Segments[1].Map != "init.mp4" || f.Segments[1].Duration != 3.5 || !f.Ended || f.Version != 7 {
		t.Errorf("fMP4 playlist: %+v", f)
	}
}

func TestFind(t *testing.T) {
	p, _ := m3u8.Parse([]byte(srsTS))
	for _, c := range []struct {
		m3u8Rel, rel string
		want         int64 // -1: not found
	}{
		{"live/cam.m3u8", "live/live/cam-10.ts", 10},
		{"live/cam.m3u8", "live/live/cam-11.ts", 11},
		{"live/cam.m3u8", "live/live/cam-12.ts", 12}, // hls_entry_prefix: by the end of its path
		{"live/cam.m3u8", "live/cam-12.ts", 12},
		{"live/cam.m3u8", "live/cam-10.ts", -1},
		{"other/cam.m3u8", "live/live/cam-10.ts", -1},
	} {
		s, ok := p.Find(c.m3u8Rel, c.rel)
		if (c.want < 0) == ok || (ok && s.Seq != c.want) {
			t.Errorf("Find(%s, %s) = %+v, %v; want seq %d", c.m3u8Rel, c.rel, s, ok, c.want)
		}
	}
	// SRS writes file names as they are: a colon is not a scheme, a % not an escape (but a
	// percent-decoded match is accepted too).
	q, _ := m3u8.Parse([]byte("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\ncam:1.ts\n#EXTINF:2,\na%20b.ts\n"))
	for _, rel := range []string{"live/cam:1.ts", "live/a%20b.ts", "live/a b.ts"} {
		if _, ok := q.Find("live/cam.m3u8", rel); !ok {
			t.Errorf("Find(%s) in a playlist naming it: not found", rel)
		}
	}
	if got := m3u8.ResolveURI("live/cam.m3u8", "cam:1.ts"); got != "live/cam:1.ts" {
		t.Errorf("ResolveURI(cam:1.ts) = %q", got)
	}
	if got := m3u8.ResolveURI("live/cam.m3u8", "../x/y.ts"); got != "x/y.ts" {
		t.Errorf("ResolveURI = %q", got)
	}
	if got, err := m3u8.ResolveKey("live/cam/index.m3u8", "seg%201.ts"); err != nil || got != "live/cam/seg 1.ts" {
		t.Errorf("ResolveKey = %q, %v", got, err)
	}
	for _, uri := range []string{"../../x.ts", "http://cdn/x.ts", "//cdn/x.ts"} {
		if got, err := m3u8.ResolveKey("live/index.m3u8", uri); err == nil {
			t.Errorf("ResolveKey(%q) = %q, want an error", uri, got)
		}
	}
}

// Parse returns what it read and the first problem of an invalid playlist.
func TestParseMalformed(t *testing.T) {
	for _, c := range []struct{ name, body string }{
		{"empty", ""},
		{"no header", "#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n"},
		{"no target", "#EXTM3U\n#EXTINF:2,\na.ts\n"},
		{"bad target", "#EXTM3U\n#EXT-X-TARGETDURATION:x\n#EXTINF:2,\na.ts\n"},
		{"bad extinf", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:-2,\na.ts\n"},
		{"uri without extinf", "#EXTM3U\n#EXT-X-TARGETDURATION:2\na.ts\n"},
		{"map without uri", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:BYTERANGE=\"1@0\"\n#EXTINF:2,\na.m4s\n"},
	} {
		p, err := m3u8.Parse([]byte(c.body))
		if !errors.Is(err, m3u8.ErrMalformed) || p == nil {
			t.Errorf("%s: Parse = %v, %v; want ErrMalformed and a playlist", c.name, p, err)
		}
	}
	p, _ := m3u8.Parse([]byte("#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n"))
	if len(p.Segments) != 1 || p.Segments[0].URI != "a.ts" {
		t.Errorf("a playlist without #EXTM3U still lists its segments: %+v", p)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		srsTS, srsFMP4, "",
		"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-DISCONTINUITY-SEQUENCE:3\n#EXTINF:2,\na.ts\n#EXT-X-ENDLIST\n",
		"#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXT-X-KEY:METHOD=NONE\n#EXTINF:+Inf,\na.ts\n#EXT-X-MAP:URI=\"\"\n",
		"#EXTM3U\n#EXTINF:1,\na.ts\n#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:1,\nb.ts\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, _ := m3u8.Parse(body)
		if p == nil {
			t.Fatal("Parse returned no playlist")
		}
		for i, s := range p.Segments {
			if s.URI == "" || s.URI[0] == '#' || !(s.Duration >= 0) || s.Seq != p.MSN+int64(i) {
				t.Fatalf("segment %d: %+v (MSN %d)", i, s, p.MSN)
			}
			if s.Key != "" && !p.Encrypted {
				t.Fatalf("segment %d has key %q in a playlist not encrypted", i, s.Key)
			}
			p.Find("live/cam.m3u8", m3u8.ResolveURI("live/cam.m3u8", s.URI))
			m3u8.ResolveKey("live/cam.m3u8", s.URI)
		}
		out := p.Bytes()
		q, _ := m3u8.Parse(out)
		if !reflect.DeepEqual(p, q) && !(len(p.Segments) == 0 && len(q.Segments) == 0 && sameHeader(p, q)) {
			t.Fatalf("Parse(Bytes(p)) differs:\n%+v\n%+v\nBytes:\n%s", p, q, out)
		}
		if again := q.Bytes(); string(again) != string(out) {
			t.Fatalf("Bytes not stable:\n%s\n%s", out, again)
		}
	})
}

// sameHeader compares two playlists without segments (nil and empty Segments are the same).
func sameHeader(a, b *m3u8.Playlist) bool {
	a2, b2 := *a, *b
	a2.Segments, b2.Segments = nil, nil
	return reflect.DeepEqual(a2, b2)
}
