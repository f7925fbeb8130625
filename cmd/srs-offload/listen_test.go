package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The listener tests: restarts that refuse no hook (systemd socket activation, and the
// hand-over between two processes without systemd), slow clients that cannot starve SRS's
// hooks, and the shipped unit files.

// listenExtra keeps the hooks process lean: these tests are about the listener.
const listenExtra = "playlist: {enabled: false}\nreconcile: {enabled: false}\nspool: {enabled: false}\n"

// hookFeed makes n segments under root and sends their on_hls hooks from workers senders, one
// new connection per hook (as SRS does), recording every answer.
type hookFeed struct {
	url    string
	bodies [][]byte
	sent   atomic.Int64
	mu     sync.Mutex
	fails  []string
	took   []time.Duration
}

func newHookFeed(t *testing.T, s *stack, root string, n int) *hookFeed {
	t.Helper()
	m3u8 := filepath.Join(root, "live/cam1.m3u8")
	os.MkdirAll(filepath.Dir(m3u8), 0o755)
	os.WriteFile(m3u8, []byte("#EXTM3U\n"), 0o644)
	f := &hookFeed{url: "http://" + s.listen + "/api/v1/hls"}
	for seq := range int64(n) {
		rel := fmt.Sprintf("live/cam1-%d.ts", seq)
		if err := os.WriteFile(filepath.Join(root, rel), randomBytes(1<<10, uint64(seq)), 0o644); err != nil {
			t.Fatal(err)
		}
		f.bodies = append(f.bodies, srsHook("c1", "cam1", root, "./"+rel, rel, m3u8, seq, 2))
	}
	return f
}

func (f *hookFeed) run(workers int) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}} // SRS: 30 s
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(f.bodies) {
					return
				}
				start := time.Now()
				resp, err := client.Post(f.url, "application/json", bytes.NewReader(f.bodies[i]))
				var got []byte
				if err == nil {
					got, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				took := time.Since(start)
				f.mu.Lock()
				switch {
				case err != nil:
					f.fails = append(f.fails, fmt.Sprintf("hook %d: %v", i, err))
				case resp.StatusCode != 200 || string(got) != `{"code":0}`:
					f.fails = append(f.fails, fmt.Sprintf("hook %d: %d %s", i, resp.StatusCode, got))
				default:
					f.took = append(f.took, took)
				}
				f.mu.Unlock()
				f.sent.Add(1)
			}
		}()
	}
	wg.Wait()
}

func (f *hookFeed) check(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.fails) > 0 {
		t.Fatalf("%d of %d hooks not answered {\"code\":0}; first: %s", len(f.fails), len(f.bodies), strings.Join(f.fails[:min(5, len(f.fails))], "; "))
	}
	if len(f.took) != len(f.bodies) {
		t.Fatalf("%d hooks answered, want %d", len(f.took), len(f.bodies))
	}
	slices.Sort(f.took)
	t.Logf("%d hooks answered {\"code\":0}; latency p50 %s p99 %s max %s", len(f.took),
		f.took[len(f.took)/2], f.took[len(f.took)*99/100], f.took[len(f.took)-1])
}

