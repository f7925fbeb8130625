// Package redistest starts a real redis-server for a test, on a free loopback port, in a temporary
// folder, and stops it when the test ends. It never touches a Redis it did not start.
package redistest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/internal/loopback"
)

// Server is one redis-server process.
type Server struct {
	Addr string
	t    testing.TB
	dir  string
	port int
	cmd  *exec.Cmd
	// exited is closed when cmd has exited (and been waited for).
	exited chan struct{}
	// persistent: an append-only file in dir keeps the data across Stop and Start.
	persistent bool
	opts       Options
	mu         sync.Mutex // guards cmd for Stop and Start from other goroutines
}

// Binary finds redis-server, or fails the test with how to install it.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found: run `make test` (it installs Debian's redis-server), or apt-get install redis-server")
	}
	return p
}

// Start starts a redis-server on a free loopback port.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, dir: t.TempDir(), port: loopback.FreePort(t)}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// StartPersistent starts a redis-server on a free loopback port that keeps its data in an
// append-only file (appendonly yes, appendfsync everysec) in its own temporary folder, as
// production Redis for srs-offload runs: Stop and then Start on the same port keep the data.
func StartPersistent(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, dir: t.TempDir(), port: loopback.FreePort(t), persistent: true}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// Options are what StartWith adds to a plain server.
type Options struct {
	// Args are more redis-server arguments (config directives, e.g. "--user", "app", "on", …).
	Args []string
	// TLS, when set, makes the server (or sentinel) listen with TLS only (tls-port; port 0): Args must name its
	// tls-cert-file and the rest (see PKI.ServerArgs). The readiness PING uses this client config.
	TLS *tls.Config
	// Password is the default user's (requirepass); the readiness PING uses it.
	Password string
	// Persistent is StartPersistent's append-only file.
	Persistent bool
	// SentinelConf, when set, runs a sentinel (redis-server <dir>/sentinel.conf --sentinel) with
	// this config text instead of a data server.
	SentinelConf string
}

// StartWith starts a redis-server on a free loopback port with more options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{t: t, dir: t.TempDir(), port: loopback.FreePort(t), persistent: o.Persistent, opts: o}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// Dir is the server's own temporary folder (its log is redis.log there).
func (s *Server) Dir() string { return s.dir }

// Client is a client of the default user (with Options' password and TLS).
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr, Password: s.opts.Password, TLSConfig: s.opts.TLS})
}

func (s *Server) start() {
	s.t.Helper()
	if err := s.launch(); err != nil {
		s.t.Fatal(err)
	}
}

// launch starts the process and waits until it answers PING (a persistent server has loaded its
// append-only file by then).
func (s *Server) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		select {
		case <-s.exited: // it died by itself
			s.cmd = nil
		default:
			return fmt.Errorf("redis-server on %s is already running", s.Addr)
		}
	}
	persist := []string{"--save", "", "--appendonly", "no"}
	if s.persistent {
		persist = []string{"--save", "", "--appendonly", "yes", "--appendfsync", "everysec"}
	}
	port := []string{"--port", strconv.Itoa(s.port)}
	if s.opts.TLS != nil {
		port = []string{"--port", "0", "--tls-port", strconv.Itoa(s.port)}
	}
	args := append([]string{"--bind", "127.0.0.1", "--dir", s.dir}, port...)
	args = append(args, persist...)
	args = append(args, "--daemonize", "no", "--protected-mode", "yes",
		"--maxmemory-policy", "noeviction", "--loglevel", "warning")
	if s.opts.Password != "" {
		args = append(args, "--requirepass", s.opts.Password)
	}
	args = append(args, s.opts.Args...)
	if s.opts.SentinelConf != "" {
		conf := filepath.Join(s.dir, "sentinel.conf")
		if _, err := os.Stat(conf); err != nil { // a restarted sentinel keeps what it learnt
			if err := os.WriteFile(conf, []byte(s.opts.SentinelConf), 0o644); err != nil {
				return err
			}
		}
		args = append(append([]string{conf, "--sentinel", "--bind", "127.0.0.1"}, port...), "--dir", s.dir,
			"--daemonize", "no", "--loglevel", "warning")
		args = append(args, s.opts.Args...)
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return fmt.Errorf("redis-server not found: run `make test` (it installs Debian's redis-server), or apt-get install redis-server")
	}
	cmd := exec.Command(bin, args...)
	logf, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	c := s.Client()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			s.cmd, s.exited = cmd, exited
			return nil
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server on %s exited at start:\n%s", s.Addr, b)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on %s did not answer PING: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL, as a crash would). It may be called more than once, and from
// any goroutine. A persistent server keeps what it had written to its append-only file.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Running is whether the server's process runs.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Start starts a stopped server again on the same port and folder: a persistent server
// (StartPersistent) comes back with its data. It returns an error instead of failing the test,
// so it may be called from any goroutine.
func (s *Server) Start() error { return s.launch() }

// Restart stops the server and starts it again on the same port (with an empty dataset).
func (s *Server) Restart() {
	s.Stop()
	s.start()
}

// String is for logs.
func (s *Server) String() string { return fmt.Sprintf("redis-server@%s", s.Addr) }
