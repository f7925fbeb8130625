package settings_test

import (
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/settings"
)

func TestShippedConfigIsTheDefaults(t *testing.T) {
	cfg, err := settings.Load("../configs/srs-offload.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := settings.Default()
	// The shipped file points at a local MinIO; every other key is shown with its default.
	want.Storage.Endpoint = "http://127.0.0.1:9000"
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("shipped config differs from Default():\n got %+v\nwant %+v", cfg, want)
	}

	// Spot-check the values that matter most, so a change to Default() is a deliberate one.
	checks := []struct {
		key       string
		got, want any
	}{
		{"listen", cfg.Listen, "127.0.0.1:8085"},
		{"node", cfg.Node, ""},
		{"log.format", cfg.Log.Format, "text"},
		{"log.level", cfg.Log.Level, "info"},
		{"redis.addr", cfg.Redis.Addr, "127.0.0.1:6379"},
		{"redis.db", cfg.Redis.DB, 0},
		{"roots", strings.Join(cfg.Roots, ","), "/usr/local/srs/objs/nginx/html"},
		{"hooks.token", cfg.Hooks.Token, ""},
		{"hooks.enqueue_timeout", cfg.Hooks.EnqueueTimeout, 5 * time.Second},
		{"hooks.read_timeout", cfg.Hooks.ReadTimeout, 5 * time.Second},
		{"hooks.idle_timeout", cfg.Hooks.IdleTimeout, 30 * time.Second},
		{"hooks.max_conns", cfg.Hooks.MaxConns, 4096},
		{"admin.listen", cfg.Admin.Listen, "127.0.0.1:8086"},
		{"admin.token", cfg.Admin.Token, ""},
		{"admin.monitor", cfg.Admin.Monitor, "read-only"},
		{"debug.pprof", cfg.Debug.PProf, false},
		{"storage.endpoint", cfg.Storage.Endpoint, "http://127.0.0.1:9000"},
		{"storage.region", cfg.Storage.Region, "us-east-1"},
		{"storage.bucket", cfg.Storage.Bucket, "live"},
		{"storage.provider", cfg.Storage.Provider, ""},
		{"storage.path_style unset (the provider's own)", cfg.Storage.PathStyle == nil, true},
		{"storage.access_key", cfg.Storage.AccessKey, ""},
		{"storage.secret_key", cfg.Storage.SecretKey, ""},
		{"storage.prefix", cfg.Storage.Prefix, ""},
		{"storage.multipart_threshold", cfg.Storage.MultipartThreshold, settings.Size(16 << 20)},
		{"storage.part_size", cfg.Storage.PartSize, settings.Size(8 << 20)},
		{"storage.part_concurrency", cfg.Storage.PartConcurrency, 4},
		{"storage.verify", cfg.Storage.Verify, "auto"},
		{"storage.checksum", cfg.Storage.Checksum, "crc32c"},
		{"keys.hls", cfg.Keys.HLS, "{url}"},
		{"keys.playlist", cfg.Keys.Playlist, "{m3u8_url}"},
		{"keys.dvr", cfg.Keys.DVR, "{app}/{stream}/{basename}"},
		{"purge.enabled", cfg.Purge.Enabled, true},
		{"worker.concurrency", cfg.Worker.Concurrency, 16},
		{"worker.max_retry", cfg.Worker.MaxRetry, 25},
		{"worker.retry_base", cfg.Worker.RetryBase, 2 * time.Second},
		{"worker.retry_max", cfg.Worker.RetryMax, 5 * time.Minute},
		{"worker.timeout", cfg.Worker.Timeout, 2 * time.Hour},
		{"worker.shutdown_timeout", cfg.Worker.ShutdownTimeout, 30 * time.Second},
		{"worker.dedup", cfg.Worker.Dedup, 10 * time.Minute},
		{"worker.poll_interval", cfg.Worker.PollInterval, 20 * time.Millisecond},
		{"spool.enabled", cfg.Spool.Enabled, true},
		{"spool.dir", cfg.Spool.Dir, ".srs-offload"},
		{"reconcile.enabled", cfg.Reconcile.Enabled, true},
		{"reconcile.min_age", cfg.Reconcile.MinAge, time.Minute},
		{"reconcile.watch", cfg.Reconcile.Watch, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.key, c.got, c.want)
		}
	}

	// With a root that exists, the shipped file is valid as it stands.
	cfg.Roots = []string{t.TempDir()}
	cfg.Node = "node1"
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestDefaultIsFresh(t *testing.T) {
	a, b := settings.Default(), settings.Default()
	a.Roots[0] = "/changed"
	if b.Roots[0] == "/changed" {
		t.Fatal("Default() shares state between calls")
	}
	if b.Storage.PathStyle != nil {
		t.Fatalf("storage.path_style defaults to %v, want unset (the provider's own addressing)", *b.Storage.PathStyle)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := settings.Load("testdata-does-not-exist.yaml"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not exist", err)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, doc := range []string{"", "\n", "# only a comment\n"} {
		cfg, err := settings.Parse([]byte(doc))
		if err != nil {
			t.Fatalf("Parse(%q): %v", doc, err)
		}
		if !reflect.DeepEqual(cfg, settings.Default()) {
			t.Errorf("Parse(%q) is not Default()", doc)
		}
	}
}

func TestParseOverrides(t *testing.T) {
	cfg, err := settings.Parse([]byte(`
listen: 0.0.0.0:9000
node: edge-1
roots: [/data/hls, /data/dvr]
storage:
  bucket: media
  path_style: false
  part_size: 10MiB
  multipart_threshold: 64MB
worker:
  timeout: 90m
  concurrency: 3
`))
	if err != nil {
		t.Fatal(err)
	}
	want := settings.Default()
	f := false
	want.Listen = "0.0.0.0:9000"
	want.Node = "edge-1"
	want.Roots = []string{"/data/hls", "/data/dvr"}
	want.Storage.Bucket = "media"
	want.Storage.PathStyle = &f
	want.Storage.PartSize = 10 << 20
	want.Storage.MultipartThreshold = 64e6
	want.Worker.Timeout = 90 * time.Minute
	want.Worker.Concurrency = 3
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		keys []string // every key that must be named
	}{
		{"unknown top-level key", "lisen: 1.2.3.4:5\n", []string{"lisen"}},
		{"unknown nested key", "storage: {bukket: x}\n", []string{"storage.bukket"}},
		{"unknown nested key, block style", "storage:\n  bucket: ok\n  bukket: x\n", []string{"storage.bukket"}},
		{"unknown deep key", "worker:\n  timeout: 1h\n  tiemout: 2h\n", []string{"worker.tiemout"}},
		{"redis.db not a number", "redis: {db: abc}\n", []string{"redis.db"}},
		{"worker.timeout not a duration", "worker: {timeout: forever}\n", []string{"worker.timeout"}},
		{"storage.part_size not a size", "storage: {part_size: lots}\n", []string{"storage.part_size"}},
		{"storage.multipart_threshold negative", "storage: {multipart_threshold: -1}\n", []string{"storage.multipart_threshold"}},
		{"purge.enabled not a bool", "purge: {enabled: sometimes}\n", []string{"purge.enabled"}},
		{"storage.path_style not a bool", "storage: {path_style: maybe}\n", []string{"storage.path_style"}},
		{"roots not a list", "roots: /data/hls\n", []string{"roots"}},
		{"section not a mapping", "storage: [a, b]\n", []string{"storage"}},
		{"listen a list", "listen: [a]\n", []string{"listen"}},
		{"all at once", "lisen: x\nredis: {db: abc, adr: y}\nworker: {timeout: forever}\nstorage: {part_size: lots, bukket: z}\n",
			[]string{"lisen", "redis.db", "redis.adr", "worker.timeout", "storage.part_size", "storage.bukket"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := settings.Parse([]byte(tc.doc))
			if err == nil {
				t.Fatal("no error")
			}
			errs, ok := settings.AsErrors(err)
			if !ok {
				t.Fatalf("error %v holds no settings.Errors", err)
			}
			for _, k := range tc.keys {
				if !errs.Has(k) {
					t.Errorf("no problem names %q; got %v", k, errs)
				}
			}
			if len(errs) != len(tc.keys) {
				t.Errorf("%d problems, want %d: %v", len(errs), len(tc.keys), errs)
			}
			for _, p := range errs {
				if p.Msg == "" || !strings.Contains(err.Error(), p.Key+": ") {
					t.Errorf("problem %+v is not spelled out in %q", p, err)
				}
			}
		})
	}
}

