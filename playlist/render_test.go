package playlist

import (
	"strings"
	"testing"
)

// One outlier duration does not pin EXT-X-TARGETDURATION: the target comes from the window, not
// from the ledger's never-shrinking maximum. Entries without a positive duration are left out, and
// a discontinuity before one moves to the next segment.
func TestRenderTargetFromWindow(t *testing.T) {
	s := live{
		Target:   1_000_000_000, // what one "duration": 1e9 left in the ledger
		Playlist: "live/cam.m3u8",
		Entries: []entry{
			{Index: 7, Duration: -5, Key: "live/cam-7.ts", Disc: 1},
			{Index: 8, Duration: 2.02, Key: "live/cam-8.ts"},
			{Index: 9, Duration: 0, Key: "live/cam-9.ts"},
			{Index: 10, Duration: 1.5, Key: "live/cam-10.ts"},
		},
	}
	got := string(s.render())
	want := "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:8\n" +
		"#EXT-X-DISCONTINUITY\n#EXTINF:2.020,\ncam-8.ts\n#EXTINF:1.500,\ncam-10.ts\n"
	if got != want {
		t.Errorf("render:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(got, "-5") || strings.Contains(got, "1000000000") {
		t.Errorf("render kept an outlier:\n%s", got)
	}
	// VoD: the same rule for its EXTINFs.
	var b strings.Builder
	writeSegments(&b, "live/vod/x.m3u8", s.Entries)
	if strings.Contains(b.String(), "EXTINF:-") || strings.Contains(b.String(), "EXTINF:0.000") {
		t.Errorf("VoD segments:\n%s", b.String())
	}
}
