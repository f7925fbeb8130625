package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/fsnotify/fsnotify"

	"github.com/srs-offload/srs-offload/internal/hlstest"
	"github.com/srs-offload/srs-offload/internal/loopback"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/uploader"
)

// TestChaos runs srs-offload as deployed (a `hooks` and a `worker` process, a persistent
// redis-server, versitygw) under a fake SRS that writes real MPEG-TS segments (made by ffmpeg) and
// DVR recordings with SRS's own file handling (.tmp then rename, its m3u8, hls_cleanup with a 6 s
// hls_window unlinking each segment once the ones after it last longer, hooks lost, repeated and
// refused), while the worker is SIGKILLed (once in the middle of a DVR multipart upload), the
// hooks process is SIGKILLed 4 times for 2-10 s, storage is down for 30 s and Redis for 10 s. It
// then proves that every file ends up in storage byte for byte, that srs-offload never deleted a
// file before its object was stored, that nothing but SRS's playlists is left on disk, and that
// every publish session's VoD playlist lists every segment of the session in order, each stored,
// with its EXTINF within 1% of what was written (and plays so in ffprobe, for one stream).
//
// SRS_OFFLOAD_CHAOS_SEED=<n> replays a run's plan (the timing still varies);
// SRS_OFFLOAD_CHAOS_BASELINE=1 turns the spool and the reconciler off, to see what the test
// catches without them; SRS_OFFLOAD_CHAOS_KEEP_LOGS=1 keeps the processes' logs (they are kept
// anyway when the test fails).
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: several minutes")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SRS_OFFLOAD_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SRS_OFFLOAD_CHAOS_SEED: %v", err)
		}
	}
	baseline := os.Getenv("SRS_OFFLOAD_CHAOS_BASELINE") == "1"
	t.Logf("chaos seed %d (SRS_OFFLOAD_CHAOS_SEED=%d replays this plan)", seed, seed)
	fmt.Printf("chaos seed %d\n", seed)
	plan := newChaosPlan(rand.New(rand.NewPCG(seed, 0)))
	t.Logf("chaos plan: %s", plan)

	bin := binary(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	tmp := t.TempDir()
	hlsRoot, dvrRoot := filepath.Join(tmp, "srs", "hls"), filepath.Join(tmp, "srs", "dvr")
	for _, d := range []string{hlsRoot, dvrRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	logDir, err := os.MkdirTemp("", "srs-offload-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("SRS_OFFLOAD_CHAOS_KEEP_LOGS") == "1" {
			t.Logf("process logs kept in %s", logDir)
			return
		}
		os.RemoveAll(logDir)
	})

	// The proof of step 4 watches before anything runs.
	watch := watchRemovals(t, hlsRoot, dvrRoot)

	rds := redistest.StartPersistent(t)
	gw := s3test.VersityGateway(t)
	store := gw.Uploader(t, nil)
	hooksListen := fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	hooksAdmin := fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	workerListen := fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	t.Setenv("CHAOS_AK", gw.AccessKey)
	t.Setenv("CHAOS_SK", gw.SecretKey)
	protection := fmt.Sprintf(`spool:
  enabled: true
  dir: %s
reconcile:
  interval: 5s
  min_age: 3s
  watch: true
  hls_ts_file: ["[app]/[stream]-[seq].ts"]
  dvr_path: ["[app]/[stream].[timestamp].flv"]
`, chaosSpoolDir)
	if baseline {
		protection = "spool: {enabled: false}\nreconcile: {enabled: false}\n"
		t.Logf("baseline run: spool and reconcile off")
	}
	cfg := fmt.Sprintf(`listen: %s
admin: {listen: %s}
node: chaos
log: {level: debug}
redis: {addr: %s}
roots: [%q, %q]
storage:
  endpoint: %s
  bucket: %s
  access_key: ${CHAOS_AK}
  secret_key: ${CHAOS_SK}
  multipart_threshold: 5MiB
  part_size: 5MiB
worker:
  retry_base: 1s
  retry_max: 5s
  poll_interval: 20ms
%s`, hooksListen, hooksAdmin, rds.Addr, hlsRoot, dvrRoot, gw.Endpoint, gw.Bucket, protection)
	hooksCfg, workerCfg := filepath.Join(tmp, "srs-offload.yaml"), filepath.Join(tmp, "srs-offload-worker.yaml")
	os.WriteFile(hooksCfg, []byte(cfg), 0o644)
	// The same config; the worker serves its metrics on its own admin address.
	os.WriteFile(workerCfg, []byte(strings.Replace(cfg, "admin: {listen: "+hooksAdmin+"}", "admin: {listen: "+workerListen+"}", 1)), 0o644)

	start := time.Now()
	timeline := &chaosTimeline{start: start}
	hooks := &chaosRole{name: "hooks", sub: "hooks", bin: bin, cfg: hooksCfg, listen: hooksAdmin, logDir: logDir, ctx: ctx, tl: timeline}
	worker := &chaosRole{name: "worker", sub: "worker", bin: bin, cfg: workerCfg, listen: workerListen, logDir: logDir, ctx: ctx, tl: timeline}
	t.Cleanup(func() { // before the servers' cleanups: the processes go first
		cancel()
		worker.close()
		hooks.close()
	})
	for _, r := range []*chaosRole{hooks, worker} {
		r.mu.Lock()
		err := r.launch()
		r.mu.Unlock()
		if err != nil {
			t.Fatalf("start %s: %v", r.name, err)
		}
	}

	srs := &fakeSRS{
		ctx: ctx, base: "http://" + hooksListen, hlsRoot: hlsRoot, dvrRoot: dvrRoot, start: start, seed: seed,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		files:  map[string]*genFile{},
		byIno:  map[uint64]*genFile{},
		stop:   make(chan struct{}),
		pool:   chaosMediaPool(t),
		st: srsStats{firstFailed: map[string]int{}, dupAnswers: map[string]int{}, streamFailed: map[string]int{},
			samples: map[string]string{}},
	}
	watch.setResolve(srs.fileByIno)
	dir := &director{ctx: ctx, start: start, tl: timeline, redis: rds, gw: gw, store: store, worker: worker, hooks: hooks}

	// Run the fake SRS and the chaos.
	var streams sync.WaitGroup
	for i := range chaosStreams {
		streams.Add(1)
		go func() { defer streams.Done(); srs.runStream(i) }()
	}
	dir.run(plan)
	dvrDone := make(chan struct{})
	go func() { srs.runDVR(plan, dir); close(dvrDone) }()
	chaosDone := make(chan struct{})
	go func() { dir.wg.Wait(); close(chaosDone) }()
	select {
	case <-chaosDone:
	case <-time.After(chaosWindow + 2*time.Minute):
		t.Errorf("the chaos did not finish within %s (a process or server did not come back); stopping the fake SRS anyway", chaosWindow+2*time.Minute)
	}
	for deadline := time.Now().Add(time.Minute); srs.segments.Load() < chaosMinSegments && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	close(srs.stop)
	streams.Wait()
	<-dvrDone
	srs.dupWG.Wait()
	fakeEnd := time.Now()
	timeline.add("fake SRS done: %d segments, %d DVR files", srs.segments.Load(), len(chaosDVRSizes))

	// Step 5: wait until every file is stored and nothing is left locally.
	files := srs.all()
	drainEnd, drained := chaosDrain(t, ctx, store, files, []string{hlsRoot, dvrRoot}, fakeEnd, timeline)
	time.Sleep(time.Second) // the last removals reach the watcher
	watch.close()

	// Assertions.
	objs, err := listObjects(ctx, store)
	if err != nil {
		t.Fatalf("list the bucket: %v", err)
	}
	var missing, mismatched []string
	verified := 0
	expected := map[string]bool{}
	for _, g := range files {
		expected[g.key] = true
		if _, ok := objs[g.key]; !ok {
			missing = append(missing, fmt.Sprintf("%s (%s, %d bytes, hook %s, hooked ok %v, deleted by SRS %v)", g.key, g.kind, g.size, g.hook, g.hookOK, g.srsDeleted))
			continue
		}
		sum, n, err := objectMD5(ctx, store, g.key)
		if err != nil || sum != g.md5 || n != g.size {
			mismatched = append(mismatched, fmt.Sprintf("%s: %d bytes MD5 %s, want %d bytes MD5 %s (%v)", g.key, n, sum, g.size, g.md5, err))
			continue
		}
		verified++
	}
	var extra []string
	for k := range objs {
		if !expected[k] && !strings.HasSuffix(k, ".m3u8") {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	if len(missing) > 0 {
		t.Errorf("%d of %d files never reached storage:\n  %s", len(missing), len(files), strings.Join(firstN(missing, 40), "\n  "))
	}
	if len(mismatched) > 0 {
		t.Errorf("%d objects differ from their file:\n  %s", len(mismatched), strings.Join(firstN(mismatched, 40), "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("%d media objects under keys no file has (a file stored twice, or under an alternate key):\n  %s", len(extra), strings.Join(firstN(extra, 40), "\n  "))
	}

	// Every publish session's VoD playlist: every segment, in order, each stored, its EXTINF
	// within 1% of what was written; the first stream's played with ffprobe.
	vods := chaosVODs(ctx, store, files, time.Minute)
	var vodProblems []string
	vodSegs, maxErr := 0, 0.0
	for _, v := range vods {
		if v.problem != "" {
			vodProblems = append(vodProblems, fmt.Sprintf("%s: VoD playlist %s: %s", v.stream, v.key, v.problem))
			continue
		}
		vodSegs += len(v.pl.Segments)
		maxErr = max(maxErr, v.extinfErr())
	}
	if len(vodProblems) > 0 {
		t.Errorf("%d of %d publish sessions have no complete VoD playlist:\n  %s", len(vodProblems), len(vods), strings.Join(vodProblems, "\n  "))
	}
	probed := "not played (its VoD playlist is incomplete)"
	if len(vods) > 0 && vods[0].problem == "" {
		probed = probeVOD(t, ctx, store, vods[0])
	}

	// Step 4's proof: every removal srs-offload made came after the object was stored.
	proof := watch.attribute(srs, objs, []string{hlsRoot, dvrRoot})
	if watch.overflow {
		t.Errorf("the fsnotify watcher overflowed: removals may be missing from the proof")
	}
	for _, e := range watch.errs {
		t.Errorf("fsnotify watcher: %s", e)
	}
	if len(proof.violations) > 0 {
		t.Errorf("%d files deleted by srs-offload before their object was stored:\n  %s", len(proof.violations), strings.Join(firstN(proof.violations, 40), "\n  "))
	}
	if len(proof.unknown) > 0 {
		t.Errorf("%d removals of media files the fake SRS never wrote:\n  %s", len(proof.unknown), strings.Join(firstN(proof.unknown, 20), "\n  "))
	}

	// Nothing media left locally: SRS's playlists only, the spool empty or gone.
	left := localLeftovers([]string{hlsRoot, dvrRoot})
	if len(left) > 0 {
		t.Errorf("%d files left on disk (only SRS's .m3u8 may stay):\n  %s", len(left), strings.Join(firstN(left, 40), "\n  "))
	}
	for _, r := range []*chaosRole{hooks, worker} {
		for _, u := range r.unexpectedExits() {
			t.Errorf("%s", u)
		}
	}
	st := srs.stats()
	for _, e := range st.cleanupErrs {
		t.Errorf("fake SRS cleanup: %s", e)
	}
	for status, answer := range st.samples {
		t.Logf("a hook answered %s: %s", status, answer)
	}
	if !dir.targetKilled.Load() {
		t.Logf("note: the targeted kill did not catch a DVR multipart upload in flight (%s)", dir.targetNote.Load())
	}

	// The summary.
	pending := pendingMultipart(ctx, store)
	if pending != "0" {
		// A killed worker's multipart upload is aborted by the task's next attempt.
		t.Errorf("multipart uploads left open in the bucket: %s", pending)
	}
	worker.mu.Lock()
	kills, refused, starts := worker.kills, len(worker.refused), worker.n
	worker.mu.Unlock()
	hlsN, dvrN := 0, 0
	neverOK, neverOKStored := 0, 0
	for _, g := range files {
		if g.kind == "hls" {
			hlsN++
		} else {
			dvrN++
		}
		if !g.hookOK {
			neverOK++
			if _, ok := objs[g.key]; ok {
				neverOKStored++
			}
		}
	}
	drainText := fmt.Sprintf("%.1fs", drainEnd.Sub(fakeEnd).Seconds())
	if !drained {
		drainText += " (gave up: not drained)"
	}
	errLines := logErrorSummary(logDir)
	var b strings.Builder
	fmt.Fprintf(&b, "==== srs-offload chaos summary (seed %d%s) ====\n", seed, map[bool]string{true: ", BASELINE: spool and reconcile off"}[baseline])
	fmt.Fprintf(&b, "segments written:            %d (%d streams, fake SRS ran %.1fs)\n", hlsN, chaosStreams, fakeEnd.Sub(start).Seconds())
	fmt.Fprintf(&b, "DVR files written:           %d (%v MiB)\n", dvrN, chaosDVRSizes)
	fmt.Fprintf(&b, "hooks sent (on_hls+on_dvr):  %d, answered {\"code\":0}: %d; answer time %s\n", st.hooksSent, st.hooksOK, latencyText(st.latencies))
	fmt.Fprintf(&b, "hooks duplicated:            %d; second hook answered: %s\n", st.dupSent, countsText(st.dupAnswers))
	fmt.Fprintf(&b, "hooks never sent:            %d (%d segments, %d DVR)\n", st.neverHLS+st.neverDVR, st.neverHLS, st.neverDVR)
	fmt.Fprintf(&b, "hooks failed (first hook):   %s\n", countsText(st.firstFailed))
	fmt.Fprintf(&b, "publish/unpublish hooks:     %d sent, failed: %s\n", st.streamHooks, countsText(st.streamFailed))
	fmt.Fprintf(&b, "files without an OK hook:    %d, of which stored: %d\n", neverOK, neverOKStored)
	fmt.Fprintf(&b, "SRS-cleanup deletions:       %d (segment already gone: %d)\n", st.cleanupRemoved, st.cleanupGone)
	fmt.Fprintf(&b, "deleted by srs-offload:      %d SRS names + %d spool links (+%d renamed away); removals checked against LastModified: %d, violations: %d\n",
		proof.origRemoved, proof.spoolRemoved, proof.renamed, proof.checked, len(proof.violations))
	fmt.Fprintf(&b, "SIGKILLs of the worker:      %d (%d during a DVR multipart upload); worker processes started %d, start attempts refused (Redis/S3 down) %d\n",
		kills, dir.multipartKills.Load(), starts-refused, refused)
	hooks.mu.Lock()
	hookDowns := make([]string, len(hooks.downs))
	for i, d := range hooks.downs {
		hookDowns[i] = fmt.Sprintf("%.1fs", d.Seconds())
	}
	fmt.Fprintf(&b, "SIGKILLs of the hooks process: %d, down %s (SRS window %s: hls_cleanup deleted segments meanwhile)\n", hooks.kills, strings.Join(hookDowns, ", "), chaosHLSWindow)
	hooks.mu.Unlock()
	fmt.Fprintf(&b, "S3 downtime:                 %s\n", dir.outageText("S3"))
	fmt.Fprintf(&b, "Redis downtime:              %s\n", dir.outageText("Redis"))
	fmt.Fprintf(&b, "objects verified:            %d of %d (missing %d, differing %d, extra media objects %d)\n", verified, len(files), len(missing), len(mismatched), len(extra))
	fmt.Fprintf(&b, "left on disk:                %d media files; incomplete multipart uploads in the bucket: %s\n", len(left), pending)
	fmt.Fprintf(&b, "time to drain:               %s\n", drainText)
	fmt.Fprintf(&b, "VoD playlists in storage:    %s; complete: %d of %d sessions (%d segments), EXTINF off by at most %.3f%%\n",
		vodText(objs), len(vods)-len(vodProblems), len(vods), vodSegs, 100*maxErr)
	fmt.Fprintf(&b, "ffprobe of a VoD playlist:   %s\n", probed)
	fmt.Fprintf(&b, "ERROR log lines:             %s\n", errLines)
	b.WriteString("====\n")
	t.Logf("timeline:\n%s", timeline.String())
	t.Log("\n" + b.String())
	fmt.Print(b.String())
}

const (
	chaosStreams     = 8
	chaosSegEvery    = 400 * time.Millisecond
	chaosMinSegments = 1000
	// chaosWindow is the time from the start of the fake SRS within which all chaos happens; the
	// fake SRS runs at least this long.
	chaosWindow    = 70 * time.Second
	chaosS3Down    = 30 * time.Second
	chaosRedisDown = 10 * time.Second
	chaosKills     = 5
	// chaosHookKills SIGKILLs of the hooks process, each down for chaosHookDownMin to
	// chaosHookDownMax (the first longer than SRS's window, which the worker's spool holder
	// covers meanwhile).
	chaosHookKills   = 4
	chaosHookDownMin = 2 * time.Second
	chaosHookDownMax = 10 * time.Second
	// chaosHLSWindow is SRS's hls_window with hls_cleanup on: a segment is deleted once the
	// segments after it last longer than this (SrsFragmentWindow::shrink).
	chaosHLSWindow = 6 * time.Second
	chaosDrainMax  = 4*time.Minute + 15*time.Second
	chaosSpoolDir  = ".srs-offload"
	chaosCwd       = "/usr/local/srs"
)

// chaosDVRSizes are the DVR recordings, in MiB; the last one is the target of the kill during a
// multipart upload.
var chaosDVRSizes = []int{1, 4, 12, 24, 40}

// chaosPlan is what happens when, drawn from the seed.
type chaosPlan struct {
	s3At, redisAt time.Duration
	kills         []time.Duration // random SIGKILLs of the worker
	restarts      []time.Duration // after each kill, then after the targeted kill
	dvrAt         []time.Duration // per chaosDVRSizes
	dvrNoHook     int             // the DVR file whose on_dvr is never sent
	dvrTarget     int             // the DVR file whose multipart upload is killed
	hookKills     []time.Duration // SIGKILLs of the hooks process
	hookDown      []time.Duration // how long it stays down after each
}

func newChaosPlan(rng *rand.Rand) chaosPlan {
	sec := func(lo, hi float64) time.Duration {
		return time.Duration((lo + rng.Float64()*(hi-lo)) * float64(time.Second))
	}
	var p chaosPlan
	// The outages, in random order, apart from each other, both within the window.
	first, second := chaosS3Down, chaosRedisDown
	s3First := rng.IntN(2) == 0
	if !s3First {
		first, second = second, first
	}
	w := chaosWindow.Seconds()
	a := sec(4, w-first.Seconds()-second.Seconds()-8)
	b := a + first + sec(4, w-2-second.Seconds()-(a+first).Seconds())
	if s3First {
		p.s3At, p.redisAt = a, b
	} else {
		p.redisAt, p.s3At = a, b
	}
	inS3 := func(at, before, after time.Duration) bool {
		return at > p.s3At-before && at < p.s3At+chaosS3Down+after
	}
	inRedis := func(at, before, after time.Duration) bool {
		return at > p.redisAt-before && at < p.redisAt+chaosRedisDown+after
	}
	// The targeted DVR comes while storage and Redis are up and settled, so that its upload starts
	// soon after its hook.
	p.dvrTarget = len(chaosDVRSizes) - 1
	p.dvrAt = make([]time.Duration, len(chaosDVRSizes))
	var slots []time.Duration
	for at := 3 * time.Second; at < chaosWindow-12*time.Second; at += 250 * time.Millisecond {
		if !inS3(at, 3*time.Second, 12*time.Second) && !inRedis(at, 3*time.Second, 6*time.Second) {
			slots = append(slots, at)
		}
	}
	if len(slots) == 0 {
		slots = []time.Duration{chaosWindow - 12*time.Second}
	}
	p.dvrAt[p.dvrTarget] = slots[rng.IntN(len(slots))]
	for i := range p.dvrAt {
		if i != p.dvrTarget {
			p.dvrAt[i] = sec(2, w-5)
		}
	}
	p.dvrNoHook = rng.IntN(len(chaosDVRSizes) - 1)
	// Random kills: not while storage is down (the running worker waits that out), 4 s or more
	// from each other and from the targeted kill (a kill and its restart take up to 4 s).
	slots = slots[:0]
	for at := 2 * time.Second; at < chaosWindow-3*time.Second; at += 250 * time.Millisecond {
		if !inS3(at, 5*time.Second, time.Second) && (at < p.dvrAt[p.dvrTarget]-4*time.Second || at > p.dvrAt[p.dvrTarget]+8*time.Second) {
			slots = append(slots, at)
		}
	}
	pick := func() {
		for len(p.kills) < chaosKills && len(slots) > 0 {
			at := slots[rng.IntN(len(slots))]
			p.kills = append(p.kills, at)
			slots = slices.DeleteFunc(slots, func(s time.Duration) bool { return s > at-4*time.Second && s < at+4*time.Second })
		}
	}
	pick()
	if len(p.kills) < chaosKills { // too crowded: kills during the storage outage too, still apart
		slots = slots[:0]
		for at := 2 * time.Second; at < chaosWindow-3*time.Second; at += 250 * time.Millisecond {
			if !slices.ContainsFunc(p.kills, func(k time.Duration) bool { return at > k-4*time.Second && at < k+4*time.Second }) &&
				(at < p.dvrAt[p.dvrTarget]-4*time.Second || at > p.dvrAt[p.dvrTarget]+8*time.Second) {
				slots = append(slots, at)
			}
		}
		pick()
	}
	for len(p.kills) < chaosKills { // still too crowded: anywhere will do
		p.kills = append(p.kills, sec(2, w-3))
	}
	slices.Sort(p.kills)
	for range len(p.kills) + 1 {
		p.restarts = append(p.restarts, sec(1, 3))
	}
	// The hooks process is killed while the worker runs (with both down longer than SRS's window
	// nobody could hold a file, which is the downtime the README measures), and not while the
	// targeted DVR's hook is due. The first downtime is longer than SRS's window.
	busy := func(at, down time.Duration) bool {
		lo, hi := at-time.Second, at+down+4*time.Second // a restart takes up to about 2 s more
		for i, k := range p.kills {
			if hi > k-time.Second && lo < k+p.restarts[i]+4*time.Second {
				return true
			}
		}
		if hi > p.dvrAt[p.dvrTarget]-2*time.Second && lo < p.dvrAt[p.dvrTarget]+12*time.Second {
			return true
		}
		for i, k := range p.hookKills {
			if hi > k-time.Second && lo < k+p.hookDown[i]+4*time.Second {
				return true
			}
		}
		return false
	}
	for i := range chaosHookKills {
		down := sec(chaosHookDownMin.Seconds(), chaosHookDownMax.Seconds())
		if i == 0 {
			down = sec(chaosHLSWindow.Seconds()+1, chaosHookDownMax.Seconds())
		}
		slots = slots[:0]
		for ; len(slots) == 0 && down >= chaosHookDownMin; down -= time.Second { // crowded: shorter
			for at := 2 * time.Second; at < chaosWindow-down-2*time.Second; at += 250 * time.Millisecond {
				if !busy(at, down) {
					slots = append(slots, at)
				}
			}
			if len(slots) > 0 {
				break
			}
		}
		down = max(down, chaosHookDownMin)
		if len(slots) == 0 { // still crowded: anywhere but on another kill of the hooks process
			for at := 2 * time.Second; at < chaosWindow-down-2*time.Second; at += 250 * time.Millisecond {
				if !slices.ContainsFunc(p.hookKills, func(k time.Duration) bool { return at > k-down-3*time.Second && at < k+chaosHookDownMax+3*time.Second }) {
					slots = append(slots, at)
				}
			}
		}
		if len(slots) == 0 {
			break
		}
		p.hookKills = append(p.hookKills, slots[rng.IntN(len(slots))])
		p.hookDown = append(p.hookDown, down)
	}
	return p
}

func (p chaosPlan) String() string {
	ks := make([]string, len(p.kills))
	for i, k := range p.kills {
		ks[i] = fmt.Sprintf("%.1fs", k.Seconds())
	}
	ds := make([]string, len(p.dvrAt))
	for i, d := range p.dvrAt {
		ds[i] = fmt.Sprintf("%dMiB@%.1fs", chaosDVRSizes[i], d.Seconds())
	}
	hs := make([]string, len(p.hookKills))
	for i, k := range p.hookKills {
		hs[i] = fmt.Sprintf("%.1fs(down %.1fs)", k.Seconds(), p.hookDown[i].Seconds())
	}
	return fmt.Sprintf("S3 down at %.1fs for %s; Redis down at %.1fs for %s; worker SIGKILL at %s and after the %d MiB DVR hook; hooks SIGKILL at %s; DVR %s (no hook for %d MiB)",
		p.s3At.Seconds(), chaosS3Down, p.redisAt.Seconds(), chaosRedisDown, strings.Join(ks, " "), chaosDVRSizes[p.dvrTarget],
		strings.Join(hs, " "), strings.Join(ds, " "), chaosDVRSizes[p.dvrNoHook])
}

// chaosTimeline records what happened when, for the log.
type chaosTimeline struct {
	start time.Time
	mu    sync.Mutex
	lines []string
}

func (tl *chaosTimeline) add(format string, a ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.lines = append(tl.lines, fmt.Sprintf("t+%6.1fs %s", time.Since(tl.start).Seconds(), fmt.Sprintf(format, a...)))
}

func (tl *chaosTimeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return strings.Join(tl.lines, "\n")
}

// sleepCtx sleeps d, or less if ctx ends; it reports whether ctx is still alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ---- srs-offload processes ----

// chaosProc is one srs-offload process.
type chaosProc struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error
	killed atomic.Bool
}

// startChaosProc runs a subcommand and returns once it serves /metrics (a worker does so only
// after reaching Redis and the bucket), or an error when it exits first.
func startChaosProc(bin, sub, cfg, listen, logPath string) (*chaosProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, sub, "-c", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = os.Environ()
	err = cmd.Start()
	logf.Close()
	if err != nil {
		return nil, err
	}
	p := &chaosProc{cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(40 * time.Second)
	for {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited at start (%v): %s", sub, p.err, lastLines(logPath, 2))
		default:
		}
		if resp, err := client.Get("http://" + listen + "/metrics"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("%s did not serve /metrics on %s within 40 s: %s", sub, listen, lastLines(logPath, 3))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *chaosProc) kill() {
	p.killed.Store(true)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// chaosRole keeps one srs-offload process of a kind running: it restarts it after a kill and
// after an exit nobody asked for (which is recorded).
type chaosRole struct {
	name, sub, bin, cfg, listen, logDir string
	ctx                                 context.Context
	tl                                  *chaosTimeline

	mu         sync.Mutex // held for a whole kill and restart
	cur        *chaosProc
	n          int      // processes started
	kills      int      // SIGKILLs sent
	refused    []string // start attempts that failed (Redis or storage down)
	unexpected []string
	downs      []time.Duration // from each SIGKILL until its successor served
	closing    atomic.Bool
}

// launch starts the process, retrying (every second) while Redis or storage is down. r.mu is held.
func (r *chaosRole) launch() error {
	for {
		r.n++
		logPath := filepath.Join(r.logDir, fmt.Sprintf("%s-%02d.log", r.name, r.n))
		p, err := startChaosProc(r.bin, r.sub, r.cfg, r.listen, logPath)
		if err == nil {
			r.cur = p
			r.tl.add("%s up (start #%d)", r.name, r.n)
			go r.monitor(p)
			return nil
		}
		r.refused = append(r.refused, err.Error())
		r.tl.add("%s start #%d failed: %v", r.name, r.n, err)
		if !sleepCtx(r.ctx, time.Second) || r.closing.Load() {
			return err
		}
	}
}

// monitor records an exit nobody asked for, and starts the process again.
func (r *chaosRole) monitor(p *chaosProc) {
	<-p.exited
	if p.killed.Load() || r.closing.Load() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.killed.Load() || r.closing.Load() {
		return
	}
	r.unexpected = append(r.unexpected, fmt.Sprintf("srs-offload %s exited by itself at t+%.1fs (%v); %s ends:\n%s",
		r.name, time.Since(r.tl.start).Seconds(), p.err, p.log, lastLines(p.log, 15)))
	r.tl.add("%s EXITED BY ITSELF: %v", r.name, p.err)
	if r.cur == p {
		r.cur = nil
		r.launch()
	}
}

// kill SIGKILLs the running process and starts a new one after restartAfter.
func (r *chaosRole) kill(restartAfter time.Duration, why string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing.Load() {
		return false
	}
	if r.cur == nil {
		if r.launch() != nil {
			return false
		}
	}
	r.cur.kill()
	down := time.Now()
	r.cur = nil
	r.kills++
	r.tl.add("%s SIGKILL #%d (%s); restart in %.1fs", r.name, r.kills, why, restartAfter.Seconds())
	sleepCtx(r.ctx, restartAfter)
	r.launch()
	r.downs = append(r.downs, time.Since(down))
	return true
}

func (r *chaosRole) unexpectedExits() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.unexpected)
}

// close stops the process (SIGTERM, then SIGKILL) at the end of the test.
func (r *chaosRole) close() {
	r.closing.Store(true)
	r.mu.Lock()
	p := r.cur
	r.cur = nil
	r.mu.Unlock()
	if p == nil {
		return
	}
	p.killed.Store(true)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.kill()
	}
}

// lastLines returns the last n lines of a file.
func lastLines(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---- chaos ----

// director runs the plan: outages and kills at their times.
type director struct {
	ctx    context.Context
	start  time.Time
	tl     *chaosTimeline
	redis  *redistest.Server
	gw     *s3test.Gateway
	store  *uploader.Uploader
	worker *chaosRole
	hooks  *chaosRole
	wg     sync.WaitGroup

	mu      sync.Mutex
	outages map[string][]string

	targetKilled   atomic.Bool
	multipartKills atomic.Int32
	targetNote     atomic.Value // string
	targetOnce     sync.Once
	targetRestart  time.Duration
}

func (d *director) run(p chaosPlan) {
	d.outages = map[string][]string{}
	d.targetNote.Store("no hook answered for the targeted DVR file")
	d.at(p.s3At, func() { d.outage("S3", chaosS3Down, d.gw.Stop, d.gw.Start) })
	d.at(p.redisAt, func() { d.outage("Redis", chaosRedisDown, d.redis.Stop, d.redis.Start) })
	for i, k := range p.kills {
		d.at(k, func() { d.worker.kill(p.restarts[i], "random") })
	}
	for i, k := range p.hookKills {
		d.at(k, func() { d.hooks.kill(p.hookDown[i], "random") })
	}
	d.targetRestart = p.restarts[len(p.kills)]
	d.wg.Add(1) // the targeted kill; done by killDuringMultipart or targetSkipped
}

// at runs fn at offset from the start.
func (d *director) at(offset time.Duration, fn func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if sleepCtx(d.ctx, time.Until(d.start.Add(offset))) {
			fn()
		}
	}()
}

// outage stops a server for dur, then starts it again (retrying until it is back).
func (d *director) outage(name string, dur time.Duration, stop func(), start func() error) {
	down := time.Now()
	stop()
	d.tl.add("%s DOWN for %s", name, dur)
	sleepCtx(d.ctx, dur)
	for {
		err := start()
		if err == nil {
			break
		}
		d.tl.add("%s did not come back: %v", name, err)
		if !sleepCtx(d.ctx, time.Second) {
			return
		}
	}
	up := time.Now()
	d.tl.add("%s UP again after %.1fs", name, up.Sub(down).Seconds())
	d.mu.Lock()
	d.outages[name] = append(d.outages[name], fmt.Sprintf("%.1fs (from t+%.1fs)", up.Sub(down).Seconds(), down.Sub(d.start).Seconds()))
	d.mu.Unlock()
}

func (d *director) outageText(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.outages[name]) == 0 {
		return "none"
	}
	return strings.Join(d.outages[name], ", ")
}

func (d *director) targetSkipped(why string) {
	d.targetOnce.Do(func() {
		d.targetNote.Store(why)
		d.wg.Done()
	})
}

// targetStart starts the targeted kill for the upload of key (unless it was skipped already).
func (d *director) targetStart(key string) {
	d.targetOnce.Do(func() {
		go func() {
			defer d.wg.Done()
			d.killDuringMultipart(key)
		}()
	})
}

// killDuringMultipart waits until the upload of key shows as a multipart upload in progress, and
// SIGKILLs the worker then.
func (d *director) killDuringMultipart(key string) {
	client := d.store.Client()
	inFlight := func() bool {
		ctx, cancel := context.WithTimeout(d.ctx, 2*time.Second)
		defer cancel()
		out, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(d.store.Bucket()), Prefix: aws.String(key)})
		return err == nil && len(out.Uploads) > 0
	}
	seen := false
	deadline := time.Now().Add(45 * time.Second)
	for i := 0; time.Now().Before(deadline) && d.ctx.Err() == nil; i++ {
		if seen = inFlight(); seen {
			break
		}
		if i%25 == 24 {
			if _, found, _ := d.store.Stat(d.ctx, key); found {
				break // the upload was faster than the polling
			}
		}
		time.Sleep(15 * time.Millisecond)
	}
	if !seen {
		d.targetNote.Store("no multipart upload of " + key + " was seen in progress")
	}
	d.worker.kill(d.targetRestart, "targeted: "+map[bool]string{true: "multipart upload of " + key + " in flight", false: "after the DVR hook"}[seen])
	// It was in flight at the kill if it is still listed and not complete.
	if _, found, _ := d.store.Stat(d.ctx, key); seen && !found {
		d.targetKilled.Store(true)
		d.multipartKills.Add(1)
		d.tl.add("the multipart upload of %s was cut off by the kill", key)
	} else if seen {
		d.targetNote.Store("the multipart upload of " + key + " completed before the kill landed")
	}
}

