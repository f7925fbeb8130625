package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/internal/hlstest"
	"github.com/srs-offload/srs-offload/internal/mediatest"
	"github.com/srs-offload/srs-offload/remux"
	"github.com/srs-offload/srs-offload/webhook"
)

// The whole post-processing path through the binary (`srs-offload dev`): an on_dvr for a real
// FLV and a real HLS session ended by on_unpublish end with, at a receiver that checks every
// signature, dvr.stored, mp4.stored, poster.stored, vod.stored and session_mp4.stored; the MP4s
// are in the bucket (moov first, the durations of their sources within a frame).
func TestE2EPostProcessing(t *testing.T) {
	mediatest.Need(t)
	secret := "e2e-webhook-secret"
	t.Setenv("E2E_WEBHOOK_SECRET", secret)
	var mu sync.Mutex
	events := map[string]webhook.Event{}
	bad := 0
	arrived := make(chan struct{}, 100)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := webhook.Verify([]byte(secret), r.Header.Get(webhook.HeaderSignature), body, time.Minute, time.Now()); err != nil {
			bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev webhook.Event
		json.Unmarshal(body, &ev)
		if _, seen := events[ev.Event]; !seen {
			events[ev.Event] = ev
			arrived <- struct{}{}
		}
	}))
	defer rcv.Close()
	d := startDev(t, fmt.Sprintf(`post:
  remux: beside
  poster: {enabled: true, offset: 1s}
  session_mp4: {enabled: true}
  webhooks:
    - url: %s/srs
      secret_env: E2E_WEBHOOK_SECRET
`, rcv.URL))
	cwd := filepath.Dir(d.root)
	dir := filepath.Join(d.root, "live")
	os.MkdirAll(dir, 0o755)

	// Every file is written before the first hook: a purge prunes the folders it empties.
	// DVR: a 4 s FLV.
	flv := filepath.Join(dir, "cam.1764680000000.flv")
	mediatest.FLV(t, flv, 4)
	flvDur := mediatest.Duration(t, flv)
	// HLS: 8 segments of 1 s.
	const client = "hls1"
	tmp := t.TempDir()
	mediatest.HLS(t, tmp, 8, 1)
	raw, _ := os.ReadFile(filepath.Join(tmp, "index.m3u8"))
	src, err := hlstest.Parse("live/index.m3u8", raw)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range src.Segments {
		b, _ := os.ReadFile(filepath.Join(tmp, filepath.Base(s.Key)))
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("tv-%d.ts", i)), b, 0o644)
	}
	// The hooks: on_dvr, each on_hls, then on_unpublish.
	body, _ := json.Marshal(srsDVRHook{ServerID: "vid-i06a97s", ServiceID: "7oas6q35", Action: "on_dvr", ClientID: "dvr1", IP: "127.0.0.1",
		Vhost: "__defaultVhost__", App: "live", TcURL: "rtmp://127.0.0.1:1935/live", Stream: "cam", Cwd: cwd, File: flv,
		StreamURL: "/live/cam", StreamID: "vid-1"})
	post(t, "http://"+d.listen+"/api/v1/dvrs", body)

	var total float64
	for i, s := range src.Segments {
		name := fmt.Sprintf("tv-%d.ts", i)
		post(t, "http://"+d.listen+"/api/v1/hls", srsHook(client, "tv", cwd, filepath.Join(dir, name), "live/"+name,
			filepath.Join(dir, "tv.m3u8"), int64(i), s.Duration))
		total += math.Round(s.Duration*100) / 100
	}
	unpublish, _ := json.Marshal(map[string]any{"action": "on_unpublish", "client_id": client, "ip": "127.0.0.1",
		"vhost": "__defaultVhost__", "app": "live", "stream": "tv", "param": "", "stream_url": "/live/tv", "stream_id": "vid-2"})
	post(t, "http://"+d.listen+"/api/v1/streams", unpublish)

	want := []string{"dvr.stored", "mp4.stored", "poster.stored", "vod.stored", "session_mp4.stored"}
	deadline := time.After(60 * time.Second)
	for range want {
		select {
		case <-arrived:
		case <-deadline:
			mu.Lock()
			t.Fatalf("events so far: %v (bad signatures %d)", events, bad)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, w := range want {
		if _, ok := events[w]; !ok {
			t.Errorf("no %s: %v", w, events)
		}
	}
	check := func(key string, want float64) {
		b, _, found, err := d.bucket.get(key)
		if err != nil || !found {
			t.Fatalf("%s not in the bucket: %v", key, err)
		}
		p := filepath.Join(t.TempDir(), "x.mp4")
		os.WriteFile(p, b, 0o644)
		got := mediatest.Duration(t, p)
		fast, _ := remux.FastStart(p)
		t.Logf("%s: %.3fs (source %.3fs), moov first %v", key, got, want, fast)
		if !fast || math.Abs(got-want) > 1.0/mediatest.Rate+0.01 {
			t.Errorf("%s: %.3fs, want %.3fs; moov first %v", key, got, want, fast)
		}
	}
	check(events["mp4.stored"].Key, flvDur)
	check(events["session_mp4.stored"].Key, total)
	if ev := events["session_mp4.stored"]; ev.Derived["playlist"] != events["vod.stored"].Key || ev.App != "live" || ev.Stream != "tv" {
		t.Errorf("session_mp4.stored %+v", ev)
	}
}
