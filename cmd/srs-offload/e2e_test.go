package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/uploader"
)

// The end-to-end tests run the built binary against a real redis-server and a real S3 gateway
// (versitygw), and replay the requests SRS 7.0.18 sent in ../../../shared/srs/fixtures.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "srs-offload-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "srs-offload")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// stack is redis-server + versitygw + a config for the binary.
type stack struct {
	t      testing.TB
	redis  *redistest.Server
	s3     *s3test.Server
	store  *uploader.Uploader
	dir    string
	listen string
	config string
}

func newStack(t testing.TB, roots ...string) *stack {
	t.Helper()
	s := &stack{t: t, redis: redistest.Start(t), s3: s3test.Versity(t), dir: t.TempDir()}
	s.store = s.s3.Uploader(t, nil)
	s.listen = fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
	quoted := make([]string, len(roots))
	for i, r := range roots {
		quoted[i] = fmt.Sprintf("%q", r)
	}
	cfg := fmt.Sprintf(`
listen: %s
node: e2e
log: {level: debug}
redis: {addr: %s}
roots: [%s]
storage:
  endpoint: %s
  bucket: %s
  access_key: ${E2E_AK}
  secret_key: ${E2E_SK}
  multipart_threshold: 5MiB
  part_size: 5MiB
worker: {concurrency: 4, retry_base: 100ms, retry_max: 1s, poll_interval: 10ms, shutdown_timeout: 10s}
`, s.listen, s.redis.Addr, strings.Join(quoted, ", "), s.s3.Endpoint, s.s3.Bucket)
	s.config = filepath.Join(s.dir, "srs-offload.yaml")
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_AK", s.s3.AccessKey)
	t.Setenv("E2E_SK", s.s3.SecretKey)
	return s
}

// proc is one running srs-offload process.
type proc struct {
	cmd  *exec.Cmd
	done chan error
	log  *bytes.Buffer
}

// start runs a subcommand. A worker gets a copy of the config with its own listen address (for
// its metrics), so it can run beside a hooks process.
func (s *stack) start(sub string) *proc {
	s.t.Helper()
	config, listen := s.config, s.listen
	if sub == "worker" {
		listen = fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(s.t))
		b, err := os.ReadFile(s.config)
		if err != nil {
			s.t.Fatal(err)
		}
		config = filepath.Join(s.dir, fmt.Sprintf("worker-%s.yaml", strings.ReplaceAll(listen, ":", "-")))
		os.WriteFile(config, bytes.Replace(b, []byte("listen: "+s.listen), []byte("listen: "+listen), 1), 0o644)
	}
	p := &proc{cmd: exec.Command(binary(s.t), sub, "-c", config), done: make(chan error, 1), log: &bytes.Buffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.Env = os.Environ()
	if err := p.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	s.t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if s.t.Failed() {
			s.t.Logf("srs-offload %s log:\n%s", sub, p.log.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + listen + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Contains(b, []byte("srs_offload_")) {
				s.t.Fatalf("srs-offload %s: /metrics answered %d without srs_offload_ metrics", sub, resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("srs-offload %s did not listen on %s:\n%s", sub, listen, p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit 30 s after SIGTERM\n%s", p.log.String())
	}
}

// fixture is one captured request.
type fixture struct {
	Method string         `json:"method"`
	Path   string         `json:"path"`
	Body   map[string]any `json:"body"`
}

func readFixtures(t *testing.T, name string) []fixture {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "..", "shared", "srs", "fixtures", name))
	if err != nil {
		t.Fatalf("fixtures: %v", err)
	}
	defer f.Close()
	var out []fixture
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var fx fixture
		if err := json.Unmarshal(sc.Bytes(), &fx); err != nil {
			t.Fatalf("fixture %s: %v", name, err)
		}
		out = append(out, fx)
	}
	return out
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 99))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func post(t testing.TB, url string, body []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(got) != `{"code":0}` {
		t.Fatalf("POST %s: %d %s (body %s)", url, resp.StatusCode, got, body)
	}
}

// want is a file that must end up in storage.
type want struct {
	key, local string
	data       []byte
	keep       bool // stays on disk (playlists)
}

