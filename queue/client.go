package queue

import (
	"context"
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
}

// Client enqueues tasks durably: Enqueue returns only after Redis has the task.
type Client struct {
	c    *asynq.Client
	opts Options
}

// NewClient wraps an asynq client.
func NewClient(redis asynq.RedisConnOpt, o Options) *Client {
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
		asynq.TaskID(p.TaskID()),
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
