package remux_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/internal/mediatest"
	"github.com/srs-offload/srs-offload/remux"
)

func ffmpeg(t *testing.T) remux.FFmpeg {
	p, err := remux.Find("ffmpeg")
	if err != nil {
		t.Fatal(err)
	}
	return remux.FFmpeg{Path: p, Nice: 10, Timeout: time.Minute}
}

// An H.264 + AAC FLV remuxes to an MP4 of the same duration (within one frame) with the same
// codecs, moov before mdat, and nothing else left in the folder.
func TestToMP4(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "rec.flv"), filepath.Join(dir, "rec.mp4")
	mediatest.FLV(t, in, 6)
	if err := ffmpeg(t).ToMP4(context.Background(), in, out); err != nil {
		t.Fatal(err)
	}
	fast, err := remux.FastStart(out)
	if err != nil || !fast {
		t.Fatalf("FastStart = %v, %v: moov is not before mdat", fast, err)
	}
	din, dout := mediatest.Duration(t, in), mediatest.Duration(t, out)
	vin, vout := mediatest.VideoDuration(t, in), mediatest.VideoDuration(t, out)
	t.Logf("flv %.3fs (video %.3fs), mp4 %.3fs (video %.3fs)", din, vin, dout, vout)
	if math.Abs(din-dout) > 1.0/mediatest.Rate || vin != vout {
		t.Errorf("durations differ by more than a frame: flv %.3f (video %.3f), mp4 %.3f (video %.3f)", din, vin, dout, vout)
	}
	if got := strings.Join(mediatest.Streams(t, out), ","); got != "h264,aac" {
		t.Errorf("streams %q, want h264,aac (copied, not re-encoded)", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("folder holds %d entries, want rec.flv and rec.mp4: %v", len(ents), ents)
	}
}

// A plain MP4 (moov last) is told apart from a faststart one.
func TestFastStartDetects(t *testing.T) {
	dir := t.TempDir()
	flv, plain := filepath.Join(dir, "a.flv"), filepath.Join(dir, "plain.mp4")
	mediatest.FLV(t, flv, 1)
	ff := ffmpeg(t)
	if err := runPlain(ff.Path, flv, plain); err != nil {
		t.Fatal(err)
	}
	if fast, err := remux.FastStart(plain); err != nil || fast {
		t.Errorf("plain MP4: FastStart = %v, %v, want false", fast, err)
	}
	if _, err := remux.FastStart(flv); err == nil {
		t.Error("an FLV passed as an MP4")
	}
}

// A broken input fails without leaving an output or its temporary file.
func TestToMP4FailsCleanly(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "bad.flv"), filepath.Join(dir, "bad.mp4")
	os.WriteFile(in, []byte("FLV\x01 not really"), 0o644)
	if err := ffmpeg(t).ToMP4(context.Background(), in, out); err == nil {
		t.Fatal("no error for a broken FLV")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("folder holds %v after a failed run", ents)
	}
}

// A hung ffmpeg (a fake on PATH that starts a child and waits) is killed at its time limit,
// with its child: the whole process group goes.
func TestHungFFmpegKilled(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	fake := filepath.Join(dir, "bin", "ffmpeg")
	os.MkdirAll(filepath.Dir(fake), 0o755)
	script := "#!/bin/sh\necho $$ >> " + pids + "\nsleep 300 &\necho $! >> " + pids + "\nwait\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Dir(fake)+":"+os.Getenv("PATH"))
	p, err := remux.Find("ffmpeg")
	if err != nil || p != fake {
		t.Fatalf("Find = %q, %v; want the fake", p, err)
	}
	out := filepath.Join(dir, "out.mp4")
	t0 := time.Now()
	err = remux.FFmpeg{Path: p, Nice: 5, Timeout: time.Second}.ToMP4(context.Background(), filepath.Join(dir, "in.flv"), out)
	took := time.Since(t0)
	if !errors.Is(err, remux.ErrTimeout) || took > 4*time.Second {
		t.Fatalf("err %v after %s, want ErrTimeout after about 1s", err, took)
	}
	b, _ := os.ReadFile(pids)
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		t.Fatalf("pids %q", b)
	}
	for _, f := range fields {
		pid, _ := strconv.Atoi(f)
		deadline := time.Now().Add(2 * time.Second)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("process %d survived the time limit", pid)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("an output exists after the kill: %v", err)
	}
	if _, err := os.Stat(out + ".part"); !os.IsNotExist(err) {
		t.Errorf("a temporary output remains: %v", err)
	}
}

// Without ffmpeg on PATH, Find says so.
func TestFindMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := remux.Find("ffmpeg"); !errors.Is(err, remux.ErrNotFound) {
		t.Fatalf("err %v, want ErrNotFound", err)
	}
}