// ---- the fake SRS ----

// genFile is a media file the fake SRS wrote.
type genFile struct {
	kind, stream, path, key string
	size                    int64
	md5                     string
	created                 time.Time
	hook                    string  // "once", "dup", "none"
	hookOK                  bool    // a hook for it was answered {"code":0}
	srsDeleted              bool    // the fake SRS's cleanup removed it (else it was gone already)
	seq                     int     // HLS: its seq_no
	dur                     float64 // HLS: its duration (seconds, as SRS reports it)
}

type srsStats struct {
	hooksSent, hooksOK, dupSent int
	firstFailed, dupAnswers     map[string]int
	neverHLS, neverDVR          int
	streamHooks                 int
	streamFailed                map[string]int
	cleanupRemoved, cleanupGone int
	cleanupErrs                 []string
	samples                     map[string]string // an answer per failing status
	latencies                   []time.Duration   // of every on_hls/on_dvr answer (or failure)
}

type fakeSRS struct {
	ctx              context.Context
	base             string // the hook receiver: http://host:port
	hlsRoot, dvrRoot string
	start            time.Time
	seed             uint64
	client           *http.Client

	mu       sync.Mutex
	files    map[string]*genFile
	list     []*genFile
	byIno    map[uint64]*genFile
	st       srsStats
	segments atomic.Int64
	stop     chan struct{}
	dupWG    sync.WaitGroup
	pool     []chaosSeg // the media every stream writes, in order
}

