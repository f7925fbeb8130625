package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/reconcile"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/spool"
)

const node = "test"

var (
	hlsTemplates = []string{"[app]/[stream]-[seq].ts", "[app]/[stream]/[2006][01][02]/[timestamp]-[seq].ts", "[app]/[stream]/init.mp4"}
	dvrTemplates = []string{"[app]/[stream].[timestamp].flv"}
)

// env is one node's disk side: a root with its spool, a real redis-server, the queue client the
// hook receiver uses, an inspector, and a Reconciler over them.
type env struct {
	t      *testing.T
	root   string
	sp     *spool.Spool
	redis  *redistest.Server
	client *queue.Client
	insp   *asynq.Inspector
	rec    *reconcile.Reconciler
	logs   *logBuf
}

func newEnv(t *testing.T, minAge time.Duration) *env {
	t.Helper()
	e := &env{t: t}
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e.root = root
	rs, err := roots.New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	if e.sp, err = spool.New(rs, ".srs-offload"); err != nil {
		t.Fatal(err)
	}
	if err := e.sp.Probe(); err != nil {
		t.Fatal(err)
	}
	layout, err := reconcile.NewLayout(hlsTemplates, dvrTemplates)
	if err != nil {
		t.Fatal(err)
	}
	hlsKey, err := objkey.Parse("{url}")
	if err != nil {
		t.Fatal(err)
	}
	dvrKey, err := objkey.Parse("{app}/{stream}/{basename}")
	if err != nil {
		t.Fatal(err)
	}
	e.redis = redistest.Start(t)
	opt := asynq.RedisClientOpt{Addr: e.redis.Addr}
	e.client = queue.NewClient(opt, queue.Options{Node: node, MaxRetry: 3, Timeout: time.Minute, Dedup: time.Hour})
	t.Cleanup(func() { e.client.Close() })
	e.insp = asynq.NewInspector(opt)
	t.Cleanup(func() { e.insp.Close() })
	e.logs = &logBuf{t: t}
	t.Cleanup(e.logs.stop)
	e.rec = &reconcile.Reconciler{
		Roots: rs, Spool: e.sp, Layout: layout, HLSKey: hlsKey, DVRKey: dvrKey, Queue: e.client,
		MinAge: minAge, Recheck: 30 * time.Minute,
		Log: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	return e
}

// logBuf keeps what the reconciler logs, and shows it in the test log while the test runs.
type logBuf struct {
	mu   sync.Mutex
	t    *testing.T
	b    strings.Builder
	done bool
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	if !l.done {
		l.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (l *logBuf) stop() {
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
}

func (l *logBuf) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}

// write creates root/rel holding content, with its mtime age ago (0: now), and returns its path.
func (e *env) write(rel string, age time.Duration, content string) string {
	e.t.Helper()
	p := filepath.Join(e.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if age > 0 {
		at := time.Now().Add(-age)
		if err := os.Chtimes(p, at, at); err != nil {
			e.t.Fatal(err)
		}
	}
	return p
}

// hookTask is the task the hook for the file at p would have recorded (its id depends on the
// kind, the path and the file's identity only).
func (e *env) hookTask(kind, p, key string) queue.Offload {
	e.t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		e.t.Fatal(err)
	}
	return queue.Offload{Kind: kind, Path: p, Key: key, File: fileid.Of(fi), Vhost: "__defaultVhost__"}
}

// tasks returns every pending task of this node, by id.
func (e *env) tasks() map[string]queue.Offload {
	e.t.Helper()
	out := map[string]queue.Offload{}
	for _, kind := range []string{queue.KindHLS, queue.KindDVR} {
		list, err := e.insp.ListPendingTasks(queue.Name(kind, node), asynq.PageSize(1000))
		if errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		for _, ti := range list {
			p, err := queue.DecodeOffload(ti.Payload)
			if err != nil {
				e.t.Fatal(err)
			}
			if p.Kind != kind {
				e.t.Errorf("task %s of kind %s is in queue %s", ti.ID, p.Kind, ti.Queue)
			}
			out[ti.ID] = p
		}
	}
	return out
}

// task returns the task with the id of want, or false.
func (e *env) task(want queue.Offload) (queue.Offload, bool) {
	e.t.Helper()
	ti, err := e.insp.GetTaskInfo(queue.Name(want.Kind, node), want.TaskID())
	if errors.Is(err, asynq.ErrQueueNotFound) || errors.Is(err, asynq.ErrTaskNotFound) {
		return queue.Offload{}, false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := queue.DecodeOffload(ti.Payload)
	if err != nil {
		e.t.Fatal(err)
	}
	return p, true
}

// waitTask polls until the task with the id of want is in the queue.
func (e *env) waitTask(want queue.Offload, within time.Duration) queue.Offload {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if p, ok := e.task(want); ok {
			return p
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no task for %s after %v", want.Path, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) scan() reconcile.Stats {
	e.t.Helper()
	st, err := e.rec.Scan(context.Background())
	if err != nil {
		e.t.Fatalf("scan: %v", err)
	}
	return st
}

// spooled is the spooled name of the file at p (which must exist).
func (e *env) spooled(p string) string {
	e.t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		e.t.Fatal(err)
	}
	sp, ok := e.sp.Path(p, fi.Sys().(*syscall.Stat_t).Ino)
	if !ok {
		e.t.Fatalf("no spooled name for %s", p)
	}
	return sp
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Lstat(a)
	if err != nil {
		return false
	}
	fb, err := os.Lstat(b)
	if err != nil {
		return false
	}
	return os.SameFile(fa, fb)
}

// counts is the part of Stats a test states (Took, Bytes and Oldest vary).
func counts(st reconcile.Stats) string {
	return fmt.Sprintf("files=%d enqueued=%d known=%d young=%d stored=%d unmatched=%d pending=%d",
		st.Files, st.Enqueued, st.Known, st.Young, st.Stored, st.Unmatch, st.Pending)
}

// A scan enqueues every finished media file older than MinAge whose hook never came, under the
// key its hook would have given it and with SRS's path; it leaves young files to their hook (but
// holds them in the spool already), ignores what SRS never hooks, and counts what no template
// matches. Every file it can enqueue is held in the spool (not an fMP4 init). A second scan
// enqueues nothing new.
func TestScanEnqueuesMissedFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Minute)
	old := time.Hour
	type file struct {
		kind, rel, key, app, stream string
		spooled                     bool
	}
	missed := []file{
		{queue.KindHLS, "live/cam1-0.ts", "live/cam1-0.ts", "live", "cam1", true},
		{queue.KindHLS, "live/cam-2-5.m4s", "live/cam-2-5.m4s", "live", "cam-2", true},
		{queue.KindHLS, "live/cam3/20261123/1763935200123-7.ts", "live/cam3/20261123/1763935200123-7.ts", "live", "cam3", true},
		{queue.KindHLS, "live/cam4/init.mp4", "live/cam4/init.mp4", "live", "cam4", false},
		{queue.KindDVR, "live/cam5.1763935200123.flv", "live/cam5/cam5.1763935200123.flv", "live", "cam5", true},
	}
	var hooks []queue.Offload
	var bytes int64
	for i, f := range missed {
		content := strings.Repeat("m", 100+i)
		p := e.write(f.rel, old, content)
		bytes += int64(len(content))
		hooks = append(hooks, e.hookTask(f.kind, p, f.key))
	}
	young := e.write("live/cam1-1.ts", 0, "young")
	tmp := e.write("live/cam1-2.ts.tmp", old, "still being written")
	m3u8 := e.write("live/cam1.m3u8", old, "#EXTM3U\n")
	unmatched := []string{
		e.write("live/extra/deep/cam6-0.ts", old, "no template"),
		e.write("live/cam7.flv", old, "no timestamp"),
	}
	bytes += int64(len("young") + len("no template") + len("no timestamp"))

	st := e.scan()
	if got, want := counts(st), "files=8 enqueued=5 known=0 young=1 stored=0 unmatched=2 pending=8"; got != want {
		t.Fatalf("first scan: %s, want %s", got, want)
	}
	if st.Bytes != bytes || st.Oldest < old {
		t.Errorf("pending bytes %d (want %d), oldest %v (want at least %v)", st.Bytes, bytes, st.Oldest, old)
	}
	tasks := e.tasks()
	if len(tasks) != len(missed) {
		t.Fatalf("%d tasks in the queue, want %d: %v", len(tasks), len(missed), tasks)
	}
	for i, f := range missed {
		want := hooks[i]
		got, ok := tasks[want.TaskID()]
		if !ok {
			t.Errorf("%s: no task under the id its hook would have had", f.rel)
			continue
		}
		if got.Kind != f.kind || got.Path != want.Path || got.Key != f.key || got.File != want.File ||
			got.App != f.app || got.Stream != f.stream || got.Vhost != "__defaultVhost__" {
			t.Errorf("%s: task %+v, want kind %s path %s key %s app %s stream %s file %+v",
				f.rel, got, f.kind, want.Path, f.key, f.app, f.stream, want.File)
		}
		link := e.spooled(want.Path)
		if held := sameFile(t, link, want.Path); held != f.spooled {
			t.Errorf("%s: held in the spool %v, want %v", f.rel, held, f.spooled)
		}
	}
	if !sameFile(t, e.spooled(young), young) {
		t.Error("a young file was not held in the spool: SRS's cleanup could delete it while it waits for its hook")
	}
	for _, task := range tasks {
		if task.Path == young {
			t.Error("a young file was enqueued")
		}
	}
	for _, p := range append([]string{tmp, m3u8}, unmatched...) {
		if exists(e.spooled(p)) {
			t.Errorf("%s was spooled", p)
		}
		for _, task := range tasks {
			if task.Path == p {
				t.Errorf("%s was enqueued", p)
			}
		}
	}
	if !e.logs.has("no reconcile.hls_ts_file/dvr_path template matches") {
		t.Error("an unmatched file was not logged")
	}

	// Again, asking Redis (Recheck passed): every file is known, nothing is enqueued twice, and
	// the spooled links are not counted twice.
	e.rec.Recheck = 0
	st = e.scan()
	if got, want := counts(st), "files=8 enqueued=0 known=5 young=1 stored=0 unmatched=2 pending=8"; got != want {
		t.Fatalf("second scan: %s, want %s", got, want)
	}
	if n := len(e.tasks()); n != len(missed) {
		t.Fatalf("%d tasks after two scans, want %d", n, len(missed))
	}
	// Within Recheck, files found in the queue are not asked about again: the scan succeeds
	// with Redis down.
	e.rec.Recheck = 30 * time.Minute
	e.redis.Stop()
	st, err := e.rec.Scan(context.Background())
	if err != nil {
		t.Fatalf("scan within Recheck asked Redis: %v", err)
	}
	if got, want := counts(st), "files=8 enqueued=0 known=5 young=1 stored=0 unmatched=2 pending=8"; got != want {
		t.Fatalf("third scan: %s, want %s", got, want)
	}
}

// A file whose hook came (its task is in the queue) is known: the scan builds the same task id
// and does not replace the hook's task.
func TestScanKnowsHookedFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Minute)
	p := e.write("live/cam1/20261123/1763935200123-3.ts", time.Hour, "hooked")
	hook := e.hookTask(queue.KindHLS, p, "live/cam1/20261123/1763935200123-3.ts")
	hook.App, hook.Stream, hook.Client, hook.SeqNo, hook.Duration = "live", "cam1", "c1", 7, 2.0
	hook.Playlist, hook.PlaylistKey = filepath.Join(e.root, "live/cam1.m3u8"), "live/cam1.m3u8"
	hook.Hooked = time.Now()
	if dup, err := e.client.Enqueue(context.Background(), hook); err != nil || dup {
		t.Fatalf("hook enqueue: dup %v err %v", dup, err)
	}
	st := e.scan()
	if got, want := counts(st), "files=1 enqueued=0 known=1 young=0 stored=0 unmatched=0 pending=1"; got != want {
		t.Fatalf("scan: %s, want %s", got, want)
	}
	tasks := e.tasks()
	got, ok := tasks[hook.TaskID()]
	if len(tasks) != 1 || !ok {
		t.Fatalf("tasks %v, want only the hook's %s", tasks, hook.TaskID())
	}
	if got.SeqNo != 7 || got.Client != "c1" || got.PlaylistKey != hook.PlaylistKey {
		t.Fatalf("the hook's task was replaced: %+v", got)
	}
}

