package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/status"
	"github.com/srs-offload/srs-offload/worker"
)

// runStatusBin runs `srs-offload status` with args and decodes --json output. It runs without
// the storage keys the config takes from the environment: status needs Redis only.
func runStatusBin(t *testing.T, config string, args ...string) (string, status.Report) {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"status", "-c", config}, args...)...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "E2E_AK=") && !strings.HasPrefix(e, "E2E_SK=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("status %v: %v\n%s", args, err, errb.String())
	}
	var r status.Report
	if len(args) > 0 && args[0] == "--json" {
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out.String())
		}
	}
	return out.String(), r
}

// A known backlog, made with the real parts against a real redis-server: N pending offloads
// (no worker running), M recordings that a real worker archived (their files were gone), K files
// held in the spool by a running `hooks` process, and a live stream with two stored segments.
// `srs-offload status --json` reports exactly that.
func TestStatusKnownBacklog(t *testing.T) {
	const n, m, k = 5, 3, 4
	s, root := newStackWith(t, "reconcile: {min_age: 1h, interval: 1h}\n")
	ctx := context.Background()
	redisOpt := asynq.RedisClientOpt{Addr: s.redis.Addr}
	qc := queue.NewClient(redisOpt, queue.Options{Node: "e2e", MaxRetry: 3, Timeout: time.Minute, Dedup: time.Hour})
	defer qc.Close()
	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()
	rdb := redis.NewClient(&redis.Options{Addr: s.redis.Addr})
	defer rdb.Close()

	// M recordings whose files are gone: a real worker archives each with its error.
	set, err := roots.New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	log := slog.New(slog.DiscardHandler)
	var lost []string
	for i := range m {
		p := queue.Offload{Kind: queue.KindDVR, Path: filepath.Join(root, fmt.Sprintf("dvr/live/cam%d.flv", i)),
			Key: fmt.Sprintf("live/cam%d.flv", i), File: fileid.ID{Dev: 1, Ino: uint64(100 + i), Size: 1000, MtimeNs: 1}}
		if _, err := qc.Enqueue(ctx, p); err != nil {
			t.Fatal(err)
		}
		lost = append(lost, p.Path)
	}
	ws := worker.NewServer(redisOpt, worker.Options{Node: "e2e", Concurrency: 2, RetryBase: 10 * time.Millisecond,
		RetryMax: 10 * time.Millisecond, ShutdownTimeout: 5 * time.Second, PollInterval: 10 * time.Millisecond, Log: log},
		&worker.Offloader{Roots: set, Store: s.store, Log: log})
	if err := ws.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		qi, err := insp.GetQueueInfo(queue.Name(queue.KindDVR, "e2e"))
		if err == nil && qi.Archived == m {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker did not archive %d tasks in 20 s: %+v %v", m, qi, err)
		}
	}
	ws.Shutdown(ctx)

	// N segments waiting for a worker.
	for i := range n {
		p := queue.Offload{Kind: queue.KindHLS, Path: filepath.Join(root, fmt.Sprintf("live/pending-%d.ts", i)),
			Key: fmt.Sprintf("live/pending-%d.ts", i), File: fileid.ID{Dev: 1, Ino: uint64(200 + i), Size: 1000, MtimeNs: 1}}
		if _, err := qc.Enqueue(ctx, p); err != nil {
			t.Fatal(err)
		}
	}

	// A live stream: two segments announced and stored.
	vod, _ := objkey.Parse("{app}/{stream}/vod/{session}.m3u8")
	ledger := playlist.New(rdb, playlist.Settings{Window: time.Minute, Stall: time.Minute, Retain: time.Hour})
	recv := &playlist.Receiver{Ledger: ledger, Node: "e2e"}
	pm := &playlist.Manager{Ledger: ledger, Store: s.store, VODKey: &vod, Node: "e2e", Log: log}
	for seq := range int64(2) {
		seg := queue.Offload{Kind: queue.KindHLS, Path: filepath.Join(root, fmt.Sprintf("live/cam9-%d.ts", seq)),
			Key: fmt.Sprintf("live/cam9-%d.ts", seq), File: fileid.ID{Dev: 1, Ino: uint64(300 + seq), Size: 10, MtimeNs: 1},
			Vhost: "__defaultVhost__", App: "live", Stream: "cam9", M3U8URL: "live/cam9.m3u8", Client: "c1",
			PlaylistKey: "live/cam9.m3u8", SeqNo: seq, Duration: 2}
		if err := recv.Announce(ctx, seg); err != nil {
			t.Fatal(err)
		}
		if err := pm.Stored(ctx, seg, seg.Key, ""); err != nil {
			t.Fatal(err)
		}
	}

	// K files on disk, held in the spool by a hooks process from its start (too young for the
	// reconciler to enqueue them).
	var diskBytes int64
	for i := range k {
		size := 10_000 + i*111
		writeSegment(t, filepath.Join(root, fmt.Sprintf("live/disk-%d.ts", i)), make([]byte, size))
		diskBytes += int64(size)
	}
	s.start("hooks")

	var r status.Report
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, r = runStatusBin(t, s.config, "--json", "--errors", "10")
		if len(r.Disk) == 1 && r.Disk[0].Files == k {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no disk backlog of %d files in status after 10 s: %+v", k, r.Disk)
		}
	}

	// Times: checked for range, then left out of the exact comparison.
	if age := time.Since(r.Time); age < 0 || age > 10*time.Second {
		t.Errorf("report time %v", r.Time)
	}
	for i, q := range r.Queues {
		if q.Pending > 0 && (q.OldestPending <= 0 || q.OldestPending > 60) {
			t.Errorf("%s: oldest pending %v s, want a few seconds", q.Name, q.OldestPending)
		}
		r.Queues[i].OldestPending = 0
	}
	for i, d := range r.Disk {
		if d.Oldest <= 0 || d.Oldest > 60 || d.Age < 0 || d.Age > 10 {
			t.Errorf("disk backlog of %s: oldest %v s, published %v s ago", d.Node, d.Oldest, d.Age)
		}
		r.Disk[i].Oldest, r.Disk[i].Age = 0, 0
	}
	for i, e := range r.Errors {
		if time.Since(e.FailedAt) > time.Minute || !strings.Contains(e.Err, "was deleted before it was uploaded") {
			t.Errorf("error %+v: want a recent failure saying the file was deleted", e)
		}
		r.Errors[i].FailedAt, r.Errors[i].Err, r.Errors[i].ID = time.Time{}, "", ""
	}
	for i, st := range r.Streams {
		if time.Since(st.Changed) > time.Minute {
			t.Errorf("stream %s changed at %v", st.Playlist, st.Changed)
		}
		r.Streams[i].Changed = time.Time{}
	}
	r.Time = time.Time{}

	want := status.Report{
		Queues: []status.Queue{
			{Node: "e2e", Kind: "hls", Name: "hls@e2e", Pending: n},
			{Node: "e2e", Kind: "dvr", Name: "dvr@e2e", Archived: m},
		},
		Disk:    []status.Disk{{Node: "e2e", Files: k, Bytes: diskBytes}},
		Uploads: []status.Upload{},
		Streams: []status.Stream{{Name: "__defaultVhost__/live/cam9", Playlist: "live/cam9.m3u8", Session: 1, Announced: 1,
			LastSegment: "live/cam9-1.ts", MediaSequence: 0, Segments: 2}},
	}
	for i := range m {
		want.Errors = append(want.Errors, status.Error{Node: "e2e", Queue: "dvr@e2e", State: "archived", Type: queue.TypeOffload,
			Path: lost[i], Key: fmt.Sprintf("live/cam%d.flv", i)})
	}
	// The errors come newest first; compare them as a set.
	got := r.Errors
	r.Errors, want.Errors = nil, sortErrors(want.Errors)
	got = sortErrors(got)
	if !reflect.DeepEqual(r, status.Report{Queues: want.Queues, Disk: want.Disk, Uploads: want.Uploads, Streams: want.Streams}) || !reflect.DeepEqual(got, want.Errors) {
		r.Errors = got
		gb, _ := json.MarshalIndent(r, "", "  ")
		wb, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("status --json:\n%s\nwant:\n%s", gb, wb)
	}

	// The text form names the same.
	text, _ := runStatusBin(t, s.config)
	for _, w := range []string{"hls@e2e", "dvr@e2e", lost[0], "live/cam9-1.ts", "live/cam9.m3u8"} {
		if !strings.Contains(text, w) {
			t.Errorf("status text has no %q:\n%s", w, text)
		}
	}
	t.Logf("status:\n%s", text)
}

