package hook_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/queue"
)

// Every request SRS 7.0.18 sent in the two captures, replayed in order against real files: each
// is answered 200 {"code":0}, and each on_hls / on_dvr leaves exactly one task with the right
// path, keys and file identity. Nothing on disk changes.
func TestFixtureReplay(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		abs        bool
	}{
		{"abs-paths", "srs-7.0.18-abs-paths.jsonl", true},
		{"rel-paths", "srs-7.0.18-rel-paths.jsonl", false},
	} {
		t.Run(tc.name, func(t *testing.T) { replay(t, tc.file, tc.abs) })
	}
}

func replay(t *testing.T, name string, abs bool) {
	lines := loadFixture(t, name)
	tmp := realPath(t, t.TempDir())
	cwd := filepath.Join(tmp, "usr", "local", "srs")
	rootDirs := []string{filepath.Join(cwd, "objs", "nginx", "html")}
	if abs {
		rootDirs = []string{filepath.Join(tmp, "data", "srs", "hls"), filepath.Join(tmp, "data", "srs", "dvr")}
	}
	for _, d := range append([]string{cwd}, rootDirs...) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// local maps a path from the capture to this test's temp folder.
	local := func(p string) string {
		if abs {
			if !strings.HasPrefix(p, "/data/srs/") {
				t.Fatalf("%s: absolute capture has path %q outside /data/srs/", name, p)
			}
			return filepath.Join(tmp, p)
		}
		if !strings.HasPrefix(p, "./objs/nginx/html/") {
			t.Fatalf("%s: relative capture has path %q", name, p)
		}
		return p // relative to cwd, left as SRS sent it
	}
	onDisk := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(cwd, p)
	}

	bodies := make([][]byte, len(lines))
	want := map[string]queue.Offload{} // by resolved path
	var nHLS, nDVR, nNotify int
	for i, l := range lines {
		switch l.Method {
		case http.MethodGet:
			nNotify++
			if len(l.Body) != 0 {
				t.Fatalf("%s line %d: GET with a body", name, i+1)
			}
			continue
		case http.MethodPost:
		default:
			t.Fatalf("%s line %d: method %s", name, i+1, l.Method)
		}
		m := fields(t, l.Body)
		action, _ := m["action"].(string)
		if action != "on_hls" && action != "on_dvr" {
			bodies[i] = l.Body
			continue
		}
		str := func(k string) string {
			s, ok := m[k].(string)
			if !ok {
				t.Fatalf("%s line %d: no string %q", name, i+1, k)
			}
			return s
		}
		set := map[string]string{"cwd": cwd, "file": local(str("file"))}
		if action == "on_hls" {
			set["m3u8"] = local(str("m3u8"))
		}
		bodies[i] = setFields(t, l.Body, set)

		file := onDisk(set["file"])
		writeRandom(t, file, 1000+37*i) // every file its own size
		exp := queue.Offload{
			Path:  realPath(t, file),
			Vhost: str("vhost"), App: str("app"), Stream: str("stream"), Client: str("client_id"), StreamID: str("stream_id"),
		}
		if action == "on_hls" {
			nHLS++
			exp.Kind = queue.KindHLS
			exp.Key = str("url")
			exp.PlaylistKey = str("m3u8_url")
			exp.M3U8URL = str("m3u8_url")
			exp.Playlist = onDisk(set["m3u8"])
			seq, err := m["seq_no"].(json.Number).Int64()
			if err != nil {
				t.Fatal(err)
			}
			dur, err := m["duration"].(json.Number).Float64()
			if err != nil {
				t.Fatal(err)
			}
			exp.SeqNo, exp.Duration = seq, dur
			writeFile(t, exp.Playlist, "#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:2.000,\n"+path.Base(str("url"))+"\n")
		} else {
			nDVR++
			exp.Kind = queue.KindDVR
			exp.Key = str("app") + "/" + str("stream") + "/" + filepath.Base(file)
		}
		if _, dup := want[exp.Path]; dup {
			t.Fatalf("%s: %s hooked twice in the capture", name, exp.Path)
		}
		want[exp.Path] = exp
	}
	if nHLS == 0 || nDVR == 0 || nNotify == 0 {
		t.Fatalf("%s: %d on_hls, %d on_dvr, %d notify: the capture should have all three", name, nHLS, nDVR, nNotify)
	}
	for p, exp := range want {
		exp.File = fileID(t, p)
		want[p] = exp
	}

	e := newEnv(t, envConfig{roots: rootDirs})
	before := snapshot(t, tmp)
	start := time.Now()
	for i, l := range lines {
		what := fmt.Sprintf("%s line %d (%s %s)", name, i+1, l.Method, l.Path)
		assertOK(t, what, e.do(l.Method, l.Path, string(bodies[i])))
	}
	end := time.Now()

	hls, dvr := e.tasks(hlsQueue), e.tasks(dvrQueue)
	if len(hls) != nHLS || len(dvr) != nDVR {
		t.Fatalf("%s: %d hls and %d dvr tasks, want %d and %d (the on_hls and on_dvr requests)", name, len(hls), len(dvr), nHLS, nDVR)
	}
	if n := e.totalTasks(); n != nHLS+nDVR {
		t.Fatalf("%s: %d tasks in all queues, want %d", name, n, nHLS+nDVR)
	}
	seen := map[string]bool{}
	for _, tk := range append(hls, dvr...) {
		got := tk.p
		exp, ok := want[got.Path]
		if !ok {
			t.Fatalf("%s: task for %q, which no hook named", name, got.Path)
		}
		if seen[got.Path] {
			t.Fatalf("%s: two tasks for %s", name, got.Path)
		}
		seen[got.Path] = true
		inRoot := false
		for _, r := range rootDirs {
			inRoot = inRoot || strings.HasPrefix(got.Path, realPath(t, r)+string(filepath.Separator))
		}
		if !inRoot {
			t.Fatalf("%s: task path %s is not inside a root %v", name, got.Path, rootDirs)
		}
		if got.Hooked.Before(start) || got.Hooked.After(end) {
			t.Fatalf("%s: hooked at %v, not during the replay [%v, %v]", name, got.Hooked, start, end)
		}
		got.Hooked = time.Time{}
		if got != exp {
			t.Fatalf("%s: task\n got %+v\nwant %+v", name, got, exp)
		}
	}
	assertSameTree(t, name, before, snapshot(t, tmp))
}

