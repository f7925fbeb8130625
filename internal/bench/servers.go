package main

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/srs-offload/srs-offload/internal/testbed"
)

// perFile shows requests per file, largest first.
func perFile(reqs map[string]int64, files int) string {
	type kv struct {
		k string
		v int64
	}
	var all []kv
	var total int64
	for k, v := range reqs {
		if v > 0 {
			all = append(all, kv{k, v})
			total += v
		}
	}
	slices.SortFunc(all, func(a, b kv) int { return cmp.Compare(b.v, a.v) })
	parts := []string{fmt.Sprintf("**%.2f**", float64(total)/float64(files))}
	for _, x := range all {
		parts = append(parts, fmt.Sprintf("%s %.2f", x.k, float64(x.v)/float64(files)))
	}
	return strings.Join(parts, ", ")
}

// offloadProc is one running srs-offload process with its config.
type offloadProc struct {
	*testbed.Proc
	listen string // hooks
	admin  string // metrics and pprof
	dir    string
}

// mode is how srs-offload runs in a benchmark: with its playlists (the default, the whole
// product) or archive only (playlist.enabled false: segments are uploaded, verified and purged,
// and no playlist or ledger is written, which is what raw PutObject and rclone do too).
type mode struct {
	key       string // in bucket, root and profile names
	label     string // a row of the report
	short     string // in the summary and the notes
	playlists bool
	served    bool   // playlist.live: served (no live playlist object)
	verify    string // storage.verify, "" for the default (auto)
	tmpfs     string // B4's disk bounds: "s3" (S3 objects on /dev/shm), "all" (root and spool too)
	bounds    string // a tmpfs run: the short name of the mode whose target it bounds
}

// withVerify is m with storage.verify set (the verify-mode rows of B2 and B3).
func (m mode) withVerify(v string) mode {
	m.key += "-" + v
	m.label = strings.TrimSuffix(m.label, ")") + ", storage.verify " + v + ")"
	m.short += ", verify " + v
	m.verify = v
	return m
}

var (
	archiveMode   = mode{key: "archive", label: "srs-offload (archive only: playlist.enabled false)", short: "archive only", playlists: false}
	playlistsMode = mode{key: "playlists", label: "srs-offload (live + VoD playlists, default)", short: "with playlists", playlists: true}
	// servedMode serves the live playlist from the hook listener (playlist.live: served): the
	// bucket gets the segments and the VoD playlists only.
	servedMode = mode{key: "served", label: "srs-offload (served live + VoD playlists: playlist.live served)", short: "with served playlists", playlists: true, served: true}
	// defaultMode is the config srs-offload ships with (B1 and B3 run it).
	defaultMode = playlistsMode
)

// offloadConfig is the YAML the harness gives srs-offload: every default, except the servers,
// the root, the harness's file layout (as an operator names SRS's hls_ts_file; else the
// reconciler, which sees every file at once, logs each as unplaceable), a short shutdown and the
// profiler, and, for the archive-only mode, playlist.enabled false.
func (e *env) offloadConfig(listen, admin, root, bucket string, m mode) string {
	playlist, verify := "", ""
	if m.verify != "" {
		verify = "  verify: " + m.verify + "\n"
	}
	if !m.playlists {
		playlist = "playlist: {enabled: false}\n"
	}
	if m.served {
		playlist = "playlist: {live: served}\n"
	}
	return fmt.Sprintf(`# written by internal/bench
listen: %s
admin: {listen: %s}
node: bench
log: {format: text, level: info}
redis: {addr: %s}
roots: [%q]
storage:
  endpoint: %s
  bucket: %s
  path_style: true
  access_key: %s
  secret_key: %s
%sreconcile: {hls_ts_file: ["[app]/[stream]-[seq].ts", "[app]/[stream]/[timestamp]-[seq].ts"]} # the harness's layouts (SRS's hls_ts_file)
worker: {poll_interval: 20ms, shutdown_timeout: 5s}
%sdebug: {pprof: true}
`, listen, admin, e.redis.Addr, root, e.s3.Endpoint, bucket, e.s3.AccessKey, e.s3.SecretKey, verify, playlist)
}

