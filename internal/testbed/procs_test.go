package testbed

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestCleanupKillsAndRemoves: what a harness started is gone after Cleanup (the way out of a
// Ctrl-C), and a process started after it is refused and killed.
func TestCleanupKillsAndRemoves(t *testing.T) {
	dir := t.TempDir()
	made := filepath.Join(dir, "made")
	if err := os.Mkdir(made, 0o755); err != nil {
		t.Fatal(err)
	}
	AddDir(made)
	p, err := Start("sleep", filepath.Join(dir, "sleep.log"), nil, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Running() {
		t.Fatal("sleep is not running")
	}
	if rss, err := RSS(p.Pid()); err != nil || rss <= 0 {
		t.Fatalf("RSS of a running process: %d, %v", rss, err)
	}
	Cleanup()
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("Cleanup left the process running")
	}
	if _, err := os.Stat(made); !os.IsNotExist(err) {
		t.Fatalf("Cleanup left %s: %v", made, err)
	}
	if _, err := Start("sleep", filepath.Join(dir, "late.log"), nil, "sleep", "60"); err == nil {
		t.Fatal("a process started after Cleanup was not refused")
	}
}

// TestCPUTime reads this process's CPU time from /proc and compares it with getrusage's.
func TestCPUTime(t *testing.T) {
	self := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for self() < 300*time.Millisecond {
	}
	want := self()
	got := CPUTime(os.Getpid())
	if got < want-50*time.Millisecond || got > want+time.Second {
		t.Fatalf("CPUTime of this process: %v, getrusage says %v", got, want)
	}
}
