// Package tasks is the operator's view of srs-offload's queued work: it lists the tasks of every
// node's queues by state, shows one, puts archived (failed-for-good) tasks back, deletes one, and
// forgets a departed node's emptied queues. Every read and change goes through asynq's Inspector;
// nothing here knows an asynq key.
package tasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/queue"
)

// States a task can be listed or requeued in.
const (
	StatePending   = "pending"
	StateActive    = "active"
	StateScheduled = "scheduled"
	StateRetry     = "retry"
	StateArchived  = "archived"
	StateCompleted = "completed"
)

// ListStates are the states List accepts.
var ListStates = []string{StateArchived, StateRetry, StatePending, StateScheduled, StateActive, StateCompleted}

// Kinds are the queue kinds of srs-offload (queue.Name(kind, node)).
var Kinds = []string{queue.KindHLS, queue.KindDVR, queue.KindWarm, queue.KindPost}

// Filter selects queues: by kind (empty: every kind) and node (empty: every node).
type Filter struct {
	Kinds []string
	Node  string
}

// Task is one task as an operator reads it.
type Task struct {
	ID    string `json:"id"`
	Queue string `json:"queue"`
	Node  string `json:"node"`
	Kind  string `json:"kind"`
	Type  string `json:"type"`
	State string `json:"state"`
	// Path and Key are the file and object key of an offload (Key also of a warm task); Stream
	// names the stream of a session end (vhost/app/stream).
	Path   string `json:"path,omitempty"`
	Key    string `json:"key,omitempty"`
	Stream string `json:"stream,omitempty"`
	Bytes  int64  `json:"bytes,omitempty"`

	Retried       int       `json:"retried"`
	MaxRetry      int       `json:"max_retry"`
	LastErr       string    `json:"last_error,omitempty"`
	LastFailedAt  time.Time `json:"last_failed_at,omitzero"`
	NextProcessAt time.Time `json:"next_process_at,omitzero"`
	CompletedAt   time.Time `json:"completed_at,omitzero"`
	// Payload is the task's payload as stored (JSON).
	Payload json.RawMessage `json:"payload,omitempty"`
}

// ErrNotFound means no queue of the filter holds a task with that id.
var ErrNotFound = errors.New("no such task")

// Manager reads and changes the queues through an asynq Inspector.
type Manager struct {
	insp *asynq.Inspector
}

// New connects to the Redis holding the queues.
func New(redis asynq.RedisConnOpt) *Manager { return &Manager{insp: asynq.NewInspector(redis)} }

// Close closes the connection.
func (m *Manager) Close() error { return m.insp.Close() }

// splitQueue reads kind@node; ok is false for a queue that is not srs-offload's.
func splitQueue(q string) (kind, node string, ok bool) {
	kind, node, ok = strings.Cut(q, "@")
	return kind, node, ok && slices.Contains(Kinds, kind)
}

// Queues returns the existing queues the filter selects, sorted.
func (m *Manager) Queues(f Filter) ([]string, error) {
	all, err := m.insp.Queues()
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	var out []string
	for _, q := range all {
		kind, node, ok := splitQueue(q)
		if !ok || (f.Node != "" && node != f.Node) || (len(f.Kinds) > 0 && !slices.Contains(f.Kinds, kind)) {
			continue
		}
		out = append(out, q)
	}
	sort.Strings(out)
	return out, nil
}

// CheckState reports an unknown state, naming the known ones.
func CheckState(s string, allowed []string) error {
	if !slices.Contains(allowed, s) {
		return fmt.Errorf("state %q: want one of %s", s, strings.Join(allowed, ", "))
	}
	return nil
}

// pageSize is how many tasks one Inspector call lists.
const pageSize = 500

// List returns the tasks in state of the selected queues, at most limit (0: all), by queue.
func (m *Manager) List(f Filter, state string, limit int) ([]Task, error) {
	if err := CheckState(state, ListStates); err != nil {
		return nil, err
	}
	queues, err := m.Queues(f)
	if err != nil {
		return nil, err
	}
	var out []Task
	for _, q := range queues {
		for page := 1; ; page++ {
			infos, err := m.list(q, state, page)
			if err != nil {
				return out, fmt.Errorf("list %s tasks of %s: %w", state, q, err)
			}
			for _, ti := range infos {
				out = append(out, taskOf(ti))
				if limit > 0 && len(out) >= limit {
					return out, nil
				}
			}
			if len(infos) < pageSize {
				break
			}
		}
	}
	return out, nil
}

func (m *Manager) list(q, state string, page int) ([]*asynq.TaskInfo, error) {
	opts := []asynq.ListOption{asynq.PageSize(pageSize), asynq.Page(page)}
	switch state {
	case StatePending:
		return m.insp.ListPendingTasks(q, opts...)
	case StateActive:
		return m.insp.ListActiveTasks(q, opts...)
	case StateScheduled:
		return m.insp.ListScheduledTasks(q, opts...)
	case StateRetry:
		return m.insp.ListRetryTasks(q, opts...)
	case StateArchived:
		return m.insp.ListArchivedTasks(q, opts...)
	case StateCompleted:
		return m.insp.ListCompletedTasks(q, opts...)
	}
	return nil, fmt.Errorf("state %q", state)
}

