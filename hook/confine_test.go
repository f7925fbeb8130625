package hook_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/srs-offload/srs-offload/spool"
)

// Finding 1 of the security review (issue 11), through the hook: the spool folder of the root is
// a symlink to a folder outside it (the worker used to remove the empty spool folder, freeing the
// name). An on_hls must create nothing there; the hook is still answered (the file is intact and
// its task is recorded; only the spool's protection is missing), and the root keeps its file.
func TestHookSpoolFolderSymlinkedOut(t *testing.T) {
	tmp := realPath(t, t.TempDir())
	outside := realPath(t, t.TempDir())
	seg := filepath.Join(tmp, "live", "livestream-1.ts")
	writeRandom(t, seg, 1880)
	if err := os.Symlink(outside, filepath.Join(tmp, ".srs-offload")); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envConfig{roots: []string{tmp}})
	sp, err := spool.New(e.roots, ".srs-offload")
	if err != nil {
		t.Fatal(err)
	}
	e.intake.Spool = sp
	before := snapshot(t, outside)
	body := marshal(t, map[string]any{
		"action": "on_hls", "client_id": "x", "vhost": "__defaultVhost__", "app": "live", "stream": "livestream",
		"cwd": tmp, "file": "./live/livestream-1.ts", "url": "live/livestream-1.ts", "seq_no": 1, "duration": 2.0,
	})
	assertOK(t, "on_hls with the spool folder symlinked out", e.post(body))
	assertSameTree(t, "outside the root", before, snapshot(t, outside))
	e.assertTaskCount("on_hls", 1, 0)
	if fi, err := os.Lstat(seg); err != nil || fi.Size() != 1880 {
		t.Fatalf("the segment: %v", err)
	}
}
