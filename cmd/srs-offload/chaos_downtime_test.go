package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/internal/loopback"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/internal/s3test"
)

// downtimeSetting is one SRS HLS setting with hls_cleanup on, and the downtimes tried under it.
type downtimeSetting struct {
	name             string
	fragment, window time.Duration
	downs            []time.Duration
}

// downtimeSettings: SRS's defaults (hls_fragment 10, hls_window 60) and a short window; each
// with a downtime just under and one just over the window.
var downtimeSettings = []downtimeSetting{
	{name: "short", fragment: 2 * time.Second, window: 6 * time.Second, downs: []time.Duration{5 * time.Second, 7500 * time.Millisecond}},
	{name: "defaults", fragment: 10 * time.Second, window: 60 * time.Second, downs: []time.Duration{55 * time.Second, 65 * time.Second}},
}

// TestChaosDowntime measures how long `srs-offload serve` (the only process on the host) may be
// down without losing a segment while SRS's hls_cleanup runs: a fake SRS writes a segment every
// hls_fragment (1% longer, as segments end on the first keyframe after it) and unlinks it once
// the segments after it last longer than hls_window (SrsFragmentWindow::shrink); the process is
// SIGKILLed just before a segment closes (the worst moment: that segment's hook is lost and it
// has the least time left) and started again after the downtime; then every file written must be
// in storage. It takes about 8 minutes, so it runs only with SRS_OFFLOAD_DOWNTIME=1 (or =short,
// =defaults for one setting); README's restart row comes from its output.
func TestChaosDowntime(t *testing.T) {
	which := os.Getenv("SRS_OFFLOAD_DOWNTIME")
	if which == "" {
		t.Skip("SRS_OFFLOAD_DOWNTIME=1 measures the safe downtime (about 8 minutes)")
	}
	bin := binary(t)
	rds := redistest.StartPersistent(t)
	s3 := s3test.Fake(t, nil)
	var report []string
	for _, set := range downtimeSettings {
		if which != "1" && which != set.name {
			continue
		}
		for _, down := range set.downs {
			t.Run(fmt.Sprintf("%s/down=%s", set.name, down), func(t *testing.T) {
				line := downtimeRun(t, bin, rds, s3, set, down)
				report = append(report, line)
			})
		}
	}
	t.Log("\n" + strings.Join(report, "\n"))
	fmt.Println(strings.Join(report, "\n"))
}

