package main

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// B2: many segment files, hook → stored and verified → purged, against raw concurrent PutObject
// of the same files (the ceiling) and rclone copy --transfers 16.

// dataset is a folder of generated segments laid out as SRS writes them:
// live/camNN/<timestamp>-<seq>.ts, NN = seq mod streams.
type dataset struct {
	name    string
	dir     string
	files   []dataFile
	bytes   int64
	streams int
}

func (e *env) genSegments(name string, n int, size int64, streams int) (*dataset, error) {
	d := &dataset{name: name, dir: filepath.Join(e.tmp, "data", name), streams: streams}
	for i := range n {
		rel := fmt.Sprintf("live/cam%02d/%d-%d.ts", i%streams, 1795474211734+int64(i)*2000, i)
		sum, err := genFile(filepath.Join(d.dir, rel), size, uint64(i+1)*7919+uint64(size))
		if err != nil {
			return nil, err
		}
		d.files = append(d.files, dataFile{rel: rel, size: size, md5: sum})
		d.bytes += size
	}
	return d, nil
}

// streamOf is the stream (camNN) of a segment's path.
func streamOf(rel string) string { return strings.Split(rel, "/")[1] }

func (e *env) benchOffload() section {
	s := section{id: "b2", title: "B2 offload: segment files",
		what: fmt.Sprintf("%s × %s and %s × %s segment files (random bytes, in %d streams): srs-offload `serve` from the first hook until every file is stored, "+
			"verified and purged, against raw concurrent PutObject of the same files (the ceiling) and `rclone copy --transfers 16`. "+
			"srs-offload runs in each of its modes: archive only (`playlist: {enabled: false}`: segments only, as the baselines do), with its live and VoD playlists (the default), and with the live playlist served by its hook listener (`playlist: {live: served}`).",
			thousands(e.sc.bigN), mib(e.sc.bigSize), thousands(e.sc.smallN), mib(e.sc.smallSize), e.sc.offloadConns)}
	tbl := table{header: []string{"files", "run", "srs-offload (or the bound)", "raw PutObject ×16 (ceiling)", "rclone --transfers 16",
		"it / raw PUT", "target", "it / rclone", "target", "met?"}}
	cpu := table{header: []string{"CPU time", "srs-offload archive only + versitygw + Redis", "srs-offload with playlists + versitygw + Redis",
		"srs-offload with served playlists + versitygw + Redis", "raw PUT (harness) + versitygw", "rclone + versitygw",
		"durable-queue PUT loop (bound, harness) + versitygw + Redis"}}
	reqs := table{header: []string{"S3 requests per file", "srs-offload archive only", "srs-offload with playlists", "srs-offload with served playlists", "raw PUT", "rclone",
		"durable-queue PUT loop (bound)"}}
	perSeg := table{header: []string{"CPU per file (the uploading process only)", "srs-offload archive only", "srs-offload with playlists", "srs-offload with served playlists",
		"raw PUT loop (harness)", "archive only / raw", "with playlists / raw", "served / raw", "durable-queue PUT loop (bound, harness)", "bound / raw",
		"rclone", "rclone / raw"}}
	vt := table{header: []string{"files (archive only)", "storage.verify auto (default; md5 on versitygw, CRC32C sent too)", "storage.verify md5",
		"storage.verify checksum (crc32c)", "checksum / md5", "CPU time: md5", "CPU time: checksum"}}
	for _, c := range []struct {
		n    int
		size int64
	}{{e.sc.bigN, e.sc.bigSize}, {e.sc.smallN, e.sc.smallSize}} {
		if err := e.offloadCase(&s, &tbl, &cpu, &reqs, &perSeg, &vt, c.n, c.size); err != nil {
			s.err = err
			break
		}
	}
	s.tables = append(s.tables, tbl, cpu, perSeg, reqs, vt)
	s.notes = append(s.notes,
		"The targets (issue 16): archive only (`playlist.enabled: false`, what the baselines do: store the segments) ≥ 0.95× raw PUT at 1 MiB and ≥ 0.90× at 64 KiB, with at most 1.2× the raw loop's CPU per 64 KiB segment; "+
			"the default mode (a live playlist per stream and a VoD playlist per publish session, about one more PutObject per segment, and their ledger in Redis) ≥ 0.75× of archive only at 1 MiB and ≥ 0.6× at 64 KiB. "+
			"The served mode (`playlist.live: served`: the hook listener serves the live playlist from the ledger, the bucket gets segments and VoD playlists only) is measured beside them for the operator's choice, not judged; rclone is shown, not judged.",
		"CPU per file: the CPU time of the process that uploads (srs-offload `serve`: hooks, queue, upload, verify, purge, playlists; the harness for raw PUT and the durable-queue PUT loop, which does nothing else then; rclone's process, its start included) over the files, median of the repetitions; the ratios are the mean of the per-repetition ratios. Redis's CPU per file, beside archive only and the bound, is not in their ratios.",
		"Throughput is the data set's bytes over the wall time: for srs-offload from the first hook until the last file is gone from the root (the harness stats the files in hook order every 5 ms), for raw PUT from the first open until the last answer, for the durable-queue PUT loop from the first enqueue until the last file is unlinked, for rclone the process's run time.",
		fmt.Sprintf("srs-offload: each file appears in the root (a hard link of the generated file, as SRS renames a finished segment) and its on_hls is sent right after, %d streams sending in parallel, each in order (SRS sends on_hls serially per stream), one connection per hook. "+
			"Its config is the default one (worker.concurrency 16, spool, reconciler with watcher) with poll_interval 20ms, once with `playlist: {enabled: false}` and once with the default playlists.", e.sc.offloadConns),
		"Each repetition runs raw PUT, the durable-queue PUT loop, srs-offload archive only, rclone, srs-offload with playlists, with served playlists, then archive only with verify md5 and with verify checksum, in that order, and in the reverse order in the next repetition; the baseline columns of the two srs-offload rows are the same runs.",
		"Raw PUT: 16 goroutines, aws-sdk-go-v2 set up as srs-offload's uploader (path-style, checksums only when required), each file read once for its MD5 and sent with Content-MD5 and Content-Type, its ETag compared: what srs-offload's single PUT does, without the queue, spool, conditional write, purge and playlists.",
		"The bound of the archive-only targets: the durable-queue PUT loop, in the harness, does what any uploader that never loses a file must do and nothing else. "+
			"For each file (a hard link in a new folder, made before the clock starts, as SRS's segments are in srs-offload's runs) it makes one asynq enqueue into the run's Redis "+
			"(srs-offload's payload type, about the same payload, a unique task id per file, its default MaxRetry, Timeout and Retention), from "+fmt.Sprint(e.sc.offloadConns)+" goroutines; "+
			"an asynq server in the harness (concurrency 16, poll interval 20 ms as srs-offload's worker here) takes each task and does the raw loop's work (MD5, PutObject with Content-MD5, ETag compared: the same function), then unlinks the file and completes the task. "+
			"So enqueue, dequeue, PUT, verify, unlink, complete: the queue and the unlink are what it pays over raw PUT, and what any uploader that records every file durably and deletes it only once verified pays too; "+
			"hooks, spool, conditional write, reconciler and playlists are left out. Its CPU is the harness's (enqueue and worker) plus Redis's. Afterwards the bucket is checked as for the other runs and every link must be gone.",
		"rclone: Debian's rclone with an S3 remote (provider Other, path style) from RCLONE_CONFIG_* variables, defaults otherwise (it also sends Content-MD5 for single-part uploads).",
		"CPU time: of the process doing the work (srs-offload; the harness for raw PUT, which also runs nothing else then; rclone), of versitygw and, for srs-offload, of Redis, over the run; cores = their sum over the wall time, of the "+fmt.Sprint(runtime.NumCPU())+" there are.",
		"S3 requests per file: counted by versitygw (its StatsD counters, per bucket and action; a failed request shows its status), all of the run's requests (playlists included) over the files, the harness's own CreateBucket left out.",
		"Verify modes: srs-offload archive only once more with `storage.verify: md5` (ETag = MD5 only) and once with `storage.verify: checksum` (CRC32C computed here, sent as a header, compared with what versitygw reports; no MD5); checksum / md5 is the md5 run's wall time over the checksum run's (above 1: checksum is faster).",
		"After every run the harness lists the bucket and checks every object's size and ETag (= MD5); for srs-offload also that the spool is empty. Each run gets a new bucket and root, and a new srs-offload process with an empty Redis; the bucket is deleted and the disk synced before the next run.")
	return s
}

