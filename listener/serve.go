package listener

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Serving is an http.Server serving one listener, with a Stop that loses no request.
type Serving struct {
	srv      *http.Server
	ln       net.Listener
	errc     chan error
	stopping atomic.Bool

	mu    sync.Mutex
	fresh map[net.Conn]bool // accepted, first request not read yet
	idle  chan struct{}     // signalled when fresh empties
}

// Serve starts srv on ln (srv.ConnState is taken over).
func Serve(srv *http.Server, ln net.Listener) *Serving {
	s := &Serving{srv: srv, ln: ln, errc: make(chan error, 1), fresh: map[net.Conn]bool{}, idle: make(chan struct{}, 1)}
	srv.ConnState = s.connState
	go func() {
		err := srv.Serve(ln)
		if !s.stopping.Load() && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- err
		}
		close(s.errc)
	}()
	return s
}

// Err reports the error that ended serving, if it ended before Stop; it is closed when serving
// ends.
func (s *Serving) Err() <-chan error { return s.errc }

func (s *Serving) connState(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == http.StateNew {
		s.fresh[c] = true
		return
	}
	if s.fresh[c] {
		delete(s.fresh, c)
		if len(s.fresh) == 0 {
			select {
			case s.idle <- struct{}{}:
			default:
			}
		}
	}
}

func (s *Serving) freshConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.fresh)
}

// Stop stops accepting and returns once the requests in flight are answered, or ctx is done.
//
// http.Server.Shutdown alone would drop a request that arrives on a connection accepted just
// before it (net/http closes such a connection unanswered once shutting down). So Stop first
// closes the listener and turns keep-alives off, then waits until every accepted connection has
// delivered its first request (or been cut by the read deadline), and only then shuts down.
func (s *Serving) Stop(ctx context.Context) error {
	s.stopping.Store(true)
	s.srv.SetKeepAlivesEnabled(false) // answers say Connection: close
	s.ln.Close()
	for s.freshConns() > 0 {
		select {
		case <-ctx.Done():
			return s.shutdown(ctx)
		case <-s.idle:
		case <-time.After(50 * time.Millisecond):
		}
	}
	return s.shutdown(ctx)
}

// shutdown shuts the server down. The listener was closed by Stop already: when Serve has not
// yet returned from its failed Accept, Shutdown closes it again and reports net.ErrClosed, which
// is no failure of shutting down.
func (s *Serving) shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
