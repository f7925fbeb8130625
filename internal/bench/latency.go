package main

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// B4: latency under a steady load: segments appear at a fixed rate, each followed by its on_hls;
// per segment the harness measures hook → object visible in storage → local file gone.

func (e *env) benchLatency() section {
	n := e.sc.latRate * int(e.sc.latDur/time.Second)
	s := section{id: "b4", title: "B4 latency under load",
		what: fmt.Sprintf("%d segments/s for %v (%s segments of %s, %d streams) against srs-offload `serve`, once archive only (`playlist: {enabled: false}`), once with its live and VoD playlists (the default) and once with the live playlist served (`playlist: {live: served}`), and archive only and the default twice more with the disk taken out (S3 data on a tmpfs, then the roots and spool too; their bounds): "+
			"for every segment the time from its on_hls to the object being visible in storage and to the local file being gone (stored, verified, purged).", e.sc.latRate, e.sc.latDur, thousands(n), mib(e.opt.latSize), e.sc.latStreams)}
	tbl := table{header: []string{"run", "", "p50", "p99", "max", "samples", "target", "met?"}}
	var errs []error
	for _, m := range []mode{archiveMode, archiveS3TmpfsMode, archiveTmpfsMode, playlistsMode, playlistsS3TmpfsMode, playlistsTmpfsMode, servedMode} {
		if err := e.latency(&s, &tbl, n, m); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.short, err))
		}
		settle()
	}
	e.diskBound(&s)
	if len(tbl.rows) > 0 {
		s.tables = append(s.tables, tbl)
	}
	s.notes = append(s.notes,
		"The targets (issue 16): p99 ≤ 100 ms archive only (`playlist.enabled: false`: it uploads, verifies and purges the segments and writes no playlists), p99 ≤ 500 ms in the default mode (a live playlist per stream and a VoD playlist per publish session, about one more PutObject per segment); the served mode (`playlist.live: served`, no live playlist PUT) is shown beside them, not judged.",
		fmt.Sprintf("The runs go one after the other (archive only, then with S3 data on tmpfs, then all on tmpfs; the same for the default; served), each %v at %d segments/s, each with a new srs-offload process, bucket, root and an empty Redis.", e.sc.latDur, e.sc.latRate),
		"The disk bounds: archive only and the default twice more, first with versitygw's objects on a tmpfs ("+shmDir+", a versitygw of its own started for the run: in production storage is another machine's disk), then with the SRS root (so also srs-offload's spool, which is inside it) there too; Redis's append-only file stays on the disk. What is left of the tail in the second is not the disk's.",
		fmt.Sprintf("The generator is open-loop: segment i is due at i/%d s; it is written as <name>.tmp and renamed (as SRS does), then its on_hls is sent on a new connection, each from its own goroutine.", e.sc.latRate),
		"\"Local file gone\" is the time inotify (IN_DELETE/IN_MOVED_FROM on the stream folders) reports the removal of SRS's name, which srs-offload does only after the object is verified. \"Visible in storage\" is the time inotify (IN_CREATE/IN_MOVED_TO in versitygw's data folder) reports the object's name: versitygw's posix backend writes the bytes and metadata to an unnamed file and links it under its key, so that is when a GET or HEAD first finds it. Both are watched for every segment, at no cost to the S3 server (earlier runs polled HEAD for every 10th segment on a schedule that, at the 9 s waits of the last run with playlists, makes about 65 HEADs per watched segment: some 5× the PUTs, on the S3 server being measured).",
		"Default config otherwise (worker.concurrency 16, spool, reconciler with watcher), poll_interval 20ms; every object is checked (size and ETag = MD5) after each run.")
	s.err = errors.Join(errs...)
	return s
}

type segTimes struct {
	t0      time.Time
	hook    time.Duration
	visible time.Duration // 0: not watched or not seen
	gone    time.Duration // 0: not seen
	md5     string
}

