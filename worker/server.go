package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/hibiken/asynq"
	"golang.org/x/sys/unix"

	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/storage"
)

// Options configure the asynq server.
type Options struct {
	Node            string
	Concurrency     int
	RetryBase       time.Duration
	RetryMax        time.Duration
	ShutdownTimeout time.Duration
	// PollInterval is how often an idle server looks for tasks. asynq's default (1 s) adds up to a
	// second to every upload when the queue was empty.
	PollInterval time.Duration
	Log          *slog.Logger
	// Ender, when set, handles the end of publish sessions (TypeEnd).
	Ender Ender
	// Warmer, when set, handles CDN warming (TypeWarm).
	Warmer Warmer
}

// Server runs the handlers for one node's queues.
type Server struct {
	srv  *asynq.Server
	mux  *asynq.ServeMux
	opts Options
}

// NewServer builds a server for the node's queues.
func NewServer(redis asynq.RedisConnOpt, o Options, off *Offloader) *Server {
	mux := asynq.NewServeMux()
	mux.Handle(queue.TypeOffload, off)
	if o.Ender != nil {
		mux.Handle(queue.TypeEnd, endHandler{o.Ender})
	}
	if o.Warmer != nil {
		mux.Handle(queue.TypeWarm, warmHandler{o.Warmer})
	}
	backoff := Backoff(o.RetryBase, o.RetryMax)
	srv := asynq.NewServer(redis, asynq.Config{
		Concurrency: o.Concurrency,
		Queues:      queue.Queues(o.Node),
		RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
			if errors.Is(err, queue.ErrNotYet) {
				return time.Second
			}
			return backoff(n, err, t)
		},
		// Waiting for segments in flight, or for storage to come back, is not a failure: it must
		// not use up the retries. An outage is waited out with capped backoff, however long.
		IsFailure:         isFailure,
		ShutdownTimeout:   o.ShutdownTimeout,
		TaskCheckInterval: o.PollInterval,
		// Retries wait in a scheduled set that asynq moves to pending every 5 s by default, which
		// would add up to 5 s to a 2 s backoff.
		DelayedTaskCheckInterval: time.Second,
		Logger:                   logger{o.Log},
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			if errors.Is(err, queue.ErrNotYet) {
				return
			}
			retried, _ := asynq.GetRetryCount(ctx)
			maxRetry, _ := asynq.GetMaxRetry(ctx)
			id, _ := asynq.GetTaskID(ctx)
			o.Log.Warn("task failed", "id", id, "retried", retried, "max_retry", maxRetry, "err", err)
		}),
	})
	return &Server{srv: srv, mux: mux, opts: o}
}

// Start begins processing in the background.
func (s *Server) Start() error {
	return s.srv.Start(s.mux)
}

// Shutdown stops taking tasks, waits up to ShutdownTimeout for running ones, and hands the rest
// back to the queue. It returns early with an error when ctx ends first (asynq's shutdown then
// goes on in the background).
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.srv.Shutdown()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("worker: tasks still running at the shutdown deadline: %w", ctx.Err())
	}
}

// Sweeper runs Sweep every Every (5 s when zero) from Start until Shutdown: the playlists'
// upkeep (stalled segments, idle streams).
type Sweeper struct {
	Sweep func(ctx context.Context) error
	Every time.Duration
	Log   *slog.Logger

	stop context.CancelFunc
	done chan struct{}
}

// Start runs the sweeps in the background.
func (s *Sweeper) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	every := s.Every
	if every <= 0 {
		every = 5 * time.Second
	}
	go func() {
		defer close(s.done)
		// The sweeps run on a thread of their own, so that the thread's CPU time is theirs
		// (srs_offload_sweep_cpu_seconds_total): Redis round trips and Go work, the process's
		// other goroutines not included.
		runtime.LockOSThread()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				start, cpu := time.Now(), threadCPU()
				err := s.Sweep(ctx)
				sweepSeconds.Observe(time.Since(start).Seconds())
				if used := threadCPU() - cpu; cpu >= 0 && used >= 0 {
					sweepCPU.Add(used.Seconds())
				}
				if err != nil && ctx.Err() == nil {
					s.Log.Warn("sweep failed", "err", err)
				}
			}
		}
	}()
}

// Shutdown stops the sweeps (one under way is cancelled) and waits for them, or for ctx.
func (s *Sweeper) Shutdown(ctx context.Context) error {
	if s.stop == nil {
		return nil
	}
	s.stop()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sweeper: %w", ctx.Err())
	}
}

func isFailure(err error) bool {
	return !errors.Is(err, queue.ErrNotYet) && !storage.Unavailable(err)
}

// Backoff is a capped exponential retry delay with jitter: base·2ⁿ⁻¹, at most max, then a random
// point in its upper half so that retries of a burst spread out.
func Backoff(base, max time.Duration) asynq.RetryDelayFunc {
	return func(n int, _ error, _ *asynq.Task) time.Duration {
		d := base
		for i := 1; i < n && d < max; i++ {
			d *= 2
		}
		if d > max {
			d = max
		}
		half := d / 2
		return half + time.Duration(rand.Int64N(int64(half)+1))
	}
}

// logger adapts slog to asynq's Logger.
type logger struct{ l *slog.Logger }

func (l logger) Debug(args ...any) { l.l.Debug(fmt.Sprint(args...), "component", "asynq") }
func (l logger) Info(args ...any)  { l.l.Info(fmt.Sprint(args...), "component", "asynq") }
func (l logger) Warn(args ...any)  { l.l.Warn(fmt.Sprint(args...), "component", "asynq") }
func (l logger) Error(args ...any) { l.l.Error(fmt.Sprint(args...), "component", "asynq") }
func (l logger) Fatal(args ...any) {
	l.l.Error(fmt.Sprint(args...), "component", "asynq", "fatal", true)
}

// threadCPU is the CPU time of the calling thread (-1 when unknown).
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return -1
	}
	return time.Duration(ts.Nano())
}