// A file only in the spool (SRS deleted its name after the hook receiver took it, and the hook's
// task was never recorded) is enqueued under SRS's path, the hook's task id and its key.
func TestScanEnqueuesSpoolOnlyFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Minute)
	rel := "live/cam1/20261123/1763935200123-9.ts"
	p := e.write(rel, time.Hour, "kept by the spool")
	hook := e.hookTask(queue.KindHLS, p, rel)
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	link, err := e.sp.Take(p, fi)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil { // SRS's hls_cleanup
		t.Fatal(err)
	}
	st := e.scan()
	if got, want := counts(st), "files=1 enqueued=1 known=0 young=0 stored=0 unmatched=0 pending=1"; got != want {
		t.Fatalf("scan: %s, want %s", got, want)
	}
	got, ok := e.task(hook)
	if !ok {
		t.Fatalf("no task under the hook's id; tasks: %v", e.tasks())
	}
	if got.Path != p || got.Key != rel || got.File != hook.File || got.App != "live" || got.Stream != "cam1" {
		t.Fatalf("task %+v, want path %s key %s file %+v", got, p, rel, hook.File)
	}
	if !exists(link) {
		t.Fatal("the spooled file is gone")
	}
	if st := e.scan(); st.Enqueued != 0 || st.Known != 1 {
		t.Fatalf("second scan: %s", counts(st))
	}
}

