package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/srs-offload/srs-offload/internal/testbed"
)

// B3: one big DVR file, hook → stored (multipart) and verified → purged, against `aws s3 cp`
// (Debian's awscli, multipart), and srs-offload's peak RSS.

// The uploader's defaults (config.Default): the part buffers the RSS target allows for.
const (
	dvrPartSize        = 8 << 20
	dvrPartConcurrency = 4
)

func (e *env) benchDVR() section {
	s := section{id: "b3", title: "B3 DVR: one big file",
		what: fmt.Sprintf("One %s DVR recording (random bytes): srs-offload `serve` from its on_dvr until it is stored (multipart), verified and purged, "+
			"against `aws s3 cp` of the same file (Debian's awscli, multipart with its defaults). Also the peak RSS of the srs-offload process.", mib(e.sc.dvrSize))}
	s.err = e.dvr(&s)
	return s
}

func (e *env) dvr(s *section) error {
	const rel = "live/livestream.1795474166294.flv"
	const key = "live/livestream/livestream.1795474166294.flv" // keys.dvr {app}/{stream}/{basename}
	e.logf("B3: generating %s", mib(e.sc.dvrSize))
	dir := filepath.Join(e.tmp, "data", "b3")
	src := filepath.Join(dir, rel)
	if _, err := genFile(src, e.sc.dvrSize, 3); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	settle()

	var awsU, oursU, md5U, sumU []usage
	var ratios, sumMD5 []float64
	var peaks, idles []int64
	for rep := range e.opt.reps {
		var a, o, vm, vs usage
		var peak, idle int64
		steps := []struct {
			name string
			run  func() error
		}{
			{"aws s3 cp", func() (err error) { a, err = e.awsCp(src, key); return }},
			{"srs-offload", func() (err error) { o, peak, idle, err = e.dvrOurs(src, rel, key, rep, a.elapsed, defaultMode); return }},
			{"srs-offload verify md5", func() (err error) {
				vm, _, _, err = e.dvrOurs(src, rel, key, rep, a.elapsed, defaultMode.withVerify("md5"))
				return
			}},
			{"srs-offload verify checksum", func() (err error) {
				vs, _, _, err = e.dvrOurs(src, rel, key, rep, a.elapsed, defaultMode.withVerify("checksum"))
				return
			}},
		}
		if rep%2 == 1 {
			slices.Reverse(steps)
		}
		for _, st := range steps {
			e.logf("B3 rep %d: %s", rep+1, st.name)
			if err := st.run(); err != nil {
				return fmt.Errorf("%s: %w", st.name, err)
			}
			settle()
		}
		awsU, oursU = append(awsU, a), append(oursU, o)
		md5U, sumU = append(md5U, vm), append(sumU, vs)
		sumMD5 = append(sumMD5, vm.elapsed.Seconds()/vs.elapsed.Seconds())
		s.notes = append(s.notes, fmt.Sprintf("rep %d: srs-offload verify md5 %s, verify checksum %s (%s)",
			rep+1, secs(vm.elapsed), secs(vs.elapsed), ratio(sumMD5[rep])))
		ratios = append(ratios, a.elapsed.Seconds()/o.elapsed.Seconds())
		peaks, idles = append(peaks, peak), append(idles, idle)
		s.notes = append(s.notes, fmt.Sprintf("rep %d: srs-offload %s (peak RSS %s; its metrics: %s), aws s3 cp %s (peak RSS %s): %s",
			rep+1, secs(o.elapsed), mib(peak), o.metrics, secs(a.elapsed), mib(a.maxRSS), ratio(a.elapsed.Seconds()/o.elapsed.Seconds())))
	}
	r := mean(ratios)
	var peak, idle, arss int64
	for i := range peaks {
		peak, idle, arss = max(peak, peaks[i]), max(idle, idles[i]), max(arss, awsU[i].maxRSS)
	}
	limit := int64(64<<20 + dvrPartSize*dvrPartConcurrency)
	wall := func(u usage) time.Duration { return u.elapsed }
	mo, ma := medianOf(oursU, wall), medianOf(awsU, wall)
	s.tables = append(s.tables, table{
		header: []string{"", "srs-offload", "aws s3 cp", "srs-offload / aws", "target", "met?"},
		rows: [][]string{
			{"time", fmt.Sprintf("%s (%.0f MiB/s)", secs(mo), mibps(e.sc.dvrSize, mo)), fmt.Sprintf("%s (%.0f MiB/s)", secs(ma), mibps(e.sc.dvrSize, ma)), ratio(r), "≥ 1.00×", yesNo(r >= 1)},
			{"peak RSS", fmt.Sprintf("%s (%s after start)", mib(peak), mib(idle)), mib(arss), "", fmt.Sprintf("≤ %s (64 MiB + %d × %s part buffers)", mib(limit), dvrPartConcurrency, mib(dvrPartSize)), yesNo(peak <= limit)},
			{"CPU time: own + versitygw (+ Redis)", cpuCell(oursU, true), cpuCell(awsU, false), "", "", ""},
			{"S3 requests (per run)", perFile(sumReqs(oursU), len(oursU)), perFile(sumReqs(awsU), len(awsU)), "", "", ""},
		},
	}, table{
		header: []string{"srs-offload", "storage.verify auto (default; md5 on versitygw, CRC32C sent too)", "storage.verify md5", "storage.verify checksum (crc32c, full-object)", "checksum / md5"},
		rows: [][]string{
			{"time", e.dvrTime(mo), e.dvrTime(medianOf(md5U, wall)), e.dvrTime(medianOf(sumU, wall)), ratio(mean(sumMD5))},
			{"CPU time: own + versitygw + Redis", cpuCell(oursU, true), cpuCell(md5U, true), cpuCell(sumU, true), ""},
		},
	})
	s.summary = append(s.summary,
		[]string{"B3 DVR " + mib(e.sc.dvrSize) + " vs aws s3 cp", "≥ 1.00×", fmt.Sprintf("%s (%s vs %s)", ratio(r), secs(mo), secs(ma)), yesNo(r >= 1)},
		[]string{"B3 peak RSS", "≤ " + mib(limit), mib(peak), yesNo(peak <= limit)},
		[]string{"B3 DVR verify checksum vs md5", "not a target", fmt.Sprintf("%s (%s vs %s)", ratio(mean(sumMD5)),
			secs(medianOf(sumU, wall)), secs(medianOf(md5U, wall))), "—"})
	s.notes = append(s.notes,
		"srs-offload: the file appears in the root (a hard link of the generated file) and its on_dvr is sent; the time runs until the file is gone from the root (stat every 20 ms), i.e. stored, verified against the multipart ETag and purged. Its config is the default one: multipart from 16 MiB, 8 MiB parts, 4 in flight.",
		"Peak RSS of srs-offload is VmHWM from /proc/<pid>/status at the end of the run, for a process started for this run; of aws, the maximum resident set size of the process (getrusage).",
		"aws s3 cp: Debian's awscli (/usr/bin/aws) with `--endpoint-url`, path-style addressing, keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, its defaults otherwise (8 MiB parts, 10 in flight); the time is the process's run time, Python's start included.",
		"Verify modes: srs-offload once more with `storage.verify: md5` (part MD5s and the whole file's MD5, compared with the multipart ETag) and once with `storage.verify: checksum` (CRC32C per part and of the whole file, sent as headers, compared with versitygw's full-object CRC32C; no MD5); checksum / md5 is the md5 run's time over the checksum run's. The peak RSS row is the default run's.",
		"Both objects are checked with a HEAD (size) and deleted after each run; the file is read from the page cache by both.")
	e.remuxCost(s)
	return nil
}

