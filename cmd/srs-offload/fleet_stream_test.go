package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/internal/hlstest"
)

// The fleet tests drive live streams with SRS's hooks (on_publish, on_hls per segment, serial per
// stream, on_unpublish) while Redis fails over under them, and then prove nothing was lost.

// fleetConfig is appended to the stack's config: a reconciler quick enough for a test (a file
// whose hook got 503 is found again within seconds), and hooks that give up on Redis after 2 s.
const fleetConfig = `
hooks: {enqueue_timeout: 2s}
reconcile: {interval: 2s, min_age: 1s}
`

func appendConfig(t testing.TB, s *stack, yaml string) {
	t.Helper()
	f, err := os.OpenFile(s.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(yaml); err != nil {
		t.Fatal(err)
	}
}

// liveStream is one publisher of the fake SRS.
type liveStream struct {
	s      *stack
	root   string
	name   string
	client string
	every  time.Duration // one segment per every
	dur    float64       // its EXTINF
	// noUnpublish: its on_unpublish is lost, so the playlist sweep must end its session.
	noUnpublish bool

	mu      sync.Mutex
	files   []want
	segs    []seg
	answers map[string]int  // "ok", "503" (the documented answer), or what else came
	okKeys  map[string]bool // segments whose on_hls was answered {"code":0}
	last503 time.Time       // when the last hook answered 503 was sent
	bad     []string        // hooks answered otherwise
}

// send POSTs a hook as SRS does and classifies the answer.
func (ls *liveStream) send(path string, body any) string {
	b, _ := json.Marshal(body)
	c := &http.Client{Timeout: 30 * time.Second} // SRS's own
	resp, err := c.Post("http://"+ls.s.listen+path, "application/json", bytes.NewReader(b))
	if err != nil {
		return "transport: " + err.Error()
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode == 200 && string(got) == `{"code":0}`:
		return "ok"
	case resp.StatusCode == 503 && strings.Contains(string(got), "the file is kept on disk and offloaded once the queue is back"):
		return "503"
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, got)
}

func (ls *liveStream) record(answer string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.answers == nil {
		ls.answers = map[string]int{}
	}
	switch answer {
	case "ok", "503":
		ls.answers[answer]++
	default:
		ls.answers["other"]++
		ls.bad = append(ls.bad, answer)
	}
}

func (ls *liveStream) hook(action string) map[string]any {
	return map[string]any{"server_id": srsServerID, "service_id": srsServiceID, "action": action, "client_id": ls.client,
		"ip": "127.0.0.1", "vhost": "__defaultVhost__", "app": "live", "tcUrl": "rtmp://127.0.0.1:1935/live",
		"stream": ls.name, "param": "", "stream_url": "/live/" + ls.name, "stream_id": "vid-" + ls.client}
}

// run publishes until stop is closed: a segment file, SRS's m3u8 and on_hls every ls.every.
func (ls *liveStream) run(stop <-chan struct{}) {
	ls.record(ls.send("/api/v1/streams", ls.hook("on_publish")))
	dir := filepath.Join(ls.root, "live")
	os.MkdirAll(dir, 0o755)
	m3u8 := filepath.Join(dir, ls.name+".m3u8")
	next := time.Now()
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			if !ls.noUnpublish {
				ls.record(ls.send("/api/v1/streams", ls.hook("on_unpublish")))
			}
			return
		case <-time.After(time.Until(next)):
		}
		next = next.Add(ls.every)
		name := fmt.Sprintf("%s-%d.ts", ls.name, seq)
		local := filepath.Join(dir, name)
		data := randomBytes(20_000+seq, uint64(len(ls.name)*100_000+seq))
		writeSegment(ls.s.t, local, data)
		// SRS's playlist lists its window (hls_window), the reconciler's source of a found
		// segment's seq_no and duration.
		first := max(0, seq-29)
		pl := fmt.Sprintf("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:%d\n", int(ls.dur+0.999), first)
		for i := first; i <= seq; i++ {
			pl += fmt.Sprintf("#EXTINF:%.3f,\n%s-%d.ts\n", ls.dur, ls.name, i)
		}
		os.WriteFile(m3u8+".temp", []byte(pl), 0o644)
		os.Rename(m3u8+".temp", m3u8)
		ls.mu.Lock()
		ls.files = append(ls.files, want{key: "live/" + name, local: local, data: data})
		ls.segs = append(ls.segs, seg{key: "live/" + name, dur: ls.dur})
		ls.mu.Unlock()
		h := ls.hook("on_hls")
		h["duration"], h["cwd"], h["file"], h["url"] = ls.dur, "/usr/local/srs", local, "live/"+name
		h["m3u8"], h["m3u8_url"], h["seq_no"] = m3u8, "live/"+ls.name+".m3u8", seq
		sent := time.Now()
		a := ls.send("/api/v1/hls", h)
		ls.record(a)
		if a == "503" {
			ls.mu.Lock()
			ls.last503 = sent
			ls.mu.Unlock()
		}
		if a == "ok" {
			ls.mu.Lock()
			if ls.okKeys == nil {
				ls.okKeys = map[string]bool{}
			}
			ls.okKeys["live/"+name] = true
			ls.mu.Unlock()
		}
	}
}