// chaosSeg is one MPEG-TS segment of the media pool.
type chaosSeg struct {
	data []byte
	dur  float64 // its EXTINF, as ffmpeg wrote it
}

// chaosMediaPool makes the segments every stream writes with ffmpeg: real H.264 in MPEG-TS, a
// keyframe and a segment every 0.4 s, long enough that a stream of the chaos test does not
// wrap around (a stream that does starts the pool again, its timestamps too).
func chaosMediaPool(t *testing.T) []chaosSeg {
	t.Helper()
	dir := t.TempDir()
	secs := int((chaosWindow + 30*time.Second).Seconds())
	runTool(t, 2*time.Minute, "ffmpeg", "-v", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", strconv.Itoa(secs),
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "10", "-keyint_min", "10", "-sc_threshold", "0",
		"-f", "hls", "-hls_time", "0.4", "-hls_list_size", "0",
		"-hls_segment_filename", filepath.Join(dir, "pool-%d.ts"), filepath.Join(dir, "pool.m3u8"))
	body, err := os.ReadFile(filepath.Join(dir, "pool.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	pl, err := hlstest.Parse("pool.m3u8", body)
	if err != nil {
		t.Fatalf("ffmpeg's playlist: %v", err)
	}
	var pool []chaosSeg
	for _, sg := range pl.Segments {
		b, err := os.ReadFile(filepath.Join(dir, sg.Key))
		if err != nil {
			t.Fatal(err)
		}
		pool = append(pool, chaosSeg{data: b, dur: sg.Duration})
	}
	if len(pool) < secs*2 {
		t.Fatalf("ffmpeg made %d segments of %d s", len(pool), secs)
	}
	return pool
}

// srsDuration is printed like SRS's %.2f.
type srsDuration float64

func (d srsDuration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(d), 'f', 2, 64)), nil
}

