package worker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/internal/hlstest"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/uploader"
	"github.com/srs-offload/srs-offload/worker"
)

const node = "test"

// rig is one node: a real redis-server, an S3 API, a root folder, an Offloader, a queue client,
// the playlist manager (its ledger on the same redis-server) and an inspector. Workers are started
// with start.
type rig struct {
	t        *testing.T
	redis    *redistest.Server
	redisOpt asynq.RedisClientOpt
	s3       *s3test.Server
	up       *uploader.Uploader
	root     string
	off      *worker.Offloader
	client   *queue.Client
	insp     *asynq.Inspector
	log      *slog.Logger
	opts     worker.Options
	rdb      *redis.Client
	pm       *playlist.Manager
	seqs     map[string]int64 // the next seq_no of each playlist, as SRS numbers segments
}

type rigConfig struct {
	s3      *s3test.Server // nil: a plain gofakes3
	noPurge bool
	upload  func(*uploader.Config)
	stall   time.Duration // playlist.Settings.Stall; 0: a minute
}

// vodTemplate names the VoD playlists of every test.
const vodTemplate = "{app}/{stream}/vod/{session}.m3u8"

// newManager is the playlist manager a worker (or the hook) of the rig would build.
func newManager(t testing.TB, rdb redis.UniversalClient, store playlist.Store, s playlist.Settings) *playlist.Manager {
	t.Helper()
	vod, err := objkey.Parse(vodTemplate)
	if err != nil {
		t.Fatal(err)
	}
	return &playlist.Manager{Ledger: playlist.New(rdb, s), Store: store, VODKey: &vod, Node: node}
}

func newRig(t *testing.T, c rigConfig) *rig {
	t.Helper()
	r := &rig{t: t}
	r.log = testLogger(t)
	r.redis = redistest.Start(t)
	r.redisOpt = asynq.RedisClientOpt{Addr: r.redis.Addr}
	r.s3 = c.s3
	if r.s3 == nil {
		r.s3 = s3test.Fake(t, nil)
	}
	r.up = r.s3.Uploader(t, c.upload)
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r.root = root
	set, err := roots.New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	r.rdb = redis.NewClient(&redis.Options{Addr: r.redis.Addr})
	t.Cleanup(func() { r.rdb.Close() })
	stall := c.stall
	if stall <= 0 {
		stall = time.Minute
	}
	r.pm = newManager(t, r.rdb, r.up, playlist.Settings{Window: time.Minute, Stall: stall, Retain: time.Hour})
	r.pm.Log = r.log
	r.seqs = map[string]int64{}
	r.off = &worker.Offloader{Roots: set, Store: r.up, Purge: !c.noPurge, Log: r.log, Playlists: r.pm}
	r.client = queue.NewClient(r.redisOpt, queue.Options{Node: node, MaxRetry: 10, Timeout: time.Minute, Dedup: time.Hour})
	t.Cleanup(func() { r.client.Close() })
	r.insp = asynq.NewInspector(r.redisOpt)
	t.Cleanup(func() { r.insp.Close() })
	r.opts = worker.Options{
		Node: node, Concurrency: 4, RetryBase: 100 * time.Millisecond, RetryMax: time.Second,
		ShutdownTimeout: 5 * time.Second, PollInterval: 10 * time.Millisecond, Log: r.log,
		Ender: r.pm,
	}
	return r
}

// start starts a worker server; it is shut down when the test ends, or earlier by the returned
// function (which may be called more than once).
func (r *rig) start(concurrency int) (shutdown func()) {
	r.t.Helper()
	o := r.opts
	if concurrency > 0 {
		o.Concurrency = concurrency
	}
	srv := worker.NewServer(r.redisOpt, o, r.off)
	if err := srv.Start(); err != nil {
		r.t.Fatalf("worker start: %v", err)
	}
	var once sync.Once
	shutdown = func() { once.Do(func() { srv.Shutdown(context.Background()) }) }
	r.t.Cleanup(shutdown)
	return shutdown
}

// testLogger logs to t.Log while the test runs and drops whatever asynq's goroutines say after.
func testLogger(t *testing.T) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *tWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

// writeRandom writes size random bytes at root/rel (making its folders) and returns them.
func (r *rig) writeRandom(rel string, size int) []byte {
	r.t.Helper()
	b := make([]byte, size)
	rnd := rand.New(rand.NewPCG(rand.Uint64(), uint64(size)))
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	r.write(rel, b)
	return b
}

