package postproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/storage"
	"github.com/srs-offload/srs-offload/webhook"
	"github.com/srs-offload/srs-offload/worker"
)

// Options configure the post queue's server.
type Options struct {
	Node string
	// Concurrency is how many post tasks run at once, apart from the uploads' worker.concurrency.
	Concurrency         int
	RetryBase, RetryMax time.Duration
	ShutdownTimeout     time.Duration
	PollInterval        time.Duration
	Log                 *slog.Logger
}

// Server runs the stage's handlers on the node's post queue: an asynq server of its own, so its
// slots are not the uploads' and a hung ffmpeg never holds back an offload.
type Server struct {
	srv *asynq.Server
	mux *asynq.ServeMux
}

// NewServer builds the post queue's server for s.
func NewServer(redis asynq.RedisConnOpt, o Options, s *Stage) *Server {
	mux := asynq.NewServeMux()
	mux.Use(measured)
	mux.HandleFunc(queue.TypeStored, func(ctx context.Context, t *asynq.Task) error {
		var st queue.Stored
		if err := decode(t, &st); err != nil {
			return err
		}
		return s.stored(ctx, st)
	})
	mux.HandleFunc(queue.TypeWebhook, func(ctx context.Context, t *asynq.Task) error {
		var w queue.Webhook
		if err := decode(t, &w); err != nil {
			return err
		}
		var ev struct {
			Event string `json:"event"`
		}
		if err := json.Unmarshal(w.Body, &ev); err != nil {
			return fmt.Errorf("webhook body: %w: %w", err, asynq.SkipRetry)
		}
		return s.deliver(ctx, w, ev.Event)
	})
	mux.HandleFunc(queue.TypeDerive, func(ctx context.Context, t *asynq.Task) error {
		var st queue.Stored
		if err := decode(t, &st); err != nil {
			return err
		}
		if s.Derived == nil {
			return nil
		}
		return s.derive(ctx, st)
	})
	mux.HandleFunc(queue.TypeSessionMP4, func(ctx context.Context, t *asynq.Task) error {
		var st queue.Stored
		if err := decode(t, &st); err != nil {
			return err
		}
		if s.Derived == nil || (!s.Derived.SessionMP4 && !s.Derived.Poster) {
			return nil
		}
		return s.sessionMP4(ctx, st)
	})
	conc := o.Concurrency
	if conc < 1 {
		conc = 1
	}
	srv := asynq.NewServer(redis, asynq.Config{
		Concurrency:    conc,
		Queues:         map[string]int{queue.Name(queue.KindPost, o.Node): 1},
		RetryDelayFunc: retryDelay(o.RetryBase, o.RetryMax),
		// Storage being away says nothing about the task: it does not use up its retries (a
		// receiver that is down does).
		IsFailure:                func(err error) bool { return !storage.Unavailable(err) },
		ShutdownTimeout:          o.ShutdownTimeout,
		TaskCheckInterval:        o.PollInterval,
		DelayedTaskCheckInterval: time.Second,
		Logger:                   logger{o.Log},
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			retried, _ := asynq.GetRetryCount(ctx)
			maxRetry, _ := asynq.GetMaxRetry(ctx)
			id, _ := asynq.GetTaskID(ctx)
			o.Log.Warn("post task failed", "type", t.Type(), "id", id, "retried", retried, "max_retry", maxRetry, "err", err)
		}),
	})
	return &Server{srv: srv, mux: mux}
}

// retryDelay is the worker's capped backoff, or longer when a webhook receiver asked for it with
// Retry-After (capped at max too).
func retryDelay(base, max time.Duration) asynq.RetryDelayFunc {
	backoff := worker.Backoff(base, max)
	return func(n int, err error, t *asynq.Task) time.Duration {
		d := backoff(n, err, t)
		var ra *webhook.RetryAfterError
		if errors.As(err, &ra) && ra.Wait > d {
			d = min(ra.Wait, max)
		}
		return d
	}
}

func decode(t *asynq.Task, v any) error {
	if err := json.Unmarshal(t.Payload(), v); err != nil {
		return fmt.Errorf("%s payload: %w: %w", t.Type(), err, asynq.SkipRetry)
	}
	return nil
}

// Start begins processing in the background.
func (s *Server) Start() error { return s.srv.Start(s.mux) }

// Shutdown stops taking tasks and waits for the running ones (up to ShutdownTimeout; the rest go
// back to the queue), or for ctx.
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
		return fmt.Errorf("post: tasks still running at the shutdown deadline: %w", ctx.Err())
	}
}

// logger adapts slog to asynq's Logger.
type logger struct{ l *slog.Logger }

func (l logger) Debug(args ...any) { l.l.Debug(fmt.Sprint(args...), "component", "asynq-post") }
func (l logger) Info(args ...any)  { l.l.Info(fmt.Sprint(args...), "component", "asynq-post") }
func (l logger) Warn(args ...any)  { l.l.Warn(fmt.Sprint(args...), "component", "asynq-post") }
func (l logger) Error(args ...any) { l.l.Error(fmt.Sprint(args...), "component", "asynq-post") }
func (l logger) Fatal(args ...any) {
	l.l.Error(fmt.Sprint(args...), "component", "asynq-post", "fatal", true)
}
