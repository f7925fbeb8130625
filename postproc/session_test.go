package postproc_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/internal/mediatest"
	"github.com/srs-offload/srs-offload/m3u8"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/postproc"
	"github.com/srs-offload/srs-offload/remux"
	"github.com/srs-offload/srs-offload/webhook"
)

// A session of 20 H.264 + AAC TS segments, whose VoD playlist and segments are only in storage,
// becomes one MP4 of the session's duration (within one frame), moov first, announced with
// session_mp4.stored, with a poster from it; no temporary file remains.
func TestSessionMP4(t *testing.T) { testSessionMP4(t, false) }

// The same with fMP4 segments and their init segment (EXT-X-MAP), as SRS 7 writes them.
func TestSessionMP4fMP4(t *testing.T) { testSessionMP4(t, true) }

func testSessionMP4(t *testing.T, fmp4 bool) {
	rcv := newReceiver(t, 0)
	var d *postproc.Derived
	r := newRig(t, func(s *postproc.Stage) {
		s.Webhooks = []webhook.Target{{URL: rcv.URL(), Secret: secret}}
		d = derived(t, postproc.RemuxOff, true)
		d.SessionMP4 = true
		k, err := postproc.ParseKey("{dir}/{name}.mp4")
		if err != nil {
			t.Fatal(err)
		}
		d.SessionKey = k
		s.Derived = d
	})
	d.Files = r.up
	r.start(t)
	src := t.TempDir()
	const n = 20
	if fmp4 {
		mediatest.HLSfMP4(t, src, n, 1)
	} else {
		mediatest.HLS(t, src, n, 1)
	}
	raw, err := os.ReadFile(filepath.Join(src, "index.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	pl, err := m3u8.Parse(raw)
	if err != nil || len(pl.Segments) != n {
		t.Fatalf("ffmpeg's playlist: %d segments, %v", len(pl.Segments), err)
	}
	// The segments live beside the stream, the VoD playlist in its vod/ folder, as srs-offload
	// stores them.
	var vod strings.Builder
	vod.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:2\n")
	var total float64
	ctx := context.Background()
	if fmp4 {
		b, err := os.ReadFile(filepath.Join(src, "init.mp4"))
		if err != nil || pl.Segments[0].Map != "init.mp4" {
			t.Fatalf("ffmpeg's init segment: %v, EXT-X-MAP %q", err, pl.Segments[0].Map)
		}
		if _, err := r.up.Put(ctx, "live/cam1/init.mp4", strings.NewReader(string(b)), int64(len(b)), media.MP4Type, "init"); err != nil {
			t.Fatal(err)
		}
		vod.WriteString("#EXT-X-MAP:URI=\"../init.mp4\"\n")
	}
	for _, seg := range pl.Segments {
		b, err := os.ReadFile(filepath.Join(src, seg.URI))
		if err != nil {
			t.Fatal(err)
		}
		typ, _ := media.ForHLS(seg.URI)
		if _, err := r.up.Put(ctx, "live/cam1/"+seg.URI, strings.NewReader(string(b)), int64(len(b)), typ, "seg"); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&vod, "#EXTINF:%.3f,\n../%s\n", seg.Duration, seg.URI)
		total += seg.Duration
	}
	vod.WriteString("#EXT-X-ENDLIST\n")
	vodKey := "live/cam1/vod/20261202T130000Z-c9.m3u8"
	body := vod.String()
	if _, err := r.up.Put(ctx, vodKey, strings.NewReader(body), int64(len(body)), media.PlaylistType, "vod"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := r.stage.VODWritten(ctx, playlist.VOD{Key: vodKey, App: "live", Stream: "cam1", Client: "c9",
		Session: "20261202T130000Z-c9", Duration: total, Items: n}); err != nil {
		t.Fatal(err)
	}
	evs := waitEvents(t, rcv, 3, 60*time.Second)
	ev := evs["session_mp4.stored"]
	if ev.Key != "live/cam1/vod/20261202T130000Z-c9.mp4" || ev.Derived["playlist"] != vodKey || evs["vod.stored"].Key != vodKey ||
		math.Abs(evs["vod.stored"].Duration-total) > 1e-6 {
		t.Fatalf("events %+v", evs)
	}
	took := time.Since(t0)
	// The session's poster, from its MP4.
	if p := evs["poster.stored"]; p.Key != "live/cam1/vod/20261202T130000Z-c9.jpg" || ev.Derived["poster"] != p.Key {
		t.Errorf("poster event %+v, session event %+v", p, ev)
	}
	if jpg, err := r.up.Get(ctx, "live/cam1/vod/20261202T130000Z-c9.jpg"); err != nil || len(jpg) < 3 || jpg[0] != 0xff || jpg[1] != 0xd8 {
		t.Errorf("session poster: %v, not a JPEG", err)
	}
	b, err := r.up.Get(ctx, ev.Key)
	if err != nil {
		t.Fatal(err)
	}
	mp4 := filepath.Join(t.TempDir(), "session.mp4")
	os.WriteFile(mp4, b, 0o644)
	dur, video := mediatest.Duration(t, mp4), mediatest.VideoDuration(t, mp4)
	t.Logf("fMP4 %v: %d segments, playlist %.3fs: session MP4 %.3fs (video %.3fs), %d bytes, made in %s", fmp4, n, total, dur, video, len(b), took.Round(time.Millisecond))
	if math.Abs(video-total) > 1.0/mediatest.Rate || math.Abs(dur-total) > 1.0/mediatest.Rate {
		t.Errorf("session MP4 %.3fs (video %.3fs), session %.3fs: more than a frame apart", dur, video, total)
	}
	if fast, err := remux.FastStart(mp4); err != nil || !fast {
		t.Errorf("moov before mdat: %v, %v", fast, err)
	}
	if ents, _ := os.ReadDir(d.TempDir); len(ents) != 0 {
		t.Errorf("temporary files remain: %v", ents)
	}
}
