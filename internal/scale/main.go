// Command scale is srs-offload's scale model (`make scale`, issue 15): it plays N live streams
// with SRS's cadence against one `srs-offload serve`, a real redis-server and a real S3 server
// (versitygw), for each N given, and writes docs/SCALE.md: hook latency and achieved rate, Redis
// memory per stream and per segment, Redis commands per segment, the playlist sweep's CPU,
// playlist PUTs per second and srs-offload's CPU per segment, each over N.
//
// Like internal/bench it builds the binary from this tree, starts its own servers on free
// loopback ports and measures from the outside: hooks over HTTP, CPU from /proc/<pid>/stat,
// Redis from INFO, S3 requests from versitygw's StatsD counters, srs-offload's /metrics.
//
//	go run ./internal/scale -n 100,1000,10000 -dur 60s -out docs/SCALE.md [-modes bucket,served]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/srs-offload/srs-offload/internal/srsfixture"
	"github.com/srs-offload/srs-offload/internal/testbed"
)

type options struct {
	ns       []int
	dur      time.Duration
	idle     time.Duration
	drain    time.Duration
	timeout  time.Duration
	segSize  int
	modes    []string // playlist.live: bucket (the default), served
	out      string
	fixture  string
	profiles string // folder for CPU profiles and goroutine dumps of srs-offload; none when empty
	bin      string // a built srs-offload (the smoke test's); built from the module when empty
	extra    string // YAML appended to srs-offload's config
	rootsIn  string // where the SRS roots go (a tmpfs by default)
}

// env is one invocation: its servers and binary.
type env struct {
	opt     options
	module  string
	tmp     string
	roots   string // the runs' SRS roots are made in it
	bin     string
	redis   *testbed.Redis
	s3      *testbed.S3
	proxy   *s3proxy // srs-offload's way to versitygw, counting
	fx      srsfixture.Fixture
	started time.Time
	seq     int
}

func (e *env) logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "scale %6.1fs  %s\n", time.Since(e.started).Seconds(), fmt.Sprintf(format, a...))
}

// defaultRootsIn is /dev/shm when it is a writable folder, else the temporary folder.
func defaultRootsIn() string {
	if f, err := os.MkdirTemp("/dev/shm", "srs-offload-probe-"); err == nil {
		os.Remove(f)
		return "/dev/shm"
	}
	return os.TempDir()
}

func parseNs(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(f), "_", ""))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-n: want stream counts such as 100,1000,10000, got %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func main() {
	if proxyMain() {
		return
	}
	var opt options
	var ns, modes string
	flag.StringVar(&ns, "n", "100,1000,10000", "stream counts, one run each")
	flag.DurationVar(&opt.dur, "dur", 60*time.Second, "how long the streams send segments, per run")
	flag.DurationVar(&opt.idle, "idle", 10*time.Second, "how long idle CPU is measured (before the streams, and after them with N streams still active)")
	flag.DurationVar(&opt.drain, "drain", 60*time.Second, "how long to wait, after the last hook, for the queue to drain")
	flag.DurationVar(&opt.timeout, "timeout", 30*time.Second, "hook timeout (SRS's is 30 s)")
	flag.IntVar(&opt.segSize, "seg", 1536, "segment size in bytes")
	flag.StringVar(&modes, "modes", "bucket,served", "playlist.live modes to run: bucket (the default config) and/or served")
	flag.StringVar(&opt.out, "out", "docs/SCALE.md", "the markdown report to write")
	flag.StringVar(&opt.rootsIn, "roots-in", defaultRootsIn(), "folder for the SRS roots (segments, SRS's playlists, the spool) and versitygw's objects: a tmpfs (HLS output often is one), so that this machine's disk is not the bound")
	flag.StringVar(&opt.extra, "config", "", "YAML appended to srs-offload's config (top-level keys the harness does not set, e.g. \"hooks: {max_conns: 1024}\")")
	flag.StringVar(&opt.bin, "bin", "", "an srs-offload binary to measure (default: built from this tree)")
	flag.StringVar(&opt.profiles, "profiles", "", "folder for a CPU profile of srs-offload over each run's segments and its goroutines at their end")
	flag.StringVar(&opt.fixture, "fixture", "", "SRS capture with the hook bodies (default: testdata/srs/srs-7.0.18-abs-paths.jsonl)")
	flag.Parse()
	var err error
	if opt.ns, err = parseNs(ns); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(2)
	}
	for _, m := range strings.Split(modes, ",") {
		m = strings.TrimSpace(m)
		if m != "bucket" && m != "served" {
			fmt.Fprintf(os.Stderr, "scale: -modes: want bucket and/or served, got %q\n", m)
			os.Exit(2)
		}
		opt.modes = append(opt.modes, m)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "\nscale: %v: stopping the servers and removing the temporary files\n", s)
		testbed.Cleanup()
		os.Exit(130)
	}()
	code := 0
	if _, err := runAll(opt); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		code = 1
	}
	testbed.Cleanup()
	os.Exit(code)
}