func (r *rig) write(rel string, b []byte) string {
	r.t.Helper()
	p := filepath.Join(r.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		r.t.Fatal(err)
	}
	return p
}

// payload builds a task as the hook does: the resolved path, the key, and the file's identity now.
func (r *rig) payload(kind, rel, key string) queue.Offload {
	r.t.Helper()
	p := filepath.Join(r.root, rel)
	fi, err := os.Lstat(p)
	if err != nil {
		r.t.Fatal(err)
	}
	return queue.Offload{
		Kind: kind, Path: p, Key: key, File: fileid.Of(fi),
		Vhost: "__defaultVhost__", App: "live", Stream: "cam1", Hooked: time.Now(),
	}
}

// hls is an on_hls segment with its playlist, from publisher c1, numbered like SRS numbers them
// (one seq_no after another per playlist), 2 s long.
func (r *rig) hls(rel, key, playlistRel, playlistKey string) queue.Offload {
	r.t.Helper()
	p := r.payload(queue.KindHLS, rel, key)
	p.Playlist, p.PlaylistKey = filepath.Join(r.root, playlistRel), playlistKey
	p.Client, p.SeqNo, p.Duration = "c1", r.seqs[playlistKey], 2.0
	r.seqs[playlistKey]++
	return p
}

// enqueue does what the hook does for each file, in order: announce, then enqueue.
func (r *rig) enqueue(ps ...queue.Offload) {
	r.t.Helper()
	for _, p := range ps {
		if err := r.pm.Announce(context.Background(), p); err != nil {
			r.t.Fatalf("announce %s: %v", p.Path, err)
		}
		dup, err := r.client.Enqueue(context.Background(), p)
		if err != nil || dup {
			r.t.Fatalf("enqueue %s: dup=%v err=%v", p.Path, dup, err)
		}
	}
}

// inStorage reports whether storage holds key now (a HEAD request).
func (r *rig) inStorage(key string) bool {
	_, found, err := r.up.Stat(context.Background(), key)
	if err != nil {
		r.t.Errorf("stat %s: %v", key, err)
	}
	return found
}

// livePlaylist fetches the playlist stored under key and fails the test unless it is valid HLS
// naming only objects in storage and lists exactly want (object keys), in order.
func (r *rig) livePlaylist(key string, want []string) *hlstest.Playlist {
	r.t.Helper()
	body, err := r.up.Get(context.Background(), key)
	if err != nil {
		r.t.Fatalf("get %s: %v", key, err)
	}
	p, err := hlstest.Parse(key, body)
	if err != nil {
		r.t.Fatalf("%s: %v\n%s", key, err, body)
	}
	if err := p.Check(r.inStorage); err != nil {
		r.t.Fatalf("%s: %v\n%s", key, err, body)
	}
	var got []string
	for _, s := range p.Segments {
		got = append(got, s.Key)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		r.t.Fatalf("%s lists %v, want %v\n%s", key, got, want, body)
	}
	return p
}

func (r *rig) taskInfo(p queue.Offload) *asynq.TaskInfo {
	r.t.Helper()
	ti, err := r.insp.GetTaskInfo(queue.Name(p.Kind, node), p.TaskID())
	if err != nil {
		r.t.Fatalf("task %s (%s): %v", p.TaskID(), p.Path, err)
	}
	return ti
}

