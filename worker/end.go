package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/queue"
)

// Ender finishes publish sessions (see playlist.Manager.End).
type Ender interface {
	End(ctx context.Context, e queue.End) error
}

// endHandler handles TypeEnd tasks. An end whose segments are still in flight returns
// playlist.ErrNotYet and is tried again a second later without counting as a failure.
type endHandler struct{ ender Ender }

func (h endHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	e, err := queue.DecodeEnd(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return h.ender.End(ctx, e)
}

// Warmer warms CDN edges with one stored object (see package warm).
type Warmer interface {
	Warm(ctx context.Context, key string)
}

// warmHandler handles TypeWarm tasks.
type warmHandler struct{ warmer Warmer }

func (h warmHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var w queue.Warm
	err := json.Unmarshal(t.Payload(), &w)
	if err == nil && w.Key == "" {
		err = errors.New("no key")
	}
	if err != nil {
		return fmt.Errorf("warm payload %q: %w: %w", t.Payload(), err, asynq.SkipRetry)
	}
	h.warmer.Warm(ctx, w.Key)
	return nil
}
