package hook_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/hook"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
)

// Intake works without HTTP: Accept reports what it did, refuses bad input with an
// *hook.InputError carrying the status, and reports a queue failure as a plain error.
func TestIntakeAccept(t *testing.T) {
	tmp := realPath(t, t.TempDir())
	seg := filepath.Join(tmp, "live", "livestream-7.ts")
	rec := filepath.Join(tmp, "live", "livestream.1795474166294.flv")
	writeRandom(t, seg, 1880)
	writeRandom(t, rec, 4096)
	if err := os.Symlink(t.TempDir(), filepath.Join(tmp, "elsewhere")); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, filepath.Join(tmp, "elsewhere", "x.ts"), 10)
	if err := os.Mkdir(filepath.Join(tmp, "live", "d.ts"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envConfig{roots: []string{tmp}, timeout: time.Second})
	in := e.intake
	ctx := context.Background()

	hls := hook.Request{
		Action: "on_hls", ClientID: []byte(`"2g6tz380"`), Vhost: "__defaultVhost__", App: "live", Stream: "livestream",
		Cwd: tmp, File: "./live/livestream-7.ts", URL: "live/livestream-7.ts",
		M3U8: "./live/livestream.m3u8", M3U8URL: "live/livestream.m3u8", SeqNo: 7, Duration: 2.02,
	}

	for _, a := range []string{"on_connect", "on_close", "on_publish", "on_unpublish", "on_play", "on_stop"} {
		out, p, err := in.Accept(ctx, hook.Request{Action: a, File: "/etc/passwd"})
		if out != hook.Ignored || p != nil || err != nil {
			t.Fatalf("%s: %v %v %v, want Ignored", a, out, p, err)
		}
	}

	before := time.Now()
	out, p, err := in.Accept(ctx, hls)
	if err != nil || out != hook.Enqueued || p == nil {
		t.Fatalf("on_hls: %v %+v %v, want Enqueued", out, p, err)
	}
	want := queue.Offload{
		Kind: queue.KindHLS, Path: seg, Key: "live/livestream-7.ts", File: fileID(t, seg),
		Vhost: "__defaultVhost__", App: "live", Stream: "livestream", Client: "2g6tz380",
		Playlist: filepath.Join(tmp, "live", "livestream.m3u8"), PlaylistKey: "live/livestream.m3u8", M3U8URL: "live/livestream.m3u8", SeqNo: 7, Duration: 2.02,
	}
	if p.Hooked.Before(before) || p.Hooked.After(time.Now()) {
		t.Fatalf("hooked %v", p.Hooked)
	}
	got := *p
	got.Hooked = time.Time{}
	if got != want {
		t.Fatalf("on_hls task\n got %+v\nwant %+v", got, want)
	}
	if out, p2, err := in.Accept(ctx, hls); out != hook.Duplicate || err != nil || p2 == nil || p2.TaskID() != p.TaskID() {
		t.Fatalf("on_hls again: %v %v %v, want Duplicate of %s", out, p2, err, p.TaskID())
	}
	dvr := hook.Request{Action: "on_dvr", ClientID: []byte(`1985`), Vhost: "__defaultVhost__", App: "live", Stream: "livestream", Cwd: "/usr/local/srs", File: rec}
	if out, p, err := in.Accept(ctx, dvr); out != hook.Enqueued || err != nil || p.Key != "live/livestream/livestream.1795474166294.flv" || p.Kind != queue.KindDVR {
		t.Fatalf("on_dvr: %v %+v %v", out, p, err)
	}
	e.assertTaskCount("accepted", 1, 1)

	with := func(f func(r *hook.Request)) hook.Request {
		r := hls
		f(&r)
		return r
	}
	for _, tc := range []struct {
		name   string
		req    hook.Request
		status int
		is     error // when set, the InputError wraps it
	}{
		{"missing action", with(func(r *hook.Request) { r.Action = "" }), http.StatusBadRequest, nil},
		{"unknown action", with(func(r *hook.Request) { r.Action = "on_forward" }), http.StatusBadRequest, nil},
		{"missing cwd", with(func(r *hook.Request) { r.Cwd = "" }), http.StatusBadRequest, nil},
		{"missing file", with(func(r *hook.Request) { r.File = "" }), http.StatusBadRequest, nil},
		{"not media", with(func(r *hook.Request) { r.File = "./live/livestream.m3u8" }), http.StatusBadRequest, nil},
		{"no such file", with(func(r *hook.Request) { r.File = "./live/livestream-8.ts" }), http.StatusNotFound, roots.ErrNotExist},
		{"outside", with(func(r *hook.Request) { r.File = "../x.ts" }), http.StatusForbidden, roots.ErrOutside},
		{"symlink outside", with(func(r *hook.Request) { r.File = "elsewhere/x.ts" }), http.StatusForbidden, roots.ErrOutside},
		{"directory", with(func(r *hook.Request) { r.File = "./live/d.ts" }), http.StatusBadRequest, roots.ErrNotRegular},
		{"NUL", with(func(r *hook.Request) { r.File = "./live/a\x00.ts" }), http.StatusBadRequest, roots.ErrBadPath},
		{"bad key", with(func(r *hook.Request) { r.URL = "../../x.ts" }), http.StatusBadRequest, objkey.ErrBadKey},
		{"bad playlist key", with(func(r *hook.Request) { r.M3U8URL = "live/../../x.m3u8" }), http.StatusBadRequest, objkey.ErrBadKey},
		{"playlist outside", with(func(r *hook.Request) { r.M3U8 = "/var/x.m3u8" }), http.StatusForbidden, roots.ErrOutside},
	} {
		out, p, err := in.Accept(ctx, tc.req)
		ie, ok := isInputError(err)
		if !ok || ie.Status != tc.status || ie.Msg == "" || ie.Error() != ie.Msg || out != 0 || p != nil {
			t.Fatalf("%s: %v %v %v, want an InputError with status %d", tc.name, out, p, err, tc.status)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Fatalf("%s: %v does not wrap %v", tc.name, err, tc.is)
		}
	}
	e.assertTaskCount("refused", 1, 1)

	// A queue failure is not an InputError: the handler answers it with 503.
	e.redis.Stop()
	writeRandom(t, filepath.Join(tmp, "live", "livestream-8.ts"), 100)
	out, p, err = in.Accept(ctx, with(func(r *hook.Request) { r.File = "./live/livestream-8.ts" }))
	if _, isIn := isInputError(err); err == nil || isIn || out != 0 || p != nil {
		t.Fatalf("redis down: %v %v %v, want a plain error", out, p, err)
	}
}
