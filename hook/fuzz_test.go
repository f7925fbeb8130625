package hook_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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

// outsideState is what must never change outside the root: names, sizes, mtimes and link counts
// (a hard link into the spool raises the count).
func outsideState(tb testing.TB, dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			tb.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		b.WriteString(p + " " + fi.Mode().String() + " " + fi.ModTime().String() + " " + string(rune('0'+st.Nlink)) + "\n")
		return nil
	})
	return b.String()
}

// FuzzIntake feeds hook bodies (SRS's captures as seeds) through the decoder and Intake, against
// a real root, a real spool and files outside the root. In the body, CWD, ROOT and OUT stand for
// SRS's working folder, the root below it, and a folder outside. Invariant: nothing outside the
// root is enqueued, spooled or removed, and the decoder agrees with encoding/json on UTF-8 input.
func FuzzIntake(f *testing.F) {
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
		}
	}
	f.Add([]byte(`{"action":"on_hls","cwd":"CWD","file":"ROOT/live/link.ts","url":"live/link.ts","duration":2,"m3u8":"OUT/x.m3u8"}`))
	f.Add([]byte(`{"action":"on_dvr","cwd":"CWD","file":"ROOT/live/outdir/secret.flv"}`))
	f.Add([]byte(`{"action":"on_hls","cwd":"ROOT","file":"../../../out/secret.ts","url":"live/a\xff.ts","duration":1}`))

	tmp := f.TempDir()
	cwd := filepath.Join(tmp, "srs")
	root := filepath.Join(cwd, "objs", "nginx", "html")
	out := filepath.Join(tmp, "out")
	for p, content := range map[string]string{
		"live/livestream-0.ts": "ts", "live/livestream-12.ts": "ts", "live/livestream.m3u8": "#EXTM3U\n",
		"live/livestream/init.mp4": "mp4", "live/cam1.flv": "flv", "live/cam1/2026/11/23/22/1795474211734-0.ts": "ts",
		"live/cam1.m3u8": "#EXTM3U\n", "live/a\xff.ts": "raw",
	} {
		writeFile(f, filepath.Join(root, p), content)
	}
	for _, p := range []string{"secret.ts", "secret.flv", "x.m3u8", "init.mp4"} {
		writeFile(f, filepath.Join(out, p), "secret")
	}
	os.Symlink(filepath.Join(out, "secret.ts"), filepath.Join(root, "live", "link.ts"))
	os.Symlink(out, filepath.Join(root, "live", "outdir"))
	rs, err := roots.New([]string{root})
	if err != nil {
		f.Fatal(err)
	}
	sp, err := spool.New(rs, ".srs-offload")
	if err != nil {
		f.Fatal(err)
	}
	q := &memQueue{}
	in := &hook.Intake{Roots: rs, Keys: testKeys(f), Queue: q, Spool: sp}
	before := outsideState(f, out)
	rootReal, _ := filepath.EvalSymlinks(root)
	rep := strings.NewReplacer("CWD", cwd, "ROOT", root, "OUT", out)

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
			for _, path := range []string{p.Path, p.Playlist} {
				if path != "" && !strings.HasPrefix(path, rootReal+"/") {
					t.Fatalf("enqueued %q outside the root %s", path, rootReal)
				}
			}
		}
		if now := outsideState(t, out); now != before {
			t.Fatalf("outside the root changed:\n%s\nwas:\n%s", now, before)
		}
	})
}

func isUTF8(b []byte) bool { return strings.ToValidUTF8(string(b), "") == string(b) }
