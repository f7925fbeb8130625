package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/progress"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/uploader"
)

// sentTotal reads srs_offload_sent_bytes_total{kind}.
func sentTotal(t *testing.T, kind string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "srs_offload_sent_bytes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// gatherCount is the number of series of a metric.
func gatherCount(t *testing.T, name string) int {
	t.Helper()
	n, err := testutil.GatherAndCount(prometheus.DefaultGatherer, name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// An upload above the multipart threshold, through a link throttled to 8 MiB/s, shows its bytes
// sent while it runs: in srs_offload_sent_bytes_total and in its progress record in Redis, rising
// and below the size; the record goes when the upload ends. A small file has no record.
func TestSentBytesAndProgress(t *testing.T) {
	slow := s3test.Proxy(t, s3test.Versity(t), s3test.Throttle(8<<20))
	r := newRig(t, rigConfig{s3: slow, upload: func(c *uploader.Config) {
		c.MultipartThreshold, c.PartSize = 5<<20, 5<<20
	}})
	r.off.Progress = &progress.Tracker{Redis: r.rdb, Node: node, Every: 100 * time.Millisecond}
	r.off.ProgressMin = 5 << 20
	const size = 40 << 20
	rel := "dvr/live/cam1/cam1.1795478400123.flv"
	r.writeRandom(rel, size)
	p := r.payload(queue.KindDVR, rel, "recordings/cam1.flv")
	before := sentTotal(t, queue.KindDVR)
	r.start(0)
	r.enqueue(p)

	ctx := context.Background()
	var seen []int64
	deadline := time.Now().Add(30 * time.Second)
	for r.taskInfo(p).State != asynq.TaskStateCompleted {
		if time.Now().After(deadline) {
			t.Fatalf("not uploaded in 30 s; progress seen %v", seen)
		}
		ups, err := progress.Uploads(ctx, r.rdb)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range ups {
			if u.Task != p.TaskID() || u.Key != p.Key || u.Size != size || u.Kind != queue.KindDVR || u.Path != p.Path {
				t.Fatalf("progress record %+v, want the task %s", u, p.TaskID())
			}
			if len(seen) == 0 || u.Done != seen[len(seen)-1] {
				seen = append(seen, u.Done)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	var rising, below int
	for i, d := range seen {
		if d > 0 && d < size {
			below++
		}
		if i > 0 && d > seen[i-1] {
			rising++
		}
	}
	if rising < 3 || below < 3 {
		t.Errorf("bytes done seen while uploading: %v; want at least 3 rising values below %d", seen, size)
	}
	if got := sentTotal(t, queue.KindDVR) - before; got < size {
		t.Errorf("srs_offload_sent_bytes_total{kind=dvr} grew by %v, want at least %d", got, size)
	}
	if ups, _ := progress.Uploads(ctx, r.rdb); len(ups) != 0 {
		t.Errorf("progress records left after the upload: %+v", ups)
	}
	if n := gatherCount(t, "srs_offload_upload_progress_bytes"); n != 0 {
		t.Errorf("%d srs_offload_upload_progress_bytes series left after the upload", n)
	}
	t.Logf("bytes done seen: %v", seen)
}
