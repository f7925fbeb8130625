package tasks

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hibiken/asynq"
)

// ErrNotEmpty means a node still has work in its queues, or a running worker: its queues are
// kept.
var ErrNotEmpty = errors.New("node still has work")

// ForgetNode drops the queues of a node that is gone (a host taken out, a container recreated
// under another name), so that they disappear from every process's metrics (asynq's collector
// lists every queue). It refuses, naming what is left, while a worker of the node runs or any of
// its queues holds a pending, running, scheduled, retry or archived task: those tasks are files
// on that node's disk, to be run there, requeued elsewhere or deleted first. Completed tasks
// (kept for worker.dedup) do not hold a queue back; they go with it. It returns the queues
// dropped.
func (m *Manager) ForgetNode(node string) ([]string, error) {
	if node == "" {
		return nil, errors.New("forget-node: no node named")
	}
	servers, err := m.insp.Servers()
	if err != nil {
		return nil, fmt.Errorf("forget-node %s: list workers: %w", node, err)
	}
	for _, s := range servers {
		for q := range s.Queues {
			if nodeOf(q) == node {
				return nil, fmt.Errorf("forget-node %s: %w: a worker of it is running (host %s, pid %d, since %s); stop it first",
					node, ErrNotEmpty, s.Host, s.PID, s.Started.UTC().Format("2006-01-02 15:04:05Z"))
			}
		}
	}
	queues, err := m.Queues(Filter{Node: node})
	if err != nil {
		return nil, err
	}
	if len(queues) == 0 {
		return nil, fmt.Errorf("forget-node %s: no queue of this node exists", node)
	}
	var left []string
	for _, q := range queues {
		qi, err := m.insp.GetQueueInfo(q)
		if err != nil {
			return nil, fmt.Errorf("forget-node %s: %s: %w", node, q, err)
		}
		if l := leftIn(qi); l != "" {
			left = append(left, q+": "+l)
		}
	}
	if len(left) > 0 {
		return nil, fmt.Errorf("forget-node %s: %w: %s (run a worker with node %q, or `tasks requeue`/`tasks delete` them first)",
			node, ErrNotEmpty, strings.Join(left, "; "), node)
	}
	var dropped []string
	for _, q := range queues {
		if _, err := m.insp.DeleteAllCompletedTasks(q); err != nil {
			return dropped, fmt.Errorf("forget-node %s: completed tasks of %s: %w", node, q, err)
		}
		// Not forced: a task enqueued meanwhile keeps the queue.
		if err := m.insp.DeleteQueue(q, false); err != nil {
			if errors.Is(err, asynq.ErrQueueNotEmpty) {
				return dropped, fmt.Errorf("forget-node %s: %w: %s got a task meanwhile", node, ErrNotEmpty, q)
			}
			if !errors.Is(err, asynq.ErrQueueNotFound) {
				return dropped, fmt.Errorf("forget-node %s: drop %s: %w", node, q, err)
			}
		}
		dropped = append(dropped, q)
	}
	slices.Sort(dropped)
	return dropped, nil
}

// leftIn names the tasks a queue still holds, "" when none.
func leftIn(qi *asynq.QueueInfo) string {
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{{qi.Pending, "pending"}, {qi.Active, "running"}, {qi.Scheduled, "scheduled"}, {qi.Retry, "retry"},
		{qi.Archived, "archived"}, {qi.Aggregating, "aggregating"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	return strings.Join(parts, ", ")
}
