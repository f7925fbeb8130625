package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hibiken/asynq"
	"github.com/srs-offload/srs-offload/internal/hlstest"
	"github.com/srs-offload/srs-offload/internal/loopback"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/uploader"
)

// The end-to-end tests run the built binary against a real redis-server and a real S3 gateway
// (versitygw), and replay the requests SRS 7.0.18 sent (testdata/srs).

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
		out, err := exec.Command("go", "build", "-tags", "dev", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestMain removes the binary built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// stack is redis-server + versitygw + a config for the binary.
type stack struct {
	t      testing.TB
	redis  *redistest.Server
	s3     *s3test.Server
	store  *uploader.Uploader
	dir    string
	listen string
	admin  string // admin.listen: /metrics, /healthz, /readyz
	// adminToken is admin.token, when a test sets one.
	adminToken string
	config     string
}

func newStack(t testing.TB, roots ...string) *stack {
	t.Helper()
	return newStackOn(t, "", roots...)
}

// newStackOn is newStack with the config's redis block given (e.g. "redis:\n  sentinel: …");
// "" starts a plain redis-server for it.
func newStackOn(t testing.TB, redisYAML string, roots ...string) *stack {
	t.Helper()
	s := &stack{t: t, s3: s3test.Versity(t), dir: t.TempDir()}
	if redisYAML == "" {
		s.redis = redistest.Start(t)
		redisYAML = fmt.Sprintf("redis: {addr: %s}", s.redis.Addr)
	}
	s.store = s.s3.Uploader(t, nil)
	s.listen = fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	s.admin = fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	quoted := make([]string, len(roots))
	for i, r := range roots {
		quoted[i] = fmt.Sprintf("%q", r)
	}
	cfg := fmt.Sprintf(`
listen: %s
admin: {listen: %s}
node: e2e
log: {level: debug}
%s
roots: [%s]
storage:
  endpoint: %s
  bucket: %s
  access_key: ${E2E_AK}
  secret_key: ${E2E_SK}
  multipart_threshold: 5MiB
  part_size: 5MiB
worker: {concurrency: 4, retry_base: 100ms, retry_max: 1s, poll_interval: 10ms, shutdown_timeout: 10s}
`, s.listen, s.admin, redisYAML, strings.Join(quoted, ", "), s.s3.Endpoint, s.s3.Bucket)
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

// start runs a subcommand and waits until it serves /metrics on its admin listener. A worker
// gets a copy of the config with its own admin address, so it can run beside a hooks process.
func (s *stack) start(sub string) *proc {
	s.t.Helper()
	config, listen := s.config, s.admin
	if sub == "worker" {
		listen = fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(s.t))
		b, err := os.ReadFile(s.config)
		if err != nil {
			s.t.Fatal(err)
		}
		config = filepath.Join(s.dir, fmt.Sprintf("worker-%s.yaml", strings.ReplaceAll(listen, ":", "-")))
		os.WriteFile(config, bytes.Replace(b, []byte("admin: {listen: "+s.admin+"}"), []byte("admin: {listen: "+listen+"}"), 1), 0o644)
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
	f, err := os.Open(filepath.Join("..", "..", "testdata", "srs", name))
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

// writeSegment writes a finished file as SRS does (<name>.tmp, then a rename), making its folder.
// srs-offload prunes a folder its purge leaves empty; SRS always has its next .tmp open in it, a
// test writing one file at a time does not, so the folder is made again when it vanished between
// the mkdir and the write.
func writeSegment(t testing.TB, p string, data []byte) {
	t.Helper()
	var err error
	for range 10 {
		if err = os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			continue
		}
		if err = os.WriteFile(p+".tmp", data, 0o644); err != nil {
			continue
		}
		if err = os.Rename(p+".tmp", p); err == nil {
			return
		}
	}
	t.Fatalf("write %s: %v", p, err)
}

// want is a file that must end up in storage, byte for byte, and be purged locally.
type want struct {
	key, local string
	data       []byte
}

// seg is a segment a playlist in storage must list: its object key and EXTINF duration.
type seg struct {
	key string
	dur float64
}

// session is what a replay expects of one publish session of one stream: its live playlist,
// every segment in hook order, and (once on_unpublish came) a VoD playlist under app/stream/vod/.
type session struct {
	app, stream, client string
	playlist            string // the live playlist's key (m3u8_url)
	m3u8                string // SRS's playlist on disk, which srs-offload never deletes
	segs                []seg
	ended               bool
}

// replayed is what a replay sent.
type replayed struct {
	files    []want
	sessions []*session
}

// replay rewrites a fixture's paths into dir, creates real files for every on_hls/on_dvr, and
// sends every request to the binary in order.
func (s *stack) replay(fixtures []fixture, rewrite func(string) string, cwd string) replayed {
	s.t.Helper()
	var out replayed
	sessionOf := func(body map[string]any) *session {
		for _, ss := range out.sessions {
			if ss.app == body["app"] && ss.stream == body["stream"] && ss.client == body["client_id"] {
				return ss
			}
		}
		return nil
	}
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
			writeSegment(s.t, local, data)
			out.files = append(out.files, want{key: key, local: local, data: data})
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
				ss := sessionOf(body)
				if ss == nil {
					ss = &session{app: body["app"].(string), stream: body["stream"].(string), client: body["client_id"].(string),
						playlist: body["m3u8_url"].(string), m3u8: m3u8}
					out.sessions = append(out.sessions, ss)
				}
				ss.segs = append(ss.segs, seg{key: key, dur: body["duration"].(float64)})
			}
		}
		if body["action"] == "on_unpublish" {
			if ss := sessionOf(body); ss != nil {
				ss.ended = true
			}
		}
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		post(s.t, url, b)
	}
	return out
}

