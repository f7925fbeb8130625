package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	rdbkeys "github.com/srs-offload/srs-offload/rdb"
)

// playlist.enabled false: segments are stored, verified and purged as always, but no playlist is
// written and no ledger kept; on_unpublish is answered and does nothing.
func TestE2EArchiveOnly(t *testing.T) {
	s, root := newStackWith(t, "playlist: {enabled: false}\n")
	s.start("serve")
	url := "http://" + s.listen + "/api/v1/hls"
	b := s3Bucket{s.store}
	m3u8 := filepath.Join(root, "live/cam1.m3u8")
	os.MkdirAll(filepath.Dir(m3u8), 0o755)
	os.WriteFile(m3u8, []byte("#EXTM3U\n"), 0o644)
	var wants []want
	for seq := int64(1); seq <= 3; seq++ {
		rel := fmt.Sprintf("live/cam1-%d.ts", seq)
		data := randomBytes(20<<10, uint64(seq))
		p := filepath.Join(root, rel)
		os.WriteFile(p, data, 0o644)
		post(t, url, srsHook("c1", "cam1", root, "./"+rel, rel, m3u8, seq, 2))
		wants = append(wants, want{key: rel, local: p, data: data})
	}
	unpub, _ := json.Marshal(map[string]any{"action": "on_unpublish", "client_id": "c1", "vhost": "__defaultVhost__", "app": "live", "stream": "cam1"})
	post(t, "http://"+s.listen+"/api/v1/streams", unpub)
	s.settle(wants, 20*time.Second)
	time.Sleep(time.Second) // a playlist upload, if there were one, would follow its segment
	keys, err := b.list("")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.HasSuffix(k, ".m3u8") {
			t.Errorf("playlist %s written with playlist.enabled false", k)
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.redis.Addr})
	defer rdb.Close()
	all, err := rdb.Keys(context.Background(), "so:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	// The node's status records (disk backlog, uploads in flight) are not the ledger.
	var ledger []string
	for _, k := range all {
		if !strings.HasPrefix(k, strings.TrimSuffix(rdbkeys.DiskMatch, "*")) && !strings.HasPrefix(k, strings.TrimSuffix(rdbkeys.ProgressMatch, "*")) {
			ledger = append(ledger, k)
		}
	}
	if len(ledger) > 0 {
		t.Errorf("ledger keys in Redis with playlist.enabled false: %v", ledger)
	}
}
