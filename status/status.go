// Package status gathers what `srs-offload status` shows, from Redis alone (so it runs on any
// host that reaches it): every node's queues through asynq's Inspector, the disk backlog and the
// uploads in flight each node publishes (package progress), the last errors of failed tasks, and
// the live streams of the playlist ledger. It renders them as text or JSON.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/progress"
	"github.com/srs-offload/srs-offload/queue"
)

// Report is one look at the whole installation.
type Report struct {
	Time    time.Time `json:"time"`
	Queues  []Queue   `json:"queues"`
	Disk    []Disk    `json:"disk"`
	Uploads []Upload  `json:"uploads"`
	Errors  []Error   `json:"errors"`
	Streams []Stream  `json:"streams"`
}

// Queue is one queue of one node.
type Queue struct {
	Node      string `json:"node"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Pending   int    `json:"pending"`
	Active    int    `json:"active"`
	Scheduled int    `json:"scheduled"`
	Retry     int    `json:"retry"`
	Archived  int    `json:"archived"`
	// Completed tasks are kept for worker.dedup; they are no backlog.
	Completed int `json:"completed"`
	// OldestPending is the age of the oldest pending task, in seconds (0 when none).
	OldestPending float64 `json:"oldest_pending_seconds"`
	Paused        bool    `json:"paused,omitempty"`
}

// Disk is the disk backlog one node published: the files its spool folders hold.
type Disk struct {
	Node  string `json:"node"`
	Files int64  `json:"files"`
	Bytes int64  `json:"bytes"`
	// Oldest is the age of the oldest file held, in seconds (0 when none).
	Oldest float64 `json:"oldest_seconds"`
	// Age is how long ago the node published it, in seconds.
	Age float64 `json:"age_seconds"`
}

// Upload is an upload in flight (above the multipart threshold).
type Upload struct {
	Node string `json:"node"`
	Task string `json:"task"`
	Kind string `json:"kind"`
	Path string `json:"path"`
	Key  string `json:"key"`
	Size int64  `json:"size"`
	Done int64  `json:"done"`
	// Rate is bytes per second over the last few seconds.
	Rate float64 `json:"rate"`
	// ETA is the time left at Rate, in seconds (-1 when unknown).
	ETA     float64   `json:"eta_seconds"`
	Started time.Time `json:"started"`
}

// Error is a task that failed: for good (archived) or to be tried again (retry).
type Error struct {
	Node     string    `json:"node"`
	Queue    string    `json:"queue"`
	State    string    `json:"state"`
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Path     string    `json:"path,omitempty"`
	Key      string    `json:"key,omitempty"`
	Err      string    `json:"error"`
	FailedAt time.Time `json:"failed_at,omitzero"`
	Retried  int       `json:"retried"`
}

// Stream is a live stream of the playlist ledger.
type Stream = playlist.Live

// Options say what to gather.
type Options struct {
	// Errors is how many of the last errors to list (0: none).
	Errors int
}

// Gather reads the report from Redis. insp reads asynq's queues, rdb our records.
func Gather(ctx context.Context, insp *asynq.Inspector, rdb redis.UniversalClient, o Options) (Report, error) {
	now := time.Now()
	r := Report{Time: now, Queues: []Queue{}, Disk: []Disk{}, Uploads: []Upload{}, Errors: []Error{}, Streams: []Stream{}}
	names, err := insp.Queues()
	if err != nil {
		return r, fmt.Errorf("asynq queues: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		kind, node, ok := strings.Cut(name, "@")
		if !ok {
			continue // not one of ours
		}
		qi, err := insp.GetQueueInfo(name)
		if err != nil {
			return r, fmt.Errorf("asynq queue %s: %w", name, err)
		}
		q := Queue{Node: node, Kind: kind, Name: name, Pending: qi.Pending, Active: qi.Active, Scheduled: qi.Scheduled,
			Retry: qi.Retry, Archived: qi.Archived, Completed: qi.Completed, Paused: qi.Paused}
		if qi.Pending > 0 {
			q.OldestPending = qi.Latency.Seconds()
		}
		r.Queues = append(r.Queues, q)
		if o.Errors > 0 {
			errs, err := failed(insp, q, o.Errors)
			if err != nil {
				return r, err
			}
			r.Errors = append(r.Errors, errs...)
		}
	}
	sort.SliceStable(r.Queues, func(i, j int) bool {
		if r.Queues[i].Node != r.Queues[j].Node {
			return r.Queues[i].Node < r.Queues[j].Node
		}
		return kindOrder(r.Queues[i].Kind) < kindOrder(r.Queues[j].Kind)
	})
	sort.SliceStable(r.Errors, func(i, j int) bool { return r.Errors[i].FailedAt.After(r.Errors[j].FailedAt) })
	if len(r.Errors) > o.Errors {
		r.Errors = r.Errors[:o.Errors]
	}

	disks, err := progress.Disks(ctx, rdb)
	if err != nil {
		return r, fmt.Errorf("disk backlog records: %w", err)
	}
	for _, d := range disks {
		x := Disk{Node: d.Node, Files: d.Files, Bytes: d.Bytes, Age: max(now.Sub(d.Updated).Seconds(), 0)}
		if !d.Oldest.IsZero() {
			x.Oldest = max(now.Sub(d.Oldest).Seconds(), 0)
		}
		r.Disk = append(r.Disk, x)
	}
	sort.Slice(r.Disk, func(i, j int) bool { return r.Disk[i].Node < r.Disk[j].Node })

	ups, err := progress.Uploads(ctx, rdb)
	if err != nil {
		return r, fmt.Errorf("upload progress records: %w", err)
	}
	for _, u := range ups {
		x := Upload{Node: u.Node, Task: u.Task, Kind: u.Kind, Path: u.Path, Key: u.Key, Size: u.Size, Done: u.Done,
			Rate: u.Rate, ETA: -1, Started: u.Started}
		if u.Rate > 0 {
			x.ETA = float64(u.Size-u.Done) / u.Rate
		}
		r.Uploads = append(r.Uploads, x)
	}
	sort.Slice(r.Uploads, func(i, j int) bool { return r.Uploads[i].Started.Before(r.Uploads[j].Started) })

	streams, err := playlist.New(rdb, playlist.Settings{}).Live(ctx)
	if err != nil {
		return r, fmt.Errorf("playlist ledger: %w", err)
	}
	r.Streams = append(r.Streams, streams...)
	return r, nil
}

func kindOrder(k string) int {
	switch k {
	case queue.KindHLS:
		return 0
	case queue.KindDVR:
		return 1
	case queue.KindWarm:
		return 2
	}
	return 3
}

// failed lists up to n of a queue's archived and retry tasks with their last error.
func failed(insp *asynq.Inspector, q Queue, n int) ([]Error, error) {
	var out []Error
	for _, state := range []string{"archived", "retry"} {
		if (state == "archived" && q.Archived == 0) || (state == "retry" && q.Retry == 0) {
			continue
		}
		var tasks []*asynq.TaskInfo
		var err error
		if state == "archived" {
			tasks, err = insp.ListArchivedTasks(q.Name, asynq.PageSize(n))
		} else {
			tasks, err = insp.ListRetryTasks(q.Name, asynq.PageSize(n))
		}
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			return nil, fmt.Errorf("asynq %s tasks of %s: %w", state, q.Name, err)
		}
		for _, t := range tasks {
			e := Error{Node: q.Node, Queue: q.Name, State: state, ID: t.ID, Type: t.Type, Err: t.LastErr,
				FailedAt: t.LastFailedAt, Retried: t.Retried}
			switch t.Type {
			case queue.TypeOffload:
				if p, err := queue.DecodeOffload(t.Payload); err == nil {
					e.Path, e.Key = p.Path, p.Key
				}
			case queue.TypeWarm:
				var w queue.Warm
				if json.Unmarshal(t.Payload, &w) == nil {
					e.Key = w.Key
				}
			case queue.TypeEnd:
				if en, err := queue.DecodeEnd(t.Payload); err == nil {
					e.Key = en.PlaylistKey
					if e.Key == "" {
						e.Key = en.Vhost + "/" + en.App + "/" + en.Stream
					}
				}
			default:
				if k, ok := queue.PostKey(t.Type, t.Payload); ok {
					e.Key = k
				}
			}
			out = append(out, e)
		}
	}
	return out, nil
}