// wait polls until the task is in state want. A task that ends in another final state fails the
// test at once.
func (r *rig) wait(p queue.Offload, want asynq.TaskState, within time.Duration) *asynq.TaskInfo {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ti := r.taskInfo(p)
		if ti.State == want {
			return ti
		}
		final := ti.State == asynq.TaskStateCompleted || ti.State == asynq.TaskStateArchived
		if final || time.Now().After(deadline) {
			r.t.Fatalf("task for %s is %v (retried %d, last error %q), want %v", p.Path, ti.State, ti.Retried, ti.LastErr, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *rig) waitAll(ps []queue.Offload, want asynq.TaskState, within time.Duration) {
	r.t.Helper()
	for _, p := range ps {
		r.wait(p, want, within)
	}
}

// stored fails the test unless storage holds exactly want under key.
func (r *rig) stored(key string, want []byte) {
	r.t.Helper()
	got, err := r.up.Get(context.Background(), key)
	if err != nil {
		r.t.Fatalf("get %s: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		r.t.Fatalf("%s: storage holds %d bytes that differ from the local %d", key, len(got), len(want))
	}
}

func (r *rig) notStored(key string) {
	r.t.Helper()
	obj, found, err := r.up.Stat(context.Background(), key)
	if err != nil {
		r.t.Fatalf("stat %s: %v", key, err)
	}
	if found {
		r.t.Fatalf("%s is in storage (%+v), want nothing", key, obj)
	}
}

func (r *rig) contentType(key string) string {
	r.t.Helper()
	h, err := r.up.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(r.s3.Bucket), Key: aws.String(r.up.Key(key))})
	if err != nil {
		r.t.Fatalf("head %s: %v", key, err)
	}
	return aws.ToString(h.ContentType)
}

func gone(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s still exists (err %v)", p, err)
	}
}

func hasContent(t *testing.T, p string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s holds %d bytes, not the expected %d", p, len(got), len(want))
	}
}

// servers makes each S3 API a test runs against, started inside its subtest.
var servers = []struct {
	name string
	make func(testing.TB) *s3test.Server
}{
	{"gofakes3", func(t testing.TB) *s3test.Server { return s3test.Fake(t, nil) }},
	{"versitygw", s3test.Versity},
}

func playlistText(segs []string) []byte {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n")
	for _, s := range segs {
		fmt.Fprintf(&b, "#EXTINF:2.000,\n%s\n", s)
	}
	return []byte(b.String())
}

// (a) HLS segments in nested date folders: stored byte for byte, purged, empty folders removed up
// to the playlist's folder, the root kept, and the playlist published.
func TestHLSSegments(t *testing.T) {
	t.Parallel()
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigConfig{s3: s.make(t)})
			var ps []queue.Offload
			var rels []string
			want := map[string][]byte{}
			for i := range 8 {
				hour := 22 + i/4 // two hour folders: 22 and 23
				rel := fmt.Sprintf("live/cam1/2026/11/23/%d/cam1-%d.ts", hour, i)
				rels = append(rels, rel)
				want[rel] = r.writeRandom(rel, 200<<10+i*37)
			}
			pl := playlistText(rels)
			plPath := r.write("live/cam1/index.m3u8", pl)
			for _, rel := range rels {
				ps = append(ps, r.hls(rel, rel, "live/cam1/index.m3u8", "live/cam1/index.m3u8"))
			}
			r.start(0)
			r.enqueue(ps...)
			r.waitAll(ps, asynq.TaskStateCompleted, 15*time.Second)

			for _, rel := range rels {
				r.stored(rel, want[rel])
				gone(t, filepath.Join(r.root, rel))
			}
			if ct := r.contentType(rels[0]); ct != "video/mp2t" {
				t.Errorf("segment Content-Type %q", ct)
			}
			gone(t, filepath.Join(r.root, "live/cam1/2026"))
			entries, err := os.ReadDir(filepath.Join(r.root, "live/cam1"))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != "index.m3u8" {
				t.Fatalf("live/cam1 holds %v, want only index.m3u8", entries)
			}
			if fi, err := os.Stat(r.root); err != nil || !fi.IsDir() {
				t.Fatalf("root: %v", err)
			}
			hasContent(t, plPath, pl)
			// The stored playlist is the ledger's, not SRS's file: every segment, in hook order.
			if p := r.livePlaylist("live/cam1/index.m3u8", rels); p.MSN != 0 || p.Type != "" || p.Ended {
				t.Errorf("playlist: media sequence %d, type %q, ended %v", p.MSN, p.Type, p.Ended)
			}
			if ct := r.contentType("live/cam1/index.m3u8"); ct != media.PlaylistType.ContentType {
				t.Errorf("playlist Content-Type %q", ct)
			}
		})
	}
}

