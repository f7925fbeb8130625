package warm

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/srs-offload/srs-offload/redact"
)

var (
	warmSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "srs_offload_warm_seconds",
		Help:    "Time to warm one segment on one edge, by target.",
		Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
	}, []string{"target"})
	warmResults = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "srs_offload_warm_total",
		Help: "Warm requests by target and outcome (ok, failed).",
	}, []string{"target", "outcome"})
)

// Target is one CDN to warm. Hosts come only from here: nothing in a request can make
// srs-offload fetch another host.
type Target struct {
	Name string
	// URL is a template: {key} is the object key with the storage prefix (escaped per segment),
	// {bucket} the bucket. E.g. https://cdn.example.com/{key}.
	URL    string
	Method string // GET (default), HEAD, or POST for a prefetch API
	// Body, for a prefetch API, is a template: {url} is the URL above (JSON-escaped).
	Body    string
	Headers map[string]string
	// Edges, when set, are host:port addresses to connect to instead of resolving the URL's host
	// (which is still sent as Host/SNI): one request per edge, to fill several points of presence.
	Edges       []string
	Timeout     time.Duration
	Retries     int // more attempts after a 5xx, a 429 or a transport error
	Concurrency int // requests in flight to this target
}

type target struct {
	Target
	client *http.Client
	sem    chan struct{}
}

// Warmer fetches stored segments through the targets.
type Warmer struct {
	targets []*target
	bucket  string
	prefix  string
	log     *slog.Logger
}

// NewWarmer checks the targets and builds one HTTP client per edge address.
func NewWarmer(targets []Target, bucket, prefix string, log *slog.Logger) (*Warmer, error) {
	w := &Warmer{bucket: bucket, prefix: prefix, log: log}
	for i, t := range targets {
		if err := CheckTarget(t); err != nil {
			return nil, fmt.Errorf("warm.targets[%d]: %w", i, err)
		}
		if t.Name == "" {
			t.Name = fmt.Sprintf("target%d", i)
		}
		if t.Method == "" {
			t.Method = http.MethodGet
		}
		if t.Timeout <= 0 {
			t.Timeout = 10 * time.Second
		}
		if t.Concurrency <= 0 {
			t.Concurrency = 8
		}
		tr := &http.Transport{
			MaxIdleConnsPerHost: t.Concurrency, IdleConnTimeout: 60 * time.Second,
			DialContext:         (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
			TLSHandshakeTimeout: 5 * time.Second, ResponseHeaderTimeout: t.Timeout,
		}
		w.targets = append(w.targets, &target{Target: t, client: &http.Client{
			Transport: tr, Timeout: t.Timeout,
			// A redirect could name any host: never follow one.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}, sem: make(chan struct{}, t.Concurrency)})
	}
	return w, nil
}

// CheckTarget reports what is wrong with a target.
func CheckTarget(t Target) error {
	u, err := url.Parse(strings.ReplaceAll(strings.ReplaceAll(t.URL, "{key}", "k"), "{bucket}", "b"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Contains(u.Host, "{") {
		return fmt.Errorf("url %q: want an http(s) URL with a fixed host, {key} in its path", redact.URL(t.URL))
	}
	if !strings.Contains(t.URL, "{key}") {
		return fmt.Errorf("url %q: has no {key}", redact.URL(t.URL))
	}
	switch t.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		return fmt.Errorf("method %q: want GET, HEAD or POST", t.Method)
	}
	for _, e := range t.Edges {
		if _, _, err := net.SplitHostPort(e); err != nil {
			return fmt.Errorf("edges: %q is not host:port", e)
		}
	}
	return nil
}

// Warm fetches one stored object (key without the storage prefix) through every target, each
// edge at most 1+Retries times. Failures are logged and counted, never returned: warming is best
// effort and must not hold back offloading.
func (w *Warmer) Warm(ctx context.Context, key string) {
	var wg sync.WaitGroup
	for _, t := range w.targets {
		u := w.url(t, key)
		edges := t.Edges
		if len(edges) == 0 {
			edges = []string{""}
		}
		for _, edge := range edges {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.warmOne(ctx, t, u, edge)
			}()
		}
	}
	wg.Wait()
}

func (w *Warmer) url(t *target, key string) string {
	segs := strings.Split(w.prefix+key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.NewReplacer("{key}", strings.Join(segs, "/"), "{bucket}", url.PathEscape(w.bucket)).Replace(t.URL)
}

func (w *Warmer) warmOne(ctx context.Context, t *target, u, edge string) {
	select {
	case t.sem <- struct{}{}:
		defer func() { <-t.sem }()
	case <-ctx.Done():
		return
	}
	start := time.Now()
	var err error
	var status int
	for attempt := 0; attempt <= t.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
		status, err = w.do(ctx, t, u, edge)
		if err == nil && status < 500 && status != http.StatusTooManyRequests {
			break
		}
	}
	outcome := "ok"
	if err != nil || status >= 400 {
		outcome = "failed"
		w.log.Warn("warm: edge not warmed", "target", t.Name, "url", redact.URL(u), "edge", edge, "status", status, "err", redact.Error(err), "attempts", t.Retries+1)
	} else {
		w.log.Debug("warm: edge warmed", "target", t.Name, "url", redact.URL(u), "edge", edge, "status", status, "took", time.Since(start))
	}
	warmResults.WithLabelValues(t.Name, outcome).Inc()
	warmSeconds.WithLabelValues(t.Name).Observe(time.Since(start).Seconds())
}

// do sends one request and reads the whole body: that is what fills an edge's cache.
func (w *Warmer) do(ctx context.Context, t *target, u, edge string) (int, error) {
	var body io.Reader
	if t.Method == http.MethodPost && t.Body != "" {
		body = strings.NewReader(strings.ReplaceAll(t.Body, "{url}", jsonEscape(u)))
	}
	req, err := http.NewRequestWithContext(ctx, t.Method, u, body)
	if err != nil {
		return 0, err
	}
	for k, v := range t.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("User-Agent", "srs-offload-warm")
	client := t.client
	if edge != "" {
		client = pinned(t.Name, t.client, edge)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return resp.StatusCode, fmt.Errorf("reading the body: %w", err)
	}
	return resp.StatusCode, nil
}

var pinnedClients sync.Map // target name + edge address → *http.Client

// pinned is a client that connects to edge whatever the URL's host, keeping that host for
// the Host header and TLS.
func pinned(name string, base *http.Client, edge string) *http.Client {
	id := name + "|" + edge
	if c, ok := pinnedClients.Load(id); ok {
		return c.(*http.Client)
	}
	tr := base.Transport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: 3 * time.Second}
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, edge)
	}
	c := &http.Client{Transport: tr, Timeout: base.Timeout, CheckRedirect: base.CheckRedirect}
	actual, _ := pinnedClients.LoadOrStore(id, c)
	return actual.(*http.Client)
}

func jsonEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return r.Replace(s)
}