func (e *env) offloadCase(s *section, tbl, cpu, reqs, perSeg, vt *table, n int, size int64) error {
	label := fmt.Sprintf("%s × %s", thousands(n), mib(size))
	key := fmt.Sprintf("b2-%s", strings.ReplaceAll(mib(size), " ", ""))
	e.logf("B2 %s: generating the files", label)
	d, err := e.genSegments(key, n, size, e.sc.offloadConns)
	if err != nil {
		return err
	}
	defer os.RemoveAll(d.dir)
	settle()

	var raws, bounds, rclones, archives, fulls, serveds, md5s, sums []usage
	var sumMD5 []float64
	md5Mode, sumMode := archiveMode.withVerify("md5"), archiveMode.withVerify("checksum")
	var archRaw, archRclone, fullRaw, fullRclone, fullArch, servedArch []float64
	for rep := range e.opt.reps {
		var raw, qb, rcl, arch, full, srv, vm, vs usage
		steps := []struct {
			name string
			run  func() error
		}{
			{"raw PutObject", func() (err error) { raw, err = e.rawPut(d); return }},
			{"durable-queue PUT loop (bound)", func() (err error) { qb, err = e.queuePut(d); return }},
			{"srs-offload archive only", func() (err error) { arch, err = e.offloadOurs(d, key, rep, raw.elapsed, archiveMode); return }},
			{"rclone", func() (err error) { rcl, err = e.rclone(d); return }},
			{"srs-offload with playlists", func() (err error) { full, err = e.offloadOurs(d, key, rep, raw.elapsed, playlistsMode); return }},
			{"srs-offload with served playlists", func() (err error) { srv, err = e.offloadOurs(d, key, rep, raw.elapsed, servedMode); return }},
			{"srs-offload archive only, verify md5", func() (err error) { vm, err = e.offloadOurs(d, key, rep, raw.elapsed, md5Mode); return }},
			{"srs-offload archive only, verify checksum", func() (err error) { vs, err = e.offloadOurs(d, key, rep, raw.elapsed, sumMode); return }},
		}
		if rep%2 == 1 {
			slices.Reverse(steps)
		}
		for _, st := range steps {
			e.logf("B2 %s rep %d: %s", label, rep+1, st.name)
			if err := st.run(); err != nil {
				return fmt.Errorf("%s, %s: %w", label, st.name, err)
			}
			settle()
		}
		raws, rclones, archives, fulls = append(raws, raw), append(rclones, rcl), append(archives, arch), append(fulls, full)
		bounds = append(bounds, qb)
		serveds = append(serveds, srv)
		servedArch = append(servedArch, arch.elapsed.Seconds()/srv.elapsed.Seconds())
		md5s, sums = append(md5s, vm), append(sums, vs)
		sumMD5 = append(sumMD5, vm.elapsed.Seconds()/vs.elapsed.Seconds())
		s.notes = append(s.notes, fmt.Sprintf("%s rep %d, archive only: verify md5 %s, verify checksum %s (%s)",
			label, rep+1, secs(vm.elapsed), secs(vs.elapsed), ratio(sumMD5[rep])))
		archRaw = append(archRaw, raw.elapsed.Seconds()/arch.elapsed.Seconds())
		archRclone = append(archRclone, rcl.elapsed.Seconds()/arch.elapsed.Seconds())
		fullRaw = append(fullRaw, raw.elapsed.Seconds()/full.elapsed.Seconds())
		fullRclone = append(fullRclone, rcl.elapsed.Seconds()/full.elapsed.Seconds())
		fullArch = append(fullArch, arch.elapsed.Seconds()/full.elapsed.Seconds())
		s.notes = append(s.notes, fmt.Sprintf("%s rep %d: durable-queue PUT loop (bound) %s (%s of raw)", label, rep+1, secs(qb.elapsed), ratio(raw.elapsed.Seconds()/qb.elapsed.Seconds())))
		s.notes = append(s.notes, fmt.Sprintf("%s rep %d: raw PUT %s, rclone %s; srs-offload archive only %s (%s of raw, %s of rclone), with playlists %s (%s of raw, %s of rclone, %s of archive only)",
			label, rep+1, secs(raw.elapsed), secs(rcl.elapsed), secs(arch.elapsed), ratio(archRaw[rep]), ratio(archRclone[rep]),
			secs(full.elapsed), ratio(fullRaw[rep]), ratio(fullRclone[rep]), ratio(fullArch[rep])))
		for _, r := range []struct {
			m mode
			u usage
		}{{archiveMode, arch}, {playlistsMode, full}, {servedMode, srv}} {
			s.notes = append(s.notes, fmt.Sprintf("%s rep %d, srs-offload %s: every hook answered after %s (hook p99 %s); its metrics: %s",
				label, rep+1, r.m.short, secs(r.u.hooks), ms(r.u.hookP99), r.u.metrics))
		}
	}
	wall := func(us []usage) time.Duration { return medianOf(us, func(u usage) time.Duration { return u.elapsed }) }
	cell := func(us []usage) string {
		m := wall(us)
		return fmt.Sprintf("%.0f MiB/s, %s files/s (%s)", mibps(d.bytes, m), thousands(int(float64(n)/m.Seconds())), secs(m))
	}
	a1, a2 := mean(archRaw), mean(archRclone)
	f1, f2, fa := mean(fullRaw), mean(fullRclone), mean(fullArch)
	sa := mean(servedArch)
	b1 := speedRatio(bounds, raws)
	// Issue 16's targets: archive only ≥ 0.90× raw PUT (≥ 0.95× at 1 MiB, which replaces the
	// rclone target); with playlists ≥ 0.75× of archive only at 1 MiB, ≥ 0.6× at 64 KiB.
	rawTarget, fullTarget := 0.90, 0.60
	if size >= 1<<20 {
		rawTarget, fullTarget = 0.95, 0.75
	}
	tbl.rows = append(tbl.rows,
		[]string{label, archiveMode.label, cell(archives), cell(raws), cell(rclones), ratio(a1), fmt.Sprintf("≥ %.2f×", rawTarget), ratio(a2), "not a target", yesNo(a1 >= rawTarget)},
		[]string{label, playlistsMode.label, cell(fulls), cell(raws), cell(rclones), ratio(f1), fmt.Sprintf("≥ %.2f× of archive only", fullTarget), ratio(f2), "not a target",
			fmt.Sprintf("%s (%s of archive only)", yesNo(fa >= fullTarget), ratio(fa))},
		[]string{label, servedMode.label, cell(serveds), cell(raws), cell(rclones), ratio(speedRatio(serveds, raws)), "not a target", "", "not a target", fmt.Sprintf("— (%s of archive only)", ratio(sa))},
		[]string{label, "durable-queue PUT loop (bound of archive only; harness)", cell(bounds), cell(raws), cell(rclones), ratio(b1), "the bound", ratio(speedRatio(bounds, rclones)), "not a target", "—"})
	cpu.rows = append(cpu.rows, []string{label, cpuCell(archives, true), cpuCell(fulls, true), cpuCell(serveds, true), cpuCell(raws, false), cpuCell(rclones, false), cpuCell(bounds, true)})
	files := n * len(archives)
	reqs.rows = append(reqs.rows, []string{label, perFile(sumReqs(archives), files), perFile(sumReqs(fulls), files),
		perFile(sumReqs(serveds), files), perFile(sumReqs(raws), files), perFile(sumReqs(rclones), files), perFile(sumReqs(bounds), files)})
	perSeg.rows = append(perSeg.rows, []string{label, cpuPerFile(archives, n) + redisPerFile(archives, n), cpuPerFile(fulls, n), cpuPerFile(serveds, n), cpuPerFile(raws, n),
		ratio(cpuRatio(archives, raws)), ratio(cpuRatio(fulls, raws)), ratio(cpuRatio(serveds, raws)), cpuPerFile(bounds, n) + redisPerFile(bounds, n), ratio(cpuRatio(bounds, raws)),
		cpuPerFile(rclones, n), ratio(cpuRatio(rclones, raws))})
	vs := func(r float64, ours, base []usage) string {
		return fmt.Sprintf("%s (%.0f vs %.0f MiB/s)", ratio(r), mibps(d.bytes, wall(ours)), mibps(d.bytes, wall(base)))
	}
	s.summary = append(s.summary,
		[]string{"B2 " + label + " vs raw PUT (archive only)", fmt.Sprintf("≥ %.2f×", rawTarget), vs(a1, archives, raws) + boundSuffix(b1, a1, "of raw PUT", false), yesNo(a1 >= rawTarget)},
		[]string{"B2 " + label + " with playlists vs archive only", fmt.Sprintf("≥ %.2f×", fullTarget), vs(fa, fulls, archives) + fmt.Sprintf("; %s of raw PUT", ratio(f1)), yesNo(fa >= fullTarget)},
		[]string{"B2 " + label + " with served live playlists vs archive only", "not a target", vs(sa, serveds, archives), "—"},
		[]string{"B2 " + label + " vs rclone (archive only)", "not a target", vs(a2, archives, rclones), "—"},
		[]string{"B2 " + label + " vs rclone (with playlists)", "not a target", vs(f2, fulls, rclones), "—"})
	if size < 1<<20 {
		c, bc := cpuRatio(archives, raws), cpuRatio(bounds, raws)
		s.summary = append(s.summary, []string{"B2 " + label + " srs-offload CPU per segment vs the raw loop's (archive only)", "≤ 1.20×",
			fmt.Sprintf("%s (%s vs %s)", ratio(c), cpuPerFile(archives, n), cpuPerFile(raws, n)) + boundSuffix(bc, c, "the raw loop's CPU", true), yesNo(c <= 1.2)})
	}
	vt.rows = append(vt.rows, []string{label, cell(archives), cell(md5s), cell(sums), ratio(mean(sumMD5)), cpuCell(md5s, true), cpuCell(sums, true)})
	s.summary = append(s.summary, []string{"B2 " + label + " verify checksum vs md5 (archive only)", "not a target",
		fmt.Sprintf("%s (%.0f vs %.0f MiB/s)", ratio(mean(sumMD5)), mibps(d.bytes, wall(sums)), mibps(d.bytes, wall(md5s))), "—"})
	races := 0
	for _, u := range append(append(slices.Clone(archives), fulls...), serveds...) {
		races += u.races
	}
	if races > 0 {
		s.notes = append(s.notes, fmt.Sprintf("%s: %d times a stream folder the harness had just created was removed by srs-offload (it removes folders its purges leave empty) before the segment was linked into it; the harness created it again. SRS can meet the same race.", label, races))
	}
	return nil
}

