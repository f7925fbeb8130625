package hook_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/queue"
)

// With playlists on, every on_hls is announced to the ledger in hook order right after its
// enqueue, and on_unpublish enqueues the end of that publisher's session (one task however often
// SRS sends it).
func TestPlaylistAnnounceAndEnd(t *testing.T) {
	root := t.TempDir()
	e := newEnv(t, envConfig{roots: []string{root}})
	rdb := redis.NewClient(&redis.Options{Addr: e.redis.Addr})
	t.Cleanup(func() { rdb.Close() })
	m := &playlist.Manager{Ledger: playlist.New(rdb, playlist.Settings{}), Node: node}
	e.intake.Playlists = m

	for seq := 0; seq < 3; seq++ {
		name := filepath.Join("live", "cam", "seg-"+string(rune('0'+seq))+".ts")
		writeRandom(t, filepath.Join(root, name), 500+seq)
		body, _ := json.Marshal(map[string]any{
			"action": "on_hls", "client_id": "pub1", "vhost": "__defaultVhost__", "app": "live", "stream": "cam",
			"cwd": root, "file": name, "url": filepath.ToSlash(name), "m3u8": "live/cam.m3u8", "m3u8_url": "live/cam.m3u8",
			"seq_no": seq, "duration": 2.0,
		})
		assertOK(t, "on_hls", e.post(string(body)))
	}
	// The ledger knows the stream and has three items in flight, in order.
	pk, err := rdb.HGet(context.Background(), "so:streams", "__defaultVhost__/live/cam").Result()
	if err != nil || pk != "live/cam.m3u8" {
		t.Fatalf("stream → playlist: %q %v", pk, err)
	}
	tasks := e.tasks(hlsQueue)
	if len(tasks) != 3 {
		t.Fatalf("%d tasks", len(tasks))
	}
	keys, _ := rdb.Keys(context.Background(), "so:{*}:q").Result()
	if len(keys) != 1 {
		t.Fatalf("ledger queues %v", keys)
	}
	ids, _ := rdb.ZRange(context.Background(), keys[0], 0, -1).Result()
	if len(ids) != 3 {
		t.Fatalf("announced %v", ids)
	}
	for i, id := range ids {
		var want string
		for _, tk := range tasks {
			if tk.p.SeqNo == int64(i) {
				want = tk.p.TaskID()
			}
		}
		if id != want {
			t.Fatalf("announced order %v: item %d is %s, want %s", ids, i, id, want)
		}
	}

	unpublish := `{"action":"on_unpublish","client_id":"pub1","vhost":"__defaultVhost__","app":"live","stream":"cam","param":""}`
	assertOK(t, "on_unpublish", e.post(unpublish))
	assertOK(t, "on_unpublish again", e.post(unpublish))
	var ends []queue.End
	infos, err := e.insp.ListPendingTasks(hlsQueue)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range infos {
		if ti.Type == queue.TypeEnd {
			end, err := queue.DecodeEnd(ti.Payload)
			if err != nil {
				t.Fatal(err)
			}
			ends = append(ends, end)
		}
	}
	if len(ends) != 1 || ends[0].Client != "pub1" || ends[0].Stream != "cam" || time.Since(ends[0].Since) > time.Minute {
		t.Fatalf("end tasks %+v", ends)
	}
}