// Each row is refused with its status and a JSON error, enqueues nothing, and touches no file.
func TestBadInput(t *testing.T) {
	tmp := realPath(t, t.TempDir())
	root := filepath.Join(tmp, "hls")
	live := filepath.Join(root, "live")
	outside := filepath.Join(tmp, "outside")
	evil := filepath.Join(tmp, "hls-evil") // shares the root's prefix
	writeRandom(t, filepath.Join(live, "good.ts"), 1316)
	writeRandom(t, filepath.Join(live, "good.flv"), 2048)
	writeFile(t, filepath.Join(live, "s.m3u8"), "#EXTM3U\n")
	writeFile(t, filepath.Join(live, "s.txt"), "#EXTM3U\n")
	writeFile(t, filepath.Join(live, "note.txt"), "hello\n")
	writeRandom(t, filepath.Join(live, "seg.ts.tmp"), 100)
	writeRandom(t, filepath.Join(live, "x.tmp"), 100)
	writeRandom(t, filepath.Join(live, "x.temp"), 100)
	writeRandom(t, filepath.Join(live, "rec.flv.tmp"), 100)
	writeRandom(t, filepath.Join(outside, "secret.ts"), 500)
	writeRandom(t, filepath.Join(outside, "secret.flv"), 500)
	writeFile(t, filepath.Join(outside, "out.m3u8"), "#EXTM3U\n")
	writeRandom(t, filepath.Join(evil, "x.ts"), 500)
	if err := os.Mkdir(filepath.Join(live, "dir.ts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(live, "fifo.ts"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.ts"), filepath.Join(live, "link.ts")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(live, "out")); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envConfig{roots: []string{root}})

	// hls and dvr build a valid body (SRS 7 fields) and apply changes: a nil value deletes a key.
	build := func(base map[string]any, change map[string]any) string {
		m := maps.Clone(base)
		for k, v := range change {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return marshal(t, m)
	}
	hlsBase := map[string]any{
		"server_id": "vid-i06a97s", "service_id": "7oas6q35", "action": "on_hls", "client_id": "2g6tz380",
		"ip": "127.0.0.1", "vhost": "__defaultVhost__", "app": "live", "tcUrl": "rtmp://127.0.0.1:19350/live",
		"stream": "good", "param": "", "duration": 2.02, "cwd": root,
		"file": filepath.Join(live, "good.ts"), "url": "live/good.ts",
		"m3u8": filepath.Join(live, "s.m3u8"), "m3u8_url": "live/s.m3u8", "seq_no": 0,
		"stream_url": "/live/good", "stream_id": "vid-18em181",
	}
	dvrBase := map[string]any{
		"server_id": "vid-i06a97s", "service_id": "7oas6q35", "action": "on_dvr", "client_id": "2g6tz380",
		"ip": "127.0.0.1", "vhost": "__defaultVhost__", "app": "live", "tcUrl": "rtmp://127.0.0.1:19350/live",
		"stream": "good", "param": "", "cwd": root, "file": filepath.Join(live, "good.flv"),
		"stream_url": "/live/good", "stream_id": "vid-18em181",
	}
	hls := func(change map[string]any) string { return build(hlsBase, change) }
	dvr := func(change map[string]any) string { return build(dvrBase, change) }
	file := func(p string) map[string]any { return map[string]any{"file": p} }

	// A body of exactly n bytes.
	padded := func(n int) string {
		b := `{"action":"on_hls","cwd":"` + root + `","file":"` + filepath.Join(live, "nope.ts") + `","pad":""}`
		return b[:len(b)-2] + strings.Repeat("x", n-len(b)) + `"}`
	}

	rows := []struct {
		name   string
		method string // POST when empty
		body   string
		status int
	}{
		{"malformed JSON", "", `{"action":"on_hls","cwd":`, 400},
		{"empty body", "", ``, 400},
		{"JSON array", "", `[]`, 400},
		{"JSON string", "", `"on_hls"`, 400},
		{"JSON null", "", `null`, 400},
		{"a second value after the object", "", `{"action":"on_hls"} {}`, 400},
		{"action not a string", "", `{"action":1}`, 400},
		{"raw control byte in a string", "", `{"action":"on_hls","cwd":"` + root + `","file":"` + live + "/go\x01od.ts" + `"}`, 400},
		{"body over 64 KiB", "", padded(64<<10 + 1), 413},
		{"body far over 64 KiB", "", hls(map[string]any{"pad": strings.Repeat("x", 1<<20)}), 413},
		{"missing action", "", hls(map[string]any{"action": nil}), 400},
		{"empty action", "", hls(map[string]any{"action": ""}), 400},
		{"unknown action on_forward", "", hls(map[string]any{"action": "on_forward"}), 400},
		{"unknown action on_foo", "", hls(map[string]any{"action": "on_foo"}), 400},
		{"action in upper case", "", hls(map[string]any{"action": "ON_HLS"}), 400},
		{"on_hls_notify as POST", "", hls(map[string]any{"action": "on_hls_notify"}), 400},
		{"on_hls missing cwd", "", hls(map[string]any{"cwd": nil}), 400},
		{"on_hls empty cwd", "", hls(map[string]any{"cwd": ""}), 400},
		{"on_dvr missing cwd", "", dvr(map[string]any{"cwd": nil}), 400},
		{"on_hls missing file", "", hls(map[string]any{"file": nil}), 400},
		{"on_dvr missing file", "", dvr(map[string]any{"file": nil}), 400},
		{"on_hls file outside roots", "", hls(file(filepath.Join(outside, "secret.ts"))), 403},
		{"on_dvr file outside roots", "", dvr(file(filepath.Join(outside, "secret.flv"))), 403},
		{"relative ../ out of the root", "", hls(file("../outside/secret.ts")), 403},
		{"absolute ../ out of the root", "", hls(file(live + "/../../outside/secret.ts")), 403},
		{"relative file, cwd outside", "", hls(map[string]any{"cwd": outside, "file": "secret.ts"}), 403},
		{"file does not exist", "", hls(file(filepath.Join(live, "nope.ts"))), 404},
		{"folder does not exist", "", hls(file(filepath.Join(live, "gone", "x.ts"))), 404},
		{"on_dvr file does not exist", "", dvr(file(filepath.Join(live, "nope.flv"))), 404},
		{"directory", "", hls(file(filepath.Join(live, "dir.ts"))), 400},
		{"FIFO", "", hls(file(filepath.Join(live, "fifo.ts"))), 400},
		{"symlink to a file outside", "", hls(file(filepath.Join(live, "link.ts"))), 403},
		{"symlinked folder outside", "", hls(file(filepath.Join(live, "out", "secret.ts"))), 403},
		{"sibling sharing the root's prefix", "", hls(file(filepath.Join(evil, "x.ts"))), 403},
		{"relative sibling sharing the prefix", "", hls(file("../hls-evil/x.ts")), 403},
		{"NUL in file", "", hls(file(filepath.Join(live, "good.ts") + "\x00.ts")), 400},
		{"NUL in cwd", "", hls(map[string]any{"cwd": root + "\x00", "file": "live/good.ts"}), 400},
		{"relative file and relative cwd", "", hls(map[string]any{"cwd": "objs", "file": "./live/good.ts"}), 400},
		{"on_hls .txt", "", hls(file(filepath.Join(live, "note.txt"))), 400},
		{"on_hls .m3u8 as file", "", hls(file(filepath.Join(live, "s.m3u8"))), 400},
		{"on_dvr .ts", "", dvr(file(filepath.Join(live, "good.ts"))), 400},
		{"on_hls .ts.tmp", "", hls(file(filepath.Join(live, "seg.ts.tmp"))), 400},
		{"on_hls .tmp", "", hls(file(filepath.Join(live, "x.tmp"))), 400},
		{"on_hls .temp", "", hls(file(filepath.Join(live, "x.temp"))), 400},
		{"on_dvr .flv.tmp", "", dvr(file(filepath.Join(live, "rec.flv.tmp"))), 400},
		{"on_hls file without extension", "", hls(file(live)), 400},
		{"url with .. segments", "", hls(map[string]any{"url": "live/../../../etc/good.ts"}), 400},
		{"absolute url with .. segments", "", hls(map[string]any{"url": "http://cdn.example/live/../../good.ts"}), 400},
		{"url with an empty segment", "", hls(map[string]any{"url": "live//good.ts"}), 400},
		{"url with a control byte", "", hls(map[string]any{"url": "live/go\x01od.ts"}), 400},
		{"empty url", "", hls(map[string]any{"url": ""}), 400},
		{"m3u8_url with ..", "", hls(map[string]any{"m3u8_url": "../s.m3u8"}), 400},
		{"m3u8 outside roots", "", hls(map[string]any{"m3u8": filepath.Join(outside, "out.m3u8")}), 403},
		{"m3u8 not a playlist", "", hls(map[string]any{"m3u8": filepath.Join(live, "s.txt")}), 400},
		{"on_dvr app ..", "", dvr(map[string]any{"app": ".."}), 400},
		{"on_dvr empty stream", "", dvr(map[string]any{"stream": ""}), 400},
		{"PUT", http.MethodPut, hls(nil), 405},
		{"DELETE", http.MethodDelete, hls(nil), 405},
		{"PATCH", http.MethodPatch, hls(nil), 405},
		{"OPTIONS", http.MethodOptions, "", 405},
	}
	before := snapshot(t, tmp)
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			e := e.with(t)
			method := r.method
			if method == "" {
				method = http.MethodPost
			}
			res := e.do(method, "/api/v1/hls", r.body)
			assertRefused(t, r.name, res, r.status)
			if res.elapsed > 2*time.Second {
				t.Fatalf("answered after %v", res.elapsed)
			}
			e.assertTaskCount(r.name, 0, 0)
			assertSameTree(t, r.name, before, snapshot(t, tmp))
		})
	}

	// The limit is 64 KiB exactly, and the rows above were refused for what they test: the
	// valid bodies they were built from are accepted.
	t.Run("control", func(t *testing.T) {
		e := e.with(t)
		assertRefused(t, "64 KiB body, missing file", e.post(padded(64<<10)), 404)
		assertOK(t, "valid on_hls", e.post(hls(nil)))
		assertOK(t, "valid on_dvr", e.do(http.MethodPost, "/api/v1/dvrs", dvr(nil)))
		assertOK(t, "valid on_hls, relative", e.post(hls(file("./live/good.ts"))))
		e.assertTaskCount("valid hooks", 1, 1)
		assertSameTree(t, "valid hooks", before, snapshot(t, tmp))
	})
}

