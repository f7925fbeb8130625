package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/internal/hlstest"
)

// The real-media tests make HLS with ffmpeg (MPEG-TS, and fMP4 as SRS 7 writes it), hook every
// file the way SRS does, and then play the playlists srs-offload wrote with ffprobe, straight from
// the `srs-offload dev` bucket over plain HTTP, after every local segment is gone: the VoD
// playlist must hold the whole recording. ffmpeg and ffprobe come from `make tools`.

const (
	mediaSeconds = 15 // 2 s segments and a short last one, as SRS's last segment usually is
	mediaFPS     = 25
)

func TestE2EMediaTS(t *testing.T) { testMedia(t, false) }

func TestE2EMediaFMP4(t *testing.T) { testMedia(t, true) }

// tool finds a program installed by `make tools`.
func tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (make tools installs it): %v", name, err)
	}
	return p
}

// runTool runs a program and returns its stdout; anything on stderr (the tools run with -v error)
// or a non-zero exit fails the test.
func runTool(t testing.TB, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool(t, name), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String()
}

// probeDuration is ffprobe's duration of a playlist (a file or a URL).
func probeDuration(t testing.TB, src string) float64 {
	t.Helper()
	out := strings.TrimSpace(runTool(t, 30*time.Second, "ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", src))
	d, err := strconv.ParseFloat(out, 64)
	if err != nil {
		t.Fatalf("ffprobe %s: duration %q", src, out)
	}
	return d
}