// settle waits until every want is in storage byte for byte and its local file is gone.
func (s *stack) settle(wants []want, timeout time.Duration) {
	s.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for _, w := range wants {
		for {
			got, err := s.store.Get(ctx, w.key)
			_, statErr := os.Stat(w.local)
			if err == nil && bytes.Equal(got, w.data) && os.IsNotExist(statErr) {
				break
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("%s: stored=%v (%d bytes, want %d) local exists=%v", w.key, err == nil, len(got), len(w.data), statErr == nil)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
}

// bucket reads what srs-offload wrote: through the S3 API (versitygw) or as a player would, over
// plain HTTP (the dev server's embedded S3).
type bucket interface {
	get(key string) (body []byte, contentType string, found bool, err error)
	list(prefix string) ([]string, error)
}

type s3Bucket struct{ store *uploader.Uploader }

func (b s3Bucket) get(key string) ([]byte, string, bool, error) {
	out, err := b.store.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(b.store.Bucket()), Key: aws.String(b.store.Key(key))})
	if err != nil {
		var nsk *s3types.NoSuchKey
		if errors.As(err, &nsk) {
			return nil, "", false, nil
		}
		return nil, "", false, err
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	return body, aws.ToString(out.ContentType), err == nil, err
}

func (b s3Bucket) list(prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(b.store.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(b.store.Bucket()), Prefix: aws.String(b.store.Key(prefix))})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			keys = append(keys, strings.TrimPrefix(aws.ToString(o.Key), b.store.Key("")))
		}
	}
	return keys, nil
}

// httpBucket is a bucket served anonymously over HTTP, path-style: base is http://host/bucket.
type httpBucket struct{ base string }

func (b httpBucket) get(key string) ([]byte, string, bool, error) {
	resp, err := http.Get(b.base + "/" + key)
	if err != nil {
		return nil, "", false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return nil, "", false, err
	case resp.StatusCode == http.StatusNotFound:
		return nil, "", false, nil
	case resp.StatusCode != http.StatusOK:
		return nil, "", false, fmt.Errorf("GET %s: %d %s", key, resp.StatusCode, body)
	}
	return body, resp.Header.Get("Content-Type"), true, nil
}