// With Handler.Token set, a request without it or with another one is refused before anything
// else happens; the right one works.
func TestToken(t *testing.T) {
	tmp := realPath(t, t.TempDir())
	seg := filepath.Join(tmp, "live", "a.ts")
	writeRandom(t, seg, 1316)
	const token = "s3cr3t-Tok"
	e := newEnv(t, envConfig{roots: []string{tmp}, token: token})
	body := marshal(t, map[string]any{
		"action": "on_hls", "client_id": "x", "vhost": "__defaultVhost__", "app": "live", "stream": "a",
		"cwd": tmp, "file": seg, "url": "live/a.ts", "seq_no": 1, "duration": 2.0,
	})
	before := snapshot(t, tmp)
	for _, target := range []string{
		"/api/v1/hls",
		"/api/v1/hls?token=",
		"/api/v1/hls?token=wrong",
		"/api/v1/hls?token=" + token + "x",
		"/api/v1/hls?token=" + strings.ToUpper(token),
		"/api/v1/hls?tok=" + token,
		"/api/v1/hls/" + token,
	} {
		assertRefused(t, "POST "+target, e.do(http.MethodPost, target, body), http.StatusForbidden)
		assertRefused(t, "GET "+target, e.do(http.MethodGet, target, ""), http.StatusForbidden)
	}
	e.assertTaskCount("wrong tokens", 0, 0)
	assertSameTree(t, "wrong tokens", before, snapshot(t, tmp))

	assertOK(t, "right token", e.do(http.MethodPost, "/api/v1/hls?token="+token, body))
	assertOK(t, "right token, other params", e.do(http.MethodPost, "/hooks?a=1&token="+token+"&b=2", `{"action":"on_connect"}`))
	assertOK(t, "notify with the right token", e.do(http.MethodGet, "/api/v1/hls/live/a/a.ts?token="+token, ""))
	e.assertTaskCount("right token", 1, 0)
}

