package queue_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/queue"
)

// File names are bytes: a path that is not UTF-8 survives the payload exactly, and a UTF-8 path's
// payload and TaskID are what they were before (queues made by earlier versions stay deduplicated).
func TestOffloadPayloadKeepsBytes(t *testing.T) {
	base := queue.Offload{Kind: queue.KindHLS, Key: "live/a%FF.ts", File: fileid.ID{Dev: 1, Ino: 2, Size: 3, MtimeNs: 4},
		Hooked: time.Unix(1, 0).UTC()}
	for _, c := range []struct{ path, playlist string }{
		{"/data/live/a\xff.ts", "/data/live/a\xfe\xfd.m3u8"},
		{"/data/live/caf\xe9-1.ts", ""}, // Latin-1 é
		{"/data/live/\xc3\x28.ts", "/data/live/ok.m3u8"},
		{"/data/live/ok-1.ts", "/data/live/\x80.m3u8"},
	} {
		p := base
		p.Path, p.Playlist = c.path, c.playlist
		b, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) || !bytes.Contains(b, []byte("_b64")) {
			t.Errorf("%q: payload %s", c.path, b)
		}
		got, err := queue.DecodeOffload(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Path != c.path || got.Playlist != c.playlist || got.TaskID() != p.TaskID() {
			t.Errorf("round trip: path %q playlist %q, want %q %q", got.Path, got.Playlist, c.path, c.playlist)
		}
	}
	// UTF-8 paths: the payload is exactly the plain struct's JSON, and the TaskID is the one
	// computed before this change (pinned).
	p := base
	p.Path, p.Playlist, p.Key = "/data/live/café-1.ts", "/data/live/café.m3u8", "live/café-1.ts"
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "_b64") {
		t.Errorf("UTF-8 payload has a b64 field: %s", b)
	}
	if id := p.TaskID(); id != "hls-e079dbc09fbf4eb603413b3062782e6a" {
		t.Errorf("TaskID of a UTF-8 path changed: %s", id)
	}
}

// TestEncodeIsMarshal: Encode (MarshalJSON called directly) writes the same bytes as
// json.Marshal, HTML escaping and non-UTF-8 paths included.
func TestEncodeIsMarshal(t *testing.T) {
	for _, p := range []queue.Offload{
		{Kind: queue.KindHLS, Path: "/srv/live/a.ts", Key: "live/a.ts", App: "live", Stream: "a"},
		{Kind: queue.KindDVR, Path: "/srv/<b>&\"c\"\u2028.flv", Key: "x/<y>&z.flv", Stream: "s\u00e9"},
		{Kind: queue.KindHLS, Path: "/srv/live/\xff\xfe.ts", Playlist: "/srv/live/\xc3.m3u8", Mount: "/m\x80", SeqNo: 7, Duration: 2.5},
	} {
		got, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Encode:\n%s\njson.Marshal:\n%s", got, want)
		}
	}
}
