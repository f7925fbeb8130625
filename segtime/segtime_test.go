package segtime_test

import (
	"bytes"
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/segtime"
)

// run runs a program installed by `make tools` (ffmpeg, ffprobe) and returns its stdout.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (make tools installs it): %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// makeHLS has ffmpeg write 9 s of H.264 (with B-frames) and AAC as HLS segments of about 2 s in
// dir, MPEG-TS or fMP4, and returns the segment files in order.
func makeHLS(t testing.TB, dir string, fmp4 bool, audio bool) []string {
	t.Helper()
	args := []string{"-v", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25"}
	if audio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100")
	}
	args = append(args, "-t", "9", "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-pix_fmt", "yuv420p")
	if audio {
		args = append(args, "-c:a", "aac", "-b:a", "64k")
	}
	args = append(args, "-f", "hls", "-hls_time", "2", "-hls_list_size", "0")
	ext := ".ts"
	if fmp4 {
		ext = ".m4s"
		args = append(args, "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4")
	}
	args = append(args, "-hls_segment_filename", filepath.Join(dir, "s-%d"+ext), filepath.Join(dir, "s.m3u8"))
	run(t, "ffmpeg", args...)
	var segs []string
	for i := 0; ; i++ {
		p := filepath.Join(dir, "s-"+strconv.Itoa(i)+ext)
		if _, err := os.Stat(p); err != nil {
			break
		}
		segs = append(segs, p)
	}
	if len(segs) < 4 {
		t.Fatalf("ffmpeg wrote %d segments", len(segs))
	}
	return segs
}

// probe is ffprobe's timing of a file: the earliest packet time (pts, or dts for fMP4) and the
// span to the end of the latest packet (its time plus its duration), over every stream.
func probe(t testing.TB, file string, dts bool) segtime.Timing {
	t.Helper()
	field := "pts_time"
	if dts {
		field = "dts_time"
	}
	out := run(t, "ffprobe", "-v", "error", "-show_entries", "packet="+field+",duration_time", "-of", "csv=p=0", file)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, line := range strings.Fields(out) {
		f := strings.Split(line, ",")
		if len(f) < 2 {
			continue
		}
		ts, err1 := strconv.ParseFloat(f[0], 64)
		d, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		lo, hi = min(lo, ts), max(hi, ts+d)
	}
	if math.IsInf(lo, 0) {
		t.Fatalf("ffprobe %s: no packets\n%s", file, out)
	}
	return segtime.Timing{Start: lo, Duration: hi - lo}
}

func within(got, want, frac float64) bool { return math.Abs(got-want) <= frac*math.Abs(want)+1e-3 }

func TestTSAgainstFFprobe(t *testing.T) {
	for _, audio := range []bool{true, false} {
		name := "video+audio"
		if !audio {
			name = "video"
		}
		t.Run(name, func(t *testing.T) {
			segs := makeHLS(t, t.TempDir(), false, audio)
			var total float64
			for _, p := range segs {
				f, err := os.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				got, err := segtime.TS(f)
				f.Close()
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				want := probe(t, p, false)
				if !within(got.Duration, want.Duration, 0.01) || !within(got.Start, want.Start, 0.01) {
					t.Errorf("%s: start %.4f duration %.4f; ffprobe: start %.4f duration %.4f", filepath.Base(p), got.Start, got.Duration, want.Start, want.Duration)
				}
				total += got.Duration
			}
			// Audio frames straddle the cuts, so only video segments add up exactly.
			if !audio && !within(total, 9, 0.02) {
				t.Errorf("segments add up to %.3f s, ffmpeg was asked for 9 s", total)
			}
		})
	}
}

func TestFMP4AgainstFFprobe(t *testing.T) {
	dir := t.TempDir()
	segs := makeHLS(t, dir, true, true)
	initBytes, err := os.ReadFile(filepath.Join(dir, "init.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := segtime.ParseInit(bytes.NewReader(initBytes))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Timescale) != 2 {
		t.Fatalf("timescales %v, want two tracks", in.Timescale)
	}
	var total float64
	for _, p := range segs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := in.Fragment(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		// ffprobe reads a fragment only after its init segment.
		joined := filepath.Join(t.TempDir(), "joined.mp4")
		if err := os.WriteFile(joined, append(append([]byte{}, initBytes...), b...), 0o644); err != nil {
			t.Fatal(err)
		}
		want := probe(t, joined, true)
		if !within(got.Duration, want.Duration, 0.01) || !within(got.Start, want.Start, 0.01) {
			t.Errorf("%s: start %.4f duration %.4f; ffprobe: start %.4f duration %.4f", filepath.Base(p), got.Start, got.Duration, want.Start, want.Duration)
		}
		total += got.Duration
	}
	if !within(total, 9, 0.02) {
		t.Errorf("segments add up to %.3f s, ffmpeg was asked for 9 s", total)
	}
}

// Bytes that are not the container are an error, never a made-up timing.
func TestNotMedia(t *testing.T) {
	if _, err := segtime.TS(strings.NewReader(strings.Repeat("x", 188*3))); err == nil {
		t.Error("TS of text: no error")
	}
	if _, err := segtime.TS(bytes.NewReader(nil)); err == nil {
		t.Error("TS of nothing: no error")
	}
	if _, err := segtime.ParseInit(strings.NewReader("\x00\x00\x00\x08free")); err == nil {
		t.Error("init without moov: no error")
	}
}

// The fuzz targets: any input gives a timing or an error, never a panic or a negative duration.
// Their seeds (testdata/fuzz) are the first bytes of ffmpeg-made segments.

func FuzzTS(f *testing.F) {
	f.Add([]byte{0x47, 0x40, 0x00, 0x10})
	f.Fuzz(func(t *testing.T, b []byte) {
		tm, err := segtime.TS(bytes.NewReader(b))
		if err == nil && (tm.Duration < 0 || math.IsNaN(tm.Duration)) {
			t.Fatalf("duration %v", tm.Duration)
		}
	})
}

func FuzzFMP4(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x08moov"), []byte("\x00\x00\x00\x08moof"))
	f.Fuzz(func(t *testing.T, initB, seg []byte) {
		in, err := segtime.ParseInit(bytes.NewReader(initB))
		if err != nil {
			return
		}
		tm, err := in.Fragment(bytes.NewReader(seg))
		if err == nil && (tm.Duration < 0 || math.IsNaN(tm.Duration)) {
			t.Fatalf("duration %v", tm.Duration)
		}
	})
}
