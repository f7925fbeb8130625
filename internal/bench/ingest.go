package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
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
			"that parses the JSON, logs one line to a file and answers `{\"code\":0}`. Beside them, as the measured bound of the rate target, two more handlers in the harness "+
			"do only what any receiver that records the hook durably before it answers must do: parse the JSON and make one asynq enqueue in the same Redis "+
			"(and, in the second, one small Lua script first, the price of a ledger entry).", thousands(e.sc.ingestN), ingestFileSize, e.sc.ingestConns)}
	s.err = e.ingest(&s)
	return s
}

const (
	ingestFileSize = 188 * 7 * 16 // 16 UDP-sized chunks of TS packets, as hook/bench_test.go
	ingestWarmup   = 500          // requests sent before each measured run, not measured
)

// harnessRun is one receiver in the harness process under B1's load: its results per repetition.
type harnessRun struct {
	name, short string
	rc          *receiver
	pending     bool // it enqueues: Redis must hold one task per request afterwards
	res         []loadResult
	cpu, redis  []float64 // µs per request: the harness process (load generator included), Redis
	ratio       []float64 // rate over the log-only handler's
}

func (e *env) ingest(s *section) error {
	base, err := startLogOnly(filepath.Join(e.tmp, "b1-baseline.log"))
	if err != nil {
		return err
	}
	defer base.Close()
	durable, err := startDurable(e.redis.Addr, false)
	if err != nil {
		return err
	}
	defer durable.Close()
	ledger, err := startDurable(e.redis.Addr, true)
	if err != nil {
		return err
	}
	defer ledger.Close()
	runs := []*harnessRun{
		{name: "log-only Go handler (baseline)", short: "log-only", rc: base},
		{name: "durable enqueue handler (bound)", short: "durable enqueue", rc: durable, pending: true},
		{name: "durable enqueue + ledger script (bound)", short: "durable enqueue + ledger script", rc: ledger, pending: true},
	}
	content := make([]byte, ingestFileSize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range content {
		content[i] = byte(r.Uint32())
	}

	var oursRes []loadResult
	var ratios []float64
	var perRep []string
	var cpuOurs, cpuRedis, cpuGen []float64
	for rep := range e.opt.reps {
		root, all, err := e.ingestData(content)
		if err != nil {
			return err
		}
		warm, bodies := all[:ingestWarmup], all[ingestWarmup:]
		var o loadResult
		var ou usage
		var steps []func() error
		for _, h := range runs {
			steps = append(steps, func() error {
				e.logf("B1 rep %d: %s, %d requests", rep+1, h.short, len(bodies))
				runLoad(h.rc.url, warm, e.sc.ingestConns)
				var u usage
				m := e.meter(0)
				b := runLoad(h.rc.url, bodies, e.sc.ingestConns)
				m.stop(&u)
				if b.failed > 0 {
					return fmt.Errorf("%s: %d requests failed: %v", h.short, b.failed, b.firstErr)
				}
				if h.pending {
					if err := e.boundPending(len(warm) + len(bodies)); err != nil {
						return err
					}
					if err := e.redis.Flush(); err != nil {
						return err
					}
				}
				h.res = append(h.res, b)
				h.cpu = append(h.cpu, float64(u.own.Microseconds())/float64(len(b.lat)))
				h.redis = append(h.redis, float64(u.redis.Microseconds())/float64(len(b.lat)))
				return nil
			})
		}
		steps = append(steps, func() error {
			e.logf("B1 rep %d: srs-offload hooks, %d requests", rep+1, len(bodies))
			var err error
			o, ou, err = e.ingestOurs(rep, root, warm, bodies)
			return err
		})
		if rep%2 == 1 {
			slices.Reverse(steps)
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		os.RemoveAll(root)
		b := runs[0].res[rep]
		for _, h := range runs {
			h.ratio = append(h.ratio, h.res[rep].rate()/b.rate())
		}
		oursRes = append(oursRes, o)
		ratios = append(ratios, o.rate()/b.rate())
		cpuOurs = append(cpuOurs, float64(ou.own.Microseconds())/float64(len(o.lat)))
		cpuRedis = append(cpuRedis, float64(ou.redis.Microseconds())/float64(len(o.lat)))
		cpuGen = append(cpuGen, float64(ou.harness.Microseconds())/float64(len(o.lat)))
		line := fmt.Sprintf("rep %d: srs-offload %s req/s (p50 %s, p99 %s): %s", rep+1,
			thousands(int(o.rate())), ms(pct(o.lat, .5)), ms(pct(o.lat, .99)), ratio(o.rate()/b.rate()))
		for _, h := range runs {
			x := h.res[rep]
			line += fmt.Sprintf("; %s %s req/s (p50 %s, p99 %s)", h.short, thousands(int(x.rate())), ms(pct(x.lat, .5)), ms(pct(x.lat, .99)))
		}
		perRep = append(perRep, line)
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
	oRate, bRate := med(oursRes, rate), med(runs[0].res, rate)
	oP99 := time.Duration(med(oursRes, p(.99)))
	rt := mean(ratios)
	header := []string{"", "srs-offload `hooks`"}
	col := func(label string, ours string, f func(h *harnessRun) string) []string {
		row := []string{label, ours}
		for _, h := range runs {
			row = append(row, f(h))
		}
		return row
	}
	for _, h := range runs {
		header = append(header, h.name)
	}
	header = append(header, "srs-offload / baseline", "target", "met?")
	lat := func(q float64) func(h *harnessRun) string {
		return func(h *harnessRun) string { return ms(time.Duration(med(h.res, p(q)))) }
	}
	s.tables = append(s.tables, table{
		header: header,
		rows: [][]string{
			append(col("requests/s", thousands(int(oRate)), func(h *harnessRun) string { return thousands(int(med(h.res, rate))) }), ratio(rt), "≥ 0.50×", yesNo(rt >= 0.5)),
			append(col("rate / log-only", ratio(rt), func(h *harnessRun) string { return ratio(mean(h.ratio)) }), "", "", ""),
			append(col("p50 latency", ms(time.Duration(med(oursRes, p(.5)))), lat(.5)), "", "", ""),
			append(col("p99 latency", ms(oP99), lat(.99)), "", "≤ 10 ms", yesNo(oP99 <= 10*time.Millisecond)),
			append(col("max latency", ms(time.Duration(med(oursRes, p(1)))), lat(1)), "", "", ""),
			append(col("CPU per request: receiver process", fmt.Sprintf("%.0f µs", median(cpuOurs)),
				func(h *harnessRun) string {
					return fmt.Sprintf("%.0f µs (%.0f µs less the load generator)", median(h.cpu), median(h.cpu)-median(cpuGen))
				}), "", "", ""),
			append(col("CPU per request: Redis", fmt.Sprintf("%.0f µs", median(cpuRedis)),
				func(h *harnessRun) string { return fmt.Sprintf("%.0f µs", median(h.redis)) }), "", "", ""),
		},
	})
	bound := runs[1]
	bRt := mean(bound.ratio)
	result := fmt.Sprintf("%s (%s vs %s req/s); bound: durable enqueue handler %s of log-only, %s with the ledger script", ratio(rt), thousands(int(oRate)), thousands(int(bRate)), ratio(bRt), ratio(mean(runs[2].ratio)))
	if rt >= bRt {
		result += " (srs-offload is at or above that bound on this run)"
	}
	s.summary = append(s.summary,
		[]string{"B1 ingest rate", "≥ 0.50× log-only handler", result, yesNo(rt >= 0.5)},
		[]string{"B1 ingest p99", "≤ 10 ms", fmt.Sprintf("%s at %d concurrent clients", ms(oP99), e.sc.ingestConns), yesNo(oP99 <= 10*time.Millisecond)})
	s.notes = append(s.notes, perRep...)
	verdict := fmt.Sprintf("srs-offload reaches %.0f%% of it", 100*rt/bRt)
	if rt >= bRt {
		verdict = "srs-offload is at or above it (the bound is no bound on this run)"
	}
	s.notes = append(s.notes,
		fmt.Sprintf("The bound: the durable enqueue handler (in the harness) parses the same JSON and makes one asynq enqueue of an offload task (srs-offload's own payload type and task options, about the same payload size) into the same Redis (appendonly, everysec) before it answers: what any receiver that records a hook durably must do, without validation, the spool link or the playlist ledger. It reaches %s of the log-only handler's rate, %s with one more EVALSHA of a small ledger-like script (a few HSET/ZADD, the cost of srs-offload's announce); %s.", ratio(bRt), ratio(mean(runs[2].ratio)), verdict),
		fmt.Sprintf("CPU per request: from /proc/<pid>/stat over the run, median of the repetitions. The harness's receivers share their process with the load generator, whose own CPU (measured in the harness during the srs-offload runs) is %.0f µs per request; \"less the load generator\" subtracts it.", median(cpuGen)))
	s.notes = append(s.notes,
		fmt.Sprintf("Each measured run follows %d warm-up requests (other files) to the same server.", ingestWarmup),
		"Latency is from before the request is written until the answer is read, connection set-up included; the rate is requests over the wall time of the whole run.",
		fmt.Sprintf("The load generator is closed-loop: %d clients, each sending its next request when the last is answered, so p99 grows with the queue in front of the slower server (about clients ÷ rate).", e.sc.ingestConns),
		"After every srs-offload and durable-handler run the harness checks that Redis holds one pending task per request. The worker is not running (`hooks`), so the uploads do not compete for the cores; B2 and B4 run the whole `serve`.",
		"The harness's receivers run inside the harness process (which is also the load generator); srs-offload, Redis and the harness are separate processes on the same cores. Each repetition runs log-only, durable enqueue, durable enqueue + ledger script, srs-offload, in that order, and in the reverse order in the next repetition.")
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
	prof := fmt.Sprintf("b1-ingest-rep%d", rep+1)
	wait := e.profile(o, prof, e.profileSeconds("b1", time.Duration(len(bodies))*time.Second/2000))
	m, gen := e.meter(o.Pid()), e.meter(0)
	res := runLoad("http://"+o.listen+"/api/v1/hls", bodies, e.sc.ingestConns)
	u.elapsed = res.elapsed
	m.stop(&u)
	var g usage
	gen.stop(&g)
	u.harness = g.own
	e.ranOurs("b1", res.elapsed)
	wait()
	e.ranProfiled("b1", "B1 hooks", prof, len(bodies), u.own)
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
