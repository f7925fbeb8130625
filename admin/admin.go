// Package admin is srs-offload's admin listener, apart from the hooks: Prometheus metrics,
// liveness (/healthz), readiness (/readyz: Redis, the bucket, the roots), asynq's web UI at
// /monitor/ (read-only unless configured otherwise) and, when enabled, Go's profiler with
// bounded durations, all behind an optional token.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"
)

// MaxProfileSeconds bounds ?seconds= of /debug/pprof/profile and /debug/pprof/trace.
const MaxProfileSeconds = 60

var (
	up = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "srs_offload_up",
		Help: "1 when the last readiness check of a dependency (redis, storage) passed, else 0.",
	}, []string{"dependency"})
	buildInfo = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "srs_offload_build_info",
		Help: "Always 1; the labels name the running build.",
	}, []string{"version", "commit"})
)

// SetBuildInfo publishes srs_offload_build_info. An empty commit is taken from the VCS stamp Go
// put in the binary, else "unknown".
func SetBuildInfo(version, commit string) {
	if commit == "" {
		commit = "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && s.Value != "" {
					commit = s.Value
				}
			}
		}
	}
	buildInfo.Reset()
	buildInfo.WithLabelValues(version, commit).Set(1)
}

// Check is one readiness condition.
type Check struct {
	// Name is its key in /readyz's JSON.
	Name string
	// Dependency, when set, is the srs_offload_up label this check sets (redis, storage).
	Dependency string
	// Run returns nil when the condition holds; it must honour ctx.
	Run func(ctx context.Context) error
}

// Options configure the admin handler.
type Options struct {
	// Token, when set, is required as "Authorization: Bearer <token>" or ?token=<token>.
	Token string
	// Checks make up /readyz.
	Checks []Check
	// CheckTimeout bounds each check (default 3 s).
	CheckTimeout time.Duration
	// PProf serves /debug/pprof/.
	PProf bool
	// Metrics serves /metrics (default: prometheus.DefaultGatherer).
	Metrics prometheus.Gatherer
	// Monitor serves asynq's web UI at /monitor/ (default off). With Token, a browser opens
	// /monitor/?token=<token> once and then carries a cookie.
	Monitor Monitor
	// Redis is the queue's Redis, required with Monitor; the UI opens its own connections.
	Redis asynq.RedisConnOpt
}

// Handler serves the admin routes.
type Handler struct {
	opt Options
	mux *http.ServeMux
	mu  sync.Mutex // one readiness run at a time
	mon *monitor   // nil when the web UI is off
}

// New builds the admin handler.
func New(opt Options) *Handler {
	if opt.CheckTimeout <= 0 {
		opt.CheckTimeout = 3 * time.Second
	}
	if opt.Metrics == nil {
		opt.Metrics = prometheus.DefaultGatherer
	}
	h := &Handler{opt: opt, mux: http.NewServeMux()}
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(opt.Metrics, promhttp.HandlerOpts{}))
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"alive": true})
	})
	h.mux.HandleFunc("GET /readyz", h.readyz)
	if opt.PProf {
		h.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		h.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		h.mux.Handle("GET /debug/pprof/profile", bounded(http.HandlerFunc(pprof.Profile)))
		h.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		h.mux.Handle("GET /debug/pprof/trace", bounded(http.HandlerFunc(pprof.Trace)))
	}
	if opt.Monitor != MonitorOff {
		h.mon = newMonitor(opt.Monitor, opt.Redis, opt.Token)
		h.mux.Handle(MonitorPath, h.mon)
		h.mux.Handle(MonitorPath+"/", h.mon)
	}
	return h
}

// Close lets go of the web UI's Redis connections (nothing else is held).
func (h *Handler) Close() error {
	if h.mon != nil {
		return h.mon.Close()
	}
	return nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.opt.Token != "" && !tokenOK(r, h.opt.Token) && !(h.mon != nil && under(r.URL.Path) && h.mon.cookie(r)) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="srs-offload admin"`)
		msg := "missing or wrong token: send Authorization: Bearer <admin.token> or ?token=<admin.token>"
		if h.mon != nil && under(r.URL.Path) {
			msg += "; in a browser open " + MonitorPath + "/?token=<admin.token> once (a cookie then carries it)"
		}
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": msg})
		return
	}
	h.mux.ServeHTTP(w, r)
}

func tokenOK(r *http.Request, token string) bool {
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(v)), []byte(token)) == 1 {
		return true
	}
	for _, v := range r.URL.Query()["token"] {
		if subtle.ConstantTimeCompare([]byte(v), []byte(token)) == 1 {
			return true
		}
	}
	return false
}

// Readiness is the result of one run of the checks.
type Readiness struct {
	Ready bool `json:"ready"`
	// Checks maps each check's name to "ok" or what failed.
	Checks map[string]string `json:"checks"`
}

// Check runs every check (in parallel, each bounded by CheckTimeout) and sets srs_offload_up.
func (h *Handler) Check(ctx context.Context) Readiness {
	h.mu.Lock()
	defer h.mu.Unlock()
	res := Readiness{Ready: true, Checks: map[string]string{}}
	errs := make([]error, len(h.opt.Checks))
	var wg sync.WaitGroup
	for i, c := range h.opt.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, h.opt.CheckTimeout)
			defer cancel()
			errs[i] = c.Run(cctx)
		}()
	}
	wg.Wait()
	for i, c := range h.opt.Checks {
		v := 1.0
		res.Checks[c.Name] = "ok"
		if errs[i] != nil {
			v, res.Ready = 0, false
			res.Checks[c.Name] = errs[i].Error()
		}
		if c.Dependency != "" {
			up.WithLabelValues(c.Dependency).Set(v)
		}
	}
	return res
}

// Watch runs the checks every interval until ctx is done, so srs_offload_up stays current
// without /readyz being polled.
func (h *Handler) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		h.Check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	res := h.Check(r.Context())
	status := http.StatusOK
	if !res.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, res)
}

// bounded refuses ?seconds= over MaxProfileSeconds (pprof's own default is 30 s).
func bounded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := r.URL.Query().Get("seconds"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 || n > MaxProfileSeconds {
				writeJSON(w, http.StatusBadRequest, map[string]string{
					"error": fmt.Sprintf("seconds=%q: want 1..%d", s, MaxProfileSeconds)})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "<admin.token>" reads as it is in a browser
	enc.Encode(v)
	b := strings.TrimSuffix(buf.String(), "\n")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	io.WriteString(w, b)
}

// Writable is a check that every dir is a writable folder (access(2) with W_OK: a read-only
// mount or missing permission fails it). Nothing is written.
func Writable(dirs []string) func(context.Context) error {
	return func(context.Context) error {
		var bad []string
		for _, d := range dirs {
			if err := unix.Access(d, unix.W_OK); err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", d, err))
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("not writable: %s", strings.Join(bad, "; "))
		}
		return nil
	}
}
