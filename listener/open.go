package listener

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"syscall"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"
)

// Spec names one listener a process serves.
type Spec struct {
	// Name is the listener's role ("hooks", "admin"): the FileDescriptorName= of its systemd
	// socket, and its label in metrics and logs.
	Name string
	// Addr is host:port from the config; used when systemd passes no socket of this name.
	Addr string
	// Group names the kind of process (its subcommand): a socket is handed over only between
	// processes of one group and name, so a worker never takes over a hooks process's admin
	// socket.
	Group string
	// ReusePort binds with SO_REUSEPORT when no socket is handed over, so a new process can
	// start while an old one that offers no hand-over still listens.
	ReusePort bool
}

// key names the socket for the hand-over.
func (s Spec) key() string { return s.Group + "/" + s.Name + "/" + s.Addr }

// Opened is one listener and where it came from.
type Opened struct {
	net.Listener
	Spec Spec
	// From says where the socket came from: "systemd", "handed over by pid N" or "bound".
	From string
}

// Open opens one listener per spec: from systemd when it passed a socket of that name (an
// unnamed socket counts as the first spec's), else from the process serving the same address
// (see TakeOver), else by binding Addr with SO_REUSEPORT. Sockets from systemd that match no spec
// are closed with a warning. On error nothing stays open.
func Open(ctx context.Context, specs []Spec, log *slog.Logger) ([]*Opened, error) {
	fromSystemd, err := systemdListeners(specs, log)
	if err != nil {
		return nil, err
	}
	var out []*Opened
	fail := func(err error) ([]*Opened, error) {
		for _, o := range out {
			o.Close()
		}
		for _, ln := range fromSystemd {
			ln.Close()
		}
		return nil, err
	}
	for _, s := range specs {
		if ln, ok := fromSystemd[s.Name]; ok {
			delete(fromSystemd, s.Name)
			out = append(out, &Opened{Listener: ln, Spec: s, From: "systemd"})
			continue
		}
		ln, pid, err := TakeOver(s)
		if err != nil {
			log.Warn("listener: the process on this address did not hand over its socket; binding a new one", "listener", s.Name, "addr", s.Addr, "err", err)
		}
		if ln != nil {
			out = append(out, &Opened{Listener: ln, Spec: s, From: fmt.Sprintf("handed over by pid %d", pid)})
			continue
		}
		if s.ReusePort {
			ln, err = ListenReusePort(ctx, s.Addr)
		} else if ln, err = (&net.ListenConfig{}).Listen(ctx, "tcp", s.Addr); err != nil {
			err = fmt.Errorf("listen %s: %w", s.Addr, err)
		}
		if err != nil {
			return fail(fmt.Errorf("%s listener: %w", s.Name, err))
		}
		out = append(out, &Opened{Listener: ln, Spec: s, From: "bound"})
	}
	return out, nil
}

// systemdListeners takes the sockets systemd passed (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES) by
// spec name. It unsets the variables, so children do not see them.
func systemdListeners(specs []Spec, log *slog.Logger) (map[string]net.Listener, error) {
	named, err := activation.ListenersWithNames()
	if err != nil {
		return nil, fmt.Errorf("systemd socket activation: %w", err)
	}
	out := map[string]net.Listener{}
	want := map[string]bool{}
	for _, s := range specs {
		want[s.Name] = true
	}
	var unnamed []net.Listener
	for name, lns := range named {
		for i, ln := range lns {
			switch {
			case want[name] && i == 0:
				out[name] = ln
			case strings.HasPrefix(name, "LISTEN_FD_"): // no FileDescriptorName=
				unnamed = append(unnamed, ln)
			default:
				log.Warn("listener: closing a socket from systemd that names no listener of this process", "name", name, "addr", ln.Addr().String())
				ln.Close()
			}
		}
	}
	for _, ln := range unnamed {
		if len(specs) > 0 && out[specs[0].Name] == nil {
			out[specs[0].Name] = ln
			continue
		}
		log.Warn("listener: closing an unnamed socket from systemd (name it with FileDescriptorName=hooks or admin)", "addr", ln.Addr().String())
		ln.Close()
	}
	return out, nil
}

// ListenReusePort binds a TCP listener with SO_REUSEPORT, so it can be bound while another
// process (the one being replaced) still listens on addr. Only processes of the same user can
// share the port (the kernel's rule).
func ListenReusePort(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("set SO_REUSEPORT: %w", serr)
		}
		return nil
	}}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("listen %s: %w (another program, or another user's process, holds the port; srs-offload shares it only with its own processes of the same user)", addr, err)
		}
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}
