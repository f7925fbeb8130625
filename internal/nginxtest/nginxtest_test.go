package nginxtest_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/internal/nginxtest"
	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/uploader"
)

func put(t *testing.T, u *uploader.Uploader, key string, body []byte) {
	t.Helper()
	typ, ok := media.ForHLS(key)
	if !ok {
		t.Fatalf("no media type for %s", key)
	}
	if _, err := u.Put(context.Background(), key, bytes.NewReader(body), int64(len(body)), typ, "test"); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func get(t *testing.T, e *nginxtest.Edge, path string, wantStatus int, wantCache string) []byte {
	t.Helper()
	status, body, cache := e.Get(t, path)
	if status != wantStatus || cache != wantCache {
		t.Fatalf("GET %s: %d %s, want %d %s\n%s", path, status, cache, wantStatus, wantCache, e.ErrorLog())
	}
	return body
}

// The edge caches what the bucket serves: a MISS fetches it, the next GET is a HIT with the same
// bytes, and the access log shows both.
func TestCachesObjects(t *testing.T) {
	s3 := s3test.Fake(t, nil)
	u := s3.Uploader(t, nil)
	seg := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	put(t, u, "live/livestream-1.ts", seg)

	e := nginxtest.Start(t, s3.Endpoint)
	path := fmt.Sprintf("/%s/live/livestream-1.ts", s3.Bucket)
	if body := get(t, e, path, 200, "MISS"); !bytes.Equal(body, seg) {
		t.Fatalf("MISS body: %d bytes, want the %d stored", len(body), len(seg))
	}
	if body := get(t, e, path, 200, "HIT"); !bytes.Equal(body, seg) {
		t.Fatalf("HIT body: %d bytes, want the %d stored", len(body), len(seg))
	}
	// The cache key is $uri: a query string does not make another entry.
	get(t, e, path+"?x=1", 200, "HIT")

	rs := e.WaitRequests(t, 3, 5*time.Second)
	want := []nginxtest.Request{
		{Method: "GET", URI: path, Status: 200, Cache: "MISS", UserAgent: nginxtest.UserAgent},
		{Method: "GET", URI: path, Status: 200, Cache: "HIT", UserAgent: nginxtest.UserAgent},
		{Method: "GET", URI: path + "?x=1", Status: 200, Cache: "HIT", UserAgent: nginxtest.UserAgent},
	}
	if fmt.Sprint(rs) != fmt.Sprint(want) {
		t.Fatalf("access log:\n%+v\nwant\n%+v", rs, want)
	}
}

// A GET that arrives before the object exists caches the 404: once the object is stored the edge
// still answers 404 (HIT). This is the poisoning that warming must never cause.
func TestCachesNotFound(t *testing.T) {
	s3 := s3test.Fake(t, nil)
	u := s3.Uploader(t, nil)
	e := nginxtest.Start(t, s3.Endpoint)
	path := fmt.Sprintf("/%s/live/livestream-2.ts", s3.Bucket)

	get(t, e, path, 404, "MISS")
	put(t, u, "live/livestream-2.ts", []byte("segment two"))
	get(t, e, path, 404, "HIT")

	rs := e.WaitRequests(t, 2, 5*time.Second)
	if len(rs) != 2 || rs[0].Status != 404 || rs[0].Cache != "MISS" || rs[1].Status != 404 || rs[1].Cache != "HIT" {
		t.Fatalf("access log: %+v", rs)
	}

	// An edge that does not cache 404s fetches the object once it exists.
	e2 := nginxtest.Start(t, s3.Endpoint, nginxtest.CacheValid(404, 0))
	path3 := fmt.Sprintf("/%s/live/livestream-3.ts", s3.Bucket)
	get(t, e2, path3, 404, "MISS")
	put(t, u, "live/livestream-3.ts", []byte("segment three"))
	if body := get(t, e2, path3, 200, "MISS"); string(body) != "segment three" {
		t.Fatalf("body %q", body)
	}
	get(t, e2, path3, 200, "HIT")
}

// An upstream with a path serves the edge's paths under it (a CDN origin path), and the access log
// shows each client's User-Agent.
func TestOriginPath(t *testing.T) {
	s3 := s3test.Fake(t, nil)
	u := s3.Uploader(t, nil)
	put(t, u, "a/b.ts", []byte("b"))
	e := nginxtest.Start(t, s3.Endpoint+"/"+s3.Bucket+"/")
	if body := get(t, e, "/a/b.ts", 200, "MISS"); string(body) != "b" {
		t.Fatalf("body %q", body)
	}
	rs := e.WaitRequests(t, 1, 5*time.Second)
	if rs[0].URI != "/a/b.ts" || rs[0].UserAgent != nginxtest.UserAgent {
		t.Fatalf("access log: %+v", rs)
	}
	e.Stop()
	e.Stop() // twice is fine; t.Cleanup calls it again
}
