package hook_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/hook"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
)

const (
	node     = "test"
	hlsQueue = "hls@test"
	dvrQueue = "dvr@test"
	okBody   = `{"code":0}`
)

// ---------------------------------------------------------------------------------------------
// The system under test: a real redis-server, a real queue.Client, a real roots.Set and the
// handler behind a real HTTP server on loopback.

type envConfig struct {
	roots     []string
	token     string
	timeout   time.Duration // Intake.Timeout
	redisAddr string        // when set, no redis-server is started and no inspector is made
	redisOpt  func(*asynq.RedisClientOpt)
	log       io.Writer // nil: the test log
}

type env struct {
	tb      testing.TB
	redis   *redistest.Server
	roots   *roots.Set
	queue   *queue.Client
	insp    *asynq.Inspector
	intake  *hook.Intake
	handler *hook.Handler
	srv     *httptest.Server
	client  *http.Client
}

func testKeys(tb testing.TB) hook.Keys {
	tb.Helper()
	var k hook.Keys
	var err error
	if k.HLS, err = objkey.Parse("{url}"); err != nil {
		tb.Fatal(err)
	}
	if k.Playlist, err = objkey.Parse("{m3u8_url}"); err != nil {
		tb.Fatal(err)
	}
	if k.DVR, err = objkey.Parse("{app}/{stream}/{basename}"); err != nil {
		tb.Fatal(err)
	}
	return k
}

// tbWriter sends log lines to the test log, so a failing test shows what the handler said.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newEnv(tb testing.TB, c envConfig) *env {
	tb.Helper()
	e := &env{tb: tb}
	rs, err := roots.New(c.roots)
	if err != nil {
		tb.Fatal(err)
	}
	e.roots = rs
	addr := c.redisAddr
	if addr == "" {
		e.redis = redistest.Start(tb)
		addr = e.redis.Addr
		e.insp = asynq.NewInspector(asynq.RedisClientOpt{Addr: addr})
		tb.Cleanup(func() { e.insp.Close() })
	}
	opt := asynq.RedisClientOpt{Addr: addr}
	if c.redisOpt != nil {
		c.redisOpt(&opt)
	}
	e.queue = queue.NewClient(opt, queue.Options{
		Node: node, MaxRetry: 3, Timeout: time.Minute, Dedup: time.Minute,
	})
	tb.Cleanup(func() { e.queue.Close() })
	if c.timeout == 0 {
		c.timeout = 5 * time.Second
	}
	w := c.log
	if w == nil {
		w = tbWriter{tb}
	}
	e.intake = &hook.Intake{Roots: rs, Keys: testKeys(tb), Queue: e.queue, Timeout: c.timeout}
	e.handler = &hook.Handler{
		Intake: e.intake,
		Token:  c.token,
		Log:    slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	e.srv = httptest.NewServer(e.handler)
	tb.Cleanup(e.srv.Close)
	// SRS opens a new connection for every hook call and closes it after the answer.
	tr := &http.Transport{DisableKeepAlives: true}
	e.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	tb.Cleanup(tr.CloseIdleConnections)
	return e
}

// response is one answer of the handler.
type response struct {
	status  int
	header  http.Header
	body    []byte
	chunked bool
	elapsed time.Duration
}

// do sends one request the way SRS does: the given method and path, a JSON content type, SRS's
// user agent, a Content-Length, and a fresh connection.
func (e *env) do(method, target, body string) response {
	e.tb.Helper()
	req, err := http.NewRequest(method, e.srv.URL+target, strings.NewReader(body))
	if err != nil {
		e.tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "SRS/7.0.18(Hang)")
	start := time.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		e.tb.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.tb.Fatalf("%s %s: read answer: %v", method, target, err)
	}
	return response{
		status: resp.StatusCode, header: resp.Header, body: b,
		chunked: slices.Contains(resp.TransferEncoding, "chunked"), elapsed: time.Since(start),
	}
}

func (e *env) post(body string) response {
	e.tb.Helper()
	return e.do(http.MethodPost, "/api/v1/hls", body)
}

// with returns the env bound to another test (a subtest), so that its helpers fail that test.
func (e *env) with(tb testing.TB) *env {
	c := *e
	c.tb = tb
	return &c
}

