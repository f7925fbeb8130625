package postproc_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/internal/mediatest"
	"github.com/srs-offload/srs-offload/postproc"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/remux"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/worker"
)

// pids reads the pids the fake ffmpeg wrote, one per run.
func pids(t *testing.T, file string) []int {
	b, _ := os.ReadFile(file)
	var out []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func alive(pid int) bool {
	// A zombie still answers signal 0: read its state.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z" && syscall.Kill(pid, 0) == nil
}

// An ffmpeg that hangs (a fake on PATH) is killed at its time limit and its task retried, while
// the uploads go on: a recording hooked while ffmpeg hangs is stored, verified and purged by the
// worker in the usual time, on its own queue.
func TestHungFFmpegDoesNotDelayUploads(t *testing.T) {
	// A real recording, made before the fake ffmpeg goes first on PATH.
	sample := filepath.Join(t.TempDir(), "sample.flv")
	mediatest.FLV(t, sample, 1)
	flv, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "pids")
	fake := filepath.Join(bin, "ffmpeg")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho $$ >> "+pidFile+"\nexec sleep 300\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	ff, err := remux.Find("ffmpeg")
	if err != nil || ff != fake {
		t.Fatalf("Find = %q, %v", ff, err)
	}
	const limit = 3 * time.Second
	var d *postproc.Derived
	r := newRig(t, func(s *postproc.Stage) {
		d = derived(t, postproc.RemuxBeside, false)
		d.FFmpeg = remux.FFmpeg{Path: ff, Nice: 10, Timeout: limit}
		s.Derived = d
	})
	d.Files = r.up
	r.opts.Concurrency = 1
	r.start(t)

	dir := t.TempDir()
	set, err := roots.New([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	off := &worker.Offloader{Roots: set, Store: r.up, Purge: true, Post: r.stage, Log: r.log}
	ws := worker.NewServer(asynq.RedisClientOpt{Addr: r.rs.Addr}, worker.Options{Node: node, Concurrency: 2,
		RetryBase: 200 * time.Millisecond, RetryMax: 2 * time.Second, ShutdownTimeout: 5 * time.Second,
		PollInterval: 20 * time.Millisecond, Log: r.log}, off)
	if err := ws.Start(); err != nil {
		t.Fatal(err)
	}
	defer ws.Shutdown(context.Background())

	// hook writes a real recording and enqueues its upload, as the hook receiver does; it
	// returns when the worker has stored and purged it.
	hook := func(name string) (time.Duration, string) {
		path := filepath.Join(dir, "live", name)
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, flv, 0o644); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(path)
		p := queue.Offload{Kind: queue.KindDVR, Path: path, Key: "live/cam1/" + name, File: fileid.Of(fi), App: "live", Stream: "cam1",
			Hooked: time.Now()}
		t0 := time.Now()
		if _, err := r.qc.Enqueue(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		for time.Since(t0) < 10*time.Second {
			if _, err := os.Stat(path); os.IsNotExist(err) {
				if _, found, _ := r.up.Stat(context.Background(), p.Key); found {
					return time.Since(t0), p.Key
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s not stored and purged within 10 s", name)
		return 0, ""
	}
	took1, _ := hook("first.flv")
	// Its remux starts and hangs.
	deadline := time.Now().Add(10 * time.Second)
	for len(pids(t, pidFile)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	first := pids(t, pidFile)
	if len(first) != 1 || !alive(first[0]) {
		t.Fatalf("the fake ffmpeg is not running: %v", first)
	}
	took2, _ := hook("second.flv")
	if !alive(first[0]) {
		t.Fatalf("ffmpeg ended before the second upload was done; the test proves nothing")
	}
	t.Logf("uploads: %s before the hang, %s while ffmpeg hung", took1.Round(time.Millisecond), took2.Round(time.Millisecond))
	if took2 > 2*time.Second {
		t.Errorf("the upload took %s while ffmpeg hung", took2)
	}
	// Killed at its limit, then retried: a second run starts.
	deadline = time.Now().Add(limit + 10*time.Second)
	for alive(first[0]) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(first[0]) {
		t.Fatalf("ffmpeg %d still runs %s after its %s limit", first[0], limit+10*time.Second, limit)
	}
	for len(pids(t, pidFile)) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(pids(t, pidFile)); n < 2 {
		t.Fatalf("the remux task was not retried (%d runs)", n)
	}
	// Shutting down kills the run under way too, and nothing is left behind.
	r.srv.Shutdown(context.Background())
	for _, pid := range pids(t, pidFile) {
		if alive(pid) {
			t.Errorf("ffmpeg %d survived the shutdown", pid)
		}
	}
	if ents, _ := os.ReadDir(d.TempDir); len(ents) != 0 {
		t.Errorf("temporary files remain: %v", ents)
	}
	if _, found, _ := r.up.Stat(context.Background(), "live/cam1/first.mp4"); found {
		t.Error("an MP4 was stored from a killed ffmpeg")
	}
}
