package main

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// s3proxy sits between srs-offload and versitygw and counts the requests by what they write:
// segments, live playlists, VoD playlists, and the rest. versitygw's StatsD counts name only the
// action (a playlist and a segment are both PutObject) and arrive in batches, so a window of
// them is off by up to a batch; these are counted as each answer passes.
type s3proxy struct {
	addr string
	srv  *http.Server
	mu   sync.Mutex
	n    map[string]int64
}

// Request classes.
const (
	reqSegment = "segment PUT"
	reqLive    = "live playlist PUT"
	reqVOD     = "VoD playlist PUT"
)

func startS3Proxy(target string) (*s3proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &s3proxy{addr: ln.Addr().String(), n: map[string]int64{}}
	rp := httputil.NewSingleHostReverseProxy(u) // keeps the Host header, which the signature covers
	rp.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}
	rp.ErrorLog = nil
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		rp.ServeHTTP(rec, r)
		p.count(r, rec.code)
	})}
	go p.srv.Serve(ln)
	return p, nil
}

func (p *s3proxy) count(r *http.Request, code int) {
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

func (p *s3proxy) now() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.n))
	for k, v := range p.n {
		out[k] = v
	}
	return out
}

func (p *s3proxy) close() { p.srv.Close() }

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}
