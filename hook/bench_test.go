package hook_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/spool"
)

// BenchmarkIngest measures what SRS waits for on every on_hls: the captured SRS 7.0.18 on_hls
// body POSTed over a fresh loopback connection (SRS never reuses one), validated against a real
// file, and enqueued durably in a real redis-server. Every iteration names its own file, so
// every request enqueues a new task. It reports the latency percentiles and the request rate.
//
//	go test -run '^$' -bench Ingest -benchtime 3000x ./hook/
//
// The playlists variants also announce each segment to the playlist ledger (one more Redis
// script); the spool variants also hard-link each file into the spool, as `serve` does.
func BenchmarkIngest(b *testing.B) {
	b.Run("serial", func(b *testing.B) { benchIngest(b, false, false, false) })
	b.Run("parallel", func(b *testing.B) { benchIngest(b, true, false, false) })
	b.Run("serial-playlists", func(b *testing.B) { benchIngest(b, false, true, false) })
	b.Run("parallel-playlists", func(b *testing.B) { benchIngest(b, true, true, false) })
	b.Run("serial-playlists-spool", func(b *testing.B) { benchIngest(b, false, true, true) })
	b.Run("parallel-playlists-spool", func(b *testing.B) { benchIngest(b, true, true, true) })
}

func benchIngest(b *testing.B, parallel, playlists, spooled bool) {
	var body []byte
	for _, l := range loadFixture(b, "srs-7.0.18-abs-paths.jsonl") {
		if l.Method == http.MethodPost && strings.Contains(string(l.Body), `"action":"on_hls"`) {
			body = l.Body
			break
		}
	}
	if body == nil {
		b.Fatal("no on_hls in the capture")
	}
	tmp := realPath(b, b.TempDir())
	root := filepath.Join(tmp, "data", "srs", "hls")
	dir := filepath.Join(root, "live")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	const seq = "SEQ_PLACEHOLDER"
	tmpl := string(setFields(b, body, map[string]string{
		"cwd":  filepath.Join(tmp, "usr", "local", "srs"),
		"file": filepath.Join(dir, "livestream-"+seq+".ts"),
		"url":  "live/livestream-" + seq + ".ts",
		"m3u8": filepath.Join(dir, "livestream.m3u8"),
	}))
	content := make([]byte, 188*7*16) // 16 UDP-sized chunks of TS packets
	r := rand.New(rand.NewPCG(1, 2))
	for i := range content {
		content[i] = byte(r.Uint32())
	}
	bodies := make([]string, b.N)
	for i := range b.N {
		n := fmt.Sprint(i)
		if err := os.WriteFile(filepath.Join(dir, "livestream-"+n+".ts"), content, 0o644); err != nil {
			b.Fatal(err)
		}
		bodies[i] = strings.ReplaceAll(tmpl, seq, n)
	}
	e := newEnv(b, envConfig{roots: []string{root}, log: io.Discard})
	if playlists {
		rdb := redis.NewClient(&redis.Options{Addr: e.redis.Addr})
		b.Cleanup(func() { rdb.Close() })
		e.intake.Playlists = &playlist.Manager{Ledger: playlist.New(rdb, playlist.Settings{}), Node: node}
	}
	if spooled {
		sp, err := spool.New(e.roots, ".srs-offload")
		if err != nil {
			b.Fatal(err)
		}
		e.intake.Spool = sp
	}
	url := e.srv.URL + "/api/v1/hls"

	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var errOnce sync.Once
	var firstErr error
	one := func() {
		i := int(next.Add(1) - 1)
		t0 := time.Now()
		err := ingest(e.client, url, bodies[i])
		lat[i] = time.Since(t0)
		if err != nil {
			errOnce.Do(func() { firstErr = fmt.Errorf("request %d: %w", i, err) })
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				one()
			}
		})
	} else {
		for range b.N {
			one()
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()

	if firstErr != nil {
		b.Fatal(firstErr)
	}
	if n := int(next.Load()); n != b.N {
		b.Fatalf("%d requests for b.N %d", n, b.N)
	}
	e.assertTaskCount("after the benchmark", b.N, 0)
	if spooled {
		links, _ := filepath.Glob(filepath.Join(root, ".srs-offload", "live", "*-livestream-*.ts"))
		if len(links) != b.N {
			b.Fatalf("%d files spooled for %d hooks", len(links), b.N)
		}
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		i := int(float64(len(lat))*p+0.5) - 1
		return float64(lat[max(0, min(i, len(lat)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-us")
	b.ReportMetric(pct(0.99), "p99-us")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}

// ingest POSTs one hook and checks the answer, without touching testing.B (it runs on the
// RunParallel goroutines).
func ingest(c *http.Client, url, body string) error {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
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
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(b) != okBody {
		return fmt.Errorf("answer %d %s", resp.StatusCode, b)
	}
	return nil
}
