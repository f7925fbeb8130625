package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/srs-offload/srs-offload/internal/srsfixture"
)

// segmentEvery is SRS's cadence: hls_fragment 2 s, one on_hls per stream every 2 s.
const segmentEvery = 2 * time.Second

// publishGap is the time from a stream's on_publish to its first on_hls (SRS: about one
// segment). The publishes of all streams fall in the first segmentEvery; the harness reads Redis
// in the remaining second, before the first segment.
const publishGap = 3 * time.Second

// driver plays N SRS streams against one srs-offload: each stream, in its own goroutine, sends
// on_publish at its phase (phases spread evenly over 2 s), then on_hls every 2 s, each for a
// new segment file written (<name>.tmp, renamed, as SRS does) with SRS's playlist rewritten
// before the hook, until sendEnd, then on_unpublish. A stream sends its hooks one at a time, as
// SRS's per-stream hook queue does: a hook answered late delays that stream's next one, which
// then goes out at once (the backlog of the stream), and hooks still due at sendEnd are not sent
// (counted in unsent).
type driver struct {
	n        int
	root     string
	base     string // http://listen
	fx       srsfixture.Fixture
	seg      []byte
	t0       time.Time
	sendEnd  time.Time
	client   *http.Client
	timeout  time.Duration
	hardStop time.Time // nothing more is sent after it (the unpublishes of a hopeless backlog)

	hlsOK, hlsFailed, otherFailed atomic.Int64
	unsent, late                  atomic.Int64 // hooks due before sendEnd never sent; sent more than a segment late
	mu                            sync.Mutex
	hlsLat, pubLat, unpubLat, lag []time.Duration
	firstErr                      error
	wg                            sync.WaitGroup
}

func newDriver(n int, root, listen string, fx srsfixture.Fixture, segSize int, t0 time.Time, dur, timeout time.Duration) *driver {
	seg := bytes.Repeat([]byte{0x47}, segSize) // MPEG-TS sync bytes; the first 16 stamped per segment
	d := &driver{n: n, root: root, base: "http://" + listen, fx: fx, seg: seg, t0: t0,
		sendEnd: t0.Add(publishGap + dur), timeout: timeout}
	d.hardStop = d.sendEnd.Add(2 * timeout)
	d.client = &http.Client{Timeout: timeout, Transport: &http.Transport{
		DisableKeepAlives: true, // SRS opens a new connection for every hook
		DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
	}}
	return d
}

// offered is the on_hls rate the streams ask for.
func (d *driver) offered() float64 { return float64(d.n) / segmentEvery.Seconds() }

func (d *driver) start() {
	for i := range d.n {
		d.wg.Add(1)
		go d.stream(i)
	}
}

func (d *driver) wait() { d.wg.Wait() }

func (d *driver) fail(err error) {
	d.mu.Lock()
	if d.firstErr == nil {
		d.firstErr = err
	}
	d.mu.Unlock()
}

func sleepUntil(t time.Time) {
	if dt := time.Until(t); dt > 0 {
		time.Sleep(dt)
	}
}

// streamName is stream i's name; its files are root/live/<name>-<seq>.ts and root/live/<name>.m3u8
// (SRS's default hls_ts_file and hls_m3u8_file).
func streamName(i int) string { return fmt.Sprintf("s%05d", i) }

