package playlist

import (
	"testing"

	"github.com/srs-offload/srs-offload/m3u8"
)

// The renderer and the one reader agree: a URI written for an object key resolves back to it, and
// the live playlist parses into the segments it was rendered from.
func FuzzRenderedURIResolves(f *testing.F) {
	for _, c := range [][2]string{
		{"live/cam.m3u8", "live/cam-1.ts"},
		{"live/cam/index.m3u8", "live/cam/2026/11/23/a b%c?#.ts"},
		{"a/b/c/x.m3u8", "a/d/e.ts"},
		{"x.m3u8", "deep/down/ü.ts"},
		{"live/cam.m3u8", "other/..x/seg.ts"},
		{"live/cam.m3u8", "live/cam:1.ts"}, // not the scheme "cam:"
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, from, to string) {
		if !validKey(from) || !validKey(to) {
			return
		}
		uri := relURI(from, to)
		got, err := m3u8.ResolveKey(from, uri)
		if err != nil || got != to {
			t.Fatalf("relURI(%q, %q) = %q resolves to %q, %v", from, to, uri, got, err)
		}
	})
}

// validKey: a clean object key, as the templates make them (no empty, "." or ".." segment).
func validKey(k string) bool {
	if k == "" {
		return false
	}
	start := 0
	for i := 0; i <= len(k); i++ {
		if i == len(k) || k[i] == '/' {
			s := k[start:i]
			if s == "" || s == "." || s == ".." {
				return false
			}
			start = i + 1
		}
	}
	return true
}

func TestRenderedLiveParses(t *testing.T) {
	s := live{Playlist: "live/cam/index.m3u8", Entries: []entry{
		{Index: 4, Duration: 2, Key: "live/cam/cam-4.ts"},
		{Index: 5, Duration: 1.5, Key: "live/cam/x y.ts", Disc: 1},
	}}
	p, err := m3u8.Parse(s.render())
	if err != nil {
		t.Fatalf("%v\n%s", err, s.render())
	}
	if len(p.Segments) != 2 || !p.Segments[1].Disc || p.Segments[1].Duration != 1.5 {
		t.Fatalf("parsed %+v\n%s", p, s.render())
	}
	for i, want := range []string{"live/cam/cam-4.ts", "live/cam/x y.ts"} {
		if got, err := m3u8.ResolveKey(s.Playlist, p.Segments[i].URI); err != nil || got != want {
			t.Errorf("segment %d: %q resolves to %q, %v; want %q", i, p.Segments[i].URI, got, err, want)
		}
	}
}
