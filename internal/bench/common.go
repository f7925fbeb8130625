package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/srs-offload/srs-offload/internal/srsfixture"
	"github.com/srs-offload/srs-offload/internal/testbed"
)

// hlsBody is the fixture's on_hls for a segment at root/rel (rel = app/stream/name.ts) of stream
// app/stream, whose SRS playlist is root/app/stream.m3u8.
func (e *env) hlsBody(root, app, stream, rel string, seq int) []byte {
	return srsfixture.Body(e.fx.Bodies["on_hls"], map[string]any{
		"app": app, "stream": stream, "stream_url": "/" + app + "/" + stream,
		"file": filepath.Join(root, rel), "url": rel,
		"m3u8": filepath.Join(root, app, stream+".m3u8"), "m3u8_url": app + "/" + stream + ".m3u8",
		"seq_no": seq, "duration": 2.0,
	})
}

// dvrBody is the fixture's on_dvr for the file root/rel.
func (e *env) dvrBody(root, app, stream, rel string) []byte {
	return srsfixture.Body(e.fx.Bodies["on_dvr"], map[string]any{
		"app": app, "stream": stream, "stream_url": "/" + app + "/" + stream, "file": filepath.Join(root, rel),
	})
}

// writePlaylist writes an SRS-style live playlist for stream (the worker reads it for EXT-X-KEY).
func writePlaylist(root, app, stream string, segs []string) error {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TARGETDURATION:2\n\n")
	for _, s := range segs {
		fmt.Fprintf(&b, "#EXTINF:2.000, no desc\n%s\n", s)
	}
	testbed.Halt()
	p := filepath.Join(root, app, stream+".m3u8")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(b.String()), 0o644)
}

// baseEnv is the harness's environment without AWS_* and RCLONE_* variables, for the baseline
// tools: only what the harness sets configures them (an AWS_CA_BUNDLE, for one, breaks rclone).
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "RCLONE_") {
			out = append(out, kv)
		}
	}
	return out
}

// placeFile makes a segment appear in dir the way SRS does: it creates the folder, then the file
// (create). srs-offload removes the folders its purges leave empty, so the folder can vanish
// between the two, as it can under SRS; placeFile then tries again and counts it in races.
func placeFile(dir string, create func() error, races *atomic.Int64) error {
	for attempt := 0; ; attempt++ {
		testbed.Halt()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		err := create()
		if err == nil || !errors.Is(err, fs.ErrNotExist) || attempt == 10 {
			return err
		}
		races.Add(1)
	}
}

// hookClient opens a new connection for every request, as SRS does.
func hookClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// postHook sends one hook the way SRS 7 does and checks for {"code":0}.
func postHook(c *http.Client, url string, b []byte) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "SRS/7.0.18(Hang)")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(bytes.TrimSpace(got), []byte(`{"code":0}`)) {
		return fmt.Errorf("hook answered %d %s", resp.StatusCode, bytes.TrimSpace(got))
	}
	return nil
}

// loadResult is what the load generator measured.
type loadResult struct {
	lat      []time.Duration // of the requests that succeeded, sorted
	elapsed  time.Duration
	failed   int
	firstErr error
}

func (r loadResult) rate() float64 { return float64(len(r.lat)) / r.elapsed.Seconds() }

// runLoad is the load generator of B1: conns clients in a closed loop, each taking the next body
// and POSTing it on a new connection.
func runLoad(url string, bodies [][]byte, conns int) loadResult {
	c := hookClient()
	lat := make([]time.Duration, len(bodies))
	ok := make([]bool, len(bodies))
	var next atomic.Int64
	var failed atomic.Int64
	var errOnce sync.Once
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bodies) {
					return
				}
				t0 := time.Now()
				err := postHook(c, url, bodies[i])
				lat[i] = time.Since(t0)
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = fmt.Errorf("request %d: %w", i, err) })
					continue
				}
				ok[i] = true
			}
		}()
	}
	wg.Wait()
	r := loadResult{elapsed: time.Since(start), failed: int(failed.Load()), firstErr: firstErr}
	for i, d := range lat {
		if ok[i] {
			r.lat = append(r.lat, d)
		}
	}
	slices.Sort(r.lat)
	return r
}

func sortDur(d []time.Duration) { slices.Sort(d) }

// filesUnder lists the regular files below dir.
func filesUnder(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// pct is the nearest-rank percentile p (0..1) of sorted durations.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// dataFile is one generated file: its path below the data folder (also its object key), its size
// and MD5.
type dataFile struct {
	rel  string
	size int64
	md5  string
}

// genFile writes size random (incompressible) bytes to path and returns their MD5.
func genFile(path string, size int64, seed uint64) (string, error) {
	testbed.Halt()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	h := md5.New()
	var s [32]byte
	s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7] = byte(seed), byte(seed>>8), byte(seed>>16), byte(seed>>24), byte(seed>>32), byte(seed>>40), byte(seed>>48), byte(seed>>56)
	src := rand.NewChaCha8(s)
	w := io.MultiWriter(f, h)
	buf := make([]byte, min(size, 4<<20))
	for left := size; left > 0; {
		testbed.Halt()
		n := min(int64(len(buf)), left)
		src.Read(buf[:n])
		if _, err := w.Write(buf[:n]); err != nil {
			f.Close()
			return "", err
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// waitGone waits until none of paths exists, looking at them in order (they are purged in
// roughly that order, so this is about one stat per poll). It returns the paths still there at the
// timeout.
func waitGone(paths []string, poll, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for i := 0; i < len(paths); {
		if _, err := os.Lstat(paths[i]); os.IsNotExist(err) {
			i++
			continue
		}
		if time.Now().After(deadline) {
			var left []string
			for _, p := range paths[i:] {
				if _, err := os.Lstat(p); err == nil {
					left = append(left, p)
				}
			}
			return left
		}
		time.Sleep(poll)
	}
	return nil
}

// checkStored compares a bucket's listing with the files that must be in it (size, and the ETag
// for objects stored with a single PUT, which is their MD5).
func checkStored(objs map[string]testbed.Object, files []dataFile, prefix string, singlePut bool) error {
	var missing, wrong int
	var first string
	for _, f := range files {
		o, ok := objs[prefix+f.rel]
		switch {
		case !ok:
			missing++
			if first == "" {
				first = "missing " + prefix + f.rel
			}
		case o.Size != f.size || (singlePut && o.ETag != f.md5):
			wrong++
			if first == "" {
				first = fmt.Sprintf("%s%s: size %d ETag %s, want %d %s", prefix, f.rel, o.Size, o.ETag, f.size, f.md5)
			}
		}
	}
	if missing+wrong > 0 {
		return fmt.Errorf("%d of %d objects missing, %d wrong (%s)", missing, len(files), wrong, first)
	}
	return nil
}

// Formatting for the report.

func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case f < 10:
		return fmt.Sprintf("%.2f ms", f)
	case f < 100:
		return fmt.Sprintf("%.1f ms", f)
	default:
		return fmt.Sprintf("%.0f ms", f)
	}
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func mib(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", n>>10)
	}
}

func mibps(bytes int64, d time.Duration) float64 { return float64(bytes) / (1 << 20) / d.Seconds() }

func ratio(x float64) string { return fmt.Sprintf("%.2f×", x) }

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func medianDur(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(median(xs))
}