// The hooks srs-offload has no work for are all answered with success, with SRS 7, 4 and 3
// payloads, on whatever path SRS is configured to use; so is the GET of on_hls_notify.
func TestOtherActions(t *testing.T) {
	tmp := realPath(t, t.TempDir())
	e := newEnv(t, envConfig{roots: []string{tmp}})
	posts := []struct{ path, body string }{
		// SRS 7.0.18 (PROTOCOL.md §8)
		{"/api/v1/clients", `{"server_id":"vid-i06a97s","service_id":"7oas6q35","action":"on_connect","client_id":"2g6tz380","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","stream":"livestream","param":"?token=abc123&salt=xyz","tcUrl":"rtmp://127.0.0.1:19350/live","pageUrl":""}`},
		{"/api/v1/streams", `{"server_id":"vid-i06a97s","service_id":"7oas6q35","action":"on_publish","client_id":"2g6tz380","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","tcUrl":"rtmp://127.0.0.1:19350/live","stream":"livestream","param":"?token=abc123&salt=xyz","stream_url":"/live/livestream","stream_id":"vid-18em181"}`},
		{"/api/v1/streams", `{"server_id":"vid-i06a97s","service_id":"7oas6q35","action":"on_unpublish","client_id":"2g6tz380","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","tcUrl":"rtmp://127.0.0.1:19350/live","stream":"livestream","param":"?token=abc123&salt=xyz","stream_url":"/live/livestream","stream_id":"vid-18em181"}`},
		{"/api/v1/clients", `{"server_id":"vid-i06a97s","service_id":"7oas6q35","action":"on_close","client_id":"2g6tz380","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","send_bytes":4501,"recv_bytes":2695917}`},
		{"/api/v1/sessions", `{"server_id":"vid-i06a97s","service_id":"7oas6q35","action":"on_play","client_id":"5k3m9q1z","ip":"10.0.0.7","vhost":"__defaultVhost__","app":"live","stream":"livestream","tcUrl":"rtmp://127.0.0.1:19350/live","param":"?token=viewer1","pageUrl":"","stream_url":"/live/livestream","stream_id":"vid-18em181"}`},
		{"/api/v1/sessions", `{"server_id":"vid-i06a97s","service_id":"7oas6q35","action":"on_stop","client_id":"5k3m9q1z","ip":"10.0.0.7","vhost":"__defaultVhost__","app":"live","tcUrl":"rtmp://127.0.0.1:19350/live","stream":"livestream","param":"?token=viewer1","stream_url":"/live/livestream","stream_id":"vid-18em181"}`},
		// Named vhost, no stream_id.
		{"/api/v1/streams", `{"server_id":"vid-i06a97s","service_id":"7oas6q35","action":"on_publish","client_id":"7h2k0d4s","ip":"192.168.1.10","vhost":"video.test.com","app":"live","tcUrl":"rtmp://video.test.com/live","stream":"livestream","param":"","stream_url":"video.test.com/live/livestream"}`},
		// SRS 4.0.271
		{"/api/v1/clients", `{"server_id":"vid-0x8k3ja","action":"on_connect","client_id":"9308h583","ip":"192.168.1.10","vhost":"__defaultVhost__","app":"live","stream":"livestream","param":"","tcUrl":"rtmp://192.168.1.2/live","pageUrl":""}`},
		{"/api/v1/streams", `{"server_id":"vid-0x8k3ja","action":"on_unpublish","client_id":"9308h583","ip":"192.168.1.10","vhost":"__defaultVhost__","app":"live","stream":"livestream","param":""}`},
		{"/api/v1/sessions", `{"server_id":"vid-0x8k3ja","action":"on_play","client_id":"9308h583","ip":"192.168.1.10","vhost":"__defaultVhost__","app":"live","stream":"livestream","param":"","pageUrl":""}`},
		// SRS 3.x: integer client_id, no server_id.
		{"/api/v1/clients", `{"action":"on_connect","client_id":1985,"ip":"192.168.1.10","vhost":"__defaultVhost__","app":"live","tcUrl":"rtmp://192.168.1.2/live","pageUrl":""}`},
		{"/api/v1/streams", `{"action":"on_publish","client_id":1985,"ip":"192.168.1.10","vhost":"__defaultVhost__","app":"live","tcUrl":"rtmp://192.168.1.2/live","stream":"livestream","param":"?token=xxx"}`},
		{"/api/v1/streams", `{"action":"on_unpublish","client_id":1985,"ip":"192.168.1.10","vhost":"__defaultVhost__","app":"live","stream":"livestream","param":"?token=xxx"}`},
		{"/api/v1/sessions", `{"action":"on_play","client_id":1986,"ip":"192.168.1.10","vhost":"__defaultVhost__","app":"live","stream":"livestream","param":"","pageUrl":""}`},
		{"/api/v1/sessions", `{"action":"on_stop","client_id":1986,"ip":"192.168.1.10","vhost":"__defaultVhost__","app":"live","stream":"livestream","param":""}`},
		{"/api/v1/clients", `{"action":"on_close","client_id":1985,"ip":"192.168.1.10","vhost":"__defaultVhost__","app":"live","send_bytes":0,"recv_bytes":0}`},
		// Any path, with a query; files named in an ignored hook are not looked at.
		{"/", `{"action":"on_stop"}`},
		{"/srs/hooks?from=srs&x=y", `{"action":"on_connect","cwd":"/etc","file":"/etc/passwd"}`},
	}
	seen := map[string]bool{}
	for _, p := range posts {
		seen[fields(t, []byte(p.body))["action"].(string)] = true
		assertOK(t, p.body, e.do(http.MethodPost, p.path, p.body))
	}
	for _, a := range []string{"on_connect", "on_close", "on_publish", "on_unpublish", "on_play", "on_stop"} {
		if !seen[a] {
			t.Fatalf("%s not exercised", a)
		}
	}
	for _, p := range []string{
		"/api/v1/hls/live/livestream/livestream-0.ts?token=abc123&salt=xyz",
		"/api/v1/hls/live/cam1/cam1/2026/11/23/22/1795474211734-0.ts",
		"/api/v1/hls/vid-i06a97s/live/livestream/livestream-0.ts",
		"/",
	} {
		assertOK(t, "GET "+p, e.do(http.MethodGet, p, ""))
	}
	e.assertTaskCount("ignored hooks", 0, 0)
	if qs, _ := e.insp.Queues(); len(qs) != 0 {
		t.Fatalf("queues %v exist after ignored hooks", qs)
	}
}