func (b httpBucket) list(prefix string) ([]string, error) {
	resp, err := http.Get(b.base + "?list-type=2&prefix=" + neturl.QueryEscape(prefix))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list %s: %d %s", prefix, resp.StatusCode, body)
	}
	var res struct {
		Contents []struct{ Key string }
	}
	if err := xml.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("list %s: %v", prefix, err)
	}
	var keys []string
	for _, c := range res.Contents {
		keys = append(keys, c.Key)
	}
	return keys, nil
}

// storedIn is hlstest's stored function for a bucket.
func storedIn(t testing.TB, b bucket) func(string) bool {
	return func(key string) bool {
		_, _, found, err := b.get(key)
		if err != nil {
			t.Errorf("get %s: %v", key, err)
		}
		return found
	}
}

// liveWindow is the part of a stream's segments its live playlist holds: the newest segments
// whose durations, leaving out the oldest of them, add up to less than the window.
func liveWindow(segs []seg, window float64) []seg {
	i, sum := len(segs)-1, 0.0
	for i > 0 && sum+segs[i].dur < window {
		sum += segs[i].dur
		i--
	}
	return segs[i:]
}

// sameSegs reports how a playlist's segments differ from the expected ones ("" when they match).
func sameSegs(p *hlstest.Playlist, want []seg) string {
	got := make([]string, len(p.Segments))
	for i, s := range p.Segments {
		got[i] = fmt.Sprintf("%s %.3f", s.Key, s.Duration)
	}
	exp := make([]string, len(want))
	for i, s := range want {
		exp[i] = fmt.Sprintf("%s %.3f", s.key, s.dur)
	}
	if slices.Equal(got, exp) {
		return ""
	}
	return fmt.Sprintf("lists\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(exp, "\n  "))
}

// waitLive polls the live playlist at key until it lists want. Every version seen on the way must
// be valid HLS, name only segments already in storage, and follow the one before.
func waitLive(t testing.TB, b bucket, key string, want []seg, timeout time.Duration) *hlstest.Playlist {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var prev *hlstest.Playlist
	var last []byte
	for {
		body, ct, found, err := b.get(key)
		if err != nil {
			t.Fatalf("live playlist %s: %v", key, err)
		}
		if found && !bytes.Equal(body, last) {
			last = body
			if ct != "application/vnd.apple.mpegurl" {
				t.Fatalf("live playlist %s: content type %q", key, ct)
			}
			p, err := hlstest.Parse(key, body)
			if err != nil {
				t.Fatalf("live playlist %s does not parse: %v\n%s", key, err, body)
			}
			if err := p.Check(storedIn(t, b)); err != nil {
				t.Fatalf("live playlist %s: %v\n%s", key, err, body)
			}
			if prev != nil {
				if err := p.Follows(prev); err != nil {
					t.Fatalf("live playlist %s: %v\n%s", key, err, body)
				}
			}
			if p.Type == "VOD" {
				t.Fatalf("live playlist %s is a VoD playlist\n%s", key, body)
			}
			prev = p
			if sameSegs(p, want) == "" {
				return p
			}
		}
		if time.Now().After(deadline) {
			if prev == nil {
				t.Fatalf("live playlist %s never stored", key)
			}
			t.Fatalf("live playlist %s %s\n%s", key, sameSegs(prev, want), last)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitVOD waits for the one VoD playlist under prefix, and checks it holds every segment of the
// session, in order, as a finished VoD playlist. It returns its key.
func waitVOD(t testing.TB, b bucket, prefix string, want []seg, timeout time.Duration) (string, *hlstest.Playlist) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var keys []string
	for {
		var err error
		if keys, err = b.list(prefix); err != nil {
			t.Fatal(err)
		}
		if len(keys) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(keys) != 1 || !strings.HasSuffix(keys[0], ".m3u8") {
		t.Fatalf("under %s: %q, want one VoD playlist", prefix, keys)
	}
	key := keys[0]
	body, ct, found, err := b.get(key)
	if err != nil || !found || ct != "application/vnd.apple.mpegurl" {
		t.Fatalf("VoD playlist %s: found %v, content type %q, %v", key, found, ct, err)
	}
	p, err := hlstest.Parse(key, body)
	if err != nil {
		t.Fatalf("VoD playlist %s does not parse: %v\n%s", key, err, body)
	}
	if err := p.Check(storedIn(t, b)); err != nil {
		t.Fatalf("VoD playlist %s: %v\n%s", key, err, body)
	}
	if p.Type != "VOD" || !p.Ended {
		t.Fatalf("VoD playlist %s: type %q, ended %v\n%s", key, p.Type, p.Ended, body)
	}
	if d := sameSegs(p, want); d != "" {
		t.Fatalf("VoD playlist %s %s\n%s", key, d, body)
	}
	for _, s := range p.Segments {
		if s.Disc {
			t.Fatalf("VoD playlist %s: discontinuity before %s, though no segment is missing\n%s", key, s.URI, body)
		}
	}
	return key, p
}

// checkPlaylists checks the live and VoD playlists of every replayed session.
func checkPlaylists(t testing.TB, b bucket, r replayed, timeout time.Duration) {
	t.Helper()
	for _, ss := range r.sessions {
		waitLive(t, b, ss.playlist, liveWindow(ss.segs, 60), timeout)
		if ss.ended {
			waitVOD(t, b, ss.app+"/"+ss.stream+"/vod/", ss.segs, timeout)
		}
		if _, err := os.Stat(ss.m3u8); err != nil {
			t.Errorf("SRS's playlist on disk: %v", err)
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
	if len(abs.files) < 10 || len(rel.files) < 5 || len(abs.sessions) != 1 || len(rel.sessions) != 1 {
		t.Fatalf("fixtures gave only %d + %d files, %d + %d HLS sessions", len(abs.files), len(rel.files), len(abs.sessions), len(rel.sessions))
	}
	for _, r := range []replayed{abs, rel} {
		if !r.sessions[0].ended {
			t.Fatalf("fixture session of %s has no on_unpublish", r.sessions[0].stream)
		}
	}
	s.settle(append(abs.files, rel.files...), 60*time.Second)
	checkPlaylists(t, s3Bucket{s.store}, abs, 30*time.Second)
	checkPlaylists(t, s3Bucket{s.store}, rel, 30*time.Second)

	// Date folders emptied by purged segments stay while serve runs (its reconciler prunes a
	// folder once it has stayed empty for minutes: the next segment finds it), and are gone once
	// serve has stopped; the roots, playlist folders and the spool folder (kept so that its name
	// is never free for a symlink) stay.
	empty := func() []string {
		var out []string
		filepath.Walk(relRoot, func(path string, fi os.FileInfo, err error) error {
			if err == nil && fi.IsDir() && path != relRoot && path != filepath.Join(relRoot, ".srs-offload") {
				entries, _ := os.ReadDir(path)
				if len(entries) == 0 {
					out = append(out, path)
				}
			}
			return nil
		})
		return out
	}
	if len(empty()) == 0 {
		t.Error("no emptied folder left while serve runs: purges still prune at once")
	}
	p.stop(t)
	for _, path := range empty() {
		t.Errorf("empty folder left behind: %s", path)
	}
	for _, r := range []string{absRoot, relRoot} {
		if _, err := os.Stat(r); err != nil {
			t.Errorf("root %s removed: %v", r, err)
		}
	}
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

// At start, an unreachable bucket (serve) or Redis (a worker) is an error that names its key, and
// the process exits. (A process with the receiver starts without Redis: TestE2EHooksStartWithRedisDown.)
func TestE2EStartupNamesUnreachable(t *testing.T) {
	root := t.TempDir()
	s := newStack(t, root)
	for _, tc := range []struct {
		name, sub, from, to, want string
	}{
		{"bucket", "serve", "bucket: " + s.s3.Bucket, "bucket: no-such-bucket", `storage.bucket "no-such-bucket" is not reachable`},
		{"redis", "worker", "redis: {addr: " + s.redis.Addr + "}", "redis: {addr: 127.0.0.1:1}", "redis.addr 127.0.0.1:1: not reachable"},
	} {
		b, _ := os.ReadFile(s.config)
		cfg := filepath.Join(s.dir, tc.name+".yaml")
		os.WriteFile(cfg, bytes.Replace(b, []byte(tc.from), []byte(tc.to), 1), 0o644)
		cmd := exec.Command(binary(t), tc.sub, "-c", cfg)
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%s: %s did not exit", tc.name, tc.sub)
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

// devServer is a running `srs-offload dev`: hooks on listen, an embedded S3 on s3addr serving
// the bucket anonymously over plain HTTP, SRS's files under root.
type devServer struct {
	listen, s3addr, root, store string
	admin                       string // admin.listen
	banner                      string
	bucket                      httpBucket
	stderr                      *syncBuffer
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDev runs `srs-offload dev` with a config holding extra (YAML) besides listen, and waits
// for its banner. It is stopped (SIGTERM, then kill) when the test ends.
func startDev(t testing.TB, extra string) *devServer {
	t.Helper()
	return startDevAt(t, extra, fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t)))
}

// startDevAt is startDev with the embedded S3 on s3addr (for an edge started in front of it first).
func startDevAt(t testing.TB, extra, s3addr string) *devServer {
	t.Helper()
	dir := t.TempDir()
	d := &devServer{
		root: filepath.Join(dir, "srs"), store: filepath.Join(dir, "s3"),
		listen: fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t)),
		s3addr: s3addr,
		stderr: &syncBuffer{},
	}
	d.bucket = httpBucket{base: "http://" + d.s3addr + "/live"}
	cfg := filepath.Join(dir, "dev.yaml")
	d.admin = fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	os.WriteFile(cfg, []byte("listen: "+d.listen+"\nadmin: {listen: "+d.admin+"}\n"+extra), 0o644)

	cmd := exec.Command(binary(t), "dev", "-c", cfg, "--root", d.root, "--store", d.store, "--s3", d.s3addr)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("srs-offload dev did not exit 15 s after SIGTERM")
		}
		if t.Failed() {
			t.Logf("dev log:\n%s", d.stderr.String())
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
	select {
	case d.banner = <-banner:
	case <-exited:
		t.Fatalf("srs-offload dev exited:\n%s", d.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("no banner from dev\n%s", d.stderr.String())
	}
	return d
}

// `srs-offload dev` (what `make run` starts) needs nothing installed: a hook for a real segment
// ends with the segment and a playlist srs-offload wrote readable over plain HTTP from the
// embedded S3, as a player would read them, and the local segment purged.
func TestE2EDev(t *testing.T) {
	d := startDev(t, "")
	root, listen, s3addr := d.root, d.listen, d.s3addr
	for _, want := range []string{"hls_path        " + root, "on_hls          http://" + listen + "/api/v1/hls", "http://" + s3addr + "/live/live/livestream.m3u8"} {
		if !strings.Contains(d.banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, d.banner)
		}
	}

	segPath := filepath.Join(root, "live", "livestream", "20261125", "1795474211734-0.ts")
	m3u8 := filepath.Join(root, "live", "livestream.m3u8")
	data := randomBytes(300_000, 1)
	os.MkdirAll(filepath.Dir(segPath), 0o755)
	os.WriteFile(segPath, data, 0o644)
	// SRS's own playlist on disk; srs-offload does not copy it.
	os.WriteFile(m3u8, []byte("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.00,\nlivestream/20261125/1795474211734-0.ts\n"), 0o644)
	body, _ := json.Marshal(map[string]any{
		"action": "on_hls", "client_id": "x", "vhost": "__defaultVhost__", "app": "live", "stream": "livestream",
		"param": "", "duration": 2.0, "cwd": "/usr/local/srs", "file": segPath,
		"url": "live/livestream/20261125/1795474211734-0.ts", "m3u8": m3u8, "m3u8_url": "live/livestream.m3u8", "seq_no": 0,
	})
	post(t, "http://"+listen+"/api/v1/hls", body)

	// Readable over plain HTTP (waitLive checks the content type), valid, naming the segment.
	p := waitLive(t, d.bucket, "live/livestream.m3u8", []seg{{"live/livestream/20261125/1795474211734-0.ts", 2}}, 15*time.Second)
	if p.Segments[0].URI != "livestream/20261125/1795474211734-0.ts" {
		t.Errorf("segment URI %q, want it relative to the playlist", p.Segments[0].URI)
	}
	b, ct, found, err := d.bucket.get("live/livestream/20261125/1795474211734-0.ts")
	if err != nil || !found || !bytes.Equal(b, data) || ct != "video/mp2t" {
		t.Fatalf("segment: found %v, %d bytes, %s, %v", found, len(b), ct, err)
	}
	if _, err := os.Stat(segPath); !os.IsNotExist(err) {
		t.Fatalf("local segment not purged: %v", err)
	}
	if _, err := os.Stat(m3u8); err != nil {
		t.Fatalf("SRS's playlist on disk: %v", err)
	}
	if entries, _ := os.ReadDir(d.store); len(entries) == 0 {
		t.Fatalf("embedded S3 kept nothing under %s", d.store)
	}
	// The web UI (read-only by default) reads the embedded Redis: the segment's task completes
	// (it may still be active a moment after the segment is purged).
	done := regexp.MustCompile(`"queue":"hls@[^"]+"[^}]*"completed":1\b`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + d.admin + "/monitor/api/queues")
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && done.Match(b) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web UI's queues: %d %.1000s, want hls@<node> with 1 completed within 10 s", resp.StatusCode, b)
		}
	}
}

// `srs-offload requeue` puts archived (failed-for-good) tasks back: a worker then offloads them.
func TestE2ERequeue(t *testing.T) {
	root := filepath.Join(t.TempDir(), "hls")
	os.MkdirAll(filepath.Join(root, "live"), 0o755)
	s := newStack(t, root)
	hooks := s.start("hooks")
	local := filepath.Join(root, "live", "r-0.ts")
	data := randomBytes(10_000, 3)
	os.WriteFile(local, data, 0o644)
	body, _ := json.Marshal(map[string]any{"action": "on_hls", "client_id": "c", "vhost": "__defaultVhost__", "app": "live",
		"stream": "r", "cwd": "/", "file": local, "url": "live/r-0.ts", "m3u8": filepath.Join(root, "live", "r.m3u8"),
		"m3u8_url": "live/r.m3u8", "seq_no": 0, "duration": 2.0})
	post(t, "http://"+s.listen+"/api/v1/hls", body)
	// Archive it, as retries running out would.
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: s.redis.Addr})
	defer insp.Close()
	pending, err := insp.ListPendingTasks("hls@e2e")
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending %v %v", pending, err)
	}
	if err := insp.ArchiveTask("hls@e2e", pending[0].ID); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary(t), "requeue", "-c", s.config).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hls@e2e: 1 archived tasks back in the queue") {
		t.Fatalf("requeue: %v\n%s", err, out)
	}
	s.start("worker")
	s.settle([]want{{key: "live/r-0.ts", local: local, data: data}}, 20*time.Second)
	hooks.stop(t)
}
