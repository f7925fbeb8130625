package tasks_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/tasks"
)

// fixture is a real redis-server with tasks enqueued as srs-offload's client does.
type fixture struct {
	t    *testing.T
	opt  asynq.RedisClientOpt
	insp *asynq.Inspector
	m    *tasks.Manager
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	r := redistest.Start(t)
	f := &fixture{t: t, opt: asynq.RedisClientOpt{Addr: r.Addr}}
	f.insp = asynq.NewInspector(f.opt)
	t.Cleanup(func() { f.insp.Close() })
	f.m = tasks.New(f.opt)
	t.Cleanup(func() { f.m.Close() })
	return f
}

// enqueue records the offload of n files of kind on node through queue.Client, and returns them.
func (f *fixture) enqueue(node, kind string, n int) []queue.Offload {
	f.t.Helper()
	c := queue.NewClient(f.opt, queue.Options{Node: node, MaxRetry: 3, Timeout: time.Minute, Dedup: time.Hour})
	defer c.Close()
	var out []queue.Offload
	for i := range n {
		ext := ".ts"
		if kind == queue.KindDVR {
			ext = ".flv"
		}
		p := queue.Offload{Kind: kind, Path: fmt.Sprintf("/srs/live/cam-%d%s", i, ext), Key: fmt.Sprintf("live/cam-%d%s", i, ext),
			File: fileid.ID{Dev: 1, Ino: uint64(100 + i), Size: int64(1000 + i), MtimeNs: 7}}
		if dup, err := c.Enqueue(context.Background(), p); err != nil || dup {
			f.t.Fatalf("enqueue: dup %v, err %v", dup, err)
		}
		out = append(out, p)
	}
	return out
}

// archive moves tasks to the archive, as retries running out would.
func (f *fixture) archive(node string, ps ...queue.Offload) {
	f.t.Helper()
	for _, p := range ps {
		if err := f.insp.ArchiveTask(queue.Name(p.Kind, node), p.QueueID()); err != nil {
			f.t.Fatal(err)
		}
	}
}

// snapshot is every queue's task ids by state, read with asynq's Inspector.
func (f *fixture) snapshot() map[string][]string {
	f.t.Helper()
	qs, err := f.insp.Queues()
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, q := range qs {
		for state, list := range map[string]func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			"pending": f.insp.ListPendingTasks, "scheduled": f.insp.ListScheduledTasks, "retry": f.insp.ListRetryTasks,
			"archived": f.insp.ListArchivedTasks, "completed": f.insp.ListCompletedTasks, "active": f.insp.ListActiveTasks,
		} {
			tis, err := list(q, asynq.PageSize(1000))
			if err != nil {
				f.t.Fatal(err)
			}
			for _, ti := range tis {
				out[q+" "+state] = append(out[q+" "+state], ti.ID)
			}
			sort.Strings(out[q+" "+state])
		}
	}
	return out
}

func ids(ts []tasks.Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	sort.Strings(out)
	return out
}

func idsOf(ps ...queue.Offload) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.QueueID())
	}
	sort.Strings(out)
	return out
}

func TestListByState(t *testing.T) {
	f := newFixture(t)
	hls := f.enqueue("n1", queue.KindHLS, 3)
	dvr := f.enqueue("n1", queue.KindDVR, 2)
	other := f.enqueue("n2", queue.KindHLS, 2)
	f.archive("n1", hls[0], dvr[1])
	f.archive("n2", other[0])

	got, err := f.m.List(tasks.Filter{}, tasks.StateArchived, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := idsOf(hls[0], dvr[1], other[0]); !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("archived: %v, want %v", ids(got), want)
	}
	got, _ = f.m.List(tasks.Filter{Node: "n1", Kinds: []string{queue.KindHLS}}, tasks.StatePending, 0)
	if want := idsOf(hls[1], hls[2]); !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("pending hls@n1: %v, want %v", ids(got), want)
	}
	for _, task := range got {
		if task.Queue != "hls@n1" || task.Node != "n1" || task.Kind != "hls" || task.Type != queue.TypeOffload ||
			!strings.HasPrefix(task.Path, "/srs/live/cam-") || !strings.HasPrefix(task.Key, "live/cam-") || task.Bytes < 1000 {
			t.Errorf("task read as %+v", task)
		}
	}
	if got, _ := f.m.List(tasks.Filter{}, tasks.StatePending, 2); len(got) != 2 {
		t.Errorf("limit 2 listed %d", len(got))
	}
	if _, err := f.m.List(tasks.Filter{}, "failed", 0); err == nil || !strings.Contains(err.Error(), "archived") {
		t.Errorf("unknown state: %v", err)
	}
}

