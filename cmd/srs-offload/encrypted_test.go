package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/internal/hlstest"
)

// An encrypted stream (SRS's hls_keys on: AES-128 segments, EXT-X-KEY naming a key file beside
// the playlist) stays playable from the bucket: srs-offload keeps EXT-X-KEY, stores the key file,
// and ffprobe decrypts the whole VoD over HTTP after every local segment is gone.
func TestE2EMediaEncrypted(t *testing.T) {
	tool(t, "ffmpeg")
	tool(t, "ffprobe")
	d := startDev(t, "")
	const stream, client = "enc", "9e1kq7z2"
	dir := filepath.Join(d.root, "live")
	os.MkdirAll(filepath.Join(dir, "keys"), 0o755)
	key := make([]byte, 16)
	rand.Read(key)
	keyFile := filepath.Join(dir, "keys", "enc-0.key")
	os.WriteFile(keyFile, key, 0o644)
	keyInfo := filepath.Join(t.TempDir(), "keyinfo")
	os.WriteFile(keyInfo, []byte("keys/enc-0.key\n"+keyFile+"\n"), 0o644)
	m3u8 := filepath.Join(dir, stream+".m3u8")
	runTool(t, 60*time.Second, "ffmpeg", "-v", "error", "-nostdin",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=320x240:rate=%d", mediaFPS), "-t", "9",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(2*mediaFPS), "-keyint_min", strconv.Itoa(2*mediaFPS), "-sc_threshold", "0",
		"-f", "hls", "-hls_time", "2", "-hls_list_size", "0", "-hls_key_info_file", keyInfo,
		"-hls_segment_filename", filepath.Join(dir, stream+"-%d.ts"), m3u8)
	body, _ := os.ReadFile(m3u8)
	if !strings.Contains(string(body), "#EXT-X-KEY:METHOD=AES-128") {
		t.Fatalf("ffmpeg wrote no EXT-X-KEY:\n%s", body)
	}
	src, err := hlstest.Parse("live/"+stream+".m3u8", body)
	if err != nil {
		t.Fatal(err)
	}
	// ffprobe opens local .key files only when told to; over HTTP it needs no such option.
	srcDur, _ := strconv.ParseFloat(strings.TrimSpace(runTool(t, 30*time.Second, "ffprobe", "-v", "error", "-allowed_extensions", "ALL",
		"-show_entries", "format=duration", "-of", "csv=p=0", m3u8)), 64)
	var probe struct {
		Streams []struct {
			Packets string `json:"nb_read_packets"`
		} `json:"streams"`
	}
	json.Unmarshal([]byte(runTool(t, 30*time.Second, "ffprobe", "-v", "error", "-allowed_extensions", "ALL", "-count_packets",
		"-show_entries", "stream=codec_name,nb_read_packets", "-of", "json", m3u8)), &probe)
	if len(probe.Streams) != 1 || srcDur < 8 {
		t.Fatalf("source: %.3f s, %+v", srcDur, probe)
	}
	srcPackets := "h264=" + probe.Streams[0].Packets

	hook := "http://" + d.listen + "/api/v1/hls"
	var want []seg
	for _, s := range src.Segments {
		post(t, hook, srsHook(client, stream, "/usr/local/srs", filepath.Join(d.root, filepath.FromSlash(s.Key)), s.Key, m3u8, s.MSN, s.Duration))
		dur, _ := strconv.ParseFloat(fmt.Sprintf("%.2f", s.Duration), 64)
		want = append(want, seg{key: s.Key, dur: dur})
	}
	unpublish, _ := json.Marshal(map[string]any{"action": "on_unpublish", "client_id": client, "vhost": "__defaultVhost__", "app": "live", "stream": stream, "param": ""})
	post(t, "http://"+d.listen+"/api/v1/streams", unpublish)

	live := waitLive(t, d.bucket, "live/"+stream+".m3u8", liveWindow(want, 60), 20*time.Second)
	vodKey, vod := waitVOD(t, d.bucket, "live/"+stream+"/vod/", want, 20*time.Second)
	for name, pl := range map[string]struct {
		key string
		p   *hlstest.Playlist
	}{"live": {"live/" + stream + ".m3u8", live}, "VoD": {vodKey, vod}} {
		for _, s := range pl.p.Segments {
			uri := ""
			if i := strings.Index(s.KeyTag, `URI="`); i >= 0 {
				uri = s.KeyTag[i+5:]
				uri = uri[:strings.IndexByte(uri, '"')]
			}
			k, err := hlstest.Resolve(pl.key, uri)
			if err != nil || !strings.Contains(s.KeyTag, "METHOD=AES-128") {
				t.Fatalf("%s playlist: segment %s has EXT-X-KEY %q (%v)", name, s.URI, s.KeyTag, err)
			}
			b, _, found, _ := d.bucket.get(k)
			if !found || !bytes.Equal(b, key) {
				t.Fatalf("%s playlist: key %s (from %q) is not the key file in storage", name, k, s.KeyTag)
			}
		}
	}
	for _, s := range src.Segments {
		if _, err := os.Stat(filepath.Join(d.root, filepath.FromSlash(s.Key))); !os.IsNotExist(err) {
			t.Errorf("local segment %s not purged", s.Key)
		}
	}
	vodURL := d.bucket.base + "/" + vodKey
	vodDur, vodPackets := probeDuration(t, vodURL), probeStreams(t, vodURL, true)
	t.Logf("encrypted source %.3f s (%s); VoD %.3f s (%s)", srcDur, srcPackets, vodDur, vodPackets)
	if math.Abs(vodDur-srcDur) > 0.5 || vodPackets != srcPackets {
		t.Errorf("VoD plays %.3f s (%s), the source %.3f s (%s)", vodDur, vodPackets, srcDur, srcPackets)
	}
}
