package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/srs-offload/srs-offload/internal/testbed"
)

// s3proxy sits between srs-offload and versitygw and counts the requests by what they write:
// segments, live playlists, VoD playlists, and the rest. versitygw's StatsD counts name only the
// action (a playlist and a segment are both PutObject) and arrive in batches, so a window of
// them is off by up to a batch; these are counted as each answer passes.
//
// It runs as a process of its own (the harness's binary again, see proxyMain): inside the
// harness, whose thousands of stream goroutines fill the cores at 10,000 streams, it answered
// so slowly that it, not srs-offload, bounded the uploads.
type s3proxy struct {
	addr string
	p    *testbed.Proc
}

// proxyEnv, set to the S3 endpoint and a listen address, makes the harness's binary the proxy.
const proxyEnv = "SRS_OFFLOAD_SCALE_PROXY"

// countsPath answers the counts as JSON; no S3 bucket can be named so.
const countsPath = "/_counts"

func startS3Proxy(target, logPath string) (*s3proxy, error) {
	addr, err := testbed.FreeAddr()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p, err := testbed.Start("s3 proxy", logPath, append(os.Environ(), proxyEnv+"="+target+" "+addr), self)
	if err != nil {
		return nil, err
	}
	if err := p.WaitListen(addr, 10*time.Second); err != nil {
		return nil, err
	}
	return &s3proxy{addr: addr, p: p}, nil
}

// now reads the counts so far.
func (p *s3proxy) now() map[string]int64 {
	out := map[string]int64{}
	b, err := httpGet("http://" + p.addr + countsPath)
	if err == nil {
		json.Unmarshal([]byte(b), &out)
	}
	return out
}

func (p *s3proxy) close() { p.p.Kill() }

// proxyMain is the proxy process: it returns false when the environment does not ask for one.
func proxyMain() bool {
	v := os.Getenv(proxyEnv)
	if v == "" {
		return false
	}
	target, addr, _ := strings.Cut(v, " ")
	c, err := newCounter(target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3 proxy:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "s3 proxy:", http.ListenAndServe(addr, c))
	os.Exit(1)
	return true
}

type counter struct {
	rp *httputil.ReverseProxy
	mu sync.Mutex
	n  map[string]int64
}

func newCounter(target string) (*counter, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	c := &counter{n: map[string]int64{}}
	c.rp = httputil.NewSingleHostReverseProxy(u) // keeps the Host header, which the signature covers
	c.rp.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}
	return c, nil
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == countsPath {
		c.mu.Lock()
		b, _ := json.Marshal(c.n)
		c.mu.Unlock()
		w.Write(b)
		return
	}
	rec := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	c.rp.ServeHTTP(rec, r)
	c.count(r, rec.code)
}

// Request classes.
const (
	reqSegment = "segment PUT"
	reqLive    = "live playlist PUT"
	reqVOD     = "VoD playlist PUT"
)

func (p *counter) count(r *http.Request, code int) {
	class := r.Method
	key := r.URL.Path
	switch {
	case r.Method == http.MethodPut && r.URL.Query().Has("partNumber"):
		class = "UploadPart"
	case r.Method == http.MethodPut && strings.HasSuffix(key, ".m3u8") && strings.Contains(key, "/vod/"):
		class = reqVOD
	case r.Method == http.MethodPut && strings.HasSuffix(key, ".m3u8"):
		class = reqLive
	case r.Method == http.MethodPut && strings.HasSuffix(key, ".ts"):
		class = reqSegment
	}
	if code >= 300 {
		class += " " + http.StatusText(code)
	}
	p.mu.Lock()
	p.n[class]++
	p.mu.Unlock()
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}
