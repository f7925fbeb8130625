package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/settings"
)

// Under a hook storm every connection of the hooks' Redis pool is taken and thousands of hooks
// wait for one (docs/SCALE.md, N=10,000). The worker's ledger updates (Stored, the sweep) must
// not queue behind them: with one shared pool the uploads stalled while hooks were answered. Here
// every connection of the hooks' pool is held by a blocking command; the worker's ledger still
// answers at once, while the hooks' ledger cannot get a connection.
func TestWorkerRedisPoolNotTheHooks(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rds := redistest.Start(t)
	cfg := settings.Default()
	cfg.Roots, cfg.Node, cfg.Redis.Addr = []string{root}, "pool", rds.Addr
	cfg.Reconcile.Watch = false
	plan, err := compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plan.close)
	pr, err := build(context.Background(), plan, roles{hooks: true, worker: true}, slog.New(slog.NewTextHandler(io.Discard, nil)), buildFor{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pr.close)
	if pr.wledger == nil || pr.ledger == nil {
		t.Fatal("no worker or hooks ledger built")
	}

	// Every connection of the hooks' pool blocks for 3 s.
	single, ok := pr.rdb.(*redis.Client)
	if !ok {
		t.Fatalf("a single redis.addr gave a %T", pr.rdb)
	}
	size := single.Options().PoolSize
	var wg sync.WaitGroup
	for range size {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr.rdb.BLPop(context.Background(), 3*time.Second, "pool-test-nothing")
		}()
	}
	t.Cleanup(wg.Wait)
	for deadline := time.Now().Add(5 * time.Second); ; {
		st := pr.rdb.PoolStats()
		if int(st.TotalConns) == size && st.IdleConns == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hooks' pool did not fill: %+v of %d", st, size)
		}
		time.Sleep(10 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := pr.ledger.Advance(ctx, "live/cam1.m3u8"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the hooks' ledger answered with its pool taken (%v): the test does not hold the pool", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := pr.wledger.Advance(ctx, "live/cam1.m3u8"); err != nil {
		t.Fatalf("the worker's ledger waited for the hooks' Redis pool: %v", err)
	}
}
