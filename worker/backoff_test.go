package worker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/worker"
)

// Backoff(base, max)(n) lies in [d/2, d] for d = min(base·2ⁿ⁻¹, max), is never above max, and is
// jittered.
func TestBackoff(t *testing.T) {
	for _, c := range []struct{ base, max time.Duration }{
		{100 * time.Millisecond, time.Second},
		{2 * time.Second, 5 * time.Minute},
		{time.Second, time.Second},
		{3 * time.Second, time.Second}, // base above max: max wins
		{time.Nanosecond, time.Hour},
		{7 * time.Millisecond, 24 * time.Hour}, // not a power-of-two multiple of base
	} {
		f := worker.Backoff(c.base, c.max)
		d := c.base // base·2ⁿ⁻¹, capped; doubled without overflowing
		for n := 1; n <= 30; n++ {
			if n > 1 && d < c.max {
				d *= 2
			}
			want := min(d, c.max)
			lo, hi := want/2, want
			var smallest, largest time.Duration = hi + 1, -1
			for range 200 {
				got := f(n, errors.New("x"), nil)
				if got < lo || got > hi || got > c.max {
					t.Fatalf("Backoff(%v, %v)(%d) = %v, want within [%v, %v]", c.base, c.max, n, got, lo, hi)
				}
				smallest, largest = min(smallest, got), max(largest, got)
			}
			// Jitter: with half a range of at least a millisecond, 200 draws are never all equal.
			if hi-lo >= time.Millisecond && smallest == largest {
				t.Errorf("Backoff(%v, %v)(%d) always %v: no jitter", c.base, c.max, n, smallest)
			}
		}
	}
}

// asynq passes the number of retries done so far, 0 on the first failure: that waits about base.
func TestBackoffFirstRetry(t *testing.T) {
	f := worker.Backoff(100*time.Millisecond, time.Second)
	for range 100 {
		if got := f(0, nil, nil); got < 50*time.Millisecond || got > 100*time.Millisecond {
			t.Fatalf("Backoff(100ms, 1s)(0) = %v, want within [50ms, 100ms]", got)
		}
	}
}
