package queue_test

import (
	"testing"

	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/queue"
)

// One decision per file, by the hook that names it: the same .mp4 is an init segment from on_hls
// and a recording from on_dvr, unless its name is an init segment's.
func TestTypeOf(t *testing.T) {
	for _, c := range []struct {
		kind, path string
		want       media.Kind // 0: not a file of that hook
	}{
		{queue.KindHLS, "/srs/live/cam1-3.ts", media.Segment},
		{queue.KindHLS, "/srs/live/cam1-3.m4s", media.Segment},
		{queue.KindHLS, "/srs/live/cam1/init.mp4", media.Init},
		{queue.KindHLS, "/srs/live/cam1.flv", 0},
		{queue.KindDVR, "/srs/live/cam1.1763935200123.mp4", media.Recording},
		{queue.KindDVR, "/srs/live/cam1.1763935200123.FLV", media.Recording},
		{queue.KindDVR, "/srs/live/cam1/init.mp4", media.Init},
		{queue.KindDVR, "/srs/live/cam1-3.ts", 0},
		{queue.KindWarm, "/srs/live/cam1-3.ts", 0},
		{queue.KindHLS, "/srs/live/cam1.m3u8", 0},
	} {
		got, ok := queue.TypeOf(c.kind, c.path)
		if ok != (c.want != 0) || got.Kind != c.want {
			t.Errorf("TypeOf(%s, %s) = %v, %v; want %v", c.kind, c.path, got.Kind, ok, c.want)
		}
		p := queue.Offload{Kind: c.kind, Path: c.path}
		if pt, pok := p.Type(); pt != got || pok != ok {
			t.Errorf("Offload{%s, %s}.Type() = %v, %v; TypeOf says %v, %v", c.kind, c.path, pt, pok, got, ok)
		}
		if c.want != 0 && !queue.Moved(c.path) {
			t.Errorf("Moved(%s) = false", c.path)
		}
	}
	for _, p := range []string{"/srs/live/cam1.m3u8", "/srs/live/cam1-3.ts.tmp", "/srs/live/cam1.key"} {
		if queue.Moved(p) {
			t.Errorf("Moved(%s) = true", p)
		}
	}
}
