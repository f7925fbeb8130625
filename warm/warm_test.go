package warm

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/queue"
)

func TestPatternMatch(t *testing.T) {
	p, err := ParsePattern("/api/v1/hls/{app}/{stream}/{ts_url}")
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]Notice{
		"/api/v1/hls/live/livestream/livestream-0.ts":                 {"live", "livestream", "livestream-0.ts"},
		"/api/v1/hls/live/cam1/cam1/2026/11/23/22/1795474211734-0.ts": {"live", "cam1", "cam1/2026/11/23/22/1795474211734-0.ts"},
		"/api/v1/hls/live/cam%201/a%20b.ts":                           {"live", "cam 1", "a b.ts"},
	}
	for path, want := range good {
		n, err := p.Match(path)
		if err != nil || n != want {
			t.Errorf("%s: %+v %v, want %+v", path, n, err, want)
		}
	}
	for _, path := range []string{
		"/api/v1/hls/live/cam/../../etc/passwd",
		"/api/v1/hls/live/cam/a/../../b.ts",
		"/api/v1/hls/live/cam/%2e%2e/x.ts",
		"/api/v1/hls/live/cam//evil.example.com/x.ts",
		"/api/v1/hls/live/cam/http://evil.example.com/x.ts",
		"/api/v1/hls/live/cam/http:%2F%2Fevil.example.com%2Fx.ts",
		"/api/v1/hls/../cam/x.ts",
		"/api/v1/hls/live/cam/x.ts%00",
		"/api/v1/hls/live/cam/a%5Cb.ts",
		"/api/v1/hls/live/cam/",
	} {
		if n, err := p.Match(path); !errors.Is(err, ErrUnsafe) && !errors.Is(err, ErrNoMatch) {
			t.Errorf("%s: accepted as %+v", path, n)
		}
	}
	if _, err := p.Match("/api/v1/streams"); !errors.Is(err, ErrNoMatch) {
		t.Errorf("another path: %v", err)
	}
	withIDs, err := ParsePattern("/n/{server_id}/{app}/{stream}/{ts_url}")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := withIDs.Match("/n/vid-i06a97s/live/s/x.ts"); err != nil || n.TSURL != "x.ts" || n.App != "live" {
		t.Errorf("with server_id: %+v %v", n, err)
	}
	for _, bad := range []string{"api/{app}/{stream}/{ts_url}", "/x/{app}/{ts_url}", "/x/{ts_url}/{app}/{stream}", "/x/{app}/{stream}/{nope}/{ts_url}", "/x/a{app}/{stream}/{ts_url}"} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
}

// Notify and stored meet whichever comes first; a side left alone expires.
func TestRendezvous(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	r := NewRendezvous(rdb, 300*time.Millisecond)

	// Notify first: nothing to warm yet; stored later completes it.
	if _, ready, err := r.Notified(ctx, "live/a.ts"); ready || err != nil {
		t.Fatalf("notify first: ready=%v %v", ready, err)
	}
	if ready, err := r.Stored(ctx, "live/a.ts", "live/a.ts"); !ready || err != nil {
		t.Fatalf("then stored: ready=%v %v", ready, err)
	}
	// Stored first (under an alternate key): the notify learns the actual key.
	if ready, _ := r.Stored(ctx, "live/b.ts", "live/b~1234.ts"); ready {
		t.Fatal("stored first: ready")
	}
	if actual, ready, err := r.Notified(ctx, "live/b.ts"); !ready || actual != "live/b~1234.ts" || err != nil {
		t.Fatalf("then notify: %q %v %v", actual, ready, err)
	}
	// The same side twice does not meet itself; a lone side expires.
	r.Notified(ctx, "live/c.ts")
	if _, ready, _ := r.Notified(ctx, "live/c.ts"); ready {
		t.Fatal("two notifies met")
	}
	time.Sleep(400 * time.Millisecond)
	if ready, _ := r.Stored(ctx, "live/c.ts", "live/c.ts"); ready {
		t.Fatal("an expired notify still met")
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// The warmer reads every byte through each target, retries a failing edge a bounded number of
// times, connects to pinned edges with the URL's host name, posts prefetch bodies, and never
// follows a redirect to another host.
func TestWarmer(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	var fails atomic.Int32
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		body, _ := io.ReadAll(r.Body)
		seen = append(seen, r.Method+" "+r.Host+r.URL.Path+" "+string(body)+" "+r.Header.Get("X-Purpose"))
		mu.Unlock()
		switch {
		case r.URL.Path == "/b/pfx/live/flaky.ts" && fails.Add(1) <= 2:
			w.WriteHeader(http.StatusBadGateway)
		case strings.HasSuffix(r.URL.Path, "/redirect.ts"):
			http.Redirect(w, r, "http://evil.example.com/x", http.StatusFound)
		default:
			w.Write(make([]byte, 100000))
		}
	}))
	defer edge.Close()
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Errorf("evil host contacted: %s", r.URL) }))
	defer evil.Close()
	addr := strings.TrimPrefix(edge.URL, "http://")
	w, err := NewWarmer([]Target{
		{Name: "direct", URL: edge.URL + "/b/{key}", Retries: 2, Headers: map[string]string{"X-Purpose": "warm"}},
		{Name: "pinned", URL: "http://cdn.example.com/{bucket}/{key}", Edges: []string{addr, addr}},
		{Name: "prefetch", URL: edge.URL + "/prefetch/{key}", Method: http.MethodPost, Body: `{"urls":["{url}"]}`},
	}, "live", "pfx/", quiet())
	if err != nil {
		t.Fatal(err)
	}
	w.Warm(context.Background(), "live/cam/a b.ts")
	w.Warm(context.Background(), "live/flaky.ts")
	w.Warm(context.Background(), "live/redirect.ts")
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(seen, "\n")
	for _, want := range []string{
		"GET " + addr + "/b/pfx/live/cam/a b.ts  warm",
		"GET cdn.example.com/live/pfx/live/cam/a b.ts  ",
		`POST ` + addr + `/prefetch/pfx/live/cam/a b.ts {"urls":["` + edge.URL + `/prefetch/pfx/live/cam/a%20b.ts"]} `,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no request %q in\n%s", want, all)
		}
	}
	if n := strings.Count(all, "GET cdn.example.com/live/pfx/live/cam/a b.ts"); n != 2 {
		t.Errorf("pinned edges: %d requests, want one per edge (2)", n)
	}
	if n := strings.Count(all, addr+"/b/pfx/live/flaky.ts"); n != 3 {
		t.Errorf("flaky edge: %d attempts, want 3 (1 + 2 retries)", n)
	}
}

// With on_upload, every stored segment is warmed at once; without it only those SRS notified,
// under the key they were actually stored at.
func TestTrigger(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	var got []string
	enqueue := func(_ context.Context, w queue.Warm) error { got = append(got, w.Key); return nil }
	r := NewRendezvous(rdb, time.Minute)

	on := &Trigger{Rendezvous: r, Enqueue: enqueue, OnUpload: true}
	on.Stored(ctx, "live/a.ts", "live/a.ts")
	off := &Trigger{Rendezvous: r, Enqueue: enqueue}
	off.Stored(ctx, "live/b.ts", "live/b.ts") // never notified: not warmed
	r.Notified(ctx, "live/c.ts")
	off.Stored(ctx, "live/c.ts", "live/c~77.ts")
	if strings.Join(got, " ") != "live/a.ts live/c~77.ts" {
		t.Fatalf("warmed %v", got)
	}
}
