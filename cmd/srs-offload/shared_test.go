package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/internal/loopback"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/internal/s3test"
)

// s3Log is a counting proxy in front of the S3 server: for every object key, how many PUT
// requests (whole objects or parts) reached storage, and when storage first answered one with
// success.
type s3Log struct {
	mu     sync.Mutex
	puts   map[string]int
	stored map[string]time.Time
	bucket string
	// hold delays every PUT of a segment, so a backlog builds up.
	hold time.Duration
}

func (l *s3Log) key(r *http.Request) (string, bool) {
	k, ok := strings.CutPrefix(r.URL.Path, "/"+l.bucket+"/")
	return k, ok && k != ""
}

func (l *s3Log) proxy(t *testing.T, endpoint string) string {
	u, err := neturl.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	// Storage's answer is logged before srs-offload receives it: a file deleted after its
	// verified upload is deleted after this time.
	rp.ModifyResponse = func(resp *http.Response) error {
		if k, ok := l.key(resp.Request); ok && resp.Request.Method == http.MethodPut && resp.StatusCode/100 == 2 {
			l.mu.Lock()
			if _, seen := l.stored[k]; !seen {
				l.stored[k] = time.Now()
			}
			l.mu.Unlock()
		}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k, ok := l.key(r); ok && r.Method == http.MethodPut {
			l.mu.Lock()
			l.puts[k]++
			l.mu.Unlock()
			if strings.HasSuffix(k, ".ts") {
				time.Sleep(l.hold)
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// removals records when each file in a folder was removed (fsnotify), by path.
type removals struct {
	mu sync.Mutex
	at map[string]time.Time
}

func watchFolder(t *testing.T, dir string) *removals {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(dir); err != nil {
		t.Fatal(err)
	}
	rm := &removals{at: map[string]time.Time{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
					rm.mu.Lock()
					if _, seen := rm.at[ev.Name]; !seen {
						rm.at[ev.Name] = time.Now()
					}
					rm.mu.Unlock()
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	t.Cleanup(func() { w.Close(); <-done })
	return rm
}

// sharedProc is one srs-offload process of the shared-volume test.
type sharedProc struct {
	name string
	cmd  *exec.Cmd
	done chan error
	log  *lockedLog
}

type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startShared runs `srs-offload sub` with a config and waits for its admin listener.
func startShared(t *testing.T, name, sub, config, admin string) *sharedProc {
	t.Helper()
	p := &sharedProc{name: name, cmd: exec.Command(binary(t), sub, "-c", config), done: make(chan error, 1), log: &lockedLog{}}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s (%s) log:\n%s", name, sub, lastLinesOf(p.log.String(), 80))
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err == nil {
			resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s:\n%s", name, admin, p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lastLinesOf(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Three SRS hosts write to one shared volume, each mounting it at its own path and running its
// own `hooks` process (its node name, its reconciler scanning the whole volume every second, its
// spool folder); two `worker` processes of other hosts drain the volume's queues
// (queue.scope shared:vol). SRS's hls_cleanup deletes old segments of the window meanwhile, so
// some are uploaded from a host's spooled link. Every segment is stored exactly once (PUTs per
// key, counted by a proxy in front of versitygw), byte for byte, its file removed only after
// storage accepted its upload, nothing is left in the volume (neither SRS's names nor any host's
// spooled links), both workers uploaded, and each stream's VoD playlist lists all its segments
// although different workers stored them.
func TestE2ESharedVolume(t *testing.T) {
	binary(t) // built before the clock of any wait starts
	rds := redistest.Start(t)
	s3 := s3test.Versity(t)
	store := s3.Uploader(t, nil)
	log := &s3Log{puts: map[string]int{}, stored: map[string]time.Time{}, bucket: s3.Bucket, hold: 300 * time.Millisecond}
	endpoint := log.proxy(t, s3.Endpoint)
	t.Setenv("E2E_AK", s3.AccessKey)
	t.Setenv("E2E_SK", s3.SecretKey)

	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	vol := filepath.Join(base, "vol")
	if err := os.MkdirAll(filepath.Join(vol, "live"), 0o755); err != nil {
		t.Fatal(err)
	}
	config := func(name, node, root, listen, admin string) string {
		cfg := fmt.Sprintf(`
listen: %s
admin: {listen: %s}
node: %s
log: {level: debug}
redis: {addr: %s}
queue: {scope: "shared:vol"}
roots: [%q]
storage:
  endpoint: %s
  bucket: %s
  access_key: ${E2E_AK}
  secret_key: ${E2E_SK}
reconcile: {min_age: 1s, interval: 1s}
playlist: {stall: 1h, vod_wait: 1m}
worker: {concurrency: 2, retry_base: 100ms, retry_max: 1s, poll_interval: 10ms, shutdown_timeout: 10s}
`, listen, admin, node, rds.Addr, root, endpoint, s3.Bucket)
		p := filepath.Join(base, name+".yaml")
		if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	free := func() string { return fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t)) }

	// The SRS hosts: each mounts the volume at a path of its own (a symlink here) and runs hooks.
	type srsHost struct {
		node, mount, listen string
		proc                *sharedProc
	}
	var hosts []*srsHost
	for i := 1; i <= 3; i++ {
		h := &srsHost{node: fmt.Sprintf("srs%d", i), mount: filepath.Join(base, fmt.Sprintf("srs%d-mnt", i)), listen: free()}
		if err := os.Symlink(vol, h.mount); err != nil {
			t.Fatal(err)
		}
		admin := free()
		h.proc = startShared(t, h.node, "hooks", config(h.node, h.node, h.mount, h.listen, admin), admin)
		hosts = append(hosts, h)
	}
	var workers []*sharedProc
	for i := 1; i <= 2; i++ {
		name, admin := fmt.Sprintf("w%d", i), free()
		workers = append(workers, startShared(t, name, "worker", config(name, name, vol, free(), admin), admin))
	}
	rm := watchFolder(t, filepath.Join(vol, "live"))

	// Each host publishes one stream: 12 segments, one every 100 ms, SRS's playlist on disk
	// listing them; its hls_cleanup deletes the segments that left a 4-segment window.
	const segs, window = 12, 4
	type file struct {
		key, path  string
		data       []byte
		srsRemoved bool
	}
	var (
		mu    sync.Mutex
		files []*file
		wants = map[string][]seg{}
	)
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("cam%d", i+1)
			m3u8 := filepath.Join(h.mount, "live", stream+".m3u8")
			var mine []*file
			for n := range segs {
				rel := fmt.Sprintf("live/%s-%d.ts", stream, n)
				f := &file{key: rel, path: filepath.Join(vol, rel), data: randomBytes(100_000+1000*i+n, uint64(100*i+n))}
				writeSegment(t, filepath.Join(h.mount, rel), f.data)
				var pl strings.Builder
				first := max(0, n-window+1)
				fmt.Fprintf(&pl, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:%d\n", first)
				for k := first; k <= n; k++ {
					fmt.Fprintf(&pl, "#EXTINF:2.000, no desc\n%s-%d.ts\n", stream, k)
				}
				os.WriteFile(m3u8+".temp", []byte(pl.String()), 0o644)
				os.Rename(m3u8+".temp", m3u8)
				resp, err := http.Post("http://"+h.listen+"/api/v1/hls", "application/json",
					bytes.NewReader(srsHook("c"+h.node, stream, h.mount, "./"+rel, rel, "./live/"+stream+".m3u8", int64(n), 2)))
				if err != nil {
					t.Errorf("%s: hook %s: %v", h.node, rel, err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != `{"code":0}` {
					t.Errorf("%s: hook %s: %d %s", h.node, rel, resp.StatusCode, b)
					return
				}
				mine = append(mine, f)
				if old := n - window; old >= 0 {
					// hls_cleanup: SRS deletes its name, whatever srs-offload did.
					if os.Remove(mine[old].path) == nil {
						mine[old].srsRemoved = true
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			unpub, _ := json.Marshal(map[string]any{"action": "on_unpublish", "client_id": "c" + h.node, "vhost": "__defaultVhost__", "app": "live", "stream": stream})
			resp, err := http.Post("http://"+h.listen+"/api/v1/streams", "application/json", bytes.NewReader(unpub))
			if err != nil {
				t.Errorf("%s: on_unpublish: %v", h.node, err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			files = append(files, mine...)
			for _, f := range mine {
				wants[stream] = append(wants[stream], seg{key: f.key, dur: 2})
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Every segment stored, byte for byte, and gone from the volume.
	b := s3Bucket{store}
	deadline := time.Now().Add(90 * time.Second)
	for _, f := range files {
		for {
			got, _, found, err := b.get(f.key)
			_, statErr := os.Lstat(f.path)
			if err == nil && found && bytes.Equal(got, f.data) && os.IsNotExist(statErr) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: stored %v (%d bytes, want %d, err %v), local file still there: %v", f.key, found, len(got), len(f.data), err, statErr == nil)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	for stream, want := range wants {
		waitVOD(t, b, "live/"+stream+"/vod/", want, 60*time.Second)
	}
	// Reconcilers scanning every second had time to enqueue again what they should not have.
	time.Sleep(3 * time.Second)

	log.mu.Lock()
	fromSpool := 0
	for _, f := range files {
		if n := log.puts[f.key]; n != 1 {
			t.Errorf("%s: %d PUTs, want exactly 1", f.key, n)
		}
		if f.srsRemoved {
			fromSpool++
			continue
		}
		rm.mu.Lock()
		gone, ok := rm.at[f.path]
		rm.mu.Unlock()
		if !ok {
			t.Errorf("%s: its removal was not seen", f.path)
		} else if stored := log.stored[f.key]; stored.IsZero() || !gone.After(stored) {
			t.Errorf("%s: removed at %s, before storage accepted its upload (%s)", f.path, gone.Format(time.StampMicro), stored.Format(time.StampMicro))
		}
	}
	log.mu.Unlock()
	// Nothing left on the volume but SRS's playlists: no segment, no host's spooled link.
	var left []string
	filepath.WalkDir(vol, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".m3u8") {
			left = append(left, strings.TrimPrefix(p, vol+"/"))
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("left on the shared volume: %q", left)
	}
	for _, w := range workers {
		w.cmd.Process.Signal(os.Interrupt)
	}
	took := map[string]int{}
	for _, w := range workers {
		select {
		case <-w.done:
			w.done <- nil
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not stop", w.name)
		}
		took[w.name] = strings.Count(w.log.String(), "offload: stored and verified")
	}
	// The VoD playlists above are complete although their segments were stored by both workers.
	for stream := range wants {
		for _, w := range workers {
			n := 0
			for _, line := range strings.Split(w.log.String(), "\n") {
				if strings.Contains(line, "offload: stored and verified") && strings.Contains(line, "/live/"+stream+"-") {
					n++
				}
			}
			if n == 0 {
				t.Logf("%s stored no segment of %s: its playlists were not put to the test of two workers", w.name, stream)
			}
		}
	}
	// No task failed for good (a second task of a stored file under another id would: it finds
	// the file gone and storage holding no upload of its own).
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: rds.Addr})
	defer insp.Close()
	for _, q := range []string{"hls@shared:vol", "dvr@shared:vol"} {
		archived, err := insp.ListArchivedTasks(q)
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			t.Fatal(err)
		}
		for _, ti := range archived {
			t.Errorf("task %s failed for good on %s: %s", ti.ID, q, ti.LastErr)
		}
	}
	for _, w := range workers {
		if n := strings.Count(w.log.String(), "giving up"); n > 0 {
			t.Errorf("%s gave up %d tasks", w.name, n)
		}
	}
	reconciled := 0
	for _, h := range hosts {
		reconciled += strings.Count(h.proc.log.String(), "reconcile: enqueued a file whose hook never came")
	}
	t.Logf("%d segments of 3 hosts, %d uploaded from a spooled link after SRS's cleanup; uploads per worker: %v; tasks a reconciler made: %d",
		len(files), fromSpool, took, reconciled)
	for name, n := range took {
		if n == 0 {
			t.Errorf("worker %s uploaded nothing: the shared queues were not shared", name)
		}
	}
	if fromSpool == 0 {
		t.Errorf("SRS's cleanup removed no segment before its upload: the spooled links were not put to use")
	}
	if took["w1"]+took["w2"] != len(files) {
		t.Errorf("workers uploaded %d files, want %d (each once)", took["w1"]+took["w2"], len(files))
	}
}
