// Command bench is srs-offload's benchmark harness (`make bench`, issue 6). It starts its own
// redis-server and versitygw (a real S3 server) on loopback, builds the srs-offload binary from
// this tree and runs it as a separate process, generates the data, runs every benchmark and its
// baselines in the same invocation, interleaved, and writes a markdown report:
//
//	B1 ingest    on_hls hooks at the receiver vs a minimal log-only Go handler
//	B2 offload   1,000 × 1 MiB and 2,000 × 64 KiB segments vs raw PutObject and rclone copy
//	B3 DVR       one 2 GiB file vs aws s3 cp (multipart), and srs-offload's peak RSS
//	B4 latency   200 segments/s for 60 s: hook → object visible → local file gone
//
// B2 and B4 run srs-offload in both modes: archive only (playlist.enabled false), which does what
// the baselines do and is what their targets are judged on, and with its playlists (the default).
//
// Everything is measured from the outside: hooks over HTTP, objects with S3 requests, local files
// with stat/inotify, memory from /proc.
//
//	go run ./internal/bench -out docs/BENCHMARKS.md [-quick] [-profiles DIR|''] [-only b2,b4] [-reps 2]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/srs-offload/srs-offload/internal/srsfixture"
	"github.com/srs-offload/srs-offload/internal/testbed"
)

type options struct {
	out      string
	quick    bool
	profiles string
	reps     int
	only     map[string]bool
	fixture  string
	latSize  int64
}

// scale is how big each benchmark is: the sizes, or -quick's.
type scale struct {
	ingestN, ingestConns int
	bigN, smallN         int
	bigSize, smallSize   int64
	offloadConns         int // hook senders in B2 (streams)
	dvrSize              int64
	latRate              int
	latDur               time.Duration
	latStreams           int
}

func fullScale() scale {
	return scale{
		ingestN: 20000, ingestConns: 8,
		bigN: 1000, bigSize: 1 << 20, smallN: 2000, smallSize: 64 << 10, offloadConns: 16,
		dvrSize: 2 << 30,
		latRate: 200, latDur: 60 * time.Second, latStreams: 50,
	}
}

func quickScale() scale {
	return scale{
		ingestN: 2000, ingestConns: 8,
		bigN: 100, bigSize: 1 << 20, smallN: 200, smallSize: 64 << 10, offloadConns: 16,
		dvrSize: 256 << 20,
		latRate: 200, latDur: 5 * time.Second, latStreams: 50,
	}
}

// env is one invocation: its servers, binary, folders and results.
type env struct {
	opt     options
	sc      scale
	module  string
	tmp     string
	bin     string
	redis   *testbed.Redis
	s3      *testbed.S3
	fx      srsfixture.Fixture
	started time.Time

	mu       sync.Mutex
	profiled []profileFile
	// the srs-offload runs with a target, by group (their profiles and CPU per file), in order
	cpuRuns  map[string]*cpuRun
	cpuOrder []string
	seq      int
	// durations of srs-offload's earlier runs of a case, to size the next profile
	lastOurs map[string]time.Duration
	// /proc/loadavg before and after the benchmarks: other work on the machine shows there
	loadStart, loadEnd string
	// B4's runs on tmpfs: their p99, the disk bound of the target of the mode they repeat (by
	// its short name)
	tmpfsP99 map[string][]string
}

type profileFile struct {
	name, path string
	seconds    int
}

func (e *env) logf(format string, a ...any) {
	testbed.Halt()
	fmt.Fprintf(os.Stderr, "bench %6.1fs  %s\n", time.Since(e.started).Seconds(), fmt.Sprintf(format, a...))
}

// name returns a new unique name (buckets, roots, run folders) with the given stem.
func (e *env) name(stem string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	return fmt.Sprintf("%s-%d", stem, e.seq)
}

// newRoot makes a new, empty SRS root folder (the real path: srs-offload resolves symlinks).
func (e *env) newRoot(stem string) (string, error) { return e.newRootIn(e.tmp, stem) }

// newRootIn makes it in base/roots.
func (e *env) newRootIn(base, stem string) (string, error) {
	testbed.Halt()
	root := filepath.Join(base, "roots", e.name(stem))
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	return root, nil
}

// settle ends a run's writes: the disk gets what is dirty in the page cache, so that one run's
// writeback does not slow the next.
func settle() {
	syscall.Sync()
	time.Sleep(200 * time.Millisecond)
}

// section is one benchmark's part of the report.
type section struct {
	id, title string
	what      string
	tables    []table
	notes     []string
	summary   [][]string // what, target, result, met?
	err       error
}

type table struct {
	header []string
	rows   [][]string
}