// The hook bodies, keys in SRS 7's wire order (PROTOCOL.md §2.2, fixtures/srs-7.0.18-*.jsonl).
type srsHLSHook struct {
	ServerID  string      `json:"server_id"`
	ServiceID string      `json:"service_id"`
	Action    string      `json:"action"`
	ClientID  string      `json:"client_id"`
	IP        string      `json:"ip"`
	Vhost     string      `json:"vhost"`
	App       string      `json:"app"`
	TcURL     string      `json:"tcUrl"`
	Stream    string      `json:"stream"`
	Param     string      `json:"param"`
	Duration  srsDuration `json:"duration"`
	Cwd       string      `json:"cwd"`
	File      string      `json:"file"`
	URL       string      `json:"url"`
	M3U8      string      `json:"m3u8"`
	M3U8URL   string      `json:"m3u8_url"`
	SeqNo     int         `json:"seq_no"`
	StreamURL string      `json:"stream_url"`
	StreamID  string      `json:"stream_id"`
}

type srsDVRHook struct {
	ServerID  string `json:"server_id"`
	ServiceID string `json:"service_id"`
	Action    string `json:"action"`
	ClientID  string `json:"client_id"`
	IP        string `json:"ip"`
	Vhost     string `json:"vhost"`
	App       string `json:"app"`
	TcURL     string `json:"tcUrl"`
	Stream    string `json:"stream"`
	Param     string `json:"param"`
	Cwd       string `json:"cwd"`
	File      string `json:"file"`
	StreamURL string `json:"stream_url"`
	StreamID  string `json:"stream_id"`
}

