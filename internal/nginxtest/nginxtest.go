// Package nginxtest starts a real nginx as a caching reverse proxy (a CDN edge) for a test, on a free
// loopback port, in a temporary folder, and stops it when the test ends. Its configuration, pid file,
// logs, cache and temporary files all live in that folder: it never reads /etc/nginx nor touches a
// system nginx (Debian's package may run one on port 80; the tests never use it).
//
// The edge caches by $uri (the query string is not part of the key), caches 200 and 404 answers for
// ten minutes each (a 404 fetched before the object exists poisons the edge, on purpose, so tests
// can see it), and reports $upstream_cache_status in an X-Cache-Status response header. As on a real
// CDN, the upstream's Cache-Control and Expires win over those defaults: a segment stored
// "max-age=31536000, immutable" is cached, a playlist stored "no-cache" is not.
package nginxtest

import (
	"encoding/json"
	"fmt"
	"github.com/srs-offload/srs-offload/internal/loopback"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// UserAgent is what Get sends, so a test can tell its own requests from the ones under test.
const UserAgent = "srs-offload-nginxtest"

// Edge is one nginx process: a caching reverse proxy in front of an upstream.
type Edge struct {
	URL      string // http://127.0.0.1:port, no trailing slash
	Upstream string // as given to Start
	Dir      string // the temporary folder: nginx.conf, error.log, access.log, cache/

	t      testing.TB
	port   int
	cfg    config
	cmd    *exec.Cmd
	exited chan struct{}
	client *http.Client
}

// Request is one access-log entry.
type Request struct {
	Method    string
	URI       string // as the client sent it, query included
	Status    int    // as answered to the client
	Cache     string // $upstream_cache_status: MISS, HIT, EXPIRED, BYPASS, STALE, UPDATING, REVALIDATED, or "" when the cache was not involved
	UserAgent string
}

// Option changes the edge's configuration.
type Option func(*config)

type config struct {
	valid      map[int]time.Duration
	directives []string
}

// CacheValid sets how long answers with this status are cached (the defaults: 200 and 404 for ten
// minutes each). A ttl of 0 stops caching that status.
func CacheValid(status int, ttl time.Duration) Option {
	return func(c *config) { c.valid[status] = ttl }
}

// Directives adds raw nginx directives (each ending in ';') to the proxying location, e.g.
// "proxy_ignore_headers Cache-Control;".
func Directives(lines ...string) Option {
	return func(c *config) { c.directives = append(c.directives, lines...) }
}

// Binary finds nginx (also in /usr/sbin, which a user's PATH may lack), or fails the test with how
// to install it.
func Binary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	t.Fatalf("nginx not found: run `make test` (scripts/tools.sh installs Debian's nginx), or apt-get install nginx")
	return ""
}

// Start starts nginx on a free loopback port as a caching proxy in front of upstream, an http URL
// on a loopback address. When upstream has a path, it replaces the leading "/": with upstream
// http://127.0.0.1:9000/bucket/ the edge path /a/b.ts is fetched from /bucket/a/b.ts.
func Start(t testing.TB, upstream string, opts ...Option) *Edge {
	t.Helper()
	checkUpstream(t, upstream)
	cfg := config{valid: map[int]time.Duration{200: 10 * time.Minute, 404: 10 * time.Minute}}
	for _, o := range opts {
		o(&cfg)
	}
	e := &Edge{
		Upstream: upstream, Dir: t.TempDir(), t: t, cfg: cfg,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}},
	}
	t.Cleanup(e.Stop)
	// The port is free when picked but may be taken before nginx binds it: try a few.
	var err error
	for range 5 {
		e.port = loopback.FreePort(t)
		e.URL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(e.port))
		if err = e.start(); err == nil {
			return e
		}
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	t.Fatalf("nginxtest: %v", err)
	return nil
}

func checkUpstream(t testing.TB, upstream string) {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.RawQuery != "" {
		t.Fatalf("nginxtest: upstream %q: want http://host:port[/path]", upstream)
	}
	if h := u.Hostname(); h != "localhost" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			t.Fatalf("nginxtest: upstream %q is not on a loopback address", upstream)
		}
	}
}

func (e *Edge) start() error {
	conf := filepath.Join(e.Dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(e.config()), 0o644); err != nil {
		return err
	}
	for _, d := range []string{"cache", "temp"} {
		if err := os.MkdirAll(filepath.Join(e.Dir, d), 0o755); err != nil {
			return err
		}
	}
	logPath := filepath.Join(e.Dir, "nginx.out")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	// -p and -e keep nginx off the compiled-in prefix and error log until the config is read.
	cmd := exec.Command(Binary(e.t), "-p", e.Dir+"/", "-c", conf, "-e", filepath.Join(e.Dir, "error.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start nginx: %w", err)
	}
	e.cmd, e.exited = cmd, make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); close(exited) }(cmd, e.exited)

	addr := strings.TrimPrefix(e.URL, "http://")
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-e.exited:
			e.cmd = nil
			return fmt.Errorf("nginx exited at start:\n%s%s", readFile(logPath), readFile(filepath.Join(e.Dir, "error.log")))
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			e.Stop()
			return fmt.Errorf("nginx did not listen on %s: %v\n%s", addr, err, readFile(filepath.Join(e.Dir, "error.log")))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// config is the nginx.conf. master_process off: one process, running as the user that runs the
