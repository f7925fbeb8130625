package postproc

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	postTasks = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "srs_offload_post_tasks_total",
		Help: "Post-processing task attempts by type (post:stored, post:webhook, post:derive, post:session_mp4) and outcome (ok, retry, permanent).",
	}, []string{"type", "outcome"})
	postSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "srs_offload_post_seconds",
		Help:    "Time of one post-processing attempt (a delivery, a remux with its download and upload).",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 20),
	}, []string{"type"})
)

// measured counts every attempt of a post task by its outcome.
func measured(h asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		t0 := time.Now()
		err := h.ProcessTask(ctx, t)
		postSeconds.WithLabelValues(t.Type()).Observe(time.Since(t0).Seconds())
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		outcome := "ok"
		switch {
		case err == nil:
		case errors.Is(err, asynq.SkipRetry) || retried >= maxRetry:
			outcome = "permanent"
		default:
			outcome = "retry"
		}
		postTasks.WithLabelValues(t.Type(), outcome).Inc()
		return err
	})
}