func sortErrors(es []status.Error) []status.Error {
	out := append([]status.Error(nil), es...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].Path < out[i].Path {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// A 200 MB recording (a sparse file) goes to versitygw through a link throttled to 30 MiB/s;
// while it runs, `srs-offload status --json` shows its upload with the bytes done rising and
// below its size, a rate and an ETA, and `status` names it; once stored, it is gone from status.
func TestStatusUploadProgress(t *testing.T) {
	const size = 200_000_000
	s, root := newStackWith(t, "reconcile: {min_age: 1h, interval: 1h}\n")
	slow := s3test.Proxy(t, s.s3, s3test.Throttle(30<<20))
	b, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.config, bytes.Replace(b, []byte("endpoint: "+s.s3.Endpoint), []byte("endpoint: "+slow.Endpoint), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	s.start("serve")
	local := filepath.Join(root, "live", "big.1795478400123.flv")
	os.MkdirAll(filepath.Dir(local), 0o755)
	f, err := os.Create(local)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	body, _ := json.Marshal(map[string]any{"server_id": "vid-1", "action": "on_dvr", "client_id": "c1", "ip": "127.0.0.1",
		"vhost": "__defaultVhost__", "app": "live", "stream": "big", "param": "", "cwd": "/usr/local/srs", "file": local,
		"stream_url": "/live/big", "stream_id": "vid-2"})
	start := time.Now()
	post(t, "http://"+s.listen+"/api/v1/dvrs", body)

	const key = "live/big/big.1795478400123.flv"
	var seen []int64
	var sawText bool
	var last status.Upload
	for {
		if time.Since(start) > 60*time.Second {
			t.Fatalf("not stored in 60 s; bytes done seen %v", seen)
		}
		_, r := runStatusBin(t, s.config, "--json")
		if len(r.Uploads) == 0 {
			if len(seen) > 0 {
				break // done
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		u := r.Uploads[0]
		if len(r.Uploads) != 1 || u.Key != key || u.Size != size || u.Node != "e2e" || u.Kind != queue.KindDVR || u.Path != local {
			t.Fatalf("uploads in flight %+v, want the one recording", r.Uploads)
		}
		if len(seen) == 0 || u.Done != seen[len(seen)-1] {
			seen = append(seen, u.Done)
		}
		last = u
		if !sawText && u.Done > 0 && u.Done < size {
			text, _ := runStatusBin(t, s.config)
			sawText = strings.Contains(text, key) && strings.Contains(text, "190.7 MiB")
			if !sawText {
				t.Errorf("status text does not show the upload of %s (190.7 MiB):\n%s", key, text)
				sawText = true
			}
		}
		if u.Done > 0 && u.Done < size && (u.Rate <= 0 || u.ETA < 0) {
			t.Errorf("upload %+v: want a rate and an ETA while it runs", u)
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(start)
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
		t.Errorf("bytes done seen in status: %v; want at least 3 rising values below %d", seen, size)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		obj, ok, err := s.store.Stat(context.Background(), key)
		_, statErr := os.Stat(local)
		if err == nil && ok && obj.Size == size && os.IsNotExist(statErr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: stored %v %+v (err %v), local file still there: %v", key, ok, obj, err, statErr == nil)
		}
	}
	t.Logf("uploaded in %v; bytes done seen in status (%d looks): %v; last rate %.1f MiB/s", took.Round(time.Millisecond), len(seen), seen, last.Rate/(1<<20))
}