// tasks requeue --all --dry-run changes nothing: asynq's state before and after is the same, and
// it names exactly the tasks a real run then moves.
func TestRequeueDryRunChangesNothing(t *testing.T) {
	f := newFixture(t)
	hls := f.enqueue("n1", queue.KindHLS, 4)
	dvr := f.enqueue("n1", queue.KindDVR, 2)
	f.archive("n1", hls[0], hls[2], dvr[0])
	before := f.snapshot()
	counts, would, err := f.m.RequeueAll(tasks.Filter{Node: "n1"}, tasks.StateArchived, true)
	if err != nil {
		t.Fatal(err)
	}
	if after := f.snapshot(); !reflect.DeepEqual(before, after) {
		t.Fatalf("dry run changed the queues:\nbefore %v\nafter  %v", before, after)
	}
	if want := idsOf(hls[0], hls[2], dvr[0]); !reflect.DeepEqual(ids(would), want) {
		t.Fatalf("dry run would requeue %v, want %v", ids(would), want)
	}
	if counts["hls@n1"] != 2 || counts["dvr@n1"] != 1 {
		t.Fatalf("dry run counts %v", counts)
	}
	counts, _, err = f.m.RequeueAll(tasks.Filter{Node: "n1"}, tasks.StateArchived, false)
	if err != nil || counts["hls@n1"] != 2 || counts["dvr@n1"] != 1 {
		t.Fatalf("requeue: %v %v", counts, err)
	}
	after := f.snapshot()
	if len(after["hls@n1 archived"])+len(after["dvr@n1 archived"]) != 0 || len(after["hls@n1 pending"]) != 4 || len(after["dvr@n1 pending"]) != 2 {
		t.Fatalf("after requeue: %v", after)
	}
}

// tasks requeue ID moves exactly that task; tasks delete ID removes exactly that one.
func TestRequeueAndDeleteByID(t *testing.T) {
	f := newFixture(t)
	hls := f.enqueue("n1", queue.KindHLS, 3)
	f.archive("n1", hls...)
	before := f.snapshot()
	if got, err := f.m.Requeue(tasks.Filter{}, hls[1].QueueID(), true); err != nil || got.ID != hls[1].QueueID() {
		t.Fatalf("requeue --dry-run: %+v %v", got, err)
	}
	if after := f.snapshot(); !reflect.DeepEqual(before, after) {
		t.Fatalf("requeue ID --dry-run changed the queues:\nbefore %v\nafter  %v", before, after)
	}
	got, err := f.m.Requeue(tasks.Filter{}, hls[1].QueueID(), false)
	if err != nil || got.State != tasks.StateArchived || got.Queue != "hls@n1" {
		t.Fatalf("requeue: %+v %v", got, err)
	}
	after := f.snapshot()
	if want := idsOf(hls[0], hls[2]); !reflect.DeepEqual(after["hls@n1 archived"], want) {
		t.Fatalf("archived after requeue %v, want %v", after["hls@n1 archived"], want)
	}
	if want := idsOf(hls[1]); !reflect.DeepEqual(after["hls@n1 pending"], want) {
		t.Fatalf("pending after requeue %v, want %v (before: %v)", after["hls@n1 pending"], want, before)
	}
	// A pending task is not requeued again.
	if _, err := f.m.Requeue(tasks.Filter{}, hls[1].QueueID(), true); err == nil || !strings.Contains(err.Error(), "is pending") {
		t.Fatalf("requeue of a pending task: %v", err)
	}
	if _, err := f.m.Requeue(tasks.Filter{}, "hls-nonesuch", false); !errors.Is(err, tasks.ErrNotFound) {
		t.Fatalf("requeue of an unknown id: %v", err)
	}

	if _, err := f.m.Delete(tasks.Filter{}, hls[0].QueueID()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.insp.GetTaskInfo("hls@n1", hls[0].QueueID()); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Fatalf("deleted task still there: %v", err)
	}
	final := f.snapshot()
	if want := idsOf(hls[2]); !reflect.DeepEqual(final["hls@n1 archived"], want) || !reflect.DeepEqual(final["hls@n1 pending"], idsOf(hls[1])) {
		t.Fatalf("after delete: %v", final)
	}
	shown, err := f.m.Show(tasks.Filter{}, hls[2].QueueID())
	if err != nil || shown.Path != hls[2].Path || shown.Key != hls[2].Key || shown.State != "archived" || len(shown.Payload) == 0 {
		t.Fatalf("show: %+v %v", shown, err)
	}
}