// latency runs B4 once, with srs-offload in mode m, and adds its rows, summary and notes.
func (e *env) latency(s *section, tbl *table, n int, m mode) error {
	base := e.tmp
	if m.tmpfs != "" {
		// the segments in the root and the spool, and their objects, with room to spare
		b, back, err := e.onTmpfs(3*int64(n)*e.opt.latSize + 256<<20)
		if err != nil {
			s.notes = append(s.notes, m.label+": not run: "+err.Error()+".")
			return nil
		}
		defer back()
		if m.tmpfs == "all" {
			base = b
		}
	}
	root, err := e.newRootIn(base, "b4-"+m.key)
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	streams := e.sc.latStreams
	rels := make([]string, n)
	paths := make([]string, n)
	index := make(map[string]int, n)
	keyIndex := make(map[string]int, n)
	var dirs []string
	for st := range streams {
		name := fmt.Sprintf("cam%02d", st)
		dir := filepath.Join(root, "live", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		dirs = append(dirs, dir)
		if err := writePlaylist(root, "live", name, nil); err != nil {
			return err
		}
	}
	for i := range n {
		rels[i] = fmt.Sprintf("live/cam%02d/%d-%d.ts", i%streams, 1795474211734+int64(i)*2000, i/streams)
		paths[i] = filepath.Join(root, rels[i])
		index[paths[i]] = i
		keyIndex[rels[i]] = i // the object key: {app}/{stream}/{basename}
	}
	payload := make([]byte, e.opt.latSize)
	r := rand.New(rand.NewPCG(4, 4))
	for i := range payload {
		payload[i] = byte(r.Uint32())
	}

	bucket := e.name("b4-ours-" + m.key)
	if err := e.s3.CreateBucket(bucket); err != nil {
		return err
	}
	o, err := e.startOffload("serve", e.name("b4-"+m.key+"-serve"), root, bucket, m)
	if err != nil {
		return err
	}
	defer o.Kill()
	waitIdle(o.Pid(), 5*time.Second)

	segs := make([]segTimes, n)
	var mu sync.Mutex
	var goneCount atomic.Int64
	watch, err := watchNames(unix.IN_DELETE|unix.IN_MOVED_FROM, func(p string, _ bool, at time.Time) {
		i, ok := index[p]
		if !ok {
			return
		}
		mu.Lock()
		if !segs[i].t0.IsZero() && segs[i].gone == 0 {
			segs[i].gone = at.Sub(segs[i].t0)
			goneCount.Add(1)
		}
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	defer watch.stop()
	// An object can only be visible after its hook: t0 is set before the hook is sent, and an
	// arrival seen first (t0 still zero) cannot happen; the earliest report of a key wins.
	objects, err := watchObjects(e.s3.DataDir, bucket, func(key string, at time.Time) {
		i, ok := keyIndex[key]
		if !ok {
			return
		}
		mu.Lock()
		if !segs[i].t0.IsZero() && (segs[i].visible == 0 || at.Sub(segs[i].t0) < segs[i].visible) {
			segs[i].visible = max(at.Sub(segs[i].t0), time.Nanosecond)
		}
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	defer objects.stop()
	for _, d := range dirs {
		if err := watch.add(d); err != nil {
			return err
		}
	}

	e.logf("B4 %s: %d segments/s for %v", m.short, e.sc.latRate, e.sc.latDur)
	prof := "b4-latency-" + m.key
	wait := e.profile(o, prof, min(int(e.sc.latDur.Seconds())+3, 60)) // the profiler takes at most 60 s
	url := "http://" + o.listen + "/api/v1/hls"
	c := hookClient()
	var errOnce sync.Once
	var firstErr error
	var races atomic.Int64
	fail := func(err error) { errOnce.Do(func() { firstErr = err }) }
	one := func(i int) {
		data := slices.Clone(payload)
		binary.BigEndian.PutUint64(data, uint64(i)) // every segment its own bytes
		sum := md5.Sum(data)
		tmp := paths[i] + ".tmp" // SRS writes <name>.tmp and renames it when the segment is done
		write := func() error {
			if err := watch.add(filepath.Dir(tmp)); err != nil {
				return err
			}
			return os.WriteFile(tmp, data, 0o644)
		}
		if err := placeFile(filepath.Dir(tmp), write, &races); err != nil {
			fail(err)
			return
		}
		if err := os.Rename(tmp, paths[i]); err != nil {
			fail(err)
			return
		}
		b := e.hlsBody(root, "live", streamOf(rels[i]), rels[i], i/streams)
		t0 := time.Now()
		mu.Lock()
		segs[i].t0, segs[i].md5 = t0, hex.EncodeToString(sum[:])
		mu.Unlock()
		err := postHook(c, url, b)
		hook := time.Since(t0)
		mu.Lock()
		segs[i].hook = hook
		mu.Unlock()
		if err != nil {
			fail(fmt.Errorf("hook %d: %w", i, err))
			return
		}
	}
	interval := time.Second / time.Duration(e.sc.latRate)
	var wg sync.WaitGroup
	var u usage
	meter := e.meter(o.Pid())
	start := time.Now()
	waitTrace := func() {}
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		if i == n/2 {
			// Half way: where srs-offload's goroutines wait, and a few seconds of execution trace.
			e.goroutines(o, prof)
			waitTrace = e.trace(o, prof, 3)
		}
		wg.Add(1)
		go func() { defer wg.Done(); one(i) }()
	}
	sent := time.Since(start)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	left := waitGone(paths, 10*time.Millisecond, 3*time.Minute)
	u.elapsed = time.Since(start)
	meter.stop(&u)
	time.Sleep(100 * time.Millisecond) // the last inotify events
	u.metrics = o.ownMetrics("hls")
	wait()
	if !m.served {
		e.ranProfiled(prof, "B4 "+m.short, prof, n, u.own)
	}
	waitTrace()
	watch.stop()
	objects.stop()
	if len(left) > 0 {
		return fmt.Errorf("%d of %d segments not purged 3 minutes after the last hook, e.g. %s", len(left), n, left[0])
	}
	if err := o.finish(); err != nil {
		return err
	}
	if err := e.redis.Flush(); err != nil {
		return err
	}
	e.takeReqs(&u, bucket)
	objs, err := e.s3.List(bucket)
	if err != nil {
		return err
	}
	files := make([]dataFile, n)
	for i := range files {
		files[i] = dataFile{rel: rels[i], size: e.opt.latSize, md5: segs[i].md5}
	}
	if err := checkStored(objs, files, "", true); err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	}
	if err := e.s3.DropBucket(bucket); err != nil {
		return err
	}

	var hooks, vis, gone []time.Duration
	type ev struct {
		at time.Time
		d  int
	}
	var evs []ev
	for _, sg := range segs {
		hooks = append(hooks, sg.hook)
		if sg.visible > 0 {
			vis = append(vis, sg.visible)
		}
		if sg.gone > 0 {
			gone = append(gone, sg.gone)
			evs = append(evs, ev{sg.t0, 1}, ev{sg.t0.Add(sg.gone), -1})
		}
	}
	slices.SortFunc(evs, func(a, b ev) int { return a.at.Compare(b.at) })
	inFlight, maxInFlight := 0, 0
	for _, x := range evs {
		inFlight += x.d
		maxInFlight = max(maxInFlight, inFlight)
	}
	sortDur(hooks)
	sortDur(vis)
	sortDur(gone)
	prefix := m.label + ": "
	if len(gone) < n {
		note := fmt.Sprintf("%d of %d removals were not seen by inotify", n-len(gone), n)
		if watch.overflow.Load() {
			note += " (its queue overflowed)"
		}
		s.notes = append(s.notes, prefix+note+"; they are left out of the percentiles.")
	}
	if len(vis) < n {
		note := fmt.Sprintf("%d of %d objects were not seen arriving in versitygw's folder by inotify", n-len(vis), n)
		if objects.overflow.Load() {
			note += " (its queue overflowed, or a folder could not be watched)"
		}
		s.notes = append(s.notes, prefix+note+"; they are left out of the percentiles.")
	}
	p99 := pct(gone, .99)
	if n := races.Load(); n > 0 {
		s.notes = append(s.notes, prefix+fmt.Sprintf("%d times a stream folder the harness had just created was removed by srs-offload (it removes folders its purges leave empty) before the segment's .tmp file was created in it; the harness created it again. SRS can meet the same race.", n))
	}
	target, met := "p99 ≤ 100 ms", yesNo(p99 <= 100*time.Millisecond)
	switch {
	case m.served, m.tmpfs != "":
		target, met = "not a target", "—"
	case m.playlists:
		target, met = "p99 ≤ 500 ms", yesNo(p99 <= 500*time.Millisecond)
	}
	tbl.rows = append(tbl.rows,
		[]string{m.label, "hook answered", ms(pct(hooks, .5)), ms(pct(hooks, .99)), ms(pct(hooks, 1)), thousands(len(hooks)), "", ""},
		[]string{m.label, "hook → object visible in storage", ms(pct(vis, .5)), ms(pct(vis, .99)), ms(pct(vis, 1)), thousands(len(vis)), "", ""},
		[]string{m.label, "hook → local file gone (stored, verified, purged)", ms(pct(gone, .5)), ms(p99), ms(pct(gone, 1)), thousands(len(gone)), target, met},
	)
	result := fmt.Sprintf("%s (p50 %s) at %.0f segments/s", ms(p99), ms(pct(gone, .5)), float64(n)/sent.Seconds())
	if m.tmpfs != "" {
		if e.tmpfsP99 == nil {
			e.tmpfsP99 = map[string][]string{}
		}
		e.tmpfsP99[m.bounds] = append(e.tmpfsP99[m.bounds], fmt.Sprintf("%s with %s", result, tmpfsWhat[m.tmpfs]))
	} else {
		s.summary = append(s.summary, []string{fmt.Sprintf("B4 hook → file gone p99 (%s)", m.short), strings.TrimPrefix(target, "p99 "), result, met})
	}
	s.notes = append(s.notes,
		prefix+fmt.Sprintf("achieved rate %.1f segments/s; at most %d segments were between hook and purge at once. From the first hook until the last file was gone: %s; CPU time over it: srs-offload %.1f s, versitygw %.1f s, Redis %.1f s (%.2f cores of %d).",
			float64(n)/sent.Seconds(), maxInFlight, secs(u.elapsed), u.own.Seconds(), u.s3.Seconds(), u.redis.Seconds(), (u.own+u.s3+u.redis).Seconds()/u.elapsed.Seconds(), runtime.NumCPU()),
		prefix+"srs-offload's own metrics over the run: "+u.metrics+".",
		prefix+fmt.Sprintf("S3 requests per segment, counted by versitygw: %s.", perFile(u.reqs, n)))
	return nil
}

// diskBound adds the tmpfs run's p99 to the summary row of the archive-only target it bounds.
func (e *env) diskBound(s *section) {
	for short, p99s := range e.tmpfsP99 {
		for _, r := range s.summary {
			if r[0] == "B4 hook → file gone p99 ("+short+")" {
				r[2] += "; bounds: " + strings.Join(p99s, "; ")
			}
		}
	}
}

// names reports every name that arrives in (created in or moved into) or leaves (removed from or
// moved out of) the folders it watches, as its mask says, with the time the event was read.
// srs-offload removes the folders its purges leave empty, so the harness adds the folder of every
// segment again right before the segment is created in it (add is cheap, and a folder created
// anew gets a new watch).
type names struct {
	f        *os.File
	fd       int
	mask     uint32
	mu       sync.Mutex
	wds      map[int32]string
	overflow atomic.Bool
	done     chan struct{}
	once     sync.Once
}

// watchNames reads inotify events of mask (IN_DELETE|IN_MOVED_FROM, or IN_CREATE|IN_MOVED_TO)
// and calls seen, from one goroutine, for each name of a watched folder.
func watchNames(mask uint32, seen func(path string, dir bool, at time.Time)) (*names, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	w := &names{fd: fd, mask: mask, wds: map[int32]string{}, done: make(chan struct{})}
	w.f = os.NewFile(uintptr(fd), "inotify") // non-blocking: Read waits in the poller, Close ends it
	go func() {
		defer close(w.done)
		buf := make([]byte, 256<<10)
		for {
			n, err := w.f.Read(buf)
			if err != nil {
				return
			}
			at := time.Now()
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				wd := int32(binary.NativeEndian.Uint32(buf[off:]))
				mask := binary.NativeEndian.Uint32(buf[off+4:])
				l := int(binary.NativeEndian.Uint32(buf[off+12:]))
				name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+l]
				for len(name) > 0 && name[len(name)-1] == 0 {
					name = name[:len(name)-1]
				}
				if mask&unix.IN_Q_OVERFLOW != 0 {
					w.overflow.Store(true)
				}
				w.mu.Lock()
				dir, ok := w.wds[wd]
				w.mu.Unlock()
				if ok && len(name) > 0 && mask&w.mask != 0 {
					seen(filepath.Join(dir, string(name)), mask&unix.IN_ISDIR != 0, at)
				}
				off += unix.SizeofInotifyEvent + l
			}
		}
	}()
	return w, nil
}

// add watches dir (again).
func (w *names) add(dir string) error {
	wd, err := unix.InotifyAddWatch(w.fd, dir, w.mask)
	if err != nil {
		return fmt.Errorf("inotify %s: %w", dir, err)
	}
	w.mu.Lock()
	w.wds[int32(wd)] = dir
	w.mu.Unlock()
	return nil
}

func (w *names) stop() {
	w.once.Do(func() {
		w.f.Close()
		<-w.done
	})
}

// watchObjects reports when each object appears in bucket, a folder of versitygw's posix backend
// (data): versitygw writes an object's bytes and metadata (ETag, checksums) to an unnamed file and
// links it into place under its key, so the name's arrival is the moment a GET or HEAD finds the
// object. Folders are watched as they appear; objects linked into a folder before its watch are
// found by a look into it right after, at their ctime (the link's time). versitygw's own
// temporary names (a leading dot) are left out. This costs the S3 server nothing, where polling
// HEAD in a backlog costs it more than the uploads.
func watchObjects(data, bucket string, visible func(key string, at time.Time)) (*names, error) {
	top := filepath.Join(data, bucket)
	var w *names
	report := func(p string, at time.Time) {
		if strings.HasPrefix(filepath.Base(p), ".") {
			return
		}
		if key, err := filepath.Rel(top, p); err == nil {
			visible(filepath.ToSlash(key), at)
		}
	}
	var addTree func(dir string)
	addTree = func(dir string) {
		if err := w.add(dir); err != nil {
			w.overflow.Store(true) // counted as missed: the run says how many were not seen
			return
		}
		entries, _ := os.ReadDir(dir)
		for _, d := range entries {
			p := filepath.Join(dir, d.Name())
			switch {
			case d.IsDir():
				addTree(p)
			case d.Type().IsRegular():
				var st unix.Stat_t
				if unix.Stat(p, &st) == nil {
					report(p, time.Unix(st.Ctim.Unix()))
				}
			}
		}
	}
	var err error
	w, err = watchNames(unix.IN_CREATE|unix.IN_MOVED_TO, func(p string, dir bool, at time.Time) {
		if dir {
			addTree(p)
			return
		}
		report(p, at)
	})
	if err != nil {
		return nil, err
	}
	addTree(top)
	return w, nil
}
