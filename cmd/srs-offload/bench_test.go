package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkE2ESegments measures the whole pipeline on the built binary (`serve`, redis-server,
// versitygw): b.N on_hls hooks for distinct 1 MiB segment files, sent by 8 concurrent clients the
// way SRS would (one request per connection). It reports the hook's latency percentiles and the
// rate at which segments end up stored, verified and purged.
func BenchmarkE2ESegments(b *testing.B) {
	root := filepath.Join(b.TempDir(), "hls")
	os.MkdirAll(root, 0o755)
	s := newStack(b, root)
	s.start("serve")

	payload := randomBytes(1<<20, 42)
	bodies := make([][]byte, b.N)
	locals := make([]string, b.N)
	for i := range b.N {
		name := fmt.Sprintf("live/cam%d/%d-%d.ts", i%16, 1795474211734+i, i)
		locals[i] = filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(locals[i]), 0o755)
		os.WriteFile(locals[i], payload, 0o644)
		bodies[i], _ = json.Marshal(map[string]any{
			"server_id": "vid-i06a97s", "service_id": "7oas6q35", "action": "on_hls", "client_id": "2g6tz380",
			"ip": "127.0.0.1", "vhost": "__defaultVhost__", "app": "live", "tcUrl": "rtmp://127.0.0.1:19350/live",
			"stream": fmt.Sprintf("cam%d", i%16), "param": "", "duration": 2.0, "cwd": "/usr/local/srs", "file": locals[i],
			"url": name, "m3u8": filepath.Join(root, fmt.Sprintf("live/cam%d.m3u8", i%16)),
			"m3u8_url": fmt.Sprintf("live/cam%d.m3u8", i%16), "seq_no": i, "stream_url": "/live/cam", "stream_id": "vid-18em181",
		})
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // SRS opens a connection per hook
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	next := make(chan int)
	b.ResetTimer()
	start := time.Now()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				resp, err := client.Post("http://"+s.listen+"/api/v1/hls", "application/json", bytes.NewReader(bodies[i]))
				if err != nil {
					b.Error(err)
					continue
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if string(got) != `{"code":0}` {
					b.Errorf("hook answered %d %s", resp.StatusCode, got)
				}
			}
		}()
	}
	for i := range b.N {
		next <- i
	}
	close(next)
	wg.Wait()
	hooksDone := time.Since(start)
	for _, p := range locals {
		for {
			if _, err := os.Stat(p); os.IsNotExist(err) {
				break
			}
			if time.Since(start) > 10*time.Minute {
				b.Fatalf("%s not purged after 10 minutes", p)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "hook-p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "hook-p99-us")
	b.ReportMetric(float64(b.N)/hooksDone.Seconds(), "hooks/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "segments/s")
	b.ReportMetric(float64(b.N)*(1<<20)/elapsed.Seconds()/(1<<20), "MiB/s")
}
