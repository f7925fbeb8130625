package main

// The servers of a run (redis-server, versitygw with StatsD, srs-offload) and the processes'
// bookkeeping, as internal/bench has them (that package is a command, so they are repeated here,
// trimmed to what the scale model uses).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/redis/go-redis/v9"
	"github.com/srs-offload/srs-offload/internal/s3stats"
)

// registry is every process the harness started and every folder it made, cleaned up on every
// way out (the normal end, an error, SIGINT/SIGTERM).
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

func (r *registry) add(p *proc) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return false
	}
	r.procs[p] = struct{}{}
	return true
}

func (r *registry) remove(p *proc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.procs, p)
}

// cleanup kills every process still running and removes the folders. It runs once.
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
	err     error
}

// startProc starts bin with its output in logPath; the child gets SIGKILL should the harness die
// without cleaning up (Pdeathsig).
func startProc(name, logPath string, bin string, args ...string) (*proc, error) {
	return startProcEnv(name, logPath, nil, bin, args...)
}

// startProcEnv is startProc with the environment env (nil: the harness's).
func startProcEnv(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
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

func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// cpuTime is the user+system CPU time of a running process, from /proc/<pid>/stat.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s) // f[0] is field 3: utime is field 14, stime 15
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

// selfCPU is the harness's own CPU time (the load generator).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss is VmRSS of a running process, in bytes.
func rss(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func freeAddr() (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

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

// redisServer is a redis-server started for the run, configured as README asks for production
// (appendonly yes, appendfsync everysec, noeviction).
type redisServer struct {
	addr    string
	version string
	p       *proc
	client  *redis.Client
}

func startRedis(dir string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found: run `make scale` (scripts/tools.sh bench installs Debian's redis-server)")
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
	s.p, err = startProc("redis-server", filepath.Join(dir, "redis.log"), bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
		"--daemonize", "no", "--protected-mode", "yes", "--maxmemory-policy", "noeviction", "--loglevel", "warning")
	if err != nil {
		return nil, err
	}
	s.client = redis.NewClient(&redis.Options{Addr: s.addr, ReadTimeout: 30 * time.Second})
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

// s3Server is a versitygw gateway (posix backend) started for the run, counting its requests
// through StatsD.
type s3Server struct {
	endpoint  string
	accessKey string
	secretKey string
	version   string
	p         *proc
	client    *s3.Client
	stats     *s3stats.Counter
}

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
		return "", fmt.Errorf("versitygw not found in %s: run `make scale` (scripts/tools.sh builds it)", dir)
	}
	return p, nil
}

func startVersity(dir string) (*s3Server, error) {
	bin, err := versityBinary()
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	data, meta := filepath.Join(dir, "data"), filepath.Join(dir, "meta")
	for _, d := range []string{data, meta} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	s := &s3Server{endpoint: "http://" + addr, accessKey: "scaleaccess", secretKey: "scalesecret1234", version: "versitygw"}
	if real, err := filepath.EvalSymlinks(bin); err == nil {
		if v, ok := strings.CutPrefix(filepath.Base(real), "versitygw-"); ok {
			s.version += " " + v
		}
	}
	if s.stats, err = s3stats.Start(); err != nil {
		return nil, err
	}
	s.p, err = startProc("versitygw", filepath.Join(dir, "versitygw.log"), bin,
		"--access", s.accessKey, "--secret", s.secretKey, "--port", addr, "--keep-alive", "--quiet",
		"--metrics-statsd-servers", s.stats.Addr, "--metrics-service-name", "scale",
		"posix", "--sidecar", meta, data)
	if err != nil {
		return nil, err
	}
	if err := waitListen(s.p, addr, 15*time.Second); err != nil {
		return nil, err
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(s.accessKey, s.secretKey, "")))
	if err != nil {
		return nil, err
	}
	s.client = s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(s.endpoint)
		o.UsePathStyle = true
	})
	return s, nil
}

func (s *s3Server) createBucket(name string) error {
	_, err := s.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

func buildOffload(moduleDir, dir string) (string, error) {
	bin := filepath.Join(dir, "srs-offload")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/srs-offload")
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/srs-offload: %v\n%s", err, out)
	}
	return bin, nil
}

// httpGet reads a URL's body (the admin listener's /metrics).
func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return string(b), nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(s)
}
