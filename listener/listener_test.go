package listener

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv("LISTENER_TEST_CHILD") == "systemd" {
		systemdChild()
		return
	}
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

// serve runs an HTTP server on ln with h, and stops it at cleanup.
func serve(t *testing.T, ln net.Listener, to Timeouts, h http.Handler) *Serving {
	t.Helper()
	s := Serve(Server(h, to, quiet), ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Stop(ctx)
	})
	return s
}

func answer(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, name)
	})
}

// get does one request on a new connection, as SRS does.
func get(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestLimitWaitsAtCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	name := "test-cap"
	serve(t, Limit(ln, 2, name), Timeouts{Read: 30 * time.Second, Idle: time.Minute}, answer("ok"))
	addr := ln.Addr().String()

	// Two clients that connect and send nothing hold both slots.
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	waitFor(t, func() bool { return testutil.ToFloat64(openConns.WithLabelValues(name)) == 2 }, "2 open connections")

	got := make(chan string, 1)
	go func() {
		s, err := get("http://" + addr + "/")
		if err != nil {
			s = err.Error()
		}
		got <- s
	}()
	select {
	case s := <-got:
		t.Fatalf("a third connection was served past the cap of 2: %q", s)
	case <-time.After(300 * time.Millisecond):
	}
	waitFor(t, func() bool { return testutil.ToFloat64(waits.WithLabelValues(name)) >= 1 }, "a counted wait")

	// It waited in the backlog, not refused: freeing a slot serves it.
	idle[0].Close()
	select {
	case s := <-got:
		if s != "ok" {
			t.Fatalf("third request after a slot freed: %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("third request not served after a slot freed")
	}
	idle[1].Close()
	waitFor(t, func() bool { return testutil.ToFloat64(openConns.WithLabelValues(name)) == 0 }, "0 open connections")
}

func TestServerCutsSlowClients(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const read = 500 * time.Millisecond
	serve(t, Limit(ln, 64, "test-slow"), Timeouts{Read: read, Idle: time.Minute}, answer("ok"))
	addr := ln.Addr().String()

	cases := map[string]func(c net.Conn){
		"only connects": func(c net.Conn) {},
		"trickles the header": func(c net.Conn) {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
			for i := 0; ; i++ {
				if _, err := fmt.Fprintf(c, "X-%d: y\r\n", i); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		},
		"trickles the body": func(c net.Conn) {
			io.WriteString(c, "POST /api/v1/hls HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
			for {
				if _, err := c.Write([]byte{'{'}); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		},
	}
	for name, send := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			go send(c)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.ReadAll(c) // until the server closes the connection
			took := time.Since(start)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open after %s, want it closed after the %s read deadline", took, read)
			}
			if took < read-50*time.Millisecond || took > read+3*time.Second {
				t.Errorf("closed after %s, want about %s", took, read)
			}
		})
	}
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hammer sends requests on new connections until stop is closed and counts the answers and
// the failures (with the first failure's text).
type hammer struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	first      string
	by         map[string]int
	done       chan struct{}
}

func startHammer(url string, workers int, stop <-chan struct{}) *hammer {
	h := &hammer{by: map[string]int{}, done: make(chan struct{})}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s, err := get(url)
				h.mu.Lock()
				if err != nil {
					h.failed.Add(1)
					if h.first == "" {
						h.first = err.Error()
					}
				} else {
					h.ok.Add(1)
					h.by[s]++
				}
				h.mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(h.done) }()
	return h
}

