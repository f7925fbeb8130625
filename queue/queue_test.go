package queue_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/queue"
)

func basePayload() queue.Offload {
	return queue.Offload{
		Kind: queue.KindHLS,
		Path: "/data/hls/live/cam1/2026/11/23/22/cam1-7.ts",
		Key:  "live/cam1/2026/11/23/22/cam1-7.ts",
		File: fileid.ID{Dev: 2049, Ino: 123456, Size: 204800, MtimeNs: 1795478400123456789},
		App:  "live", Stream: "cam1",
		Playlist:    "/data/hls/live/cam1.m3u8",
		PlaylistKey: "live/cam1.m3u8",
		SeqNo:       7, Duration: 2.0,
		Hooked: time.Unix(1795478400, 0),
	}
}

// The task id is a function of the file's identity (kind, path, device, inode, size, mtime) and of
// nothing else.
func TestTaskIDIdentity(t *testing.T) {
	p := basePayload()
	id := p.TaskID()
	if !strings.HasPrefix(id, "hls-") || len(id) != len("hls-")+32 {
		t.Fatalf("TaskID %q: want hls- and 32 hex digits", id)
	}
	if again := basePayload().TaskID(); again != id {
		t.Fatalf("TaskID not stable: %q then %q", id, again)
	}

	// Fields outside the identity do not change the id: the same file hooked twice (with another
	// hook time, duration, seq_no, or even key) is one task.
	same := basePayload()
	same.Hooked = time.Now()
	same.Duration, same.SeqNo = 9.5, 99
	same.Vhost, same.App, same.Stream = "v", "a", "s"
	same.Key, same.PlaylistKey, same.Playlist = "other/key.ts", "other.m3u8", "/x.m3u8"
	if got := same.TaskID(); got != id {
		t.Errorf("non-identity fields changed the TaskID: %q, want %q", got, id)
	}

	changes := map[string]func(*queue.Offload){
		"path":  func(p *queue.Offload) { p.Path += "x" },
		"dev":   func(p *queue.Offload) { p.File.Dev++ },
		"inode": func(p *queue.Offload) { p.File.Ino++ },
		"size":  func(p *queue.Offload) { p.File.Size++ },
		"mtime": func(p *queue.Offload) { p.File.MtimeNs++ },
		"kind":  func(p *queue.Offload) { p.Kind = queue.KindDVR },
	}
	seen := map[string]string{id: "base"}
	for name, change := range changes {
		q := basePayload()
		change(&q)
		got := q.TaskID()
		if prev, dup := seen[got]; dup {
			t.Errorf("changing %s gives the same TaskID as %s: %q", name, prev, got)
		}
		seen[got] = name
	}
	dvr := basePayload()
	dvr.Kind = queue.KindDVR
	if !strings.HasPrefix(dvr.TaskID(), "dvr-") {
		t.Errorf("DVR TaskID %q, want prefix dvr-", dvr.TaskID())
	}

	// Field boundaries are unambiguous: moving digits between numbers changes the id.
	a, b := basePayload(), basePayload()
	a.File.Size, a.File.MtimeNs = 12, 3
	b.File.Size, b.File.MtimeNs = 1, 23
	if a.TaskID() == b.TaskID() {
		t.Errorf("size/mtime 12/3 and 1/23 give the same TaskID")
	}
}

func TestFileIDOfRealFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "seg-1.ts")
	if err := os.WriteFile(p, []byte("hello segment"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	id := fileid.Of(fi)
	st := fi.Sys().(*syscall.Stat_t)
	want := fileid.ID{Dev: uint64(st.Dev), Ino: uint64(st.Ino), Size: 13, MtimeNs: fi.ModTime().UnixNano()}
	if id != want {
		t.Fatalf("FileIDOf = %+v, want %+v", id, want)
	}
	if id.Ino == 0 || id.MtimeNs == 0 {
		t.Fatalf("FileIDOf = %+v: inode and mtime must be set", id)
	}
	// Stat again: same identity.
	fi2, _ := os.Stat(p)
	if got := fileid.Of(fi2); got != id {
		t.Fatalf("second stat gives %+v, first %+v", got, id)
	}
	// Another file: another inode.
	p2 := filepath.Join(dir, "seg-2.ts")
	if err := os.WriteFile(p2, []byte("hello segment"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi3, _ := os.Lstat(p2)
	if got := fileid.Of(fi3); got.Ino == id.Ino {
		t.Fatalf("two files share inode %d", got.Ino)
	}
	// The name reused by a new file (SRS restarting its seq_no): new identity, new task id.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p2, p); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	fi4, _ := os.Lstat(p)
	reused := fileid.Of(fi4)
	if reused == id {
		t.Fatalf("a new file under the same name has the old identity %+v", id)
	}
	a := queue.Offload{Kind: queue.KindHLS, Path: p, Key: "k", File: id}
	b := queue.Offload{Kind: queue.KindHLS, Path: p, Key: "k", File: reused}
	if a.TaskID() == b.TaskID() {
		t.Fatalf("the reused name has the old TaskID")
	}
}

func TestDecodeOffload(t *testing.T) {
	p := basePayload()
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := queue.DecodeOffload(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Hooked.Equal(p.Hooked) {
		t.Fatalf("Hooked %v, want %v", got.Hooked, p.Hooked)
	}
	got.Hooked = p.Hooked
	if got != p {
		t.Fatalf("round trip: %+v, want %+v", got, p)
	}
	if got.TaskID() != p.TaskID() {
		t.Fatalf("round trip changed the TaskID")
	}

	mod := func(f func(*queue.Offload)) []byte {
		q := basePayload()
		f(&q)
		b, err := json.Marshal(q)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, b := range map[string][]byte{
		"empty":        nil,
		"not json":     []byte("hello"),
		"truncated":    b[:len(b)/2],
		"json array":   []byte(`[1,2]`),
		"wrong types":  []byte(`{"kind":"hls","path":7,"key":"k"}`),
		"empty object": []byte(`{}`),
		"null":         []byte(`null`),
		"no path":      mod(func(q *queue.Offload) { q.Path = "" }),
		"no key":       mod(func(q *queue.Offload) { q.Key = "" }),
		"no kind":      mod(func(q *queue.Offload) { q.Kind = "" }),
		"unknown kind": mod(func(q *queue.Offload) { q.Kind = "warm" }),
		"kind case":    mod(func(q *queue.Offload) { q.Kind = "HLS" }),
	} {
		if _, err := queue.DecodeOffload(b); err == nil {
			t.Errorf("%s: DecodeOffload(%q) accepted it", name, b)
		} else if !strings.Contains(err.Error(), "offload payload") {
			t.Errorf("%s: error %q does not say it is the payload", name, err)
		}
	}
	dvr := mod(func(q *queue.Offload) { q.Kind = queue.KindDVR; q.Playlist, q.PlaylistKey = "", "" })
	if _, err := queue.DecodeOffload(dvr); err != nil {
		t.Errorf("valid DVR payload rejected: %v", err)
	}
}

func TestNames(t *testing.T) {
	if got := queue.Name(queue.KindHLS, "n1"); got != "hls@n1" {
		t.Errorf("Name = %q", got)
	}
	if got := queue.Name(queue.KindDVR, "edge-2.example"); got != "dvr@edge-2.example" {
		t.Errorf("Name = %q", got)
	}
	qs := queue.Queues("n1")
	if len(qs) != 3 || qs["hls@n1"] <= 0 || qs["dvr@n1"] <= 0 || qs["hls@n1"] <= qs["dvr@n1"] ||
		qs["warm@n1"] <= 0 || qs["warm@n1"] > qs["dvr@n1"] {
		t.Errorf("Queues = %v: want hls@n1 and dvr@n1, live segments weighted higher, and warm@n1 below offloading", qs)
	}
	for _, ok := range []string{"n1", "edge-2.example", "node_3", "NODE", "a:b"} {
		if err := queue.ValidNode(ok); err != nil {
			t.Errorf("ValidNode(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "{n1}", "n{1", "n}1", "a@b", "a b", " n1", "n1 ", "a\tb", "a\nb"} {
		if err := queue.ValidNode(bad); err == nil {
			t.Errorf("ValidNode(%q) accepted it", bad)
		}
	}
}

// Against a real redis-server: Enqueue deduplicates by file identity and routes by kind and node.
func TestEnqueue(t *testing.T) {
	r := redistest.Start(t)
	opt := asynq.RedisClientOpt{Addr: r.Addr}
	c := queue.NewClient(opt, queue.Options{Node: "n1", MaxRetry: 7, Timeout: 3 * time.Minute, Dedup: time.Hour})
	t.Cleanup(func() { c.Close() })
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { insp.Close() })
	ctx := context.Background()

	p := basePayload()
	dup, err := c.Enqueue(ctx, p)
	if err != nil || dup {
		t.Fatalf("first Enqueue: dup=%v err=%v", dup, err)
	}
	// The same file hooked again (another hook time, another seq_no): a duplicate, not an error.
	again := basePayload()
	again.Hooked = time.Now()
	again.SeqNo = 8
	dup, err = c.Enqueue(ctx, again)
	if err != nil || !dup {
		t.Fatalf("second Enqueue of the same file: dup=%v err=%v, want dup=true", dup, err)
	}
	pending, err := insp.ListPendingTasks("hls@n1")
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 {
		t.Fatalf("%d pending tasks in hls@n1 after a duplicate enqueue, want 1", len(pending))
	}
	ti := pending[0]
	if ti.ID != p.TaskID() || ti.Type != queue.TypeOffload || ti.Queue != "hls@n1" || ti.MaxRetry != 7 ||
		ti.Timeout != 3*time.Minute || ti.Retention != time.Hour {
		t.Fatalf("task %+v: want id %s type %s queue hls@n1 max_retry 7 timeout 3m retention 1h", ti, p.TaskID(), queue.TypeOffload)
	}
	stored, err := queue.DecodeOffload(ti.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if stored.SeqNo != 7 || stored.Path != p.Path || stored.File != p.File {
		t.Fatalf("stored payload %+v is not the first enqueue's", stored)
	}

	// A new file under the same name: a new task.
	changed := basePayload()
	changed.File.Ino++
	dup, err = c.Enqueue(ctx, changed)
	if err != nil || dup {
		t.Fatalf("Enqueue of a changed file: dup=%v err=%v", dup, err)
	}
	changed2 := basePayload()
	changed2.File.MtimeNs += 1000
	if dup, err = c.Enqueue(ctx, changed2); err != nil || dup {
		t.Fatalf("Enqueue of a file with a new mtime: dup=%v err=%v", dup, err)
	}

	// DVR goes to its own queue.
	d := basePayload()
	d.Kind, d.Path, d.Key = queue.KindDVR, "/data/dvr/live/cam1.flv", "dvr/live/cam1.flv"
	d.Playlist, d.PlaylistKey = "", ""
	if dup, err = c.Enqueue(ctx, d); err != nil || dup {
		t.Fatalf("Enqueue DVR: dup=%v err=%v", dup, err)
	}
	if dup, err = c.Enqueue(ctx, d); err != nil || !dup {
		t.Fatalf("second Enqueue DVR: dup=%v err=%v", dup, err)
	}

	count := func(q string) int {
		t.Helper()
		qi, err := insp.GetQueueInfo(q)
		if err != nil {
			t.Fatalf("queue %s: %v", q, err)
		}
		return qi.Size
	}
	if n := count("hls@n1"); n != 3 {
		t.Errorf("hls@n1 holds %d tasks, want 3", n)
	}
	if n := count("dvr@n1"); n != 1 {
		t.Errorf("dvr@n1 holds %d tasks, want 1", n)
	}
	if _, err := insp.GetTaskInfo("dvr@n1", d.TaskID()); err != nil {
		t.Errorf("DVR task not in dvr@n1: %v", err)
	}
	qs, err := insp.Queues()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q != "hls@n1" && q != "dvr@n1" {
			t.Errorf("unexpected queue %q", q)
		}
	}

	// Another node's client: same file, other queue, its own task.
	c2 := queue.NewClient(opt, queue.Options{Node: "n2", MaxRetry: 1, Timeout: time.Minute})
	t.Cleanup(func() { c2.Close() })
	if dup, err = c2.Enqueue(ctx, p); err != nil || dup {
		t.Fatalf("Enqueue on node n2: dup=%v err=%v", dup, err)
	}
	if n := count("hls@n2"); n != 1 {
		t.Errorf("hls@n2 holds %d tasks, want 1", n)
	}
}

// With Redis down, Enqueue fails (the hook must then refuse, so SRS retries) rather than
// claiming success.
func TestEnqueueRedisDown(t *testing.T) {
	r := redistest.Start(t)
	opt := asynq.RedisClientOpt{Addr: r.Addr, DialTimeout: 200 * time.Millisecond}
	c := queue.NewClient(opt, queue.Options{Node: "n1", MaxRetry: 1, Timeout: time.Minute})
	t.Cleanup(func() { c.Close() })
	r.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dup, err := c.Enqueue(ctx, basePayload())
	if err == nil || dup {
		t.Fatalf("Enqueue with Redis down: dup=%v err=%v, want an error", dup, err)
	}
}

// A Redis that accepts connections and never answers must not hold a hook longer than
// RedisTimeout: the enqueue's context deadline alone does not cut asynq's reads short.
func TestEnqueueHangingRedisIsBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	c := queue.NewClient(asynq.RedisClientOpt{Addr: ln.Addr().String()}, queue.Options{
		Node: "n1", MaxRetry: 1, Timeout: time.Minute, Dedup: time.Minute, RedisTimeout: 300 * time.Millisecond,
	})
	defer c.Close()
	p := queue.Offload{Kind: queue.KindHLS, Path: "/x/a.ts", Key: "a.ts", File: fileid.ID{Ino: 1}}
	start := time.Now()
	_, err = c.Enqueue(context.Background(), p)
	if err == nil {
		t.Fatal("enqueue into a Redis that never answers succeeded")
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("enqueue gave up after %v, want about the 300ms RedisTimeout", d)
	}
}
