// Package listener opens srs-offload's TCP listeners and keeps them from being exhausted.
//
// A listener comes, first found first, from systemd socket activation (LISTEN_FDS), from the
// process already serving the same address (it hands over its listening socket, see Handover), or
// from a bind with SO_REUSEPORT. Either way a restart refuses no connection: the socket outlives
// the process. Limit caps the open connections and Server bounds the time one request may take
// to arrive, so slow or flooding clients cannot hold the listener.
package listener

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	openConns = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "srs_offload_listener_open_connections",
		Help: "Connections open on a listener (hooks or admin).",
	}, []string{"listener"})
	waits = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "srs_offload_listener_waits_total",
		Help: "Accepts that waited for a free slot because max_conns connections were open; the new connection waited in the kernel's backlog meanwhile.",
	}, []string{"listener"})
)

// Limit returns ln with at most max connections open at once. At the cap it stops accepting:
// further connections wait in the kernel's backlog (they are not refused) until an open one
// closes. name labels the metrics (srs_offload_listener_open_connections, _waits_total).
func Limit(ln net.Listener, max int, name string) net.Listener {
	return &limited{Listener: ln, slots: make(chan struct{}, max), done: make(chan struct{}),
		open: openConns.WithLabelValues(name), waits: waits.WithLabelValues(name)}
}

type limited struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	open      prometheus.Gauge
	waits     prometheus.Counter
}

func (l *limited) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.waits.Inc()
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.open.Inc()
	return &slotConn{Conn: c, release: func() { l.open.Dec(); <-l.slots }}, nil
}

func (l *limited) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// slotConn gives its slot back when closed (once, however often Close is called).
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Timeouts bound the time a client may take.
type Timeouts struct {
	// Read bounds reading one whole request, headers and body, from its first byte (from the
	// accept for the first request of a connection).
	Read time.Duration
	// Idle closes a kept-alive connection that sends no new request.
	Idle time.Duration
}

// MaxHeaderBytes bounds a request's header: SRS's are a few hundred bytes.
const MaxHeaderBytes = 16 << 10

// Server returns an http.Server for h with t's deadlines. No WriteTimeout: answers are small, and
// the admin listener's profiles take their own time (bounded by the admin handler).
func Server(h http.Handler, t Timeouts, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.Read,
		ReadTimeout:       t.Read,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    MaxHeaderBytes,
		// Cut-off clients and accept errors (EMFILE) are logged by net/http; keep them at debug.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
