// Package remux runs ffmpeg on recordings: a DVR file (FLV, or MP4 with its moov atom last)
// remuxed without re-encoding into an MP4 that starts playing before it is downloaded
// (-c copy -movflags +faststart), and a poster frame (JPEG). Each run is bounded in time (the
// whole process group is killed at the limit) and in CPU (nice), and writes beside its output
// under a temporary name that is renamed only on success: there is never a partial output.
package remux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// FFmpeg runs one ffmpeg binary.
type FFmpeg struct {
	// Path is the ffmpeg binary (see Find).
	Path string
	// Nice is the niceness of each run (0: not lowered).
	Nice int
	// Timeout bounds each run (default 30 min).
	Timeout time.Duration
	// FFprobe is the ffprobe binary, for Duration (empty: durations are not measured).
	FFprobe string
}

// FindProbe finds ffprobe beside ffmpeg, else on PATH; "" when there is none.
func FindProbe(ffmpeg string) string {
	if p := filepath.Join(filepath.Dir(ffmpeg), "ffprobe"); ffmpeg != "" {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	p, _ := exec.LookPath("ffprobe")
	return p
}

// Duration is ffprobe's duration of a media file in seconds (0 without FFprobe), bounded by
// Timeout like a run.
func (f FFmpeg) Duration(ctx context.Context, path string) (float64, error) {
	if f.FFprobe == "" {
		return 0, nil
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, f.FFprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
	if err != nil {
		return 0, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	d, err := strconv.ParseFloat(string(bytes.TrimSpace(out)), 64)
	if err != nil {
		return 0, fmt.Errorf("ffprobe %s: duration %q", path, bytes.TrimSpace(out))
	}
	return d, nil
}

// ErrNotFound means ffmpeg is not on PATH.
var ErrNotFound = errors.New("ffmpeg not found")

// ErrTimeout means a run reached its time limit and was killed.
var ErrTimeout = errors.New("ffmpeg killed at its time limit")

// Find resolves name ("ffmpeg", or a path) as exec does.
func Find(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %q is not an executable on PATH (%s); install ffmpeg (Debian: apt-get install ffmpeg) or set post.ffmpeg to its path: %w",
			ErrNotFound, name, os.Getenv("PATH"), err)
	}
	return p, nil
}

// ToMP4 remuxes in into out without re-encoding, moov first. out must not exist.
func (f FFmpeg) ToMP4(ctx context.Context, in, out string) error {
	return f.produce(ctx, out, func(tmp string) []string {
		return []string{"-i", in, "-map", "0", "-c", "copy", "-movflags", "+faststart", "-f", "mp4", tmp}
	})
}

// Poster writes one JPEG frame of in, taken at offset (the first frame when in is shorter).
func (f FFmpeg) Poster(ctx context.Context, in, out string, offset time.Duration) error {
	frame := func(at time.Duration) func(string) []string {
		return func(tmp string) []string {
			return []string{"-ss", strconv.FormatFloat(at.Seconds(), 'f', 3, 64), "-i", in, "-frames:v", "1", "-q:v", "3",
				"-f", "image2", "-update", "1", tmp}
		}
	}
	err := f.produce(ctx, out, frame(offset))
	if errors.Is(err, errEmpty) && offset > 0 {
		return f.produce(ctx, out, frame(0))
	}
	return err
}

var errEmpty = errors.New("ffmpeg wrote nothing")

// produce runs ffmpeg with args writing to a temporary name beside out, and renames it to out
// only when ffmpeg succeeded and wrote something.
func (f FFmpeg) produce(ctx context.Context, out string, args func(tmp string) []string) error {
	tmp := out + ".part"
	defer os.Remove(tmp)
	if err := f.run(ctx, args(tmp)...); err != nil {
		return err
	}
	fi, err := os.Stat(tmp)
	if err != nil || fi.Size() == 0 {
		return fmt.Errorf("%w (%s)", errEmpty, out)
	}
	return os.Rename(tmp, out)
}

// run runs ffmpeg under nice in a process group of its own, killed whole at the time limit or
// when ctx ends.
func (f FFmpeg) run(ctx context.Context, args ...string) error {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	argv := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}, args...)
	name := f.Path
	if f.Nice > 0 {
		if nice, err := exec.LookPath("nice"); err == nil {
			argv = append([]string{"-n", strconv.Itoa(f.Nice), f.Path}, argv...)
			name = nice
		}
	}
	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr tail
	cmd.Stderr = &stderr
	err := cmd.Run()
	// The group may hold children that outlived ffmpeg itself: none survives a run.
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w (%s): %s", ErrTimeout, timeout, stderr.String())
	case ctx.Err() != nil:
		return fmt.Errorf("ffmpeg: %w", ctx.Err())
	default:
		return fmt.Errorf("ffmpeg: %w: %s", err, bytes.TrimSpace(stderr.b))
	}
}

// tail keeps the last 2 KiB written to it (ffmpeg's error lines).
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2048 {
		t.b = t.b[len(t.b)-2048:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(bytes.TrimSpace(t.b)) }

// HLSToMP4 joins the segments of a local HLS playlist into one MP4 without re-encoding, moov
// first. The playlist may name only local files.
func (f FFmpeg) HLSToMP4(ctx context.Context, m3u8, out string) error {
	return f.produce(ctx, out, func(tmp string) []string {
		return []string{"-protocol_whitelist", "file", "-allowed_extensions", "ALL", "-f", "hls", "-i", m3u8,
			"-map", "0:v?", "-map", "0:a?", "-c", "copy", "-movflags", "+faststart", "-f", "mp4", tmp}
	})
}
