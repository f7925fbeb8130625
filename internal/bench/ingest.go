package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/srs-offload/srs-offload/internal/testbed"
)

// B1: on_hls hooks at the receiver. srs-offload runs as `hooks` (the receiver alone: validate,
// spool, playlist ledger, durable enqueue in Redis); the baseline is a Go handler that only parses
// the JSON and logs a line. Both get the same bodies from the same closed-loop load generator.

func (e *env) benchIngest() section {
	s := section{id: "b1", title: "B1 ingest: on_hls at the receiver",
		what: fmt.Sprintf("%s on_hls POSTs (the SRS 7.0.18 fixture body, each naming a new %d-byte segment file) from %d concurrent clients in a closed loop, "+
			"each request on a new connection as SRS does. srs-offload runs as `hooks` (the receiver: it validates, hard-links the file into the spool, "+
			"records it in the playlist ledger and enqueues the task durably in Redis before it answers); the baseline is a minimal Go handler in the harness "+
			"that parses the JSON, logs one line to a file and answers `{\"code\":0}`.", thousands(e.sc.ingestN), ingestFileSize, e.sc.ingestConns)}
	s.err = e.ingest(&s)
	return s
}

const (
	ingestFileSize = 188 * 7 * 16 // 16 UDP-sized chunks of TS packets, as hook/bench_test.go
	ingestWarmup   = 500          // requests sent before each measured run, not measured
)

