package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/redis/go-redis/v9"
	"github.com/srs-offload/srs-offload/internal/s3stats"
)

// registry is every process the harness started and every folder it made, so that they are
// cleaned up on every way out: the normal end, a fatal error, and SIGINT/SIGTERM (Ctrl-C).
type registry struct {
	mu    sync.Mutex
	procs map[*proc]struct{}
	dirs  []string
	done  bool
}

var reg = &registry{procs: map[*proc]struct{}{}}

func (r *registry) addDir(d string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dirs = append(r.dirs, d)
}

// add records a started process; it returns false once cleanup has begun (the caller kills it).
func (r *registry) add(p *proc) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return false
	}
	r.procs[p] = struct{}{}
	return true
}

// halt parks the calling goroutine for good once cleanup has begun: the signal handler is about
// to exit the process, and nothing may create files in the folders it is removing.
func (r *registry) halt() {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done {
		select {}
	}
}

// removeDirs removes the folders again (a write in flight may have recreated one).
func (r *registry) removeDirs() {
	r.mu.Lock()
	dirs := r.dirs
	r.mu.Unlock()
	for i := len(dirs) - 1; i >= 0; i-- {
		os.RemoveAll(dirs[i])
	}
}

func (r *registry) remove(p *proc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.procs, p)
}

// cleanup kills every process still running (SIGKILL: nothing of theirs is kept) and removes the
// folders. It runs once.
func (r *registry) cleanup() {
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return
	}
	r.done = true
	procs := make([]*proc, 0, len(r.procs))
	for p := range r.procs {
		procs = append(procs, p)
	}
	dirs := r.dirs
	r.mu.Unlock()
	for _, p := range procs {
		p.kill()
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		os.RemoveAll(dirs[i])
	}
}

// proc is one child process, its output going to a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error // set before exited is closed
}

// startProc starts bin with its output in logPath. The child gets SIGKILL should the harness die
// without cleaning up (Pdeathsig).
func startProc(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	if !reg.add(p) {
		p.kill()
		return nil, errors.New("interrupted")
	}
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits up to grace for the exit, then kills.
func (p *proc) stop(grace time.Duration) error {
	defer reg.remove(p)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(grace):
		p.kill()
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.name, grace)
	}
}

func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.exited
	reg.remove(p)
}

// logTail is the end of the process's log, for error messages.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// peakRSS is VmHWM of a running process, in bytes.
func peakRSS(pid int) (int64, error) { return procStatus(pid, "VmHWM:") }

// rss is VmRSS of a running process, in bytes.
func rss(pid int) (int64, error) { return procStatus(pid, "VmRSS:") }

func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitListen waits until addr takes TCP connections, or the process exits.
func waitListen(p *proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if !p.running() {
			return fmt.Errorf("%s exited at start:\n%s", p.name, p.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %v:\n%s", p.name, addr, timeout, p.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisServer is a redis-server started for the run, configured as README asks for production:
// appendonly yes (appendfsync everysec) and noeviction, so an enqueue is as durable as in
// production.
type redisServer struct {
	addr    string
	version string
	p       *proc
	client  *redis.Client
}

func startRedis(dir string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found: run `make bench` (scripts/tools.sh bench installs Debian's redis-server)")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out, _ := exec.Command(bin, "--version").Output()
	s := &redisServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), version: firstLine(out)}
	s.p, err = startProc("redis-server", filepath.Join(dir, "redis.log"), os.Environ(), bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
		"--daemonize", "no", "--protected-mode", "yes", "--maxmemory-policy", "noeviction", "--loglevel", "warning")
	if err != nil {
		return nil, err
	}
	s.client = redis.NewClient(&redis.Options{Addr: s.addr})
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := s.client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s, nil
		}
		if !s.p.running() || time.Now().After(deadline) {
			return nil, fmt.Errorf("redis-server on %s did not answer PING (%v):\n%s", s.addr, err, s.p.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flush empties Redis between runs (it is this harness's own server).
func (s *redisServer) flush() error {
	return s.client.FlushAll(context.Background()).Err()
}

// s3Server is a versitygw gateway (posix backend) started for the run.
type s3Server struct {
	endpoint  string
	accessKey string
	secretKey string
	version   string
	dataDir   string
	p         *proc
	client    *s3.Client
	stats     *s3stats.Counter
}

// versityBinary finds versitygw in the tool cache that scripts/tools.sh fills.
func versityBinary() (string, error) {
	dir := os.Getenv("SRS_OFFLOAD_TOOLS")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(cache, "srs-offload", "bin")
	}
	p := filepath.Join(dir, "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("versitygw not found in %s: run `make bench` (scripts/tools.sh builds it)", dir)
	}
	return p, nil
}

func startVersity(dir string) (*s3Server, error) {
	bin, err := versityBinary()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	data, meta := filepath.Join(dir, "data"), filepath.Join(dir, "meta")
	for _, d := range []string{data, meta} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &s3Server{endpoint: "http://" + addr, accessKey: "benchaccess", secretKey: "benchsecret1234", dataDir: data}
	// tools.sh installs it as versitygw-<version> behind a versitygw link; the binary itself says
	// only "git" when built with go install.
	s.version = "versitygw"
	if real, err := filepath.EvalSymlinks(bin); err == nil {
		if v, ok := strings.CutPrefix(filepath.Base(real), "versitygw-"); ok {
			s.version += " " + v
		}
	}
	if s.stats, err = s3stats.Start(); err != nil {
		return nil, err
	}
	// --keep-alive: versitygw closes every connection after one request unless told otherwise,
	// which S3 does not do. --quiet: no line per request on stdout. StatsD: request counts per
	// bucket and action.
	s.p, err = startProc("versitygw", filepath.Join(dir, "versitygw.log"), os.Environ(), bin,
		"--access", s.accessKey, "--secret", s.secretKey, "--port", addr, "--keep-alive", "--quiet",
		"--metrics-statsd-servers", s.stats.Addr, "--metrics-service-name", "bench",
		"posix", "--sidecar", meta, data)
	if err != nil {
		return nil, err
	}
	if err := waitListen(s.p, addr, 15*time.Second); err != nil {
		return nil, err
	}
	s.client, err = newS3Client(s.endpoint, s.accessKey, s.secretKey, 64)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// newS3Client is a plain aws-sdk-go-v2 client set up as srs-offload's uploader sets up its own
// (path-style, checksums only when required, a connection pool of conns), so the raw-PUT
// baseline pays for the same SDK work per request.
func newS3Client(endpoint, ak, sk string, conns int) (*s3.Client, error) {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = conns
		t.MaxIdleConnsPerHost = conns
	})
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(),
		awsconfig.WithRegion("us-east-1"),
		awsconfig.WithHTTPClient(httpClient),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ak, sk, "")),
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true
	}), nil
}

