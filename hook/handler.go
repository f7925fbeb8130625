package hook

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// MaxBody is the largest request body accepted. SRS's payloads are under 1 KiB.
const MaxBody = 64 << 10

var (
	requests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "srs_offload_hook_requests_total",
		Help: "Hook requests by action and HTTP status.",
	}, []string{"action", "status"})
	spooled = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "srs_offload_spooled_total",
		Help: "Hooked files hard-linked into the spool, by result (ok, gone, failed).",
	}, []string{"result"})
	latency = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "srs_offload_hook_duration_seconds",
		Help:    "Time to answer a hook, including the durable enqueue.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, 1, 5},
	}, []string{"action"})
)

// Handler is the HTTP face of an Intake. SRS POSTs to whatever path the operator configured, so
// every path is accepted and the JSON action decides.
type Handler struct {
	Intake *Intake
	// Token, when set, must be given as ?token=… on every request.
	Token string
	// Notify, when set, takes SRS's on_hls_notify GETs (CDN warming).
	Notify Notifier
	// Live, when set, serves the live playlists (playlist.live: served) to players and CDNs, who
	// know no token: the GETs and HEADs it matches are answered by it before the token check.
	Live LivePlaylists
	Log  *slog.Logger
}

// LivePlaylists serves live playlists (playlist.Served).
type LivePlaylists interface {
	Match(path string) bool
	http.Handler
}

// Notifier handles an on_hls_notify path (see package warm).
type Notifier interface {
	Accept(ctx context.Context, escapedPath string) error
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	action := "unknown"
	status := h.serve(w, r, &action)
	requests.WithLabelValues(action, strconv.Itoa(status)).Inc()
	latency.WithLabelValues(action).Observe(time.Since(start).Seconds())
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, action *string) int {
	if h.Live != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) && h.Live.Match(r.URL.Path) {
		*action = "live_playlist"
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.Live.ServeHTTP(sw, r)
		return sw.status
	}
	if h.Token != "" && !tokenOK(r.URL.RawQuery, h.Token) {
		return h.fail(w, r, http.StatusForbidden, "missing or wrong token")
	}
	switch r.Method {
	case http.MethodPost:
	case http.MethodGet:
		// on_hls_notify: SRS ignores the answer and reads only ~64 bytes of it, so the answer
		// is the same whatever happens.
		*action = "on_hls_notify"
		if h.Notify != nil {
			if err := h.Notify.Accept(r.Context(), r.URL.EscapedPath()); err != nil {
				h.log().Warn("hook: on_hls_notify warms nothing", "path", r.URL.Path, "err", err)
			}
		}
		return ok(w)
	default:
		return h.fail(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: SRS hooks are POST (on_hls_notify is GET)")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return h.fail(w, r, http.StatusRequestEntityTooLarge, "body over 64 KiB")
		}
		return h.fail(w, r, http.StatusBadRequest, "read body: "+err.Error())
	}
	// UnmarshalJSON itself, not json.Unmarshal, which would scan the body once more before
	// handing it over (it validates the whole input, and so does UnmarshalJSON's own decode).
	var req Request
	if err := req.UnmarshalJSON(body); err != nil {
		return h.fail(w, r, http.StatusBadRequest, "malformed JSON: "+err.Error())
	}
	if req.Action == "on_hls" || req.Action == "on_dvr" || ignored[req.Action] {
		*action = req.Action // the label takes only SRS's own actions: no series from arbitrary input
	}
	outcome, task, err := h.Intake.Accept(r.Context(), req)
	if err != nil {
		var in *InputError
		if errors.As(err, &in) {
			return h.fail(w, r, in.Status, in.Msg)
		}
		// The queue is unreachable. The file is held in the spool (or at least left on disk) and
		// the reconciler enqueues it once Redis is back; SRS only logs the non-zero answer (it
		// never retries a hook), so the answer is honest rather than {"code":0}.
		h.log().Error("hook: could not record the task; the file stays on disk for the reconciler", "action", req.Action, "file", req.File, "err", err)
		return writeJSON(w, http.StatusServiceUnavailable, errorBody{Code: http.StatusServiceUnavailable,
			Error: err.Error() + "; the file is kept on disk and offloaded once the queue is back"})
	}
	switch outcome {
	case Enqueued:
		h.log().Debug("hook: enqueued", "action", req.Action, "path", task.Path, "key", task.Key)
	case Duplicate:
		h.log().Info("hook: already enqueued", "action", req.Action, "path", task.Path)
	}
	return ok(w)
}

// tokenOK looks for token=<token> in the query. SRS appends the publisher's own query ([param],
// starting with '?') to on_hls_notify URLs, so "?" separates pairs as well as "&". The value is
// compared as SRS sends it, byte for byte and in constant time: SRS copies the hook URL of its
// config verbatim, so the token the operator wrote there is the token in the config, '+' and '%'
// included (unescaping would turn "a+b" into "a b" and never match).
func tokenOK(rawQuery, token string) bool {
	for _, kv := range strings.FieldsFunc(rawQuery, func(r rune) bool { return r == '&' || r == '?' }) {
		k, v, _ := strings.Cut(kv, "=")
		if k != "token" {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(v), []byte(token)) == 1 {
			return true
		}
	}
	return false
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}

type errorBody struct {
	Code  int    `json:"code"`
	Error string `json:"error"`
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string) int {
	h.log().Warn("hook: refused", "status", status, "error", msg, "path", r.URL.Path, "remote", r.RemoteAddr)
	// Close the connection after the answer: net/http would otherwise first read the rest of a
	// body it was refused before reading (a wrong token), at the client's pace.
	w.Header().Set("Connection", "close")
	return writeJSON(w, status, errorBody{Code: status, Error: msg})
}

var okBody = []byte(`{"code":0}`)

// ok is the one answer every SRS version accepts: status 200, a JSON object with integer code 0,
// and a Content-Length (a response without one stalls SRS until its timeout).
func ok(w http.ResponseWriter) int {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(okBody)))
	w.WriteHeader(http.StatusOK)
	w.Write(okBody)
	return http.StatusOK
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
	return status
}

// statusWriter remembers the status written, for the metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}
