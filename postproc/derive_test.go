package postproc_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/internal/mediatest"
	"github.com/srs-offload/srs-offload/postproc"
	"github.com/srs-offload/srs-offload/remux"
	"github.com/srs-offload/srs-offload/webhook"
)

func derived(t *testing.T, mode string, poster bool) *postproc.Derived {
	t.Helper()
	ff, err := remux.Find("ffmpeg")
	if err != nil {
		t.Fatal(err)
	}
	key := func(s string) postproc.Key {
		k, err := postproc.ParseKey(s)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	return &postproc.Derived{FFmpeg: remux.FFmpeg{Path: ff, Nice: 10, Timeout: time.Minute, FFprobe: remux.FindProbe(ff)}, Remux: mode,
		RemuxKey: key("{dir}/{name}.mp4"), Poster: poster, PosterOffset: 2 * time.Second, PosterKey: key("{dir}/{name}.jpg"),
		SessionKey: key("{dir}/{name}.mp4"), TempDir: t.TempDir()}
}

// waitEvents waits for n distinct events at rcv.
func waitEvents(t *testing.T, rcv *receiver, n int, within time.Duration) map[string]webhook.Event {
	t.Helper()
	deadline := time.After(within)
	for range n {
		select {
		case <-rcv.arrived:
		case <-deadline:
			evs, _, _ := rcv.snapshot()
			t.Fatalf("%d of %d events within %s: %+v", len(evs), n, within, evs)
		}
	}
	evs, _, _ := rcv.snapshot()
	byEvent := map[string]webhook.Event{}
	for _, e := range evs {
		byEvent[e.Event] = e
	}
	return byEvent
}

// A stored FLV gets an MP4 beside it (same duration within a frame, moov before mdat) and a
// poster JPEG, both verified in storage and announced with the derived keys; no temporary file
// remains.
func TestRemuxBeside(t *testing.T) {
	rcv := newReceiver(t, 0)
	var d *postproc.Derived
	r := newRig(t, func(s *postproc.Stage) {
		s.Webhooks = []webhook.Target{{URL: rcv.URL(), Secret: secret}}
		d = derived(t, postproc.RemuxBeside, true)
		s.Derived = d
	})
	d.Files = r.up
	r.start(t)
	local := filepath.Join(t.TempDir(), "rec.flv")
	mediatest.FLV(t, local, 5)
	flv, _ := os.ReadFile(local)
	p, key := recording(0)
	r.store(t, key, flv)
	t0 := time.Now()
	if err := r.stage.Recorded(context.Background(), p, key); err != nil {
		t.Fatal(err)
	}
	evs := waitEvents(t, rcv, 3, 60*time.Second)
	t.Logf("dvr.stored, mp4.stored and poster.stored within %s", time.Since(t0).Round(time.Millisecond))
	mp4Ev, posterEv := evs["mp4.stored"], evs["poster.stored"]
	if mp4Ev.Key != "live/cam1/rec-0.mp4" || posterEv.Key != "live/cam1/rec-0.jpg" || evs["dvr.stored"].Key != key {
		t.Fatalf("events %+v", evs)
	}
	if mp4Ev.Derived["source"] != key || mp4Ev.Derived["poster"] != posterEv.Key || posterEv.Derived["mp4"] != mp4Ev.Key || mp4Ev.Size == 0 {
		t.Errorf("derived keys: %+v / %+v", mp4Ev, posterEv)
	}
	dir := t.TempDir()
	mp4 := filepath.Join(dir, "got.mp4")
	b, err := r.up.Get(context.Background(), mp4Ev.Key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(mp4, b, 0o644)
	if fast, err := remux.FastStart(mp4); err != nil || !fast {
		t.Errorf("stored MP4: moov before mdat = %v, %v", fast, err)
	}
	din, dout := mediatest.Duration(t, local), mediatest.Duration(t, mp4)
	t.Logf("flv %.3fs, stored mp4 %.3fs", din, dout)
	if d := din - dout; d > 1.0/mediatest.Rate || d < -1.0/mediatest.Rate {
		t.Errorf("durations differ by %.3fs, more than a frame", d)
	}
	// The derived events carry the recording's duration, from ffprobe.
	if mp4Ev.Duration != din || posterEv.Duration != din {
		t.Errorf("events' durations %.3f, %.3f; the recording's is %.3f", mp4Ev.Duration, posterEv.Duration, din)
	}
	jpg, err := r.up.Get(context.Background(), posterEv.Key)
	if err != nil || !bytes.HasPrefix(jpg, []byte{0xff, 0xd8, 0xff}) {
		t.Errorf("poster: %v, %d bytes, not a JPEG", err, len(jpg))
	}
	if ents, _ := os.ReadDir(d.TempDir); len(ents) != 0 {
		t.Errorf("temporary files remain: %v", ents)
	}
	// The recording stays beside its MP4.
	if _, found, err := r.up.Stat(context.Background(), key); err != nil || !found {
		t.Errorf("the FLV is gone with remux beside: %v", err)
	}
}

// With remux instead, the recording is deleted once its MP4 is verified.
func TestRemuxInstead(t *testing.T) {
	rcv := newReceiver(t, 0)
	var d *postproc.Derived
	r := newRig(t, func(s *postproc.Stage) {
		s.Webhooks = []webhook.Target{{URL: rcv.URL(), Secret: secret, Events: []string{"mp4.stored"}}}
		d = derived(t, postproc.RemuxInstead, false)
		s.Derived = d
	})
	d.Files = r.up
	r.start(t)
	local := filepath.Join(t.TempDir(), "rec.flv")
	mediatest.FLV(t, local, 2)
	flv, _ := os.ReadFile(local)
	p, key := recording(1)
	r.store(t, key, flv)
	if err := r.stage.Recorded(context.Background(), p, key); err != nil {
		t.Fatal(err)
	}
	evs := waitEvents(t, rcv, 1, 60*time.Second)
	if _, found, err := r.up.Stat(context.Background(), "live/cam1/rec-1.mp4"); err != nil || !found {
		t.Fatalf("no MP4: %v (%+v)", err, evs)
	}
	if _, found, err := r.up.Stat(context.Background(), key); err != nil || found {
		t.Errorf("the FLV is still stored with remux instead: %v", err)
	}
	if evs["mp4.stored"].Derived["source"] != key {
		t.Errorf("event %+v", evs["mp4.stored"])
	}
}

// An MP4 recording with its moov last (SRS's DVR writes them so) gets a faststart copy beside
// it, under a name that does not replace it; one that already starts with its moov gets none.
func TestRemuxMP4Recordings(t *testing.T) {
	rcv := newReceiver(t, 0)
	var d *postproc.Derived
	r := newRig(t, func(s *postproc.Stage) {
		s.Webhooks = []webhook.Target{{URL: rcv.URL(), Secret: secret, Events: []string{"mp4.stored", "poster.stored"}}}
		d = derived(t, postproc.RemuxBeside, true)
		s.Derived = d
	})
	d.Files = r.up
	r.start(t)
	dir := t.TempDir()
	flv, plain, fast := filepath.Join(dir, "a.flv"), filepath.Join(dir, "plain.mp4"), filepath.Join(dir, "fast.mp4")
	mediatest.FLV(t, flv, 2)
	if err := d.FFmpeg.ToMP4(context.Background(), flv, fast); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(d.FFmpeg.Path, "-v", "error", "-y", "-i", flv, "-c", "copy", "-f", "mp4", plain).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if f, _ := remux.FastStart(plain); f {
		t.Fatal("ffmpeg's plain MP4 has its moov first")
	}
	ctx := context.Background()
	for i, src := range []string{plain, fast} {
		b, _ := os.ReadFile(src)
		p, _ := recording(10 + i)
		p.Key = fmt.Sprintf("live/cam1/rec-%d.mp4", 10+i)
		r.store(t, p.Key, b)
		if err := r.stage.Recorded(ctx, p, p.Key); err != nil {
			t.Fatal(err)
		}
	}
	// plain: mp4.stored and poster.stored; fast: poster.stored only.
	deadline := time.After(60 * time.Second)
	for range 3 {
		select {
		case <-rcv.arrived:
		case <-deadline:
			evs, _, _ := rcv.snapshot()
			t.Fatalf("events %+v", evs)
		}
	}
	time.Sleep(time.Second)
	evs, _, _ := rcv.snapshot()
	var mp4s []string
	for _, e := range evs {
		if e.Event == "mp4.stored" {
			mp4s = append(mp4s, e.Key)
		}
	}
	if len(evs) != 3 || len(mp4s) != 1 || mp4s[0] != "live/cam1/rec-10.faststart.mp4" {
		t.Fatalf("%d events, MP4s %v; want live/cam1/rec-10.faststart.mp4 only", len(evs), mp4s)
	}
	b, err := r.up.Get(ctx, mp4s[0])
	if err != nil {
		t.Fatal(err)
	}
	got := filepath.Join(dir, "got.mp4")
	os.WriteFile(got, b, 0o644)
	if f, err := remux.FastStart(got); err != nil || !f {
		t.Errorf("the faststart copy: moov first %v, %v", f, err)
	}
	if _, found, _ := r.up.Stat(ctx, "live/cam1/rec-10.mp4"); !found {
		t.Error("the recording itself was replaced")
	}
}
