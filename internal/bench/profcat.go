package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Where srs-offload's CPU goes: each sample of a CPU profile is put in one of a fixed set of
// categories by its stack. Four passes, each from the leaf up, the first match deciding:
// hashing anywhere in the stack (MD5, CRC32C, SHA-256 cost the same whoever calls them); else the
// purge or the reconcile watcher anywhere in the stack (they claim the file ops, ledger and queue
// calls they make); else the innermost frame of srs-offload's own code (so the ledger's Redis calls count for the playlists,
// the queue client's for the durable queue, the upload's for the upload); else the innermost
// frame of a known library (asynq's dequeue, net/http's server). Stacks with runtime frames only
// (the GC's workers, the scheduler) are "GC and runtime"; allocation and GC assists count for the
// code that allocates. The rest is "other" (metrics, logging, the admin listener).

const ownModule = "github.com/srs-offload/srs-offload/"

const (
	catUpload    = "S3 upload (aws-sdk-go-v2, smithy, net/http client, our uploader/storage/worker)"
	catHash      = "hashing (crypto/md5, hash/crc32, SHA-256)"
	catQueue     = "durable queue (asynq, go-redis, our queue)"
	catHook      = "hook receiver (net/http server, our hook)"
	catFiles     = "spool, roots, file ops (our spool/roots/fileid)"
	catReconcile = "reconcile watcher (our reconcile, fsnotify)"
	catPlaylists = "playlists (our playlist/rdb/m3u8)"
	catPurge     = "purge (release from the spool, unlink)"
	catRuntime   = "GC and runtime"
	catOther     = "other"
)

// cpuCategories is the order of the report's rows.
var cpuCategories = []string{catUpload, catHash, catQueue, catHook, catFiles, catReconcile, catPlaylists, catPurge, catRuntime, catOther}

type catRule struct {
	prefix, cat string
}

func own(rel, cat string) catRule { return catRule{ownModule + rel, cat} }

// catPasses are the four passes, each a list of function-name prefixes tried in order.
var catPasses = [][]catRule{
	{
		{"crypto/md5.", catHash}, {"hash/crc32.", catHash}, {"crypto/sha256.", catHash},
		{"crypto/internal/fips140/sha256.", catHash}, {"crypto/sha1.", catHash}, {"hash/crc64.", catHash},
	},
	{
		own("worker.(*Offloader).purge", catPurge), own("worker.(*Offloader).release", catPurge), own("spool.(*Spool).Release", catPurge),
		own("reconcile.", catReconcile), {"github.com/fsnotify/", catReconcile},
	},
	{
		own("uploader.", catUpload), own("storage.", catUpload), own("worker.", catUpload),
		own("queue.", catQueue), own("redisconn.", catQueue), own("tasks.", catQueue), own("claim.", catQueue),
		own("hook.", catHook), own("listener.", catHook),
		own("spool.", catFiles), own("roots.", catFiles), own("fileid.", catFiles), own("inventory.", catFiles),
		own("playlist.", catPlaylists), own("rdb.", catPlaylists), own("m3u8.", catPlaylists), own("segtime.", catPlaylists),
	},
	{
		{"github.com/aws/", catUpload}, {"net/http.(*Transport)", catUpload}, {"net/http.(*persistConn)", catUpload},
		{"net/http.persistConnWriter", catUpload}, {"net/http.(*Client)", catUpload}, {"net/http.send", catUpload},
		{"net/http.(*Request).write", catUpload}, {"net/http.(*transferWriter)", catUpload},
		{"github.com/hibiken/asynq", catQueue}, {"github.com/redis/go-redis", catQueue},
		{"net/http.(*conn)", catHook}, {"net/http.(*Server)", catHook}, {"net/http.(*response)", catHook},
		{"net/http.(*chunkWriter)", catHook}, {"net/http.serverHandler", catHook}, {"net/http.readRequest", catHook},
		{"net/http.(*connReader)", catHook},
	},
}

// categorize names the category of one stack (leaf first).
func categorize(stack []string) string {
	for _, pass := range catPasses {
		for _, fn := range stack {
			for _, r := range pass {
				if strings.HasPrefix(fn, r.prefix) {
					return r.cat
				}
			}
		}
	}
	for _, fn := range stack {
		if !strings.HasPrefix(fn, "runtime.") && !strings.HasPrefix(fn, "internal/runtime/") && !strings.HasPrefix(fn, "runtime/") {
			return catOther
		}
	}
	return catRuntime
}

// profTrace is one stack of a profile with its sample count.
type profTrace struct {
	n     int64
	stack []string // leaf first
}

// parseTraces reads `go tool pprof -traces -sample_index=samples`: blocks between separator
// lines, the first line of each the count and the leaf, the next ones its callers.
func parseTraces(r io.Reader) ([]profTrace, error) {
	var out []profTrace
	var cur *profTrace
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			cur = nil
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 || len(out) == 0 && cur == nil && !startsWithCount(f) {
			continue // the header
		}
		if cur == nil {
			if len(f) < 2 || !startsWithCount(f) {
				return nil, fmt.Errorf("pprof -traces: want a count and a function, got %q", line)
			}
			n, _ := strconv.ParseInt(f[0], 10, 64)
			out = append(out, profTrace{n: n, stack: []string{f[1]}})
			cur = &out[len(out)-1]
			continue
		}
		if strings.Contains(f[0], ":[") { // a sample label, not a frame
			continue
		}
		cur.stack = append(cur.stack, f[0])
	}
	return out, sc.Err()
}