type srsStreamHook struct {
	ServerID  string `json:"server_id"`
	ServiceID string `json:"service_id"`
	Action    string `json:"action"`
	ClientID  string `json:"client_id"`
	IP        string `json:"ip"`
	Vhost     string `json:"vhost"`
	App       string `json:"app"`
	TcURL     string `json:"tcUrl"`
	Stream    string `json:"stream"`
	Param     string `json:"param"`
	StreamURL string `json:"stream_url"`
	StreamID  string `json:"stream_id"`
}

const (
	srsServerID  = "vid-i06a97s"
	srsServiceID = "7oas6q35"
)

// srsStream is one publisher.
type srsStream struct {
	name, client, streamID, param string
}

func (s srsStream) publishHook(action string) srsStreamHook {
	return srsStreamHook{ServerID: srsServerID, ServiceID: srsServiceID, Action: action, ClientID: s.client, IP: "127.0.0.1",
		Vhost: "__defaultVhost__", App: "live", TcURL: "rtmp://127.0.0.1:19350/live", Stream: s.name, Param: s.param,
		StreamURL: "/live/" + s.name, StreamID: s.streamID}
}

func randID(rng *rand.Rand, n int) string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

func (f *fakeSRS) streamOf(i int) srsStream {
	rng := rand.New(rand.NewPCG(f.seed, uint64(1000+i)))
	s := srsStream{name: fmt.Sprintf("cam%d", i+1), client: randID(rng, 8), streamID: "vid-" + randID(rng, 7)}
	if i%2 == 0 {
		s.param = "?token=" + randID(rng, 6)
	}
	return s
}

