package reconcile_test

import (
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/reconcile"
	"github.com/srs-offload/srs-offload/roots"
)

// localSlash reports whether p is a relative slash path that stays below where it starts.
func localSlash(p string) bool {
	return p != "" && path.Clean(p) == p && !path.IsAbs(p) && p != ".." && !strings.HasPrefix(p, "../")
}

// FuzzLayout compiles SRS path templates (reconcile.hls_ts_file, dvr_path, hls_m3u8_file) and
// matches paths against them, then places a found segment (a real MPEG-TS file under a real root)
// in its stream's playlist. Invariants: nothing panics (the first fuzzer found "0\xff" panicking
// regexp.MustCompile); CheckTemplate and NewLayout agree; whatever path it is given, the layout
// only gives variables for a path inside the root, with app/stream/vhost one segment (or empty) and a
// basename that is the path's; and a placed segment's playlist is a file inside the root.
func FuzzLayout(f *testing.F) {
	f.Add("[app]/[stream]-[seq].ts", "[app]/[stream].[timestamp].flv", "[app]/[stream].m3u8", "live/cam-1.ts")
	f.Add("[app]/[stream]/[2006][01][02]/[timestamp]-[seq].ts", "[app]/[stream]/[2006][01][02]/[timestamp].flv", "[app]/[stream].m3u8", "live/cam1/20261123/1763935200123-42.ts")
	f.Add("[app]/[stream]/[2006]/[01]/[02]/[15]/[timestamp]-[seq].ts", "[vhost]/[app]/[stream].flv", "[vhost]/[app]/[stream].m3u8", "live/cam1/2026/11/23/22/1-2.ts")
	f.Add("[app]/[stream]/init.mp4", "[app]/[stream]-[999].mp4", "[app]/[stream]/index.m3u8", "live/cam1/init.mp4")
	f.Add("0\xff", "[app]/\xc3[stream].ts", "\xff.m3u8", "0\xff.ts") // the first fuzzer's crasher
	f.Add("[app]/[stream]-[seq].ts", "[app].flv", "[app]/[stream].m3u8", "../x-1.ts")
	f.Add("[app]/[stream]-[seq].ts", "[app].flv", "[app]/[stream].m3u8", "live/../../x-1.ts")
	f.Add("[app]/[stream]-[seq].ts", "[app].flv", "../[stream].m3u8", "live/cam-1.ts")
	f.Add("[app]/[stream]-[seq].ts", "[app].flv", "[app]/../../[stream].m3u8", "live/cam-1.ts")
	f.Add("[app]/[stream]-[seq].ts", "[app].flv", "[app]/[stream].m3u8", "/live/cam-1.ts")
	f.Add("[app]/[stream]-[seq].ts", "[app].flv", "[app]/[stream].m3u8", "live\\..\\..\\cam-1.ts")
	f.Add("[app]/[stream]-[seq]-[seq].ts", "[stream", "[app]/[x].m3u8", "live/a-1-2.ts")
	f.Add("[app]-[seq].ts", "[app].flv", "[app]/x.m3u8", "...-1.ts") // app ".." from a name, not a folder
	f.Add("[app]-[seq].ts", "[app].flv", "[app]/x.m3u8", "...flv")
	f.Add("([app]+/[stream]-[seq].ts", "[duration].flv", "[app]/[stream].M3U8", "(live+/a-1.ts")

	// A real segment: the first bytes of an ffmpeg-made one (segtime's fuzz seed) time as 3.4 s.
	raw, err := os.ReadFile("../segtime/testdata/fuzz/FuzzTS/ffmpeg-h264-aac")
	if err != nil {
		f.Fatal(err)
	}
	lit, _ := strings.CutPrefix(strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[1]), "[]byte(")
	seg, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	if err != nil {
		f.Fatal(err)
	}
	tmp := f.TempDir()
	root := filepath.Join(tmp, "root")
	disk := filepath.Join(root, "live", "cam-1.ts")
	writeFuzzFile(f, disk, seg)
	writeFuzzFile(f, filepath.Join(tmp, "cam.m3u8"), "#EXTM3U\n#EXTINF:2,\nroot/live/cam-1.ts\n") // outside the root
	rs, err := roots.New([]string{root})
	if err != nil {
		f.Fatal(err)
	}
	var playlistKeys []objkey.Template // keys.playlist: the default, and one that names no path
	for _, k := range []string{"{m3u8_url}", "{app}/{stream}.m3u8"} {
		tm, err := objkey.Parse(k)
		if err != nil {
			f.Fatal(err)
		}
		playlistKeys = append(playlistKeys, tm)
	}

	f.Fuzz(func(t *testing.T, hls, dvr, m3u8, rel string) {
		l, err := reconcile.NewLayout([]string{hls}, []string{dvr})
		if (err == nil) != (reconcile.CheckTemplate(hls) == nil && reconcile.CheckTemplate(dvr) == nil) {
			t.Fatalf("NewLayout(%q, %q) = %v, but CheckTemplate disagrees", hls, dvr, err)
		}
		if err != nil {
			return
		}
		l.Seq(rel)
		for _, kind := range []string{queue.KindHLS, queue.KindDVR} {
			v, ok := l.Vars(kind, rel)
			if !ok {
				continue
			}
			if !localSlash(v.Path) || path.Base(v.Path) != v.Basename {
				t.Fatalf("%s %q gave path %q, basename %q: not a path inside the root", kind, rel, v.Path, v.Basename)
			}
			for _, s := range []string{v.Vhost, v.App, v.Stream} { // empty: the template lacks it
				if s == "." || s == ".." || strings.Contains(s, "/") {
					t.Fatalf("%s %q gave vars %+v: %q is not one path segment", kind, rel, v, s)
				}
			}
			if kind == queue.KindHLS && v.URL != v.Path {
				t.Fatalf("hls %q: url %q, path %q", rel, v.URL, v.Path)
			}
			if kind != queue.KindHLS {
				continue
			}
			// Also with a template check would refuse: the placer itself never leaves the root.
			for _, key := range playlistKeys {
				pl := &reconcile.Placer{Roots: rs, M3U8: []string{m3u8}, PlaylistKey: key}
				p := queue.Offload{Kind: kind, Path: disk}
				seq, seqOK := l.Seq(rel)
				if pl.Place(&p, root, v.Path, disk, v, seq, seqOK) != nil {
					continue
				}
				if r, ok := rs.Rel(p.Playlist); !ok || !localSlash(filepath.ToSlash(r)) || !localSlash(p.M3U8URL) {
					t.Fatalf("hls_m3u8_file %q placed %q in playlist %q (m3u8_url %q): outside the root %s", m3u8, rel, p.Playlist, p.M3U8URL, root)
				}
			}
		}
	})
}

func writeFuzzFile(tb testing.TB, p, content string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}