func (e *env) awsEnv() []string {
	cfg := filepath.Join(e.tmp, "aws-config")
	os.WriteFile(cfg, []byte("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n"), 0o600)
	return append(baseEnv(),
		"AWS_ACCESS_KEY_ID="+e.s3.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+e.s3.SecretKey,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE="+cfg,
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(e.tmp, "aws-credentials-none"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	)
}

func (e *env) awsCp(src, key string) (usage, error) {
	if _, err := os.Stat("/usr/bin/aws"); err != nil {
		return usage{}, fmt.Errorf("/usr/bin/aws (Debian's awscli) not found: run `make bench` (scripts/tools.sh bench installs it)")
	}
	bucket := e.name("b3-aws")
	if err := e.s3.CreateBucket(bucket); err != nil {
		return usage{}, err
	}
	u, err := e.runTool("aws", filepath.Join(e.tmp, bucket+".log"), e.awsEnv(), "/usr/bin/aws",
		"s3", "cp", src, "s3://"+bucket+"/"+key, "--endpoint-url", e.s3.Endpoint, "--only-show-errors", "--no-progress")
	if err != nil {
		return u, err
	}
	e.takeReqs(&u, bucket)
	if err := e.checkSize(bucket, key, e.sc.dvrSize); err != nil {
		return u, err
	}
	return u, e.s3.DropBucket(bucket)
}

func (e *env) checkSize(bucket, key string, size int64) error {
	out, err := e.s3.Client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("head %s/%s: %w", bucket, key, err)
	}
	if got := aws.ToInt64(out.ContentLength); got != size {
		return fmt.Errorf("%s/%s: %d bytes stored, want %d", bucket, key, got, size)
	}
	return nil
}