// A file marked as stored under the task id it would get now is skipped without asking Redis; a
// mark of another task id (the file changed since) is not taken for it.
func TestScanSkipsMarkedFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Minute)
	stored := e.write("live/cam1-4.ts", time.Hour, "stored and kept")
	stale := e.write("live/cam1-5.ts", time.Hour, "marked for another version")
	mark := func(p, id string) {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := queue.Mark(f, id); err != nil {
			t.Fatalf("mark (does the filesystem of %s have user xattrs?): %v", p, err)
		}
	}
	hook := e.hookTask(queue.KindHLS, stored, "live/cam1-4.ts")
	mark(stored, hook.TaskID())
	other := e.hookTask(queue.KindHLS, stale, "live/cam1-5.ts")
	other.File.MtimeNs++
	mark(stale, other.TaskID())

	st := e.scan()
	if got, want := counts(st), "files=2 enqueued=1 known=0 young=0 stored=1 unmatched=0 pending=1"; got != want {
		t.Fatalf("scan: %s, want %s", got, want)
	}
	if _, ok := e.task(hook); ok {
		t.Fatal("a file marked as stored was enqueued")
	}
	if _, ok := e.task(e.hookTask(queue.KindHLS, stale, "live/cam1-5.ts")); !ok {
		t.Fatal("a file marked for another task id was not enqueued")
	}
	if exists(e.spooled(stored)) {
		t.Fatal("a stored file was spooled")
	}
}