func main() {
	var opt options
	var only string
	flag.StringVar(&opt.out, "out", "docs/BENCHMARKS.md", "the markdown report to write")
	flag.BoolVar(&opt.quick, "quick", false, "scale everything down (100 files, 256 MiB DVR, 5 s of B4 per mode, 1 repetition) to check the harness in about a minute")
	flag.StringVar(&opt.profiles, "profiles", defaultProfiles(), "folder for CPU profiles of srs-offload (B1-B4), their top functions and the report's \"Where srs-offload's CPU goes\"; none when empty")
	flag.IntVar(&opt.reps, "reps", 2, "repetitions of each srs-offload/baseline pair, in alternating order (-quick: 1)")
	flag.StringVar(&only, "only", "b1,b2,b3,b4", "benchmarks to run")
	flag.StringVar(&opt.fixture, "fixture", "", "SRS capture with the on_hls/on_dvr bodies (default: testdata/srs/srs-7.0.18-abs-paths.jsonl in the module)")
	var latSize string
	flag.StringVar(&latSize, "b4-size", "64KiB", "segment size in B4")
	flag.Parse()
	opt.only = map[string]bool{}
	for _, b := range strings.Split(only, ",") {
		opt.only[strings.ToLower(strings.TrimSpace(b))] = true
	}
	var err error
	if opt.latSize, err = parseSize(latSize); err != nil {
		fmt.Fprintln(os.Stderr, "bench: -b4-size:", err)
		os.Exit(2)
	}
	repsSet := false
	flag.Visit(func(f *flag.Flag) { repsSet = repsSet || f.Name == "reps" })
	if opt.quick && !repsSet {
		opt.reps = 1
	}
	if opt.reps < 1 {
		opt.reps = 1
	}

	// Ctrl-C or SIGTERM: kill every process started, remove the temporary folders, exit.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "\nbench: %v: stopping the servers and removing the temporary files\n", s)
		testbed.Cleanup()
		time.Sleep(100 * time.Millisecond)
		testbed.RemoveDirs()
		os.Exit(130)
	}()

	e := &env{opt: opt, sc: fullScale(), started: time.Now(), lastOurs: map[string]time.Duration{}, cpuRuns: map[string]*cpuRun{}}
	if opt.quick {
		e.sc = quickScale()
	}
	code := 0
	if err := e.run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		code = 1
	}
	testbed.Cleanup()
	os.Exit(code)
}

func (e *env) run() error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return fmt.Errorf("run inside the srs-offload module (go env GOMOD: %v)", err)
	}
	e.module = filepath.Dir(strings.TrimSpace(string(out)))
	if e.opt.fixture == "" {
		e.opt.fixture = filepath.Join(e.module, "testdata", "srs", "srs-7.0.18-abs-paths.jsonl")
	}
	if e.fx, err = srsfixture.Load(e.opt.fixture, "on_hls", "on_dvr"); err != nil {
		return err
	}
	if e.opt.profiles != "" {
		if err := os.MkdirAll(e.opt.profiles, 0o755); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp("", "srs-offload-bench-")
	if err != nil {
		return err
	}
	testbed.AddDir(tmp)
	if e.tmp, err = filepath.EvalSymlinks(tmp); err != nil {
		return err
	}

	e.logf("building srs-offload")
	if e.bin, err = testbed.BuildOffload(e.module, e.tmp); err != nil {
		return err
	}
	if e.opt.profiles != "" {
		copyFile(e.bin, filepath.Join(e.opt.profiles, "srs-offload"))
	}
	if e.redis, err = testbed.StartRedis(filepath.Join(e.tmp, "redis"), "make bench"); err != nil {
		return err
	}
	if e.s3, err = testbed.StartVersity(filepath.Join(e.tmp, "versitygw"), "bench", "make bench"); err != nil {
		return err
	}
	e.logf("redis-server on %s, versitygw on %s", e.redis.Addr, e.s3.Endpoint)

	e.loadStart = testbed.LoadAvg()
	var sections []section
	failed := 0
	for _, b := range []struct {
		id  string
		run func() section
	}{{"b1", e.benchIngest}, {"b2", e.benchOffload}, {"b3", e.benchDVR}, {"b4", e.benchLatency}} {
		if !e.opt.only[b.id] {
			continue
		}
		s := b.run()
		if s.err != nil {
			failed++
			e.logf("%s FAILED: %v", s.id, s.err)
		}
		sections = append(sections, s)
	}
	e.loadEnd = testbed.LoadAvg()
	e.topProfiles()
	if len(e.cpuOrder) > 0 || e.opt.profiles == "" {
		sections = append(sections, e.cpuSection())
	}
	if err := e.writeReport(sections); err != nil {
		return err
	}
	e.logf("wrote %s", e.opt.out)
	if failed > 0 {
		return fmt.Errorf("%d benchmark(s) failed (see the report)", failed)
	}
	return nil
}

// defaultProfiles is a new folder in the user's cache (outside the repository):
// ${XDG_CACHE_HOME:-~/.cache}/srs-offload/profiles/<UTC time>.
func defaultProfiles() string {
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(cache, "srs-offload", "profiles", time.Now().UTC().Format("20060102-150405"))
}