// medianOf is the median of one duration of each usage.
func medianOf(us []usage, f func(usage) time.Duration) time.Duration {
	ds := make([]time.Duration, len(us))
	for i, u := range us {
		ds[i] = f(u)
	}
	return medianDur(ds)
}

// cpuCell shows the CPU seconds of the worker process, versitygw (and Redis) and how many cores
// that is over the wall time (medians of the repetitions).
func cpuCell(us []usage, withRedis bool) string {
	own := medianOf(us, func(u usage) time.Duration { return u.own })
	s3 := medianOf(us, func(u usage) time.Duration { return u.s3 })
	wall := medianOf(us, func(u usage) time.Duration { return u.elapsed })
	total := own + s3
	out := fmt.Sprintf("%.2f + %.2f", own.Seconds(), s3.Seconds())
	if withRedis {
		r := medianOf(us, func(u usage) time.Duration { return u.redis })
		total += r
		out += fmt.Sprintf(" + %.2f", r.Seconds())
	}
	return fmt.Sprintf("%s s (%.2f cores)", out, total.Seconds()/wall.Seconds())
}

// rawPut uploads every file with 16 goroutines and returns the wall time.
func (e *env) rawPut(d *dataset) (usage, error) {
	var u usage
	bucket := e.name("b2-raw")
	if err := e.s3.CreateBucket(bucket); err != nil {
		return u, err
	}
	m := e.meter(0)
	ctx := context.Background()
	start := time.Now()
	err := parallel(len(d.files), 16, func(i int) error {
		f := d.files[i]
		return e.putFile(ctx, bucket, f.rel, filepath.Join(d.dir, f.rel), f.size)
	})
	u.elapsed = time.Since(start)
	m.stop(&u)
	if err != nil {
		return u, err
	}
	e.takeReqs(&u, bucket)
	return u, e.checkAndDrop(bucket, d.files, "")
}