// runAll runs every N in every mode and writes the report. It fails only when the harness
// cannot measure (a server does not start); what a run saw (failed hooks, a backlog) is reported.
func runAll(opt options) (report, error) {
	rep := report{opt: opt}
	if opt.dur < 4*time.Second {
		return rep, errors.New("-dur: want at least 4s")
	}
	e := &env{opt: opt, started: time.Now()}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return rep, fmt.Errorf("run inside the srs-offload module (go env GOMOD: %v)", err)
	}
	e.module = filepath.Dir(strings.TrimSpace(string(out)))
	if opt.fixture == "" {
		opt.fixture = filepath.Join(e.module, "testdata", "srs", "srs-7.0.18-abs-paths.jsonl")
	}
	if e.fx, err = srsfixture.Load(opt.fixture, "on_publish", "on_hls", "on_unpublish"); err != nil {
		return rep, err
	}
	tmp, err := os.MkdirTemp("", "srs-offload-scale-")
	if err != nil {
		return rep, err
	}
	testbed.AddDir(tmp)
	if e.tmp, err = filepath.EvalSymlinks(tmp); err != nil {
		return rep, err
	}
	if opt.rootsIn == "" {
		opt.rootsIn = os.TempDir()
	}
	roots, err := os.MkdirTemp(opt.rootsIn, "srs-offload-scale-")
	if err != nil {
		return rep, err
	}
	testbed.AddDir(roots)
	if e.roots, err = filepath.EvalSymlinks(roots); err != nil {
		return rep, err
	}
	if e.bin = opt.bin; e.bin == "" {
		e.logf("building srs-offload")
		if e.bin, err = testbed.BuildOffload(e.module, e.tmp); err != nil {
			return rep, err
		}
	}
	if e.redis, err = testbed.StartRedis(filepath.Join(e.tmp, "redis"), "make scale"); err != nil {
		return rep, err
	}
	if e.s3, err = testbed.StartVersity(filepath.Join(e.roots, "versitygw"), "scale", "make scale"); err != nil {
		return rep, err
	}
	if e.proxy, err = startS3Proxy(e.s3.Endpoint, filepath.Join(e.tmp, "s3proxy.log")); err != nil {
		return rep, err
	}
	defer e.proxy.close()
	e.logf("redis-server on %s, versitygw on %s (srs-offload's way: %s); load average %s", e.redis.Addr, e.s3.Endpoint, e.proxy.addr, testbed.LoadAvg())
	rep.rootsFS = fsType(e.roots)
	rep.loadStart, rep.redisVersion, rep.s3Version, rep.module = testbed.LoadAvg(), e.redis.Version, e.s3.Version, e.module
	for _, m := range opt.modes {
		for _, n := range opt.ns {
			res, err := e.runOne(n, m)
			if err != nil {
				// The report says so; the other runs go on.
				e.logf("N=%d %s FAILED: %v", n, m, err)
				rep.failed = append(rep.failed, fmt.Sprintf("N=%d %s: %v", n, m, err))
				continue
			}
			rep.results = append(rep.results, res)
		}
	}
	rep.loadEnd = testbed.LoadAvg()
	e.logf("load average %s before, %s after", rep.loadStart, rep.loadEnd)
	if err := rep.write(opt.out); err != nil {
		return rep, err
	}
	e.logf("wrote %s", opt.out)
	if len(rep.failed) > 0 {
		return rep, fmt.Errorf("%d run(s) failed: %s", len(rep.failed), strings.Join(rep.failed, "; "))
	}
	return rep, nil
}

// fsType is the file system type of the mount holding dir (from /proc/self/mounts), with the
// mount point.
func fsType(dir string) string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "unknown"
	}
	best, typ := "", "unknown"
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		if (dir == f[1] || strings.HasPrefix(dir, strings.TrimSuffix(f[1], "/")+"/")) && len(f[1]) >= len(best) {
			best, typ = f[1], f[2]
		}
	}
	return typ + " (" + best + ")"
}
