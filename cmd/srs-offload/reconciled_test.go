package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/settings"
)

// A hook whose announce succeeded but whose enqueue failed (Redis went away between the two, as
// at the end of the chaos test's Redis outage) keeps its file for the reconciler, which enqueues
// it later under the very task id the hook would have recorded. The segment must then take its
// place in its session's VoD record once stored; withdrawing it from the ledger at the failed
// enqueue (Lost) made that later completion a no-op, and the VoD playlist had a hole.
func TestHookEnqueueFailsThenReconciledJoinsVOD(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rds := redistest.Start(t)
	cfg := settings.Default()
	cfg.Roots, cfg.Node, cfg.Hooks.EnqueueTimeout = []string{root}, "reconciled", 2*time.Second
	cfg.Reconcile.Watch = false
	cfg.Redis.Addr = rds.Addr
	plan, err := compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plan.close)
	rdb := redis.NewClient(&redis.Options{Addr: rds.Addr})
	t.Cleanup(func() { rdb.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pr, err := build(context.Background(), plan, roles{hooks: true}, log, buildFor{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pr.close)
	rec, h, ledger, qc := pr.rec, pr.hooks, pr.ledger, pr.qc
	if rec == nil {
		t.Fatal("no reconciler built")
	}
	rec.MinAge = 0 // the scan below runs right after the hooks (config requires at least 1s)
	flaky := &flakyQueue{Client: qc}
	h.Intake.Queue = flaky
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	// SRS's playlist lists both segments, so the reconciler places the one it finds.
	m3u8 := filepath.Join(root, "live", "cam1.m3u8")
	os.MkdirAll(filepath.Dir(m3u8), 0o755)
	writeM3U8(m3u8, []m3u8Entry{{name: "cam1-0.ts", seq: 0, dur: 2}, {name: "cam1-1.ts", seq: 1, dur: 2}})
	hook := func(seq int64) int {
		rel := "live/cam1-" + string(rune('0'+seq)) + ".ts"
		writeSegment(t, filepath.Join(root, rel), randomBytes(1000+int(seq), uint64(seq)))
		resp, err := http.Post(srv.URL+"/api/v1/hls", "application/json",
			bytes.NewReader(srsHook("c1", "cam1", root, "./"+rel, rel, m3u8, seq, 2)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := hook(0); code != http.StatusOK {
		t.Fatalf("hook 0: %d", code)
	}
	flaky.fail.Store(true)
	if code := hook(1); code != http.StatusServiceUnavailable {
		t.Fatalf("hook 1 with a failed enqueue: %d, want 503", code)
	}
	flaky.fail.Store(false)

	// The reconciler enqueues the kept file; a worker stores both (the ledger's side of it).
	if st, err := rec.Scan(context.Background()); err != nil || st.Enqueued != 1 {
		t.Fatalf("reconcile scan: enqueued %d, %v; want the file whose enqueue failed", st.Enqueued, err)
	}
	ctx := context.Background()
	for seq := range int64(2) {
		rel := "live/cam1-" + string(rune('0'+seq)) + ".ts"
		real := filepath.Join(root, rel)
		fi, err := os.Stat(real)
		if err != nil {
			t.Fatal(err)
		}
		p := queue.Offload{Kind: queue.KindHLS, Path: real, File: fileid.Of(fi)}
		it := playlist.Item{ID: p.TaskID(), Kind: playlist.KindSegment, Seq: seq, Key: rel, Duration: 2}
		if seq == 0 {
			it.Client = "c1"
		}
		if _, err := ledger.Complete(ctx, "live/cam1.m3u8", it, playlist.SessionInfo{Vhost: "__defaultVhost__", App: "live", Stream: "cam1", Client: it.Client}); err != nil {
			t.Fatal(err)
		}
	}

	// The session's VoD record holds both segments.
	vodKeys, err := rdb.Keys(ctx, "so:{*}:v:*").Result()
	if err != nil || len(vodKeys) != 1 {
		t.Fatalf("VoD records %v (%v), want one session", vodKeys, err)
	}
	members, err := rdb.ZRange(ctx, vodKeys[0], 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range members {
		var v struct {
			U string `json:"u"`
		}
		json.Unmarshal([]byte(m), &v)
		got = append(got, v.U)
	}
	if len(got) != 2 || got[0] != "live/cam1-0.ts" || got[1] != "live/cam1-1.ts" {
		t.Fatalf("the session's VoD record lists %q, want both segments in order", got)
	}
}