// waitSent waits until n hooks have been sent.
func (f *hookFeed) waitSent(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for f.sent.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d hooks sent in 60 s", f.sent.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startRaw runs `srs-offload <sub>` through sh with extra files and env, and waits until its
// admin listener answers /healthz and its log holds want.
func (s *stack) startRaw(sub, shellPrefix string, files []*os.File, want string) *proc {
	s.t.Helper()
	p := &proc{cmd: exec.Command("sh", "-c", shellPrefix+" exec "+binary(s.t)+" "+sub+" -c "+s.config),
		done: make(chan error, 1), log: &bytes.Buffer{}}
	lb := &syncBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = lb, lb
	p.cmd.ExtraFiles = files
	p.cmd.Env = os.Environ()
	if err := p.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { err := p.cmd.Wait(); p.log.WriteString(lb.String()); p.done <- err }()
	s.t.Cleanup(func() {
		p.cmd.Process.Kill()
		err := <-p.done
		p.done <- err
		if s.t.Failed() {
			s.t.Logf("srs-offload %s log:\n%s", sub, lb.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if strings.Contains(lb.String(), want) {
			if resp, err := http.Get("http://" + s.admin + "/healthz?token=" + s.adminToken); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return p
				}
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("srs-offload %s not ready (log has no %q):\n%s", sub, want, lb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopWait sends SIGTERM and waits for the exit.
func (p *proc) stopWait(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30 s after SIGTERM")
	}
}

// TestE2ESocketActivatedRestart: the test holds the hook socket as systemd does, and restarts
// srs-offload on it (SIGTERM, then a new process) while 2,000 hooks are sent: none is refused.
func TestE2ESocketActivatedRestart(t *testing.T) {
	s, root := newStackWith(t, listenExtra)
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// LISTEN_PID must be the child's own pid: sh sets it, then execs.
	activated := "LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=hooks"
	p := s.startRaw("hooks", activated, []*os.File{f}, `socket=systemd`)

	feed := newHookFeed(t, s, root, 2000)
	done := make(chan struct{})
	go func() { feed.run(4); close(done) }()
	feed.waitSent(t, 600)
	p.stopWait(t)
	restartAt := feed.sent.Load()
	p2 := s.startRaw("hooks", activated, []*os.File{f}, `socket=systemd`)
	<-done
	t.Logf("restarted after %d hooks", restartAt)
	if restartAt >= 2000 {
		t.Fatal("the restart came after the last hook: the test proves nothing")
	}
	feed.check(t)
	p2.stopWait(t)
}

// TestE2EHandOverRestart: a second process is started on the same addresses while the first
// serves (it takes over the listening socket), then the first gets SIGTERM, while 2,000 hooks
// are sent: none is refused or dropped.
func TestE2EHandOverRestart(t *testing.T) {
	s, root := newStackWith(t, listenExtra)
	p1 := s.startRaw("hooks", "", nil, `listener=hooks`)
	feed := newHookFeed(t, s, root, 2000)
	done := make(chan struct{})
	go func() { feed.run(4); close(done) }()
	feed.waitSent(t, 400)
	p2 := s.startRaw("hooks", "", nil, `listener=hooks addr=`+s.listen+` socket="handed over by pid `+strconv.Itoa(p1.cmd.Process.Pid)+`"`)
	feed.waitSent(t, feed.sent.Load()+300)
	p1.stopWait(t)
	stopAt := feed.sent.Load()
	<-done
	t.Logf("second process up, first stopped after %d hooks", stopAt)
	if stopAt >= 2000 {
		t.Fatal("the first process stopped after the last hook: the test proves nothing")
	}
	feed.check(t)
	p2.stopWait(t)
}

// TestUnitFilesVerify runs systemd-analyze verify on the shipped unit files, with ExecStart
// pointing at the built binary (verify wants it to exist).
func TestUnitFilesVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: cannot verify configs/*.service and *.socket")
	}
	bin := binary(t)
	dir := t.TempDir()
	units, _ := filepath.Glob(filepath.Join("..", "..", "configs", "srs-offload*.s*"))
	var names []string
	for _, u := range units {
		if !strings.HasSuffix(u, ".service") && !strings.HasSuffix(u, ".socket") {
			continue
		}
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(u, ".service") && !bytes.Contains(b, []byte("ExecStart=/usr/local/bin/srs-offload ")) {
			t.Errorf("%s: ExecStart is not /usr/local/bin/srs-offload", u)
		}
		b = bytes.ReplaceAll(b, []byte("/usr/local/bin/srs-offload"), []byte(bin))
		os.WriteFile(filepath.Join(dir, filepath.Base(u)), b, 0o644)
		names = append(names, "./"+filepath.Base(u))
	}
	for _, want := range []string{"./srs-offload.socket", "./srs-offload.service", "./srs-offload-worker.service"} {
		if !slices.Contains(names, want) {
			t.Fatalf("configs/ has no %s (found %v)", want, names)
		}
	}
	cmd := exec.Command(analyze, append([]string{"verify"}, names...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	// verify warns about unknown keys without failing: any output is a problem.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify %v: %v\n%s", names, err, out)
	}
	// The socket names its listener, as serve expects.
	sock, _ := os.ReadFile(filepath.Join(dir, "srs-offload.socket"))
	if !bytes.Contains(sock, []byte("FileDescriptorName=hooks")) {
		t.Error("srs-offload.socket does not name its socket hooks")
	}
}

// TestE2ESlowClients: 2,000 connections that trickle their header or body, or only connect,
// while 1,000 hooks are sent: every hook is answered quickly, the process's memory stays
// bounded, and the slow connections are closed by hooks.read_timeout.
func TestE2ESlowClients(t *testing.T) {
	const readTimeout = 2 * time.Second
	s, root := newStackWith(t, listenExtra+"hooks: {read_timeout: 2s}\n")
	p := s.start("hooks")
	feed := newHookFeed(t, s, root, 1000)

	type slow struct {
		opened, closed time.Time
	}
	const nSlow = 2000
	slows := make([]slow, nSlow)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer close(stop)
	for i := range nSlow {
		c, err := net.Dial("tcp", s.listen)
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		defer c.Close()
		slows[i].opened = time.Now()
		wg.Add(2)
		go func() { // the server's answer, if any, then its close
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			io.Copy(io.Discard, c)
			slows[i].closed = time.Now()
		}()
		go func() {
			defer wg.Done()
			var head string
			switch i % 4 {
			case 0, 1: // a body byte per second
				head = "POST /api/v1/hls HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
			case 2: // a header line per second
				head = "POST /api/v1/hls HTTP/1.1\r\n"
			default: // only connects
				return
			}
			if _, err := io.WriteString(c, head); err != nil {
				return
			}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(time.Second):
				}
				b := []byte("{")
				if i%4 == 2 {
					b = fmt.Appendf(nil, "X-Slow-%d: y\r\n", n)
				}
				if _, err := c.Write(b); err != nil {
					return
				}
			}
		}()
	}
	rss := func() int {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				return kb / 1024
			}
		}
		return -1
	}
	rssSlow := rss()
	feed.run(4)
	rssAfter := rss()
	feed.check(t)
	feed.mu.Lock()
	p99 := feed.took[len(feed.took)*99/100]
	feed.mu.Unlock()
	t.Logf("VmRSS of srs-offload with %d slow connections: %d MiB, after the hooks %d MiB", nSlow, rssSlow, rssAfter)
	if p99 > time.Second {
		t.Errorf("hook p99 %s with slow clients, want < 1 s", p99)
	}
	if max(rssSlow, rssAfter) > 300 {
		t.Errorf("VmRSS %d MiB with %d slow connections, want < 300 MiB", max(rssSlow, rssAfter), nSlow)
	}

	waitDone := make(chan struct{})
	go func() { wg.Wait(); close(waitDone) }()
	select {
	case <-waitDone:
	case <-time.After(40 * time.Second):
		t.Fatal("slow connections still open 40 s later")
	}
	var longest time.Duration
	late := 0
	for _, sl := range slows {
		held := sl.closed.Sub(sl.opened)
		longest = max(longest, held)
		if held > readTimeout+10*time.Second {
			late++
		}
	}
	t.Logf("slow connections held at most %s (read_timeout %s)", longest, readTimeout)
	for k := range 4 {
		var hs []time.Duration
		for i := k; i < nSlow; i += 4 {
			hs = append(hs, slows[i].closed.Sub(slows[i].opened))
		}
		slices.Sort(hs)
		t.Logf("kind %d: min %s p50 %s max %s; first opened +%s last +%s", k, hs[0], hs[len(hs)/2], hs[len(hs)-1], slows[k].opened.Sub(slows[0].opened), slows[nSlow-4+k].opened.Sub(slows[0].opened))
	}
	if late > 0 {
		t.Errorf("%d slow connections held longer than read_timeout + 10 s (longest %s)", late, longest)
	}
}

// TestE2EHookListenerOnlyHooks: on listen every path is a hook (no redirect, no metrics), the
// token is checked before the body is read, and the admin listener has its own token.
func TestE2EHookListenerOnlyHooks(t *testing.T) {
	s, root := newStackWith(t, listenExtra+"hooks: {token: hooktok, read_timeout: 5s}\nadmin: {token: admintok}\n")
	// newStack wrote admin: {listen: …}; a second admin mapping would be a duplicate key, so
	// merge: the token goes into the first one.
	b, _ := os.ReadFile(s.config)
	b = bytes.Replace(b, []byte("admin: {listen: "+s.admin+"}"), []byte("admin: {listen: "+s.admin+", token: admintok}"), 1)
	b = bytes.Replace(b, []byte("admin: {token: admintok}\n"), nil, 1)
	os.WriteFile(s.config, b, 0o644)
	s.adminToken = "admintok"
	p := s.startRaw("hooks", "", nil, "listener=admin")
	defer p.stopWait(t)

	// A double slash is a hook like any other path (ServeMux would answer 307).
	feed := newHookFeed(t, s, root, 1)
	resp, err := http.Post("http://"+s.listen+"/api//v1/hls?token=hooktok", "application/json", bytes.NewReader(feed.bodies[0]))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != `{"code":0}` {
		t.Errorf("POST /api//v1/hls: %d %s, want 200 {\"code\":0}", resp.StatusCode, got)
	}
	// No metrics on listen: /metrics is a hook path (wrong token: 403).
	resp, err = http.Get("http://" + s.listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || bytes.Contains(got, []byte("srs_offload_")) {
		t.Errorf("GET /metrics on listen: %d %.200s, want the hook handler's 403", resp.StatusCode, got)
	}

	// A wrong token is refused before the body: 10 of 1000 bytes sent, the answer comes at once.
	c, err := net.Dial("tcp", s.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	io.WriteString(c, "POST /api/v1/hls?token=nope HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"action\":")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	// The answer arrives at once (the connection itself is closed by the read deadline at the
	// latest: net/http reads what is left of a refused body before it closes).
	ans, err := http.ReadResponse(bufio.NewReader(c), nil)
	if took := time.Since(start); err != nil || ans.StatusCode != 403 || took > 2*time.Second {
		t.Errorf("wrong token with a body still coming: %v %v after %s, want 403 before the 5 s read timeout", ans, err, took)
	}

	// Admin: its own token, Bearer or query.
	for _, tc := range []struct {
		url, bearer string
		want        int
	}{
		{"/readyz", "", 401}, {"/readyz?token=hooktok", "", 401}, {"/readyz", "admintok", 200}, {"/metrics?token=admintok", "", 200},
		{"/monitor/", "", 401}, {"/monitor/api/queues", "admintok", 200},
	} {
		req, _ := http.NewRequest("GET", "http://"+s.admin+tc.url, nil)
		if tc.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+tc.bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("admin %s (bearer %q): %d %s, want %d", tc.url, tc.bearer, resp.StatusCode, got, tc.want)
		}
		if tc.url == "/readyz" && tc.want == 200 && !bytes.Contains(got, []byte(`"ready":true`)) {
			t.Errorf("/readyz: %s", got)
		}
		if strings.HasPrefix(tc.url, "/monitor/api/") && tc.want == 200 && !bytes.Contains(got, []byte(`"queues":`)) {
			t.Errorf("the web UI's API on the queue's Redis: %.300s", got)
		}
		if strings.HasPrefix(tc.url, "/metrics") && tc.want == 200 && !bytes.Contains(got, []byte(`srs_offload_up{dependency="redis"} 1`)) {
			t.Errorf("/metrics has no srs_offload_up{dependency=\"redis\"} 1")
		}
	}
}
