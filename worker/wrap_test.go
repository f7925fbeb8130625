package worker

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/queue"
)

// A task that can never succeed is archived at once (asynq.SkipRetry), and its error still says
// why: both are in the chain, for errors.Is and errors.As.
func TestSkipRetryKeepsTheCause(t *testing.T) {
	bad := []byte("{not json")
	for name, h := range map[string]asynq.Handler{
		"offload": &Offloader{},
		"end":     endHandler{},
		"warm":    warmHandler{},
	} {
		err := h.ProcessTask(context.Background(), asynq.NewTask(name, bad))
		var syntax *json.SyntaxError
		if !errors.Is(err, asynq.SkipRetry) || !errors.As(err, &syntax) {
			t.Errorf("%s: %v: want asynq.SkipRetry and the *json.SyntaxError", name, err)
		}
	}
	err := warmHandler{}.ProcessTask(context.Background(), asynq.NewTask(queue.TypeWarm, []byte(`{}`)))
	if !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("warm task without key: %v: want asynq.SkipRetry", err)
	}
}