// (b) A DVR recording above the multipart threshold is stored byte for byte and purged, with its
// folders; the root stays.
func TestDVRMultipart(t *testing.T) {
	t.Parallel()
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigConfig{s3: s.make(t), upload: func(c *uploader.Config) {
				c.MultipartThreshold, c.PartSize = 5<<20, 5<<20
			}})
			rel := "dvr/live/cam1/2026-11-23/cam1.1795478400123.flv"
			want := r.writeRandom(rel, 12<<20+12345)
			p := r.payload(queue.KindDVR, rel, "recordings/"+filepath.Base(rel))
			r.start(0)
			r.enqueue(p)
			r.wait(p, asynq.TaskStateCompleted, 20*time.Second)
			r.stored(p.Key, want)
			if s.name == "versitygw" {
				// A real gateway reports the multipart ETag: proof that parts were used.
				obj, _, err := r.up.Stat(context.Background(), p.Key)
				if err != nil || !strings.HasSuffix(obj.ETag, "-3") {
					t.Errorf("stat %+v err %v: want a 3-part multipart ETag", obj, err)
				}
			}
			gone(t, p.Path)
			gone(t, filepath.Join(r.root, "dvr"))
			if fi, err := os.Stat(r.root); err != nil || !fi.IsDir() {
				t.Fatalf("the root was removed: %v", err)
			}
		})
	}
}

// (c) With purge disabled the file is stored and kept.
func TestPurgeDisabled(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{noPurge: true})
	rel := "live/cam1/2026/11/23/22/cam1-1.ts"
	want := r.writeRandom(rel, 200<<10)
	r.write("live/cam1/index.m3u8", playlistText([]string{rel}))
	p := r.hls(rel, rel, "live/cam1/index.m3u8", "live/cam1/index.m3u8")
	r.start(0)
	r.enqueue(p)
	r.wait(p, asynq.TaskStateCompleted, 10*time.Second)
	r.stored(rel, want)
	hasContent(t, p.Path, want)
	r.livePlaylist("live/cam1/index.m3u8", []string{rel})
}

// (d) An fMP4 init segment reported by on_hls is stored and kept (SRS rewrites it and serves it).
func TestInitSegmentKept(t *testing.T) {
	t.Parallel()
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigConfig{s3: s.make(t)})
			rel := "live/cam1/init.mp4"
			want := r.writeRandom(rel, 1500)
			seg := "live/cam1/cam1-1.m4s"
			segWant := r.writeRandom(seg, 50<<10)
			p := r.payload(queue.KindHLS, rel, rel)
			ps := r.hls(seg, seg, "live/cam1/index.m3u8", "live/cam1/index.m3u8")
			r.start(0)
			r.enqueue(p, ps)
			r.wait(p, asynq.TaskStateCompleted, 10*time.Second)
			r.wait(ps, asynq.TaskStateCompleted, 10*time.Second)
			r.stored(rel, want)
			hasContent(t, p.Path, want)
			if ct := r.contentType(rel); ct != "video/mp4" {
				t.Errorf("init Content-Type %q", ct)
			}
			// The .m4s segment next to it is purged; the folder stays (init.mp4 is in it).
			r.stored(seg, segWant)
			gone(t, ps.Path)
		})
	}
}

// (e) A file deleted before the worker ran, with no copy in storage, is archived at once: no
// retries, and the error says what happened.
func TestDeletedBeforeUpload(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{})
	rel := "live/cam1/2026/11/23/22/cam1-1.ts"
	r.writeRandom(rel, 1000)
	r.write("live/cam1/index.m3u8", playlistText([]string{rel}))
	p := r.hls(rel, rel, "live/cam1/index.m3u8", "live/cam1/index.m3u8")
	if err := os.Remove(p.Path); err != nil {
		t.Fatal(err)
	}
	r.enqueue(p)
	start := time.Now()
	r.start(0)
	ti := r.wait(p, asynq.TaskStateArchived, 5*time.Second)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("archived after %v; want no retry delays", d)
	}
	if ti.Retried != 0 {
		t.Errorf("retried %d times, want 0", ti.Retried)
	}
	if !strings.Contains(ti.LastErr, "deleted before it was uploaded") || !strings.Contains(ti.LastErr, p.Path) {
		t.Errorf("last error %q does not say the file %s was deleted", ti.LastErr, p.Path)
	}
	archived, err := r.insp.ListArchivedTasks("hls@" + node)
	if err != nil {
		t.Fatal(err)
	}
	if len(archived) != 1 || archived[0].ID != p.TaskID() {
		t.Fatalf("archived tasks %v, want only %s", archived, p.TaskID())
	}
	r.notStored(p.Key)
	// A segment that is lost is not announced: the playlist is not published for it.
	r.notStored(p.PlaylistKey)
}

