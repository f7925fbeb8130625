package queue

import (
	"fmt"

	"github.com/hibiken/asynq"
)

// Requeue moves a node's archived tasks (failed for good: retries used up, or a permanent error)
// back to pending in the given kinds' queues, so its workers run them again. It returns how many
// tasks each queue got back.
func Requeue(redis asynq.RedisConnOpt, node string, kinds ...string) (map[string]int, error) {
	insp := asynq.NewInspector(redis)
	defer insp.Close()
	queues, err := insp.Queues()
	if err != nil {
		return nil, fmt.Errorf("requeue: %w", err)
	}
	exists := map[string]bool{}
	for _, q := range queues {
		exists[q] = true
	}
	out := map[string]int{}
	for _, k := range kinds {
		q := Name(k, node)
		if !exists[q] {
			out[q] = 0 // never used on this node
			continue
		}
		n, err := insp.RunAllArchivedTasks(q)
		if err != nil {
			return out, fmt.Errorf("requeue %s: %w", q, err)
		}
		out[q] = n
	}
	return out, nil
}
