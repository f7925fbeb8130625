package main

import (
	"testing"
	"time"
)

// A target's summary names the bound's value and says when srs-offload is already at or past it,
// in the direction of the measure (throughput: higher is better; CPU: lower is better).
func TestBoundSuffix(t *testing.T) {
	for _, c := range []struct {
		bound, ours float64
		lower       bool
		want        string
	}{
		{0.85, 0.66, false, "; bound: durable-queue PUT loop 0.85× of raw PUT"},
		{0.85, 0.90, false, "; bound: durable-queue PUT loop 0.85× of raw PUT (srs-offload is at or past that bound on this run)"},
		{1.40, 1.90, true, "; bound: durable-queue PUT loop 1.40× of raw PUT"},
		{1.40, 1.10, true, "; bound: durable-queue PUT loop 1.40× of raw PUT (srs-offload is at or past that bound on this run)"},
	} {
		if got := boundSuffix(c.bound, c.ours, "of raw PUT", c.lower); got != c.want {
			t.Errorf("boundSuffix(%v, %v, lower %v) = %q, want %q", c.bound, c.ours, c.lower, got, c.want)
		}
	}
}

// speedRatio is base's wall time over ours', per repetition, averaged.
func TestSpeedRatio(t *testing.T) {
	u := func(s float64) usage { return usage{elapsed: time.Duration(s * float64(time.Second))} }
	got := speedRatio([]usage{u(2), u(4)}, []usage{u(1), u(3)}) // 0.5 and 0.75
	if got < 0.6249 || got > 0.6251 {
		t.Errorf("speedRatio = %v, want 0.625", got)
	}
}
