package worker_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/tasks"
	"github.com/srs-offload/srs-offload/worker"
)

// A task archived on its node (retries used up) whose file was stored meanwhile by another task
// of the same file (the reconciler's, here on the queue of the node's new name, as a recreated
// container gets): requeued with `tasks requeue ID`, it completes at once instead of failing
// "deleted before it was uploaded". The worker finds its file gone, checks in the bucket that
// the object there is this file's verified upload, and completes; the object is not written
// again and nothing local is touched.
func TestRequeuedStoredTaskCompletes(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{})
	sp := r.withSpool()
	rel := "live/cam1/2026/11/23/22/cam1-7.ts"
	want := r.writeRandom(rel, 300<<10)
	r.write("live/cam1/index.m3u8", playlistText([]string{rel}))
	p := r.hls(rel, rel, "live/cam1/index.m3u8", "live/cam1/index.m3u8")
	r.take(sp, p.Path)
	r.enqueue(p)
	if err := r.insp.ArchiveTask(queue.Name(p.Kind, node), p.QueueID()); err != nil {
		t.Fatal(err)
	}

	// The reconciler of the node's new name finds the file (spooled, under SRS's name) and
	// enqueues it as a hook would have, without the hook's playlist fields; that node's worker
	// stores, verifies and purges it.
	const renamed = "test-new"
	found := queue.Offload{Kind: p.Kind, Path: p.Path, Key: p.Key, File: p.File, Vhost: p.Vhost, App: p.App, Stream: p.Stream}
	qc := queue.NewClient(r.redisOpt, queue.Options{Node: renamed, MaxRetry: 3, Timeout: time.Minute, Dedup: time.Hour})
	defer qc.Close()
	if dup, err := qc.Enqueue(context.Background(), found); err != nil || dup {
		t.Fatalf("reconciler enqueue: %v %v", dup, err)
	}
	o := r.opts
	o.Node = renamed
	srv := worker.NewServer(r.redisOpt, o, r.off)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ti, err := r.insp.GetTaskInfo(queue.Name(p.Kind, renamed), found.QueueID())
		if err == nil && ti.State == asynq.TaskStateCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reconciler's task: %+v %v", ti, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.Shutdown(context.Background())
	r.stored(p.Key, want)
	gone(t, p.Path)
	if left := r.spooled(); len(left) != 0 {
		t.Fatalf("spool holds %v after the upload", left)
	}
	before := r.head(p.Key)

	m := tasks.New(r.redisOpt)
	defer m.Close()
	got, err := m.Requeue(tasks.Filter{Node: node}, p.QueueID(), false)
	if err != nil || got.State != tasks.StateArchived {
		t.Fatalf("requeue: %+v %v", got, err)
	}
	r.start(0)
	ti := r.wait(p, asynq.TaskStateCompleted, 10*time.Second)
	if ti.Retried != 0 || ti.LastErr != "" {
		t.Errorf("requeued task completed after %d retries, last error %q", ti.Retried, ti.LastErr)
	}
	r.stored(p.Key, want)
	if after := r.head(p.Key); after != before {
		t.Errorf("the stored object was written again: %v, then %v", before, after)
	}
	r.livePlaylist(p.PlaylistKey, []string{rel})
}

// head is an object's ETag and modification time.
func (r *rig) head(key string) string {
	r.t.Helper()
	h, err := r.up.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(r.s3.Bucket), Key: aws.String(r.up.Key(key))})
	if err != nil {
		r.t.Fatalf("head %s: %v", key, err)
	}
	return aws.ToString(h.ETag) + " " + aws.ToTime(h.LastModified).String()
}

// A file written to after its hook fails its task for good ("changed since its hook"); the
// reconciler then finds the changed file and its own task stores it. Requeued, the first task
// completes: the same file (device and inode) is in the bucket with its changed content, verified
// by that task's upload, found by the purge record when the file was purged, or by the file itself
// when it was kept (purge off). Nothing is uploaded again or deleted.
func TestRequeuedChangedFileStoredCompletes(t *testing.T) {
	for _, purge := range []bool{true, false} {
		t.Run(map[bool]string{true: "purged", false: "kept"}[purge], func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigConfig{noPurge: !purge})
			r.off.Purges = r.pm
			rel := "live/cam1/2026/11/23/22/cam1-9.ts"
			r.writeRandom(rel, 100<<10)
			r.write("live/cam1/index.m3u8", playlistText([]string{rel}))
			p := r.hls(rel, rel, "live/cam1/index.m3u8", "live/cam1/index.m3u8")
			f, err := os.OpenFile(p.Path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("written after the hook"))
			f.Close()
			want, _ := os.ReadFile(p.Path)
			r.enqueue(p)
			r.start(0)
			ti := r.wait(p, asynq.TaskStateArchived, 10*time.Second)
			if !strings.Contains(ti.LastErr, "changed since its hook") {
				t.Fatalf("first task failed with %q", ti.LastErr)
			}
			// The reconciler's task for the file as it is now.
			fi, err := os.Lstat(p.Path)
			if err != nil {
				t.Fatal(err)
			}
			found := queue.Offload{Kind: p.Kind, Path: p.Path, Key: p.Key, File: fileid.Of(fi), Vhost: p.Vhost, App: p.App, Stream: p.Stream}
			if found.TaskID() == p.TaskID() {
				t.Fatal("the changed file has the same task id")
			}
			if dup, err := r.client.Enqueue(context.Background(), found); err != nil || dup {
				t.Fatalf("enqueue: %v %v", dup, err)
			}
			r.wait(found, asynq.TaskStateCompleted, 10*time.Second)
			r.stored(p.Key, want)
			if purge {
				gone(t, p.Path)
			} else {
				hasContent(t, p.Path, want)
			}
			before := r.head(p.Key)

			m := tasks.New(r.redisOpt)
			defer m.Close()
			if _, err := m.Requeue(tasks.Filter{Node: node}, p.QueueID(), false); err != nil {
				t.Fatal(err)
			}
			ti = r.wait(p, asynq.TaskStateCompleted, 10*time.Second)
			if ti.LastErr != "" && !strings.Contains(ti.LastErr, "changed since its hook") {
				t.Errorf("last error %q", ti.LastErr)
			}
			r.stored(p.Key, want)
			if after := r.head(p.Key); after != before {
				t.Errorf("the stored object was written again: %v, then %v", before, after)
			}
			if !purge {
				hasContent(t, p.Path, want)
			}
		})
	}
}
