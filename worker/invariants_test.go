package worker_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/internal/hlstest"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/worker"
)

// genSeg is one segment file the test plays SRS for.
type genSeg struct {
	client string
	seq    int64
	rel    string
	data   []byte
	dur    float64
	p      queue.Offload // as hooked
}

// putRecorder remembers, for every segment object stored, the MD5 of the bytes stored under it, to
// catch a PUT that replaces one file's object with another's.
type putRecorder struct {
	mu       sync.Mutex
	md5      map[string]string
	replaced []string
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// The three invariants, for every version of the live playlist a reader can see in storage, while
// four worker servers upload hundreds of segments out of order, one of them restarts, and the
// publisher republishes (seq_no back to 0, the same file names): every URI is stored, the media
// sequence never goes back and never renames a segment, valid HLS with a discontinuity at the
// republish. Then each publish session has a complete VoD playlist.
func TestPlaylistInvariantsUnderConcurrency(t *testing.T) {
	t.Parallel()
	const (
		nA, nB   = 520, 120
		nServers = 4
		pk       = "live/cam.m3u8" // SRS's default [app]/[stream].m3u8
		vodDir   = "live/cam/vod/"
	)
	ctx := context.Background()
	log := testLogger(t)

	// Storage: segment PUTs take 0–40 ms, so they finish out of order.
	rec := &putRecorder{md5: map[string]string{}}
	var livePuts atomic.Int64
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, "/"+pk) {
				// Playlist PUTs vary too: were two in flight at once, the older could land last.
				livePuts.Add(1)
				time.Sleep(rand.N(15 * time.Millisecond))
			}
			if req.Method != http.MethodPut || !strings.HasSuffix(req.URL.Path, ".ts") {
				next.ServeHTTP(w, req)
				return
			}
			time.Sleep(rand.N(40 * time.Millisecond))
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, req)
			if sw.code/100 != 2 || req.URL.Query().Has("partNumber") {
				return
			}
			key, sum := strings.TrimPrefix(req.URL.Path, "/test/"), req.Header.Get("Content-MD5")
			rec.mu.Lock()
			if old, ok := rec.md5[key]; ok && old != sum {
				rec.replaced = append(rec.replaced, key)
			}
			rec.md5[key] = sum
			rec.mu.Unlock()
		})
	}
	s3srv := s3test.Fake(t, wrap)
	up := s3srv.Uploader(t, nil)
	rsrv := redistest.Start(t)
	redisOpt := asynq.RedisClientOpt{Addr: rsrv.Addr}
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	set, err := roots.New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	qc := queue.NewClient(redisOpt, queue.Options{Node: node, MaxRetry: 10, Timeout: time.Minute, Dedup: time.Hour})
	t.Cleanup(func() { qc.Close() })
	insp := asynq.NewInspector(redisOpt)
	t.Cleanup(func() { insp.Close() })
	settings := playlist.Settings{Window: time.Minute, Stall: time.Minute, Retain: time.Hour}

	// manager is what one process builds: its own Redis client, the shared configuration.
	manager := func() *playlist.Manager {
		rdb := redis.NewClient(&redis.Options{Addr: rsrv.Addr})
		t.Cleanup(func() { rdb.Close() })
		m := newManager(t, rdb, up, settings)
		m.EndLive, m.VODWait, m.Log = true, time.Minute, log
		return m
	}
	hook := manager() // the receiver's

	// Worker servers, each a process of its own, sweeping too (as serve does).
	startServer := func() (stop func()) {
		m := manager()
		off := &worker.Offloader{Roots: set, Store: up, Playlists: m, Purge: true, Log: log}
		srv := worker.NewServer(redisOpt, worker.Options{
			Node: node, Concurrency: 3, RetryBase: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond,
			ShutdownTimeout: 10 * time.Second, PollInterval: 5 * time.Millisecond, Log: log, Ender: m,
		}, off)
		sweeper := &worker.Sweeper{Every: 20 * time.Millisecond, Log: log, Sweep: func(ctx context.Context) error {
			return m.Sweep(ctx, time.Hour, func(e queue.End) error { return qc.EnqueueEnd(ctx, e) })
		}}
		if err := srv.Start(); err != nil {
			t.Fatalf("worker start: %v", err)
		}
		sweeper.Start()
		var once sync.Once
		stop = func() {
			once.Do(func() {
				sweeper.Shutdown(context.Background())
				srv.Shutdown(context.Background())
			})
		}
		t.Cleanup(stop)
		return stop
	}
	stops := make([]func(), nServers)
	for i := range stops {
		stops[i] = startServer()
	}

	// The segments: pubA's, then pubB's, whose seq_no starts at 0 again under the same names.
	var segs []*genSeg
	bySum := map[[16]byte]int{} // content → index in segs (hook order)
	for i := range nA + nB {
		g := &genSeg{client: "pubA", seq: int64(i)}
		if i >= nA {
			g.client, g.seq = "pubB", int64(i-nA)
		}
		g.rel = fmt.Sprintf("live/cam/cam-%d.ts", g.seq)
		g.data = make([]byte, 1<<10+rand.IntN(19<<10+1))
		for j := range g.data {
			g.data[j] = byte(rand.Uint32())
		}
		g.dur = float64(1900+rand.IntN(201)) / 1000
		bySum[md5.Sum(g.data)] = i
		segs = append(segs, g)
	}

	// The reader: a player polling the live playlist in storage.
	var (
		stopReader        atomic.Bool
		samples, versions int
		sawDisc, sawEnded bool
		last              *hlstest.Playlist
		lastBody          []byte
		violations        []string
		msnKey            = map[int64]string{} // every segment ever listed, by media sequence number
		readerDone        = make(chan struct{})
	)
	violate := func(format string, args ...any) {
		if len(violations) < 10 {
			violations = append(violations, fmt.Sprintf(format, args...))
		}
	}
	head := func(key string) bool {
		_, found, err := up.Stat(ctx, key)
		if err != nil {
			violate("head %s: %v", key, err)
		}
		return found
	}
	headAll := func(p *hlstest.Playlist) func(string) bool {
		var keys []string
		for _, s := range p.Segments {
			keys = append(keys, s.Key)
			if s.Map != "" {
				keys = append(keys, s.Map)
			}
		}
		found := make([]bool, len(keys))
		var wg sync.WaitGroup
		next := atomic.Int64{}
		for range 8 {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < int64(len(keys)); i = next.Add(1) - 1 {
					_, found[i], _ = up.Stat(ctx, keys[i])
				}
			})
		}
		wg.Wait()
		stored := map[string]bool{}
		for i, k := range keys {
			stored[k] = stored[k] || found[i]
		}
		return func(key string) bool { return stored[key] }
	}
	go func() {
		defer close(readerDone)
		for final := false; !final && len(violations) == 0; {
			final = stopReader.Load()
			body, err := up.Get(ctx, pk)
			if err != nil {
				var nsk interface{ ErrorCode() string }
				if errors.As(err, &nsk) && nsk.ErrorCode() == "NoSuchKey" && last == nil {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				violate("get %s: %v", pk, err)
				return
			}
			samples++
			if bytes.Equal(body, lastBody) {
				time.Sleep(2 * time.Millisecond)
				continue
			}
			versions++
			p, err := hlstest.Parse(pk, body)
			if err != nil {
				violate("version %d: %v\n%s", versions, err, body)
				return
			}
			// Every URI is in storage now: the HEADs come after the GET (in parallel, to sample
			// often).
			if err := p.Check(headAll(p)); err != nil {
				violate("version %d: %v\n%s", versions, err, body)
				return
			}
			if last != nil {
				if err := p.Follows(last); err != nil {
					violate("version %d: %v\nprevious:\n%s\nnow:\n%s", versions, err, lastBody, body)
					return
				}
			}
			for _, s := range p.Segments {
				if k, ok := msnKey[s.MSN]; ok && k != s.Key {
					violate("version %d: media sequence %d was %s in an earlier version, now %s", versions, s.MSN, k, s.Key)
				}
				msnKey[s.MSN] = s.Key
				sawDisc = sawDisc || s.Disc
			}
			sawEnded = sawEnded || p.Ended
			last, lastBody = p, body
		}
	}()

	// Play SRS: each segment closed, hooked (enqueue, then announce), a few ms apart; pubA
	// unpublishes, pubB publishes; one worker server restarts halfway through pubA.
	hooked := time.Now()
	for i, g := range segs {
		path := filepath.Join(root, g.rel)
		if i >= nA {
			// SRS reuses the name once pubA's file is gone (purged after its upload).
			deadline := time.Now().Add(20 * time.Second)
			for {
				if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s (pubA's) was never purged", path)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		// The worker prunes live/cam when its last file is purged; SRS keeps its next .tmp open
		// there, this writer does not, so it creates the folder again when it has to.
		for attempt := 0; ; attempt++ {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			err := os.WriteFile(path, g.data, 0o644)
			if err == nil {
				break
			}
			if !os.IsNotExist(err) || attempt > 100 {
				t.Fatal(err)
			}
		}
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		g.p = queue.Offload{
			Kind: queue.KindHLS, Path: path, Key: g.rel, File: fileid.Of(fi),
			Vhost: "__defaultVhost__", App: "live", Stream: "cam", Client: g.client,
			Playlist: filepath.Join(root, "live/cam.m3u8"), PlaylistKey: pk, SeqNo: g.seq, Duration: g.dur,
			Hooked: time.Now(),
		}
		// As the hook does: announce, then enqueue.
		if err := hook.Announce(ctx, g.p); err != nil {
			t.Fatalf("announce %s: %v", g.rel, err)
		}
		if dup, err := qc.Enqueue(ctx, g.p); err != nil || dup {
			t.Fatalf("enqueue %s: dup=%v err=%v", g.rel, dup, err)
		}
		switch i {
		case nA / 2:
			stops[0]()
			stops[0] = startServer()
		case nA - 1:
			// on_unpublish: most of pubA's segments are still uploading.
			if err := qc.EnqueueEnd(ctx, queue.End{Vhost: "__defaultVhost__", App: "live", Stream: "cam", Client: "pubA", Since: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := qc.EnqueueEnd(ctx, queue.End{Vhost: "__defaultVhost__", App: "live", Stream: "cam", Client: "pubB", Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	feedTime := time.Since(hooked)

	// Everything uploads, nothing is lost, both sessions end.
	deadline := time.Now().Add(30 * time.Second)
	for _, g := range segs {
		for {
			ti, err := insp.GetTaskInfo(queue.Name(queue.KindHLS, node), g.p.TaskID())
			if err != nil {
				t.Fatalf("%s: %v", g.rel, err)
			}
			if ti.State == asynq.TaskStateCompleted {
				break
			}
			if ti.State == asynq.TaskStateArchived || time.Now().After(deadline) {
				t.Fatalf("%s of %s: task %v (retried %d, %q)", g.rel, g.client, ti.State, ti.Retried, ti.LastErr)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, c := range []string{"pubA", "pubB"} {
		e := queue.End{Vhost: "__defaultVhost__", App: "live", Stream: "cam", Client: c}
		for {
			ti, err := insp.GetTaskInfo(queue.Name(queue.KindHLS, node), e.TaskID())
			if err != nil {
				t.Fatalf("end of %s: %v", c, err)
			}
			if ti.State == asynq.TaskStateCompleted {
				break
			}
			if ti.State == asynq.TaskStateArchived || time.Now().After(deadline) {
				t.Fatalf("end of %s: task %v (retried %d, %q)", c, ti.State, ti.Retried, ti.LastErr)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	allDone := time.Since(hooked)
	stopReader.Store(true)
	<-readerDone
	for _, v := range violations {
		t.Error(v)
	}
	if t.Failed() {
		return
	}
	t.Logf("%d segments (%d pubA, %d pubB) by %d worker servers × 3 (one restarted): fed in %v, all stored and both sessions ended after %v; the reader made %d GETs and checked %d distinct versions of the %d PUT",
		len(segs), nA, nB, nServers, feedTime.Round(time.Millisecond), allDone.Round(time.Millisecond), samples, versions, livePuts.Load())
	if versions < 50 {
		t.Errorf("the reader saw only %d versions of the live playlist", versions)
	}
	if !sawDisc {
		t.Error("no version of the live playlist had an EXT-X-DISCONTINUITY at the republish")
	}

	// The last version: pubB's session ended it, and it holds the end of pubB.
	if !sawEnded || !last.Ended {
		t.Errorf("the live playlist was not ended after pubB's on_unpublish (saw ended %v)", sawEnded)
	}
	if end := last.MSN + int64(len(last.Segments)); end != int64(len(segs)) {
		t.Errorf("the last live playlist ends at media sequence %d, want %d", end, len(segs))
	}
	if d := last.Duration(); d < 59.99 || d > 62.11 {
		t.Errorf("the last live playlist holds %.3f s, want a minute's window (plus less than a segment)", d)
	}
	rec.mu.Lock()
	if len(rec.replaced) > 0 {
		t.Errorf("segment objects replaced by another file's bytes: %v", rec.replaced)
	}
	rec.mu.Unlock()

	// Identify stored objects by content; each is exactly one of the files.
	whose := map[string]int{}
	fileOf := func(key string) int {
		if i, ok := whose[key]; ok {
			return i
		}
		b, err := up.Get(ctx, key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		i, ok := bySum[md5.Sum(b)]
		if !ok || !bytes.Equal(b, segs[i].data) {
			t.Fatalf("%s holds %d bytes that are none of the files", key, len(b))
		}
		whose[key] = i
		return i
	}
	// Every segment the live playlist ever listed: media sequence n is the n-th file hooked
	// (nothing was lost or skipped), pubB's under alternate keys.
	msns := make([]int64, 0, len(msnKey))
	for n := range msnKey {
		msns = append(msns, n)
	}
	sort.Slice(msns, func(i, j int) bool { return msns[i] < msns[j] })
	for _, n := range msns {
		k := msnKey[n]
		if i := fileOf(k); int64(i) != n {
			t.Errorf("media sequence %d lists %s, which holds %s's seq %d (file %d)", n, k, segs[i].client, segs[i].seq, i)
		}
		if reused := n >= nA; reused != strings.Contains(k, "~") {
			t.Errorf("media sequence %d is stored under %s", n, k)
		}
	}
	t.Logf("the live playlist listed %d distinct segments over its versions", len(msns))

	// The VoD playlists: one per session, each every segment of it, in order.
	list, err := up.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s3srv.Bucket), Prefix: aws.String(up.Key(vodDir))})
	if err != nil {
		t.Fatal(err)
	}
	vods := map[string]string{} // client → key
	for _, o := range list.Contents {
		key := strings.TrimPrefix(aws.ToString(o.Key), up.Key(""))
		for _, c := range []string{"pubA", "pubB"} {
			if strings.HasSuffix(key, "-"+c+".m3u8") {
				if vods[c] != "" {
					t.Errorf("two VoD playlists for %s: %s and %s", c, vods[c], key)
				}
				vods[c] = key
			}
		}
	}
	if len(list.Contents) != 2 || len(vods) != 2 {
		t.Fatalf("VoD playlists %v, want one for pubA and one for pubB", vods)
	}
	for c, key := range vods {
		body, err := up.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		p, err := hlstest.Parse(key, body)
		if err != nil {
			t.Fatalf("VoD %s: %v", key, err)
		}
		if err := p.Check(head); err != nil {
			t.Fatalf("VoD %s: %v", key, err)
		}
		if p.Type != "VOD" || !p.Ended {
			t.Errorf("VoD %s: type %q, ended %v", key, p.Type, p.Ended)
		}
		var want []int
		var sum float64
		for i, g := range segs {
			if g.client == c {
				want = append(want, i)
				sum += g.dur
			}
		}
		if len(p.Segments) != len(want) {
			t.Errorf("VoD %s lists %d segments, want %d", key, len(p.Segments), len(want))
			continue
		}
		for j, s := range p.Segments {
			if i := fileOf(s.Key); i != want[j] || s.Disc {
				t.Errorf("VoD %s: segment %d is %s (%s's seq %d, discontinuity %v), want %s's seq %d", key, j, s.Key,
					segs[i].client, segs[i].seq, s.Disc, c, segs[want[j]].seq)
			}
		}
		if d := p.Duration(); d < sum-0.01*float64(len(want)) || d > sum+0.01*float64(len(want)) {
			t.Errorf("VoD %s lasts %.3f s, want %.3f", key, d, sum)
		}
		t.Logf("VoD %s: %d segments, %.3f s", key, len(p.Segments), p.Duration())
	}
}

// A segment stuck in flight longer than Settings.Stall: the live playlist waits for it until then,
// a sweep moves it on without it (with a discontinuity), it never appears live once it arrives,
// and the session's VoD playlist has it in its place.
func TestStalledSegmentSkippedLiveKeptInVoD(t *testing.T) {
	t.Parallel()
	const (
		stall  = 1500 * time.Millisecond
		stuck  = "live/cam1/cam1-2.ts"
		plKey  = "live/cam1.m3u8"
		vodDir = "live/cam1/vod/"
	)
	release := make(chan struct{})
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, "/"+stuck) {
				<-release
			}
			next.ServeHTTP(w, req)
		})
	}
	r := newRig(t, rigConfig{s3: s3test.Fake(t, wrap), stall: stall})
	r.pm.VODWait = time.Minute
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	var ps []queue.Offload
	var rels []string
	for i := range 6 {
		rel := fmt.Sprintf("live/cam1/cam1-%d.ts", i)
		rels = append(rels, rel)
		r.writeRandom(rel, 10<<10)
		ps = append(ps, r.hls(rel, rel, "live/cam1.m3u8", plKey))
	}
	r.start(4)
	t.Cleanup(unblock) // registered after the server, so it runs before its shutdown
	announced := time.Now()
	r.enqueue(ps...)
	allAnnounced := time.Now()
	for i, p := range ps {
		if i != 2 {
			r.wait(p, asynq.TaskStateCompleted, 10*time.Second)
		}
	}
	ctx := context.Background()
	// Within the stall, the live playlist waits for the segment in flight.
	if waited := time.Since(announced); waited >= stall {
		t.Fatalf("the other segments took %v, longer than the stall (%v): nothing is proved", waited, stall)
	}
	before := r.livePlaylist(plKey, rels[:2])
	r.notStored(stuck)
	noEnd := func(e queue.End) error { t.Errorf("sweep ended a session that is not idle: %+v", e); return nil }
	if err := r.pm.Sweep(ctx, time.Hour, noEnd); err != nil {
		t.Fatal(err)
	}
	r.livePlaylist(plKey, rels[:2])

	// After the stall, a sweep moves on without it.
	time.Sleep(time.Until(allAnnounced.Add(stall + 20*time.Millisecond)))
	if err := r.pm.Sweep(ctx, time.Hour, noEnd); err != nil {
		t.Fatal(err)
	}
	r.notStored(stuck)
	skipped := r.livePlaylist(plKey, []string{rels[0], rels[1], rels[3], rels[4], rels[5]})
	for i, s := range skipped.Segments {
		if s.Disc != (i == 2) {
			t.Errorf("segment %s: discontinuity %v", s.Key, s.Disc)
		}
	}
	if err := skipped.Follows(before); err != nil {
		t.Error(err)
	}
	// The session cannot end while it is in flight.
	end := queue.End{Vhost: "__defaultVhost__", App: "live", Stream: "cam1", Client: "c1", Since: time.Now()}
	if err := r.pm.End(ctx, end); !errors.Is(err, playlist.ErrNotYet) {
		t.Fatalf("end with a segment in flight: %v, want ErrNotYet", err)
	}

	// It arrives: stored, but the live playlist does not go back for it.
	unblock()
	r.wait(ps[2], asynq.TaskStateCompleted, 10*time.Second)
	if err := r.pm.Sweep(ctx, time.Hour, noEnd); err != nil {
		t.Fatal(err)
	}
	if after := r.livePlaylist(plKey, []string{rels[0], rels[1], rels[3], rels[4], rels[5]}); after.Follows(skipped) != nil {
		t.Error(after.Follows(skipped))
	}

	// The VoD playlist has every segment, in order, without a discontinuity.
	if err := r.pm.End(ctx, end); err != nil {
		t.Fatal(err)
	}
	list, err := r.up.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(r.s3.Bucket), Prefix: aws.String(r.up.Key(vodDir))})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 1 {
		t.Fatalf("%d VoD playlists under %s, want 1", len(list.Contents), vodDir)
	}
	vod := r.livePlaylist(strings.TrimPrefix(aws.ToString(list.Contents[0].Key), r.up.Key("")), rels)
	if vod.Type != "VOD" || !vod.Ended || vod.Duration() != 12 {
		t.Errorf("VoD: type %q, ended %v, %.3f s", vod.Type, vod.Ended, vod.Duration())
	}
	for _, s := range vod.Segments {
		if s.Disc {
			t.Errorf("VoD: discontinuity before %s", s.Key)
		}
	}
}
