package postproc_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/internal/mediatest"
	"github.com/srs-offload/srs-offload/postproc"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/remux"
	"github.com/srs-offload/srs-offload/webhook"
)

// A recording announced again after its tasks' ids expired (asynq delivers at least once; a
// worker that died after the upload announces again) runs no second ffmpeg: the MP4 and the
// poster are found in storage by origin, and the events come again with the same ids.
func TestDeriveAgainIsIdempotent(t *testing.T) {
	sample := filepath.Join(t.TempDir(), "rec.flv")
	mediatest.FLV(t, sample, 3)
	flv, _ := os.ReadFile(sample)
	real, err := remux.Find("ffmpeg")
	if err != nil {
		t.Fatal(err)
	}
	// A wrapper on PATH counts the runs of the real ffmpeg.
	bin, runs := t.TempDir(), filepath.Join(t.TempDir(), "runs")
	os.WriteFile(filepath.Join(bin, "ffmpeg"), []byte("#!/bin/sh\necho run >> "+runs+"\nexec "+real+" \"$@\"\n"), 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	count := func() int { b, _ := os.ReadFile(runs); return strings.Count(string(b), "run") }

	rcv := newReceiver(t, 0)
	var d *postproc.Derived
	r := newRig(t, func(s *postproc.Stage) {
		s.Webhooks = []webhook.Target{{URL: rcv.URL(), Secret: secret}}
		d = derived(t, postproc.RemuxBeside, true)
		d.FFmpeg.Path = filepath.Join(bin, "ffmpeg")
		s.Derived = d
	})
	d.Files = r.up
	r.start(t)
	p, key := recording(3)
	r.store(t, key, flv)
	if err := r.stage.Recorded(context.Background(), p, key); err != nil {
		t.Fatal(err)
	}
	first := waitEvents(t, rcv, 3, 60*time.Second)
	n1 := count()
	if n1 != 2 {
		t.Fatalf("%d ffmpeg runs for an MP4 and a poster", n1)
	}
	_, reqs1, _ := rcv.snapshot()
	// The finished tasks are forgotten, so that asynq does not deduplicate the second
	// announcement: the stage's own idempotence is what is tested.
	in := asynq.NewInspector(asynq.RedisClientOpt{Addr: r.rs.Addr})
	defer in.Close()
	time.Sleep(500 * time.Millisecond) // the last deliveries complete
	if n, err := in.DeleteAllCompletedTasks(queue.Name(queue.KindPost, node)); err != nil || n < 6 {
		t.Fatalf("deleted %d completed tasks: %v", n, err)
	}
	if err := r.stage.Recorded(context.Background(), p, key); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, reqs, _ := rcv.snapshot(); reqs >= reqs1+3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	evs, reqs2, bad := rcv.snapshot()
	t.Logf("first pass: %d requests, %d ffmpeg runs; again: %d requests, %d ffmpeg runs", reqs1, n1, reqs2-reqs1, count()-n1)
	if reqs2 < reqs1+3 || bad != 0 {
		t.Fatalf("the second announcement delivered %d requests (bad signatures %d)", reqs2-reqs1, bad)
	}
	if len(evs) != 3 || count() != n1 {
		t.Errorf("again: %d distinct event ids (want the same 3), %d new ffmpeg runs (want 0)", len(evs), count()-n1)
	}
	for _, e := range first {
		if got := evs[e.ID]; got.Key != e.Key {
			t.Errorf("event %s changed: %+v", e.ID, got)
		}
	}
}
