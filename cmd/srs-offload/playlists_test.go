package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Every stored segment is in its playlists, after the faults SRS's one-shot hooks leave behind:
//   - a segment whose hook never came, in the middle of hooked ones, is found by the reconciler,
//     gets its seq_no and duration from SRS's m3u8 on disk, and the live playlist (which kept its
//     place, within playlist.stall) and the VoD playlist list it at its place with its duration;
//   - its hook, arriving only after the file was uploaded and purged, is answered {"code":0};
//   - a repeated hook for an old segment, after the purge, is answered {"code":0} and does not
//     start a new session: one VoD playlist, whole, without a discontinuity.
//
// Unlisted: SRS's m3u8 no longer lists segment 1 and its bytes are no media, so the reconciler
// stores it without a place; the live playlist waits at its place until its hook, arriving after
// the purge, completes it, and both playlists list it.
func TestE2EFoundAndLateSegmentsInPlaylists(t *testing.T) {
	t.Run("listed", func(t *testing.T) { testFoundAndLate(t, false) })
	t.Run("unlisted", func(t *testing.T) { testFoundAndLate(t, true) })
}

func testFoundAndLate(t *testing.T, unlisted bool) {
	s, root := newStackWith(t, "reconcile: {min_age: 1s, interval: 1h}\nplaylist: {stall: 1h, vod_wait: 1m}\n")
	s.start("hooks")
	s.start("worker")
	url := "http://" + s.listen + "/api/v1/hls"
	b := s3Bucket{s.store}
	m3u8 := filepath.Join(root, "live/cam1.m3u8")
	os.MkdirAll(filepath.Dir(m3u8), 0o755)
	durs := []float64{2, 1.5, 2, 2}
	// SRS's playlist lists every segment as it closes them (written before their hooks).
	var listed strings.Builder
	writeM3U8 := func(upTo int) {
		listed.Reset()
		listed.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n")
		for i := 0; i <= upTo; i++ {
			if unlisted && i == 1 {
				continue
			}
			fmt.Fprintf(&listed, "#EXTINF:%.3f, no desc\ncam1-%d.ts\n", durs[i], i)
		}
		os.WriteFile(m3u8+".temp", []byte(listed.String()), 0o644)
		os.Rename(m3u8+".temp", m3u8)
	}
	rels := make([]string, len(durs))
	var want []seg
	for i := range durs {
		rels[i] = fmt.Sprintf("live/cam1-%d.ts", i)
		data := randomBytes(16<<10, uint64(i)) // not media: only SRS's m3u8 gives their durations
		writeSegment(t, filepath.Join(root, rels[i]), data)
		writeM3U8(i)
		want = append(want, seg{rels[i], durs[i]})
	}
	hook := func(i int) []byte {
		return srsHook("c1", "cam1", root, "./"+rels[i], rels[i], m3u8, int64(i), durs[i])
	}
	for _, i := range []int{0, 2, 3} { // segment 1's hook never comes (for now)
		post(t, url, hook(i))
	}
	if unlisted {
		waitLive(t, b, "live/cam1.m3u8", want[:1], 30*time.Second)
	} else {
		waitLive(t, b, "live/cam1.m3u8", want, 30*time.Second)
	}
	for _, r := range rels {
		deadline := time.Now().Add(10 * time.Second)
		for exists(filepath.Join(root, r)) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if exists(filepath.Join(root, r)) {
			t.Fatalf("%s not purged", r)
		}
	}
	post(t, url, hook(1)) // late, after its file was stored and purged: {"code":0}
	waitLive(t, b, "live/cam1.m3u8", want, 30*time.Second)
	post(t, url, hook(0)) // repeated, for an old segment
	unpub, _ := json.Marshal(map[string]any{"action": "on_unpublish", "client_id": "c1", "vhost": "__defaultVhost__", "app": "live", "stream": "cam1"})
	post(t, "http://"+s.listen+"/api/v1/streams", unpub)
	waitVOD(t, b, "live/cam1/vod/", want, 30*time.Second)
	time.Sleep(time.Second) // a second VoD playlist, were one made, would be there by now
	waitVOD(t, b, "live/cam1/vod/", want, time.Second)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
