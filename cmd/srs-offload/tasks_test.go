package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/inventory"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/tasks"
)

// scrape reads a live /metrics.
func scrape(t *testing.T, admin string) string {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// run runs the binary and returns its exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// The task commands against a serving process: tasks ls, requeue --dry-run (nothing changes),
// requeue ID, delete ID; and forget-node, which removes an emptied departed node's queues from a
// live /metrics scrape and refuses, naming what is left, for a node with work.
func TestE2ETasksAndForgetNode(t *testing.T) {
	s := newStack(t, t.TempDir())
	s.start("hooks")
	opt := asynq.RedisClientOpt{Addr: s.redis.Addr}
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	enqueue := func(node, kind, path string) queue.Offload {
		c := queue.NewClient(opt, queue.Options{Node: node, MaxRetry: 3, Timeout: time.Minute, Dedup: time.Hour})
		defer c.Close()
		p := queue.Offload{Kind: kind, Path: path, Key: strings.TrimPrefix(path, "/"), File: fileid.ID{Ino: 9, Size: 10}}
		if _, err := c.Enqueue(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A departed node whose last task is gone: its queue stays registered, empty.
	g := enqueue("gone", queue.KindHLS, "/srs/live/g.ts")
	if err := insp.DeleteTask("hls@gone", g.TaskID()); err != nil {
		t.Fatal(err)
	}
	// A departed node with work left: two recordings, one archived.
	b1 := enqueue("busy", queue.KindDVR, "/srs/live/b1.flv")
	b2 := enqueue("busy", queue.KindDVR, "/srs/live/b2.flv")
	if err := insp.ArchiveTask("dvr@busy", b1.TaskID()); err != nil {
		t.Fatal(err)
	}
	m := scrape(t, s.admin)
	if !strings.Contains(m, `queue="hls@gone"`) || !strings.Contains(m, `queue="dvr@busy"`) {
		t.Fatalf("/metrics lacks the departed nodes' queues:\n%s", m)
	}

	code, out, errs := run(t, "tasks", "ls", "--state", "archived", "--json", "-c", s.config)
	var listed []tasks.Task
	if code != 0 || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 1 || listed[0].ID != b1.TaskID() || listed[0].Path != b1.Path {
		t.Fatalf("tasks ls: %d %s %s", code, out, errs)
	}
	stateOf := func(id string) asynq.TaskState {
		ti, err := insp.GetTaskInfo("dvr@busy", id)
		if err != nil {
			t.Fatal(err)
		}
		return ti.State
	}
	code, out, errs = run(t, "tasks", "requeue", "--all", "--node", "busy", "--dry-run", "-c", s.config)
	if code != 0 || !strings.Contains(out, "dvr@busy: would put 1 archived tasks back") || !strings.Contains(out, b1.TaskID()) {
		t.Fatalf("requeue --dry-run: %d %s %s", code, out, errs)
	}
	if stateOf(b1.TaskID()) != asynq.TaskStateArchived || stateOf(b2.TaskID()) != asynq.TaskStatePending {
		t.Fatal("requeue --dry-run changed a task")
	}
	if code, _, errs = run(t, "forget-node", "busy", "-c", s.config); code != 1 || !strings.Contains(errs, "dvr@busy: 1 pending, 1 archived") {
		t.Fatalf("forget-node of a node with work: %d %s", code, errs)
	}
	if code, out, errs = run(t, "tasks", "requeue", b1.TaskID(), "-c", s.config); code != 0 || stateOf(b1.TaskID()) != asynq.TaskStatePending {
		t.Fatalf("requeue ID: %d %s %s", code, out, errs)
	}
	for _, p := range []queue.Offload{b1, b2} {
		if code, out, errs = run(t, "tasks", "delete", p.TaskID(), "--node", "busy", "-c", s.config); code != 0 || !strings.Contains(out, "deleted pending task") {
			t.Fatalf("delete ID: %d %s %s", code, out, errs)
		}
	}
	if _, err := insp.GetTaskInfo("dvr@busy", b1.TaskID()); err == nil {
		t.Fatal("deleted task still there")
	}

	code, out, errs = run(t, "forget-node", "gone", "-c", s.config)
	if code != 0 || !strings.Contains(out, "dropped hls@gone") {
		t.Fatalf("forget-node gone: %d %s %s", code, out, errs)
	}
	m = scrape(t, s.admin)
	if strings.Contains(m, `queue="hls@gone"`) {
		t.Fatalf("/metrics still lists hls@gone after forget-node")
	}
	if !strings.Contains(m, `queue="dvr@busy"`) {
		t.Fatalf("/metrics lost dvr@busy, which was not forgotten")
	}
	// The process's own node is never forgotten.
	if code, _, errs = run(t, "forget-node", "e2e", "-c", s.config); code != 1 || !strings.Contains(errs, "own node") {
		t.Fatalf("forget-node of its own node: %d %s", code, errs)
	}
}

// ls against a serving process: three segments and a recording hooked, the session ended by
// on_unpublish; `ls live/r --json` reports the session (3 segments, their duration and bytes, its
// VoD playlist as stored) and the recording.
func TestE2ELs(t *testing.T) {
	root := filepath.Join(t.TempDir(), "hls")
	os.MkdirAll(filepath.Join(root, "live"), 0o755)
	s := newStack(t, root)
	s.start("serve")
	var wants []want
	var hlsBytes int64
	for i := range 3 {
		local := filepath.Join(root, "live", fmt.Sprintf("r-%d.ts", i))
		data := randomBytes(20_000+i, uint64(i))
		writeSegment(t, local, data)
		hlsBytes += int64(len(data))
		wants = append(wants, want{key: fmt.Sprintf("live/r-%d.ts", i), local: local, data: data})
		body, _ := json.Marshal(map[string]any{"action": "on_hls", "client_id": "c7", "vhost": "__defaultVhost__", "app": "live",
			"stream": "r", "cwd": "/", "file": local, "url": fmt.Sprintf("live/r-%d.ts", i), "m3u8": filepath.Join(root, "live", "r.m3u8"),
			"m3u8_url": "live/r.m3u8", "seq_no": i, "duration": 2.0})
		post(t, "http://"+s.listen+"/api/v1/hls", body)
	}
	rec := filepath.Join(root, "live", "r.1700000000000.flv")
	recData := randomBytes(30_000, 9)
	writeSegment(t, rec, recData)
	wants = append(wants, want{key: "live/r/r.1700000000000.flv", local: rec, data: recData})
	body, _ := json.Marshal(map[string]any{"action": "on_dvr", "client_id": "c7", "vhost": "__defaultVhost__", "app": "live",
		"stream": "r", "cwd": "/", "file": rec})
	post(t, "http://"+s.listen+"/api/v1/dvrs", body)
	s.settle(wants, 20*time.Second)
	body, _ = json.Marshal(map[string]any{"action": "on_unpublish", "client_id": "c7", "vhost": "__defaultVhost__", "app": "live", "stream": "r"})
	post(t, "http://"+s.listen+"/api/v1/streams", body)
	var vods []string
	deadline := time.Now().Add(20 * time.Second)
	for len(vods) == 0 {
		objs, err := s.store.List(context.Background(), "live/r/vod/")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			vods = append(vods, o.Key)
		}
		if time.Now().After(deadline) {
			t.Fatal("no VoD playlist stored")
		}
		time.Sleep(50 * time.Millisecond)
	}

	code, out, errs := run(t, "ls", "live/r", "--json", "-c", s.config)
	var got []inventory.Stream
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got) != 1 {
		t.Fatalf("ls: %d %s %s", code, out, errs)
	}
	st := got[0]
	if st.App != "live" || st.Stream != "r" || st.Playlist != "live/r.m3u8" || len(st.Sessions) != 1 || len(st.DVR) != 1 {
		t.Fatalf("ls: %s", out)
	}
	ss := st.Sessions[0]
	if ss.Segments != 3 || ss.Duration != 6 || ss.Bytes != hlsBytes || !ss.Ended || ss.VOD != vods[0] || !ss.VODStored {
		t.Errorf("session %+v; want 3 segments, 6 s, %d bytes, VoD %v", ss, hlsBytes, vods)
	}
	if d := st.DVR[0]; d.Key != "live/r/r.1700000000000.flv" || d.Size != int64(len(recData)) {
		t.Errorf("recording %+v", d)
	}
	code, out, _ = run(t, "ls", "-c", s.config)
	if code != 0 || !strings.Contains(out, "live/r  (live playlist live/r.m3u8)") || !strings.Contains(out, "live/r/r.1700000000000.flv") {
		t.Errorf("ls as text: %d\n%s", code, out)
	}
}