// parallel calls f(0) … f(n-1) from workers goroutines, each taking the next index, and returns
// the first error (a worker stops at its error, the others go on).
func parallel(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var errOnce sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// putFile is the raw loop's work for one file: read it for its MD5, PutObject with Content-MD5,
// compare the ETag.
func (e *env) putFile(ctx context.Context, bucket, key, path string, size int64) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	h := md5.New()
	if _, err := io.Copy(h, file); err != nil {
		return err
	}
	sum := h.Sum(nil)
	out, err := e.s3.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          io.NewSectionReader(file, 0, size),
		ContentLength: aws.Int64(size),
		ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(sum)),
		ContentType:   aws.String("video/mp2t"),
	})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if got := strings.Trim(aws.ToString(out.ETag), `"`); got != hex.EncodeToString(sum) {
		return fmt.Errorf("put %s: ETag %s, MD5 %x", key, got, sum)
	}
	return nil
}

// rcloneEnv configures rclone's remote "bench" for versitygw through environment variables.
func (e *env) rcloneEnv() []string {
	return append(baseEnv(),
		"RCLONE_CONFIG="+filepath.Join(e.tmp, "rclone.conf"), // empty: nothing from the user's config
		"RCLONE_CONFIG_BENCH_TYPE=s3",
		"RCLONE_CONFIG_BENCH_PROVIDER=Other",
		"RCLONE_CONFIG_BENCH_ENV_AUTH=false",
		"RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="+e.s3.AccessKey,
		"RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="+e.s3.SecretKey,
		"RCLONE_CONFIG_BENCH_ENDPOINT="+e.s3.Endpoint,
		"RCLONE_CONFIG_BENCH_REGION=us-east-1",
		"RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true",
	)
}

