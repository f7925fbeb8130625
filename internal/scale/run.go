package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/srs-offload/srs-offload/internal/testbed"
)

// offloadProc is the running srs-offload serve.
type offloadProc struct {
	*testbed.Proc
	listen, admin string
}

// offloadConfig is the default config, except the servers, the root, the node name, a short
// shutdown, and playlist.live for the served mode.
func (e *env) offloadConfig(listen, admin, root, bucket, mode string) string {
	playlist := ""
	if mode == "served" {
		playlist = "playlist: {live: served}\n"
	}
	return e.opt.extraYAML() + fmt.Sprintf(`# written by internal/scale
listen: %s
admin: {listen: %s}
node: scale
redis: {addr: %s}
roots: [%q]
storage:
  endpoint: %s
  bucket: %s
  path_style: true
  access_key: %s
  secret_key: %s
worker: {shutdown_timeout: 5s}
debug: {pprof: true}
%s`, listen, admin, e.redis.Addr, root, "http://"+e.proxy.addr, bucket, e.s3.AccessKey, e.s3.SecretKey, playlist)
}

func (e *env) startOffload(dir, root, bucket, mode string) (*offloadProc, error) {
	listen, err := testbed.FreeAddr()
	if err != nil {
		return nil, err
	}
	admin, err := testbed.FreeAddr()
	if err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "srs-offload.yaml")
	if err := os.WriteFile(config, []byte(e.offloadConfig(listen, admin, root, bucket, mode)), 0o600); err != nil {
		return nil, err
	}
	p, err := testbed.Start("srs-offload serve", filepath.Join(dir, "srs-offload.log"), nil, e.bin, "serve", "-c", config)
	if err != nil {
		return nil, err
	}
	o := &offloadProc{Proc: p, listen: listen, admin: admin}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := httpGet("http://" + admin + "/metrics"); err == nil {
			if err := p.WaitListen(listen, 10*time.Second); err != nil {
				return nil, err
			}
			return o, nil
		}
		if !p.Running() {
			return nil, fmt.Errorf("srs-offload serve exited at start:\n%s", p.LogTail())
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("srs-offload serve did not answer /metrics on %s:\n%s", admin, p.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitIdle waits until the process uses next to no CPU (start-up done), at most timeout.
func waitIdle(pid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	last, quiet := testbed.CPUTime(pid), 0
	for time.Now().Before(deadline) && quiet < 3 {
		time.Sleep(100 * time.Millisecond)
		now := testbed.CPUTime(pid)
		if now-last <= 10*time.Millisecond {
			quiet++
		} else {
			quiet = 0
		}
		last = now
	}
}

// run is one N in one mode.
type run struct {
	e      *env
	o      *offloadProc
	d      *driver
	bucket string
}

func (d *driver) hlsOKNow() int64 {
	if d == nil {
		return 0
	}
	return d.hlsOK.Load()
}

// result is what one run measured: its snapshots and the driver's findings.
type result struct {
	n       int
	mode    string
	segSize int
	// snapshots: idle before the streams (base0, base1), after every on_publish (pub), a quarter
	// into the segments (a) and at their end (b), after the drain (end) and idle with the N
	// streams still active (idle)
	base0, base1, pub, a, b, end, idle snap
	offered                            float64
	hlsLat, pubLat, unpubLat, lag      []time.Duration // sorted
	hlsOK, hlsFailed, otherFailed      int64
	unsent, late                       int64
	firstErr                           error
	driverStuck                        bool // the streams had not finished when the harness stopped waiting
	waited                             time.Duration
	// where Redis's memory is after the sessions end, by keyClass: bytes and keys
	memBytes, memKeys     map[string]float64
	drained               bool
	drainTook             time.Duration
	logErrors             int
	firstLogError         string
	loadBefore, loadAfter string
}

func (e *env) runOne(n int, mode string) (result, error) {
	res := result{n: n, mode: mode, segSize: e.opt.segSize, loadBefore: testbed.LoadAvg()}
	e.seq++
	name := fmt.Sprintf("scale-%d-%s-%d", n, mode, e.seq)
	dir := filepath.Join(e.tmp, "runs", name)
	root := filepath.Join(e.roots, name)
	for _, d := range []string{dir, filepath.Join(root, "live")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return res, err
		}
	}
	defer os.RemoveAll(root)
	if err := e.s3.CreateBucket(name); err != nil {
		return res, err
	}
	ownCmd("flushall", 1)
	if err := e.redis.Client.FlushAll(context.Background()).Err(); err != nil {
		return res, err
	}
	o, err := e.startOffload(dir, root, name, mode)
	if err != nil {
		return res, err
	}
	defer func() {
		if o.Running() {
			o.Kill()
		}
	}()
	r := &run{e: e, o: o, bucket: name}
	waitIdle(o.Pid(), 10*time.Second)

	e.logf("N=%d %s: idle baseline %v", n, mode, e.opt.idle)
	if res.base0, err = r.take(); err != nil {
		return res, err
	}
	time.Sleep(e.opt.idle)
	if res.base1, err = r.take(); err != nil {
		return res, err
	}

	t0 := time.Now().Add(200 * time.Millisecond)
	d := newDriver(n, root, o.listen, e.fx, e.opt.segSize, t0, e.opt.dur, e.opt.timeout)
	r.d = d
	res.offered = d.offered()
	e.logf("N=%d %s: %d streams, %.0f on_hls/s offered, for %v", n, mode, n, res.offered, e.opt.dur)
	d.start()
	sleepUntil(t0.Add(segmentEvery + publishGap/6))
	if res.pub, err = r.take(); err != nil {
		return res, err
	}
	sleepUntil(t0.Add(publishGap + e.opt.dur/4))
	if res.a, err = r.take(); err != nil {
		return res, err
	}
	var profiled chan struct{}
	if e.opt.profiles != "" {
		profiled = make(chan struct{})
		go func() {
			defer close(profiled)
			secs := int(time.Until(d.sendEnd).Seconds())
			e.fetch(o, fmt.Sprintf("profile?seconds=%d", max(secs, 1)), filepath.Join(e.opt.profiles, name+".cpu.pprof"))
		}()
	}
	sleepUntil(d.sendEnd)
	if e.opt.profiles != "" {
		e.fetch(o, "goroutine?debug=1", filepath.Join(e.opt.profiles, name+".goroutines.txt"))
		<-profiled
	}
	if res.b, err = r.take(); err != nil {
		return res, err
	}
	e.logf("N=%d %s: sending ended: %d on_hls answered (%.0f/s in the window), %d tasks waiting; waiting for the hooks in flight and on_unpublish",
		n, mode, res.b.hlsOK, float64(res.b.hlsOK-res.a.hlsOK)/res.b.at.Sub(res.a.at).Seconds(), res.b.backlog())
	done := make(chan struct{})
	go func() { d.wait(); close(done) }()
	res.waited = 2*e.opt.timeout + 30*time.Second
	select {
	case <-done:
	case <-time.After(res.waited):
		res.driverStuck = true
	}

	// The drain: until no task is left (uploads, the sessions' ends), at most opt.drain.
	start := time.Now()
	for {
		var s snap
		if err := r.queues(context.Background(), &s); err != nil {
			return res, err
		}
		if s.backlog() == 0 {
			res.drained = true
			break
		}
		if time.Since(start) > e.opt.drain {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	res.drainTook = time.Since(start)
	if res.end, err = r.take(); err != nil {
		return res, err
	}
	if res.memBytes, res.memKeys, err = r.memSample(context.Background(), 4000); err != nil {
		return res, err
	}
	e.logf("N=%d %s: drained %v after %v (%d tasks left); idle with %d streams active %v", n, mode, res.drained, res.drainTook.Round(time.Second), res.end.backlog(), n, e.opt.idle)
	time.Sleep(e.opt.idle)
	if res.idle, err = r.take(); err != nil {
		return res, err
	}

	d.mu.Lock()
	res.hlsLat, res.pubLat, res.unpubLat, res.lag = slices.Clone(d.hlsLat), slices.Clone(d.pubLat), slices.Clone(d.unpubLat), slices.Clone(d.lag)
	res.firstErr = d.firstErr
	d.mu.Unlock()
	for _, l := range [][]time.Duration{res.hlsLat, res.pubLat, res.unpubLat, res.lag} {
		slices.Sort(l)
	}
	res.hlsOK, res.hlsFailed, res.otherFailed = d.hlsOK.Load(), d.hlsFailed.Load(), d.otherFailed.Load()
	res.unsent, res.late = d.unsent.Load(), d.late.Load()

	if err := o.Stop(20 * time.Second); err != nil {
		e.logf("N=%d %s: %v", n, mode, err)
	}
	b, _ := os.ReadFile(o.LogPath)
	for _, l := range bytes.Split(b, []byte("\n")) {
		if bytes.Contains(l, []byte("level=ERROR")) || bytes.Contains(l, []byte(`"level":"ERROR"`)) {
			if res.logErrors == 0 {
				res.firstLogError = string(l)
			}
			res.logErrors++
		}
	}
	// versitygw's posix backend keeps a bucket as a folder: removing it ends the bucket and
	// frees the disk for the next run.
	os.RemoveAll(filepath.Join(e.s3.DataDir, name))
	res.loadAfter = testbed.LoadAvg()
	e.logf("N=%d %s: on_hls p50 %v p99 %v, %d failed, %d unsent; load average %s", n, mode,
		pct(res.hlsLat, 0.5), pct(res.hlsLat, 0.99), res.hlsFailed, res.unsent, res.loadAfter)
	return res, nil
}

// fetch saves one of srs-offload's pprof endpoints (debug.pprof) into path.
func (e *env) fetch(o *offloadProc, what, path string) {
	c := &http.Client{Timeout: 10 * time.Minute}
	resp, err := c.Get("http://" + o.admin + "/debug/pprof/" + what)
	if err != nil {
		e.logf("pprof %s: %v", what, err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		e.logf("pprof %s: %v", what, err)
		return
	}
	io.Copy(f, resp.Body)
	f.Close()
}

func (o options) extraYAML() string {
	if o.extra == "" {
		return ""
	}
	return "# -config\n" + o.extra + "\n"
}
