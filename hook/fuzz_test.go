package hook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/srs-offload/srs-offload/hook"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/spool"
)

// memQueue is an Enqueuer in memory.
type memQueue struct {
	mu    sync.Mutex
	tasks []queue.Offload
}

func (q *memQueue) Enqueue(_ context.Context, p queue.Offload) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.tasks = append(q.tasks, p)
	return false, nil
}

func (q *memQueue) EnqueueEnd(context.Context, queue.End) error { return nil }

// treeState lists what must not change in a tree: each entry's name, mode, mtime and link count
// (a hard link into the spool raises the count), skipping the folders in skip.
func treeState(tb testing.TB, dir string, skip ...string) string {
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if slices.Contains(skip, p) {
			return filepath.SkipDir
		}
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(&b, "%q %s %s %d\n", p, fi.Mode(), fi.ModTime(), st.Nlink)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b.String()
}

// rootState lists a root's names outside its spool with their inodes, and checks that its spool
// holds only regular files that are hard links of those files: nothing else is ever spooled.
func rootState(tb testing.TB, root, spoolDir string) string {
	var b strings.Builder
	inodes := map[uint64]bool{}
	var spooled []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if rel, _ := filepath.Rel(root, p); rel == spoolDir || strings.HasPrefix(rel, spoolDir+"/") {
			if rel == spoolDir && !fi.IsDir() {
				fmt.Fprintf(&b, "%q %s\n", p, fi.Mode().Type()) // the spool folder swapped for a symlink stays so
				return nil
			}
			if fi.Mode().IsRegular() {
				spooled = append(spooled, p)
				inodes[st.Ino] = inodes[st.Ino] // seen in the spool; must be a root file's
			} else if !fi.IsDir() {
				tb.Fatalf("spool holds %s, a %s", p, fi.Mode())
			}
			return nil
		}
		if fi.Mode().IsRegular() {
			inodes[st.Ino] = true
		}
		fmt.Fprintf(&b, "%q %s %d\n", p, fi.Mode().Type(), st.Ino)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	for ino, inRoot := range inodes {
		if !inRoot {
			tb.Fatalf("the spool holds inode %d, no file of the root %s (spool: %q)", ino, root, spooled)
		}
	}
	return b.String()
}

