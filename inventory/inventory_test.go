package inventory_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/inventory"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/rdb"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/worker"
)

func write(t *testing.T, p string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rnd := rand.New(rand.NewPCG(uint64(n), 1))
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func parse(t *testing.T, s string) objkey.Template {
	t.Helper()
	tm, err := objkey.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// ls over a real stored session and real recordings: three segments go through the worker's
// offload (upload, verify, purge, ledger) into versitygw, the session ends and its VoD playlist
// is written; two recordings are offloaded under keys.dvr. The inventory reports the session
// (segments, duration, bytes from the bucket, VoD key, times) and the recordings, per stream; and
// the same once the ledger's record of the session expired (from the stored VoD playlist).
func TestListStoredSessionAndRecordings(t *testing.T) {
	ctx := context.Background()
	rs := redistest.Start(t)
	s3 := s3test.Versity(t)
	up := s3.Uploader(t, nil)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer client.Close()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	set, err := roots.New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	vod := parse(t, "{app}/{stream}/vod/{session}.m3u8")
	pm := &playlist.Manager{Ledger: playlist.New(client, playlist.Settings{Window: time.Minute, Retain: time.Hour}),
		Store: up, VODKey: &vod, Node: "n1", Log: slog.New(slog.DiscardHandler)}
	off := &worker.Offloader{Roots: set, Store: up, Purge: true, Playlists: pm, Purges: pm, Log: slog.New(slog.DiscardHandler)}

	offload := func(kind, rel, key string, size int, seq int64) int {
		t.Helper()
		path := filepath.Join(root, rel)
		write(t, path, size)
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		p := queue.Offload{Kind: kind, Path: path, Key: key, File: fileid.Of(fi), Vhost: "__defaultVhost__", App: "live", Stream: "cam1"}
		if kind == queue.KindHLS {
			p.Playlist, p.PlaylistKey, p.Client, p.SeqNo, p.Duration = filepath.Join(root, "live/cam1.m3u8"), "live/cam1.m3u8", "c1", seq, 2.5
			if err := pm.Announce(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		if err := off.Offload(ctx, p); err != nil {
			t.Fatalf("offload %s: %v", rel, err)
		}
		return size
	}
	start := time.Now().Add(-time.Second)
	var hlsBytes int64
	for i := range 3 {
		hlsBytes += int64(offload(queue.KindHLS, fmt.Sprintf("live/cam1-%d.ts", i), fmt.Sprintf("live/cam1-%d.ts", i), 10_000+i*1000, int64(i)))
	}
	if err := pm.End(ctx, queue.End{Vhost: "__defaultVhost__", App: "live", Stream: "cam1", Client: "c1", Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	dvr := parse(t, "{app}/{stream}/{basename}")
	recSizes := map[string]int{"live/cam1/rec-1.flv": 40_000, "live/cam1/rec-2.mp4": 25_000}
	for key, size := range recSizes {
		offload(queue.KindDVR, "rec/"+filepath.Base(key), key, size, 0)
	}
	// A recording of another stream, and a playlist beside the recordings: neither is cam1's.
	offload(queue.KindDVR, "rec/other.flv", "live/cam2/other.flv", 1000, 0)

	inv := &inventory.Inventory{Ledger: pm.Ledger, Bucket: up, DVRKey: dvr, VODKey: &vod}
	check := func(from string) {
		t.Helper()
		got, err := inv.List(ctx, "live", "cam1")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].App != "live" || got[0].Stream != "cam1" || got[0].Playlist != "live/cam1.m3u8" {
			t.Fatalf("streams %+v", got)
		}
		st := got[0]
		if len(st.Sessions) != 1 {
			t.Fatalf("sessions %+v", st.Sessions)
		}
		s := st.Sessions[0]
		if s.Segments != 3 || s.Duration != 7.5 || s.Bytes != hlsBytes || s.Missing != 0 || !s.Ended || s.From != from || s.Client != "c1" {
			t.Errorf("session %+v, want 3 segments, 7.5 s, %d bytes, ended, from %s", s, hlsBytes, from)
		}
		if !strings.HasPrefix(s.VOD, "live/cam1/vod/") || !strings.HasSuffix(s.VOD, "-c1.m3u8") || !s.VODStored {
			t.Errorf("vod %q stored %v", s.VOD, s.VODStored)
		}
		if _, err := up.Get(ctx, s.VOD); err != nil {
			t.Errorf("the VoD key ls names is not in the bucket: %v", err)
		}
		if s.Start.Before(start) || s.End.Before(s.Start.Add(-time.Second)) || time.Since(s.End) > time.Minute {
			t.Errorf("times: start %v end %v (test started %v)", s.Start, s.End, start)
		}
		if len(st.DVR) != 2 {
			t.Fatalf("recordings %+v", st.DVR)
		}
		for _, f := range st.DVR {
			if int64(recSizes[f.Key]) != f.Size || time.Since(f.Time) > time.Minute {
				t.Errorf("recording %+v, want size %d", f, recSizes[f.Key])
			}
		}
	}
	check("ledger")

	all, err := inv.List(ctx, "", "")
	if err != nil || len(all) != 2 || all[1].Stream != "cam2" || len(all[1].DVR) != 1 || len(all[1].Sessions) != 0 {
		t.Fatalf("ls of everything: %+v %v", all, err)
	}
	if none, err := inv.List(ctx, "live", "nonesuch"); err != nil || len(none) != 0 {
		t.Fatalf("ls of an unknown stream: %+v %v", none, err)
	}

	// playlist.retain passed: the ledger's record of the session is gone, its VoD playlist stays.
	if err := client.Del(ctx, rdb.StreamKeys("live/cam1.m3u8").VOD(1)).Err(); err != nil {
		t.Fatal(err)
	}
	check("vod")
}