// send POSTs one hook as SRS does (a new connection, 30 s timeout, no retry) and classifies the
// answer: "ok" for 200 {"code":0}, else the status or the transport error.
func (f *fakeSRS) send(path string, body any) (status, answer string) {
	b, err := json.Marshal(body)
	if err != nil {
		return "marshal", err.Error()
	}
	req, _ := http.NewRequestWithContext(f.ctx, http.MethodPost, f.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "SRS/7.0.18(Hang)")
	resp, err := f.client.Do(req)
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return "connection refused", err.Error()
		case errors.As(err, &ne) && ne.Timeout():
			return "timeout", err.Error()
		case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return "connection reset", err.Error()
		default:
			return "transport error", err.Error()
		}
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK && string(got) == `{"code":0}` {
		return "ok", ""
	}
	return strconv.Itoa(resp.StatusCode), string(got)
}

func (f *fakeSRS) hooked(g *genFile, status, answer string, dup bool, took time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.hooksSent++
	f.st.latencies = append(f.st.latencies, took)
	if status == "ok" {
		g.hookOK = true
		f.st.hooksOK++
	}
	switch {
	case dup:
		f.st.dupAnswers[status]++
	case status != "ok":
		f.st.firstFailed[status]++
	}
	if status != "ok" && f.st.samples[status] == "" {
		f.st.samples[status] = answer
	}
}

func (f *fakeSRS) register(g *genFile, ino uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[g.path] = g
	f.list = append(f.list, g)
	f.byIno[ino] = g
	if g.hook == "none" {
		if g.kind == "hls" {
			f.st.neverHLS++
		} else {
			f.st.neverDVR++
		}
	}
	if g.hook == "dup" {
		f.st.dupSent++
	}
}

func (f *fakeSRS) fileByIno(ino uint64) *genFile {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byIno[ino]
}

func (f *fakeSRS) fileByPath(p string) *genFile {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.files[p]
}

func (f *fakeSRS) all() []*genFile {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.list)
}

func (f *fakeSRS) stats() srsStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

// writeMedia writes data as SRS does: to <path>.tmp, then renamed; it returns the inode.
func writeMedia(path string, data []byte) (uint64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	if err := os.WriteFile(path+".tmp", data, 0o644); err != nil {
		return 0, err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return 0, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return 0, err
	}
	return fi.Sys().(*syscall.Stat_t).Ino, nil
}

type m3u8Entry struct {
	name string
	seq  int
	dur  float64
}

// writeM3U8 writes SRS's playlist: to .temp, then renamed.
func writeM3U8(path string, win []m3u8Entry) {
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:%d\n#EXT-X-TARGETDURATION:1\n", win[0].seq)
	for _, e := range win {
		fmt.Fprintf(&b, "#EXTINF:%.3f, no desc\n%s\n", e.dur, e.name)
	}
	os.WriteFile(path+".temp", []byte(b.String()), 0o644)
	os.Rename(path+".temp", path)
}

// runStream publishes one stream: a segment every ~0.4 s until stop, each hooked on the stream's
// own serial hook worker (as SRS's per-stream async worker), ~5% never, ~5% twice.
func (f *fakeSRS) runStream(i int) {
	rng := rand.New(rand.NewPCG(f.seed, uint64(i+1)))
	s := f.streamOf(i)
	if st, _ := f.send("/api/v1/streams", s.publishHook("on_publish")); st != "ok" {
		f.streamHookFailed(st)
	} else {
		f.streamHookFailed("")
	}
	hookq := make(chan func(), 1<<14)
	hooksDone := make(chan struct{})
	go func() {
		for h := range hookq {
			h()
		}
		close(hooksDone)
	}()
	dir := filepath.Join(f.hlsRoot, "live")
	m3u8 := filepath.Join(dir, s.name+".m3u8")
	type inWindow struct {
		m3u8Entry
		g *genFile
	}
	var window []inWindow
	next := time.Now()
	for seq := 0; !isClosed(f.stop); seq++ {
		// Real MPEG-TS from ffmpeg, written in real time: a segment closes its duration after
		// the one before.
		ps := f.pool[seq%len(f.pool)]
		d := time.Duration(ps.dur * float64(time.Second))
		next = next.Add(d)
		if !sleepCtx(f.ctx, time.Until(next)) {
			break
		}
		data := ps.data
		size := len(data)
		name := fmt.Sprintf("%s-%d.ts", s.name, seq)
		path := filepath.Join(dir, name)
		ino, err := writeMedia(path, data)
		if err != nil {
			panic(fmt.Sprintf("fake SRS: %v", err))
		}
		sum := md5.Sum(data)
		g := &genFile{kind: "hls", stream: s.name, path: path, key: "live/" + name, size: int64(size),
			md5: hex.EncodeToString(sum[:]), created: time.Now(), hook: "once", seq: seq, dur: ps.dur}
		switch r := rng.Float64(); {
		case r < 0.05:
			g.hook = "none"
		case r < 0.10:
			g.hook = "dup"
		}
		dupAfter := 2*time.Second + time.Duration(rng.Int64N(int64(4*time.Second)))
		f.register(g, ino)
		f.segments.Add(1)
		// SRS's hls_cleanup (SrsFragmentWindow::shrink): walking back from the newest segment,
		// the one that takes the total past hls_window stays listed, every older one is
		// unlinked, all before the hook is sent.
		window = append(window, inWindow{m3u8Entry{name: name, seq: seq, dur: ps.dur}, g})
		var total time.Duration
		for i := len(window) - 1; i > 0; i-- {
			total += time.Duration(window[i].dur * float64(time.Second))
			if total > chaosHLSWindow {
				for _, e := range window[:i] {
					f.srsCleanup(e.g)
				}
				window = window[i:]
				break
			}
		}
		entries := make([]m3u8Entry, len(window))
		for i, e := range window {
			entries[i] = e.m3u8Entry
		}
		writeM3U8(m3u8, entries)
		if g.hook != "none" {
			body := srsHLSHook{ServerID: srsServerID, ServiceID: srsServiceID, Action: "on_hls", ClientID: s.client, IP: "127.0.0.1",
				Vhost: "__defaultVhost__", App: "live", TcURL: "rtmp://127.0.0.1:19350/live", Stream: s.name, Param: s.param,
				Duration: srsDuration(ps.dur), Cwd: chaosCwd, File: path, URL: "live/" + name, M3U8: m3u8,
				M3U8URL: "live/" + s.name + ".m3u8", SeqNo: seq, StreamURL: "/live/" + s.name, StreamID: s.streamID}
			dup := g.hook == "dup"
			if dup {
				f.dupWG.Add(1)
			}
			hookq <- func() {
				t0 := time.Now()
				st, ans := f.send("/api/v1/hls", body)
				f.hooked(g, st, ans, false, time.Since(t0))
				if dup {
					go func() {
						defer f.dupWG.Done()
						sleepCtx(f.ctx, dupAfter)
						t0 := time.Now()
						st, ans := f.send("/api/v1/hls", body)
						f.hooked(g, st, ans, true, time.Since(t0))
					}()
				}
			}
		}
	}
	close(hookq)
	<-hooksDone
	if st, _ := f.send("/api/v1/streams", s.publishHook("on_unpublish")); st != "ok" {
		f.streamHookFailed(st)
	} else {
		f.streamHookFailed("")
	}
}

