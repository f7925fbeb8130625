package reconcile_test

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/reconcile"
)

// ffmpegSegment has ffmpeg write one HLS segment of about 3.2 s (H.264 and AAC), MPEG-TS or
// fMP4, and returns its bytes, the init segment's (fMP4) and ffprobe's duration of it.
func ffmpegSegment(t *testing.T, fmp4 bool) (seg, init []byte, probed float64) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make tools installs it): %v", tool, err)
		}
	}
	dir := t.TempDir()
	ext := ".ts"
	args := []string{"-v", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25",
		"-f", "lavfi", "-i", "sine=sample_rate=44100", "-t", "3.2", "-c:v", "libx264", "-preset", "ultrafast",
		"-g", "100", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "hls", "-hls_time", "10", "-hls_list_size", "0"}
	if fmp4 {
		ext = ".m4s"
		args = append(args, "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4")
	}
	args = append(args, "-hls_segment_filename", filepath.Join(dir, "s-%d"+ext), filepath.Join(dir, "s.m3u8"))
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	seg, err := os.ReadFile(filepath.Join(dir, "s-0"+ext))
	if err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(dir, "s-0"+ext)
	if fmp4 {
		if init, err = os.ReadFile(filepath.Join(dir, "init.mp4")); err != nil {
			t.Fatal(err)
		}
		probe = filepath.Join(dir, "joined.mp4")
		os.WriteFile(probe, append(append([]byte{}, init...), seg...), 0o644)
	}
	var stdout bytes.Buffer
	cmd := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", probe)
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	if probed, err = strconv.ParseFloat(strings.TrimSpace(stdout.String()), 64); err != nil {
		t.Fatalf("ffprobe duration %q", stdout.String())
	}
	return seg, init, probed
}

// A found segment gets what its hook would have said about its place in the playlists: from
// SRS's m3u8 on disk while it lists the file, else seq_no from its name and the duration from its
// bytes (MPEG-TS, fMP4 with the init beside it), and nothing when neither tells.
func TestScanPlacesFoundSegments(t *testing.T) {
	tsBytes, _, tsDur := ffmpegSegment(t, false)
	m4sBytes, initBytes, m4sDur := ffmpegSegment(t, true)

	e := newEnv(t, time.Second)
	playlistKey, err := objkey.Parse("{m3u8_url}")
	if err != nil {
		t.Fatal(err)
	}
	rs := e.rec.Roots
	e.rec.Placer = &reconcile.Placer{Roots: rs, M3U8: []string{"[app]/[stream].m3u8"}, PlaylistKey: playlistKey}
	e.write("live/cam.m3u8", 0, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:11\n"+
		"#EXTINF:2.002, no desc\ncam-11.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1.250, no desc\ncam-12.ts\n")
	listed := e.write("live/cam-12.ts", time.Minute, "not even media: SRS's m3u8 says it all")
	fromTS := e.write("live/cam-3.ts", time.Minute, string(tsBytes))
	fromM4S := e.write("live/cam-4.m4s", time.Minute, string(m4sBytes))
	e.write("live/cam/init.mp4", 0, string(initBytes))
	unknown := e.write("live/cam-5.ts", time.Minute, "garbage, and no m3u8 lists it")
	e.scan()

	type want struct {
		seq int64
		dur float64
		tol float64
	}
	for p, w := range map[string]*want{listed: {12, 1.25, 0}, fromTS: {3, tsDur, 0.01}, fromM4S: {4, m4sDur, 0.01}, unknown: nil} {
		got := e.waitTask(e.hookTask(queue.KindHLS, p, ""), time.Second)
		if w == nil {
			if got.PlaylistKey != "" || got.SeqNo != 0 || got.Duration != 0 {
				t.Errorf("%s: placed %q seq %d duration %v, want no place", filepath.Base(p), got.PlaylistKey, got.SeqNo, got.Duration)
			}
			continue
		}
		if got.PlaylistKey != "live/cam.m3u8" || got.M3U8URL != "live/cam.m3u8" || got.Playlist != filepath.Join(e.root, "live/cam.m3u8") {
			t.Errorf("%s: playlist %q key %q url %q", filepath.Base(p), got.Playlist, got.PlaylistKey, got.M3U8URL)
		}
		if got.SeqNo != w.seq || math.Abs(got.Duration-w.dur) > w.tol*w.dur+0.001 {
			t.Errorf("%s: seq %d duration %.4f, want seq %d duration %.4f (±%.0f%%)", filepath.Base(p), got.SeqNo, got.Duration, w.seq, w.dur, w.tol*100)
		}
	}
}