func startsWithCount(f []string) bool {
	_, err := strconv.ParseInt(f[0], 10, 64)
	return err == nil
}

// profileCategories is the number of samples of each category in a CPU profile.
func profileCategories(bin, path string) (map[string]int64, int64, error) {
	args := []string{"tool", "pprof", "-traces", "-sample_index=samples"}
	if bin != "" {
		args = append(args, bin)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("go", append(args, path)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, 0, fmt.Errorf("go tool pprof -traces %s: %v: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	traces, err := parseTraces(bytes.NewReader(out))
	if err != nil {
		return nil, 0, err
	}
	cats := map[string]int64{}
	var total int64
	for _, t := range traces {
		cats[categorize(t.stack)] += t.n
		total += t.n
	}
	return cats, total, nil
}

// cpuRun is one srs-offload run with a target, over its repetitions: the names of their
// profiles, the files each handled and the process's CPU time over each (from /proc).
type cpuRun struct {
	label    string
	files    int
	profiles []string
	cpu      []float64 // µs per file, per repetition
}

// ranProfiled records a repetition of a run with a target whose profile is named prof.
func (e *env) ranProfiled(group, label, prof string, files int, cpu time.Duration) {
	if e.opt.profiles == "" || files == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.cpuRuns[group]
	if !ok {
		r = &cpuRun{label: label, files: files}
		e.cpuRuns[group] = r
		e.cpuOrder = append(e.cpuOrder, group)
	}
	r.profiles = append(r.profiles, prof)
	r.cpu = append(r.cpu, float64(cpu.Microseconds())/float64(files))
}

// cpuSection is the report's "Where srs-offload's CPU goes": the samples of each run's profiles
// by category, as a share and as µs per file.
func (e *env) cpuSection() section {
	s := section{id: "cpu", title: "Where srs-offload's CPU goes",
		what: "The CPU profiles of srs-offload (its pprof endpoint, over each run) of every run with a target, their samples put in fixed categories by stack: " +
			"hashing wherever it is in the stack; else the purge or the reconcile watcher wherever they are in it (with the file ops, ledger and queue calls they make); else the innermost frame of srs-offload's own code (so the playlist ledger's Redis calls count for the playlists, the queue client's for the durable queue); " +
			"else the innermost frame of a known library (asynq's dequeue, the net/http server and client); runtime-only stacks (the GC's workers, the scheduler) are \"GC and runtime\", " +
			"while allocation and GC assists count for the code that allocates; \"other\" is the rest (metrics, logging, admin)."}
	if e.opt.profiles == "" {
		s.what += " **No profiles were taken (`-profiles ''`).**"
		return s
	}
	paths := map[string]string{}
	for _, p := range e.profiled {
		paths[p.name] = p.path
	}
	header := []string{"category"}
	rows := make([][]string, len(cpuCategories))
	for i, c := range cpuCategories {
		rows[i] = []string{c}
	}
	samplesRow, cpuRow := []string{"samples (profiles)"}, []string{"CPU per file of the process (/proc, median)"}
	var errs []string
	for _, g := range e.cpuOrder {
		r := e.cpuRuns[g]
		cats := map[string]int64{}
		var total int64
		n := 0
		for _, name := range r.profiles {
			path, ok := paths[name]
			if !ok {
				errs = append(errs, name+": no profile")
				continue
			}
			c, t, err := profileCategories(e.bin, path)
			if err != nil {
				errs = append(errs, oneLine(err.Error()))
				continue
			}
			for k, v := range c {
				cats[k] += v
			}
			total += t
			n++
		}
		if total == 0 {
			continue
		}
		perFile := median(r.cpu)
		header = append(header, fmt.Sprintf("%s (%s files)", r.label, thousands(r.files)))
		for i, c := range cpuCategories {
			share := float64(cats[c]) / float64(total)
			rows[i] = append(rows[i], fmt.Sprintf("%.1f%% · %.0f µs", share*100, share*perFile))
		}
		samplesRow = append(samplesRow, fmt.Sprintf("%s (%d)", thousands(int(total)), n))
		cpuRow = append(cpuRow, fmt.Sprintf("%.0f µs", perFile))
	}
	if len(header) > 1 {
		s.tables = append(s.tables, table{header: header, rows: append(rows, samplesRow, cpuRow)})
	}
	s.notes = append(s.notes,
		"Each cell: the category's share of the run's samples (its repetitions' profiles added up) · that share of the process's CPU time per file, measured from /proc over the run (so a profile window a little longer or shorter than the run does not skew it).",
		"B1's files are hooks (srs-offload `hooks`, no worker); B2 and B4 run `serve` (hooks, queue, upload, verification, purge, playlists). The profiles, srs-offload's binary and each profile's top functions (*.top.txt) are in "+homeless(e.opt.profiles)+" (`go tool pprof -http : srs-offload <profile>`).")
	for _, err := range errs {
		s.notes = append(s.notes, "profile: "+err)
	}
	return s
}

// homeless writes a path under the home folder with ~, for the report.
func homeless(p string) string {
	if home, err := os.UserHomeDir(); err == nil && home != "/" {
		if rel, ok := strings.CutPrefix(p, home+string(os.PathSeparator)); ok {
			return "~/" + rel
		}
	}
	return p
}