func (f *fakeSRS) streamHookFailed(status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.streamHooks++
	if status != "" {
		f.st.streamFailed[status]++
	}
}

// runDVR writes the DVR recordings at their planned times and sends on_dvr on one serial worker
// (SRS's DVR hooks are serial for the whole server). The targeted file's hook triggers the kill
// during its multipart upload.
func (f *fakeSRS) runDVR(p chaosPlan, d *director) {
	rng := rand.New(rand.NewPCG(f.seed, 99))
	var chachaSeed [32]byte
	for j := range chachaSeed {
		chachaSeed[j] = byte(rng.Uint32())
	}
	fill := rand.NewChaCha8(chachaSeed)
	hookq := make(chan func(), 16)
	hooksDone := make(chan struct{})
	go func() {
		for h := range hookq {
			h()
		}
		close(hooksDone)
	}()
	order := make([]int, len(chaosDVRSizes))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return int(p.dvrAt[a] - p.dvrAt[b]) })
	for _, i := range order {
		if !sleepCtx(f.ctx, time.Until(f.start.Add(p.dvrAt[i]))) {
			break
		}
		s := f.streamOf(i % chaosStreams)
		data := make([]byte, chaosDVRSizes[i]<<20)
		fill.Read(data)
		name := fmt.Sprintf("%s.%d.flv", s.name, time.Now().UnixMilli())
		path := filepath.Join(f.dvrRoot, "live", name)
		ino, err := writeMedia(path, data)
		if err != nil {
			panic(fmt.Sprintf("fake SRS: %v", err))
		}
		sum := md5.Sum(data)
		g := &genFile{kind: "dvr", stream: s.name, path: path, key: "live/" + s.name + "/" + name, size: int64(len(data)),
			md5: hex.EncodeToString(sum[:]), created: time.Now(), hook: "once"}
		if i == p.dvrNoHook {
			g.hook = "none"
		}
		f.register(g, ino)
		if g.hook == "none" {
			continue
		}
		body := srsDVRHook{ServerID: srsServerID, ServiceID: srsServiceID, Action: "on_dvr", ClientID: s.client, IP: "127.0.0.1",
			Vhost: "__defaultVhost__", App: "live", TcURL: "rtmp://127.0.0.1:19350/live", Stream: s.name, Param: s.param,
			Cwd: chaosCwd, File: path, StreamURL: "/live/" + s.name, StreamID: s.streamID}
		target := i == p.dvrTarget
		hookq <- func() {
			t0 := time.Now()
			st, ans := f.send("/api/v1/dvrs", body)
			f.hooked(g, st, ans, false, time.Since(t0))
			if target {
				if st == "ok" {
					d.targetStart(g.key)
				} else {
					d.targetSkipped("the targeted DVR hook was answered " + st)
				}
			}
		}
	}
	close(hookq)
	<-hooksDone
	d.targetSkipped("the targeted DVR file was never written")
}

// srsCleanup is SRS's hls_cleanup unlinking an expired segment, whatever srs-offload did with it.
func (f *fakeSRS) srsCleanup(g *genFile) {
	err := os.Remove(g.path)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case err == nil:
		g.srsDeleted = true
		f.st.cleanupRemoved++
	case errors.Is(err, fs.ErrNotExist):
		f.st.cleanupGone++
	default:
		f.st.cleanupErrs = append(f.st.cleanupErrs, err.Error())
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ---- the proof: who removed what, when ----

type rmEvent struct {
	at   time.Time
	path string
	op   string // "remove" or "rename"
}

// rmWatcher records every removal (and rename away) of a media file under the roots.
type rmWatcher struct {
	w        *fsnotify.Watcher
	mu       sync.Mutex
	resolve  func(ino uint64) *genFile // the file a new hard link belongs to
	events   []rmEvent
	links    map[string]*genFile // a path created by someone else (a spool link) → its file
	errs     []string
	overflow bool
	done     chan struct{}
}

func isMediaName(p string) bool {
	switch filepath.Ext(p) {
	case ".ts", ".flv", ".mp4", ".m4s", ".aac", ".mp3":
		return true
	}
	return false
}

func watchRemovals(t *testing.T, roots ...string) *rmWatcher {
	t.Helper()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatalf("fsnotify: %v", err)
	}
	rw := &rmWatcher{w: w, links: map[string]*genFile{}, done: make(chan struct{})}
	for _, r := range roots {
		rw.addTree(r)
	}
	go rw.loop()
	t.Cleanup(rw.close)
	return rw
}

// addTree watches dir and every folder below it (created before the watch could see them).
func (rw *rmWatcher) addTree(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if err := rw.w.Add(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			rw.mu.Lock()
			rw.errs = append(rw.errs, fmt.Sprintf("watch %s: %v", p, err))
			rw.mu.Unlock()
		}
		return nil
	})
}

func (rw *rmWatcher) loop() {
	defer close(rw.done)
	for {
		select {
		case ev, ok := <-rw.w.Events:
			if !ok {
				return
			}
			now := time.Now()
			switch {
			case ev.Has(fsnotify.Create):
				fi, err := os.Lstat(ev.Name)
				if err != nil {
					continue
				}
				if fi.IsDir() {
					rw.addTree(ev.Name)
					continue
				}
				if !isMediaName(ev.Name) {
					continue
				}
				rw.mu.Lock()
				if rw.resolve != nil {
					if g := rw.resolve(fi.Sys().(*syscall.Stat_t).Ino); g != nil && g.path != ev.Name {
						rw.links[ev.Name] = g
					}
				}
				rw.mu.Unlock()
			case ev.Has(fsnotify.Remove), ev.Has(fsnotify.Rename):
				if !isMediaName(ev.Name) {
					continue
				}
				op := "remove"
				if ev.Has(fsnotify.Rename) {
					op = "rename"
				}
				rw.mu.Lock()
				rw.events = append(rw.events, rmEvent{at: now, path: ev.Name, op: op})
				rw.mu.Unlock()
			}
		case err, ok := <-rw.w.Errors:
			if !ok {
				return
			}
			rw.mu.Lock()
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				rw.overflow = true
			} else {
				rw.errs = append(rw.errs, err.Error())
			}
			rw.mu.Unlock()
		}
	}
}

// setResolve names the function that finds the file a new link (a spooled copy) belongs to.
func (rw *rmWatcher) setResolve(f func(ino uint64) *genFile) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.resolve = f
}

func (rw *rmWatcher) close() {
	rw.w.Close()
	<-rw.done
}

type chaosProof struct {
	origRemoved, spoolRemoved, renamed, checked int
	violations, unknown                         []string
}

// spoolOrig maps a spooled path (<root>/<spool>/<dir>/<inode>-<name>) to the file it holds.
func spoolOrig(roots []string, p string) (string, bool) {
	for _, r := range roots {
		sp := filepath.Join(r, chaosSpoolDir) + string(filepath.Separator)
		if !strings.HasPrefix(p, sp) {
			continue
		}
		dir, name := filepath.Split(strings.TrimPrefix(p, sp))
		if _, base, ok := strings.Cut(name, "-"); ok {
			return filepath.Join(r, dir, base), true
		}
	}
	return "", false
}