// The same file's task id in the queues of two nodes (a node renamed) is ambiguous until the
// node is named.
func TestShowAmbiguousNeedsNode(t *testing.T) {
	f := newFixture(t)
	a := f.enqueue("old", queue.KindHLS, 1)
	f.enqueue("new", queue.KindHLS, 1)
	if _, err := f.m.Show(tasks.Filter{}, a[0].QueueID()); err == nil || !strings.Contains(err.Error(), "hls@new, hls@old") {
		t.Fatalf("ambiguous id: %v", err)
	}
	got, err := f.m.Show(tasks.Filter{Node: "old"}, a[0].QueueID())
	if err != nil || got.Queue != "hls@old" {
		t.Fatalf("with --node: %+v %v", got, err)
	}
}

// forget-node drops a departed node's queues once they are empty (completed tasks kept for dedup
// do not count), refuses while a worker of it runs, and refuses naming what is left otherwise.
func TestForgetNode(t *testing.T) {
	f := newFixture(t)
	// A real asynq worker for node "gone" completes its one task, then stops.
	done := f.enqueue("gone", queue.KindHLS, 1)
	srv := asynq.NewServer(f.opt, asynq.Config{Queues: queue.Queues("gone"), Concurrency: 1, TaskCheckInterval: 10 * time.Millisecond,
		LogLevel: asynq.ErrorLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc(queue.TypeOffload, func(context.Context, *asynq.Task) error { return nil })
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ti, err := f.insp.GetTaskInfo("hls@gone", done[0].QueueID())
		if err == nil && ti.State == asynq.TaskStateCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task not completed: %+v %v", ti, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, err := f.m.ForgetNode("gone")
		if err != nil && strings.Contains(err.Error(), "a worker of it is running") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("forget-node while its worker runs: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // the worker's first heartbeat
	}
	srv.Shutdown()

	busy := f.enqueue("busy", queue.KindDVR, 2)
	f.archive("busy", busy[0])
	before := f.snapshot()
	_, err := f.m.ForgetNode("busy")
	if !errors.Is(err, tasks.ErrNotEmpty) || !strings.Contains(err.Error(), "dvr@busy: 1 pending, 1 archived") {
		t.Fatalf("forget-node of a node with work: %v", err)
	}
	if after := f.snapshot(); !reflect.DeepEqual(before, after) {
		t.Fatalf("a refused forget-node changed the queues")
	}

	dropped, err := f.m.ForgetNode("gone")
	if err != nil || !reflect.DeepEqual(dropped, []string{"hls@gone"}) {
		t.Fatalf("forget-node gone: %v %v", dropped, err)
	}
	qs, _ := f.insp.Queues()
	sort.Strings(qs)
	if !reflect.DeepEqual(qs, []string{"dvr@busy"}) {
		t.Fatalf("queues after forget-node: %v", qs)
	}
	if _, err := f.m.ForgetNode("gone"); err == nil {
		t.Fatal("forget-node of an unknown node succeeded")
	}
}

// requeue --all --queue hls moves the archived tasks of the chosen kinds back to pending, and
// only those (what the older `requeue` command did).
func TestRequeueAllByKind(t *testing.T) {
	f := newFixture(t)
	hls := f.enqueue("n1", queue.KindHLS, 2)
	dvr := f.enqueue("n1", queue.KindDVR, 1)
	f.archive("n1", hls[0], hls[1], dvr[0])
	got, _, err := f.m.RequeueAll(tasks.Filter{Node: "n1", Kinds: []string{queue.KindHLS, queue.KindWarm}}, tasks.StateArchived, false)
	if err != nil || got["hls@n1"] != 2 || len(got) != 1 {
		t.Fatalf("requeued %v %v", got, err)
	}
	after := f.snapshot()
	if !reflect.DeepEqual(after["hls@n1 pending"], idsOf(hls...)) || !reflect.DeepEqual(after["dvr@n1 archived"], idsOf(dvr...)) {
		t.Fatalf("after: %v", after)
	}
}
