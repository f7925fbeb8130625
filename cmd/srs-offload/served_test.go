package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// servedBucket reads live playlists from srs-offload's hook listener (playlist.live: served) and
// everything else (segments, VoD playlists) from the bucket.
type servedBucket struct {
	s3Bucket
	base string // http://<listen>/live
}

func (b servedBucket) get(key string) ([]byte, string, bool, error) {
	if !strings.HasSuffix(key, ".m3u8") || strings.Contains(key, "/vod/") {
		return b.s3Bucket.get(key)
	}
	return httpBucket{b.base}.get(key)
}

// playlist.live: served: SRS's captured sessions replayed against serve; the live playlists come
// from the hook listener (without the hooks' token, as players and CDNs have none), every version
// valid, naming only stored segments, never going back; the VoD playlists are in the bucket; no
// live playlist object is ever written to the bucket; a client holding the current version gets
// 304.
func TestE2EServedLivePlaylist(t *testing.T) {
	tmp := t.TempDir()
	absRoot := filepath.Join(tmp, "data", "srs")
	relCwd := filepath.Join(tmp, "usr", "local", "srs")
	relRoot := filepath.Join(relCwd, "objs", "nginx", "html")
	for _, d := range []string{absRoot, relRoot} {
		os.MkdirAll(d, 0o755)
	}
	s := newStack(t, absRoot, relRoot)
	f, err := os.OpenFile(s.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("hooks: {token: s3cret}\nplaylist: {live: served, live_path: /live/}\n")
	f.Close()
	p := s.start("serve")
	tokened := func(f []fixture) []fixture {
		for i := range f {
			sep := "?"
			if strings.Contains(f[i].Path, "?") {
				sep = "&"
			}
			f[i].Path += sep + "token=s3cret"
		}
		return f
	}
	abs := s.replay(tokened(readFixtures(t, "srs-7.0.18-abs-paths.jsonl")), func(f string) string {
		return strings.Replace(f, "/data/srs", absRoot, 1)
	}, "/usr/local/srs")
	rel := s.replay(tokened(readFixtures(t, "srs-7.0.18-rel-paths.jsonl")), func(f string) string { return f }, relCwd)
	if len(abs.files) < 10 || len(rel.files) < 5 || len(abs.sessions) != 1 || len(rel.sessions) != 1 {
		t.Fatalf("fixtures gave only %d + %d files", len(abs.files), len(rel.files))
	}
	s.settle(append(abs.files, rel.files...), 60*time.Second)
	b := servedBucket{s3Bucket{s.store}, "http://" + s.listen + "/live"}
	checkPlaylists(t, b, abs, 30*time.Second)
	checkPlaylists(t, b, rel, 30*time.Second)
	for _, r := range []replayed{abs, rel} {
		pk := r.sessions[0].playlist
		if _, _, found, err := (s3Bucket{s.store}).get(pk); err != nil || found {
			t.Errorf("live playlist %s in the bucket (found %v, %v): served mode writes none", pk, found, err)
		}
		resp, err := http.Get(b.base + "/" + pk)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=1" {
			t.Errorf("%s: Cache-Control %q", pk, cc)
		}
		req, _ := http.NewRequest(http.MethodGet, b.base+"/"+pk, nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		again, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		again.Body.Close()
		if resp.Header.Get("ETag") == "" || again.StatusCode != http.StatusNotModified {
			t.Errorf("%s: ETag %q, then %d for If-None-Match; want 304", pk, resp.Header.Get("ETag"), again.StatusCode)
		}
	}
	// Unknown playlists are 404; hooks still need the token.
	if resp, err := http.Get(b.base + "/live/nobody.m3u8"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown live playlist: %v %v, want 404", resp.StatusCode, err)
	}
	if resp, err := http.Post("http://"+s.listen+"/api/v1/hls", "application/json", strings.NewReader(`{"action":"on_hls"}`)); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("hook without the token: %v %v, want 403", resp.StatusCode, err)
	}
	p.stop(t)
}