func (e *env) rclone(d *dataset) (usage, error) {
	bucket := e.name("b2-rclone")
	if err := e.s3.CreateBucket(bucket); err != nil {
		return usage{}, err
	}
	os.WriteFile(filepath.Join(e.tmp, "rclone.conf"), nil, 0o600)
	u, err := e.runTool("rclone", filepath.Join(e.tmp, bucket+".log"), e.rcloneEnv(), "/usr/bin/rclone",
		"copy", d.dir, "bench:"+bucket, "--transfers", "16")
	if err != nil {
		return u, err
	}
	e.takeReqs(&u, bucket)
	return u, e.checkAndDrop(bucket, d.files, "")
}

// offloadOurs runs srs-offload serve in mode m on a new root: each file appears there and its hook
// follows.
func (e *env) offloadOurs(d *dataset, key string, rep int, raw time.Duration, m mode) (usage, error) {
	var res usage
	key += "-" + m.key // the mode's own root, bucket, profile and profile length
	root, err := e.newRoot(key)
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(root)
	byStream := map[string][]int{}
	for i, f := range d.files {
		byStream[streamOf(f.rel)] = append(byStream[streamOf(f.rel)], i)
	}
	for st, idx := range byStream {
		var names []string
		for _, i := range idx[max(0, len(idx)-10):] {
			names = append(names, filepath.Base(d.files[i].rel))
		}
		// SRS's playlist, which the worker reads for EXT-X-KEY.
		if err := writePlaylist(root, "live", st, names); err != nil {
			return res, err
		}
		if err := os.MkdirAll(filepath.Join(root, "live", st), 0o755); err != nil {
			return res, err
		}
	}
	bodies := make([][]byte, len(d.files))
	paths := make([]string, len(d.files))
	for i, f := range d.files {
		bodies[i] = e.hlsBody(root, "live", streamOf(f.rel), f.rel, i/d.streams)
		paths[i] = filepath.Join(root, f.rel)
	}
	bucket := e.name("b2-ours-" + m.key)
	if err := e.s3.CreateBucket(bucket); err != nil {
		return res, err
	}
	o, err := e.startOffload("serve", e.name(key+"-serve"), root, bucket, m)
	if err != nil {
		return res, err
	}
	defer o.Kill()
	waitIdle(o.Pid(), 5*time.Second)
	guess := max(raw, 2*time.Second) * 3 / 2
	prof := fmt.Sprintf("%s-rep%d", key, rep+1)
	wait := e.profile(o, prof, e.profileSeconds(key, guess))

	url := "http://" + o.listen + "/api/v1/hls"
	c := hookClient()
	lat := make([]time.Duration, len(d.files))
	var errOnce sync.Once
	var firstErr error
	var wg sync.WaitGroup
	var races atomic.Int64
	meter := e.meter(o.Pid())
	start := time.Now()
	for _, idx := range byStream {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, i := range idx {
				link := func() error { return os.Link(filepath.Join(d.dir, d.files[i].rel), paths[i]) }
				if err := placeFile(filepath.Dir(paths[i]), link, &races); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				t0 := time.Now()
				err := postHook(c, url, bodies[i])
				lat[i] = time.Since(t0)
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("hook %d: %w", i, err) })
					return
				}
			}
		}()
	}
	wg.Wait()
	res.hooks = time.Since(start)
	e.goroutines(o, fmt.Sprintf("%s-rep%d", key, rep+1)) // the backlog is being worked off now
	if firstErr != nil {
		return res, firstErr
	}
	left := waitGone(paths, 5*time.Millisecond, 5*time.Minute)
	res.elapsed = time.Since(start)
	meter.stop(&res)
	e.ranOurs(key, res.elapsed)
	if len(left) > 0 {
		return res, fmt.Errorf("%d files not purged after 5 minutes, e.g. %s\n%s", len(left), left[0], o.LogTail())
	}
	res.metrics = o.ownMetrics("hls")
	wait()
	if m == archiveMode || m == playlistsMode { // the runs with a target
		e.ranProfiled(key, fmt.Sprintf("B2 %s %s", mib(d.bytes/int64(len(d.files))), m.short), prof, len(d.files), res.own)
	}
	sortDur(lat)
	res.hookP99 = pct(lat, .99)
	res.races = int(races.Load())
	// A purge removes SRS's name first and the spooled link right after: the last few links may
	// still be going when the last name is gone.
	spooled := filesUnder(filepath.Join(root, ".srs-offload"))
	for deadline := time.Now().Add(5 * time.Second); len(spooled) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		spooled = filesUnder(filepath.Join(root, ".srs-offload"))
	}
	if len(spooled) > 0 {
		return res, fmt.Errorf("%d files left in the spool 5 s after the last was purged, e.g. %s", len(spooled), spooled[0])
	}
	if err := o.finish(); err != nil {
		return res, err
	}
	if err := e.redis.Flush(); err != nil {
		return res, err
	}
	e.takeReqs(&res, bucket)
	return res, e.checkAndDrop(bucket, d.files, "")
}