func (s *s3Server) createBucket(name string) error {
	_, err := s.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

// object is what a listing says of one key.
type object struct {
	size int64
	etag string
}

// list returns every object in the bucket.
func (s *s3Server) list(bucket string) (map[string]object, error) {
	out := map[string]object{}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", bucket, err)
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = object{size: aws.ToInt64(o.Size), etag: strings.ToLower(strings.Trim(aws.ToString(o.ETag), `"`))}
		}
	}
	return out, nil
}

// dropBucket deletes every object and the bucket, so that the next run's writes do not compete
// with the last run's data for the page cache and the disk.
func (s *s3Server) dropBucket(bucket string) error {
	ctx := context.Background()
	objs, err := s.list(bucket)
	if err != nil {
		return err
	}
	var batch []s3types.ObjectIdentifier
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: batch, Quiet: aws.Bool(true)}})
		batch = batch[:0]
		return err
	}
	for k := range objs {
		batch = append(batch, s3types.ObjectIdentifier{Key: aws.String(k)})
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return fmt.Errorf("delete objects in %s: %w", bucket, err)
			}
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("delete objects in %s: %w", bucket, err)
	}
	if _, err := s.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		// Multipart leftovers or folders versitygw keeps: the data goes with the folder.
		os.RemoveAll(filepath.Join(s.dataDir, bucket))
	}
	return nil
}

// perFile shows requests per file, minus those the harness made itself (less), largest first.
func perFile(reqs, less map[string]int64, files int) string {
	type kv struct {
		k string
		v int64
	}
	var all []kv
	var total int64
	for k, v := range reqs {
		v -= less[k]
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
	*proc
	listen string // hooks
	admin  string // metrics and pprof
	dir    string
}

// buildOffload builds the binary under test from this module into dir.
func buildOffload(moduleDir, dir string) (string, error) {
	bin := filepath.Join(dir, "srs-offload")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/srs-offload")
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/srs-offload: %v\n%s", err, out)
	}
	return bin, nil
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
	tmpfs     bool   // root, spool and S3 objects on /dev/shm (B4's disk bound)
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
`, listen, admin, e.redis.addr, root, e.s3.endpoint, bucket, e.s3.accessKey, e.s3.secretKey, verify, playlist)
}

// startOffload runs `srs-offload <sub>` in mode m on root and bucket and waits until /metrics
// answers.
func (e *env) startOffload(sub, name, root, bucket string, m mode) (*offloadProc, error) {
	dir := filepath.Join(e.tmp, "runs", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if port, err = freePort(); err != nil {
		return nil, err
	}
	admin := net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) // metrics and pprof
	config := filepath.Join(dir, "srs-offload.yaml")
	if err := os.WriteFile(config, []byte(e.offloadConfig(listen, admin, root, bucket, m)), 0o600); err != nil {
		return nil, err
	}
	p, err := startProc("srs-offload "+sub, filepath.Join(dir, "srs-offload.log"), os.Environ(), e.bin, sub, "-c", config)
	if err != nil {
		return nil, err
	}
	o := &offloadProc{proc: p, listen: listen, admin: admin, dir: dir}
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
		if !p.running() {
			return nil, fmt.Errorf("srs-offload %s exited at start:\n%s", sub, p.logTail())
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("srs-offload %s did not answer /metrics on %s:\n%s", sub, admin, p.logTail())
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
	if err := o.stop(15 * time.Second); err != nil {
		return fmt.Errorf("srs-offload: %v\n%s", err, o.logTail())
	}
	b, _ := os.ReadFile(o.logPath)
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
	u.reqs = e.s3.stats.Settled(bucket)
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
		own = cpuTime(m.pid)
	}
	return own, cpuTime(m.e.s3.p.pid()), cpuTime(m.e.redis.p.pid())
}

// stop fills in the CPU time used since the meter was made.
func (m *cpuMeter) stop(u *usage) {
	own, s3, redis := m.read()
	u.own, u.s3, u.redis = own-m.own, s3-m.s3, redis-m.redis
}

// cpuTime is the user+system CPU time of a running process.
func cpuTime(pid int) time.Duration { return time.Duration(cpuTicks(pid)) * 10 * time.Millisecond }

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
	p, err := startProc(name, logPath, env, bin, args...)
	if err != nil {
		return u, err
	}
	<-p.exited
	u.elapsed = time.Since(start)
	m.stop(&u)
	reg.remove(p)
	if p.err != nil {
		return u, fmt.Errorf("%s: %v\n%s", name, p.err, p.logTail())
	}
	u.own = p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.maxRSS = ru.Maxrss << 10 // KiB on Linux
	}
	return u, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(s)
}
