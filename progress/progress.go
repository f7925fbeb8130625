// Package progress publishes what a node is doing right now, for `srs-offload status` on any
// host and for Prometheus: the bytes sent of each upload in flight above the multipart threshold,
// and the node's disk backlog. Each record is a Redis STRING (keys named in package rdb) with a
// TTL, rewritten while it is true, so a process that dies stops being shown within the TTL.
package progress

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/rdb"
)

var (
	sentGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "srs_offload_upload_progress_bytes",
		Help: "Bytes sent so far of each upload in flight above the multipart threshold, by kind and object key (the series goes when the upload ends).",
	}, []string{"kind", "key"})
	sizeGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "srs_offload_upload_size_bytes",
		Help: "Size of each upload in flight above the multipart threshold, by kind and object key (the series goes when the upload ends).",
	}, []string{"kind", "key"})
)

// Upload is the progress record of one upload in flight.
type Upload struct {
	Node    string    `json:"node"`
	Task    string    `json:"task"`
	Kind    string    `json:"kind"`
	Path    string    `json:"path"`
	Key     string    `json:"key"`
	Size    int64     `json:"size"`
	Done    int64     `json:"done"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	// Rate is the bytes per second sent over the last few seconds.
	Rate float64 `json:"rate"`
}

// Tracker writes the progress records of one node's uploads.
type Tracker struct {
	Redis redis.UniversalClient
	Node  string
	// Every is how often a record is rewritten (default 1 s); it expires after 5 × Every.
	Every time.Duration
	Log   *slog.Logger
}

// Run is one tracked upload. Sent may be called from any goroutine.
type Run struct {
	t    *Tracker
	rec  Upload
	done atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

func (t *Tracker) every() time.Duration {
	if t.Every <= 0 {
		return time.Second
	}
	return t.Every
}

// Start begins tracking the upload of task (size bytes of path to key) until End.
func (t *Tracker) Start(task, kind, path, key string, size int64) *Run {
	now := time.Now()
	r := &Run{t: t, stop: make(chan struct{}),
		rec: Upload{Node: t.Node, Task: task, Kind: kind, Path: path, Key: key, Size: size, Started: now}}
	sizeGauge.WithLabelValues(kind, key).Set(float64(size))
	sentGauge.WithLabelValues(kind, key).Set(0)
	r.wg.Add(1)
	go r.loop()
	return r
}

// Sent counts n more bytes sent. A part sent again after an error counts again, but Done never
// passes the size.
func (r *Run) Sent(n int64) { r.done.Add(n) }

func (r *Run) doneBytes() int64 { return min(r.done.Load(), r.rec.Size) }

func (r *Run) loop() {
	defer r.wg.Done()
	every := r.t.every()
	tk := time.NewTicker(every)
	defer tk.Stop()
	last, lastAt := int64(0), r.rec.Started
	for {
		now := time.Now()
		d := r.doneBytes()
		if dt := now.Sub(lastAt).Seconds(); dt > 0 {
			inst := float64(d-last) / dt
			if r.rec.Rate == 0 {
				r.rec.Rate = inst
			} else {
				r.rec.Rate = 0.5*r.rec.Rate + 0.5*inst
			}
		}
		last, lastAt = d, now
		r.rec.Done, r.rec.Updated = d, now
		sentGauge.WithLabelValues(r.rec.Kind, r.rec.Key).Set(float64(d))
		r.write(5 * every)
		select {
		case <-r.stop:
			return
		case <-tk.C:
		}
	}
}

func (r *Run) write(ttl time.Duration) {
	b, _ := json.Marshal(r.rec)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := r.t.Redis.Set(ctx, rdb.Progress(r.rec.Node, r.rec.Task), b, ttl).Err(); err != nil && r.t.Log != nil {
		r.t.Log.Debug("progress: could not write the record of an upload", "key", r.rec.Key, "err", err)
	}
}

// End stops tracking: the record and the gauges go.
func (r *Run) End() {
	close(r.stop)
	r.wg.Wait()
	sentGauge.DeleteLabelValues(r.rec.Kind, r.rec.Key)
	sizeGauge.DeleteLabelValues(r.rec.Kind, r.rec.Key)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r.t.Redis.Del(ctx, rdb.Progress(r.rec.Node, r.rec.Task))
}

// Uploads reads every node's uploads in flight.
func Uploads(ctx context.Context, c redis.UniversalClient) ([]Upload, error) {
	var out []Upload
	err := scanJSON(ctx, c, rdb.ProgressMatch, func(b []byte) error {
		var u Upload
		if err := json.Unmarshal(b, &u); err != nil {
			return err
		}
		out = append(out, u)
		return nil
	})
	return out, err
}

// Disk is the disk backlog of one node: the files held in its spool folders.
type Disk struct {
	Node  string `json:"node"`
	Files int64  `json:"files"`
	Bytes int64  `json:"bytes"`
	// Oldest is the modification time of the oldest file held (zero when none).
	Oldest  time.Time `json:"oldest,omitzero"`
	Updated time.Time `json:"updated"`
}

// PublishDisk writes a node's disk backlog, to expire after ttl.
func PublishDisk(ctx context.Context, c redis.UniversalClient, d Disk, ttl time.Duration) error {
	b, _ := json.Marshal(d)
	return c.Set(ctx, rdb.Disk(d.Node), b, ttl).Err()
}

// Disks reads every node's disk backlog.
func Disks(ctx context.Context, c redis.UniversalClient) ([]Disk, error) {
	var out []Disk
	err := scanJSON(ctx, c, rdb.DiskMatch, func(b []byte) error {
		var d Disk
		if err := json.Unmarshal(b, &d); err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

// scanJSON calls f with the value of every key matching match (a key gone meanwhile is skipped).
func scanJSON(ctx context.Context, c redis.UniversalClient, match string, f func([]byte) error) error {
	it := c.Scan(ctx, 0, match, 200).Iterator()
	var keys []string
	for it.Next(ctx) {
		keys = append(keys, it.Val())
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, k := range keys {
		b, err := c.Get(ctx, k).Bytes()
		if err == redis.Nil {
			continue
		}
		if err != nil {
			return err
		}
		if err := f(b); err != nil {
			return err
		}
	}
	return nil
}