// assertOK checks the one answer every SRS version accepts.
func assertOK(tb testing.TB, what string, r response) {
	tb.Helper()
	if r.status != http.StatusOK || string(r.body) != okBody {
		tb.Fatalf("%s: got %d %q, want 200 %s", what, r.status, r.body, okBody)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("%s: Content-Type %q, want application/json", what, ct)
	}
	if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(okBody)) {
		tb.Fatalf("%s: Content-Length %q, want %d", what, cl, len(okBody))
	}
	if r.chunked {
		tb.Fatalf("%s: chunked answer, want a plain Content-Length", what)
	}
}

// assertRefused checks an error answer: the status, and a JSON object whose integer code is the
// status and whose error is not empty.
func assertRefused(tb testing.TB, what string, r response, status int) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("%s: status %d (%s), want %d", what, r.status, r.body, status)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("%s: Content-Type %q, want application/json", what, ct)
	}
	if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) {
		tb.Fatalf("%s: Content-Length %q for a %d-byte body", what, cl, len(r.body))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &m); err != nil {
		tb.Fatalf("%s: body %q is not a JSON object: %v", what, r.body, err)
	}
	// The code must be a JSON integer (SRS rejects 403.0 and "403" alike), equal to the status.
	if got := string(m["code"]); got != strconv.Itoa(status) {
		tb.Fatalf("%s: code %s, want the integer %d (body %s)", what, got, status, r.body)
	}
	var msg string
	if err := json.Unmarshal(m["error"], &msg); err != nil || strings.TrimSpace(msg) == "" {
		tb.Fatalf("%s: error %s is not a non-empty string (body %s)", what, m["error"], r.body)
	}
}

// ---------------------------------------------------------------------------------------------
// The queue, read back through asynq's inspector.

type task struct {
	info *asynq.TaskInfo
	p    queue.Offload
}

// tasks lists every task of a queue, checks that they are all pending offload tasks with the
// enqueue options, and decodes their payloads.
func (e *env) tasks(qname string) []task {
	e.tb.Helper()
	qs, err := e.insp.Queues()
	if err != nil {
		e.tb.Fatal(err)
	}
	if !slices.Contains(qs, qname) {
		return nil
	}
	info, err := e.insp.GetQueueInfo(qname)
	if err != nil {
		e.tb.Fatal(err)
	}
	if info.Size != info.Pending || info.Completed != 0 {
		e.tb.Fatalf("queue %s: %d tasks, %d pending, %d completed; with no worker all must be pending",
			qname, info.Size, info.Pending, info.Completed)
	}
	infos, err := e.insp.ListPendingTasks(qname, asynq.PageSize(100000))
	if err != nil {
		e.tb.Fatal(err)
	}
	if len(infos) != info.Size {
		e.tb.Fatalf("queue %s: listed %d of %d tasks", qname, len(infos), info.Size)
	}
	out := make([]task, 0, len(infos))
	for _, ti := range infos {
		if ti.Type != queue.TypeOffload {
			e.tb.Fatalf("task %s: type %q, want %q", ti.ID, ti.Type, queue.TypeOffload)
		}
		p, err := queue.DecodeOffload(ti.Payload)
		if err != nil {
			e.tb.Fatalf("task %s: %v", ti.ID, err)
		}
		if ti.ID != p.TaskID() {
			e.tb.Fatalf("task id %s, want %s (derived from the payload)", ti.ID, p.TaskID())
		}
		if want := queue.Name(p.Kind, node); ti.Queue != want || ti.Queue != qname {
			e.tb.Fatalf("task %s of kind %s is on queue %s, want %s", ti.ID, p.Kind, ti.Queue, want)
		}
		if ti.MaxRetry != 3 || ti.Timeout != time.Minute || ti.Retention != time.Minute {
			e.tb.Fatalf("task %s: max retry %d, timeout %v, retention %v; want 3, 1m, 1m", ti.ID, ti.MaxRetry, ti.Timeout, ti.Retention)
		}
		out = append(out, task{ti, p})
	}
	return out
}

// totalTasks counts the tasks in every queue Redis knows, in every state.
func (e *env) totalTasks() int {
	e.tb.Helper()
	qs, err := e.insp.Queues()
	if err != nil {
		e.tb.Fatal(err)
	}
	n := 0
	for _, q := range qs {
		info, err := e.insp.GetQueueInfo(q)
		if err != nil {
			e.tb.Fatal(err)
		}
		n += info.Size + info.Completed
	}
	return n
}

func (e *env) assertTaskCount(what string, hls, dvr int) {
	e.tb.Helper()
	h, d := len(e.tasks(hlsQueue)), len(e.tasks(dvrQueue))
	if h != hls || d != dvr || e.totalTasks() != hls+dvr {
		e.tb.Fatalf("%s: %d hls and %d dvr tasks (%d in all), want %d and %d", what, h, d, e.totalTasks(), hls, dvr)
	}
}