func (e *env) dvrOurs(src, rel, key string, rep int, awsTime time.Duration, md mode) (u usage, peak, idle int64, err error) {
	root, err := e.newRoot("b3")
	if err != nil {
		return u, 0, 0, err
	}
	defer os.RemoveAll(root)
	path := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return u, 0, 0, err
	}
	bucket := e.name("b3-ours")
	if err := e.s3.CreateBucket(bucket); err != nil {
		return u, 0, 0, err
	}
	o, err := e.startOffload("serve", e.name("b3-serve"), root, bucket, md)
	if err != nil {
		return u, 0, 0, err
	}
	defer o.Kill()
	waitIdle(o.Pid(), 5*time.Second)
	idle, _ = testbed.RSS(o.Pid())
	profile := fmt.Sprintf("b3-dvr-rep%d", rep+1)
	if md.verify != "" {
		profile = fmt.Sprintf("b3-dvr-verify-%s-rep%d", md.verify, rep+1)
	}
	wait := e.profile(o, profile, e.profileSeconds("b3", max(awsTime, 5*time.Second)))
	body := e.dvrBody(root, "live", "livestream", rel)
	m := e.meter(o.Pid())
	start := time.Now()
	if err := os.Link(src, path); err != nil {
		return u, 0, 0, err
	}
	if err := postHook(hookClient(), "http://"+o.listen+"/api/v1/dvrs", body); err != nil {
		return u, 0, 0, err
	}
	if left := waitGone([]string{path}, 20*time.Millisecond, 10*time.Minute); len(left) > 0 {
		return u, 0, 0, fmt.Errorf("%s not purged after 10 minutes:\n%s", path, o.LogTail())
	}
	u.elapsed = time.Since(start)
	m.stop(&u)
	e.ranOurs("b3", u.elapsed)
	if peak, err = testbed.PeakRSS(o.Pid()); err != nil {
		return u, 0, 0, err
	}
	u.metrics = o.ownMetrics("dvr")
	wait()
	if err := o.finish(); err != nil {
		return u, 0, 0, err
	}
	if err := e.redis.Flush(); err != nil {
		return u, 0, 0, err
	}
	e.takeReqs(&u, bucket)
	if err := e.checkSize(bucket, key, e.sc.dvrSize); err != nil {
		return u, 0, 0, err
	}
	return u, peak, idle, e.s3.DropBucket(bucket)
}

// dvrTime is a B3 time with its throughput.
func (e *env) dvrTime(d time.Duration) string {
	return fmt.Sprintf("%s (%.0f MiB/s)", secs(d), mibps(e.sc.dvrSize, d))
}