// (f) A file already uploaded and purged (a task that ran twice) succeeds, and the playlist is
// still published. An object of the same size stored for another file is not taken for it.
func TestDeletedAfterUpload(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{})
	rel := "live/cam1/2026/11/23/22/cam1-1.ts"
	want := r.writeRandom(rel, 200<<10)
	pl := r.write("live/cam1/index.m3u8", playlistText([]string{rel}))
	p := r.hls(rel, rel, "live/cam1/index.m3u8", "live/cam1/index.m3u8")
	f, err := os.Open(p.Path)
	if err != nil {
		t.Fatal(err)
	}
	typ, _ := media.ForHLS(rel)
	// An earlier attempt of this same task stored it (same origin), then crashed after the purge.
	if _, err := r.up.Put(context.Background(), p.Key, f, int64(len(want)), typ, p.TaskID()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Remove(p.Path); err != nil {
		t.Fatal(err)
	}

	// Another segment whose key holds an object of the same size stored for another file (an
	// earlier stream that reused the name): not taken for it.
	rel2 := "live/cam1/2026/11/23/22/cam1-2.ts"
	r.writeRandom(rel2, 300)
	p2 := r.hls(rel2, rel2, "live/cam1/index.m3u8", "live/cam1/index2.m3u8")
	other := r.write("other.ts", bytes.Repeat([]byte("x"), 300))
	f2, err := os.Open(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.up.Put(context.Background(), p2.Key, f2, 300, typ, "an earlier stream"); err != nil {
		t.Fatal(err)
	}
	f2.Close()
	if err := os.Remove(p2.Path); err != nil {
		t.Fatal(err)
	}

	r.start(0)
	r.enqueue(p, p2)
	ti := r.wait(p, asynq.TaskStateCompleted, 10*time.Second)
	if ti.Retried != 0 {
		t.Errorf("retried %d", ti.Retried)
	}
	r.stored(p.Key, want)
	hasContent(t, pl, playlistText([]string{rel}))
	r.livePlaylist(p.PlaylistKey, []string{rel})

	ti2 := r.wait(p2, asynq.TaskStateArchived, 5*time.Second)
	if !strings.Contains(ti2.LastErr, "deleted before it was uploaded") {
		t.Errorf("foreign object: last error %q", ti2.LastErr)
	}
	r.notStored(p2.PlaylistKey)
}

// (g) A file replaced after its hook (same name, new inode and content) is left alone: the task is
// archived, the new file is kept, and nothing is stored for the old one.
func TestReplacedAfterHook(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{})
	rel := "live/cam1/2026/11/23/22/cam1-1.ts"
	r.writeRandom(rel, 200<<10)
	r.write("live/cam1/index.m3u8", playlistText([]string{rel}))
	p := r.hls(rel, rel, "live/cam1/index.m3u8", "live/cam1/index.m3u8")
	// SRS writes a segment to a temporary name and renames it: a new inode under the old name.
	newer := r.writeRandom(rel+".tmp", 150<<10)
	if err := os.Rename(p.Path+".tmp", p.Path); err != nil {
		t.Fatal(err)
	}
	r.start(0)
	r.enqueue(p)
	ti := r.wait(p, asynq.TaskStateArchived, 5*time.Second)
	if ti.Retried != 0 {
		t.Errorf("retried %d", ti.Retried)
	}
	if !strings.Contains(ti.LastErr, "changed since its hook") {
		t.Errorf("last error %q", ti.LastErr)
	}
	hasContent(t, p.Path, newer)
	r.notStored(p.Key)
	r.notStored(p.PlaylistKey)
}

func verifyFailures(t *testing.T) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "srs_offload_verify_failures_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("srs_offload_verify_failures_total is not registered")
	return 0
}