// downtimeRun runs one stream under one setting with one kill, and reports what was lost.
func downtimeRun(t *testing.T, bin string, rds *redistest.Server, s3 *s3test.Server, set downtimeSetting, down time.Duration) string {
	tmp := t.TempDir()
	logDir := os.Getenv("SRS_OFFLOAD_DOWNTIME_LOGS") // keeps the processes' logs there
	if logDir == "" {
		logDir = tmp
	}
	root := filepath.Join(tmp, "hls")
	os.MkdirAll(filepath.Join(root, "live"), 0o755)
	listen := fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	node := fmt.Sprintf("down%d", time.Now().UnixNano()%1e6)
	t.Setenv("DOWN_AK", s3.AccessKey)
	t.Setenv("DOWN_SK", s3.SecretKey)
	cfg := filepath.Join(tmp, "srs-offload.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: %s
admin: {listen: %s}
node: %s
redis: {addr: %s}
roots: [%q]
storage:
  endpoint: %s
  bucket: %s
  access_key: ${DOWN_AK}
  secret_key: ${DOWN_SK}
  path_style: true
playlist: {enabled: false}
reconcile: {min_age: 3s, interval: 5s}
`, listen, adminAddr, node, rds.Addr, root, s3.Endpoint, s3.Bucket)), 0o644)
	store := s3.Uploader(t, nil)
	ctx := context.Background()
	start := func(n int) *chaosProc {
		p, err := startChaosProc(bin, "serve", cfg, adminAddr, filepath.Join(logDir, fmt.Sprintf("serve-%d.log", n)))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	proc := start(1)
	defer func() {
		if proc != nil {
			proc.kill()
		}
	}()

	// The fake SRS: one stream, segments of fragment+1%, SRS's window, the hook after the cleanup.
	seg := set.fragment + set.fragment/100
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	type written struct {
		key, path string
		closed    time.Time
		deleted   time.Time
	}
	var files []*written
	var window []*written
	hookq := make(chan srsHLSHook, 1024)
	go func() {
		for h := range hookq {
			b, _ := json.Marshal(h)
			if resp, err := client.Post("http://"+listen+"/api/v1/hls", "application/json", bytes.NewReader(b)); err == nil {
				resp.Body.Close()
			}
		}
	}()
	defer close(hookq)
	t0 := time.Now()
	closeAt := func(i int) time.Time { return t0.Add(time.Duration(i+1) * seg) }
	writeSeg := func(i int) {
		name := fmt.Sprintf("%s-%d.ts", node, i) // the bucket is shared by the runs
		path := filepath.Join(root, "live", name)
		data := make([]byte, 64<<10)
		rand.Read(data)
		if _, err := writeMedia(path, data); err != nil {
			t.Fatal(err)
		}
		w := &written{key: "live/" + name, path: path, closed: time.Now()}
		files = append(files, w)
		window = append(window, w)
		var total time.Duration
		for j := len(window) - 1; j > 0; j-- {
			total += seg
			if total > set.window {
				for _, e := range window[:j] {
					os.Remove(e.path)
					e.deleted = time.Now()
				}
				window = window[j:]
				break
			}
		}
		hookq <- srsHLSHook{ServerID: srsServerID, ServiceID: srsServiceID, Action: "on_hls", ClientID: "downtime", IP: "127.0.0.1",
			Vhost: "__defaultVhost__", App: "live", TcURL: "rtmp://127.0.0.1/live", Stream: "ds", Duration: srsDuration(seg.Seconds()),
			Cwd: chaosCwd, File: path, URL: "live/" + name, M3U8: filepath.Join(root, "live", "ds.m3u8"), M3U8URL: "live/ds.m3u8",
			SeqNo: i, StreamURL: "/live/ds", StreamID: "vid-down"}
	}
	// Segment 0 closes with the process up; the kill comes 200 ms before segment 1 closes.
	i := 0
	next := func() {
		time.Sleep(time.Until(closeAt(i)))
		writeSeg(i)
		i++
	}
	next()
	time.Sleep(time.Until(closeAt(1).Add(-200 * time.Millisecond)))
	proc.kill()
	killed := time.Now()
	proc = nil
	restart := killed.Add(down)
	for closeAt(i).Before(restart) {
		next()
	}
	time.Sleep(time.Until(restart))
	proc = start(2)
	upAfter := time.Since(killed)
	// Go on until every segment written while it was down has reached its deletion time.
	for end := time.Now().Add(set.window + 2*seg); closeAt(i).Before(end); {
		next()
	}
	writtenDown := 0
	for _, w := range files {
		if w.closed.After(killed) && w.closed.Before(killed.Add(upAfter)) {
			writtenDown++
		}
	}
	// Drain: every file stored, or gone from disk (SRS's name and the spool) for good.
	var lost []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		onDisk := map[string]bool{} // before the listing: a file purged meanwhile is listed
		for _, p := range localLeftovers([]string{root}) {
			if orig, ok := spoolOrig([]string{root}, p); ok {
				p = orig
			}
			onDisk[p] = true
		}
		objs, err := listObjects(ctx, store)
		if err != nil {
			t.Fatal(err)
		}
		lost = lost[:0]
		pending := 0
		for _, w := range files {
			if _, ok := objs[w.key]; ok {
				continue
			}
			if onDisk[w.path] {
				pending++
				continue
			}
			lost = append(lost, fmt.Sprintf("%s (closed %.1fs after the kill, deleted by SRS %.1fs after it closed)",
				w.key, w.closed.Sub(killed).Seconds(), w.deleted.Sub(w.closed).Seconds()))
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	line := fmt.Sprintf("hls_fragment %s, hls_window %s (a segment on disk %.2fs after it closes): down %.1fs (SIGKILL to serving again), %d segments closed meanwhile, %d of %d lost",
		set.fragment, set.window, segLife(seg, set.window).Seconds(), upAfter.Seconds(), writtenDown, len(lost), len(files))
	if len(lost) > 0 {
		line += ": " + strings.Join(lost, ", ")
	}
	t.Log(line)
	return line
}

// segLife is how long SRS keeps a segment after it closes when every segment lasts seg: until
// the segments after it last longer than the window.
func segLife(seg, window time.Duration) time.Duration {
	var total time.Duration
	for total <= window {
		total += seg
	}
	return total
}
