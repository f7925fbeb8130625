package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/internal/testbed"
)

// TestMain lets the test binary be the harness's S3 proxy process too, as the harness's is.
func TestMain(m *testing.M) {
	if proxyMain() {
		return
	}
	os.Exit(m.Run())
}

// TestScaleSmoke runs the harness for real at N=5 for a few seconds (its own redis-server,
// versitygw and srs-offload serve), so that it cannot rot between `make scale` runs: every hook
// answered, every segment stored, the measurements filled in and the report written.
func TestScaleSmoke(t *testing.T) {
	t.Cleanup(testbed.Cleanup)
	out := filepath.Join(t.TempDir(), "SCALE.md")
	const n, dur = 5, 4 * time.Second
	// idle 2 s: the run lasts over 10 s from srs-offload's start, so its sweeps (every 5 s) ran
	// twice, the second with every stream active.
	rep, err := runAll(options{ns: []int{n}, dur: dur, idle: 2 * time.Second, drain: 20 * time.Second,
		timeout: 10 * time.Second, segSize: 1536, modes: []string{"bucket"}, out: out})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.results) != 1 {
		t.Fatalf("%d results, want 1", len(rep.results))
	}
	r := rep.results[0]
	segs := int64(n * dur / segmentEvery)
	if r.hlsOK != segs || r.hlsFailed+r.otherFailed+r.unsent != 0 || r.firstErr != nil {
		t.Errorf("%d on_hls answered, want %d; %d failed, %d other hooks failed, %d unsent (%v)", r.hlsOK, segs, r.hlsFailed, r.otherFailed, r.unsent, r.firstErr)
	}
	if len(r.pubLat) != n || len(r.unpubLat) != n {
		t.Errorf("%d on_publish and %d on_unpublish answered, want %d each", len(r.pubLat), len(r.unpubLat), n)
	}
	if !r.drained {
		t.Errorf("the queue did not drain: %d tasks left", r.end.backlog())
	}
	if got := int64(r.end.stored()); got != segs {
		t.Errorf("srs-offload stored %d segments, want %d", got, segs)
	}
	if w := r.window(); w.hls == 0 || w.totalCmds() == 0 || w.off <= 0 || w.stored == 0 {
		t.Errorf("empty window: %d hooks, %d Redis commands, %v CPU, %.0f stored", w.hls, w.totalCmds(), w.off, w.stored)
	}
	if r.memPerSegment() <= 0 {
		t.Errorf("Redis memory per segment %.0f B, want more than 0", r.memPerSegment())
	}
	// Every segment PUT once, a live playlist PUT per stream at most per segment (publish_interval
	// 1s, a segment every 2 s), and one VoD playlist per session.
	if got := r.idle.s3req[reqSegment]; got != segs {
		t.Errorf("%d segment PUTs, want %d", got, segs)
	}
	if got := r.idle.s3req[reqLive]; got < n || got > segs+n {
		t.Errorf("%d live playlist PUTs, want %d..%d", got, n, segs+n)
	}
	if got := r.idle.s3req[reqVOD]; got != n {
		t.Errorf("%d VoD playlist PUTs, want %d", got, n)
	}
	if got := r.idle.metrics["srs_offload_sweep_streams"]; got != n {
		t.Errorf("the last sweep visited %v streams, want %d", got, n)
	}
	if got := r.idle.metrics["srs_offload_sweep_duration_seconds_count"]; got < 1 {
		t.Errorf("%v sweeps ran, want at least 1", got)
	}
	if r.logErrors > 0 {
		t.Errorf("srs-offload logged %d errors, the first: %s", r.logErrors, r.firstLogError)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Scale model", "### Hooks", "### Redis memory", "### Playlist sweep", "| 5 | 2.50/s |", analysisStart} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}