// Payloads of older SRS versions (integer client_id, no server_id, service_id, tcUrl,
// stream_url or stream_id) and of newer SRS 7 fMP4 HLS are accepted and enqueued.
func TestLenientDecoding(t *testing.T) {
	tmp := realPath(t, t.TempDir())
	cwd := filepath.Join(tmp, "srs")
	html := filepath.Join(cwd, "objs", "nginx", "html")
	hlsRoot := filepath.Join(tmp, "data", "hls")
	for _, d := range []string{html, hlsRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t, envConfig{roots: []string{html, hlsRoot}})
	type row struct {
		name, body string
		file       string // on disk
		want       queue.Offload
	}
	rows := []row{
		{
			name: "SRS 3.x on_hls",
			body: `{"action":"on_hls","client_id":107,"ip":"192.168.1.10","vhost":"__defaultVhost__","app":"live","stream":"livestream","param":"","duration":9.36,"cwd":"` + cwd + `","file":"./objs/nginx/html/live/livestream-100.ts","url":"live/livestream-100.ts","m3u8":"./objs/nginx/html/live/livestream.m3u8","m3u8_url":"live/livestream.m3u8","seq_no":100}`,
			file: filepath.Join(html, "live", "livestream-100.ts"),
			want: queue.Offload{Kind: queue.KindHLS, Key: "live/livestream-100.ts", Vhost: "__defaultVhost__", App: "live", Stream: "livestream", Client: "107",
				Playlist: filepath.Join(html, "live", "livestream.m3u8"), PlaylistKey: "live/livestream.m3u8", M3U8URL: "live/livestream.m3u8", SeqNo: 100, Duration: 9.36},
		},
		{
			name: "SRS 3.x on_dvr",
			body: `{"action":"on_dvr","client_id":107,"ip":"192.168.1.10","vhost":"__defaultVhost__","app":"live","stream":"livestream","param":"","cwd":"` + cwd + `","file":"./objs/nginx/html/live/livestream.1536199440125.flv"}`,
			file: filepath.Join(html, "live", "livestream.1536199440125.flv"),
			want: queue.Offload{Kind: queue.KindDVR, Key: "live/livestream/livestream.1536199440125.flv", Vhost: "__defaultVhost__", App: "live", Stream: "livestream", Client: "107"},
		},
		{
			name: "SRS 4.0.271 on_hls",
			body: `{"server_id":"vid-0x8k3ja","action":"on_hls","client_id":"9308h583","ip":"192.168.1.10","vhost":"__defaultVhost__","app":"live","stream":"livestream","param":"","duration":9.36,"cwd":"` + cwd + `","file":"./objs/nginx/html/live/livestream-101.ts","url":"live/livestream-101.ts","m3u8":"./objs/nginx/html/live/livestream.m3u8","m3u8_url":"live/livestream.m3u8","seq_no":101}`,
			file: filepath.Join(html, "live", "livestream-101.ts"),
			want: queue.Offload{Kind: queue.KindHLS, Key: "live/livestream-101.ts", Vhost: "__defaultVhost__", App: "live", Stream: "livestream", Client: "9308h583",
				Playlist: filepath.Join(html, "live", "livestream.m3u8"), PlaylistKey: "live/livestream.m3u8", M3U8URL: "live/livestream.m3u8", SeqNo: 101, Duration: 9.36},
		},
		{
			name: "SRS 4.0.271 on_dvr, mp4",
			body: `{"server_id":"vid-0x8k3ja","action":"on_dvr","client_id":"9308h583","ip":"192.168.1.10","vhost":"__defaultVhost__","app":"live","stream":"cam1","param":"?token=x","cwd":"` + cwd + `","file":"./objs/nginx/html/live/cam1.1795474211735.mp4"}`,
			file: filepath.Join(html, "live", "cam1.1795474211735.mp4"),
			want: queue.Offload{Kind: queue.KindDVR, Key: "live/cam1/cam1.1795474211735.mp4", Vhost: "__defaultVhost__", App: "live", Stream: "cam1", Client: "9308h583"},
		},
		{
			name: "SRS 7 fMP4 init segment, before any m3u8",
			body: `{"server_id":"vid-i06a97s","service_id":"7oas6q35","action":"on_hls","client_id":"2g6tz380","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","tcUrl":"rtmp://127.0.0.1:19350/live","stream":"livestream","param":"","duration":0.00,"cwd":"/usr/local/srs","file":"` + hlsRoot + `/live/livestream/init.mp4","url":"live/livestream/init.mp4","m3u8":"` + hlsRoot + `/live/livestream.m3u8","m3u8_url":"live/livestream.m3u8","seq_no":0,"stream_url":"/live/livestream","stream_id":"vid-18em181"}`,
			file: filepath.Join(hlsRoot, "live", "livestream", "init.mp4"),
			want: queue.Offload{Kind: queue.KindHLS, Key: "live/livestream/init.mp4", Vhost: "__defaultVhost__", App: "live", Stream: "livestream", Client: "2g6tz380", StreamID: "vid-18em181",
				Playlist: filepath.Join(hlsRoot, "live", "livestream.m3u8"), PlaylistKey: "live/livestream.m3u8", M3U8URL: "live/livestream.m3u8"},
		},
		{
			name: "SRS 7 fMP4 segment, named vhost, hls_entry_prefix URL",
			body: `{"server_id":"vid-i06a97s","service_id":"7oas6q35","action":"on_hls","client_id":"2g6tz380","ip":"127.0.0.1","vhost":"video.test.com","app":"live","tcUrl":"rtmp://video.test.com/live","stream":"livestream","param":"","duration":2.00,"cwd":"/usr/local/srs","file":"` + hlsRoot + `//live/livestream-3.m4s","url":"https://cdn.example.com/live/livestream-3.m4s","m3u8":"` + hlsRoot + `//live/livestream.m3u8","m3u8_url":"live/livestream.m3u8","seq_no":3,"stream_url":"video.test.com/live/livestream"}`,
			file: filepath.Join(hlsRoot, "live", "livestream-3.m4s"),
			want: queue.Offload{Kind: queue.KindHLS, Key: "live/livestream-3.m4s", Vhost: "video.test.com", App: "live", Stream: "livestream", Client: "2g6tz380",
				Playlist: filepath.Join(hlsRoot, "live", "livestream.m3u8"), PlaylistKey: "live/livestream.m3u8", M3U8URL: "live/livestream.m3u8", SeqNo: 3, Duration: 2},
		},
	}
	for i, r := range rows {
		writeRandom(t, r.file, 700+i)
	}
	nHLS, nDVR := 0, 0
	for _, r := range rows {
		assertOK(t, r.name, e.post(r.body))
		r.want.Path = realPath(t, r.file)
		r.want.File = fileID(t, r.file)
		q := hlsQueue
		if r.want.Kind == queue.KindDVR {
			q, nDVR = dvrQueue, nDVR+1
		} else {
			nHLS++
		}
		found := false
		for _, tk := range e.tasks(q) {
			if tk.p.Path != r.want.Path {
				continue
			}
			found = true
			tk.p.Hooked = time.Time{}
			if tk.p != r.want {
				t.Fatalf("%s: task\n got %+v\nwant %+v", r.name, tk.p, r.want)
			}
		}
		if !found {
			t.Fatalf("%s: no task for %s", r.name, r.want.Path)
		}
	}
	e.assertTaskCount("lenient", nHLS, nDVR)
}