// test (the user directive does not apply), which a plain kill stops with nothing left behind.
func (e *Edge) config() string {
	var valid strings.Builder
	statuses := make([]int, 0, len(e.cfg.valid))
	for status := range e.cfg.valid {
		statuses = append(statuses, status)
	}
	sort.Ints(statuses)
	for _, status := range statuses {
		if ttl := e.cfg.valid[status]; ttl > 0 {
			secs := (ttl + time.Second - 1) / time.Second // nginx takes whole seconds here
			fmt.Fprintf(&valid, "            proxy_cache_valid %d %ds;\n", status, secs)
		}
	}
	var extra strings.Builder
	for _, d := range e.cfg.directives {
		fmt.Fprintf(&extra, "            %s\n", d)
	}
	d := e.Dir
	return fmt.Sprintf(`# written by internal/nginxtest
daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
lock_file %[1]s/nginx.lock;
error_log %[1]s/error.log info;

events {
    worker_connections 256;
}

http {
    default_type application/octet-stream;
    client_body_temp_path %[1]s/temp/body;
    proxy_temp_path %[1]s/temp/proxy;
    fastcgi_temp_path %[1]s/temp/fastcgi;
    uwsgi_temp_path %[1]s/temp/uwsgi;
    scgi_temp_path %[1]s/temp/scgi;

    log_format edge escape=json '{"method":"$request_method","uri":"$request_uri","status":$status,"cache":"$upstream_cache_status","ua":"$http_user_agent"}';
    access_log %[1]s/access.log edge;

    proxy_cache_path %[1]s/cache levels=1:2 keys_zone=edge:10m max_size=1g inactive=60m use_temp_path=off;

    server {
        listen 127.0.0.1:%[2]d;
        server_name edge;

        location / {
            proxy_pass %[3]s;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache edge;
            proxy_cache_key $uri;
%[4]s            proxy_cache_lock on;
            add_header X-Cache-Status $upstream_cache_status always;
%[5]s        }
    }
}
`, d, e.port, e.Upstream, valid.String(), extra.String())
}

// Get fetches path (starting with "/") through the edge, and returns the status, the body and the
// X-Cache-Status nginx reported (MISS, HIT, EXPIRED, ...; "" when the cache was not involved).
func (e *Edge) Get(t testing.TB, path string) (status int, body []byte, cache string) {
	t.Helper()
	if !strings.HasPrefix(path, "/") {
		t.Fatalf("nginxtest: Get(%q): the path must start with /", path)
	}
	req, err := http.NewRequest(http.MethodGet, e.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", UserAgent)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("nginxtest: GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("nginxtest: GET %s: body: %v", path, err)
	}
	return resp.StatusCode, body, resp.Header.Get("X-Cache-Status")
}

// Requests returns the access-log entries so far, oldest first. nginx writes an entry just after
// the answer's last byte, so one may lag its answer by a moment: see WaitRequests.
func (e *Edge) Requests(t testing.TB) []Request {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.Dir, "access.log"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatalf("nginxtest: access log: %v", err)
	}
	lines := strings.Split(string(b), "\n")
	lines = lines[:len(lines)-1] // "" after the last newline, or an entry still being written
	var out []Request
	for _, line := range lines {
		var r struct {
			Method, URI, Cache, UA string
			Status                 int
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("nginxtest: access log line %q: %v", line, err)
		}
		out = append(out, Request{Method: r.Method, URI: r.URI, Status: r.Status, Cache: r.Cache, UserAgent: r.UA})
	}
	return out
}

// WaitRequests waits (up to timeout) until the access log has at least n entries, and returns them
// all; it fails the test if they do not come. For requests made by something else, in the
// background (a warming GET).
func (e *Edge) WaitRequests(t testing.TB, n int, timeout time.Duration) []Request {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rs := e.Requests(t)
		if len(rs) >= n {
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginxtest: %d access-log entries after %v, want %d: %+v", len(rs), timeout, n, rs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ErrorLog returns nginx's error log, for failure messages.
func (e *Edge) ErrorLog() string { return readFile(filepath.Join(e.Dir, "error.log")) }

// Stop kills nginx. It may be called more than once.
func (e *Edge) Stop() {
	if e.cmd == nil {
		return
	}
	e.cmd.Process.Kill()
	<-e.exited
	e.cmd = nil
}

func (e *Edge) String() string { return fmt.Sprintf("nginx@%s->%s", e.URL, e.Upstream) }