// (h) When storage reports an ETag that is not the local MD5 (single PUT, and multipart), the local
// file is never deleted, the task is retried with the mismatch in its error, the playlist is not
// published, and the verify-failure counter counts it.
func TestVerifyFailureKeepsFile(t *testing.T) {
	t.Parallel()
	// Playlists are not tampered with, so a playlist in storage could only come from the worker
	// publishing it.
	tamper := s3test.WrongETags(func(req *http.Request) bool {
		return strings.HasSuffix(req.URL.Path, ".ts") || strings.HasSuffix(req.URL.Path, ".flv")
	})
	r := newRig(t, rigConfig{s3: s3test.Fake(t, tamper), upload: func(c *uploader.Config) {
		c.MultipartThreshold, c.PartSize = 5<<20, 5<<20
	}})
	before := verifyFailures(t)

	rel := "live/cam1/2026/11/23/22/cam1-1.ts"
	want := r.writeRandom(rel, 200<<10)
	r.write("live/cam1/index.m3u8", playlistText([]string{rel}))
	p := r.hls(rel, rel, "live/cam1/index.m3u8", "live/cam1/index.m3u8")
	drel := "dvr/live/cam1.flv"
	dwant := r.writeRandom(drel, 11<<20)
	d := r.payload(queue.KindDVR, drel, drel)

	r.start(0)
	r.enqueue(p, d)
	for _, q := range []queue.Offload{p, d} {
		ti := r.wait(q, asynq.TaskStateRetry, 10*time.Second)
		if ti.Retried < 1 || !strings.Contains(ti.LastErr, "does not match") {
			t.Errorf("%s: retried %d, last error %q: want a retry for the mismatch", q.Path, ti.Retried, ti.LastErr)
		}
		// Run the retry now and see it fail again. The forwarder (every second) may have made it
		// pending already, which is as good.
		if err := r.insp.RunTask(queue.Name(q.Kind, node), q.TaskID()); err != nil && !strings.Contains(err.Error(), "already in pending state") {
			t.Fatal(err)
		}
	}
	for _, q := range []queue.Offload{p, d} {
		deadline := time.Now().Add(10 * time.Second)
		for ti := r.taskInfo(q); ti.Retried < 2 || ti.State != asynq.TaskStateRetry; ti = r.taskInfo(q) {
			if ti.State == asynq.TaskStateCompleted || ti.State == asynq.TaskStateArchived || time.Now().After(deadline) {
				t.Fatalf("%s: state %v retried %d (%q), want a second failed attempt", q.Path, ti.State, ti.Retried, ti.LastErr)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	hasContent(t, p.Path, want)
	hasContent(t, d.Path, dwant)
	r.notStored(p.PlaylistKey)
	if got := verifyFailures(t) - before; got < 4 {
		t.Errorf("srs_offload_verify_failures_total rose by %v, want at least 4 (2 files × 2 attempts)", got)
	}
}

// putLog records, in order, when each segment PUT was answered and when each playlist PUT arrived
// (with the segments it names).
type putLog struct {
	mu     sync.Mutex
	events []putEvent
}

type putEvent struct {
	key   string   // the object PUT
	seg   bool     // a segment PUT, answered
	names []string // a playlist PUT: the object keys it names
}

func (l *putLog) add(e putEvent) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// (j) The playlist is published only after its segments are stored and verified: no playlist PUT
// names a segment whose own PUT had not been answered yet, however out of order they finish.
func TestPlaylistAfterSegment(t *testing.T) {
	t.Parallel()
	const plKey = "live/cam1/index.m3u8"
	log := &putLog{}
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method != http.MethodPut {
				next.ServeHTTP(w, req)
				return
			}
			key := strings.TrimPrefix(req.URL.Path, "/test/")
			if strings.HasSuffix(key, ".m3u8") {
				body, err := io.ReadAll(req.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				e := putEvent{key: key}
				if p, err := hlstest.Parse(key, body); err == nil {
					for _, s := range p.Segments {
						e.names = append(e.names, s.Key)
					}
				} else {
					e.names = []string{"unparsable: " + err.Error()}
				}
				log.add(e)
				req.Body = io.NopCloser(bytes.NewReader(body))
				next.ServeHTTP(w, req)
				return
			}
			time.Sleep(rand.N(30 * time.Millisecond)) // slow segment uploads, finishing out of order
			next.ServeHTTP(w, req)
			log.add(putEvent{key: key, seg: true})
		})
	}
	r := newRig(t, rigConfig{s3: s3test.Fake(t, wrap)})
	var ps []queue.Offload
	var rels []string
	for i := range 16 {
		rels = append(rels, fmt.Sprintf("live/cam1/2026/11/23/22/cam1-%d.ts", i))
	}
	r.write("live/cam1/index.m3u8", playlistText(rels))
	for _, rel := range rels {
		r.writeRandom(rel, 20<<10)
		ps = append(ps, r.hls(rel, rel, "live/cam1/index.m3u8", plKey))
	}
	r.start(4)
	r.enqueue(ps...)
	r.waitAll(ps, asynq.TaskStateCompleted, 15*time.Second)

	log.mu.Lock()
	events := append([]putEvent{}, log.events...)
	log.mu.Unlock()
	segDone := map[string]int{}
	playlists := 0
	for i, e := range events {
		if !e.seg {
			if e.key != plKey {
				t.Errorf("PUT of an unexpected playlist %s", e.key)
			}
			playlists++
			for _, name := range e.names {
				if _, ok := segDone[name]; !ok {
					t.Errorf("playlist PUT (event %d) names %s, whose own PUT was not answered before it", i, name)
				}
			}
			continue
		}
		if _, dup := segDone[e.key]; dup {
			t.Errorf("segment %s PUT twice", e.key)
		}
		segDone[e.key] = i
	}
	for _, p := range ps {
		if _, ok := segDone[p.Key]; !ok {
			t.Errorf("segment %s never PUT", p.Key)
		}
	}
	if len(segDone) != len(ps) || playlists == 0 {
		t.Errorf("%d segment PUTs and %d playlist PUTs, want %d and at least 1", len(segDone), playlists, len(ps))
	}
	t.Logf("%d playlist PUTs for %d segments", playlists, len(ps))
	// All tasks completed: the last version is in storage, with every segment in hook order.
	r.livePlaylist(plKey, rels)
}

// (i) A worker shut down mid-queue hands back what it did not finish; a new worker finishes it,
// and nothing is lost or left behind.
func TestRestartMidQueue(t *testing.T) {
	t.Parallel()
	var puts sync.Map
	slow := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method == http.MethodPut {
				time.Sleep(25 * time.Millisecond)
				puts.Store(req.URL.Path, true)
			}
			next.ServeHTTP(w, req)
		})
	}
	r := newRig(t, rigConfig{s3: s3test.Fake(t, slow)})
	const n = 60
	var ps []queue.Offload
	want := map[string][]byte{}
	var rels []string
	for i := range n {
		rel := fmt.Sprintf("live/cam1/2026/11/23/%02d/cam1-%d.ts", 20+i/20, i)
		rels = append(rels, rel)
	}
	r.write("live/cam1/index.m3u8", playlistText(rels[len(rels)-5:]))
	for _, rel := range rels {
		want[rel] = r.writeRandom(rel, 200<<10)
		ps = append(ps, r.hls(rel, rel, "live/cam1/index.m3u8", "live/cam1/index.m3u8"))
	}
	r.enqueue(ps...)

	purged := func() int {
		c := 0
		for _, p := range ps {
			if _, err := os.Lstat(p.Path); errors.Is(err, fs.ErrNotExist) {
				c++
			}
		}
		return c
	}
	stop := r.start(2)
	deadline := time.Now().Add(10 * time.Second)
	for purged() < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d files purged by the first worker", purged(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	stop()
	done := purged()
	if done >= n {
		t.Fatalf("the first worker finished all %d tasks before its shutdown; the test proves nothing", n)
	}
	t.Logf("first worker stopped after %d of %d files", done, n)
	// Nothing runs now: what is not completed is pending, not lost in active.
	qi, err := r.insp.GetQueueInfo("hls@" + node)
	if err != nil {
		t.Fatal(err)
	}
	if qi.Active != 0 || qi.Pending+qi.Completed != n {
		t.Fatalf("after shutdown: %d active, %d pending, %d completed, %d retry; want 0 active and pending+completed = %d",
			qi.Active, qi.Pending, qi.Completed, qi.Retry, n)
	}
	if qi.Completed != done {
		t.Fatalf("after shutdown: %d tasks completed but %d files purged", qi.Completed, done)
	}
	if got := purged(); got != done {
		t.Fatalf("files were purged after Shutdown returned (%d, then %d)", done, got)
	}

	r.start(4)
	r.waitAll(ps, asynq.TaskStateCompleted, 20*time.Second)
	for _, p := range ps {
		rel, _ := filepath.Rel(r.root, p.Path)
		r.stored(p.Key, want[rel])
		gone(t, p.Path)
	}
	gone(t, filepath.Join(r.root, "live/cam1/2026"))
	// The live window is a minute: the last 30 of the 2 s segments, numbered from where they are.
	if p := r.livePlaylist("live/cam1/index.m3u8", rels[n-30:]); p.MSN != n-30 {
		t.Errorf("media sequence %d, want %d", p.MSN, n-30)
	}
	var keys []string
	puts.Range(func(k, _ any) bool { keys = append(keys, k.(string)); return true })
	sort.Strings(keys)
	if len(keys) != n+1 {
		t.Errorf("%d distinct keys PUT, want %d segments and 1 playlist", len(keys), n)
	}
}