// probeStreams is ffprobe's view of a playlist's streams, e.g. "h264 aac". count demuxes the whole
// playlist and adds each stream's packet count, e.g. "h264=375 aac=705".
func probeStreams(t testing.TB, src string, count bool) string {
	t.Helper()
	args := []string{"-v", "error", "-show_entries", "stream=codec_name,nb_read_packets", "-of", "json"}
	if count {
		args = append(args, "-count_packets")
	}
	out := runTool(t, 30*time.Second, "ffprobe", append(args, src)...)
	var res struct {
		Streams []struct {
			Codec   string `json:"codec_name"`
			Packets string `json:"nb_read_packets"`
		} `json:"streams"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", src, err, out)
	}
	var parts []string
	for _, s := range res.Streams {
		if count {
			parts = append(parts, s.Codec+"="+s.Packets)
		} else {
			parts = append(parts, s.Codec)
		}
	}
	return strings.Join(parts, " ")
}

// srsHook is an on_hls body as SRS 7 sends it; duration is printed with two decimals.
func srsHook(client, stream, cwd, file, url, m3u8 string, seq int64, dur float64) []byte {
	b, _ := json.Marshal(map[string]any{
		"server_id": "vid-i06a97s", "service_id": "7oas6q35", "action": "on_hls", "client_id": client,
		"ip": "127.0.0.1", "vhost": "__defaultVhost__", "app": "live", "tcUrl": "rtmp://127.0.0.1:1935/live",
		"stream": stream, "param": "", "duration": json.Number(fmt.Sprintf("%.2f", dur)), "cwd": cwd,
		"file": file, "url": url, "m3u8": m3u8, "m3u8_url": "live/" + stream + ".m3u8", "seq_no": seq,
		"stream_url": "/live/" + stream, "stream_id": "vid-18em181",
	})
	return b
}

// videoOnlyInit is an fMP4 init segment with only the video track, as SRS writes it first.
func videoOnlyInit(t testing.TB) []byte {
	dir := t.TempDir()
	runTool(t, 30*time.Second, "ffmpeg", "-v", "error", "-nostdin",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=320x240:rate=%d", mediaFPS), "-t", "2",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
		"-f", "hls", "-hls_time", "2", "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
		"-hls_segment_filename", filepath.Join(dir, "v-%d.m4s"), filepath.Join(dir, "v.m3u8"))
	b, err := os.ReadFile(filepath.Join(dir, "init.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testMedia(t *testing.T, fmp4 bool) {
	start := time.Now()
	tool(t, "ffmpeg")
	tool(t, "ffprobe")
	d := startDev(t, "log: {level: debug}\n")
	stream, ext := "mts", ".ts"
	if fmp4 {
		stream, ext = "mfmp4", ".m4s"
	}
	const client = "3k9xq2c7"
	// SRS's defaults: hls_m3u8_file [app]/[stream].m3u8, hls_ts_file [app]/[stream]-[seq].ts
	// (hls_fmp4_file [app]/[stream]-[seq].m4s), so url is live/<file name>.
	dir := filepath.Join(d.root, "live")
	os.MkdirAll(dir, 0o755)
	m3u8 := filepath.Join(dir, stream+".m3u8")
	args := []string{"-v", "error", "-nostdin",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=320x240:rate=%d", mediaFPS),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.Itoa(mediaSeconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(2 * mediaFPS), "-keyint_min", strconv.Itoa(2 * mediaFPS), "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "64k",
		"-f", "hls", "-hls_time", "2", "-hls_list_size", "0",
		"-hls_segment_filename", filepath.Join(dir, stream+"-%d"+ext)}
	if fmp4 {
		args = append(args, "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", stream+"-init.mp4")
	}
	runTool(t, 60*time.Second, "ffmpeg", append(args, m3u8)...)

	// The source, as ffmpeg wrote it: its playlist, what ffprobe makes of it, every file's bytes.
	body, err := os.ReadFile(m3u8)
	if err != nil {
		t.Fatal(err)
	}
	src, err := hlstest.Parse("live/"+stream+".m3u8", body)
	if err != nil {
		t.Fatalf("ffmpeg's playlist: %v\n%s", err, body)
	}
	if n := len(src.Segments); n < mediaSeconds/2 {
		t.Fatalf("ffmpeg wrote %d segments\n%s", n, body)
	}
	srcDur := probeDuration(t, m3u8)
	srcPackets := probeStreams(t, m3u8, true)
	if math.Abs(srcDur-mediaSeconds) > 0.5 {
		t.Fatalf("source: ffprobe says %.3f s, ffmpeg was asked for %d s", srcDur, mediaSeconds)
	}
	initKey := ""
	if fmp4 {
		initKey = src.Segments[0].Map
		if initKey != "live/"+stream+"-init.mp4" {
			t.Fatalf("ffmpeg's EXT-X-MAP is %q", initKey)
		}
	}
	data := map[string][]byte{}
	keys := []string{}
	for _, s := range src.Segments {
		keys = append(keys, s.Key)
	}
	if fmp4 {
		keys = append(keys, initKey)
	}
	for _, k := range keys {
		if data[k], err = os.ReadFile(filepath.Join(d.root, filepath.FromSlash(k))); err != nil {
			t.Fatal(err)
		}
	}

	// The hooks, in SRS's order. The MPEG-TS run uses absolute paths (an absolute hls_path), the
	// fMP4 run paths relative to SRS's cwd (a relative hls_path).
	cwd := filepath.Dir(d.root)
	local := func(key string) string {
		if fmp4 {
			return "./" + path.Join(filepath.Base(d.root), key)
		}
		return filepath.Join(d.root, filepath.FromSlash(key))
	}
	m3u8Field := local("live/" + stream + ".m3u8")
	hook := "http://" + d.listen + "/api/v1/hls"
	if fmp4 {
		// SRS 7 reports init.mp4 through on_hls (seq_no 0, duration 0.00) before any segment, once
		// per sequence header: first with the video track only, then rewritten (temp file and
		// rename) with the audio track too. The first one is let reach storage before the rewrite.
		initPath := filepath.Join(d.root, filepath.FromSlash(initKey))
		os.WriteFile(initPath+".tmp", videoOnlyInit(t), 0o644)
		os.Rename(initPath+".tmp", initPath)
		post(t, hook, srsHook(client, stream, cwd, local(initKey), initKey, m3u8Field, 0, 0))
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, _, found, _ := d.bucket.get(initKey); found {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the first init segment never reached storage\n%s", d.stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		os.WriteFile(initPath+".tmp", data[initKey], 0o644)
		os.Rename(initPath+".tmp", initPath)
		post(t, hook, srsHook(client, stream, cwd, local(initKey), initKey, m3u8Field, 0, 0))
	}
	var want []seg
	for _, s := range src.Segments {
		post(t, hook, srsHook(client, stream, cwd, local(s.Key), s.Key, m3u8Field, s.MSN, s.Duration))
		dur, _ := strconv.ParseFloat(fmt.Sprintf("%.2f", s.Duration), 64)
		want = append(want, seg{key: s.Key, dur: dur})
	}
	unpublish, _ := json.Marshal(map[string]any{
		"server_id": "vid-i06a97s", "service_id": "7oas6q35", "action": "on_unpublish", "client_id": client,
		"ip": "127.0.0.1", "vhost": "__defaultVhost__", "app": "live", "tcUrl": "rtmp://127.0.0.1:1935/live",
		"stream": stream, "param": "", "stream_url": "/live/" + stream, "stream_id": "vid-18em181",
	})
	post(t, "http://"+d.listen+"/api/v1/streams", unpublish)

	// Both playlists: valid, naming only stored objects, the live one never going back.
	live := waitLive(t, d.bucket, "live/"+stream+".m3u8", liveWindow(want, 60), 20*time.Second)
	vodKey, vod := waitVOD(t, d.bucket, "live/"+stream+"/vod/", want, 20*time.Second)
	// fMP4: every segment maps to the final init segment, the one with both tracks. The first
	// one holds its key, so the rewrite is stored under another.
	for name, p := range map[string]*hlstest.Playlist{"live": live, "VoD": vod} {
		for _, s := range p.Segments {
			if !fmp4 {
				if s.Map != "" {
					t.Errorf("%s playlist: MPEG-TS segment %s has EXT-X-MAP %q", name, s.URI, s.Map)
				}
				continue
			}
			b, ct, found, err := d.bucket.get(s.Map)
			if err != nil || !found || !bytes.Equal(b, data[initKey]) || ct != "video/mp4" {
				t.Errorf("%s playlist: %s has EXT-X-MAP %s: found %v, %d bytes, content type %q, not the final init segment (%d bytes)",
					name, s.URI, s.Map, found, len(b), ct, len(data[initKey]))
			}
		}
	}
	if fmp4 && (live.Version < 6 || vod.Version < 6) {
		t.Errorf("fMP4 playlists with EXT-X-VERSION %d (live), %d (VoD)", live.Version, vod.Version)
	}

	// The stored objects are ffmpeg's bytes, with their media types.
	ctype := map[string]string{".ts": "video/mp2t", ".m4s": "video/iso.segment", ".mp4": "video/mp4"}
	if fmp4 {
		if b, err := os.ReadFile(filepath.Join(d.root, filepath.FromSlash(initKey))); err != nil || !bytes.Equal(b, data[initKey]) {
			t.Errorf("init segment on disk: %v (srs-offload must not purge it: SRS rewrites it)", err)
		}
		keys = keys[:len(keys)-1] // its key holds the first version
	}
	for _, k := range keys {
		b, ct, found, err := d.bucket.get(k)
		if err != nil || !found || !bytes.Equal(b, data[k]) || ct != ctype[path.Ext(k)] {
			t.Errorf("%s: found %v, %d bytes (want %d), content type %q, %v", k, found, len(b), len(data[k]), ct, err)
		}
	}

	// Every segment is gone from the disk, so what plays below comes from the bucket alone.
	for _, s := range src.Segments {
		if _, err := os.Stat(filepath.Join(d.root, filepath.FromSlash(s.Key))); !os.IsNotExist(err) {
			t.Errorf("local segment %s not purged: %v", s.Key, err)
		}
	}

	vodURL := d.bucket.base + "/" + vodKey
	vodDur := probeDuration(t, vodURL)
	vodPackets := probeStreams(t, vodURL, true)
	t.Logf("source %.3f s (%s); VoD %s: %.3f s (%s), %d segments", srcDur, srcPackets, vodURL, vodDur, vodPackets, len(vod.Segments))
	if math.Abs(vodDur-srcDur) > 0.5 {
		t.Errorf("VoD plays %.3f s, the source %.3f s", vodDur, srcDur)
	}
	if vodPackets != srcPackets {
		t.Errorf("VoD demuxes to %s, the source to %s", vodPackets, srcPackets)
	}
	// The frames themselves span the source's duration, not just the EXTINF tags.
	var frames int
	if _, err := fmt.Sscanf(vodPackets, "h264=%d", &frames); err != nil || math.Abs(float64(frames)/mediaFPS-srcDur) > 0.5 {
		t.Errorf("VoD has %d video frames (%.2f s at %d fps), the source %.3f s: %v", frames, float64(frames)/mediaFPS, mediaFPS, srcDur, err)
	}

	// The live playlist plays too (a live playlist has no duration: ffprobe probes its streams).
	liveURL := d.bucket.base + "/live/" + stream + ".m3u8"
	if codecs := probeStreams(t, liveURL, false); codecs != "h264 aac" {
		t.Errorf("live playlist %s: streams %q, want h264 and aac", liveURL, codecs)
	}
	if el := time.Since(start); el > 30*time.Second {
		t.Errorf("took %v, more than 30 s", el)
	}
}
