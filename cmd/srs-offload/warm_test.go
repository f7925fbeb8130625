package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/internal/loopback"
	"github.com/srs-offload/srs-offload/internal/nginxtest"
)

// CDN warming end to end: nginx with proxy_cache (caching 404s too) is the edge in front of the
// `srs-offload dev` bucket. A notify makes the edge cache the segment (the next GET is a HIT),
// a notify that comes before the upload never makes it cache a 404, a dead edge costs bounded
// retries and a log line without slowing offloading, and a notify that tries to escape warms
// nothing.
func TestE2EWarmCDN(t *testing.T) {
	s3addr := fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	edge := nginxtest.Start(t, "http://"+s3addr)
	dead := fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t)) // nothing listens there
	d := startDevAt(t, fmt.Sprintf(`log: {level: debug}
warm:
  wait: 30s
  targets:
    - name: edge
      url: "%s/live/{key}"
      retries: 1
    - name: dead
      url: "http://%s/live/{key}"
      timeout: 1s
      retries: 2
`, edge.URL, dead), s3addr)
	hook := "http://" + d.listen + "/api/v1/hls"
	notify := func(path string) {
		t.Helper()
		resp, err := http.Get("http://" + d.listen + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != `{"code":0}` {
			t.Fatalf("notify %s: %d %s", path, resp.StatusCode, b)
		}
	}
	seq := int64(0)
	segment := func(name string) (string, []byte) {
		data := randomBytes(200_000, uint64(seq)+7)
		p := filepath.Join(d.root, "live", "cam", name)
		writeSegment(t, p, data)
		return p, data
	}
	onHLS := func(p, name string) {
		t.Helper()
		post(t, hook, srsHook("c1", "cam", "/usr/local/srs", p, "live/cam/"+name, filepath.Join(d.root, "live", "cam.m3u8"), seq, 2.0))
		seq++
	}
	// warmed waits for the warm request for key in the edge's log (srs-offload's, not the test's).
	warmed := func(key string, within time.Duration) nginxtest.Request {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			for _, r := range edge.Requests(t) {
				if r.UserAgent == "srs-offload-warm" && r.URI == "/live/"+key {
					return r
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no warm request for %s within %v; edge log %+v\n%s", key, within, edge.Requests(t), d.stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	hit := func(key string, want []byte) {
		t.Helper()
		status, body, cache := edge.Get(t, "/live/"+key)
		if status != 200 || cache != "HIT" || !bytes.Equal(body, want) {
			t.Fatalf("GET %s through the edge: %d %s, %d bytes (want 200 HIT, %d bytes)", key, status, cache, len(body), len(want))
		}
	}

	// 1. SRS's order: on_hls, then the notify about a millisecond later, while the upload runs.
	p, data := segment("a-0.ts")
	onHLS(p, "a-0.ts")
	start := time.Now()
	notify("/api/v1/hls/live/cam/cam/a-0.ts")
	w := warmed("live/cam/a-0.ts", 10*time.Second)
	if w.Status != 200 || w.Cache != "MISS" {
		t.Fatalf("the warm request got %d %s, want 200 MISS", w.Status, w.Cache)
	}
	hit("live/cam/a-0.ts", data)
	t.Logf("notify → edge HIT: %v", time.Since(start))

	// 2. The notify comes before the segment is stored (here even before its on_hls): the edge
	// is not asked for it (which would cache a 404) until the upload is verified.
	p, data = segment("b-1.ts")
	notify("/api/v1/hls/live/cam/cam/b-1.ts")
	time.Sleep(500 * time.Millisecond)
	for _, r := range edge.Requests(t) {
		if strings.Contains(r.URI, "b-1.ts") {
			t.Fatalf("the edge was asked for b-1.ts before it was stored: %+v", r)
		}
	}
	onHLS(p, "b-1.ts")
	w = warmed("live/cam/b-1.ts", 10*time.Second)
	if w.Status != 200 {
		t.Fatalf("warm of b-1.ts got %d %s", w.Status, w.Cache)
	}
	hit("live/cam/b-1.ts", data)

	// 3. The dead target: bounded retries, then a clear line; offloading goes on at full speed.
	begin := time.Now()
	var locals []string
	for i := 0; i < 10; i++ {
		name := fmt.Sprintf("c-%d.ts", i)
		p, _ := segment(name)
		locals = append(locals, p)
		onHLS(p, name)
		notify("/api/v1/hls/live/cam/cam/" + name)
	}
	for _, p := range locals {
		for {
			if _, err := os.Stat(p); os.IsNotExist(err) {
				break
			}
			if time.Since(begin) > 10*time.Second {
				t.Fatalf("%s not offloaded within 10 s while an edge is dead", p)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("10 segments stored and purged in %v with a dead edge", time.Since(begin))
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(d.stderr.String(), `msg="warm: edge not warmed" target=dead`) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for the dead edge:\n%s", d.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(d.stderr.String(), "attempts=3") {
		t.Errorf("the dead edge's log line does not say it tried 1+2 times")
	}

	// 4. Notifies that try to leave the stream, or name a URL or another host, warm nothing.
	for _, path := range []string{
		"/api/v1/hls/live/cam/../../../etc/passwd",
		"/api/v1/hls/live/cam/cam/%2e%2e/%2e%2e/secret.ts",
		"/api/v1/hls/live/cam/http://evil.example.com/x.ts",
		"/api/v1/hls/live/cam//evil.example.com/x.ts",
		"/api/v1/hls/live/..%2f..%2fx/cam/x.ts",
	} {
		notify(path)
	}
	time.Sleep(500 * time.Millisecond)
	// The edge saw only the stream's own segments (the test's own GETs and srs-offload's warms).
	for _, r := range edge.Requests(t) {
		if !strings.HasPrefix(r.URI, "/live/live/cam/") || strings.Count(r.URI, "/") != 4 || !strings.HasSuffix(r.URI, ".ts") ||
			strings.ContainsAny(strings.TrimPrefix(r.URI, "/live/live/cam/"), "%:") {
			t.Fatalf("the edge was asked for %s (%+v)", r.URI, r)
		}
	}
}