// FuzzIntake feeds hook bodies (SRS's captures as seeds) through the decoder and Intake, against
// real roots, a real spool and files outside the roots. In the body, CWD, ROOT and OUT stand for
// SRS's working folder, the root below it, and a folder outside; TRAP is a second root whose spool
// folder is a symlink to a folder outside (the spool-symlink attack). Invariants: nothing outside
// the roots is enqueued, spooled, created, changed or removed; inside a root nothing but the spool
// changes, and the spool holds only hard links of the root's own files; an enqueued file is the
// real path (no symlink, no "..") of a regular file inside a root, with the identity the task
// carries, and its playlist lies inside a root; the decoder agrees with encoding/json on UTF-8.
func FuzzIntake(f *testing.F) {
	var seeds []string // SRS's captured hooks: their files are made below
	for _, name := range []string{"srs-7.0.18-abs-paths.jsonl", "srs-7.0.18-rel-paths.jsonl"} {
		raw, err := os.ReadFile(filepath.Join("..", "testdata", "srs", name))
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			var l struct {
				Body json.RawMessage `json:"body"`
			}
			if json.Unmarshal([]byte(line), &l) != nil || len(l.Body) == 0 {
				continue
			}
			s := strings.NewReplacer("/data/srs/hls", "ROOT", "/data/srs/dvr", "ROOT", "./objs/nginx/html", "ROOT",
				"/usr/local/srs", "CWD").Replace(string(l.Body))
			f.Add([]byte(s))
			seeds = append(seeds, s)
		}
	}
	const hls = `"action":"on_hls","app":"live","stream":"s","duration":2,"url":"live/s-1.ts","m3u8_url":"live/s.m3u8"`
	for _, b := range []string{
		`{` + hls + `,"cwd":"CWD","file":"ROOT/live/link.ts","m3u8":"OUT/x.m3u8"}`,
		`{` + hls + `,"cwd":"CWD","file":"ROOT/live/livestream-0.ts","m3u8":"ROOT/live/outdir/x.m3u8"}`,
		`{` + hls + `,"cwd":"CWD","file":"ROOT/live/alias/livestream-0.ts","m3u8":"ROOT/live/alias/livestream.m3u8"}`,
		`{` + hls + `,"cwd":"ROOT","file":"../../../out/secret.ts"}`,
		`{` + hls + `,"cwd":"ROOT","file":"live/a` + "\xff" + `.ts","url":"live/a` + "\xff" + `.ts"}`,
		`{` + hls + `,"cwd":"CWD","file":"TRAP/live/t-1.ts","m3u8":"TRAP/live/t.m3u8"}`,
		`{` + hls + `,"cwd":"CWD","file":"ROOT/.srs-offload/live/1-livestream-0.ts"}`,
		`{"action":"on_dvr","app":"live","stream":"s","cwd":"CWD","file":"ROOT/live/outdir/secret.flv"}`,
		`{"action":"on_dvr","app":"live","stream":"s","cwd":"TRAP","file":"live/t.flv"}`,
		`{"action":"on_dvr","app":"live","stream":"s","cwd":"CWD","file":"ROOT/live/livestream/init.mp4"}`,
		`{"action":"on_dvr","app":"live","stream":"s","cwd":"CWD","file":"ROOT/live/cam1.flv"}`,
	} {
		f.Add([]byte(b))
	}

	tmp := f.TempDir()
	cwd := filepath.Join(tmp, "srs")
	root := filepath.Join(cwd, "objs", "nginx", "html")
	trap := filepath.Join(tmp, "trap")
	out := filepath.Join(tmp, "out")
	for p, content := range map[string]string{
		"live/livestream-0.ts": "ts", "live/livestream-12.ts": "ts", "live/livestream.m3u8": "#EXTM3U\n",
		"live/livestream/init.mp4": "mp4", "live/cam1.flv": "flv", "live/cam1/2026/11/23/22/1795474211734-0.ts": "ts",
		"live/cam1.m3u8": "#EXTM3U\n", "live/a\xff.ts": "raw",
	} {
		writeFile(f, filepath.Join(root, p), content)
	}
	rep := strings.NewReplacer("CWD", cwd, "ROOT", root, "OUT", out, "TRAP", trap)
	for _, s := range seeds {
		var r struct{ Cwd, File string }
		if json.Unmarshal([]byte(rep.Replace(s)), &r) == nil && r.File != "" {
			if !filepath.IsAbs(r.File) {
				r.File = filepath.Join(r.Cwd, r.File)
			}
			writeFile(f, r.File, "captured")
		}
	}
	for _, p := range []string{"live/t-1.ts", "live/t.flv", "live/t.m3u8"} {
		writeFile(f, filepath.Join(trap, p), "trap")
	}
	for _, p := range []string{"secret.ts", "secret.flv", "x.m3u8", "init.mp4", "spooltrap/keep"} {
		writeFile(f, filepath.Join(out, p), "secret")
	}
	for target, link := range map[string]string{
		filepath.Join(out, "secret.ts"): filepath.Join(root, "live", "link.ts"),
		out:                             filepath.Join(root, "live", "outdir"),
		filepath.Join(root, "live"):     filepath.Join(root, "live", "alias"),
		filepath.Join(out, "spooltrap"): filepath.Join(trap, ".srs-offload"),
	} {
		if err := os.Symlink(target, link); err != nil {
			f.Fatal(err)
		}
	}
	rs, err := roots.New([]string{root, trap})
	if err != nil {
		f.Fatal(err)
	}
	sp, err := spool.New(rs, ".srs-offload")
	if err != nil {
		f.Fatal(err)
	}
	q := &memQueue{}
	in := &hook.Intake{Roots: rs, Keys: testKeys(f), Queue: q, Spool: sp}
	dirs := rs.Dirs()
	before := treeState(f, tmp, dirs...)
	var insideBefore []string
	for _, d := range dirs {
		insideBefore = append(insideBefore, rootState(f, d, ".srs-offload"))
	}
	inRoot := func(p string) bool {
		for _, d := range dirs {
			if strings.HasPrefix(p, d+"/") {
				return true
			}
		}
		return false
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		body = []byte(rep.Replace(string(body)))
		var r hook.Request
		if err := json.Unmarshal(body, &r); err != nil {
			return
		}
		var std struct{ Cwd, File, URL, M3U8 string }
		if json.Valid(body) && json.Unmarshal(body, &std) == nil && isUTF8(body) {
			if std.Cwd != r.Cwd || std.File != r.File || std.URL != r.URL || std.M3U8 != r.M3U8 {
				t.Fatalf("decoder differs from encoding/json: %+v vs %+v", r, std)
			}
		}
		q.mu.Lock()
		q.tasks = q.tasks[:0]
		q.mu.Unlock()
		in.Accept(context.Background(), r)
		for _, p := range q.tasks {
			if filepath.Clean(p.Path) != p.Path || !inRoot(p.Path) {
				t.Fatalf("enqueued %q: not a clean path inside the roots %s", p.Path, dirs)
			}
			if real, err := filepath.EvalSymlinks(p.Path); err != nil || real != p.Path {
				t.Fatalf("enqueued %q is not a real path (%q, %v)", p.Path, real, err)
			}
			fi, err := os.Lstat(p.Path)
			if err != nil || !fi.Mode().IsRegular() || fi.Sys().(*syscall.Stat_t).Ino != p.File.Ino {
				t.Fatalf("enqueued %q (%+v): not that regular file (%v)", p.Path, p.File, err)
			}
			if p.Playlist != "" && (filepath.Clean(p.Playlist) != p.Playlist || !inRoot(p.Playlist)) {
				t.Fatalf("enqueued playlist %q: not a clean path inside the roots %s", p.Playlist, dirs)
			}
		}
		if now := treeState(t, tmp, dirs...); now != before {
			t.Fatalf("outside the roots changed:\n%s\nwas:\n%s", now, before)
		}
		for i, d := range dirs {
			if now := rootState(t, d, ".srs-offload"); now != insideBefore[i] {
				t.Fatalf("inside the root %s, outside its spool, changed:\n%s\nwas:\n%s", d, now, insideBefore[i])
			}
		}
	})
}

func isUTF8(b []byte) bool { return strings.ToValidUTF8(string(b), "") == string(b) }
