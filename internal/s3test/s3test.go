// Package s3test starts real S3 APIs over HTTP for tests: gofakes3 in-process (fast), and versitygw
// as a separate process (a real gateway with real checksums). Both listen on loopback only and
// stop when the test ends.
package s3test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/srs-offload/srs-offload/internal/loopback"
	"github.com/srs-offload/srs-offload/uploader"
)

// Server is an S3 endpoint with one bucket.
type Server struct {
	Name      string
	Provider  string // storage.provider; empty: detected from the endpoint
	Endpoint  string
	Bucket    string
	AccessKey string
	SecretKey string
	// CABundle is the PEM certificate of a server that serves TLS with its own (MinIO).
	CABundle []byte
	// KMSKey names the server's built-in KMS key (MinIO), for SSE-KMS.
	KMSKey string
}

// Config is an uploader config for this server.
func (s *Server) Config() uploader.Config {
	t := true
	return uploader.Config{
		Provider: s.Provider, Endpoint: s.Endpoint, Region: "us-east-1", Bucket: s.Bucket, PathStyle: &t,
		AccessKey: s.AccessKey, SecretKey: s.SecretKey, CABundle: s.CABundle,
		MultipartThreshold: 16 << 20, PartSize: 5 << 20, PartConcurrency: 4, MaxConns: 16,
	}
}

// Uploader builds an uploader for this server, with cfg changes applied.
func (s *Server) Uploader(t testing.TB, change func(*uploader.Config)) *uploader.Uploader {
	t.Helper()
	c := s.Config()
	if change != nil {
		change(&c)
	}
	u, err := uploader.New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.CheckBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return u
}

// Fake starts gofakes3 (in memory) behind an httptest server. Wrap, when not nil, sits in front of
// it, for tests that need to tamper with answers.
func Fake(t testing.TB, wrap func(http.Handler) http.Handler) *Server {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("test"); err != nil {
		t.Fatal(err)
	}
	var h http.Handler = gofakes3.New(backend, gofakes3.WithIntegrityCheck(true)).Server()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Server{Name: "gofakes3", Endpoint: srv.URL, Bucket: "test", AccessKey: "AK", SecretKey: "SKSKSKSK"}
}

// VersityBinary finds versitygw in the tool cache that scripts/tools.sh fills.
func VersityBinary(t testing.TB) string {
	t.Helper()
	return toolBinary(t, "versitygw")
}

// haveTool tells whether toolBinary finds name.
func haveTool(t testing.TB, name string) bool {
	t.Helper()
	if _, err := os.Stat(filepath.Join(toolDir(t), name)); err == nil {
		return true
	}
	_, err := exec.LookPath(name)
	return err == nil
}

// toolDir is the tool cache that scripts/tools.sh fills.
func toolDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SRS_OFFLOAD_TOOLS")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(cache, "srs-offload", "bin")
	}
	return dir
}

// toolBinary finds a tool in the tool cache, or on PATH.
func toolBinary(t testing.TB, name string) string {
	t.Helper()
	dir := toolDir(t)
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		if lp, lerr := exec.LookPath(name); lerr == nil {
			return lp
		}
		t.Fatalf("%s not found in %s: run `make test` (scripts/tools.sh builds it)", name, dir)
	}
	return p
}

// Versity starts a versitygw gateway (posix backend) in a temporary folder and creates a bucket.
func Versity(t testing.TB) *Server {
	t.Helper()
	return VersityGateway(t).Server
}

// Gateway is a versitygw process that can be stopped and started again on the same port and data
// folder, to test storage outages.
type Gateway struct {
	*Server
	bin, addr, dir, data, meta string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited and been waited for
}

// VersityGateway is Versity, for a test that also stops and restarts the gateway. It is killed
// when the test ends.
func VersityGateway(t testing.TB) *Gateway {
	t.Helper()
	dir := t.TempDir()
	g := &Gateway{bin: VersityBinary(t), dir: dir, data: filepath.Join(dir, "data"), meta: filepath.Join(dir, "meta")}
	os.MkdirAll(g.data, 0o755)
	os.MkdirAll(g.meta, 0o755)
	g.addr = "127.0.0.1:" + strconv.Itoa(loopback.FreePort(t))
	g.Server = &Server{Name: "versitygw", Endpoint: "http://" + g.addr, Bucket: "test", AccessKey: "testaccess", SecretKey: "testsecret1234"}
	t.Cleanup(g.Stop)
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	c := g.Config()
	u, err := uploader.New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(g.Bucket)}); err != nil {
		t.Fatalf("versitygw create bucket: %v", err)
	}
	return g
}

// Start starts the stopped gateway again, on the same port and data folder (the bucket and its
// objects are still there), and returns once it listens. It returns an error instead of failing
// the test, so it may be called from any goroutine.
func (g *Gateway) Start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cmd != nil {
		select {
		case <-g.exited: // it died by itself
			g.cmd = nil
		default:
			return fmt.Errorf("versitygw on %s is already running", g.addr)
		}
	}
	cmd := exec.Command(g.bin, "--access", g.AccessKey, "--secret", g.SecretKey,
		"--port", g.addr, "posix", "--sidecar", g.meta, g.data)
	logPath := filepath.Join(g.dir, "versitygw.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start versitygw: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", g.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			g.cmd, g.exited = cmd, exited
			return nil
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("versitygw on %s exited at start:\n%s", g.addr, b)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("versitygw did not listen on %s: %v\n%s", g.addr, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the gateway (SIGKILL: requests in flight are cut off). It may be called more than
// once, and from any goroutine.
func (g *Gateway) Stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cmd == nil {
		return
	}
	g.cmd.Process.Kill()
	<-g.exited
	g.cmd = nil
}

// Both returns one of each server, for tests that must pass on both.
func Both(t testing.TB) []*Server { return []*Server{Fake(t, nil), Versity(t)} }

func (s *Server) String() string { return fmt.Sprintf("%s@%s", s.Name, s.Endpoint) }