// The same file hooked twice is one task, whichever way the path is written; a new file under
// the same name is a new task.
func TestDedup(t *testing.T) {
	tmp := realPath(t, t.TempDir())
	seg := filepath.Join(tmp, "live", "livestream-0.ts")
	writeRandom(t, seg, 1316)
	e := newEnv(t, envConfig{roots: []string{tmp}})
	body := func(cwd, file string) string {
		return marshal(t, map[string]any{
			"server_id": "vid-i06a97s", "action": "on_hls", "client_id": "2g6tz380", "vhost": "__defaultVhost__",
			"app": "live", "stream": "livestream", "param": "", "duration": 2.02, "cwd": cwd, "file": file,
			"url": "live/livestream-0.ts", "m3u8": filepath.Join(tmp, "live", "livestream.m3u8"), "m3u8_url": "live/livestream.m3u8", "seq_no": 0,
		})
	}
	assertOK(t, "first", e.post(body(tmp, seg)))
	assertOK(t, "again", e.post(body(tmp, seg)))
	assertOK(t, "relative", e.post(body(tmp, "./live/livestream-0.ts")))
	assertOK(t, "unclean", e.post(body("/", tmp+"//live/./x/../livestream-0.ts")))
	e.assertTaskCount("same file four times", 1, 0)
	first := e.tasks(hlsQueue)[0].p

	// SRS restarts seq_no and writes a new file under the old name.
	if err := os.Remove(seg); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, seg, 2632)
	assertOK(t, "replaced", e.post(body(tmp, seg)))
	assertOK(t, "replaced, again", e.post(body(tmp, seg)))
	e.assertTaskCount("after the file was replaced", 2, 0)
	var second queue.Offload
	for _, tk := range e.tasks(hlsQueue) {
		if tk.p.File != first.File {
			second = tk.p
		}
	}
	if second.Path != first.Path || second.File != fileID(t, seg) || second.File.Size != 2632 || first.File.Size != 1316 {
		t.Fatalf("tasks %+v and %+v, want the same path with the old and the new file", first, second)
	}

	// Same size, only the mtime differs.
	old := fileID(t, seg)
	if err := os.Remove(seg); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, seg, 2632)
	mt := time.Unix(0, old.MtimeNs).Add(3 * time.Second)
	if err := os.Chtimes(seg, mt, mt); err != nil {
		t.Fatal(err)
	}
	assertOK(t, "replaced, same size", e.post(body(tmp, seg)))
	e.assertTaskCount("after a same-size replacement", 3, 0)
}

