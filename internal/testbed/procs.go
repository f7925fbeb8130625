// Package testbed holds the real servers the benchmark harnesses run (internal/bench for `make
// bench`, internal/scale for `make scale`): child processes that are tracked and cleaned up on
// every way out, a redis-server configured as README asks for production, a versitygw gateway
// counting its requests through StatsD, the build of the srs-offload binary under test, and
// readings of a process's CPU time and memory from /proc.
package testbed

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// registry is every process the harness started and every folder it made, so that they are
// cleaned up on every way out: the normal end, a fatal error, and SIGINT/SIGTERM (Ctrl-C).
type registry struct {
	mu    sync.Mutex
	procs map[*Proc]struct{}
	dirs  []string
	done  bool
}

var reg = &registry{procs: map[*Proc]struct{}{}}

// AddDir records a folder to remove at Cleanup.
func AddDir(d string) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	reg.dirs = append(reg.dirs, d)
}

// Halt parks the calling goroutine for good once Cleanup has begun: the signal handler is about
// to exit the process, and nothing may create files in the folders it is removing.
func Halt() {
	reg.mu.Lock()
	done := reg.done
	reg.mu.Unlock()
	if done {
		select {}
	}
}

// RemoveDirs removes the recorded folders again (a write in flight may have recreated one).
func RemoveDirs() {
	reg.mu.Lock()
	dirs := reg.dirs
	reg.mu.Unlock()
	for i := len(dirs) - 1; i >= 0; i-- {
		os.RemoveAll(dirs[i])
	}
}

// Cleanup kills every process still running (SIGKILL: nothing of theirs is kept) and removes the
// folders. It runs once; a process started after it is killed at once.
func Cleanup() {
	reg.mu.Lock()
	if reg.done {
		reg.mu.Unlock()
		return
	}
	reg.done = true
	procs := make([]*Proc, 0, len(reg.procs))
	for p := range reg.procs {
		procs = append(procs, p)
	}
	reg.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	RemoveDirs()
}

func (r *registry) add(p *Proc) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return false
	}
	r.procs[p] = struct{}{}
	return true
}

func (r *registry) remove(p *Proc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.procs, p)
}

// Proc is one child process, its output going to a log file.
type Proc struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	err     error // set before exited is closed
}

// Start starts bin with its output in logPath and the environment env (nil: the harness's). The
// child gets SIGKILL should the harness die without cleaning up (Pdeathsig).
func Start(name, logPath string, env []string, bin string, args ...string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, LogPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	if !reg.add(p) {
		p.Kill()
		return nil, errors.New("interrupted")
	}
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Running reports whether the process has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Wait waits for the exit and returns what exec.Cmd.Wait said.
func (p *Proc) Wait() error {
	<-p.exited
	reg.remove(p)
	return p.err
}

// State is the exited process's state (CPU times, peak RSS); nil before Wait returns.
func (p *Proc) State() *os.ProcessState { return p.cmd.ProcessState }

// Stop sends SIGTERM and waits up to grace for the exit, then kills.
func (p *Proc) Stop(grace time.Duration) error {
	defer reg.remove(p)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.Name, grace)
	}
}

// Kill sends SIGKILL and waits for the exit.
func (p *Proc) Kill() {
	p.cmd.Process.Kill()
	<-p.exited
	reg.remove(p)
}

// LogTail is the end of the process's log, for error messages.
func (p *Proc) LogTail() string {
	b, _ := os.ReadFile(p.LogPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// WaitListen waits until addr takes TCP connections, or the process exits.
func (p *Proc) WaitListen(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if !p.Running() {
			return fmt.Errorf("%s exited at start:\n%s", p.Name, p.LogTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %v:\n%s", p.Name, addr, timeout, p.LogTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// FreeAddr is FreePort as host:port.
func FreeAddr() (string, error) {
	port, err := FreePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// CPUTicks is the user+system CPU time of a running process in clock ticks (1/100 s), from
// /proc/<pid>/stat; 0 when it cannot be read.
func CPUTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s) // f[0] is the state (field 3): utime is field 14, stime 15
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// CPUTime is CPUTicks as a duration.
func CPUTime(pid int) time.Duration { return time.Duration(CPUTicks(pid)) * 10 * time.Millisecond }

// PeakRSS is VmHWM of a running process, in bytes.
func PeakRSS(pid int) (int64, error) { return procStatus(pid, "VmHWM:") }

// RSS is VmRSS of a running process, in bytes.
func RSS(pid int) (int64, error) { return procStatus(pid, "VmRSS:") }

func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// FirstLine is the first line of a command's output, trimmed.
func FirstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(s)
}

// BuildOffload builds the binary under test from the module in moduleDir into dir.
func BuildOffload(moduleDir, dir string) (string, error) {
	bin := dir + "/srs-offload"
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/srs-offload")
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/srs-offload: %v\n%s", err, out)
	}
	return bin, nil
}

// LoadAvg is the 1, 5 and 15 minute load averages from /proc/loadavg ("?" when unreadable): other
// work on the machine shows there.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
