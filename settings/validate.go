package settings

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Validate checks every value that can be checked on its own and returns all problems, each
// naming its key. It fills in node from the hostname when empty. What only the packages that use
// a value can judge (templates, roots, the spool folder's name, warm targets) is checked where
// the config is turned into those packages' values: cmd/srs-offload's build, which reports its
// problems by key too.
func (c *Config) Validate() error {
	var p Errors
	add := func(key, format string, a ...any) { p = append(p, Problem{key, fmt.Sprintf(format, a...)}) }

	if err := hostPort(c.Listen); err != nil {
		add("listen", "want host:port, got %q (%v)", c.Listen, err)
	}
	if c.Admin.Listen != "" {
		if err := hostPort(c.Admin.Listen); err != nil {
			add("admin.listen", "want host:port, or empty for no admin listener, got %q (%v)", c.Admin.Listen, err)
		} else if c.Admin.Listen == c.Listen {
			add("admin.listen", "must differ from listen (%s): nothing but hooks is served there", c.Listen)
		}
	}
	switch c.Admin.Monitor {
	case "off", "read-only":
	case "read-write":
		if c.Admin.Listen == "" {
			add("admin.monitor", "read-write needs admin.listen: the web UI is served only there")
		}
	default:
		add("admin.monitor", "want off, read-only or read-write, got %q", c.Admin.Monitor)
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
	c.Redis.validate(add)
	if len(c.Roots) == 0 {
		add("roots", "name at least one folder SRS records into")
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
	if c.Storage.Provider != "" && !slices.Contains(Providers, c.Storage.Provider) {
		add("storage.provider", "want one of %s, or empty to detect it from storage.endpoint, got %q", strings.Join(Providers, ", "), c.Storage.Provider)
	}
	if c.Storage.Endpoint != "" {
		u, err := url.Parse(c.Storage.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("storage.endpoint", "want an http:// or https:// URL, got %q", withoutUserinfo(c.Storage.Endpoint))
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
	c.validateStorage(add)
	if !slices.Contains([]string{"auto", "md5", "checksum", "size"}, c.Storage.Verify) {
		add("storage.verify", "want auto, md5, checksum or size, got %q", c.Storage.Verify)
	}
	if !slices.Contains([]string{"crc32c", "crc64nvme", "sha256"}, c.Storage.Checksum) {
		add("storage.checksum", "want crc32c, crc64nvme or sha256, got %q", c.Storage.Checksum)
	}
	for _, p := range c.Storage.encryptionProblems() {
		add(p.Key, "%s", p.Msg)
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
	for _, t := range templates {
		if !utf8.ValidString(t.tmpl) {
			add(t.key, "%q is not valid UTF-8", t.tmpl)
		}
	}
	// The object key templates: a key starting with / (or with an empty or dot segment) is refused
	// when it is made, at every hook; say so now.
	for _, t := range []struct{ key, tmpl string }{{"keys.hls", c.Keys.HLS}, {"keys.playlist", c.Keys.Playlist},
		{"keys.dvr", c.Keys.DVR}, {"playlist.vod_key", c.Playlist.VODKey}} {
		if msg := keyTemplateProblem(t.tmpl); t.tmpl != "" && msg != "" && utf8.ValidString(t.tmpl) {
			add(t.key, "%q %s", t.tmpl, msg)
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
	if c.Playlist.PublishInterval < 0 || c.Playlist.PublishInterval > 10*time.Second {
		add("playlist.publish_interval", "want 0 (every change) up to 10s, got %s", c.Playlist.PublishInterval)
	}
	c.validateLive(add)
	if len(c.Warm.Targets) > 0 && c.Warm.Wait <= 0 {
		add("warm.wait", "must be positive")
	}
	if c.Reconcile.Enabled {
		if c.Reconcile.Interval < 0 {
			add("reconcile.interval", "want 0 (only at start) or more, got %s", c.Reconcile.Interval)
		}
		if c.Reconcile.MinAge < time.Second {
			add("reconcile.min_age", "want at least 1s (SRS renames a segment, then sends its hook), got %s", c.Reconcile.MinAge)
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
	if c.Worker.ShutdownTimeout < time.Second {
		// asynq takes 0 for its own 8 s, beyond the deadline the process gives itself.
		add("worker.shutdown_timeout", "want at least 1s, got %s", c.Worker.ShutdownTimeout)
	}
	if c.Worker.Dedup < time.Second {
		add("worker.dedup", "must be at least 1s")
	}
	if c.Worker.PollInterval <= 0 || c.Worker.PollInterval > 5*time.Second {
		add("worker.poll_interval", "want between 0 and 5s, got %s", c.Worker.PollInterval)
	}
	c.validatePost(add)
	if len(p) > 0 {
		return p
	}
	return nil
}

// withoutUserinfo is an endpoint as it may be quoted in a problem: without the user and password
// a URL can carry.
func withoutUserinfo(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		if i := strings.LastIndex(endpoint, "@"); i >= 0 {
			return "…" + endpoint[i:]
		}
		return endpoint
	}
	u.User = nil
	return u.String()
}

// validate checks redis: one layout (single, sentinel or cluster), each address host:port, the
// TLS client certificate as a pair.
func (r Redis) validate(add func(key, format string, a ...any)) {
	addrs := func(key string, as []string) {
		for i, a := range as {
			if err := hostPort(a); err != nil {
				add(fmt.Sprintf("%s[%d]", key, i), "want host:port, got %q (%v)", a, err)
			}
		}
	}
	sentinel := r.Sentinel.MasterName != "" || len(r.Sentinel.Addrs) > 0
	cluster := len(r.Cluster.Addrs) > 0
	switch {
	case sentinel && cluster:
		add("redis.cluster.addrs", "redis.sentinel and redis.cluster exclude each other: a Cluster does its own failover, Sentinel watches one master")
	case sentinel:
		if r.Sentinel.MasterName == "" {
			add("redis.sentinel.master_name", "name the master the sentinels watch (their `sentinel monitor <name> …`)")
		}
		if len(r.Sentinel.Addrs) == 0 {
			add("redis.sentinel.addrs", "list the sentinels, host:port each (26379 by default)")
		}
		addrs("redis.sentinel.addrs", r.Sentinel.Addrs)
	case cluster:
		addrs("redis.cluster.addrs", r.Cluster.Addrs)
		if r.DB != 0 {
			add("redis.db", "a Redis Cluster has only database 0, got %d", r.DB)
		}
	default:
		if err := hostPort(r.Addr); err != nil {
			add("redis.addr", "want host:port, got %q (%v)", r.Addr, err)
		}
	}
	if r.DB < 0 || r.DB > 15 {
		add("redis.db", "want 0..15, got %d", r.DB)
	}
	if !sentinel && (r.Sentinel.Username != "" || r.Sentinel.Password != "") {
		add("redis.sentinel.password", "set without redis.sentinel.master_name and .addrs")
	}
	if (r.TLS.CertFile == "") != (r.TLS.KeyFile == "") {
		if r.TLS.CertFile == "" {
			add("redis.tls.cert_file", "redis.tls.key_file is set: the client certificate needs both")
		} else {
			add("redis.tls.key_file", "redis.tls.cert_file is set: the client certificate needs both")
		}
	}
}

// validateLive checks where the live playlist lives (playlist.live and its keys).
func (c *Config) validateLive(add func(key, format string, a ...any)) {
	p := c.Playlist
	switch p.Live {
	case "bucket":
		return
	case "served":
	default:
		add("playlist.live", "want bucket or served, got %q", p.Live)
		return
	}
	if !strings.HasPrefix(p.LivePath, "/") || !strings.HasSuffix(p.LivePath, "/") || strings.ContainsAny(p.LivePath, "?#{}") {
		add("playlist.live_path", "want a URL path starting and ending with /, such as /live/, got %q", p.LivePath)
	} else if notify := c.Warm.NotifyPath; notify != "" && strings.HasPrefix(notify, p.LivePath) {
		add("playlist.live_path", "%q would take warm.notify_path's requests (%q): choose paths that do not overlap", p.LivePath, notify)
	}
	if p.SegmentURL != "" {
		u, err := url.Parse(p.SegmentURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			add("playlist.segment_url", "want an http(s) URL without query, such as https://cdn.example.com/live, got %q", p.SegmentURL)
		}
	}
}
