package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The `hooks` process starts while Redis is down: before anything else it holds in the spool the
// files written while it was not running (SRS's cleanup then deletes their names), it answers a
// hook 503 saying the file is kept, and once Redis answers its reconciler enqueues both files with
// no operator action; a worker stores them byte for byte and nothing is left on disk.
func TestE2EHooksStartWithRedisDown(t *testing.T) {
	s, root := newStackWith(t, "reconcile: {min_age: 1s, interval: 1h, watch: true}\n")
	b := s3Bucket{s.store}
	write := func(seq int) (rel, path string, data []byte) {
		rel = fmt.Sprintf("live/cam1-%d.ts", seq)
		path = filepath.Join(root, rel)
		data = randomBytes(32<<10+seq*1000, uint64(seq))
		writeSegment(t, path, data)
		return rel, path, data
	}
	rel0, p0, d0 := write(0) // written while no srs-offload ran; its hook never comes
	s.redis.Stop()
	hooks := s.start("hooks")
	held, _ := filepath.Glob(filepath.Join(root, ".srs-offload", "live", "*-cam1-0.ts"))
	if len(held) != 1 {
		t.Fatalf("the file on disk at start is not held in the spool once the receiver listens: %v\n%s", held, hooks.log)
	}
	if err := os.Remove(p0); err != nil { // SRS's hls_cleanup
		t.Fatal(err)
	}
	rel1, p1, d1 := write(1)
	body := srsHook("c1", "cam1", root, "./"+rel1, rel1, filepath.Join(root, "live/cam1.m3u8"), 1, 2)
	resp, err := http.Post("http://"+s.listen+"/api/v1/hls", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(answer), "kept on disk") {
		t.Fatalf("hook with Redis down: %d %s, want 503 saying the file is kept", resp.StatusCode, answer)
	}
	if err := os.Remove(p1); err != nil { // SRS's hls_cleanup
		t.Fatal(err)
	}
	s.redis.Restart()
	s.start("worker")
	s.settle([]want{{key: rel0, local: p0, data: d0}, {key: rel1, local: p1, data: d1}}, 60*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, _ := filepath.Glob(filepath.Join(root, ".srs-offload", "live", "*"))
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left in the spool after the upload: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, _, found, err := b.get(rel0); err != nil || !found {
		t.Fatalf("%s: found %v, %v", rel0, found, err)
	}
}

// restartRun is one restart of `serve` under SRS's hls_cleanup: a stream writes a segment every
// segEvery, SRS deletes each one window after it was written, `serve` is SIGKILLed after killAt
// and started again down later; the stream goes on for after more, and every segment written
// must end up in storage.
type restartRun struct {
	window, down, killAt, after, segEvery, minAge time.Duration
}

type restartResult struct {
	written, stored int
	lost            []string
	restartTook     time.Duration // from the new process's start to /metrics answering
}

func (rr restartRun) run(t *testing.T) restartResult {
	t.Helper()
	s, root := newStackWith(t, fmt.Sprintf("reconcile: {min_age: %s, interval: 1h, watch: true}\n", rr.minAge))
	b := s3Bucket{s.store}
	p := s.start("serve")
	url := "http://" + s.listen + "/api/v1/hls"
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	type seg struct {
		rel, path string
		data      []byte
	}
	var mu sync.Mutex
	var segs []seg
	hookq := make(chan []byte, 1024)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // SRS's serial hook worker: a hook sent while srs-offload is down is lost
		defer wg.Done()
		for body := range hookq {
			if resp, err := client.Post(url, "application/json", bytes.NewReader(body)); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()
	type del struct {
		path string
		at   time.Time
	}
	cleanups := make(chan del, 1024)
	go func() { // hls_cleanup
		defer wg.Done()
		for d := range cleanups {
			time.Sleep(time.Until(d.at))
			os.Remove(d.path)
		}
	}()
	m3u8 := filepath.Join(root, "live", "cam1.m3u8")
	start := time.Now()
	end := start.Add(rr.killAt + rr.down + rr.after)
	killed, restarted := false, false
	var res restartResult
	for seq := 0; time.Now().Before(end); seq++ {
		now := time.Now()
		if !killed && now.Sub(start) >= rr.killAt {
			p.cmd.Process.Kill()
			err := <-p.done
			p.done <- err
			killed = true
		}
		if killed && !restarted && now.Sub(start) >= rr.killAt+rr.down {
			t0 := time.Now()
			p = s.start("serve")
			res.restartTook = time.Since(t0)
			restarted = true
		}
		rel := fmt.Sprintf("live/cam1-%d.ts", seq)
		path := filepath.Join(root, rel)
		data := randomBytes(16<<10+seq*100, uint64(seq)+1)
		writeSegment(t, path, data)
		mu.Lock()
		segs = append(segs, seg{rel, path, data})
		mu.Unlock()
		cleanups <- del{path, time.Now().Add(rr.window)}
		hookq <- srsHook("c1", "cam1", root, "./"+rel, rel, m3u8, int64(seq), rr.segEvery.Seconds())
		time.Sleep(time.Until(start.Add(time.Duration(seq+1) * rr.segEvery)))
	}
	close(hookq)
	close(cleanups)
	wg.Wait()
	// Everything still on disk (SRS's names or the spool) goes up within min_age and an upload.
	deadline := time.Now().Add(rr.minAge + 30*time.Second)
	for {
		res.written, res.stored, res.lost = len(segs), 0, nil
		for _, sg := range segs {
			got, _, found, err := b.get(sg.rel)
			if err == nil && found && bytes.Equal(got, sg.data) {
				res.stored++
			} else {
				res.lost = append(res.lost, sg.rel)
			}
		}
		onDisk := 0
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".ts") {
				onDisk++
			}
			return nil
		})
		if res.stored == res.written || (onDisk == 0 && time.Now().After(deadline.Add(-20*time.Second))) || time.Now().After(deadline) {
			return res
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The restart: `serve` SIGKILLed while SRS's hls_cleanup (a 6 s window here) runs and
// min_age (10 s) is longer than the window, started again 4 s later. The segments written while
// it was down were deleted by SRS before the reconciler looked at them; now the take pass at
// start holds them before anything else, and nothing is lost.
func TestE2ERestartUnderSRSCleanup(t *testing.T) {
	if testing.Short() {
		t.Skip("about 30 s")
	}
	res := restartRun{window: 6 * time.Second, down: 4 * time.Second, killAt: 3 * time.Second, after: 3 * time.Second,
		segEvery: 500 * time.Millisecond, minAge: 10 * time.Second}.run(t)
	t.Logf("%d segments written, %d stored; restart took %s", res.written, res.stored, res.restartTook.Round(time.Millisecond))
	if len(res.lost) > 0 {
		t.Fatalf("%d of %d segments never stored after a 4 s restart under a 6 s hls_cleanup window: %v", len(res.lost), res.written, res.lost)
	}
}

// SRS_OFFLOAD_DOWNTIME_TABLE=1 measures which downtimes of `serve` lose nothing under an
// hls_cleanup window (SRS_OFFLOAD_DOWNTIME_WINDOW, default 6s; SRS_OFFLOAD_DOWNTIMES, default
// 2s,4s,5s,5.5s,6s,7s,8s,10s). It prints one line per downtime and asserts nothing: segments
// written while srs-offload is down longer than the window are expected to be lost.
func TestRestartDowntimeTable(t *testing.T) {
	if os.Getenv("SRS_OFFLOAD_DOWNTIME_TABLE") != "1" {
		t.Skip("a measurement: SRS_OFFLOAD_DOWNTIME_TABLE=1")
	}
	window := 6 * time.Second
	if v := os.Getenv("SRS_OFFLOAD_DOWNTIME_WINDOW"); v != "" {
		var err error
		if window, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	downs := "2s,4s,5s,5.5s,6s,7s,8s,10s"
	if v := os.Getenv("SRS_OFFLOAD_DOWNTIMES"); v != "" {
		downs = v
	}
	var lines []string
	for _, d := range strings.Split(downs, ",") {
		down, err := time.ParseDuration(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(strconv.Quote(d), func(t *testing.T) {
			res := restartRun{window: window, down: down, killAt: 3 * time.Second, after: 3 * time.Second,
				segEvery: 500 * time.Millisecond, minAge: 10 * time.Second}.run(t)
			line := fmt.Sprintf("window %s, down %-5s: %d written, %d lost (restart to listening %s) %v",
				window, d, res.written, len(res.lost), res.restartTook.Round(time.Millisecond), res.lost)
			t.Log(line)
			lines = append(lines, line)
		})
	}
	fmt.Println(strings.Join(lines, "\n"))
}
