package postproc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/postproc"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/uploader"
	"github.com/srs-offload/srs-offload/webhook"
)

var secret = []byte("whsec-post-test")

// receiver is a real webhook receiver on a fixed loopback port that can go down and come back:
// it checks every signature and keeps each event once by its id.
type receiver struct {
	t      testing.TB
	addr   string
	status int // answered to every delivery

	mu       sync.Mutex
	srv      *http.Server
	events   map[string]webhook.Event
	requests int
	badSigs  int
	arrived  chan struct{}
}

func newReceiver(t testing.TB, status int) *receiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, addr: ln.Addr().String(), status: status, events: map[string]webhook.Event{}, arrived: make(chan struct{}, 1000)}
	r.serve(ln)
	t.Cleanup(r.down)
	return r
}

func (r *receiver) URL() string { return "http://" + r.addr + "/hooks/srs" }

func (r *receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle)}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go srv.Serve(ln)
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if err := webhook.Verify(secret, req.Header.Get(webhook.HeaderSignature), body, 5*time.Minute, time.Now()); err != nil {
		r.badSigs++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev webhook.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != req.Header.Get(webhook.HeaderEventID) {
		r.t.Errorf("body %s: %v, or its id differs from the header's %q", body, err, req.Header.Get(webhook.HeaderEventID))
	}
	if r.status != 0 {
		w.WriteHeader(r.status)
		return
	}
	if _, seen := r.events[ev.ID]; !seen {
		r.events[ev.ID] = ev
		r.arrived <- struct{}{}
	}
}

// down stops the receiver: connections are refused until up.
func (r *receiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}

// up listens on the same address again.
func (r *receiver) up() {
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.serve(ln)
}

func (r *receiver) snapshot() (map[string]webhook.Event, int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]webhook.Event, len(r.events))
	for k, v := range r.events {
		m[k] = v
	}
	return m, r.requests, r.badSigs
}

// counting counts the deliveries that failed in transport (connection refused while down).
type counting struct {
	mu     sync.Mutex
	failed int
}

func (c *counting) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		c.mu.Lock()
		c.failed++
		c.mu.Unlock()
	}
	return resp, err
}

func (c *counting) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

// rig is a post stage on a real redis-server and a real S3 server.
type rig struct {
	rs    *redistest.Server
	up    *uploader.Uploader
	qc    *queue.Client
	stage *postproc.Stage
	srv   *postproc.Server
	opts  postproc.Options
	log   *slog.Logger
}

const node = "n1"

func newRig(t testing.TB, change func(*postproc.Stage)) *rig {
	t.Helper()
	rs := redistest.Start(t)
	s3 := s3test.Fake(t, nil)
	up := s3.Uploader(t, nil)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	qc := queue.NewClient(asynq.RedisClientOpt{Addr: rs.Addr}, queue.Options{Node: node, MaxRetry: 25, Timeout: time.Minute, Dedup: time.Minute})
	t.Cleanup(func() { qc.Close() })
	st := &postproc.Stage{Store: up, Queue: qc, Tasks: queue.PostOptions{MaxRetry: 40, Timeout: time.Minute}, Log: log,
		PublicURL: "https://cdn.example.com/{key}"}
	if change != nil {
		change(st)
	}
	r := &rig{rs: rs, up: up, qc: qc, stage: st, log: log,
		opts: postproc.Options{Node: node, Concurrency: 4, RetryBase: 200 * time.Millisecond, RetryMax: 2 * time.Second,
			ShutdownTimeout: 5 * time.Second, PollInterval: 50 * time.Millisecond, Log: log}}
	return r
}

func (r *rig) start(t testing.TB) {
	t.Helper()
	r.srv = postproc.NewServer(asynq.RedisClientOpt{Addr: r.rs.Addr}, r.opts, r.stage)
	if err := r.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.srv.Shutdown(context.Background()) })
}

// store puts bytes in storage as the worker would have.
func (r *rig) store(t testing.TB, key string, b []byte) {
	t.Helper()
	typ, _ := media.ForDVR(key)
	if _, err := r.up.Put(context.Background(), key, bytes.NewReader(b), int64(len(b)), typ, "test"); err != nil {
		t.Fatal(err)
	}
}