// Show finds the task with id in the selected queues. The same id can be in the queues of two
// nodes (the file of a node that was renamed): then the filter must name the node.
func (m *Manager) Show(f Filter, id string) (Task, error) {
	queues, err := m.Queues(f)
	if err != nil {
		return Task{}, err
	}
	var found []Task
	for _, q := range queues {
		ti, err := m.insp.GetTaskInfo(q, id)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		if err != nil {
			return Task{}, fmt.Errorf("task %s in %s: %w", id, q, err)
		}
		found = append(found, taskOf(ti))
	}
	switch len(found) {
	case 0:
		return Task{}, fmt.Errorf("task %s: %w in %s", id, ErrNotFound, describe(queues))
	case 1:
		return found[0], nil
	}
	var names []string
	for _, t := range found {
		names = append(names, t.Queue)
	}
	return Task{}, fmt.Errorf("task %s is in several queues (%s): name its node with --node", id, strings.Join(names, ", "))
}

func describe(queues []string) string {
	if len(queues) == 0 {
		return "any queue (there is none)"
	}
	return "queues " + strings.Join(queues, ", ")
}

// Requeue moves one archived, retry or scheduled task to pending, so a worker of its node runs it
// now; with dryRun it only checks that it could. It returns the task as it was.
func (m *Manager) Requeue(f Filter, id string, dryRun bool) (Task, error) {
	t, err := m.Show(f, id)
	if err != nil {
		return t, err
	}
	switch t.State {
	case StateArchived, StateRetry, StateScheduled:
	default:
		return t, fmt.Errorf("task %s in %s is %s: only archived, retry or scheduled tasks can be requeued", id, t.Queue, t.State)
	}
	if dryRun {
		return t, nil
	}
	if err := m.insp.RunTask(t.Queue, id); err != nil {
		return t, fmt.Errorf("requeue %s in %s: %w", id, t.Queue, err)
	}
	return t, nil
}

// RequeueAll moves every task in state (archived, retry or scheduled) of the selected queues to
// pending. With dryRun it changes nothing and returns the tasks it would move. It returns how
// many tasks each selected queue got back.
func (m *Manager) RequeueAll(f Filter, state string, dryRun bool) (map[string]int, []Task, error) {
	if err := CheckState(state, []string{StateArchived, StateRetry, StateScheduled}); err != nil {
		return nil, nil, err
	}
	queues, err := m.Queues(f)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]int{}
	var would []Task
	for _, q := range queues {
		if dryRun {
			ts, err := m.List(Filter{Node: nodeOf(q), Kinds: []string{kindOf(q)}}, state, 0)
			if err != nil {
				return out, would, err
			}
			would = append(would, ts...)
			out[q] = len(ts)
			continue
		}
		var n int
		switch state {
		case StateArchived:
			n, err = m.insp.RunAllArchivedTasks(q)
		case StateRetry:
			n, err = m.insp.RunAllRetryTasks(q)
		case StateScheduled:
			n, err = m.insp.RunAllScheduledTasks(q)
		}
		if err != nil {
			return out, would, fmt.Errorf("requeue %s tasks of %s: %w", state, q, err)
		}
		out[q] = n
	}
	return out, would, nil
}

// Delete removes one task that is not running (pending, scheduled, retry or archived; a
// completed task's dedup record too). Its file, if any, stays on disk: the reconciler enqueues it
// again once the task id is free.
func (m *Manager) Delete(f Filter, id string) (Task, error) {
	t, err := m.Show(f, id)
	if err != nil {
		return t, err
	}
	if t.State == StateActive {
		return t, fmt.Errorf("task %s in %s is running: it cannot be deleted now", id, t.Queue)
	}
	if err := m.insp.DeleteTask(t.Queue, id); err != nil {
		return t, fmt.Errorf("delete %s in %s: %w", id, t.Queue, err)
	}
	return t, nil
}

func kindOf(q string) string { k, _, _ := splitQueue(q); return k }
func nodeOf(q string) string { _, n, _ := splitQueue(q); return n }

// taskOf reads an asynq task, decoding srs-offload's payloads.
func taskOf(ti *asynq.TaskInfo) Task {
	kind, node, _ := splitQueue(ti.Queue)
	t := Task{
		ID: ti.ID, Queue: ti.Queue, Node: node, Kind: kind, Type: ti.Type, State: ti.State.String(),
		Retried: ti.Retried, MaxRetry: ti.MaxRetry, LastErr: ti.LastErr, LastFailedAt: ti.LastFailedAt,
		NextProcessAt: ti.NextProcessAt, CompletedAt: ti.CompletedAt,
	}
	if json.Valid(ti.Payload) {
		t.Payload = json.RawMessage(ti.Payload)
	}
	switch ti.Type {
	case queue.TypeOffload:
		if p, err := queue.DecodeOffload(ti.Payload); err == nil {
			t.Path, t.Key, t.Bytes = p.Path, p.Key, p.File.Size
		}
	case queue.TypeEnd:
		if e, err := queue.DecodeEnd(ti.Payload); err == nil {
			t.Stream = e.Vhost + "/" + e.App + "/" + e.Stream
		}
	case queue.TypeWarm:
		var w queue.Warm
		if json.Unmarshal(ti.Payload, &w) == nil {
			t.Key = w.Key
		}
	default:
		if k, ok := queue.PostKey(ti.Type, ti.Payload); ok {
			t.Key = k
		}
	}
	return t
}
