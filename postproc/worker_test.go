package postproc_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/postproc"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/webhook"
	"github.com/srs-offload/srs-offload/worker"
)

// The worker announces a DVR recording once it is stored, verified and purged, and the
// receiver gets dvr.stored with the stored size and key.
func TestWorkerAnnouncesRecording(t *testing.T) {
	okBefore := metric(t, "srs_offload_post_tasks_total", map[string]string{"type": queue.TypeWebhook, "outcome": "ok"})
	rcv := newReceiver(t, 0)
	r := newRig(t, func(s *postproc.Stage) { s.Webhooks = []webhook.Target{{URL: rcv.URL(), Secret: secret}} })
	r.start(t)
	dir := t.TempDir()
	set, err := roots.New([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	path := filepath.Join(dir, "live", "cam1.1764680000.flv")
	body := []byte(strings.Repeat("FLV", 3000))
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	off := &worker.Offloader{Roots: set, Store: r.up, Purge: true, Post: r.stage, Log: r.log}
	p := queue.Offload{Kind: queue.KindDVR, Path: path, Key: "live/cam1/cam1.1764680000.flv", File: fileid.Of(fi), App: "live", Stream: "cam1", Client: "c1"}
	if err := off.Offload(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("not purged: %v", err)
	}
	select {
	case <-rcv.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	evs, _, _ := rcv.snapshot()
	for _, ev := range evs {
		if ev.Event != "dvr.stored" || ev.Key != p.Key || ev.Size != int64(len(body)) || ev.Session != "c1" {
			t.Errorf("event %+v", ev)
		}
	}
	time.Sleep(100 * time.Millisecond) // the handler returns after the receiver answered
	if got := metric(t, "srs_offload_post_tasks_total", map[string]string{"type": queue.TypeWebhook, "outcome": "ok"}); got != okBefore+1 {
		t.Errorf("srs_offload_post_tasks_total{type=post:webhook,outcome=ok} went from %v to %v, want one more", okBefore, got)
	}
}

// metric is the value of a counter of the default registry with the given labels.
func metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
