package main

import (
	"crypto/md5"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"
)

// record profiles work for d of CPU time into a file and returns its path.
func record(t *testing.T, d time.Duration, work func()) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	// d of CPU time, not of wall time: on a loaded machine the profile still gets its samples
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for start, wall := cpu(), time.Now(); cpu()-start < d && time.Since(wall) < 20*d; {
		work()
	}
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// A real profile of MD5 is hashing, and one of JSON encoding is not.
func TestProfileCategories(t *testing.T) {
	buf := make([]byte, 1<<20)
	cats, total, err := profileCategories("", record(t, 400*time.Millisecond, func() { md5.Sum(buf) }))
	if err != nil {
		t.Fatal(err)
	}
	if total < 10 {
		t.Fatalf("only %d samples in 400 ms of MD5", total)
	}
	if share := float64(cats[catHash]) / float64(total); share < 0.8 {
		t.Errorf("MD5 workload: hashing %.0f%% of %d samples, want ≥ 80%%: %v", share*100, total, cats)
	}

	v := map[string]any{"a": []int{1, 2, 3}, "b": "text", "c": map[string]float64{"x": 1.5}}
	cats, total, err = profileCategories("", record(t, 300*time.Millisecond, func() { json.Marshal(v) }))
	if err != nil {
		t.Fatal(err)
	}
	if cats[catHash] > total/10 {
		t.Errorf("JSON workload: hashing %d of %d samples: %v", cats[catHash], total, cats)
	}
	if cats[catOther]+cats[catRuntime] < total*8/10 {
		t.Errorf("JSON workload: other+runtime %d of %d samples, want ≥ 80%%: %v", cats[catOther]+cats[catRuntime], total, cats)
	}
}

// Own code decides over the library it calls, the purge and the watcher over the own code they call, hashing over all.
func TestCategorizePrecedence(t *testing.T) {
	for _, c := range []struct {
		stack []string
		want  string
	}{
		{[]string{"github.com/redis/go-redis/v9.(*baseClient).process", ownModule + "playlist.(*Ledger).Announce", ownModule + "hook.(*Receiver).ServeHTTP", "net/http.(*conn).serve"}, catPlaylists},
		{[]string{"github.com/hibiken/asynq/internal/rdb.(*RDB).EnqueueUnique", ownModule + "queue.(*Client).Enqueue", ownModule + "hook.(*Receiver).ServeHTTP"}, catQueue},
		{[]string{"crypto/md5.block", ownModule + "uploader.(*Uploader).Put", ownModule + "worker.(*Offloader).Offload"}, catHash},
		{[]string{"syscall.Syscall", "os.Remove", ownModule + "spool.(*Spool).Release", ownModule + "worker.(*Offloader).purge"}, catPurge},
		{[]string{"syscall.Syscall", "os.Link", ownModule + "spool.(*Spool).Take", ownModule + "hook.(*Receiver).ServeHTTP"}, catFiles},
		{[]string{"golang.org/x/sys/unix.Unlinkat", ownModule + "roots.(*Set).Remove", ownModule + "worker.(*Offloader).purge", ownModule + "worker.(*Offloader).Offload"}, catPurge},
		{[]string{"syscall.Syscall", "os.Link", ownModule + "spool.(*Spool).Take", ownModule + "reconcile.(*Watcher).loop"}, catReconcile},
		{[]string{"github.com/hibiken/asynq.(*processor).exec"}, catQueue},
		{[]string{"runtime.scanobject", "runtime.gcDrain", "runtime.gcBgMarkWorker"}, catRuntime},
		{[]string{"github.com/prometheus/client_golang/prometheus.(*Registry).Gather"}, catOther},
	} {
		if got := categorize(c.stack); got != c.want {
			t.Errorf("%s: got %q, want %q", c.stack[0], got, c.want)
		}
	}
}