// With Redis down or hanging, on_hls is answered 503 with a JSON error within the intake
// timeout, and the file stays; once Redis is back the same hook is enqueued.
func TestRedisUnreachable(t *testing.T) {
	const timeout = time.Second
	tmp := realPath(t, t.TempDir())
	seg := filepath.Join(tmp, "live", "livestream-0.ts")
	writeRandom(t, seg, 1316)
	body := marshal(t, map[string]any{
		"action": "on_hls", "client_id": "2g6tz380", "vhost": "__defaultVhost__", "app": "live", "stream": "livestream",
		"cwd": tmp, "file": seg, "url": "live/livestream-0.ts", "m3u8_url": "live/livestream.m3u8", "seq_no": 0, "duration": 2.0,
	})
	before := snapshot(t, tmp)

	t.Run("stopped", func(t *testing.T) {
		e := newEnv(t, envConfig{roots: []string{tmp}, timeout: timeout})
		e.redis.Stop()
		r := e.post(body)
		assertRefused(t, "redis stopped", r, http.StatusServiceUnavailable)
		if r.elapsed > timeout+500*time.Millisecond {
			t.Fatalf("answered after %v, want within the %v intake timeout", r.elapsed, timeout)
		}
		assertOK(t, "on_publish needs no Redis", e.do(http.MethodPost, "/api/v1/streams", `{"action":"on_publish","client_id":"x","app":"live","stream":"s"}`))
		assertSameTree(t, "redis stopped", before, snapshot(t, tmp))

		e.redis.Restart()
		deadline := time.Now().Add(5 * time.Second)
		for {
			r := e.post(body)
			if r.status == http.StatusOK {
				assertOK(t, "redis back", r)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still %d %s after Redis came back", r.status, r.body)
			}
			time.Sleep(50 * time.Millisecond)
		}
		e.assertTaskCount("redis back", 1, 0)
		assertSameTree(t, "redis back", before, snapshot(t, tmp))
	})

	// A Redis that accepts connections and never answers. asynq's RedisClientOpt builds a go-redis
	// client without ContextTimeoutEnabled, so the intake's context deadline does not cut a read
	// short: with the default options a hanging Redis is given up on after go-redis's 3 s read
	// timeout, whatever Intake.Timeout says. This row pins that bound (and fails if the answer
	// never comes); the next shows that read and write timeouts no longer than the intake timeout
	// make it hold.
	const goRedisReadTimeout = 3 * time.Second
	t.Run("hanging, default client options", func(t *testing.T) {
		t.Parallel() // both only wait
		e := newEnv(t, envConfig{roots: []string{tmp}, timeout: timeout, redisAddr: blackhole(t)})
		r := e.post(body)
		assertRefused(t, "redis hanging", r, http.StatusServiceUnavailable)
		if r.elapsed > goRedisReadTimeout+timeout {
			t.Fatalf("answered after %v, want within %v", r.elapsed, goRedisReadTimeout+timeout)
		}
		assertSameTree(t, "redis hanging", before, snapshot(t, tmp))
	})
	t.Run("hanging, read timeout = intake timeout", func(t *testing.T) {
		t.Parallel() // both only wait
		e := newEnv(t, envConfig{roots: []string{tmp}, timeout: timeout, redisAddr: blackhole(t),
			redisOpt: func(o *asynq.RedisClientOpt) { o.ReadTimeout, o.WriteTimeout = timeout, timeout }})
		r := e.post(body)
		assertRefused(t, "redis hanging", r, http.StatusServiceUnavailable)
		if r.elapsed > timeout+500*time.Millisecond {
			t.Fatalf("answered after %v, want within the %v intake timeout", r.elapsed, timeout)
		}
		assertSameTree(t, "redis hanging", before, snapshot(t, tmp))
	})
}