// Payloads the worker can never handle are archived at once, and nothing is deleted.
func TestPermanentErrors(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{})
	outside := filepath.Join(t.TempDir(), "cam1-1.ts")
	if err := os.WriteFile(outside, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Lstat(outside)
	out := queue.Offload{Kind: queue.KindHLS, Path: outside, Key: "live/x.ts", File: fileid.Of(fi)}

	r.writeRandom("live/cam1/notes.txt", 10)
	badExt := r.payload(queue.KindHLS, "live/cam1/notes.txt", "live/cam1/notes.txt")
	r.writeRandom("live/cam1/rec.flv", 10)
	wrongHook := r.payload(queue.KindHLS, "live/cam1/rec.flv", "live/cam1/rec.flv") // DVR file through on_hls

	// The refusal names its cause and says not to retry, both matchable with errors.Is.
	err := r.off.Offload(context.Background(), out)
	if !errors.Is(err, roots.ErrOutside) || !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("file outside the roots: %v: want roots.ErrOutside and asynq.SkipRetry", err)
	}

	r.enqueue(out, badExt, wrongHook)
	// A payload that is not an offload at all.
	ac := asynq.NewClient(r.redisOpt)
	t.Cleanup(func() { ac.Close() })
	if _, err := ac.Enqueue(asynq.NewTask(queue.TypeOffload, []byte(`{"kind":"hls"}`)), asynq.Queue("hls@"+node), asynq.TaskID("junk"), asynq.MaxRetry(5)); err != nil {
		t.Fatal(err)
	}
	r.start(0)
	for _, p := range []queue.Offload{out, badExt, wrongHook} {
		ti := r.wait(p, asynq.TaskStateArchived, 5*time.Second)
		if ti.Retried != 0 {
			t.Errorf("%s: retried %d", p.Path, ti.Retried)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ti, err := r.insp.GetTaskInfo("hls@"+node, "junk")
		if err != nil {
			t.Fatal(err)
		}
		if ti.State == asynq.TaskStateArchived {
			if ti.Retried != 0 || !strings.Contains(ti.LastErr, "offload payload") {
				t.Errorf("junk payload: retried %d, last error %q", ti.Retried, ti.LastErr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("junk payload: state %v", ti.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
	hasContent(t, outside, []byte("outside"))
	for _, p := range []string{badExt.Path, wrongHook.Path} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, k := range []string{out.Key, badExt.Key, wrongHook.Key} {
		r.notStored(k)
	}
}

// A file written to while it is being uploaded (same inode, more bytes) is stored as it was when
// hooked, and kept: the bytes added during the upload were never verified in storage.
func TestModifiedDuringUpload(t *testing.T) {
	t.Parallel()
	const rel = "live/cam1/2026/11/23/22/cam1-1.ts"
	var root string
	tail := []byte("bytes written while the upload ran")
	appendOnPut := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, "/"+rel) {
				f, err := os.OpenFile(filepath.Join(root, rel), os.O_WRONLY|os.O_APPEND, 0)
				if err == nil {
					f.Write(tail)
					f.Close()
				}
			}
			next.ServeHTTP(w, req)
		})
	}
	r := newRig(t, rigConfig{s3: s3test.Fake(t, appendOnPut)})
	root = r.root
	want := r.writeRandom(rel, 100<<10)
	p := r.payload(queue.KindHLS, rel, rel)
	r.start(0)
	r.enqueue(p)
	ti := r.wait(p, asynq.TaskStateCompleted, 10*time.Second)
	if ti.Retried != 0 {
		t.Errorf("retried %d", ti.Retried)
	}
	r.stored(rel, want)
	hasContent(t, p.Path, append(append([]byte{}, want...), tail...))
}
