package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/srs-offload/srs-offload/remux"
)

// remuxCost adds to B3 what post.remux costs for a recording of the B3 size: a real H.264 + AAC
// FLV (a 20 s 720p clip at 8 Mbit/s, looped with -c copy to the size) remuxed by the same call
// the post stage makes (ffmpeg -c copy -movflags +faststart under nice 10). Without ffmpeg it
// says so and measures nothing.
func (e *env) remuxCost(s *section) {
	ff, err := remux.Find("ffmpeg")
	if err != nil {
		s.notes = append(s.notes, "post.remux: not measured: "+err.Error())
		return
	}
	dir := filepath.Join(e.tmp, "data", "b3-remux")
	defer os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.notes = append(s.notes, "post.remux: not measured: "+err.Error())
		return
	}
	e.logf("B3: generating a real %s FLV for post.remux", mib(e.sc.dvrSize))
	clip, big, out := filepath.Join(dir, "clip.flv"), filepath.Join(dir, "rec.flv"), filepath.Join(dir, "rec.mp4")
	gen := [][]string{
		{"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
			"-t", "20", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M", "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", clip},
		{"-stream_loop", "-1", "-i", clip, "-c", "copy", "-fs", strconv.FormatInt(e.sc.dvrSize, 10), "-f", "flv", big},
	}
	for _, args := range gen {
		if b, err := exec.Command(ff, append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			s.notes = append(s.notes, fmt.Sprintf("post.remux: not measured: generating the FLV: %v: %s", err, b))
			return
		}
	}
	in, err := os.Stat(big)
	if err != nil {
		s.notes = append(s.notes, "post.remux: not measured: "+err.Error())
		return
	}
	settle()
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &before)
	e.logf("B3: post.remux of %s", mib(in.Size()))
	t0 := time.Now()
	err = remux.FFmpeg{Path: ff, Nice: 10, Timeout: 30 * time.Minute}.ToMP4(context.Background(), big, out)
	took := time.Since(t0)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &after)
	if err != nil {
		s.notes = append(s.notes, "post.remux: failed: "+err.Error())
		return
	}
	cpu := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
	mp4, _ := os.Stat(out)
	fast, _ := remux.FastStart(out)
	s.tables = append(s.tables, table{
		header: []string{"post.remux (`ffmpeg -c copy -movflags +faststart`, nice 10)", "FLV → MP4"},
		rows: [][]string{
			{"recording", fmt.Sprintf("%s FLV (H.264 720p 8 Mbit/s + AAC)", mib(in.Size()))},
			{"time", fmt.Sprintf("%s (%.0f MiB/s)", secs(took), mibps(in.Size(), took))},
			{"CPU time (ffmpeg)", fmt.Sprintf("%s (%.2f cores)", secs(cpu), cpu.Seconds()/took.Seconds())},
			{"MP4", fmt.Sprintf("%s, moov before mdat: %v", mib(mp4.Size()), fast)},
		},
	})
	s.summary = append(s.summary, []string{"B3 post.remux " + mib(in.Size()) + " FLV → MP4", "not a target",
		fmt.Sprintf("%s (%.0f MiB/s, %s CPU)", secs(took), mibps(in.Size(), took), secs(cpu)), "—"})
	s.notes = append(s.notes, "post.remux: ffmpeg rewrites the whole file once (no re-encoding) and, for +faststart, reads its output a second time to move the moov box to the front: "+
		"the disk of the post stage's temporary folder needs twice the recording's size. The time excludes the download from storage and the upload of the MP4 that the post stage adds (each about B3's upload time).")
}