// replay rewrites a fixture's paths into dir, creates real files for every on_hls/on_dvr, and
// sends every request to the binary in order.
func (s *stack) replay(fixtures []fixture, rewrite func(string) string, cwd string) []want {
	s.t.Helper()
	var wants []want
	seen := map[string]bool{}
	for i, fx := range fixtures {
		url := "http://" + s.listen + fx.Path
		if fx.Method == http.MethodGet {
			resp, err := http.Get(url)
			if err != nil {
				s.t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != `{"code":0}` {
				s.t.Fatalf("GET %s: %d %s", fx.Path, resp.StatusCode, b)
			}
			continue
		}
		body := fx.Body
		if action := body["action"]; action == "on_hls" || action == "on_dvr" {
			body["cwd"] = cwd
			body["file"] = rewrite(body["file"].(string))
			local := body["file"].(string)
			if !filepath.IsAbs(local) {
				local = filepath.Join(cwd, local)
			}
			size := 150_000 + i*1000
			key := strings.TrimPrefix(fmt.Sprint(body["url"]), "/")
			if action == "on_dvr" {
				size = 6<<20 + i // above the 5 MiB multipart threshold
				key = fmt.Sprintf("%s/%s/%s", body["app"], body["stream"], filepath.Base(local))
			}
			data := randomBytes(size, uint64(i))
			os.MkdirAll(filepath.Dir(local), 0o755)
			if err := os.WriteFile(local, data, 0o644); err != nil {
				s.t.Fatal(err)
			}
			wants = append(wants, want{key: key, local: local, data: data})
			if action == "on_hls" {
				body["m3u8"] = rewrite(body["m3u8"].(string))
				m3u8 := body["m3u8"].(string)
				if !filepath.IsAbs(m3u8) {
					m3u8 = filepath.Join(cwd, m3u8)
				}
				// SRS rewrites the playlist (temp file + rename) before the hook, listing the new segment.
				rel, _ := filepath.Rel(filepath.Dir(m3u8), local)
				pl := fmt.Sprintf("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:%v\n#EXTINF:%v,\n%s\n", body["seq_no"], body["duration"], rel)
				os.WriteFile(m3u8+".temp", []byte(pl), 0o644)
				os.Rename(m3u8+".temp", m3u8)
				if !seen[m3u8] {
					seen[m3u8] = true
					wants = append(wants, want{key: fmt.Sprint(body["m3u8_url"]), local: m3u8, keep: true})
				}
			}
		}
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		post(s.t, url, b)
	}
	return wants
}

// settle waits until every want is in storage byte for byte and every non-kept local file is gone.
func (s *stack) settle(wants []want, timeout time.Duration) {
	s.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for _, w := range wants {
		for {
			data := w.data
			if w.keep {
				data, _ = os.ReadFile(w.local) // the playlist as it is on disk now
			}
			got, err := s.store.Get(ctx, w.key)
			_, statErr := os.Stat(w.local)
			goneOK := w.keep == (statErr == nil)
			if err == nil && bytes.Equal(got, data) && goneOK {
				break
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("%s: stored=%v (%d bytes, want %d) local exists=%v keep=%v", w.key, err == nil, len(got), len(data), statErr == nil, w.keep)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
}

func TestE2EReplaySRSFixtures(t *testing.T) {
	tmp := t.TempDir()
	absRoot := filepath.Join(tmp, "data", "srs")        // stands for /data/srs in the abs capture
	relCwd := filepath.Join(tmp, "usr", "local", "srs") // stands for /usr/local/srs in the rel capture
	relRoot := filepath.Join(relCwd, "objs", "nginx", "html")
	for _, d := range []string{absRoot, relRoot} {
		os.MkdirAll(d, 0o755)
	}
	s := newStack(t, absRoot, relRoot)
	p := s.start("serve")

	abs := s.replay(readFixtures(t, "srs-7.0.18-abs-paths.jsonl"), func(f string) string {
		return strings.Replace(f, "/data/srs", absRoot, 1)
	}, "/usr/local/srs")
	rel := s.replay(readFixtures(t, "srs-7.0.18-rel-paths.jsonl"), func(f string) string { return f }, relCwd)
	if len(abs) < 10 || len(rel) < 5 {
		t.Fatalf("fixtures gave only %d + %d files", len(abs), len(rel))
	}
	s.settle(append(abs, rel...), 60*time.Second)

	// Empty date folders left by purged segments are gone; the roots and playlist folders stay.
	filepath.Walk(relRoot, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() && path != relRoot {
			entries, _ := os.ReadDir(path)
			if len(entries) == 0 {
				t.Errorf("empty folder left behind: %s", path)
			}
		}
		return nil
	})
	for _, r := range []string{absRoot, relRoot} {
		if _, err := os.Stat(r); err != nil {
			t.Errorf("root %s removed: %v", r, err)
		}
	}
	p.stop(t)
}

// A worker stopped in the middle of a queue (SIGTERM) and started again loses nothing: tasks in
// flight go back to the queue, and every file ends up stored and purged.
func TestE2EWorkerRestartMidQueue(t *testing.T) {
	root := filepath.Join(t.TempDir(), "hls")
	os.MkdirAll(root, 0o755)
	s := newStack(t, root)
	hooks := s.start("hooks")

	const n = 120
	var wants []want
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("live/cam/2026/11/25/04/%d-%d.ts", 1795474211734+i*2000, i)
		local := filepath.Join(root, name)
		data := randomBytes(400_000, uint64(i))
		os.MkdirAll(filepath.Dir(local), 0o755)
		os.WriteFile(local, data, 0o644)
		body, _ := json.Marshal(map[string]any{
			"action": "on_hls", "client_id": "2mj31901", "vhost": "__defaultVhost__", "app": "live", "stream": "cam",
			"param": "", "duration": 2.0, "cwd": "/usr/local/srs", "file": local, "url": name,
			"m3u8": filepath.Join(root, "live/cam.m3u8"), "m3u8_url": "live/cam.m3u8", "seq_no": i,
		})
		post(t, "http://"+s.listen+"/api/v1/hls", body)
		wants = append(wants, want{key: name, local: local, data: data})
	}
	// Nothing is uploaded without a worker.
	if _, found, _ := s.store.Stat(context.Background(), wants[0].key); found {
		t.Fatal("object stored with no worker running")
	}

	w1 := s.start("worker")
	deadline := time.Now().Add(30 * time.Second)
	for stored := 0; stored < n/4; {
		stored = 0
		for _, w := range wants {
			if _, err := os.Stat(w.local); err != nil {
				stored++
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("first worker purged only %d files in 30 s\n%s", stored, w1.log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	w1.stop(t)
	left := 0
	for _, w := range wants {
		if _, err := os.Stat(w.local); err == nil {
			left++
		}
	}
	if left == 0 {
		t.Fatal("the first worker finished the whole queue before it was stopped; the test proves nothing")
	}
	t.Logf("stopped the first worker with %d of %d files left", left, n)

	s.start("worker")
	s.settle(wants, 60*time.Second)
	hooks.stop(t)
}

// At start, an unreachable bucket or Redis is an error that names its key, and the process exits.
func TestE2EStartupNamesUnreachable(t *testing.T) {
	root := t.TempDir()
	s := newStack(t, root)
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"bucket", "bucket: " + s.s3.Bucket, "bucket: no-such-bucket", `storage.bucket "no-such-bucket" is not reachable`},
		{"redis", "redis: {addr: " + s.redis.Addr + "}", "redis: {addr: 127.0.0.1:1}", "redis.addr 127.0.0.1:1: not reachable"},
	} {
		b, _ := os.ReadFile(s.config)
		cfg := filepath.Join(s.dir, tc.name+".yaml")
		os.WriteFile(cfg, bytes.Replace(b, []byte(tc.from), []byte(tc.to), 1), 0o644)
		cmd := exec.Command(binary(t), "serve", "-c", cfg)
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%s: serve did not exit", tc.name)
		}
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: err %v, output lacks %q:\n%s", tc.name, err, tc.want, out)
		}
	}
}

// check exits 2 and names every bad key.
func TestE2ECheck(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(cfg, []byte("listen: nope\nroots: [/does/not/exist]\nstorage: {bucket: \"\", part_size: 1MiB}\nkeys: {hls: \"{nope}\"}\nworker: {concurrency: 0}\n"), 0o644)
	out, err := exec.Command(binary(t), "check", "-c", cfg).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("check: err %v, want exit 2\n%s", err, out)
	}
	for _, key := range []string{"listen:", "roots[0]:", "storage.bucket:", "storage.part_size:", "keys.hls:", "worker.concurrency:"} {
		if !strings.Contains(string(out), key) {
			t.Errorf("check output does not name %s\n%s", key, out)
		}
	}
	os.WriteFile(cfg, []byte("storage: {bukket: live}\n"), 0o644)
	out, _ = exec.Command(binary(t), "check", "-c", cfg).CombinedOutput()
	if !strings.Contains(string(out), "storage.bukket: unknown key") {
		t.Errorf("unknown key not named:\n%s", out)
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(fmt.Sprintf("roots: [%q]\n", dir)), 0o644)
	if out, err := exec.Command(binary(t), "check", "-c", good).CombinedOutput(); err != nil {
		t.Fatalf("good config: %v\n%s", err, out)
	}
}

// `srs-offload dev` (what `make run` starts) needs nothing installed: a hook for a real segment
// ends with the segment and its playlist readable over plain HTTP from the embedded S3, as a
// player would read them, and the local segment purged.
func TestE2EDev(t *testing.T) {
	dir := t.TempDir()
	root, store := filepath.Join(dir, "srs"), filepath.Join(dir, "s3")
	listen := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
	s3addr := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
	cfg := filepath.Join(dir, "dev.yaml")
	os.WriteFile(cfg, []byte("listen: "+listen+"\n"), 0o644)

	cmd := exec.Command(binary(t), "dev", "-c", cfg, "--root", root, "--store", store, "--s3", s3addr)
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("dev log:\n%s", stderr.String())
		}
	})
	banner := make(chan string, 1)
	go func() {
		var all strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Play from the local bucket") {
				banner <- all.String()
			}
		}
	}()
	var text string
	select {
	case text = <-banner:
	case <-time.After(20 * time.Second):
		t.Fatalf("no banner from dev\n%s", stderr.String())
	}
	for _, want := range []string{"hls_path        " + root, "on_hls          http://" + listen + "/api/v1/hls", "http://" + s3addr + "/live/live/livestream.m3u8"} {
		if !strings.Contains(text, want) {
			t.Errorf("banner lacks %q:\n%s", want, text)
		}
	}

	seg := filepath.Join(root, "live", "livestream", "20261125", "1795474211734-0.ts")
	m3u8 := filepath.Join(root, "live", "livestream.m3u8")
	data := randomBytes(300_000, 1)
	os.MkdirAll(filepath.Dir(seg), 0o755)
	os.WriteFile(seg, data, 0o644)
	playlist := "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.00,\nlivestream/20261125/1795474211734-0.ts\n"
	os.WriteFile(m3u8, []byte(playlist), 0o644)
	body, _ := json.Marshal(map[string]any{
		"action": "on_hls", "client_id": "x", "vhost": "__defaultVhost__", "app": "live", "stream": "livestream",
		"param": "", "duration": 2.0, "cwd": "/usr/local/srs", "file": seg,
		"url": "live/livestream/20261125/1795474211734-0.ts", "m3u8": m3u8, "m3u8_url": "live/livestream.m3u8", "seq_no": 0,
	})
	post(t, "http://"+listen+"/api/v1/hls", body)

	get := func(path string) (int, []byte, string) {
		resp, err := http.Get("http://" + s3addr + path)
		if err != nil {
			return 0, nil, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, resp.Header.Get("Content-Type")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, b, ct := get("/live/live/livestream.m3u8")
		if code == 200 {
			if string(b) != playlist || ct != "application/vnd.apple.mpegurl" {
				t.Fatalf("playlist %q (%s)", b, ct)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("playlist not readable from the embedded S3: %d\n%s", code, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, b, ct := get("/live/live/livestream/20261125/1795474211734-0.ts")
	if code != 200 || !bytes.Equal(b, data) || ct != "video/mp2t" {
		t.Fatalf("segment: %d, %d bytes, %s", code, len(b), ct)
	}
	if _, err := os.Stat(seg); !os.IsNotExist(err) {
		t.Fatalf("local segment not purged: %v", err)
	}
	if entries, _ := os.ReadDir(store); len(entries) == 0 {
		t.Fatalf("embedded S3 kept nothing under %s", store)
	}
}
