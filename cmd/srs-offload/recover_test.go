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

	"github.com/hibiken/asynq"
)

// Redis down: a hook cannot be recorded, so it gets a 503 that says the file is kept; the file is
// held in the spool, SRS's hls_cleanup deletes its own name, and a segment whose hook never came
// at all is written meanwhile. Once Redis is back (empty: it ran without persistence, so even
// the queue's earlier state is gone), the reconciler enqueues both with no operator action; they
// are stored byte for byte, and nothing is left on disk. Without the watcher, only the hook's
// spool protects segment 2; with it, a segment with no hook that SRS deletes at once is saved
// too.
func TestE2ERedisDownNothingLost(t *testing.T) {
	t.Run("scan", func(t *testing.T) { testRedisDown(t, false) })
	t.Run("watch", func(t *testing.T) { testRedisDown(t, true) })
}

// newStackWith is a stack on a new root, with extra YAML appended to its config.
func newStackWith(t *testing.T, extra string) (*stack, string) {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, root)
	f, err := os.OpenFile(s.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(extra); err != nil {
		t.Fatal(err)
	}
	return s, root
}

func testRedisDown(t *testing.T, watch bool) {
	// A long interval: catching up must come from the failed hook's kick, not the timer.
	s, root := newStackWith(t, fmt.Sprintf("reconcile: {min_age: 1s, interval: 1h, watch: %v}\n", watch))
	s.start("serve")
	url := "http://" + s.listen + "/api/v1/hls"
	b := s3Bucket{s.store}

	write := func(name string, seed uint64) (rel, path string, data []byte) {
		rel = "live/cam1-" + name + ".ts"
		path = filepath.Join(root, rel)
		data = randomBytes(64<<10+int(seed)*1000, seed)
		writeSegment(t, path, data)
		return rel, path, data
	}
	hook := func(rel, path string, seq int64) (int, string) {
		body := srsHook("c1", "cam1", root, "./"+rel, rel, filepath.Join(root, "live/cam1.m3u8"), seq, 2)
		resp, err := http.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(got)
	}
	waitStored := func(key string, data []byte) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			got, _, found, err := b.get(key)
			if err == nil && found && bytes.Equal(got, data) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not stored byte for byte within 60 s (found %v, err %v)", key, found, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	rel1, p1, d1 := write("1", 1)
	if code, body := hook(rel1, p1, 1); code != 200 {
		t.Fatalf("hook with Redis up: %d %s", code, body)
	}
	waitStored(rel1, d1)

	s.redis.Stop()
	rel2, p2, d2 := write("2", 2)
	code, body := hook(rel2, p2, 2)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "kept on disk") || !strings.Contains(body, `"code":503`) {
		t.Fatalf("hook with Redis down: %d %s; want 503 saying the file is kept", code, body)
	}
	spooled, _ := filepath.Glob(filepath.Join(root, ".srs-offload", "live", "*-cam1-2.ts"))
	if len(spooled) != 1 {
		t.Fatalf("segment 2 not held in the spool: %v", spooled)
	}
	// SRS's hls_cleanup deletes its name of segment 2; segment 3's hook is never sent.
	if err := os.Remove(p2); err != nil {
		t.Fatal(err)
	}
	rel3, p3, d3 := write("3", 3)
	gonePaths := append(spooled, p1, p2, p3)
	var rel4 string
	var d4 []byte
	if watch {
		// No hook, and SRS deletes it long before min_age: only the watcher can hold it.
		var p4 string
		rel4, p4, d4 = write("4", 4)
		time.Sleep(300 * time.Millisecond)
		if err := os.Remove(p4); err != nil {
			t.Fatal(err)
		}
		gonePaths = append(gonePaths, p4)
	}
	time.Sleep(2 * time.Second) // Redis stays down a little while
	s.redis.Restart()

	waitStored(rel2, d2)
	waitStored(rel3, d3)
	if watch {
		waitStored(rel4, d4)
	}
	if left, _ := filepath.Glob(filepath.Join(root, ".srs-offload", "live", "*")); len(left) > 0 {
		gonePaths = append(gonePaths, left...)
	}
	for _, p := range gonePaths {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Lstat(p); os.IsNotExist(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still on disk after its upload", p)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// A hook that comes after the reconciler enqueued its file (SRS's hook queue stalled past
// min_age) still puts the segment in the live playlist, in its place: the reconciler's task knows
// nothing of playlists, so the hook's follow-up task tells the ledger once the file is stored.
// Without it the segment stays "in flight" in the ledger: the live playlist stalls on it.
func TestE2ELateHookAfterReconcile(t *testing.T) {
	s, root := newStackWith(t, "reconcile: {min_age: 1s, interval: 1h}\nplaylist: {stall: 1h}\n")
	s.start("hooks")
	wk := s.start("worker")
	url := "http://" + s.listen + "/api/v1/hls"
	b := s3Bucket{s.store}
	m3u8 := filepath.Join(root, "live/cam1.m3u8")
	os.MkdirAll(filepath.Dir(m3u8), 0o755)
	os.WriteFile(m3u8, []byte("#EXTM3U\n"), 0o644)
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: s.redis.Addr})
	defer insp.Close()

	write := func(seq int64) string {
		rel := fmt.Sprintf("live/cam1-%d.ts", seq)
		p := filepath.Join(root, rel)
		if err := os.WriteFile(p+".tmp", randomBytes(32<<10, uint64(seq)), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Rename(p+".tmp", p)
		return rel
	}
	hook := func(rel string, seq int64) {
		post(t, url, srsHook("c1", "cam1", root, "./"+rel, rel, m3u8, seq, 2))
	}
	rel1 := write(1)
	hook(rel1, 1)
	waitLive(t, b, "live/cam1.m3u8", []seg{{rel1, 2}}, 20*time.Second)

	wk.stop(t)
	rel2 := write(2)
	// No hook yet: the reconciler enqueues segment 2 after min_age.
	deadline := time.Now().Add(30 * time.Second)
	for {
		pending, _ := insp.ListPendingTasks("hls@e2e")
		if len(pending) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reconciler did not enqueue segment 2 (pending: %d)", len(pending))
		}
		time.Sleep(50 * time.Millisecond)
	}
	hook(rel2, 2) // late: its file already has a task
	rel3 := write(3)
	hook(rel3, 3)
	s.start("worker")
	waitLive(t, b, "live/cam1.m3u8", []seg{{rel1, 2}, {rel2, 2}, {rel3, 2}}, 20*time.Second)
}