// watchLive polls a live playlist until stop and reports any version that does not follow the
// one before (media sequence going back, a segment changed or dropped from the middle).
func watchLive(t testing.TB, b bucket, key string, stop <-chan struct{}, wg *sync.WaitGroup) (versions func() int) {
	var mu sync.Mutex
	n := 0
	var prev *hlstest.Playlist
	var last []byte
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			body, _, found, err := b.get(key)
			if err != nil || !found || bytes.Equal(body, last) {
				continue
			}
			last = body
			p, err := hlstest.Parse(key, body)
			if err != nil {
				t.Errorf("live playlist %s does not parse: %v\n%s", key, err, body)
				continue
			}
			if prev != nil {
				if err := p.Follows(prev); err != nil {
					t.Errorf("live playlist %s went back: %v\n%s", key, err, body)
				}
			}
			prev = p
			mu.Lock()
			n++
			mu.Unlock()
		}
	}()
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// fleetRun is streams publishing with their live playlists watched.
type fleetRun struct {
	t       testing.TB
	s       *stack
	streams []*liveStream
	stop    chan struct{}
	wg      sync.WaitGroup
	watched []func() int
	stopW   chan struct{}
	watchWG sync.WaitGroup // the watchers, done before the test ends (they report with t.Errorf)
}

// startStreams starts n streams; those numbered in lost (from 0) lose their on_unpublish.
func startStreams(t testing.TB, s *stack, root string, n int, every time.Duration, lost ...int) *fleetRun {
	fr := &fleetRun{t: t, s: s, stop: make(chan struct{}), stopW: make(chan struct{})}
	for i := range n {
		ls := &liveStream{s: s, root: root, name: fmt.Sprintf("cam%d", i+1), client: fmt.Sprintf("c%07d", i+1), every: every, dur: 1,
			noUnpublish: slices.Contains(lost, i)}
		fr.streams = append(fr.streams, ls)
		fr.watched = append(fr.watched, watchLive(t, s3Bucket{s.store}, "live/"+ls.name+".m3u8", fr.stopW, &fr.watchWG))
		fr.wg.Add(1)
		go func() {
			defer fr.wg.Done()
			ls.run(fr.stop)
		}()
	}
	t.Cleanup(func() {
		if !isClosed(fr.stop) {
			close(fr.stop)
		}
		fr.wg.Wait()
		if !isClosed(fr.stopW) {
			close(fr.stopW)
		}
		fr.watchWG.Wait()
	})
	return fr
}

// finish stops publishing (on_unpublish), then proves nothing was lost: every hook answered
// {"code":0} or the documented 503, every segment stored byte for byte and purged, each live
// playlist complete and never gone back, each VoD playlist listing every segment.
func (fr *fleetRun) finish(timeout time.Duration) {
	t := fr.t
	t.Helper()
	close(fr.stop)
	fr.wg.Wait()
	var all []want
	for _, ls := range fr.streams {
		if len(ls.bad) > 0 {
			t.Errorf("%s: %d hooks answered neither {\"code\":0} nor the documented 503: %q", ls.name, len(ls.bad), ls.bad)
		}
		t.Logf("%s: %d segments, hooks answered %v", ls.name, len(ls.segs), ls.answers)
		all = append(all, ls.files...)
	}
	fr.s.settle(all, timeout)
	b := s3Bucket{fr.s.store}
	for i, ls := range fr.streams {
		if ls.answers["503"] == 0 {
			waitLive(t, b, "live/"+ls.name+".m3u8", liveWindow(ls.segs, 60), timeout)
		} else {
			// A segment whose hook got 503 is found again by the reconciler: always in the VoD
			// playlist, in the live one only if a later segment's hook kept its place.
			waitLiveHas(t, b, "live/"+ls.name+".m3u8", ls, timeout)
		}
		waitVOD(t, b, "live/"+ls.name+"/vod/", ls.segs, timeout)
		if fr.watched[i]() < 2 {
			t.Errorf("live playlist of %s: only %d versions seen", ls.name, fr.watched[i]())
		}
	}
	close(fr.stopW)
	fr.watchWG.Wait()
}

// segments is how many segments the streams have written so far.
func (fr *fleetRun) segments() int {
	n := 0
	for _, ls := range fr.streams {
		ls.mu.Lock()
		n += len(ls.segs)
		ls.mu.Unlock()
	}
	return n
}

// waitLiveHas waits until the live playlist lists every segment of the window whose hook was
// answered {"code":0}, and checks it lists no other segment than the stream's, in order.
func waitLiveHas(t testing.TB, b bucket, key string, ls *liveStream, timeout time.Duration) {
	t.Helper()
	window := liveWindow(ls.segs, 60)
	order := map[string]int{}
	for i, sg := range ls.segs {
		order[sg.key] = i
	}
	deadline := time.Now().Add(timeout)
	for {
		body, _, found, err := b.get(key)
		if err != nil {
			t.Fatal(err)
		}
		missing := ""
		if found {
			p, err := hlstest.Parse(key, body)
			if err != nil {
				t.Fatalf("live playlist %s: %v\n%s", key, err, body)
			}
			listed := map[string]bool{}
			last := -1
			for _, sg := range p.Segments {
				i, ok := order[sg.Key]
				if !ok || i <= last {
					t.Fatalf("live playlist %s lists %s out of place\n%s", key, sg.Key, body)
				}
				last = i
				listed[sg.Key] = true
			}
			for _, sg := range window {
				if ls.okKeys[sg.key] && !listed[sg.key] {
					missing = sg.key
					break
				}
			}
			if missing == "" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("live playlist %s: found %v, %s missing\n%s", key, found, missing, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
