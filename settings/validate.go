package settings

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"time"
	"unicode/utf8"

	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/reconcile"
	"github.com/srs-offload/srs-offload/redact"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/spool"
	"github.com/srs-offload/srs-offload/warm"
)

// Validate checks every value that can be checked without the network and returns all problems,
// each naming its key. It fills in node from the hostname when empty.
func (c *Config) Validate() error {
	var p Errors
	add := func(key, format string, a ...any) { p = append(p, Problem{key, fmt.Sprintf(format, a...)}) }

	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen", "want host:port, got %q", c.Listen)
	}
	if c.Admin.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
			add("admin.listen", "want host:port, or empty for no admin listener, got %q", c.Admin.Listen)
		} else if c.Admin.Listen == c.Listen {
			add("admin.listen", "must differ from listen (%s): nothing but hooks is served there", c.Listen)
		}
	}
	if c.Debug.PProf && c.Admin.Listen == "" {
		add("debug.pprof", "needs admin.listen: the profiler is served only there")
	}
	if c.Node == "" {
		h, err := os.Hostname()
		if err != nil {
			add("node", "empty, and the hostname is unknown: %v", err)
		}
		c.Node = h
	}
	if err := queue.ValidNode(c.Node); err != nil {
		add("node", "%v", err)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add("log.format", "want text or json, got %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	if _, _, err := net.SplitHostPort(c.Redis.Addr); err != nil {
		add("redis.addr", "want host:port, got %q", c.Redis.Addr)
	}
	if c.Redis.DB < 0 || c.Redis.DB > 15 {
		add("redis.db", "want 0..15, got %d", c.Redis.DB)
	}
	if len(c.Roots) == 0 {
		add("roots", "name at least one folder SRS records into")
	}
	for i, r := range c.Roots {
		rs, err := roots.New([]string{r})
		if err != nil {
			add(fmt.Sprintf("roots[%d]", i), "%v", err)
			continue
		}
		rs.Close() // only checked here: serve opens the roots it uses
	}
	if c.Hooks.EnqueueTimeout <= 0 || c.Hooks.EnqueueTimeout >= 30*time.Second {
		add("hooks.enqueue_timeout", "want between 0 and 30s (SRS's own timeout), got %s", c.Hooks.EnqueueTimeout)
	}
	if c.Hooks.ReadTimeout < 100*time.Millisecond || c.Hooks.ReadTimeout >= 30*time.Second {
		add("hooks.read_timeout", "want 100ms..30s (SRS's own timeout; its bodies are < 1 KiB), got %s", c.Hooks.ReadTimeout)
	}
	if c.Hooks.IdleTimeout <= 0 {
		add("hooks.idle_timeout", "must be positive, got %s", c.Hooks.IdleTimeout)
	}
	if c.Hooks.MaxConns < 16 || c.Hooks.MaxConns > 1<<20 {
		add("hooks.max_conns", "want 16..1048576 (each open connection holds a file descriptor), got %d", c.Hooks.MaxConns)
	}
	if c.Storage.Endpoint != "" {
		u, err := url.Parse(c.Storage.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("storage.endpoint", "want an http:// or https:// URL, got %q", redact.URL(c.Storage.Endpoint))
		}
	}
	if c.Storage.Region == "" {
		add("storage.region", "required (any value for most S3-compatible servers, e.g. us-east-1)")
	}
	if c.Storage.Bucket == "" {
		add("storage.bucket", "required")
	}
	if (c.Storage.AccessKey == "") != (c.Storage.SecretKey == "") {
		add("storage.access_key", "access_key and secret_key go together (or leave both empty for the SDK's default chain)")
	}
	if c.Storage.PartSize < 5<<20 || c.Storage.PartSize > 5<<30 {
		add("storage.part_size", "want 5MiB..5GiB (S3's limits), got %d", c.Storage.PartSize)
	}
	if c.Storage.MultipartThreshold < c.Storage.PartSize {
		add("storage.multipart_threshold", "must be at least storage.part_size (%d), got %d", c.Storage.PartSize, c.Storage.MultipartThreshold)
	}
	if c.Storage.PartConcurrency < 1 || c.Storage.PartConcurrency > 64 {
		add("storage.part_concurrency", "want 1..64, got %d", c.Storage.PartConcurrency)
	}
	// Object keys must be UTF-8 for S3, and the templates become regular expressions and URL
	// patterns: a template that is not UTF-8 is refused by name, whether or not its feature is on.
	templates := []struct{ key, tmpl string }{{"keys.hls", c.Keys.HLS}, {"keys.playlist", c.Keys.Playlist}, {"keys.dvr", c.Keys.DVR},
		{"playlist.vod_key", c.Playlist.VODKey}, {"warm.folder", c.Warm.Folder}, {"warm.notify_path", c.Warm.NotifyPath}}
	for i, t := range c.Reconcile.HLSTSFile {
		templates = append(templates, struct{ key, tmpl string }{fmt.Sprintf("reconcile.hls_ts_file[%d]", i), t})
	}
	for i, t := range c.Reconcile.DVRPath {
		templates = append(templates, struct{ key, tmpl string }{fmt.Sprintf("reconcile.dvr_path[%d]", i), t})
	}
	badUTF8 := map[string]bool{}
	for _, t := range templates {
		if !utf8.ValidString(t.tmpl) {
			add(t.key, "%q is not valid UTF-8", t.tmpl)
			badUTF8[t.key] = true
		}
	}
	for _, k := range []struct{ key, tmpl string }{{"keys.hls", c.Keys.HLS}, {"keys.playlist", c.Keys.Playlist}, {"keys.dvr", c.Keys.DVR}} {
		if badUTF8[k.key] {
			continue
		}
		if _, err := objkey.Parse(k.tmpl); err != nil {
			add(k.key, "%v", err)
		}
	}
	if c.Playlist.VODKey != "" && !badUTF8["playlist.vod_key"] {
		if _, err := objkey.Parse(c.Playlist.VODKey); err != nil {
			add("playlist.vod_key", "%v", err)
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"playlist.window", c.Playlist.Window}, {"playlist.stall", c.Playlist.Stall}, {"playlist.vod_wait", c.Playlist.VODWait},
		{"playlist.idle", c.Playlist.Idle}, {"playlist.retain", c.Playlist.Retain}} {
		if d.v <= 0 {
			add(d.key, "must be positive")
		}
	}
	if len(c.Warm.Targets) > 0 {
		if _, err := warm.ParsePattern(c.Warm.NotifyPath); err != nil && !badUTF8["warm.notify_path"] {
			add("warm.notify_path", "%v", err)
		}
		if _, err := objkey.Parse(c.Warm.Folder); err != nil && !badUTF8["warm.folder"] {
			add("warm.folder", "%v", err)
		}
		if c.Warm.Wait <= 0 {
			add("warm.wait", "must be positive")
		}
		for i, t := range c.Warm.Targets {
			if err := warm.CheckTarget(t.Target()); err != nil {
				add(fmt.Sprintf("warm.targets[%d]", i), "%v", err)
			}
		}
	}
	if c.Spool.Enabled {
		if _, err := spool.New(nil, c.Spool.Dir); err != nil {
			add("spool.dir", "%v", err)
		}
	}
	if c.Reconcile.Enabled {
		if c.Reconcile.Interval < 0 {
			add("reconcile.interval", "want 0 (only at start) or more, got %s", c.Reconcile.Interval)
		}
		if c.Reconcile.MinAge < time.Second {
			add("reconcile.min_age", "want at least 1s (SRS renames a segment, then sends its hook), got %s", c.Reconcile.MinAge)
		}
		for i, t := range c.Reconcile.HLSTSFile {
			if err := reconcile.CheckTemplate(t); err != nil && utf8.ValidString(t) {
				add(fmt.Sprintf("reconcile.hls_ts_file[%d]", i), "%v", err)
			}
		}
		for i, t := range c.Reconcile.HLSM3U8File {
			if err := reconcile.CheckM3U8Template(t); err != nil {
				add(fmt.Sprintf("reconcile.hls_m3u8_file[%d]", i), "%v", err)
			}
		}
		for i, t := range c.Reconcile.DVRPath {
			if err := reconcile.CheckTemplate(t); err != nil && utf8.ValidString(t) {
				add(fmt.Sprintf("reconcile.dvr_path[%d]", i), "%v", err)
			}
		}
	}
	if c.Worker.Concurrency < 1 || c.Worker.Concurrency > 1024 {
		add("worker.concurrency", "want 1..1024, got %d", c.Worker.Concurrency)
	}
	if c.Worker.MaxRetry < 0 {
		add("worker.max_retry", "must not be negative")
	}
	if c.Worker.RetryBase <= 0 {
		add("worker.retry_base", "must be positive")
	}
	if c.Worker.RetryMax < c.Worker.RetryBase {
		add("worker.retry_max", "must be at least worker.retry_base")
	}
	if c.Worker.Timeout <= 0 {
		add("worker.timeout", "must be positive")
	}
	if c.Worker.ShutdownTimeout < 0 {
		add("worker.shutdown_timeout", "must not be negative")
	}
	if c.Worker.Dedup < time.Second {
		add("worker.dedup", "must be at least 1s")
	}
	if c.Worker.PollInterval <= 0 || c.Worker.PollInterval > 5*time.Second {
		add("worker.poll_interval", "want between 0 and 5s, got %s", c.Worker.PollInterval)
	}
	if len(p) > 0 {
		return p
	}
	return nil
}

// Target is the warm package's form of a target.
func (t WarmTarget) Target() warm.Target {
	return warm.Target{Name: t.Name, URL: t.URL, Method: t.Method, Body: t.Body, Headers: t.Headers, Edges: t.Edges,
		Timeout: t.Timeout, Retries: t.Retries, Concurrency: t.Concurrency}
}