// Purge off: the worker marks the file it stored, and the hook receiver's spooled link is then
// released by the next scan, while SRS's name is kept.
func TestScanReleasesStoredSpooledFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Minute)
	p := e.write("live/cam1-6.ts", time.Hour, "stored, kept, and spooled")
	hook := e.hookTask(queue.KindHLS, p, "live/cam1-6.ts")
	fi, _ := os.Lstat(p)
	link, err := e.sp.Take(p, fi)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(link) // the worker reads the spooled link and marks it
	if err != nil {
		t.Fatal(err)
	}
	if err := queue.Mark(f, hook.TaskID()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st := e.scan()
	if st.Enqueued != 0 || st.Known != 0 || st.Stored == 0 {
		t.Fatalf("scan: %s, want the file stored", counts(st))
	}
	if exists(link) {
		t.Fatal("the spooled link of a stored file was not released")
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "stored, kept, and spooled" {
		t.Fatalf("SRS's name: %q, %v", b, err)
	}
	if n := len(e.tasks()); n != 0 {
		t.Fatalf("%d tasks, want none", n)
	}
}

// With Redis down a scan fails (it does not pretend the files are handled); once Redis is back,
// the next scan enqueues them.
func TestScanRedisDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Minute)
	var hooks []queue.Offload
	for i := range 3 {
		rel := fmt.Sprintf("live/cam1-%d.ts", i)
		hooks = append(hooks, e.hookTask(queue.KindHLS, e.write(rel, time.Hour, rel), rel))
	}
	e.redis.Stop()
	if st, err := e.rec.Scan(context.Background()); err == nil {
		t.Fatalf("scan with Redis down succeeded: %s", counts(st))
	}
	e.redis.Restart()
	st := e.scan()
	if st.Enqueued != 3 {
		t.Fatalf("scan after Redis came back: %s, want 3 enqueued", counts(st))
	}
	for _, h := range hooks {
		if _, ok := e.task(h); !ok {
			t.Errorf("%s not enqueued", h.Path)
		}
	}
}

