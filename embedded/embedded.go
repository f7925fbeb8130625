// Package embedded runs the in-process stand-ins that let `srs-offload dev` work with nothing
// installed: a Redis-compatible server (miniredis) and an S3-compatible server (gofakes3) that
// keeps objects as files under a folder. They are for development only: miniredis keeps the queue
// in memory, so a restart forgets pending tasks.
package embedded

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"
)

// Redis is an in-process Redis-compatible server.
type Redis struct{ m *miniredis.Miniredis }

// StartRedis listens on addr (host:port; port 0 picks one).
func StartRedis(addr string) (*Redis, error) {
	m := miniredis.NewMiniRedis()
	// asynq relies on keys expiring (unique locks, server heartbeats); miniredis only expires them
	// with its clock turned on.
	m.ClockTTL(true)
	if err := m.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("embedded redis on %s: %w", addr, err)
	}
	return &Redis{m: m}, nil
}

// Addr is host:port.
func (r *Redis) Addr() string { return r.m.Addr() }

// Close stops the server.
func (r *Redis) Close() { r.m.Close() }

// S3 is an in-process S3-compatible server over HTTP whose objects are files under a folder.
type S3 struct {
	srv *http.Server
	ln  net.Listener
}

// StartS3 serves on addr, stores under dir, and creates the bucket if it is missing.
func StartS3(addr, dir, bucket string) (*S3, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	backend, err := s3afero.MultiBucket(afero.NewBasePathFs(afero.NewOsFs(), abs))
	if err != nil {
		return nil, fmt.Errorf("embedded s3 in %s: %w", dir, err)
	}
	if err := backend.CreateBucket(bucket); err != nil && !gofakes3.HasErrorCode(err, gofakes3.ErrBucketAlreadyExists) {
		return nil, fmt.Errorf("embedded s3: create bucket %q: %w", bucket, err)
	}
	faker := gofakes3.New(backend, gofakes3.WithIntegrityCheck(true), gofakes3.WithoutVersioning(), gofakes3.WithInsecureCORS())
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("embedded s3 on %s: %w", addr, err)
	}
	s := &S3{srv: &http.Server{Handler: faker.Server(), ReadHeaderTimeout: 10 * time.Second}, ln: ln}
	go s.srv.Serve(ln)
	return s, nil
}

// Endpoint is the server's http:// URL.
func (s *S3) Endpoint() string { return "http://" + s.ln.Addr().String() }

// Close stops the server.
func (s *S3) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
}
