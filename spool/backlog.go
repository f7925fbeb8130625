package spool

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/srs-offload/srs-offload/roots"
)

var (
	spoolFiles = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "srs_offload_spool_files",
		Help: "Files held in the spool folders (the disk backlog: taken, not yet stored and verified).",
	})
	spoolBytes = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "srs_offload_spool_bytes",
		Help: "Bytes of the files held in the spool folders.",
	})
	spoolOldest = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "srs_offload_spool_oldest_seconds",
		Help: "Age (by modification time) of the oldest file held in the spool folders, 0 when none.",
	})
)

// Backlog is what the spool folders hold.
type Backlog struct {
	Files, Bytes int64
	// Oldest is the modification time of the oldest file (zero when none).
	Oldest time.Time
}

// Backlog counts the files in every root's spool folder, through the roots (no symlink is
// followed; a missing spool folder holds nothing).
func (s *Spool) Backlog() (Backlog, error) {
	var b Backlog
	for _, root := range s.Roots.Dirs() {
		err := s.Roots.WalkDir(s.Root(root), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) || errors.Is(err, roots.ErrNotExist) {
					return nil // a folder pruned meanwhile
				}
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil // released meanwhile
			}
			b.Files++
			b.Bytes += fi.Size()
			if b.Oldest.IsZero() || fi.ModTime().Before(b.Oldest) {
				b.Oldest = fi.ModTime()
			}
			return nil
		})
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

// touch tells the Meter that this process took or released a file.
func (s *Spool) touch() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Meter keeps the disk backlog current: srs_offload_spool_files, _bytes and _oldest_seconds,
// and Publish when set. It counts the spool folders within MinGap of every file this process
// takes or releases, and every Every anyway (for what another process on the host did); both
// stretch with the cost of a count (see walkShare).
type Meter struct {
	Spool *Spool
	// Every is the longest time between two counts (default 5 s).
	Every time.Duration
	// MinGap is the shortest time between two counts (default 250 ms), so that a burst of hooks
	// costs one walk of the spool.
	MinGap time.Duration
	// Publish, when set, gets every count (e.g. to write it to Redis).
	Publish func(context.Context, Backlog)
	Log     *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start counts once and keeps counting until Shutdown.
func (m *Meter) Start() {
	if m.Every <= 0 {
		m.Every = 5 * time.Second
	}
	if m.MinGap <= 0 {
		m.MinGap = 250 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Add(1)
	go m.loop(ctx)
}

// Shutdown stops counting.
func (m *Meter) Shutdown(ctx context.Context) error {
	if m.cancel == nil {
		return nil
	}
	m.cancel()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Count counts the spool folders now and publishes the result.
func (m *Meter) Count(ctx context.Context) (Backlog, error) {
	b, err := m.Spool.Backlog()
	if err != nil {
		return b, err
	}
	spoolFiles.Set(float64(b.Files))
	spoolBytes.Set(float64(b.Bytes))
	age := 0.0
	if !b.Oldest.IsZero() {
		age = max(time.Since(b.Oldest).Seconds(), 0)
	}
	spoolOldest.Set(age)
	if m.Publish != nil {
		m.Publish(ctx, b)
	}
	return b, nil
}

// walkShare bounds the meter's cost: after a count that took d, the next one waits at least
// walkShare × d, so walking the spool takes at most 1/walkShare of a core however big the
// backlog (at 2,000 files a walk costs tens of ms; counting on every change took a quarter of
// the process's CPU in make bench's B2).
const walkShare = 50

func (m *Meter) loop(ctx context.Context) {
	defer m.wg.Done()
	for {
		start := time.Now()
		if _, err := m.Count(ctx); err != nil && m.Log != nil {
			m.Log.Warn("spool: could not count the disk backlog", "err", err)
		}
		rest := walkShare * time.Since(start)
		every := time.NewTimer(max(m.Every, rest))
		select {
		case <-ctx.Done():
			every.Stop()
			return
		case <-every.C:
		case <-m.Spool.changed:
			every.Stop()
			select {
			case <-ctx.Done():
				return
			case <-time.After(max(m.MinGap, rest)):
			}
		}
	}
}
