package warm

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/queue"
)

// folderMap is the ledger's folder lookup, in memory.
type folderMap map[string]string

func (f folderMap) Folder(_ context.Context, app, stream string) (string, bool, error) {
	v, ok := f[app+"/"+stream]
	return v, ok, nil
}

// A notify that names no stream the ledger knows leaves nothing in Redis (it only meets a segment
// already stored); a known stream's notify waits at the rendezvous as before.
func TestNotifyUnknownStreamLeavesNothing(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	pat, err := ParsePattern("/api/v1/hls/{app}/{stream}/{ts_url}")
	if err != nil {
		t.Fatal(err)
	}
	fallback, _ := objkey.Parse("{app}")
	hlsKey, _ := objkey.Parse("{url}")
	var mu sync.Mutex
	var warmed []string
	r := NewRendezvous(rdb, time.Minute)
	in := &Intake{Pattern: pat, Folders: folderMap{"live/known": "live"}, Fallback: fallback, HLSKey: hlsKey, Rendezvous: r,
		Enqueue: func(_ context.Context, w queue.Warm) error {
			mu.Lock()
			defer mu.Unlock()
			warmed = append(warmed, w.Key)
			return nil
		}}
	size := func() int64 {
		n, err := rdb.DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := range 50 {
		if err := in.Accept(ctx, "/api/v1/hls/live/nobody/"+string(rune('a'+i%26))+"x.ts"); err != nil {
			t.Fatal(err)
		}
	}
	if n := size(); n != 0 {
		t.Fatalf("unknown-stream notifies left %d keys in Redis", n)
	}
	// An unknown stream's segment stored already is still warmed.
	if ready, err := r.Stored(ctx, "live/stored.ts", "live/stored~1.ts"); ready || err != nil {
		t.Fatal(ready, err)
	}
	if err := in.Accept(ctx, "/api/v1/hls/live/other/stored.ts"); err != nil {
		t.Fatal(err)
	}
	if len(warmed) != 1 || warmed[0] != "live/stored~1.ts" || size() != 0 {
		t.Fatalf("warmed %v, %d keys", warmed, size())
	}
	// A known stream's notify waits for its segment.
	if err := in.Accept(ctx, "/api/v1/hls/live/known/k-1.ts"); err != nil {
		t.Fatal(err)
	}
	if n := size(); n != 1 {
		t.Fatalf("known stream: %d keys, want the notify's mark", n)
	}
	if ready, err := r.Stored(ctx, "live/k-1.ts", "live/k-1.ts"); !ready || err != nil {
		t.Fatalf("stored after a known notify: ready=%v %v", ready, err)
	}
}