// attribute sorts the recorded removals: the fake SRS's own (its cleanup removed that path) are
// left out; every other one must have come after the file's object was stored (LastModified has
// a resolution of a second).
func (rw *rmWatcher) attribute(srs *fakeSRS, objs map[string]objInfo, roots []string) chaosProof {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	var pr chaosProof
	for _, ev := range rw.events {
		g := srs.fileByPath(ev.path)
		spooled := false
		if g != nil {
			if g.srsDeleted && ev.op == "remove" {
				continue // SRS's hls_cleanup
			}
		} else {
			if g = rw.links[ev.path]; g == nil {
				if orig, ok := spoolOrig(roots, ev.path); ok {
					g = srs.fileByPath(orig)
				}
			}
			if g == nil {
				pr.unknown = append(pr.unknown, fmt.Sprintf("%s %s at t+%.1fs", ev.op, ev.path, ev.at.Sub(srs.start).Seconds()))
				continue
			}
			spooled = true
		}
		switch {
		case ev.op == "rename":
			pr.renamed++
		case spooled:
			pr.spoolRemoved++
		default:
			pr.origRemoved++
		}
		pr.checked++
		what := map[bool]string{true: "its spooled link " + ev.path, false: g.path}[spooled]
		o, ok := objs[g.key]
		switch {
		case !ok:
			pr.violations = append(pr.violations, fmt.Sprintf("%s: %s (%s) at t+%.1fs, and storage has no %s",
				g.key, what, ev.op, ev.at.Sub(srs.start).Seconds(), g.key))
		case ev.at.Before(o.lastModified.Add(-time.Second)):
			pr.violations = append(pr.violations, fmt.Sprintf("%s: %s (%s) at %s, object LastModified %s",
				g.key, what, ev.op, ev.at.Format("15:04:05.000"), o.lastModified.Format("15:04:05")))
		}
	}
	return pr
}

// ---- storage and disk ----

type objInfo struct {
	size         int64
	etag         string
	lastModified time.Time
}

func listObjects(ctx context.Context, store *uploader.Uploader) (map[string]objInfo, error) {
	out := map[string]objInfo{}
	p := s3.NewListObjectsV2Paginator(store.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(store.Bucket())})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = objInfo{size: aws.ToInt64(o.Size), etag: strings.Trim(aws.ToString(o.ETag), `"`), lastModified: aws.ToTime(o.LastModified)}
		}
	}
	return out, nil
}

// objectMD5 reads an object and returns the MD5 of its bytes and their number.
func objectMD5(ctx context.Context, store *uploader.Uploader, key string) (string, int64, error) {
	out, err := store.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(store.Bucket()), Key: aws.String(key)})
	if err != nil {
		return "", 0, err
	}
	defer out.Body.Close()
	h := md5.New()
	n, err := io.Copy(h, out.Body)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

func pendingMultipart(ctx context.Context, store *uploader.Uploader) string {
	out, err := store.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(store.Bucket())})
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	if len(out.Uploads) == 0 {
		return "0"
	}
	keys := make([]string, len(out.Uploads))
	for i, u := range out.Uploads {
		keys[i] = aws.ToString(u.Key)
	}
	return fmt.Sprintf("%d (%s)", len(out.Uploads), strings.Join(firstN(keys, 5), ", "))
}

// localLeftovers lists every file under the roots but SRS's playlists.
func localLeftovers(roots []string) []string {
	var left []string
	for _, r := range roots {
		filepath.WalkDir(r, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if _, spooled := spoolOrig(roots, p); !spooled && strings.HasSuffix(p, ".m3u8") {
				return nil
			}
			left = append(left, p)
			return nil
		})
	}
	return left
}

// chaosDrain waits until every file is stored with its size and nothing but playlists is left on
// disk. It gives up at the deadline, or earlier when nothing has changed for a while and every
// missing file is gone from disk (so it can never be uploaded).
func chaosDrain(t *testing.T, ctx context.Context, store *uploader.Uploader, files []*genFile, roots []string, from time.Time, tl *chaosTimeline) (time.Time, bool) {
	deadline := from.Add(chaosDrainMax)
	var lastSig string
	lastChange, lastLog := time.Now(), time.Time{}
	for {
		objs, err := listObjects(ctx, store)
		if err != nil {
			if time.Now().After(deadline) || !sleepCtx(ctx, time.Second) {
				tl.add("drain gave up: cannot list the bucket: %v", err)
				return time.Now(), false
			}
			continue
		}
		left := localLeftovers(roots)
		onDisk := map[string]bool{}
		for _, p := range left {
			if orig, ok := spoolOrig(roots, p); ok {
				onDisk[orig] = true
			} else {
				onDisk[p] = true
			}
		}
		stored, lostForGood := 0, 0
		var missing []string
		for _, g := range files {
			if o, ok := objs[g.key]; ok && o.size == g.size {
				stored++
				continue
			}
			missing = append(missing, g.key)
			if !onDisk[g.path] {
				lostForGood++
			}
		}
		now := time.Now()
		if len(missing) == 0 && len(left) == 0 {
			tl.add("drained: %d objects stored, nothing left on disk", stored)
			return now, true
		}
		sig := fmt.Sprint(stored, len(left))
		if sig != lastSig {
			lastSig, lastChange = sig, now
		}
		if now.Sub(lastLog) > 15*time.Second {
			lastLog = now
			t.Logf("drain t+%.0fs: %d of %d stored, %d missing (%d of them gone from disk), %d files left on disk",
				now.Sub(from).Seconds(), stored, len(files), len(missing), lostForGood, len(left))
		}
		stuck := now.Sub(lastChange)
		switch {
		case now.After(deadline):
			tl.add("drain gave up at the deadline: %d missing, %d files on disk", len(missing), len(left))
			return now, false
		case lostForGood == len(missing) && len(left) == 0 && stuck > 30*time.Second:
			tl.add("drain gave up: %d files missing from storage are gone from disk, nothing changed for %.0fs", len(missing), stuck.Seconds())
			return now, false
		case stuck > 3*time.Minute: // asynq recovers a killed worker's tasks within about 2.5 min
			tl.add("drain gave up: nothing changed for %.0fs (%d missing, %d files on disk)", stuck.Seconds(), len(missing), len(left))
			return now, false
		}
		if !sleepCtx(ctx, 2*time.Second) {
			return now, false
		}
	}
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), fmt.Sprintf("… and %d more", len(s)-n))
	}
	return s
}

// latencyText is the median, 99th percentile and maximum of ds.
func latencyText(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	q := func(f float64) time.Duration {
		return ds[min(len(ds)-1, int(f*float64(len(ds))))].Round(time.Millisecond)
	}
	return fmt.Sprintf("median %s, p99 %s, max %s", q(0.5), q(0.99), ds[len(ds)-1].Round(time.Millisecond))
}

// vodText counts the VoD playlists per stream (information only: one per publish is expected).
func vodText(objs map[string]objInfo) string {
	per := map[string]int{}
	for k := range objs {
		if parts := strings.Split(k, "/"); len(parts) == 4 && parts[2] == "vod" && strings.HasSuffix(k, ".m3u8") {
			per[parts[1]]++
		}
	}
	total := 0
	for _, n := range per {
		total += n
	}
	return fmt.Sprintf("%d for %d streams (%s)", total, chaosStreams, countsText(per))
}

func countsText(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

var logMsg = regexp.MustCompile(`msg="([^"]*)"|msg=(\S+)`)

// logErrorSummary counts the ERROR lines of every process log by message.
func logErrorSummary(dir string) string {
	counts := map[string]int{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, "level=ERROR") {
				continue
			}
			msg := "?"
			if m := logMsg.FindStringSubmatch(line); m != nil {
				msg = m[1] + m[2]
			}
			counts[msg]++
		}
		f.Close()
	}
	return countsText(counts)
}