func TestParseUnknownKeyNamesLine(t *testing.T) {
	_, err := settings.Parse([]byte("listen: 127.0.0.1:1\n\nstorage:\n  bukket: x\n"))
	errs, ok := settings.AsErrors(err)
	if !ok || len(errs) != 1 {
		t.Fatalf("err = %v", err)
	}
	if errs[0].Key != "storage.bukket" || !strings.Contains(errs[0].Msg, "line 4") {
		t.Errorf("problem = %+v, want storage.bukket at line 4", errs[0])
	}
}

func TestParseSyntaxError(t *testing.T) {
	_, err := settings.Parse([]byte("storage: {bucket: x\n"))
	if err == nil {
		t.Fatal("no error for broken YAML")
	}
	if !strings.HasPrefix(err.Error(), "config: ") {
		t.Errorf("error %q does not say where it comes from", err)
	}
}

func TestParseExpandsEnv(t *testing.T) {
	t.Setenv("SRS_OFFLOAD_TEST_SECRET", "s3cr3t")
	t.Setenv("SRS_OFFLOAD_TEST_KEY", "AKIA123")
	t.Setenv("SRS_OFFLOAD_TEST_DB", "7")
	t.Setenv("SRS_OFFLOAD_TEST_PART", "6MiB")
	cfg, err := settings.Parse([]byte(`
# a comment may mention ${SRS_OFFLOAD_TEST_UNSET} without harm
redis:
  db: ${SRS_OFFLOAD_TEST_DB}
  password: pa$$word$SRS_OFFLOAD_TEST_KEY
storage:
  access_key: ${SRS_OFFLOAD_TEST_KEY}
  secret_key: "${SRS_OFFLOAD_TEST_SECRET}"
  part_size: ${SRS_OFFLOAD_TEST_PART}
  prefix: pre-${SRS_OFFLOAD_TEST_KEY}/
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.SecretKey != "s3cr3t" || cfg.Storage.AccessKey != "AKIA123" {
		t.Errorf("keys = %q, %q", cfg.Storage.AccessKey, cfg.Storage.SecretKey)
	}
	if cfg.Redis.DB != 7 || cfg.Storage.PartSize != 6<<20 || cfg.Storage.Prefix != "pre-AKIA123/" {
		t.Errorf("db %d, part_size %d, prefix %q", cfg.Redis.DB, cfg.Storage.PartSize, cfg.Storage.Prefix)
	}
	// A bare $ is kept: passwords may hold one.
	if cfg.Redis.Password != "pa$$word$SRS_OFFLOAD_TEST_KEY" {
		t.Errorf("password %q, want it unexpanded", cfg.Redis.Password)
	}
}

// A ${VAR} that is not set is an error naming its key, not a silent empty secret.
func TestParseUnsetEnvNamesKey(t *testing.T) {
	_, err := settings.Parse([]byte("storage:\n  secret_key: ${SRS_OFFLOAD_TEST_UNSET}\n"))
	probs, ok := settings.AsErrors(err)
	if !ok || !probs.Has("storage.secret_key") || !strings.Contains(err.Error(), "SRS_OFFLOAD_TEST_UNSET") {
		t.Fatalf("err = %v, want a problem at storage.secret_key naming the variable", err)
	}
}

func TestParseSize(t *testing.T) {
	good := []struct {
		in   string
		want settings.Size
	}{
		{"0", 0},
		{"123", 123},
		{"123B", 123},
		{"8388608", 8 << 20},
		{"8MiB", 8 << 20},
		{"8 MiB", 8 << 20},
		{" 16MiB ", 16 << 20},
		{"16MB", 16e6},
		{"4KiB", 4 << 10},
		{"4KB", 4000},
		{"5GiB", 5 << 30},
		{"2GB", 2e9},
		{"8589934591GiB", 8589934591 << 30},
	}
	for _, tc := range good {
		got, err := settings.ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	bad := []string{
		"", "lots", "MiB", "B", "-1", "-1MiB", "1.5MiB", "8mib", "8 M", "8TiB", "0x10", "1e6",
		"9223372036854775808",
		// These overflow int64 once multiplied out.
		"8589934592GiB", "17179869184GiB", "9223372036854775807KB",
	}
	for _, in := range bad {
		if got, err := settings.ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
	if got, err := settings.ParseSize("9223372036854775807"); err != nil || got != math.MaxInt64 {
		t.Errorf("ParseSize(max) = %d, %v", got, err)
	}
}

// valid returns a config that passes Validate.
func valid(t *testing.T) settings.Config {
	t.Helper()
	c := settings.Default()
	c.Roots = []string{t.TempDir()}
	c.Node = "node-1"
	return c
}

func TestValidateGood(t *testing.T) {
	c := valid(t)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	variants := []func(c *settings.Config){
		func(c *settings.Config) { c.Storage.Endpoint = "https://s3.example.com" },
		func(c *settings.Config) { c.Storage.AccessKey, c.Storage.SecretKey = "a", "b" },
		func(c *settings.Config) { c.Storage.PathStyle = nil },
		func(c *settings.Config) { c.Storage.Provider = "gcs" },
		func(c *settings.Config) { c.Storage.Provider = "digitalocean" },
		func(c *settings.Config) { c.Storage.PartSize, c.Storage.MultipartThreshold = 5<<20, 5<<20 },
		func(c *settings.Config) { c.Storage.PartSize = 5 << 30; c.Storage.MultipartThreshold = 5 << 30 },
		func(c *settings.Config) { c.Hooks.EnqueueTimeout = 29 * time.Second },
		func(c *settings.Config) { c.Log.Format, c.Log.Level = "json", "debug" },
		func(c *settings.Config) { c.Redis.DB = 15 },
		func(c *settings.Config) { c.Listen = ":8085" },
		func(c *settings.Config) { c.Keys.DVR = "dvr/{vhost}/{path}" },
		func(c *settings.Config) { c.Worker.MaxRetry = 0; c.Worker.ShutdownTimeout = time.Second },
		func(c *settings.Config) { c.Roots = append(c.Roots, t.TempDir()) },
	}
	for i, v := range variants {
		c := valid(t)
		v(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("variant %d: %v", i, err)
		}
	}
}

// The problems only the packages using a value can judge (node, roots, templates, the spool
// folder, warm targets) are cmd/srs-offload's compile's: see its build_test.go.
func TestValidateEachProblem(t *testing.T) {
	tests := []struct {
		key    string
		mutate func(c *settings.Config)
	}{
		{"listen", func(c *settings.Config) { c.Listen = "8085" }},
		{"listen", func(c *settings.Config) { c.Listen = "" }},
		{"log.format", func(c *settings.Config) { c.Log.Format = "xml" }},
		{"log.level", func(c *settings.Config) { c.Log.Level = "trace" }},
		{"redis.addr", func(c *settings.Config) { c.Redis.Addr = "localhost" }},
		{"storage.provider", func(c *settings.Config) { c.Storage.Provider = "s4" }},
		{"storage.provider", func(c *settings.Config) { c.Storage.Provider = "GCS" }},
		{"redis.db", func(c *settings.Config) { c.Redis.DB = 16 }},
		{"redis.db", func(c *settings.Config) { c.Redis.DB = -1 }},
		{"roots", func(c *settings.Config) { c.Roots = nil }},
		{"hooks.enqueue_timeout", func(c *settings.Config) { c.Hooks.EnqueueTimeout = 30 * time.Second }},
		{"hooks.enqueue_timeout", func(c *settings.Config) { c.Hooks.EnqueueTimeout = time.Minute }},
		{"hooks.enqueue_timeout", func(c *settings.Config) { c.Hooks.EnqueueTimeout = 0 }},
		{"hooks.read_timeout", func(c *settings.Config) { c.Hooks.ReadTimeout = 0 }},
		{"hooks.read_timeout", func(c *settings.Config) { c.Hooks.ReadTimeout = 30 * time.Second }},
		{"hooks.idle_timeout", func(c *settings.Config) { c.Hooks.IdleTimeout = 0 }},
		{"hooks.max_conns", func(c *settings.Config) { c.Hooks.MaxConns = 0 }},
		{"hooks.max_conns", func(c *settings.Config) { c.Hooks.MaxConns = 1<<20 + 1 }},
		{"admin.listen", func(c *settings.Config) { c.Admin.Listen = "8086" }},
		{"admin.listen", func(c *settings.Config) { c.Admin.Listen = c.Listen }},
		{"debug.pprof", func(c *settings.Config) { c.Admin.Listen, c.Debug.PProf = "", true }},
		{"admin.monitor", func(c *settings.Config) { c.Admin.Monitor = "readonly" }},
		{"admin.monitor", func(c *settings.Config) { c.Admin.Listen, c.Admin.Monitor = "", "read-write" }},
		{"storage.endpoint", func(c *settings.Config) { c.Storage.Endpoint = "127.0.0.1:9000" }},
		{"storage.endpoint", func(c *settings.Config) { c.Storage.Endpoint = "ftp://host" }},
		{"storage.endpoint", func(c *settings.Config) { c.Storage.Endpoint = "http://" }},
		{"storage.region", func(c *settings.Config) { c.Storage.Region = "" }},
		{"storage.bucket", func(c *settings.Config) { c.Storage.Bucket = "" }},
		{"storage.access_key", func(c *settings.Config) { c.Storage.AccessKey = "AKIA" }},
		{"storage.access_key", func(c *settings.Config) { c.Storage.SecretKey = "s3cr3t" }},
		{"storage.part_size", func(c *settings.Config) { c.Storage.PartSize = 5<<20 - 1 }},
		{"storage.part_size", func(c *settings.Config) { c.Storage.PartSize, c.Storage.MultipartThreshold = 5<<30+1, 6<<30 }},
		{"storage.multipart_threshold", func(c *settings.Config) { c.Storage.MultipartThreshold = c.Storage.PartSize - 1 }},
		{"storage.part_concurrency", func(c *settings.Config) { c.Storage.PartConcurrency = 0 }},
		{"storage.part_concurrency", func(c *settings.Config) { c.Storage.PartConcurrency = 65 }},
		{"storage.verify", func(c *settings.Config) { c.Storage.Verify = "etag" }},
		{"storage.checksum", func(c *settings.Config) { c.Storage.Checksum = "crc32" }},
		{"worker.concurrency", func(c *settings.Config) { c.Worker.Concurrency = 0 }},
		{"worker.concurrency", func(c *settings.Config) { c.Worker.Concurrency = 1025 }},
		{"worker.max_retry", func(c *settings.Config) { c.Worker.MaxRetry = -1 }},
		{"worker.retry_base", func(c *settings.Config) { c.Worker.RetryBase, c.Worker.RetryMax = 0, time.Second }},
		{"worker.retry_max", func(c *settings.Config) { c.Worker.RetryMax = time.Second }},
		{"worker.timeout", func(c *settings.Config) { c.Worker.Timeout = 0 }},
		{"worker.shutdown_timeout", func(c *settings.Config) { c.Worker.ShutdownTimeout = -time.Second }},
		{"worker.shutdown_timeout", func(c *settings.Config) { c.Worker.ShutdownTimeout = 0 }},
		{"worker.dedup", func(c *settings.Config) { c.Worker.Dedup = time.Second - 1 }},
		{"worker.poll_interval", func(c *settings.Config) { c.Worker.PollInterval = 0 }},
		{"worker.poll_interval", func(c *settings.Config) { c.Worker.PollInterval = 6 * time.Second }},
		{"reconcile.min_age", func(c *settings.Config) { c.Reconcile.MinAge = 0 }},
		{"reconcile.interval", func(c *settings.Config) { c.Reconcile.Interval = -time.Second }},
		{"playlist.live", func(c *settings.Config) { c.Playlist.Live = "cdn" }},
		{"playlist.publish_interval", func(c *settings.Config) { c.Playlist.PublishInterval = -time.Second }},
		{"playlist.publish_interval", func(c *settings.Config) { c.Playlist.PublishInterval = time.Minute }},
		{"playlist.live_path", func(c *settings.Config) { c.Playlist.Live, c.Playlist.LivePath = "served", "live" }},
		{"playlist.live_path", func(c *settings.Config) { c.Playlist.Live, c.Playlist.LivePath = "served", "/api/" }},
		{"playlist.segment_url", func(c *settings.Config) { c.Playlist.Live, c.Playlist.SegmentURL = "served", "cdn.example.com/live" }},
		{"playlist.segment_url", func(c *settings.Config) { c.Playlist.Live, c.Playlist.SegmentURL = "served", "https://cdn/x?sig=1" }},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			c := valid(t)
			tc.mutate(&c)
			err := c.Validate()
			errs, ok := settings.AsErrors(err)
			if !ok {
				t.Fatalf("Validate = %v, want settings.Errors", err)
			}
			if len(errs) != 1 || !errs.Has(tc.key) {
				t.Fatalf("problems %v, want exactly one for %q", errs, tc.key)
			}
			if !strings.Contains(err.Error(), tc.key+": ") {
				t.Errorf("error %q does not name %q", err, tc.key)
			}
		})
	}
}

func TestValidateFillsNodeFromHostname(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	c := valid(t)
	c.Node = ""
	if err := c.Validate(); err != nil && !strings.ContainsAny(host, "{}@ \t\n") {
		t.Fatalf("Validate: %v", err)
	}
	if c.Node != host {
		t.Fatalf("node = %q, want the hostname %q", c.Node, host)
	}
	// A node that is set is kept.
	c = valid(t)
	if err := c.Validate(); err != nil || c.Node != "node-1" {
		t.Fatalf("node = %q, %v", c.Node, err)
	}
}

func TestErrors(t *testing.T) {
	errs := settings.Errors{{Key: "a.b", Msg: "bad"}, {Key: "c", Msg: "worse"}}
	if got := errs.Error(); got != "config: a.b: bad; c: worse" {
		t.Errorf("Error() = %q", got)
	}
	if !errs.Has("c") || errs.Has("a") || errs.Has("b") {
		t.Error("Has matches wrongly")
	}
	wrapped := errors.Join(errors.New("loading"), errs)
	got, ok := settings.AsErrors(wrapped)
	if !ok || len(got) != 2 {
		t.Errorf("AsErrors(wrapped) = %v, %v", got, ok)
	}
	if _, ok := settings.AsErrors(errors.New("plain")); ok {
		t.Error("AsErrors found problems in a plain error")
	}
	if _, ok := settings.AsErrors(nil); ok {
		t.Error("AsErrors(nil)")
	}
}

// Keys inside a list of structs are checked too, and named with their index.
func TestWarmTargetsKeys(t *testing.T) {
	_, err := settings.Parse([]byte("warm:\n  targets:\n    - url: http://cdn/{key}\n    - urll: x\n"))
	probs, ok := settings.AsErrors(err)
	if !ok || !probs.Has("warm.targets[1].urll") {
		t.Fatalf("err = %v, want a problem at warm.targets[1].urll", err)
	}
}
