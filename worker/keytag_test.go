package worker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/storage"
)

// keyTagRoot is a root for findKeyTag, and its real path.
func keyTagRoot(t *testing.T) (*roots.Set, string) {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := roots.New([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	return rs, dir
}

// findKeyTag finds the EXT-X-KEY in effect for a segment in SRS's m3u8, by the segment's path.
func TestFindKeyTag(t *testing.T) {
	rs, dir := keyTagRoot(t)
	list := `#EXTM3U
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
	m3u8Path := filepath.Join(dir, "livestream.m3u8")
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
		tag, uri, found, enc := findKeyTag(rs, []byte(list), m3u8Path, tc.seg)
		if uri != tc.uri || found != tc.found || enc != tc.encrypted || (tc.uri != "" && tag == "") {
			t.Errorf("%s: tag %q uri %q found %v encrypted %v", tc.seg, tag, uri, found, enc)
		}
	}
	plain := "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nlivestream/1.ts\n"
	if tag, _, found, enc := findKeyTag(rs, []byte(plain), m3u8Path, seg("1.ts")); tag != "" || !found || enc {
		t.Errorf("plain stream: %q %v %v", tag, found, enc)
	}
	// A colon in SRS's file name is not a URI scheme.
	colon := "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"c.key\"\n#EXTINF:2.0,\ncam:1.ts\n"
	if _, uri, found, _ := findKeyTag(rs, []byte(colon), seg("cam.m3u8"), seg("cam:1.ts")); !found || uri != "c.key" {
		t.Errorf("a name with a colon: %q %v", uri, found)
	}
	// A segment reached through a symlinked folder inside the root is still found by its real path.
	real := filepath.Join(dir, "real")
	os.MkdirAll(real, 0o755)
	os.WriteFile(filepath.Join(real, "11.ts"), []byte("x"), 0o644)
	os.Symlink(real, filepath.Join(dir, "link"))
	m := "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"k.key\"\n#EXTINF:2.0,\nlink/11.ts\n"
	if _, uri, found, _ := findKeyTag(rs, []byte(m), m3u8Path, filepath.Join(real, "11.ts")); !found || uri != "k.key" {
		t.Errorf("through a symlink: %q %v", uri, found)
	}
}

// A URI that reaches the segment only through a symlink leading out of the root (and another
// one leading back in) does not name it: nothing outside the root is looked at, so the segment's
// key is unknown.
func TestFindKeyTagNeverLeavesTheRoot(t *testing.T) {
	rs, dir := keyTagRoot(t)
	outside := t.TempDir()
	segment := filepath.Join(dir, "live", "11.ts")
	if err := os.MkdirAll(filepath.Dir(segment), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segment, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// live/out → outside; outside/11.ts → the segment.
	if err := os.Symlink(outside, filepath.Join(dir, "live", "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(segment, filepath.Join(outside, "11.ts")); err != nil {
		t.Fatal(err)
	}
	m := "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=AES-128,URI=\"k.key\"\n#EXTINF:2.0,\nout/11.ts\n"
	tag, uri, found, enc := findKeyTag(rs, []byte(m), filepath.Join(dir, "live", "cam.m3u8"), segment)
	if found || tag != "" || uri != "" || !enc {
		t.Errorf("found the segment through a symlink out of the root: tag %q uri %q found %v encrypted %v", tag, uri, found, enc)
	}
}

// keyStore records what keyTag stores.
type keyStore struct{ keys []string }

func (s *keyStore) PutNew(_ context.Context, key string, _ storage.Source, _ int64, _ media.Type, _ string) (string, storage.Object, error) {
	s.keys = append(s.keys, key)
	return key, storage.Object{Key: key}, nil
}

func (s *keyStore) Find(context.Context, string, string) (string, bool, error) { return "", false, nil }

// The key file and SRS's playlist are read beneath the root: a key file or a playlist that is a
// symlink out of the root is neither read nor stored.
func TestKeyTagReadsBeneathRoot(t *testing.T) {
	rs, dir := keyTagRoot(t)
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.key")
	if err := os.WriteFile(secret, []byte("0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live")
	segment := filepath.Join(live, "cam-11.ts")
	os.MkdirAll(live, 0o755)
	os.WriteFile(segment, []byte("x"), 0o644)
	list := "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=AES-128,URI=\"%s\"\n#EXTINF:2.0,\ncam-11.ts\n"
	p := queue.Offload{Kind: queue.KindHLS, Path: segment, Playlist: filepath.Join(live, "cam.m3u8"), PlaylistKey: "live/cam.m3u8"}

	// A key file inside the root is stored, and the tag then names its object.
	os.WriteFile(filepath.Join(live, "cam-11.key"), []byte("0123456789abcdef"), 0o644)
	os.WriteFile(p.Playlist, []byte(fmt.Sprintf(list, "cam-11.key")), 0o644)
	store := &keyStore{}
	o := &Offloader{Roots: rs, Store: store}
	if tag, err := o.keyTag(context.Background(), p); err != nil || len(store.keys) != 1 || !strings.Contains(tag, "cam-11.key") {
		t.Fatalf("key inside the root: tag %q, err %v, stored %q", tag, err, store.keys)
	}

	// The key file is a symlink to a file outside the root.
	os.Symlink(secret, filepath.Join(live, "evil.key"))
	os.WriteFile(p.Playlist, []byte(fmt.Sprintf(list, "evil.key")), 0o644)
	store.keys = nil
	if tag, err := o.keyTag(context.Background(), p); err == nil || len(store.keys) != 0 {
		t.Errorf("key file symlinked out of the root: tag %q, err %v, stored %q", tag, err, store.keys)
	}
	// Its folder is a symlink out of the root.
	os.Symlink(outside, filepath.Join(live, "keys"))
	os.WriteFile(p.Playlist, []byte(fmt.Sprintf(list, "keys/secret.key")), 0o644)
	if tag, err := o.keyTag(context.Background(), p); err == nil || len(store.keys) != 0 {
		t.Errorf("key folder symlinked out of the root: tag %q, err %v, stored %q", tag, err, store.keys)
	}
	// SRS's playlist itself is a symlink out of the root.
	evil := filepath.Join(outside, "cam.m3u8")
	os.WriteFile(evil, []byte(fmt.Sprintf(list, "cam-11.key")), 0o644)
	os.Remove(p.Playlist)
	os.Symlink(evil, p.Playlist)
	if tag, err := o.keyTag(context.Background(), p); err == nil || len(store.keys) != 0 {
		t.Errorf("playlist symlinked out of the root: tag %q, err %v, stored %q", tag, err, store.keys)
	}
}
