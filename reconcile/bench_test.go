package reconcile_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/reconcile"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/spool"
)

// benchFiles is the size of the root a benchmark scans: 50 streams × 4 days × 500 segments.
const (
	benchStreams = 50
	benchDays    = 4
	benchSegs    = 500
	benchFiles   = benchStreams * benchDays * benchSegs
)

// benchRoot fills a new root with benchFiles segments at live/cam<N>/<date>/<seq>.ts; with mark,
// each carries the stored mark of the task id the reconciler computes for it (purge off).
func benchRoot(b *testing.B, mark bool) string {
	b.Helper()
	root, err := filepath.EvalSymlinks(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 188) // one TS packet: the content does not matter to a scan
	for cam := range benchStreams {
		for day := range benchDays {
			dir := filepath.Join(root, "live", fmt.Sprintf("cam%d", cam), fmt.Sprintf("202611%02d", 20+day))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			for seq := range benchSegs {
				p := filepath.Join(dir, fmt.Sprintf("%d.ts", seq))
				f, err := os.Create(p)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.Write(payload); err != nil {
					b.Fatal(err)
				}
				if mark {
					fi, err := f.Stat()
					if err != nil {
						b.Fatal(err)
					}
					id := queue.Offload{Kind: queue.KindHLS, Path: p, File: fileid.Of(fi)}.TaskID()
					if err := queue.Mark(f, id); err != nil {
						b.Fatalf("mark (user xattrs needed): %v", err)
					}
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	return root
}

// benchReconciler scans root with its spool, enqueueing into the redis-server at addr.
func benchReconciler(b *testing.B, root, addr string) *reconcile.Reconciler {
	b.Helper()
	rs, err := roots.New([]string{root})
	if err != nil {
		b.Fatal(err)
	}
	sp, err := spool.New(rs, ".srs-offload")
	if err != nil {
		b.Fatal(err)
	}
	if err := sp.Probe(); err != nil {
		b.Fatal(err)
	}
	layout, err := reconcile.NewLayout([]string{"[app]/[stream]/[2006][01][02]/[seq].ts"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	hlsKey, _ := objkey.Parse("{url}")
	dvrKey, _ := objkey.Parse("{app}/{stream}/{basename}")
	client := queue.NewClient(asynq.RedisClientOpt{Addr: addr}, queue.Options{Node: node, MaxRetry: 3, Timeout: time.Minute, Dedup: time.Hour})
	b.Cleanup(func() { client.Close() })
	return &reconcile.Reconciler{
		Roots: rs, Spool: sp, Layout: layout, HLSKey: hlsKey, DVRKey: dvrKey, Queue: client,
		// The files are seconds old when the scans start; production's Recheck.
		MinAge: time.Millisecond, Recheck: 30 * time.Minute,
		Log: slog.New(slog.DiscardHandler),
	}
}

// measure scans until b.Loop is done, checks every scan with ok, and reports files/s.
func measure(b *testing.B, rec *reconcile.Reconciler, ok func(reconcile.Stats) error) {
	b.Helper()
	ctx := context.Background()
	scans := 0
	for b.Loop() {
		st, err := rec.Scan(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := ok(st); err != nil {
			b.Fatal(err)
		}
		scans++
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(scans*benchFiles)/sec, "files/s")
	b.ReportMetric(sec*1e9/float64(scans*benchFiles), "ns/file")
}

// BenchmarkScan is a full scan of a root of 100,000 segments:
//   - stored: every file kept after its upload (purge off) carries the stored mark, so the scan
//     is local to the disk. Redis is stopped while it runs: a scan that asked it would fail.
//   - known: every file was enqueued by an earlier scan (and is held in the spool, so 200,000
//     names are walked) and found again within Recheck: nothing is enqueued.
//   - known-ask-redis: the same after Recheck has passed: every file is offered to Redis again,
//     which answers that its task exists (one round trip per file).
func BenchmarkScan(b *testing.B) {
	if testing.Short() {
		b.Skip("creates 100,000 files per case; skipped with -short")
	}
	b.Run("stored", func(b *testing.B) {
		root := benchRoot(b, true)
		srv := redistest.Start(b)
		rec := benchReconciler(b, root, srv.Addr)
		srv.Stop()
		measure(b, rec, func(st reconcile.Stats) error {
			if st.Stored != benchFiles || st.Files != benchFiles {
				return fmt.Errorf("scan: %+v, want %d files stored", st, benchFiles)
			}
			return nil
		})
	})

	// The two "known" cases share one root whose files a first scan enqueued (untimed). It is
	// set up here, in the parent, so that it outlives the first case.
	rec := benchReconciler(b, benchRoot(b, false), redistest.Start(b).Addr)
	if st, err := rec.Scan(context.Background()); err != nil || st.Enqueued != benchFiles {
		b.Fatalf("first scan: %+v, %v; want %d enqueued", st, err, benchFiles)
	}
	b.Run("known", func(b *testing.B) {
		rec.Recheck = 30 * time.Minute
		measure(b, rec, func(st reconcile.Stats) error {
			if st.Known != benchFiles || st.Enqueued != 0 || st.Files != benchFiles {
				return fmt.Errorf("scan: %+v, want %d files known", st, benchFiles)
			}
			return nil
		})
	})
	b.Run("known-ask-redis", func(b *testing.B) {
		rec.Recheck = 0
		measure(b, rec, func(st reconcile.Stats) error {
			if st.Known != benchFiles || st.Enqueued != 0 || st.Files != benchFiles {
				return fmt.Errorf("scan: %+v, want %d files known", st, benchFiles)
			}
			return nil
		})
	})
}
