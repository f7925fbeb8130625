package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/srs-offload/srs-offload/listener"
	"github.com/srs-offload/srs-offload/redact"
)

// roles says which parts a process runs.
type roles struct{ hooks, worker bool }

func runServe(name string, args []string, r roles) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	p, err := load(*path, os.Stderr)
	if err != nil {
		return 2
	}
	defer p.close()
	log := newLogger(p.cfg.Log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, p, r, log, nil); err != nil {
		msg := fmt.Sprintf("srs-offload %s: %v", name, redact.Error(err))
		if p.cfg.Log.Format == "json" {
			log.Error(msg) // every line on stderr is JSON in json mode
		} else {
			fmt.Fprintln(os.Stderr, msg)
		}
		return 1
	}
	return 0
}

// serve builds the parts of a role, starts them, and blocks until ctx is done or a listener
// fails; then it shuts them down within worker.shutdown_timeout (see process.shutdown). ready,
// if not nil, gets the hook listener's address once it listens.
func serve(ctx context.Context, p *plan, r roles, log *slog.Logger, ready chan<- string) error {
	pr, err := build(ctx, p, r, log, buildFor{connect: true, take: true})
	if err != nil {
		return err
	}
	defer pr.close()
	if err := pr.start(ctx); err != nil {
		pr.shutdown(context.Background())
		return err
	}
	if ready != nil {
		ready <- pr.srvs.addr
	}
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-pr.srvs.errc:
		runErr = err
	}
	log.Info("shutting down", "within", p.cfg.Worker.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), p.cfg.Worker.ShutdownTimeout+shutdownMargin)
	defer cancel()
	return errors.Join(runErr, pr.shutdown(sctx))
}

// servers are the HTTP servers of a process and their sockets' hand-overs.
type servers struct {
	addr      string // the hook listener's address, else the admin one's
	errc      chan error
	srvs      []*listener.Serving
	handovers []*listener.Handover
	watching  sync.WaitGroup // the goroutines passing on a server's failure
}

// serveListeners opens the hook listener (when hooks is set) and the admin listener (when
// admin.listen is set), from systemd, from the process being replaced or bound anew (package
// listener), and serves them.
func (pr *process) serveListeners(ctx context.Context) (*servers, error) {
	cfg, r, adm, log := pr.p.cfg, pr.r, pr.adm, pr.log
	var hooks http.Handler
	if pr.hooks != nil {
		hooks = pr.hooks // every path: SRS posts to whatever path the operator configured
	}
	group := fmt.Sprintf("hooks=%t,worker=%t", r.hooks, r.worker) // hand-overs only between processes of one kind
	var specs []listener.Spec
	if hooks != nil {
		specs = append(specs, listener.Spec{Name: "hooks", Addr: cfg.Listen, Group: group, ReusePort: true})
	}
	if cfg.Admin.Listen != "" {
		// No SO_REUSEPORT: a second process of another kind on the same admin address is a
		// config mistake, refused at start.
		specs = append(specs, listener.Spec{Name: "admin", Addr: cfg.Admin.Listen, Group: group})
	}
	lns, err := listener.Open(ctx, specs, log)
	if err != nil {
		return nil, err
	}
	s := &servers{errc: make(chan error, len(lns))}
	for _, ln := range lns {
		var srv *http.Server
		var limited net.Listener
		switch ln.Spec.Name {
		case "hooks":
			srv = listener.Server(hooks, listener.Timeouts{Read: cfg.Hooks.ReadTimeout, Idle: cfg.Hooks.IdleTimeout}, log)
			limited = listener.Limit(ln, cfg.Hooks.MaxConns, ln.Spec.Name)
		default:
			srv = listener.Server(adm, listener.Timeouts{Read: 10 * time.Second, Idle: time.Minute}, log)
			limited = listener.Limit(ln, 64, ln.Spec.Name)
		}
		if s.addr == "" {
			s.addr = ln.Addr().String()
		}
		if ln.From != "systemd" { // systemd holds its sockets across restarts itself
			h, err := listener.ServeHandover(ln.Spec, ln.Listener, log)
			if err != nil {
				log.Warn("listener: restarts without systemd may refuse connections", "listener", ln.Spec.Name, "err", err)
			} else {
				s.handovers = append(s.handovers, h)
			}
		}
		sv := listener.Serve(srv, limited)
		s.srvs = append(s.srvs, sv)
		s.watching.Add(1)
		go func() {
			defer s.watching.Done()
			if err, ok := <-sv.Err(); ok {
				s.errc <- fmt.Errorf("%s listener %s: %w", ln.Spec.Name, ln.Addr(), err)
			}
		}()
		log.Info("listening", "listener", ln.Spec.Name, "addr", ln.Addr().String(), "socket", ln.From)
	}
	return s, nil
}

// shutdown stops offering the sockets to a successor, stops accepting and waits for the requests
// in flight (see listener.Serving.Stop) and for the goroutines that watch the servers, or for ctx.
func (s *servers) shutdown(ctx context.Context) error {
	for _, h := range s.handovers {
		h.Close()
	}
	errs := make([]error, len(s.srvs))
	var wg sync.WaitGroup
	for i, srv := range s.srvs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = srv.Stop(ctx) }()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { s.watching.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("listeners: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}
