package warm_test

import (
	"context"
	"errors"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/warm"
)

// known is the ledger's folder lookup with one stream, live/known, whose playlist is in "live".
type known struct{}

func (known) Folder(_ context.Context, app, stream string) (string, bool, error) {
	if app == "live" && stream == "known" {
		return "live", true, nil
	}
	return "", false, nil
}

// FuzzNotify feeds on_hls_notify paths (as anyone reaching the hook listener can send them)
// through warm.notify_path patterns and the notify intake, against a real redis-server.
// Invariants: nothing panics; a match names one path segment each for app and stream and a
// ts_url below the stream's folder (no "..", no host, no query); only a notify for the one stream
// the ledger knows leaves anything in Redis, and only a mark for a key in that stream's folder;
// and nothing is warmed, since nothing is stored.
func FuzzNotify(f *testing.F) {
	const def = "/api/v1/hls/{app}/{stream}/{ts_url}"
	for _, p := range []string{
		"/api/v1/hls/live/known/known-0.ts", "/api/v1/hls/live/known/known/2026/11/23/22/1795474211734-0.ts",
		"/api/v1/hls/live/cam%201/a%20b.ts", "/api/v1/hls/live/known/../../etc/passwd", "/api/v1/hls/live/known/a/../../b.ts",
		"/api/v1/hls/live/known/%2e%2e/x.ts", "/api/v1/hls/live/known//evil.example.com/x.ts",
		"/api/v1/hls/live/known/http://evil.example.com/x.ts", "/api/v1/hls/live/known/http:%2F%2Fevil.example.com%2Fx.ts",
		"/api/v1/hls/../known/x.ts", "/api/v1/hls/live/known/x.ts%00", "/api/v1/hls/live/known/a%5Cb.ts",
		"/api/v1/hls/live/known/", "/api/v1/hls/live%2Fknown/x/y.ts", "/api/v1/hls/live/kn%6Fwn/x.ts?token=1",
		"/api/v1/hls/live/other/x.ts", "/api/v1/hls/%ff/known/\xff.ts", "/api/v1/streams",
	} {
		f.Add(def, p)
	}
	f.Add("/n/{server_id}/{app}/{stream}/{ts_url}", "/n/vid-i06a97s/live/known/x.ts")
	f.Add("/{stream}/{app}/{ts_url}", "/known/live/x.m4s")
	f.Add("/x/{app}/{stream}/{nope}/{ts_url}", "/x/live/known/a/b.ts")
	f.Add("0\xff", "0\xff")

	srv := redistest.Start(f)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	f.Cleanup(func() { rdb.Close() })
	fallback, err := objkey.Parse("{app}")
	if err != nil {
		f.Fatal(err)
	}
	hlsKey, err := objkey.Parse("{url}")
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, pattern, p string) {
		pat, err := warm.ParsePattern(pattern)
		if err != nil {
			return
		}
		n, err := pat.Match(p)
		if err != nil && !errors.Is(err, warm.ErrNoMatch) && !errors.Is(err, warm.ErrUnsafe) {
			t.Fatalf("Match(%q): %v, neither ErrNoMatch nor ErrUnsafe", p, err)
		}
		if err == nil {
			for _, s := range []string{n.App, n.Stream} {
				if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\\x00") {
					t.Fatalf("Match(%q) = %+v: %q is not one path segment", p, n, s)
				}
			}
			u := n.TSURL
			if u == "" || path.Clean(u) != u || path.IsAbs(u) || u == ".." || strings.HasPrefix(u, "../") ||
				strings.Contains(u, "://") || strings.ContainsAny(u, "\\\x00?#") {
				t.Fatalf("Match(%q) = %+v: ts_url leaves the stream's folder", p, n)
			}
		}
		if err := rdb.FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		warmed := 0
		in := &warm.Intake{Pattern: pat, Folders: known{}, Fallback: fallback, HLSKey: hlsKey,
			Rendezvous: warm.NewRendezvous(rdb, time.Minute),
			Enqueue:    func(context.Context, queue.Warm) error { warmed++; return nil }}
		aerr := in.Accept(ctx, p) // an error is only logged: SRS ignores the answer
		if err != nil && aerr == nil {
			t.Fatalf("Accept(%q) took a notify Match refused: %v", p, err)
		}
		keys, err := rdb.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 0 && (n.App != "live" || n.Stream != "known") {
			t.Fatalf("notify %q for %s/%s (not a known stream) left %q in Redis", p, n.App, n.Stream, keys)
		}
		for _, k := range keys {
			if !strings.HasPrefix(k, "so:warm:live/") {
				t.Fatalf("notify %q left %q: not a segment of the known stream's folder", p, k)
			}
		}
		if warmed > 0 {
			t.Fatalf("notify %q warmed a segment that is not stored", p)
		}
	})
}