// run starts rec.Run until the test ends.
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.rec.Run(ctx)
	}()
	e.t.Cleanup(func() {
		cancel()
		<-done
	})
}

// The watcher spools a new file at once (a new folder included, the segment written to .tmp and
// renamed as SRS does), long before MinAge, and the file is enqueued once it is MinAge old.
func TestRunWatchSpoolsAtOnce(t *testing.T) {
	t.Parallel()
	const minAge = 2 * time.Second
	e := newEnv(t, minAge)
	e.rec.Watch = true
	if err := os.MkdirAll(filepath.Join(e.root, "live"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.run()

	// The watcher is in place once two new files in a row are spooled within 300 ms each (the
	// first scan at start may take one too; it runs once).
	deadline := time.Now().Add(10 * time.Second)
	for i, inRow := 0, 0; inRow < 2; i++ {
		p := e.write(fmt.Sprintf("live/probe-%d.ts", i), 0, "probe")
		link := e.spooled(p)
		if pollFor(300*time.Millisecond, func() bool { return exists(link) }) {
			inRow++
		} else {
			inRow = 0
		}
		if time.Now().After(deadline) {
			t.Fatal("the watcher never spooled a new file")
		}
	}

	rel := "live/cam1/20261123/1763935200123-0.ts"
	p := filepath.Join(e.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+".tmp", []byte("a new segment in a new folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	hook := e.hookTask(queue.KindHLS, p, rel)
	link := e.spooled(p)
	if !pollFor(minAge, func() bool { return exists(link) }) {
		t.Fatalf("%s not spooled within MinAge (%v) of its creation", rel, minAge)
	}
	if !sameFile(t, link, p) {
		t.Fatal("the spooled link is another file")
	}
	if _, ok := e.task(hook); ok {
		t.Fatal("enqueued before MinAge")
	}
	got := e.waitTask(hook, minAge+10*time.Second)
	if age := time.Since(fi.ModTime()); age < minAge {
		t.Fatalf("enqueued %v after the file was written, before MinAge %v", age, minAge)
	}
	if got.Path != p || got.Key != rel || got.App != "live" || got.Stream != "cam1" || got.File != hook.File {
		t.Fatalf("task %+v", got)
	}
}

// Kick makes Run scan at once: without it the next scan would be a day away.
func TestRunKick(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Second)
	first := e.hookTask(queue.KindHLS, e.write("live/a-0.ts", time.Hour, "a"), "live/a-0.ts")
	e.run()
	// The first scan has read the folder once it enqueued a-0.ts.
	e.waitTask(first, 10*time.Second)
	later := e.hookTask(queue.KindHLS, e.write("live/b-0.ts", time.Hour, "b"), "live/b-0.ts")
	e.rec.Kick()
	e.waitTask(later, 5*time.Second)
}

// Run retries a scan that failed because Redis was down, without anyone's help, and enqueues the
// files once Redis is back.
func TestRunRetriesWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Second)
	h := e.hookTask(queue.KindDVR, e.write("live/cam1.1763935200123.flv", time.Hour, "flv"), "live/cam1/cam1.1763935200123.flv")
	e.redis.Stop()
	e.run()
	if !pollFor(10*time.Second, func() bool { return e.logs.has("scan failed") }) {
		t.Fatal("no failed scan logged with Redis down")
	}
	if err := e.redis.Start(); err != nil {
		t.Fatal(err)
	}
	got := e.waitTask(h, 10*time.Second)
	if got.Key != "live/cam1/cam1.1763935200123.flv" {
		t.Fatalf("task %+v", got)
	}
}

// pollFor polls cond every 10 ms for up to d.
func pollFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SRS's hls_cleanup deletes a segment after the watcher spooled it and before MinAge: the watcher
// still enqueues it once it is MinAge old, from the spool, without waiting for a full scan
// (Interval 0: there is none).
func TestRunWatchSpooledThenDeleted(t *testing.T) {
	t.Parallel()
	const minAge = time.Second
	e := newEnv(t, minAge)
	e.rec.Watch = true
	if err := os.MkdirAll(filepath.Join(e.root, "live"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.run()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		p := e.write(fmt.Sprintf("live/probe-%d.ts", i), 0, "probe")
		link := e.spooled(p)
		if pollFor(300*time.Millisecond, func() bool { return exists(link) }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watcher never spooled a new file")
		}
	}
	rel := "live/cam1-0.ts"
	p := e.write(rel, 0, "deleted by SRS before min_age")
	hook := e.hookTask(queue.KindHLS, p, rel)
	link := e.spooled(p)
	// Spooled on its watcher event, not at min_age; the bound is loose because a loaded machine
	// (CI runs packages in parallel) delays events, and what matters is the order: spooled, then
	// deleted by SRS, then still enqueued.
	if !pollFor(5*time.Second, func() bool { return exists(link) }) {
		t.Fatal("not spooled")
	}
	if err := os.Remove(p); err != nil { // hls_cleanup
		t.Fatal(err)
	}
	got := e.waitTask(hook, minAge+5*time.Second)
	if got.Path != p || got.Key != rel {
		t.Fatalf("task %+v", got)
	}
}

// A file already on disk when Run starts, too young for the first scan (its hook was lost while
// srs-offload restarted), is enqueued once it is MinAge old, also with the watcher on (an
// existing file has no event: the scan hands it to the watcher's schedule).
func TestRunWatchYoungAtStart(t *testing.T) {
	t.Parallel()
	const minAge = time.Second
	e := newEnv(t, minAge)
	e.rec.Watch = true
	rel := "live/cam1-0.ts"
	hook := e.hookTask(queue.KindHLS, e.write(rel, 0, "young when srs-offload starts"), rel)
	e.run()
	e.waitTask(hook, minAge+5*time.Second)
}
