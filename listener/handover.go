package listener

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A restart without systemd: the new process is started while the old one still serves, and
// then the old one gets SIGTERM. Binding the port anew with SO_REUSEPORT alone loses hooks: the
// kernel spreads new connections over both sockets, and when the old process closes its socket,
// Linux resets every connection still waiting in that socket's accept queue (unless
// net.ipv4.tcp_migrate_req=1). So the old process hands its listening socket itself to the new
// one (SCM_RIGHTS over an abstract unix socket named after the address): both then accept from
// the same queue, and the old one's close only drops its reference. SO_REUSEPORT stays the
// fallback when no process answers.

// handoverName is the abstract unix socket (Linux, per network namespace) on which the process
// serving s hands its socket over.
func handoverName(s Spec) string { return "@srs-offload/listen/" + s.key() }

// Handover hands a listener's socket to any process of the same user that asks (see TakeOver).
type Handover struct {
	name string
	ln   syscall.Conn
	log  *slog.Logger

	mu     sync.Mutex
	ul     *net.UnixListener
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

// ServeHandover starts handing ln's socket over under spec's name (its group, name and
// address). While the process being replaced still holds the name, it retries until that one is
// gone. ln must be a TCP listener (as returned by Open); Close stops it.
func ServeHandover(spec Spec, ln net.Listener, log *slog.Logger) (*Handover, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("hand-over of %s: listener %T has no socket to hand over", spec.Addr, ln)
	}
	h := &Handover{name: handoverName(spec), ln: sc, log: log, done: make(chan struct{})}
	h.wg.Add(1)
	go h.run()
	return h, nil
}

func (h *Handover) run() {
	defer h.wg.Done()
	var ul *net.UnixListener
	for {
		var err error
		ul, err = net.ListenUnix("unix", &net.UnixAddr{Name: h.name, Net: "unix"})
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			h.log.Warn("listener: cannot offer the socket to a successor; a restart may refuse hooks", "name", h.name, "err", err)
			return
		}
		select {
		case <-h.done:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		ul.Close()
		return
	}
	h.ul = ul
	h.mu.Unlock()
	for {
		c, err := ul.AcceptUnix()
		if err != nil {
			return
		}
		if err := h.give(c); err != nil {
			h.log.Warn("listener: hand-over refused", "name", h.name, "err", err)
		}
		c.Close()
	}
}

// give sends the listening socket over c, after checking that the peer runs as our user.
func (h *Handover) give(c *net.UnixConn) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := sameUser(c); err != nil {
		return err
	}
	raw, err := h.ln.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = raw.Control(func(fd uintptr) {
		_, _, werr = c.WriteMsgUnix([]byte(strconv.Itoa(os.Getpid())), unix.UnixRights(int(fd)), nil)
	})
	if err != nil {
		return err
	}
	if werr == nil {
		h.log.Info("listener: handed the listening socket to a new process", "name", h.name)
	}
	return werr
}

// Close stops handing over and waits for the hand-over goroutine. It leaves the listener open.
func (h *Handover) Close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.done)
		if h.ul != nil {
			h.ul.Close()
		}
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// TakeOver asks the process serving spec (same group, name and address) for its listening
// socket. It returns nil, 0, nil when no process offers one, and the process's pid with the
// listener when one does.
func TakeOver(spec Spec) (net.Listener, int, error) {
	addr := spec.Addr
	c, err := net.DialTimeout("unix", handoverName(spec), time.Second)
	if err != nil {
		return nil, 0, nil // nobody offers it
	}
	uc := c.(*net.UnixConn)
	defer uc.Close()
	uc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := sameUser(uc); err != nil {
		return nil, 0, err
	}
	buf := make([]byte, 32)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, 0, fmt.Errorf("hand-over of %s: %w", addr, err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, 0, fmt.Errorf("hand-over of %s: no socket in the answer (%v)", addr, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, 0, fmt.Errorf("hand-over of %s: want one socket in the answer, got %d (%v)", addr, len(fds), err)
	}
	f := os.NewFile(uintptr(fds[0]), "handed over "+addr)
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, 0, fmt.Errorf("hand-over of %s: %w", addr, err)
	}
	if _, ok := ln.(*net.TCPListener); !ok {
		ln.Close()
		return nil, 0, fmt.Errorf("hand-over of %s: got a %T, want a TCP listener", addr, ln)
	}
	pid, _ := strconv.Atoi(string(buf[:n]))
	return ln, pid, nil
}

// sameUser checks that the peer of c runs as this process's user.
func sameUser(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("peer credentials: %w", cerr)
	}
	if int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("peer pid %d runs as uid %d, not %d: no hand-over", cred.Pid, cred.Uid, os.Getuid())
	}
	return nil
}
