// Package mediatest makes real media for tests with ffmpeg (H.264 + AAC from lavfi's testsrc and
// sine) and measures it with ffprobe. Both come from Debian's ffmpeg (scripts/tools.sh).
package mediatest

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Rate is the frame rate of the test video: one frame is 1/Rate s.
const Rate = 25

// Need fails the test when ffmpeg or ffprobe is missing.
func Need(t testing.TB) {
	t.Helper()
	for _, b := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s not found: run scripts/tools.sh (it installs Debian's ffmpeg)", b)
		}
	}
}

func ffmpeg(t testing.TB, args ...string) {
	t.Helper()
	Need(t)
	base := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=" + strconv.Itoa(Rate),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", strconv.Itoa(Rate), "-c:a", "aac", "-b:a", "64k"}
	out, err := exec.Command("ffmpeg", append(base, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
}

// FLV writes an H.264 + AAC FLV of seconds to path, as SRS's DVR would.
func FLV(t testing.TB, path string, seconds float64) {
	t.Helper()
	ffmpeg(t, "-t", strconv.FormatFloat(seconds, 'f', 3, 64), "-f", "flv", path)
}

// HLS writes an H.264 + AAC MPEG-TS HLS stream of n segments of segment seconds each into dir
// (seg-0.ts …, index.m3u8), as SRS's HLS would.
func HLS(t testing.TB, dir string, n int, segment float64) {
	t.Helper()
	s := strconv.FormatFloat(segment, 'f', 3, 64)
	ffmpeg(t, "-t", strconv.FormatFloat(segment*float64(n), 'f', 3, 64), "-f", "hls", "-hls_time", s, "-hls_list_size", "0",
		"-hls_segment_filename", dir+"/seg-%d.ts", dir+"/index.m3u8")
}

// HLSfMP4 is HLS with fMP4 segments (seg-0.m4s …) and their init segment init.mp4, as SRS 7's
// hls_use_fmp4 writes them.
func HLSfMP4(t testing.TB, dir string, n int, segment float64) {
	t.Helper()
	s := strconv.FormatFloat(segment, 'f', 3, 64)
	ffmpeg(t, "-t", strconv.FormatFloat(segment*float64(n), 'f', 3, 64), "-f", "hls", "-hls_time", s, "-hls_list_size", "0",
		"-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
		"-hls_segment_filename", dir+"/seg-%d.m4s", dir+"/index.m3u8")
}

// Duration is ffprobe's duration of the file's container, in seconds.
func Duration(t testing.TB, path string) float64 {
	t.Helper()
	return probe(t, path, "format=duration")
}

// VideoDuration is the duration of the first video stream: its frame count over the rate.
func VideoDuration(t testing.TB, path string) float64 {
	t.Helper()
	Need(t)
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
		"-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.Trim(strings.TrimSpace(string(out)), ",")))
	if err != nil {
		t.Fatalf("ffprobe %s: packets %q", path, out)
	}
	return float64(n) / Rate
}

// Streams are the codec names of the file's streams, in order.
func Streams(t testing.TB, path string) []string {
	t.Helper()
	Need(t)
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	return strings.Fields(string(out))
}

func probe(t testing.TB, path, entries string) float64 {
	t.Helper()
	Need(t)
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", entries, "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe %s: %s %q", path, entries, out)
	}
	return v
}