// checkAndDrop checks that the bucket holds every file, then deletes it.
func (e *env) checkAndDrop(bucket string, files []dataFile, prefix string) error {
	objs, err := e.s3.List(bucket)
	if err != nil {
		return err
	}
	if err := checkStored(objs, files, prefix, true); err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	}
	return e.s3.DropBucket(bucket)
}

// cpuPerFile is the median CPU time of the uploading process per file.
func cpuPerFile(us []usage, n int) string {
	own := medianOf(us, func(u usage) time.Duration { return u.own })
	return fmt.Sprintf("%.0f µs", float64(own.Microseconds())/float64(n))
}

// redisPerFile is Redis's median CPU time per file, beside the uploading process's.
func redisPerFile(us []usage, n int) string {
	r := medianOf(us, func(u usage) time.Duration { return u.redis })
	return fmt.Sprintf(" (Redis: %.0f µs)", float64(r.Microseconds())/float64(n))
}

// speedRatio is the mean over the repetitions of base's wall time over ours' (above 1: ours is
// faster).
func speedRatio(ours, base []usage) float64 {
	return meanRatio(base, ours, func(u usage) time.Duration { return u.elapsed })
}

// boundSuffix is what the summary of a target adds about its bound: the durable-queue PUT loop's
// value (bound, the same measure as ours) and whether srs-offload is at or past it on this run
// (ours ≤ bound when lower is better, ≥ otherwise).
func boundSuffix(bound, ours float64, what string, lowerIsBetter bool) string {
	out := fmt.Sprintf("; bound: durable-queue PUT loop %s %s", ratio(bound), what)
	if (lowerIsBetter && ours <= bound) || (!lowerIsBetter && ours >= bound) {
		out += " (srs-offload is at or past that bound on this run)"
	}
	return out
}

// cpuRatio is the mean over the repetitions of ours' CPU time over base's.
func cpuRatio(ours, base []usage) float64 {
	return meanRatio(ours, base, func(u usage) time.Duration { return u.own })
}

// meanRatio is the mean over the repetitions of f(num) over f(den), leaving out a zero den.
func meanRatio(num, den []usage, f func(usage) time.Duration) float64 {
	rs := make([]float64, 0, len(num))
	for i := range num {
		if i < len(den) && f(den[i]) > 0 {
			rs = append(rs, f(num[i]).Seconds()/f(den[i]).Seconds())
		}
	}
	return mean(rs)
}