// startOffload runs `srs-offload <sub>` in mode m on root and bucket and waits until /metrics
// answers.
func (e *env) startOffload(sub, name, root, bucket string, m mode) (*offloadProc, error) {
	dir := filepath.Join(e.tmp, "runs", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	listen, err := testbed.FreeAddr()
	if err != nil {
		return nil, err
	}
	admin, err := testbed.FreeAddr() // metrics and pprof
	if err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "srs-offload.yaml")
	if err := os.WriteFile(config, []byte(e.offloadConfig(listen, admin, root, bucket, m)), 0o600); err != nil {
		return nil, err
	}
	p, err := testbed.Start("srs-offload "+sub, filepath.Join(dir, "srs-offload.log"), os.Environ(), e.bin, sub, "-c", config)
	if err != nil {
		return nil, err
	}
	o := &offloadProc{Proc: p, listen: listen, admin: admin, dir: dir}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return o, nil
			}
		}
		if !p.Running() {
			return nil, fmt.Errorf("srs-offload %s exited at start:\n%s", sub, p.LogTail())
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("srs-offload %s did not answer /metrics on %s:\n%s", sub, admin, p.LogTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ownMetrics reads srs-offload's own view of a run from /metrics: the mean time of one upload
// (MD5, PUT, verification) and from the hook to the verified object, for kind (hls, dvr).
func (o *offloadProc) ownMetrics(kind string) string {
	resp, err := http.Get("http://" + o.admin + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	vals := map[string]float64{}
	for _, l := range strings.Split(string(b), "\n") {
		for _, name := range []string{"srs_offload_upload_seconds_sum", "srs_offload_upload_seconds_count",
			"srs_offload_hook_to_stored_seconds_sum", "srs_offload_hook_to_stored_seconds_count"} {
			if rest, ok := strings.CutPrefix(l, name+`{kind="`+kind+`"} `); ok {
				vals[name], _ = strconv.ParseFloat(strings.TrimSpace(rest), 64)
			}
		}
	}
	mean := func(stem string) float64 {
		if n := vals[stem+"_count"]; n > 0 {
			return vals[stem+"_sum"] / n * 1000
		}
		return 0
	}
	return fmt.Sprintf("mean upload (MD5, PUT, verification) %.1f ms, mean hook → stored %.1f ms",
		mean("srs_offload_upload_seconds"), mean("srs_offload_hook_to_stored_seconds"))
}

// finish stops the process (SIGTERM) and reports errors in its log (level=ERROR lines), which a
// run must not have.
func (o *offloadProc) finish() error {
	if err := o.Stop(15 * time.Second); err != nil {
		return fmt.Errorf("srs-offload: %v\n%s", err, o.LogTail())
	}
	b, _ := os.ReadFile(o.LogPath)
	var bad []string
	for _, l := range bytes.Split(b, []byte("\n")) {
		if bytes.Contains(l, []byte("level=ERROR")) {
			bad = append(bad, string(l))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("srs-offload logged %d errors, the first: %s", len(bad), bad[0])
	}
	return nil
}

// profile fetches a CPU profile of seconds from the process into e.opt.profiles/name.pprof, in
// the background; the returned function waits for it.
func (e *env) profile(o *offloadProc, name string, seconds int) func() {
	if e.opt.profiles == "" {
		return func() {}
	}
	seconds = max(seconds, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		path := filepath.Join(e.opt.profiles, name+".pprof")
		c := &http.Client{Timeout: time.Duration(seconds+30) * time.Second}
		resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", o.admin, seconds))
		if err != nil {
			e.logf("profile %s: %v", name, err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			e.logf("profile %s: %d %s", name, resp.StatusCode, b)
			return
		}
		f, err := os.Create(path)
		if err != nil {
			e.logf("profile %s: %v", name, err)
			return
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			e.logf("profile %s: %v", name, err)
		}
		f.Close()
		e.mu.Lock()
		e.profiled = append(e.profiled, profileFile{name: name, path: path, seconds: seconds})
		e.mu.Unlock()
	}()
	return func() { <-done }
}

// usage is what one run took: its wall time, and the CPU time of the process doing the work
// (srs-offload, rclone, aws, or the harness for raw PUT), of versitygw and of Redis.
type usage struct {
	elapsed        time.Duration
	own, s3, redis time.Duration
	harness        time.Duration // the harness over the same run (B1: the load generator)
	maxRSS         int64         // of rclone and aws
	hooks          time.Duration // srs-offload: until every hook was answered
	hookP99        time.Duration
	races          int              // stream folders srs-offload removed between the harness's mkdir and create
	reqs           map[string]int64 // S3 requests by action, the harness's own (CreateBucket) left out
	metrics        string           // srs-offload's own metrics of the run
}

// takeReqs records the requests made to bucket, less the harness's CreateBucket.
func (e *env) takeReqs(u *usage, bucket string) {
	u.reqs = e.s3.Stats.Settled(bucket)
	u.reqs["CreateBucket"]--
}

// sumReqs adds up the requests of several runs.
func sumReqs(us []usage) map[string]int64 {
	out := map[string]int64{}
	for _, u := range us {
		for k, v := range u.reqs {
			out[k] += v
		}
	}
	return out
}

// cpuMeter reads the CPU time of the servers and of one process (pid; 0: the harness itself).
type cpuMeter struct {
	e              *env
	pid            int
	own, s3, redis time.Duration
}

func (e *env) meter(pid int) *cpuMeter {
	m := &cpuMeter{e: e, pid: pid}
	m.own, m.s3, m.redis = m.read()
	return m
}

func (m *cpuMeter) read() (own, s3, redis time.Duration) {
	if m.pid == 0 {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		own = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	} else {
		own = testbed.CPUTime(m.pid)
	}
	return own, testbed.CPUTime(m.e.s3.P.Pid()), testbed.CPUTime(m.e.redis.P.Pid())
}

// stop fills in the CPU time used since the meter was made.
func (m *cpuMeter) stop(u *usage) {
	own, s3, redis := m.read()
	u.own, u.s3, u.redis = own-m.own, s3-m.s3, redis-m.redis
}

// goroutines saves srs-offload's goroutine stacks (aggregated, debug=1) into
// e.opt.profiles/name.goroutines.txt: where its goroutines wait, which a CPU profile does not show.
func (e *env) goroutines(o *offloadProc, name string) {
	if e.opt.profiles == "" {
		return
	}
	resp, err := http.Get("http://" + o.admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		e.logf("goroutines %s: %v", name, err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	os.WriteFile(filepath.Join(e.opt.profiles, name+".goroutines.txt"), b, 0o644)
}

// trace saves an execution trace of seconds into e.opt.profiles/name.trace (go tool trace), in
// the background; the returned function waits for it.
func (e *env) trace(o *offloadProc, name string, seconds int) func() {
	if e.opt.profiles == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := &http.Client{Timeout: time.Duration(seconds+30) * time.Second}
		resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/trace?seconds=%d", o.admin, seconds))
		if err != nil {
			e.logf("trace %s: %v", name, err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(e.opt.profiles, name+".trace"))
		if err != nil {
			return
		}
		io.Copy(f, resp.Body)
		f.Close()
	}()
	return func() { <-done }
}

// runTool runs a baseline command (rclone, aws) to its end and returns its wall time, CPU time
// and peak RSS, with versitygw's and Redis's CPU time over the same span.
func (e *env) runTool(name, logPath string, env []string, bin string, args ...string) (usage, error) {
	var u usage
	m := e.meter(0)
	start := time.Now()
	p, err := testbed.Start(name, logPath, env, bin, args...)
	if err != nil {
		return u, err
	}
	werr := p.Wait()
	u.elapsed = time.Since(start)
	m.stop(&u)
	if werr != nil {
		return u, fmt.Errorf("%s: %v\n%s", name, werr, p.LogTail())
	}
	u.own = p.State().UserTime() + p.State().SystemTime()
	if ru, ok := p.State().SysUsage().(*syscall.Rusage); ok {
		u.maxRSS = ru.Maxrss << 10 // KiB on Linux
	}
	return u, nil
}