// topProfiles writes the top functions of every profile beside it (name.top.txt).
func (e *env) topProfiles() {
	for _, p := range e.profiled {
		out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=40", e.bin, p.path).CombinedOutput()
		if err != nil {
			e.logf("pprof -top %s: %v", p.path, err)
			continue
		}
		os.WriteFile(strings.TrimSuffix(p.path, ".pprof")+".top.txt", out, 0o644)
	}
}

// profileSeconds sizes a CPU profile of srs-offload for a case: as long as its last run took, or
// guess when it has not run yet.
func (e *env) profileSeconds(key string, guess time.Duration) int {
	e.mu.Lock()
	d, ok := e.lastOurs[key]
	e.mu.Unlock()
	if !ok {
		d = guess
	}
	// The admin listener's profiler takes at most 60 s (the B4 runs last a minute and more).
	return min(int(d.Seconds()+0.999)+1, 60)
}

func (e *env) ranOurs(key string, d time.Duration) {
	e.mu.Lock()
	e.lastOurs[key] = d
	e.mu.Unlock()
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

func parseSize(v string) (int64, error) {
	v = strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		s string
		m int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if strings.HasSuffix(v, u.s) {
			v, mult = strings.TrimSuffix(v, u.s), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a size such as 64KiB, got %q", v)
	}
	return n * mult, nil
}

// The report.

type machine struct {
	cores  int
	model  string
	memory int64
	kernel string
}

func readMachine() machine {
	m := machine{cores: runtime.NumCPU(), model: "unknown CPU"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				m.memory = kb << 10
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	return m
}

func (e *env) commit() string {
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

func toolVersion(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return "not installed"
	}
	return testbed.FirstLine(out)
}

func (e *env) writeReport(sections []section) error {
	m := readMachine()
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Benchmarks\n\n")
	w("Written by `make bench` (`go run ./internal/bench`, see [README](../README.md#benchmarks)); do not edit by hand.")
	if e.opt.quick {
		w(" **This is a `-quick` run: everything scaled down, for checking the harness only.**")
	}
	w("\n\n")
	w("| | |\n| --- | --- |\n")
	w("| date | %s |\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	w("| commit | %s |\n", e.commit())
	w("| machine | %d cores (runtime.NumCPU), %s, %.1f GiB memory, Linux %s |\n", m.cores, m.model, float64(m.memory)/(1<<30), m.kernel)
	w("| Go | %s |\n", strings.TrimPrefix(runtime.Version(), "go"))
	w("| Redis | %s, appendonly yes (everysec), noeviction |\n", e.redis.Version)
	w("| S3 | %s, posix backend, on loopback |\n", e.s3.Version)
	w("| baselines | %s; %s |\n", toolVersion("/usr/bin/rclone", "version"), toolVersion("/usr/bin/aws", "--version"))
	w("| load average | %s before the benchmarks, %s after (1, 5, 15 min; the harness's own work included) |\n", e.loadStart, e.loadEnd)
	w("| repetitions | %d per srs-offload/baseline pair, in alternating order; ratios are the mean of the per-repetition ratios, absolute numbers the median |\n", e.opt.reps)
	w("| S3 server flags | `--keep-alive` (versitygw otherwise closes every connection after one request, which S3 does not), `--quiet` (no log line per request), StatsD counters to the harness (requests per bucket and action) |\n")
	w("\nEverything (load generator, srs-offload, Redis, versitygw, baselines) shares the %d cores of this one machine; ", m.cores)
	w("the servers are this run's own, on free loopback ports, with data in a temporary folder on the same disk.\n\n")

	w("## Summary\n\n| benchmark | target | result | met? |\n| --- | --- | --- | --- |\n")
	for _, s := range sections {
		if s.err != nil {
			w("| %s | | failed: %s | **no** |\n", s.title, oneLine(s.err.Error()))
		}
		for _, r := range s.summary {
			w("| %s |\n", strings.Join(r, " | "))
		}
	}
	w("\n")
	for _, s := range sections {
		w("## %s\n\n%s\n\n", s.title, s.what)
		if s.err != nil {
			w("**Failed:** `%s`\n\n", oneLine(s.err.Error()))
		}
		for _, t := range s.tables {
			w("| %s |\n|%s\n", strings.Join(t.header, " | "), strings.Repeat(" --- |", len(t.header)))
			for _, r := range t.rows {
				w("| %s |\n", strings.Join(r, " | "))
			}
			w("\n")
		}
		for _, n := range s.notes {
			w("- %s\n", n)
		}
		if len(s.notes) > 0 {
			w("\n")
		}
	}
	if dir := filepath.Dir(e.opt.out); dir != "" {
		os.MkdirAll(dir, 0o755)
	}
	return os.WriteFile(e.opt.out, []byte(b.String()), 0o644)
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.ReplaceAll(s, "|", "/")
}
