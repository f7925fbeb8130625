package spool_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/srs-offload/srs-offload/spool"
)

// The disk backlog follows each Take and Release of the process at once (well within a second),
// not a periodic scan: the meter's period here is an hour.
func TestMeterFollowsTakeAndRelease(t *testing.T) {
	sp, root := newSpool(t)
	var mu sync.Mutex
	var published []spool.Backlog
	m := &spool.Meter{Spool: sp, Every: time.Hour, MinGap: 10 * time.Millisecond,
		Publish: func(_ context.Context, b spool.Backlog) { mu.Lock(); published = append(published, b); mu.Unlock() }}
	m.Start()
	t.Cleanup(func() { m.Shutdown(context.Background()) })

	gauge := func(name string) float64 {
		mfs, err := prometheus.DefaultGatherer.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no metric %s", name)
		return 0
	}
	waitFor := func(files, bytes int64) {
		t.Helper()
		deadline := time.Now().Add(time.Second)
		for gauge("srs_offload_spool_files") != float64(files) || gauge("srs_offload_spool_bytes") != float64(bytes) {
			if time.Now().After(deadline) {
				t.Fatalf("spool gauges %v files %v bytes one second after the change, want %d %d",
					gauge("srs_offload_spool_files"), gauge("srs_offload_spool_bytes"), files, bytes)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(0, 0)
	var taken []string
	var total int64
	for i := range 3 {
		size := 1000 * (i + 1)
		p, fi := write(t, root, fmt.Sprintf("live/cam1-%d.ts", i), make([]byte, size))
		dst, err := sp.Take(p, fi)
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, dst)
		total += int64(size)
		waitFor(int64(i+1), total)
	}
	// A second Take of the same file holds nothing more.
	p, fi := write(t, root, "live/cam1-9.ts", make([]byte, 10))
	if _, err := sp.Take(p, fi); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Take(p, fi); err != nil {
		t.Fatal(err)
	}
	waitFor(4, total+10)
	if age := gauge("srs_offload_spool_oldest_seconds"); age < 0 || age > 60 {
		t.Errorf("oldest spooled file %v s old, want a few ms", age)
	}
	for i, dst := range taken {
		fi, err := os.Lstat(dst)
		if err != nil {
			t.Fatal(err)
		}
		if err := sp.Release(dst, fi); err != nil {
			t.Fatal(err)
		}
		total -= int64(1000 * (i + 1))
		waitFor(int64(3-i), total+10)
	}
	mu.Lock()
	defer mu.Unlock()
	if last := published[len(published)-1]; last.Files != 1 || last.Bytes != 10 {
		t.Errorf("last published backlog %+v, want 1 file of 10 bytes", last)
	}
}
