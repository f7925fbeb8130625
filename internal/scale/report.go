package main

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

type report struct {
	opt                     options
	module                  string
	results                 []result
	loadStart, loadEnd      string
	redisVersion, s3Version string
	rootsFS                 string
	failed                  []string // runs that could not be measured
}

// The hand-written analysis between these markers survives a new run of the harness.
const (
	analysisStart = "<!-- analysis: written by hand, kept by the harness -->"
	analysisEnd   = "<!-- /analysis -->"
)

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case d == 0:
		return "–"
	case f < 10:
		return fmt.Sprintf("%.2f ms", f)
	case f < 100:
		return fmt.Sprintf("%.1f ms", f)
	case f < 10000:
		return fmt.Sprintf("%.0f ms", f)
	default:
		return fmt.Sprintf("%.1f s", f/1000)
	}
}

func thousands(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func num(f float64) string {
	switch a := math.Abs(f); {
	case a >= 100:
		return thousands(int64(math.Round(f)))
	case a >= 10:
		return fmt.Sprintf("%.1f", f)
	default:
		return fmt.Sprintf("%.2f", f)
	}
}

func bytesStr(b float64) string {
	switch a := math.Abs(b); {
	case a >= 10<<20:
		return fmt.Sprintf("%.0f MiB", b/(1<<20))
	case a >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case a >= 10<<10:
		return fmt.Sprintf("%.0f KiB", b/(1<<10))
	case a >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}

func cores(d time.Duration, dt time.Duration) string {
	return fmt.Sprintf("%.2f", d.Seconds()/dt.Seconds())
}

func per(d time.Duration, n float64) string {
	if n <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f µs", float64(d.Microseconds())/n)
}

// ratioTo is x relative to the first run's x (per unit: 1.00 is linear growth in total).
func ratioTo(x, first float64) string {
	if first == 0 || math.IsNaN(x) || math.IsNaN(first) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", x/first)
}

type table struct {
	header []string
	rows   [][]string
}

func (t table) write(b *strings.Builder) {
	fmt.Fprintf(b, "| %s |\n|%s\n", strings.Join(t.header, " | "), strings.Repeat(" --- |", len(t.header)))
	for _, r := range t.rows {
		fmt.Fprintf(b, "| %s |\n", strings.Join(r, " | "))
	}
	b.WriteString("\n")
}

// Derived figures of one run.

func (r result) window() delta { return diff(r.a, r.b) }

func (r result) achieved() float64 {
	w := r.window()
	return float64(w.hls) / w.dt.Seconds()
}

// memPerSegment is Redis's growth per on_hls answered in the window.
func (r result) memPerSegment() float64 {
	w := r.window()
	if w.hls == 0 {
		return math.NaN()
	}
	return float64(w.mem) / float64(w.hls)
}

// memFixedPerStream is what a live stream costs beyond its segments: at a, less the segments'
// share, over N.
func (r result) memFixedPerStream() float64 {
	return (float64(r.a.usedMem-r.base1.usedMem) - r.memPerSegment()*float64(r.a.hlsOK)) / float64(r.n)
}

func (r result) cpuPerSegment() float64 {
	w := r.window()
	if w.hls == 0 {
		return math.NaN()
	}
	return float64(w.off.Microseconds()) / float64(w.hls)
}

func (r result) cmdsPerSegment() float64 {
	w := r.window()
	if w.hls == 0 {
		return math.NaN()
	}
	return float64(w.totalCmds()) / float64(w.hls)
}

// playlistPuts is the live playlist PUTs in the window.
func (r result) playlistPuts() float64 { return float64(r.window().s3req[reqLive]) }

func (r result) idleSweep() delta { return diff(r.end, r.idle) }

// sweepCPU is the CPU of one sweep while idle with the N streams active (0 when none ran).
func (r result) sweepCPU() float64 {
	i := r.idleSweep()
	if i.sweeps == 0 {
		return math.NaN()
	}
	return i.sweepCPU / i.sweeps
}

func (e report) commit() string {
	out, err := exec.Command("git", "-C", e.module, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", e.module, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += " with uncommitted changes"
	}
	return c
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func (rep report) write(path string) error {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	o := rep.opt
	w("# Scale model\n\n")
	w("Written by `make scale` (`go run ./internal/scale`, see [README](../README.md#scale)); the tables are the harness's, the analysis between the markers is kept from the last version of this file.\n\n")
	w("| | |\n| --- | --- |\n")
	w("| date | %s |\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	w("| commit | %s |\n", rep.commit())
	w("| machine | %d cores (runtime.NumCPU), %s, Linux; shared with other work |\n", runtime.NumCPU(), cpuModel())
	w("| load average | %s before the runs, %s after (1, 5, 15 min; the harness's own load included) |\n", rep.loadStart, rep.loadEnd)
	w("| Go | %s |\n", strings.TrimPrefix(runtime.Version(), "go"))
	w("| Redis | %s, appendonly yes (everysec), noeviction |\n", rep.redisVersion)
	w("| S3 | %s, posix backend, on loopback, StatsD request counts |\n", rep.s3Version)
	w("| SRS roots, S3 data | on %s: segments, SRS's playlists, srs-offload's spool and versitygw's objects (`-roots-in`), so that the shared disk of this machine is not the bound; Redis's append-only file is on the disk |\n", rep.rootsFS)
	if o.extra != "" {
		w("| config added | `%s` |\n", o.extra)
	}
	w("| per run | %v of segments per stream (one on_hls every 2 s), idle %v before and after, drain at most %v, segments of %d bytes, hook timeout %v |\n", o.dur, o.idle, o.drain, o.segSize, o.timeout)
	w("\n")
	w("Each run: a new `srs-offload serve` with the default config (except the servers, the root, `node`, `worker.shutdown_timeout: 5s` and, in the served mode, `playlist.live: served`), an empty Redis, a new bucket. ")
	w("It is measured idle for %v (the baseline), then N streams play SRS 7.0.18's hooks (the fixture bodies of testdata/srs, each stream with its own name, client_id and stream_id): ", o.idle)
	w("on_publish at the stream's phase (phases spread evenly over 2 s), then from 3 s later an on_hls every 2 s for a new segment file (written as `.tmp` and renamed, SRS's live playlist rewritten before the hook, SRS's default layout `live/<stream>-<seq>.ts`), for %v, then on_unpublish. ", o.dur)
	w("Every hook is a new connection, as SRS makes it. A stream sends its hooks one at a time, as SRS's per-stream hook queue does: a late answer delays the stream's next hook, which then goes out at once; hooks still due when the %v end are not sent (\"unsent\"). ", o.dur)
	w("The window of the rates, CPU, Redis commands and S3 requests is from a quarter into the segments to their end (the first quarter warms up). After the last hook the harness waits for the queue to drain (at most %v), then measures %v idle with the N streams still active (the sweep visits them until `playlist.idle`, 2 min).\n\n", o.drain, o.idle)
	w("Everything (the load generator, srs-offload, Redis, versitygw) shares the cores of this one machine: beyond what it can take, the figures are those of an overloaded box, reported as measured.\n\n")

	prev, _ := os.ReadFile(path)
	if i := strings.Index(string(prev), analysisStart); i >= 0 {
		if j := strings.Index(string(prev), analysisEnd); j > i {
			w("%s\n\n", string(prev)[i:j+len(analysisEnd)])
		}
	} else {
		w("%s\n\n(no analysis yet)\n\n%s\n\n", analysisStart, analysisEnd)
	}

	for _, f := range rep.failed {
		w("**Run failed:** `%s`\n\n", oneLine(f))
	}
	for _, mode := range o.modes {
		var rs []result
		for _, r := range rep.results {
			if r.mode == mode {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		label := "default config (`playlist.live: bucket`: the live playlist is an object, `playlist.publish_interval: 1s`)"
		if mode == "served" {
			label = "`playlist.live: served` (the live playlist is served from the ledger; the bucket gets the segments and the VoD playlists)"
		}
		w("## %s\n\n", label)
		rep.writeMode(&b, rs)
	}
	if dir := filepath.Dir(path); dir != "" {
		os.MkdirAll(dir, 0o755)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func (rep report) writeMode(b *strings.Builder, rs []result) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	first := rs[0]

	w("### Hooks\n\n")
	t := table{header: []string{"streams", "on_hls offered", "answered (window)", "answered ÷ offered", "p50", "p99", "max", "sent > 2 s late", "unsent at the end", "failed", "on_publish p99", "on_unpublish p99"}}
	for _, r := range rs {
		t.rows = append(t.rows, []string{thousands(int64(r.n)), num(r.offered) + "/s", num(r.achieved()) + "/s", fmt.Sprintf("%.2f", r.achieved()/r.offered),
			ms(pct(r.hlsLat, 0.5)), ms(pct(r.hlsLat, 0.99)), ms(pct(r.hlsLat, 1)), thousands(r.late), thousands(r.unsent),
			thousands(r.hlsFailed + r.otherFailed), ms(pct(r.pubLat, 0.99)), ms(pct(r.unpubLat, 0.99))})
	}
	t.write(b)
	for _, r := range rs {
		if r.firstErr != nil {
			w("- N=%s: %d on_hls and %d other hooks failed, the first: `%s`\n", thousands(int64(r.n)), r.hlsFailed, r.otherFailed, oneLine(r.firstErr.Error()))
		}
		if r.driverStuck {
			w("- N=%s: the streams had not finished %v after the end (hooks in flight); the harness went on.\n", thousands(int64(r.n)), r.waited)
		}
	}
	w("\nLatency is from before the request is written until the answer is read, the connection set-up included; \"sent > 2 s late\" counts on_hls that left more than a segment after their due time (the stream's queue was behind).\n\n")

	w("### Queue\n\n")
	t = table{header: []string{"streams", "segments stored (window)", "stored ÷ offered", "tasks waiting a quarter in", "at the end of the segments", "drain"}}
	for _, r := range rs {
		win := r.window()
		drain := fmt.Sprintf("%v", r.drainTook.Round(time.Second))
		if !r.drained {
			drain = fmt.Sprintf("not within %v: %s tasks left", r.drainTook.Round(time.Second), thousands(r.end.backlog()))
		}
		t.rows = append(t.rows, []string{thousands(int64(r.n)), num(win.stored/win.dt.Seconds()) + "/s", fmt.Sprintf("%.2f", win.stored/win.dt.Seconds()/r.offered),
			thousands(r.a.backlog()), thousands(r.b.backlog()), drain})
	}
	t.write(b)

	w("### Redis memory\n\n")
	t = table{header: []string{"streams", "idle (used_memory)", "per stream, on_publish only", "per live stream, fixed", "per segment", "per stream at the end of the segments", "per stream after the sessions end", "keys per stream after", "per stream ÷ N=" + thousands(int64(first.n))}}
	for _, r := range rs {
		atEnd := float64(r.b.usedMem-r.base1.usedMem) / float64(r.n)
		after := float64(r.end.usedMem-r.base1.usedMem) / float64(r.n)
		firstAfter := float64(first.end.usedMem-first.base1.usedMem) / float64(first.n)
		t.rows = append(t.rows, []string{thousands(int64(r.n)), bytesStr(float64(r.base1.usedMem)),
			bytesStr(float64(r.pub.usedMem-r.base1.usedMem) / float64(r.n)), bytesStr(r.memFixedPerStream()), bytesStr(r.memPerSegment()),
			bytesStr(atEnd), bytesStr(after), num(float64(r.end.keys-r.base1.keys) / float64(r.n)), ratioTo(after, firstAfter)})
	}
	t.write(b)
	w("used_memory deltas from INFO memory. \"Per segment\" is the growth in the window per on_hls answered; \"fixed\" is the rest a quarter in, per stream. Tasks still waiting (the Queue table) are part of the memory; \"after the sessions end\" is after on_unpublish and the drain: what a stream leaves behind until `playlist.retain`, `worker.dedup` and the purged-file records (1 h) expire.\n\n")

	w("Where the memory is after the sessions end (MEMORY USAGE of the shared keys, and of 4,000 random keys scaled to the key count; per stream and per segment stored):\n\n")
	var classes []string
	for _, r := range rs {
		for k := range r.memBytes {
			if !slices.Contains(classes, k) {
				classes = append(classes, k)
			}
		}
	}
	slices.Sort(classes)
	t = table{header: []string{"kind"}}
	for _, r := range rs {
		t.header = append(t.header, fmt.Sprintf("N=%s: per stream", thousands(int64(r.n))), "keys", "per segment")
	}
	for _, cl := range classes {
		row := []string{cl}
		for _, r := range rs {
			st := r.end.stored()
			ps := "–"
			if st > 0 {
				ps = bytesStr(r.memBytes[cl] / st)
			}
			row = append(row, bytesStr(r.memBytes[cl]/float64(r.n)), num(r.memKeys[cl]/float64(r.n)), ps)
		}
		t.rows = append(t.rows, row)
	}
	t.write(b)

	w("### Redis commands\n\n")
	t = table{header: []string{"streams", "commands per segment", "script runs per segment", "Redis CPU per segment", "Redis cores", "per segment ÷ N=" + thousands(int64(first.n)), "top commands per segment"}}
	for _, r := range rs {
		win := r.window()
		var top []string
		type kv struct {
			k string
			v int64
		}
		var all []kv
		for k, v := range win.cmds {
			all = append(all, kv{k, v})
		}
		slices.SortFunc(all, func(a, b kv) int { return cmp.Compare(b.v, a.v) })
		for i, x := range all {
			if i == 8 {
				break
			}
			top = append(top, fmt.Sprintf("%s %.2f", x.k, float64(x.v)/float64(win.hls)))
		}
		scripts := float64(win.cmds["evalsha"]+win.cmds["eval"]) / float64(win.hls)
		t.rows = append(t.rows, []string{thousands(int64(r.n)), num(r.cmdsPerSegment()), num(scripts), per(win.redis, float64(win.hls)), cores(win.redis, win.dt),
			ratioTo(r.cmdsPerSegment(), first.cmdsPerSegment()), strings.Join(top, ", ")})
	}
	t.write(b)
	w("INFO commandstats deltas over the window, less the harness's own commands, per on_hls answered; commands run inside Lua scripts count as commands too (and the script run itself as evalsha). Redis CPU from /proc.\n\n")

	w("### CPU\n\n")
	t = table{header: []string{"streams", "srs-offload cores", "srs-offload CPU per segment", "per segment ÷ N=" + thousands(int64(first.n)), "RSS at the end", "versitygw cores", "load generator cores"}}
	for _, r := range rs {
		win := r.window()
		t.rows = append(t.rows, []string{thousands(int64(r.n)), cores(win.off, win.dt), per(win.off, float64(win.hls)), ratioTo(r.cpuPerSegment(), first.cpuPerSegment()),
			bytesStr(float64(r.b.offRSS)), cores(win.s3, win.dt), cores(win.self, win.dt)})
	}
	t.write(b)
	w("CPU from /proc/<pid>/stat over the window, per on_hls answered (the hook, the upload, its verification, the purge and the playlists of a segment, when the worker keeps up).\n\n")

	w("### Playlist sweep\n\n")
	t = table{header: []string{"streams", "streams visited", "sweeps (idle)", "wall per sweep", "CPU per sweep", "CPU per stream per sweep", "÷ N=" + thousands(int64(first.n)), "srs-offload idle CPU per 5 s: none active", "N active", "wall per sweep under load"}}
	for _, r := range rs {
		i, base, win := r.idleSweep(), diff(r.base0, r.base1), r.window()
		perStream := r.sweepCPU() / float64(r.n)
		firstPer := first.sweepCPU() / float64(first.n)
		wall, loadWall := "–", "–"
		if i.sweeps > 0 {
			wall = ms(time.Duration(i.sweepWall / i.sweeps * float64(time.Second)))
		}
		if win.sweeps > 0 {
			loadWall = ms(time.Duration(win.sweepWall / win.sweeps * float64(time.Second)))
		}
		t.rows = append(t.rows, []string{thousands(int64(r.n)), num(r.idle.metrics["srs_offload_sweep_streams"]), num(i.sweeps), wall,
			msNaN(r.sweepCPU()), usNaN(perStream), ratioTo(perStream, firstPer),
			ms(time.Duration(float64(base.off) / base.dt.Seconds() * 5)), ms(time.Duration(float64(i.off) / i.dt.Seconds() * 5)), loadWall})
	}
	t.write(b)
	w("The sweep runs every 5 s (`playlist.idle`/4, at most 5 s) over every active stream. Its wall and CPU time are srs-offload's own metrics (`srs_offload_sweep_duration_seconds`, `srs_offload_sweep_cpu_seconds_total`: the CPU of the thread the sweeps run on) over the idle spell after the drain; the idle CPU columns are the whole process's, from /proc, per 5 s, with no stream and with the N streams active (after the drain: a queue left undrained counts in it).\n\n")

	w("### S3 requests\n\n")
	t = table{header: []string{"streams", "segment PUTs/s", "live playlist PUTs/s", "per stream per s", "÷ N=" + thousands(int64(first.n)), "live playlist PUTs per segment", "other requests/s", "VoD playlist PUTs per session", "all requests/s (versitygw)"}}
	for _, r := range rs {
		win := r.window()
		s := win.dt.Seconds()
		var other, all int64
		for k, v := range win.s3req {
			if k != reqSegment && k != reqLive && k != reqVOD {
				other += v
			}
		}
		for _, v := range win.reqs {
			all += v
		}
		pps := r.playlistPuts() / s / float64(r.n)
		perSeg := "–"
		if n := win.s3req[reqSegment]; n > 0 {
			perSeg = fmt.Sprintf("%.2f", r.playlistPuts()/float64(n))
		}
		t.rows = append(t.rows, []string{thousands(int64(r.n)), num(float64(win.s3req[reqSegment]) / s), num(r.playlistPuts() / s),
			fmt.Sprintf("%.3f", pps), ratioTo(pps, first.playlistPuts()/first.window().dt.Seconds()/float64(first.n)), perSeg, num(float64(other) / s),
			fmt.Sprintf("%.2f", float64(r.idle.s3req[reqVOD])/float64(r.n)), num(float64(all) / s)})
	}
	t.write(b)
	w("Requests srs-offload made over the window, counted by a proxy in the harness between srs-offload and versitygw (by method and key: `.ts` segments, `live/<stream>.m3u8`, `…/vod/….m3u8`); the last column is versitygw's own StatsD count over the same window (it sends its counters in batches, so a window of them is off by up to a batch). VoD playlist PUTs are over the whole run (after the drain).\n\n")
	for _, r := range rs {
		if r.logErrors > 0 {
			w("- N=%s: srs-offload logged %d errors, the first: `%s`\n", thousands(int64(r.n)), r.logErrors, oneLine(r.firstLogError))
		}
	}
	w("\n")
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.ReplaceAll(s, "|", "/")
}

// msNaN shows seconds as milliseconds, "–" for none.
func msNaN(s float64) string {
	if math.IsNaN(s) {
		return "–"
	}
	return ms(time.Duration(s * float64(time.Second)))
}

func usNaN(s float64) string {
	if math.IsNaN(s) {
		return "–"
	}
	return fmt.Sprintf("%.1f µs", s*1e6)
}
