package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Options are the enqueue-time settings of every offload task.
type Options struct {
	Node     string
	MaxRetry int
	// Timeout bounds one attempt.
	Timeout time.Duration
	// Dedup keeps a finished task's id for this long, so a repeated hook is not uploaded twice.
	Dedup time.Duration
	// RedisTimeout, when set, bounds each dial, read and write to Redis. The enqueue's context
	// alone does not: asynq's client ignores context deadlines on reads, so without this a Redis
	// that accepts connections and never answers holds a hook for go-redis's 3 s default.
	RedisTimeout time.Duration
}

// Client enqueues tasks durably: Enqueue returns only after Redis has the task.
type Client struct {
	c    *asynq.Client
	opts Options
}

// NewClient wraps an asynq client, on any of asynq's Redis layouts.
func NewClient(redis asynq.RedisConnOpt, o Options) *Client {
	if t := o.RedisTimeout; t > 0 {
		switch r := redis.(type) {
		case asynq.RedisClientOpt:
			r.DialTimeout, r.ReadTimeout, r.WriteTimeout = t, t, t
			redis = r
		case asynq.RedisFailoverClientOpt:
			r.DialTimeout, r.ReadTimeout, r.WriteTimeout = t, t, t
			redis = r
		case asynq.RedisClusterClientOpt:
			r.DialTimeout, r.ReadTimeout, r.WriteTimeout = t, t, t
			redis = r
		}
	}
	return &Client{c: asynq.NewClient(redis), opts: o}
}

// Close closes the Redis connection.
func (c *Client) Close() error { return c.c.Close() }

// Enqueue records the offload of one file. dup is true when the same file was already enqueued
// (and is pending, running, or finished within the dedup window); that is not an error.
func (c *Client) Enqueue(ctx context.Context, p Offload) (dup bool, err error) {
	b, err := p.Encode()
	if err != nil {
		return false, err
	}
	_, err = c.c.EnqueueContext(ctx, asynq.NewTask(TypeOffload, b),
		asynq.TaskID(p.QueueID()),
		asynq.Queue(Name(p.Kind, c.opts.Node)),
		asynq.MaxRetry(c.opts.MaxRetry),
		asynq.Timeout(c.opts.Timeout),
		asynq.Retention(c.opts.Dedup),
	)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("enqueue %s: %w", p.Path, err)
	}
	return false, nil
}

// EnqueueEnd records the end of a publish session. A second one for the same session is not an
// error. It runs on the HLS queue of e.Node (default: this client's node).
func (c *Client) EnqueueEnd(ctx context.Context, e End) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	node := e.Node
	if node == "" {
		node = c.opts.Node
	}
	_, err = c.c.EnqueueContext(ctx, asynq.NewTask(TypeEnd, b),
		asynq.TaskID(e.TaskID()),
		asynq.Queue(Name(KindHLS, node)),
		asynq.MaxRetry(c.opts.MaxRetry),
		asynq.Timeout(time.Minute),
		asynq.Retention(c.opts.Dedup),
	)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("enqueue end of %s/%s/%s: %w", e.Vhost, e.App, e.Stream, err)
	}
	return nil
}

// EnqueueWarm records the warming of one stored object, once (a repeat within the dedup window
// is not an error). Warming is best effort: the handler retries a failing edge itself, a bounded
// number of times, so the task is not retried.
func (c *Client) EnqueueWarm(ctx context.Context, w Warm) error {
	b, err := json.Marshal(w)
	if err != nil {
		return err
	}
	_, err = c.c.EnqueueContext(ctx, asynq.NewTask(TypeWarm, b),
		asynq.TaskID(w.TaskID()),
		asynq.Queue(Name(KindWarm, c.opts.Node)),
		asynq.MaxRetry(0),
		asynq.Timeout(2*time.Minute),
		asynq.Retention(c.opts.Dedup),
	)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("enqueue warm %s: %w", w.Key, err)
	}
	return nil
}
