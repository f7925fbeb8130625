package rdb_test

import (
	"bytes"
	"context"
	"io"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/rdb"
	"github.com/srs-offload/srs-offload/storage"
	"github.com/srs-offload/srs-offload/warm"
)

// memStore keeps the playlists written, in memory.
type memStore struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func (s *memStore) Put(_ context.Context, key string, src storage.Source, size int64, _ media.Type, _ string) (storage.Object, error) {
	b, err := io.ReadAll(io.NewSectionReader(src, 0, size))
	if err != nil {
		return storage.Object{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objs[key] = b
	return storage.Object{Key: key, Size: size}, nil
}

// What srs-offload writes to a real Redis, through the playlist ledger and the warm rendezvous
// of one stream's life (hook, upload, purge, end, notify), is exactly the keys package rdb names:
// nothing else, and each of them.
func TestKeysWrittenAreTheNamedOnes(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { client.Close() })

	const pk = "live/cam1.m3u8"
	vodKey, err := objkey.Parse("{app}/{stream}/vod/{session}.m3u8")
	if err != nil {
		t.Fatal(err)
	}
	store := &memStore{objs: map[string][]byte{}}
	ledger := playlist.New(client, playlist.Settings{Window: time.Hour, Stall: time.Hour, Retain: time.Hour})
	m := &playlist.Manager{Ledger: ledger, Store: store, VODKey: &vodKey, EndLive: true, Node: "n1"}
	recv := &playlist.Receiver{Ledger: ledger, Node: "n1"}

	seg := queue.Offload{
		Kind: queue.KindHLS, Path: "/srs/live/cam1-0.ts", Key: "live/cam1-0.ts",
		File:  fileid.ID{Dev: 1, Ino: 2, Size: 3, MtimeNs: time.Now().UnixNano()},
		Vhost: "__defaultVhost__", App: "live", Stream: "cam1", M3U8URL: "live/cam1.m3u8", Client: "c1",
		PlaylistKey: pk, SeqNo: 0, Duration: 2,
	}
	if err := recv.Announce(ctx, seg); err != nil {
		t.Fatal(err)
	}
	if err := m.Stored(ctx, seg, seg.Key, ""); err != nil {
		t.Fatal(err)
	}
	if err := m.Purged(ctx, seg.Path, seg.File); err != nil {
		t.Fatal(err)
	}
	if _, ok := store.objs[pk]; !ok {
		t.Fatalf("live playlist %s not published; stored: %v", pk, store.objs)
	}
	if err := m.End(ctx, queue.End{Vhost: seg.Vhost, App: "live", Stream: "cam1", Client: "c1", Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if len(store.objs) != 2 {
		t.Fatalf("want the live and the VoD playlist stored, have %d objects", len(store.objs))
	}
	rv := warm.NewRendezvous(client, time.Minute)
	if _, ready, err := rv.Notified(ctx, "live/cam1-1.ts"); err != nil || ready {
		t.Fatalf("Notified = %v, %v", ready, err)
	}

	k := rdb.StreamKeys(pk)
	want := []string{
		rdb.Streams, rdb.Folders, rdb.Active, rdb.Purged(seg.Path), rdb.Warm("live/cam1-1.ts"),
		k.St, k.W, k.Dn, k.Vs, k.VOD(1),
	}
	named := map[string]bool{k.Q: true, k.E: true, k.Lock: true} // named, but empty or released by now
	for _, w := range want {
		named[w] = true
	}
	got, err := client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	have := map[string]bool{}
	for _, g := range got {
		have[g] = true
		if !named[g] {
			t.Errorf("Redis has key %q, which package rdb does not name", g)
		}
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("key %q not written; Redis has %q", w, got)
		}
	}
	if pub, _ := client.HGet(ctx, k.St, "pub").Int64(); pub == 0 {
		t.Errorf("%s has no pub field: the publish lock was never released by rdb.Publish", k.St)
	}
	if ttl := client.PTTL(ctx, k.VOD(1)).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("%s expires in %v, want the retain time (rdb.EndSession)", k.VOD(1), ttl)
	}
	if !bytes.Contains(store.objs[pk], []byte("#EXT-X-ENDLIST")) {
		t.Errorf("live playlist not ended (EndLive):\n%s", store.objs[pk])
	}
}