// ---------------------------------------------------------------------------------------------
// Files on disk.

// writeRandom creates path (and its folders) with n random bytes.
func writeRandom(tb testing.TB, path string, n int) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), uint64(len(path))))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

func writeFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}

type entry struct {
	mode  fs.FileMode
	size  int64
	mtime time.Time
	link  string
}

// snapshot records every entry under dir without following symlinks.
func snapshot(tb testing.TB, dir string) map[string]entry {
	tb.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		en := entry{mode: fi.Mode(), mtime: fi.ModTime()}
		if fi.Mode().IsRegular() {
			en.size = fi.Size()
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if en.link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		out[p] = en
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func assertSameTree(tb testing.TB, what string, before, after map[string]entry) {
	tb.Helper()
	for p, b := range before {
		a, ok := after[p]
		if !ok {
			tb.Fatalf("%s: %s was removed", what, p)
		}
		if a != b {
			tb.Fatalf("%s: %s changed: %+v → %+v", what, p, b, a)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			tb.Fatalf("%s: %s appeared", what, p)
		}
	}
}

// realPath resolves symlinks in an existing path (the temp folder itself may sit behind one).
func realPath(tb testing.TB, p string) string {
	tb.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func fileID(tb testing.TB, p string) fileid.ID {
	tb.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		tb.Fatal(err)
	}
	return fileid.Of(fi)
}

// ---------------------------------------------------------------------------------------------
// The captures from SRS 7.0.18.

type fixtureLine struct {
	Method    string          `json:"method"`
	Path      string          `json:"path"`
	UserAgent string          `json:"user_agent"`
	Body      json.RawMessage `json:"body"`
}

// fixtureDir is the folder of the SRS 7.0.18 captures: $SRS_FIXTURES, or the repository's
// testdata/srs.
func fixtureDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("SRS_FIXTURES")
	if dir == "" {
		dir = filepath.Join("..", "testdata", "srs")
	}
	if _, err := os.Stat(filepath.Join(dir, "srs-7.0.18-abs-paths.jsonl")); err != nil {
		tb.Fatalf("SRS captures not found (%v): set SRS_FIXTURES to the folder holding srs-7.0.18-*.jsonl", err)
	}
	return dir
}

func loadFixture(tb testing.TB, name string) []fixtureLine {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir(tb), name))
	if err != nil {
		tb.Fatal(err)
	}
	var out []fixtureLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var l fixtureLine
		if err := json.Unmarshal(line, &l); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(out) == 0 {
		tb.Fatalf("%s: empty", name)
	}
	return out
}

// fields decodes a hook body, keeping numbers as written.
func fields(tb testing.TB, body []byte) map[string]any {
	tb.Helper()
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		tb.Fatalf("body %s: %v", body, err)
	}
	return m
}

func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimRight(b.String(), "\n")
}

// setFields replaces string fields of a raw SRS body in place, so that everything else (key
// order, number formatting) stays byte for byte as SRS sent it.
func setFields(tb testing.TB, body []byte, set map[string]string) []byte {
	tb.Helper()
	m := fields(tb, body)
	out := string(body)
	for k, v := range set {
		old, ok := m[k].(string)
		if !ok {
			tb.Fatalf("body has no string %q: %s", k, body)
		}
		from := jsonString(k) + ":" + jsonString(old)
		if n := strings.Count(out, from); n != 1 {
			tb.Fatalf("%s occurs %d times in %s", from, n, body)
		}
		out = strings.Replace(out, from, jsonString(k)+":"+jsonString(v), 1)
	}
	// Check the result still decodes to what was meant.
	m2 := fields(tb, []byte(out))
	for k, v := range set {
		if m2[k] != v {
			tb.Fatalf("rewrite of %q gave %v", k, m2[k])
		}
	}
	return []byte(out)
}

// marshal encodes a body built in a test, without HTML escaping (as SRS writes it).
func marshal(tb testing.TB, m map[string]any) string {
	tb.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		tb.Fatal(err)
	}
	return strings.TrimRight(b.String(), "\n")
}

// ---------------------------------------------------------------------------------------------

// blackhole is a TCP listener on loopback that accepts connections and never answers, like a
// Redis that hangs.
func blackhole(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

func isInputError(err error) (*hook.InputError, bool) {
	var in *hook.InputError
	ok := errors.As(err, &in)
	return in, ok
}
