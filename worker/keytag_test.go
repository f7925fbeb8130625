package worker

import (
	"os"
	"path/filepath"
	"testing"
)

// findKeyTag finds the EXT-X-KEY in effect for a segment in SRS's m3u8, by the segment's path.
func TestFindKeyTag(t *testing.T) {
	dir := t.TempDir()
	m3u8 := `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-TARGETDURATION:2
#EXT-X-KEY:METHOD=AES-128,URI="livestream-10.key",IV=0x0000000000000000000000000000000a
#EXTINF:2.000,
livestream/10.ts
#EXTINF:2.000,
livestream/11.ts
#EXT-X-KEY:METHOD=AES-128,URI="livestream-12.key",IV=0x0000000000000000000000000000000c
#EXTINF:2.000,
livestream/12.ts
#EXT-X-KEY:METHOD=NONE
#EXTINF:2.000,
livestream/13.ts
`
	seg := func(n string) string { return filepath.Join(dir, "livestream", n) }
	for _, tc := range []struct {
		seg, uri         string
		found, encrypted bool
	}{
		{seg("11.ts"), "livestream-10.key", true, true},
		{seg("12.ts"), "livestream-12.key", true, true},
		{seg("13.ts"), "", true, true},
		{seg("9.ts"), "", false, true}, // slid out of SRS's window
		{filepath.Join(dir, "other", "11.ts"), "", false, true},
	} {
		tag, uri, found, enc := findKeyTag(m3u8, dir, tc.seg)
		if uri != tc.uri || found != tc.found || enc != tc.encrypted || (tc.uri != "" && tag == "") {
			t.Errorf("%s: tag %q uri %q found %v encrypted %v", tc.seg, tag, uri, found, enc)
		}
	}
	plain := "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nlivestream/1.ts\n"
	if tag, _, found, enc := findKeyTag(plain, dir, seg("1.ts")); tag != "" || !found || enc {
		t.Errorf("plain stream: %q %v %v", tag, found, enc)
	}
	// A segment reached through a symlinked folder is still found by its real path.
	real := filepath.Join(dir, "real")
	os.MkdirAll(real, 0o755)
	os.WriteFile(filepath.Join(real, "11.ts"), []byte("x"), 0o644)
	os.Symlink(real, filepath.Join(dir, "link"))
	m := "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"k.key\"\n#EXTINF:2.0,\nlink/11.ts\n"
	if _, uri, found, _ := findKeyTag(m, dir, filepath.Join(real, "11.ts")); !found || uri != "k.key" {
		t.Errorf("through a symlink: %q %v", uri, found)
	}
}