// TestHandOverLosesNothing: a second server takes the listening socket over from the first
// (as a restarted process does), the first shuts down while requests keep coming on new
// connections: none fails, and the second serves all of them at the end.
func TestHandOverLosesNothing(t *testing.T) {
	ctx := context.Background()
	ln, err := ListenReusePort(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	oldSrv := serve(t, ln, Timeouts{Read: time.Second, Idle: time.Second}, answer("old"))
	ho, err := ServeHandover(Spec{Name: "hooks", Addr: addr}, ln, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer ho.Close()

	stop := make(chan struct{})
	h := startHammer("http://"+addr+"/", 8, stop)
	defer func() { close(stop); <-h.done }()
	time.Sleep(200 * time.Millisecond)

	var ln2 net.Listener
	waitFor(t, func() bool {
		var pid int
		ln2, pid, err = TakeOver(Spec{Name: "hooks", Addr: addr})
		if err != nil {
			t.Fatal(err)
		}
		if ln2 != nil && pid != os.Getpid() {
			t.Fatalf("hand-over names pid %d, want %d", pid, os.Getpid())
		}
		return ln2 != nil
	}, "the hand-over")
	if ln2.Addr().String() != addr {
		t.Fatalf("took over %s, want %s", ln2.Addr(), addr)
	}
	serve(t, ln2, Timeouts{Read: time.Second, Idle: time.Second}, answer("new"))
	ho2, err := ServeHandover(Spec{Name: "hooks", Addr: addr}, ln2, quiet) // waits for the name until the old one lets go
	if err != nil {
		t.Fatal(err)
	}
	defer ho2.Close()
	time.Sleep(200 * time.Millisecond)

	// The old one stops: no more hand-overs, no more accepts, in-flight requests finish.
	ho.Close()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := oldSrv.Stop(sctx); err != nil {
		t.Errorf("old server shutdown: %v", err)
	}
	cancel()
	time.Sleep(300 * time.Millisecond)
	before := h.ok.Load()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	<-h.done
	stop = make(chan struct{}) // for the deferred close

	h.mu.Lock()
	defer h.mu.Unlock()
	t.Logf("answered %d (old %d, new %d), failed %d", h.ok.Load(), h.by["old"], h.by["new"], h.failed.Load())
	if h.failed.Load() > 0 {
		t.Fatalf("%d requests failed across the hand-over, first: %s", h.failed.Load(), h.first)
	}
	if h.ok.Load() <= before {
		t.Fatal("no request answered after the old server stopped")
	}
	if h.by["old"] == 0 || h.by["new"] == 0 {
		t.Fatalf("want both servers to have answered: %v", h.by)
	}
	// The new process offers the socket on in turn.
	waitFor(t, func() bool {
		ln3, _, err := TakeOver(Spec{Name: "hooks", Addr: addr})
		if err != nil {
			t.Fatal(err)
		}
		if ln3 != nil {
			ln3.Close()
		}
		return ln3 != nil
	}, "the new process to offer the socket")
}

func TestTakeOverWithoutOffer(t *testing.T) {
	ln, pid, err := TakeOver(Spec{Name: "hooks", Addr: "127.0.0.1:1"})
	if ln != nil || pid != 0 || err != nil {
		t.Fatalf("TakeOver with nobody offering = %v, %d, %v; want nil, 0, nil", ln, pid, err)
	}
}

// TestOpenFromSystemd runs a child with two sockets at fd 3 and 4 as systemd passes them
// (LISTEN_PID is the child's own pid, so the child sets it itself before Open).
func TestOpenFromSystemd(t *testing.T) {
	for _, tc := range []struct {
		name, fdnames, want string
	}{
		{"named", "admin:hooks", "hooks=B:systemd admin=A:systemd"},
		{"unnamed", "", "hooks=A:systemd admin=C:bound"},
		{"unknown name", "metrics:hooks", "hooks=B:systemd admin=C:bound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tcpListener(t), tcpListener(t)
			fa, _ := a.File()
			fb, _ := b.File()
			defer fa.Close()
			defer fb.Close()
			free := tcpListener(t)
			freeAddr := free.Addr().String()
			free.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.ExtraFiles = []*os.File{fa, fb}
			nfds := "2"
			if tc.fdnames == "" {
				nfds = "1"
				cmd.ExtraFiles = cmd.ExtraFiles[:1]
			}
			cmd.Env = append(os.Environ(), "LISTENER_TEST_CHILD=systemd", "CHILD_LISTEN_FDS="+nfds,
				"CHILD_LISTEN_FDNAMES="+tc.fdnames, "CHILD_ADMIN="+freeAddr,
				"ADDR_A="+a.Addr().String(), "ADDR_B="+b.Addr().String())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tc.want {
				t.Fatalf("child opened %q, want %q", got, tc.want)
			}
		})
	}
}

func tcpListener(t *testing.T) *net.TCPListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// systemdChild opens hooks and admin as srs-offload does and prints where each came from, with
// A, B for the passed sockets and C for a bound one.
func systemdChild() {
	os.Setenv("LISTEN_PID", fmt.Sprint(os.Getpid()))
	os.Setenv("LISTEN_FDS", os.Getenv("CHILD_LISTEN_FDS"))
	if n := os.Getenv("CHILD_LISTEN_FDNAMES"); n != "" {
		os.Setenv("LISTEN_FDNAMES", n)
	}
	lns, err := Open(context.Background(), []Spec{{Name: "hooks", Addr: "127.0.0.1:1"}, {Name: "admin", Addr: os.Getenv("CHILD_ADMIN")}}, quiet)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	label := map[string]string{os.Getenv("ADDR_A"): "A", os.Getenv("ADDR_B"): "B", os.Getenv("CHILD_ADMIN"): "C"}
	var parts []string
	for _, ln := range lns {
		parts = append(parts, fmt.Sprintf("%s=%s:%s", ln.Spec.Name, label[ln.Addr().String()], ln.From))
	}
	fmt.Println(strings.Join(parts, " "))
	if os.Getenv("LISTEN_FDS") != "" {
		fmt.Println("LISTEN_FDS still set")
	}
	// Every answer must reach the right listener: accept one connection on each.
	for _, ln := range lns {
		go func() { c, _ := net.Dial("tcp", ln.Addr().String()); c.Close() }()
		c, err := ln.Accept()
		if err != nil {
			fmt.Println("accept:", err)
			os.Exit(1)
		}
		c.Close()
	}
	os.Exit(0)
}

// queued dials n connections and sends a request on each, without anyone accepting them.
func queued(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var cs []net.Conn
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		cs = append(cs, c)
	}
	return cs
}

