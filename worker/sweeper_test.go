package worker_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/srs-offload/srs-offload/worker"
)

// scraped reads one value of /metrics as Prometheus scrapes it (the default registry), e.g.
// srs_offload_sweep_duration_seconds_count.
func scraped(t *testing.T, name string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(prometheus.DefaultGatherer, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if rest, ok := strings.CutPrefix(l, name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// threadCPU is the calling thread's CPU time as getrusage(RUSAGE_THREAD) sees it.
func threadCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The sweeper counts its sweeps, their wall time and their CPU time (the sweeping thread's):
// a sweep that spins for 40 ms of CPU adds about 40 ms to srs_offload_sweep_cpu_seconds_total,
// one that sleeps 40 ms adds wall time but next to no CPU.
func TestSweeperMetrics(t *testing.T) {
	for _, c := range []struct {
		name   string
		work   func() // one sweep
		minCPU float64
		maxCPU float64
	}{
		{"spins", func() {
			// 40 ms of this thread's CPU (however long that takes on a busy machine)
			for start := threadCPU(t); threadCPU(t)-start < 40*time.Millisecond; {
			}
		}, 0.035, 1},
		{"sleeps", func() { time.Sleep(40 * time.Millisecond) }, 0, 0.015},
	} {
		t.Run(c.name, func(t *testing.T) {
			n0, wall0 := scraped(t, "srs_offload_sweep_duration_seconds_count"), scraped(t, "srs_offload_sweep_duration_seconds_sum")
			cpu0 := scraped(t, "srs_offload_sweep_cpu_seconds_total")
			var sweeps atomic.Int64
			done := make(chan struct{})
			s := &worker.Sweeper{Every: 10 * time.Millisecond, Log: slog.New(slog.DiscardHandler), Sweep: func(ctx context.Context) error {
				c.work()
				if sweeps.Add(1) == 1 {
					close(done)
				}
				return nil
			}}
			s.Start()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("no sweep within 10 s")
			}
			if err := s.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			n := sweeps.Load()
			n1, wall1 := scraped(t, "srs_offload_sweep_duration_seconds_count"), scraped(t, "srs_offload_sweep_duration_seconds_sum")
			cpu1 := scraped(t, "srs_offload_sweep_cpu_seconds_total")
			if got := int64(n1 - n0); got != n {
				t.Errorf("sweep count grew by %d, want %d sweeps", got, n)
			}
			if wall := (wall1 - wall0) / float64(n); wall < 0.040 {
				t.Errorf("wall time %.3f s per sweep, want at least 0.040", wall)
			}
			if cpu := (cpu1 - cpu0) / float64(n); cpu < c.minCPU || cpu > c.maxCPU {
				t.Errorf("CPU %.3f s per sweep, want %.3f..%.3f", cpu, c.minCPU, c.maxCPU)
			}
		})
	}
}
