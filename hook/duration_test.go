package hook_test

import (
	"path/filepath"
	"testing"
)

// on_hls durations outside (0, 3600] s are refused with 400 and enqueue nothing: one such value
// would set the live playlist's target duration or write a negative EXTINF. An fMP4 init segment
// comes with duration 0, as SRS sends it.
func TestDurationBounds(t *testing.T) {
	tmp := realPath(t, t.TempDir())
	live := filepath.Join(tmp, "live")
	writeRandom(t, filepath.Join(live, "cam-1.ts"), 1316)
	writeRandom(t, filepath.Join(live, "cam", "init.mp4"), 700)
	e := newEnv(t, envConfig{roots: []string{tmp}})
	body := func(file string, d float64) string {
		return marshal(t, map[string]any{
			"action": "on_hls", "client_id": "c1", "vhost": "__defaultVhost__", "app": "live", "stream": "cam",
			"cwd": tmp, "file": filepath.Join(live, file), "url": "live/" + file, "m3u8": filepath.Join(live, "cam.m3u8"),
			"m3u8_url": "live/cam.m3u8", "seq_no": 1, "duration": d,
		})
	}
	before := snapshot(t, tmp)
	for _, d := range []float64{-5, -0.01, 0, 3600.01, 1e9} {
		assertRefused(t, "duration", e.post(body("cam-1.ts", d)), 400)
	}
	assertRefused(t, "init duration", e.post(body("cam/init.mp4", -1)), 400)
	e.assertTaskCount("refused durations", 0, 0)
	assertSameTree(t, "refused durations", before, snapshot(t, tmp))

	assertOK(t, "init segment, duration 0", e.post(body("cam/init.mp4", 0)))
	assertOK(t, "duration 3600", e.post(body("cam-1.ts", 3600)))
	e.assertTaskCount("accepted durations", 2, 0)
}