func (e *env) ingest(s *section) error {
	base, err := startLogOnly(filepath.Join(e.tmp, "b1-baseline.log"))
	if err != nil {
		return err
	}
	defer base.Close()
	content := make([]byte, ingestFileSize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range content {
		content[i] = byte(r.Uint32())
	}

	var baseRes, oursRes []loadResult
	var ratios []float64
	var perRep []string
	var cpuOurs, cpuRedis []float64
	for rep := range e.opt.reps {
		root, all, err := e.ingestData(content)
		if err != nil {
			return err
		}
		warm, bodies := all[:ingestWarmup], all[ingestWarmup:]
		var b, o loadResult
		var ou usage
		runBase := func() error {
			e.logf("B1 rep %d: baseline, %d requests", rep+1, len(bodies))
			runLoad(base.url, warm, e.sc.ingestConns)
			b = runLoad(base.url, bodies, e.sc.ingestConns)
			if b.failed > 0 {
				return fmt.Errorf("baseline: %d requests failed: %v", b.failed, b.firstErr)
			}
			return nil
		}
		runOurs := func() error {
			e.logf("B1 rep %d: srs-offload hooks, %d requests", rep+1, len(bodies))
			var err error
			o, ou, err = e.ingestOurs(rep, root, warm, bodies)
			return err
		}
		steps := []func() error{runBase, runOurs}
		if rep%2 == 1 {
			steps = []func() error{runOurs, runBase}
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		os.RemoveAll(root)
		baseRes, oursRes = append(baseRes, b), append(oursRes, o)
		ratios = append(ratios, o.rate()/b.rate())
		cpuOurs = append(cpuOurs, float64(ou.own.Microseconds())/float64(len(o.lat)))
		cpuRedis = append(cpuRedis, float64(ou.redis.Microseconds())/float64(len(o.lat)))
		perRep = append(perRep, fmt.Sprintf("rep %d: baseline %s req/s (p50 %s, p99 %s), srs-offload %s req/s (p50 %s, p99 %s): %s",
			rep+1, thousands(int(b.rate())), ms(pct(b.lat, .5)), ms(pct(b.lat, .99)),
			thousands(int(o.rate())), ms(pct(o.lat, .5)), ms(pct(o.lat, .99)), ratio(o.rate()/b.rate())))
	}

	med := func(rs []loadResult, f func(loadResult) float64) float64 {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		return median(xs)
	}
	rate := func(r loadResult) float64 { return r.rate() }
	p := func(q float64) func(loadResult) float64 {
		return func(r loadResult) float64 { return float64(pct(r.lat, q)) }
	}
	oRate, bRate := med(oursRes, rate), med(baseRes, rate)
	oP99 := time.Duration(med(oursRes, p(.99)))
	rt := mean(ratios)
	s.tables = append(s.tables, table{
		header: []string{"", "srs-offload `hooks`", "log-only Go handler (baseline)", "srs-offload / baseline", "target", "met?"},
		rows: [][]string{
			{"requests/s", thousands(int(oRate)), thousands(int(bRate)), ratio(rt), "≥ 0.50×", yesNo(rt >= 0.5)},
			{"p50 latency", ms(time.Duration(med(oursRes, p(.5)))), ms(time.Duration(med(baseRes, p(.5)))), "", "", ""},
			{"p99 latency", ms(oP99), ms(time.Duration(med(baseRes, p(.99)))), "", "≤ 10 ms", yesNo(oP99 <= 10*time.Millisecond)},
			{"max latency", ms(time.Duration(med(oursRes, p(1)))), ms(time.Duration(med(baseRes, p(1)))), "", "", ""},
		},
	})
	s.summary = append(s.summary,
		[]string{"B1 ingest rate", "≥ 0.50× log-only handler", fmt.Sprintf("%s (%s vs %s req/s)", ratio(rt), thousands(int(oRate)), thousands(int(bRate))), yesNo(rt >= 0.5)},
		[]string{"B1 ingest p99", "≤ 10 ms", fmt.Sprintf("%s at %d concurrent clients", ms(oP99), e.sc.ingestConns), yesNo(oP99 <= 10*time.Millisecond)})
	s.notes = append(s.notes, perRep...)
	s.notes = append(s.notes, fmt.Sprintf("CPU per request: srs-offload %.0f µs, Redis %.0f µs (median of the repetitions; from /proc/<pid>/stat over the run).", median(cpuOurs), median(cpuRedis)))
	s.notes = append(s.notes,
		fmt.Sprintf("Each measured run follows %d warm-up requests (other files) to the same server.", ingestWarmup),
		"Latency is from before the request is written until the answer is read, connection set-up included; the rate is requests over the wall time of the whole run.",
		fmt.Sprintf("The load generator is closed-loop: %d clients, each sending its next request when the last is answered, so p99 grows with the queue in front of the slower server (about clients ÷ rate).", e.sc.ingestConns),
		"After every srs-offload run the harness checks that Redis holds one pending task per request. The worker is not running (`hooks`), so the uploads do not compete for the cores; B2 and B4 run the whole `serve`.",
		"The baseline runs inside the harness process (which is also the load generator); srs-offload, Redis and the harness are separate processes on the same cores.")
	return nil
}

// ingestData makes a new root with one file per request and the request bodies naming them.
func (e *env) ingestData(content []byte) (string, [][]byte, error) {
	root, err := e.newRoot("b1")
	if err != nil {
		return "", nil, err
	}
	if err := writePlaylist(root, "live", "livestream", nil); err != nil {
		return "", nil, err
	}
	bodies := make([][]byte, ingestWarmup+e.sc.ingestN)
	for i := range bodies {
		testbed.Halt()
		rel := fmt.Sprintf("live/livestream-%d.ts", i)
		if err := os.WriteFile(filepath.Join(root, rel), content, 0o644); err != nil {
			return "", nil, err
		}
		bodies[i] = e.hlsBody(root, "live", "livestream", rel, i)
	}
	return root, bodies, nil
}

func (e *env) ingestOurs(rep int, root string, warm, bodies [][]byte) (loadResult, usage, error) {
	var u usage
	bucket := e.name("b1") // not used by `hooks`, which never reaches storage
	o, err := e.startOffload("hooks", e.name("b1-hooks"), root, bucket, defaultMode)
	if err != nil {
		return loadResult{}, u, err
	}
	defer o.Kill()
	// The reconciler's first scan of the root (every file is new) must not share the run.
	waitIdle(o.Pid(), 10*time.Second)
	if w := runLoad("http://"+o.listen+"/api/v1/hls", warm, e.sc.ingestConns); w.failed > 0 {
		return w, u, fmt.Errorf("srs-offload: %d warm-up requests failed: %v", w.failed, w.firstErr)
	}
	wait := e.profile(o, fmt.Sprintf("b1-ingest-rep%d", rep+1), e.profileSeconds("b1", time.Duration(len(bodies))*time.Second/2000))
	m := e.meter(o.Pid())
	res := runLoad("http://"+o.listen+"/api/v1/hls", bodies, e.sc.ingestConns)
	u.elapsed = res.elapsed
	m.stop(&u)
	e.ranOurs("b1", res.elapsed)
	wait()
	if res.failed > 0 {
		return res, u, fmt.Errorf("srs-offload: %d requests failed: %v", res.failed, res.firstErr)
	}
	n, err := e.redis.Client.LLen(context.Background(), "asynq:{hls@bench}:pending").Result()
	if err != nil {
		return res, u, err
	}
	if int(n) != len(warm)+len(bodies) {
		return res, u, fmt.Errorf("srs-offload: %d pending tasks in Redis after %d hooks", n, len(warm)+len(bodies))
	}
	if err := o.finish(); err != nil {
		return res, u, err
	}
	return res, u, e.redis.Flush()
}

// logOnly is the baseline receiver: it parses the hook and logs it.
type logOnly struct {
	url  string
	srv  *http.Server
	logf *os.File
}

func startLogOnly(logPath string) (*logOnly, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(f, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Close()
		return nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		var req struct {
			Action   string          `json:"action"`
			ClientID json.RawMessage `json:"client_id"`
			App      string          `json:"app"`
			Stream   string          `json:"stream"`
			Cwd      string          `json:"cwd"`
			File     string          `json:"file"`
			URL      string          `json:"url"`
			M3U8URL  string          `json:"m3u8_url"`
			SeqNo    int64           `json:"seq_no"`
			Duration float64         `json:"duration"`
		}
		if err == nil {
			err = json.Unmarshal(b, &req)
		}
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"code":400}`)
			return
		}
		log.Info("hook", "action", req.Action, "app", req.App, "stream", req.Stream, "file", req.File, "seq_no", req.SeqNo)
		io.WriteString(w, `{"code":0}`)
	})
	l := &logOnly{url: "http://" + ln.Addr().String() + "/api/v1/hls", srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, logf: f}
	go l.srv.Serve(ln)
	return l, nil
}

func (l *logOnly) Close() {
	l.srv.Close()
	l.logf.Close()
}

// waitIdle waits until the process has used almost no CPU for 300 ms (at most timeout).
func waitIdle(pid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	last := testbed.CPUTicks(pid)
	quiet := 0
	for time.Now().Before(deadline) && quiet < 3 {
		time.Sleep(100 * time.Millisecond)
		now := testbed.CPUTicks(pid)
		if now-last <= 1 { // clock ticks of 10 ms
			quiet++
		} else {
			quiet = 0
		}
		last = now
	}
}