// answered counts the connections that got an HTTP answer with body want.
func answered(cs []net.Conn, want string) (n int, first string) {
	for _, c := range cs {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		if err == nil && strings.HasPrefix(string(b), "HTTP/1.1 200") && strings.HasSuffix(string(b), want) {
			n++
		} else if first == "" {
			first = fmt.Sprintf("%q, %v", b, err)
		}
	}
	return n, first
}

// TestHandOverKeepsQueuedConnections: connections waiting in the accept queue when the old
// process closes its socket are answered by the process it handed the socket to.
func TestHandOverKeepsQueuedConnections(t *testing.T) {
	ln1, err := ListenReusePort(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln1.Addr().String()
	ho, err := ServeHandover(Spec{Name: "hooks", Addr: addr}, ln1, quiet)
	if err != nil {
		t.Fatal(err)
	}
	var ln2 net.Listener
	waitFor(t, func() bool { ln2, _, _ = TakeOver(Spec{Name: "hooks", Addr: addr}); return ln2 != nil }, "the hand-over")
	cs := queued(t, addr, 32)
	ho.Close()
	ln1.Close() // the old process exits with connections in the queue
	serve(t, ln2, Timeouts{Read: time.Second, Idle: time.Second}, answer("new"))
	if n, first := answered(cs, "new"); n != len(cs) {
		t.Fatalf("%d of %d queued connections answered after the old socket closed; first failure: %s", n, len(cs), first)
	}
}

// TestSeparateReusePortSocketsLoseQueue shows what the hand-over avoids: with two SO_REUSEPORT
// sockets, closing one resets the connections in its own queue (unless
// net.ipv4.tcp_migrate_req=1, which moves them to the other socket).
func TestSeparateReusePortSocketsLoseQueue(t *testing.T) {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_migrate_req"); err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Skipf("net.ipv4.tcp_migrate_req is %q (%v): the kernel migrates queued connections", b, err)
	}
	ln1, err := ListenReusePort(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln1.Addr().String()
	ln2, err := ListenReusePort(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	cs := queued(t, addr, 32)
	ln1.Close()
	serve(t, ln2, Timeouts{Read: time.Second, Idle: time.Second}, answer("new"))
	n, first := answered(cs, "new")
	t.Logf("%d of %d queued connections answered after one of two SO_REUSEPORT sockets closed; a lost one: %s", n, len(cs), first)
	if n == len(cs) {
		t.Fatal("no connection lost: the kernel spread none to the closed socket, or migrated them")
	}
}

// Stop right after Serve reports no error: the listener Stop closed may still be tracked by
// net/http when Shutdown runs (Serve has not returned from its failed Accept yet), and closing
// it again is not a failure of shutting down (a worker exited 1 with "use of closed network
// connection" after a clean SIGTERM).
func TestStopRightAfterServe(t *testing.T) {
	for i := range 1000 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := Serve(Server(answer("x"), Timeouts{Read: time.Second, Idle: time.Second}, quiet), ln)
		if i%2 == 1 {
			time.Sleep(time.Duration(i%7) * 10 * time.Microsecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = s.Stop(ctx)
		cancel()
		if err != nil {
			t.Fatalf("run %d: Stop: %v", i, err)
		}
		for range s.Err() {
		}
	}
}
