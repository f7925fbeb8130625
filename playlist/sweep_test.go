package playlist

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/internal/hlstest"
	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/queue"
)

// The sweep advances its streams in pipelines of sweepBatch (docs/SCALE.md: two round trips per
// stream made a sweep of 10,000 streams last seconds). Every stream of several batches, the last
// one partial, is visited as one by one: each stalled segment is left behind, each live playlist
// published, each idle session ended; and after Redis forgot the scripts (a restart) too.
func TestSweepManyStreams(t *testing.T) {
	ctx := context.Background()
	up := s3test.Fake(t, nil).Uploader(t, nil)
	const stall = 300 * time.Millisecond
	l := newLedger(t, Settings{Window: time.Hour, Stall: stall})
	m := &Manager{Ledger: l, Store: up}
	n := 2*sweepBatch + 37
	pk := func(i int) string { return fmt.Sprintf("live/cam%03d.m3u8", i) }
	info := func(i int) SessionInfo {
		return SessionInfo{App: "live", Stream: fmt.Sprintf("cam%03d", i), Client: "a"}
	}
	for i := range n {
		// Segment 0 stalls (announced, never stored); segment 1 is stored behind it.
		for seq := int64(0); seq < 2; seq++ {
			it := seg("a", seq)
			it.Key = fmt.Sprintf("live/cam%03d/a-%d.ts", i, seq)
			if _, err := l.Announce(ctx, pk(i), it, info(i)); err != nil {
				t.Fatal(err)
			}
		}
		it := seg("a", 1)
		it.Key = fmt.Sprintf("live/cam%03d/a-1.ts", i)
		if _, err := l.completeTouch(ctx, pk(i), streamName("", "live", fmt.Sprintf("cam%03d", i)), it, info(i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(stall + 100*time.Millisecond)
	if err := l.rdb.ScriptFlush(ctx).Err(); err != nil { // as after a Redis restart: NOSCRIPT
		t.Fatal(err)
	}
	if err := m.Sweep(ctx, time.Hour, func(queue.End) error { t.Error("a session was ended though not idle"); return nil }); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		b, err := up.Get(ctx, pk(i))
		if err != nil {
			t.Fatalf("stream %d of %d: the sweep did not publish its live playlist past the stalled segment: %v", i, n, err)
		}
		pl, err := hlstest.Parse(pk(i), b)
		if err != nil {
			t.Fatal(err)
		}
		if len(pl.Segments) != 1 || pl.Segments[0].URI != "cam"+fmt.Sprintf("%03d", i)+"/a-1.ts" {
			t.Fatalf("stream %d: live playlist after the sweep:\n%s", i, b)
		}
	}

	// Idle: every session is ended, every stream leaves the sweep's list.
	ended := map[string]bool{}
	if err := m.Sweep(ctx, time.Nanosecond, func(e queue.End) error { ended[e.PlaylistKey] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(ended) != n {
		t.Fatalf("%d sessions ended by the idle sweep, want %d", len(ended), n)
	}
	if left, err := l.active(ctx); err != nil || len(left) != 0 {
		t.Fatalf("%d streams still active after the idle sweep (%v)", len(left), err)
	}
}