// On the wire, byte for byte: SRS's request (its five headers, Content-Length, then it closes)
// gets a 200 with Content-Length: 10, no chunking, and the body {"code":0}.
func TestWireAnswer(t *testing.T) {
	e := newEnv(t, envConfig{roots: []string{t.TempDir()}})
	host := strings.TrimPrefix(e.srv.URL, "http://")
	body := `{"server_id":"vid-i06a97s","service_id":"7oas6q35","action":"on_connect","client_id":"2g6tz380","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","stream":"livestream","param":"?token=abc123&salt=xyz","tcUrl":"rtmp://127.0.0.1:19350/live","pageUrl":""}`
	for _, req := range []string{
		"POST /api/v1/clients HTTP/1.1\r\nConnection: Keep-Alive\r\nContent-Length: " + strconv.Itoa(len(body)) +
			"\r\nContent-Type: application/json\r\nHost: " + host + "\r\nUser-Agent: SRS/7.0.18(Hang)\r\n\r\n" + body,
		"GET /api/v1/hls/live/livestream/livestream-0.ts?token=abc123&salt=xyz HTTP/1.1\r\nConnection: Keep-Alive\r\nContent-Length: 0" +
			"\r\nContent-Type: application/json\r\nHost: " + host + "\r\nUser-Agent: SRS/7.0.18(Hang)\r\n\r\n",
	} {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		var head []string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the answer head %q: %v", head, err)
			}
			line = strings.TrimRight(line, "\r\n")
			if line == "" {
				break
			}
			head = append(head, line)
		}
		if len(head) == 0 || head[0] != "HTTP/1.1 200 OK" {
			t.Fatalf("status line %q", head)
		}
		h := map[string]string{}
		for _, l := range head[1:] {
			k, v, _ := strings.Cut(l, ": ")
			h[strings.ToLower(k)] = v
		}
		if h["content-length"] != "10" || h["content-type"] != "application/json" || h["transfer-encoding"] != "" {
			t.Fatalf("answer headers %q", head)
		}
		got := make([]byte, 10)
		if _, err := io.ReadFull(br, got); err != nil || string(got) != okBody {
			t.Fatalf("body %q, %v", got, err)
		}
		c.Close()
	}
}

// A root given through a symlink: hooks name files under the symlinked path, the task carries
// the real path.
func TestSymlinkedRoot(t *testing.T) {
	tmp := realPath(t, t.TempDir())
	realRoot := filepath.Join(tmp, "disk", "hls")
	link := filepath.Join(tmp, "hls")
	if err := os.MkdirAll(realRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(realRoot, link); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, filepath.Join(realRoot, "live", "a-1.ts"), 999)
	e := newEnv(t, envConfig{roots: []string{link}})
	assertOK(t, "via link", e.post(marshal(t, map[string]any{
		"action": "on_hls", "vhost": "__defaultVhost__", "app": "live", "stream": "a", "cwd": "/usr/local/srs",
		"file": link + "/live/a-1.ts", "url": "live/a-1.ts", "m3u8": link + "/live/a.m3u8", "m3u8_url": "live/a.m3u8", "seq_no": 1, "duration": 2.0,
	})))
	tk := e.tasks(hlsQueue)
	if len(tk) != 1 || tk[0].p.Path != filepath.Join(realRoot, "live", "a-1.ts") || tk[0].p.Key != "live/a-1.ts" {
		t.Fatalf("tasks %+v", tk)
	}
}