func (d *driver) stream(i int) {
	defer d.wg.Done()
	name := streamName(i)
	phase := time.Duration(i) * segmentEvery / time.Duration(d.n)
	client := fmt.Sprintf("c%07d", i)
	common := map[string]any{"app": "live", "stream": name, "stream_url": "/live/" + name,
		"client_id": client, "stream_id": fmt.Sprintf("vid-%07d", i), "param": ""}
	sleepUntil(d.t0.Add(phase))
	if lat, err := d.post("on_publish", srsfixture.Body(d.fx.Bodies["on_publish"], common)); err != nil {
		d.otherFailed.Add(1)
		d.fail(fmt.Errorf("%s on_publish: %w", name, err))
	} else {
		d.record(&d.pubLat, lat)
	}
	dir := filepath.Join(d.root, "live")
	m3u8 := filepath.Join(dir, name+".m3u8")
	first := d.t0.Add(publishGap + phase)
	seg := make([]byte, len(d.seg))
	copy(seg, d.seg)
	var window []string
	for k := 0; ; k++ {
		due := first.Add(time.Duration(k) * segmentEvery)
		if !due.Before(d.sendEnd) {
			break
		}
		sleepUntil(due)
		if now := time.Now(); !now.Before(d.sendEnd) {
			// Still due, never sent: the stream's own backlog at the end.
			d.unsent.Add(int64((d.sendEnd.Sub(due) + segmentEvery - 1) / segmentEvery))
			break
		}
		rel := fmt.Sprintf("live/%s-%d.ts", name, k)
		file := filepath.Join(d.root, rel)
		copy(seg, fmt.Sprintf("%07d %08d", i, k))
		if err := writeRename(file, seg); err != nil {
			d.hlsFailed.Add(1)
			d.fail(err)
			continue
		}
		window = append(window, filepath.Base(rel))
		if len(window) > 30 {
			window = window[1:]
		}
		writeRename(m3u8, srsPlaylist(k, window))
		fields := map[string]any{"file": file, "url": rel, "m3u8": m3u8, "m3u8_url": "live/" + name + ".m3u8",
			"seq_no": k, "duration": 2.0, "cwd": d.root}
		for f, v := range common {
			fields[f] = v
		}
		lag := time.Since(due)
		lat, err := d.post("on_hls", srsfixture.Body(d.fx.Bodies["on_hls"], fields))
		if err != nil {
			d.hlsFailed.Add(1)
			d.fail(fmt.Errorf("%s on_hls %d: %w", name, k, err))
			continue
		}
		d.hlsOK.Add(1)
		if lag > segmentEvery {
			d.late.Add(1)
		}
		d.mu.Lock()
		d.hlsLat = append(d.hlsLat, lat)
		d.lag = append(d.lag, lag)
		d.mu.Unlock()
	}
	if time.Now().After(d.hardStop) {
		d.otherFailed.Add(1)
		d.fail(fmt.Errorf("%s on_unpublish: not sent, the harness's deadline passed", name))
		return
	}
	if lat, err := d.post("on_unpublish", srsfixture.Body(d.fx.Bodies["on_unpublish"], common)); err != nil {
		d.otherFailed.Add(1)
		d.fail(fmt.Errorf("%s on_unpublish: %w", name, err))
	} else {
		d.record(&d.unpubLat, lat)
	}
}

func (d *driver) record(into *[]time.Duration, lat time.Duration) {
	d.mu.Lock()
	*into = append(*into, lat)
	d.mu.Unlock()
}

// writeRename writes b to p.tmp and renames it to p, as SRS writes segments and playlists.
func writeRename(p string, b []byte) error {
	if err := os.WriteFile(p+".tmp", b, 0o644); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		// srs-offload removes folders its purges leave empty; SRS makes them again.
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p+".tmp", b, 0o644); err != nil {
			return err
		}
	}
	return os.Rename(p+".tmp", p)
}

// srsPlaylist is SRS's live playlist after segment seq, listing window.
func srsPlaylist(seq int, window []string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:%d\n#EXT-X-TARGETDURATION:2\n\n", seq+1-len(window))
	for _, s := range window {
		fmt.Fprintf(&b, "#EXTINF:2.000, no desc\n%s\n", s)
	}
	return []byte(b.String())
}

// post sends one hook the way SRS 7 does and checks for {"code":0}.
func (d *driver) post(action string, b []byte) (time.Duration, error) {
	req, err := http.NewRequest(http.MethodPost, d.base+d.fx.Paths[action], bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "SRS/7.0.18(Hang)")
	t0 := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	lat := time.Since(t0)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(bytes.TrimSpace(got), []byte(`{"code":0}`)) {
		return 0, fmt.Errorf("answered %d %s", resp.StatusCode, bytes.TrimSpace(got))
	}
	return lat, nil
}
