// Package settings reads srs-offload's YAML config into plain values: the keys and their
// defaults (each default has its home in Default), ${VAR} expansion, and the problems, each named
// by the key that holds it (`storage.bucket: required`) and all reported at once. It imports no
// package of srs-offload: cmd/srs-offload's build turns these values into the other packages'.
package settings

import (
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole file. The yaml tags are the operator-facing key names.
type Config struct {
	Listen    string    `yaml:"listen"`
	Admin     Admin     `yaml:"admin"`
	Node      string    `yaml:"node"`
	Log       Log       `yaml:"log"`
	Redis     Redis     `yaml:"redis"`
	Queue     Queue     `yaml:"queue"`
	Roots     []string  `yaml:"roots"`
	Hooks     Hooks     `yaml:"hooks"`
	Storage   Storage   `yaml:"storage"`
	Keys      Keys      `yaml:"keys"`
	Purge     Purge     `yaml:"purge"`
	Spool     Spool     `yaml:"spool"`
	Reconcile Reconcile `yaml:"reconcile"`
	Playlist  Playlist  `yaml:"playlist"`
	Warm      Warm      `yaml:"warm"`
	Worker    Worker    `yaml:"worker"`
	Post      Post      `yaml:"post"`
	Debug     Debug     `yaml:"debug"`
}

type Log struct {
	Format string `yaml:"format"` // text | json
	Level  string `yaml:"level"`  // debug | info | warn | error
}

// Queue says whose queues a process's tasks go to.
type Queue struct {
	// Scope is "node" (the files are on this host's disk: the node's queues, hls@<node>) or
	// "shared:<name>" (the one root is a volume several hosts mount: the volume's queues,
	// hls@shared:<name>, which every worker mounting it takes).
	Scope string `yaml:"scope"`
}

// Redis is where the queue and the playlist ledger live: one server at addr (the default), a
// master found through Sentinel (sentinel.master_name set), or a Cluster (cluster.addrs set).
// The three are exclusive; package redisconn turns this into clients.
type Redis struct {
	Addr string `yaml:"addr"`
	// Username is the ACL user (Redis 6+); empty: the default user.
	Username string        `yaml:"username"`
	Password string        `yaml:"password"`
	DB       int           `yaml:"db"`
	TLS      RedisTLS      `yaml:"tls"`
	Sentinel RedisSentinel `yaml:"sentinel"`
	Cluster  RedisCluster  `yaml:"cluster"`
}

// RedisTLS turns TLS on towards Redis (and its sentinels). Enabled alone trusts the system's
// CAs; ca_file trusts that CA instead; cert_file with key_file is the client certificate.
type RedisTLS struct {
	Enabled    bool   `yaml:"enabled"`
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// On is whether TLS is used: enabled, or any of its files or server_name set.
func (t RedisTLS) On() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != ""
}

// RedisSentinel finds the master through Sentinel. Username and Password are the sentinels'
// own; redis.username and redis.password are the master's and replicas'.
type RedisSentinel struct {
	MasterName string   `yaml:"master_name"`
	Addrs      []string `yaml:"addrs"`
	Username   string   `yaml:"username"`
	Password   string   `yaml:"password"`
}

// RedisCluster is a Redis Cluster, reached through any of its nodes (seed addresses).
type RedisCluster struct {
	Addrs []string `yaml:"addrs"`
}

// Topology names the layout: "single", "sentinel" or "cluster".
func (r Redis) Topology() string {
	switch {
	case r.Sentinel.MasterName != "" || len(r.Sentinel.Addrs) > 0:
		return "sentinel"
	case len(r.Cluster.Addrs) > 0:
		return "cluster"
	}
	return "single"
}

// Admin is the listener for metrics, health and profiling, apart from the hooks.
type Admin struct {
	// Listen is host:port of /metrics, /healthz, /readyz and /debug/pprof/; empty turns it off.
	Listen string `yaml:"listen"`
	// Token, when set, must be given as "Authorization: Bearer …" or ?token=… on every request.
	Token string `yaml:"token"`
	// Monitor serves asynq's web UI (asynqmon) under /monitor/: off, read-only (see the queues
	// and tasks; every change is refused 403) or read-write (delete, run, archive tasks, pause
	// queues from the UI).
	Monitor string `yaml:"monitor"`
}

type Hooks struct {
	Token string `yaml:"token"`
	// Timeout bounds the durable enqueue behind one hook; SRS waits 30 s at most.
	EnqueueTimeout time.Duration `yaml:"enqueue_timeout"`
	// ReadTimeout bounds reading one whole request, headers and body: a client that trickles
	// its bytes is cut off after it. SRS sends its < 1 KiB at once.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout closes a kept-alive connection that sends no new request.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxConns caps the open connections on listen; further ones wait in the kernel's backlog
	// until one closes.
	MaxConns int `yaml:"max_conns"`
}

type Storage struct {
	// Provider picks the provider's preset (addressing, endpoint from the region, verification,
	// signing): aws, gcs, r2, wasabi, linode, digitalocean, b2, oss, cos, minio or generic; empty
	// detects it from the endpoint's host (no endpoint: aws).
	Provider  string `yaml:"provider"`
	Endpoint  string `yaml:"endpoint"`
	Region    string `yaml:"region"`
	Bucket    string `yaml:"bucket"`
	PathStyle *bool  `yaml:"path_style"` // nil: the provider's own
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	Prefix    string `yaml:"prefix"`
	// Files at least this big are uploaded in parts of PartSize.
	MultipartThreshold Size `yaml:"multipart_threshold"`
	PartSize           Size `yaml:"part_size"`
	// PartConcurrency is how many parts of one file are in flight at once.
	PartConcurrency int `yaml:"part_concurrency"`

	// Object options (see StorageObjects).
	StorageClass       string            `yaml:"storage_class"`
	StorageClassHLS    string            `yaml:"storage_class_hls"`
	StorageClassDVR    string            `yaml:"storage_class_dvr"`
	Tags               map[string]string `yaml:"tags"`
	Metadata           map[string]string `yaml:"metadata"`
	ContentDisposition string            `yaml:"content_disposition"`
	ACL                string            `yaml:"acl"`

	// Credentials beyond access_key/secret_key, through the SDK's own providers.
	SessionToken         string `yaml:"session_token"`
	Profile              string `yaml:"profile"`
	RoleARN              string `yaml:"role_arn"`
	ExternalID           string `yaml:"external_id"`
	SessionName          string `yaml:"session_name"`
	WebIdentityTokenFile string `yaml:"web_identity_token_file"`
	STSEndpoint          string `yaml:"sts_endpoint"`

	// Verify is how an upload is proven before its file is deleted: auto, md5, checksum or size.
	Verify string `yaml:"verify"`
	// Checksum is the algorithm of verify checksum: crc32c, crc64nvme or sha256.
	Checksum string `yaml:"checksum"`
	// SSE is the server-side encryption srs-offload asks for: "" (the bucket's default),
	// AES256 (SSE-S3) or aws:kms (SSE-KMS).
	SSE string `yaml:"sse"`
	// KMSKeyID is the KMS key of aws:kms; empty: the account's default key.
	KMSKeyID string `yaml:"kms_key_id"`
	// BucketKey asks for an S3 Bucket Key with aws:kms.
	BucketKey bool `yaml:"bucket_key"`
	// SSECKeyEnv names the environment variable holding the SSE-C key (32 bytes, or their base64);
	// the key itself is never in the config file.
	SSECKeyEnv string `yaml:"sse_c_key_env"`
}

type Keys struct {
	HLS      string `yaml:"hls"`
	Playlist string `yaml:"playlist"`
	DVR      string `yaml:"dvr"`
}

type Purge struct {
	Enabled bool `yaml:"enabled"`
}

// Spool protects hooked files from SRS's own cleanup (see package spool).
type Spool struct {
	Enabled bool `yaml:"enabled"`
	// Dir is the folder created in each root for the hard links.
	Dir string `yaml:"dir"`
}

// Reconcile finds files whose hook never came (see package reconcile).
type Reconcile struct {
	Enabled bool `yaml:"enabled"`
	// Interval is the time between full scans of the roots (there is one at start too).
	Interval time.Duration `yaml:"interval"`
	// MinAge leaves a file younger than this to its hook.
	MinAge time.Duration `yaml:"min_age"`
	// Watch adds an fsnotify watcher, the fast path between scans.
	Watch bool `yaml:"watch"`
	// HLSTSFile and DVRPath are SRS's hls_ts_file and dvr_path templates relative to their root:
	// they give a found file the key variables its hook would have given.
	HLSTSFile []string `yaml:"hls_ts_file"`
	DVRPath   []string `yaml:"dvr_path"`
	// HLSM3U8File are SRS's hls_m3u8_file templates relative to the root: SRS's playlist on disk
	// gives a found segment its seq_no and duration, and its name the playlist key.
	HLSM3U8File []string `yaml:"hls_m3u8_file"`
}

// Warm configures CDN warming from SRS's on_hls_notify (see package warm). It is off without
// targets.
type Warm struct {
	// NotifyPath is the path of SRS's on_hls_notify URL: {app} {stream} {server_id} {service_id}
	// one segment each, {ts_url} the rest.
	NotifyPath string `yaml:"notify_path"`
	// Folder names the m3u8 folder of a stream no on_hls was seen for ([ts_url] is relative to it).
	Folder string `yaml:"folder"`
	// Wait is how long a notify waits for its segment to be stored.
	Wait time.Duration `yaml:"wait"`
	// OnUpload warms every segment right after its upload, without on_hls_notify.
	OnUpload bool         `yaml:"on_upload"`
	Targets  []WarmTarget `yaml:"targets"`
}

// WarmTarget is one CDN to warm.
type WarmTarget struct {
	Name        string            `yaml:"name"`
	URL         string            `yaml:"url"`
	Method      string            `yaml:"method"`
	Body        string            `yaml:"body"`
	Headers     map[string]string `yaml:"headers"`
	Edges       []string          `yaml:"edges"`
	Timeout     time.Duration     `yaml:"timeout"`
	Retries     int               `yaml:"retries"`
	Concurrency int               `yaml:"concurrency"`
}

// Playlist shapes the HLS playlists srs-offload writes to storage (see package playlist).
type Playlist struct {
	// Enabled: when false, srs-offload writes no playlists and keeps no ledger: it only archives
	// segments (for operators who serve HLS from SRS itself).
	Enabled bool `yaml:"enabled"`
	// Window is how much media the live playlist holds, like SRS's hls_window.
	Window time.Duration `yaml:"window"`
	// Stall is how long the live playlist waits for a segment still uploading before it leaves it
	// out with a discontinuity (the VoD playlist still gets it).
	Stall time.Duration `yaml:"stall"`
	// VODKey names each publish session's VoD playlist; empty writes none. Variables: those of
	// keys plus {client_id} {stream_id} {session}.
	VODKey string `yaml:"vod_key"`
	// VODWait is how long an ended session waits for its segments still in flight.
	VODWait time.Duration `yaml:"vod_wait"`
	// Idle ends a session that has had no segment for this long (its on_unpublish was lost).
	Idle time.Duration `yaml:"idle"`
	// EndLive adds EXT-X-ENDLIST to the live playlist when a session ends.
	EndLive bool `yaml:"end_live"`
	// Retain is how long an ended session's records stay in Redis.
	Retain time.Duration `yaml:"retain"`
	// PublishInterval keeps uploads of one stream's live playlist at least this far apart:
	// segments stored within it (a burst, a backlog draining) go up in one upload at its end. A
	// segment after a quiet spell goes up at once. 0 uploads on every change.
	PublishInterval time.Duration `yaml:"publish_interval"`
	// Live is where the live playlist lives: "bucket" (an object, written on every change) or
	// "served" (srs-offload's hook listener serves it from the ledger under LivePath: no playlist
	// PUT per segment; the VoD playlists still go to the bucket).
	Live string `yaml:"live"`
	// LivePath is the URL path the served live playlists are under: LivePath + the playlist key.
	LivePath string `yaml:"live_path"`
	// SegmentURL, when set, names segments in served live playlists by absolute URL: SegmentURL +
	// "/" + the object key. Empty: relative, as in the bucket's playlists.
	SegmentURL string `yaml:"segment_url"`
}

type Worker struct {
	Concurrency     int           `yaml:"concurrency"`
	MaxRetry        int           `yaml:"max_retry"`
	RetryBase       time.Duration `yaml:"retry_base"`
	RetryMax        time.Duration `yaml:"retry_max"`
	Timeout         time.Duration `yaml:"timeout"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Dedup is how long a finished task's identity is remembered, so a repeated hook for the same
	// file does not upload it again.
	Dedup time.Duration `yaml:"dedup"`
	// PollInterval is how often an idle worker looks for work (asynq polls).
	PollInterval time.Duration `yaml:"poll_interval"`
}

// Debug holds switches for looking inside a running process.
type Debug struct {
	// PProf serves net/http/pprof under /debug/pprof/ on admin.listen.
	PProf bool `yaml:"pprof"`
}

// Default returns the config with every default filled in.
func Default() Config {
	return Config{
		Listen: "127.0.0.1:8085",
		Admin:  Admin{Listen: "127.0.0.1:8086", Monitor: "read-only"},
		Log:    Log{Format: "text", Level: "info"},
		Redis:  Redis{Addr: "127.0.0.1:6379"},
		Queue:  Queue{Scope: "node"},
		Roots:  []string{"/usr/local/srs/objs/nginx/html"},
		Hooks:  Hooks{EnqueueTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, MaxConns: 4096},
		Storage: Storage{Region: "us-east-1", Bucket: "live", MultipartThreshold: 16 << 20, PartSize: 8 << 20, PartConcurrency: 4,
			ACL: "private", SessionName: "srs-offload", Verify: "auto", Checksum: "crc32c"},
		Keys:  Keys{HLS: "{url}", Playlist: "{m3u8_url}", DVR: "{app}/{stream}/{basename}"},
		Purge: Purge{Enabled: true},
		Spool: Spool{Enabled: true, Dir: ".srs-offload"},
		Reconcile: Reconcile{
			Enabled: true, Interval: 5 * time.Minute, MinAge: time.Minute, Watch: true,
			HLSTSFile: []string{"[app]/[stream]-[seq].ts", "[app]/[stream]/[2006][01][02]/[timestamp]-[seq].ts",
				"[app]/[stream]/[2006]/[01]/[02]/[15]/[timestamp]-[seq].ts", "[app]/[stream]/init.mp4"},
			DVRPath:     []string{"[app]/[stream].[timestamp].flv", "[app]/[stream]/[2006][01][02]/[timestamp].flv"},
			HLSM3U8File: []string{"[app]/[stream].m3u8"},
		},
		Warm: Warm{NotifyPath: "/api/v1/hls/{app}/{stream}/{ts_url}", Folder: "{app}", Wait: time.Minute},
		Playlist: Playlist{
			Enabled: true, Window: 60 * time.Second, Stall: 2 * time.Minute, VODKey: "{app}/{stream}/vod/{session}.m3u8",
			VODWait: 10 * time.Minute, Idle: 2 * time.Minute, Retain: 24 * time.Hour,
			PublishInterval: time.Second, Live: "bucket", LivePath: "/live/",
		},
		Worker: Worker{
			Concurrency: 16, MaxRetry: 25, RetryBase: 2 * time.Second, RetryMax: 5 * time.Minute,
			Timeout: 2 * time.Hour, ShutdownTimeout: 30 * time.Second, Dedup: 10 * time.Minute,
			PollInterval: 20 * time.Millisecond,
		},
		Post:  defaultPost(),
		Debug: Debug{PProf: false},
	}
}

// Load reads a file over the defaults. In values, ${VAR} is replaced from the environment, so
// secrets can stay out of the file; a bare $ is kept as it is (passwords may hold one), and a
// variable that is not set is an error naming its key. An unknown key is an error.
func Load(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return Parse(raw)
}

// Parse is Load without the file.
func Parse(raw []byte) (Config, error) {
	cfg := Default()
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if len(doc.Content) == 0 {
		return cfg, nil
	}
	if top := doc.Content[0]; top.Kind != yaml.MappingNode && top.ShortTag() != "!!null" {
		return cfg, fmt.Errorf("config: line %d: the file must be a mapping of keys (listen: …, roots: …), not %s", top.Line, top.ShortTag())
	}
	var problems Errors
	decode(doc.Content[0], reflect.ValueOf(&cfg).Elem(), "", &problems)
	if len(problems) > 0 {
		return cfg, problems
	}
	return cfg, nil
}

// Problem is one bad key.
type Problem struct {
	Key string
	Msg string
}

func (p Problem) Error() string { return p.Key + ": " + p.Msg }

// Errors is every problem found in a config.
type Errors []Problem

func (e Errors) Error() string {
	s := make([]string, len(e))
	for i, p := range e {
		s[i] = p.Error()
	}
	return "config: " + strings.Join(s, "; ")
}

// Has reports whether a problem names key.
func (e Errors) Has(key string) bool {
	for _, p := range e {
		if p.Key == key {
			return true
		}
	}
	return false
}

// AsErrors returns the problems inside err, if it holds any.
func AsErrors(err error) (Errors, bool) {
	var e Errors
	ok := errors.As(err, &e)
	return e, ok
}

// decode walks a mapping node next to the struct it fills, so that every problem (an unknown key,
// a value of the wrong type) is reported by its dotted key name.
func decode(n *yaml.Node, v reflect.Value, prefix string, out *Errors) {
	if n.Kind == yaml.SequenceNode && v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct {
		// A list of structs (warm.targets): each element key by key, as warm.targets[0].url.
		v.Set(reflect.Zero(v.Type())) // an empty list is none
		if len(n.Content) > 0 {
			v.Set(reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content)))
		}
		for i, el := range n.Content {
			decode(el, v.Index(i), fmt.Sprintf("%s[%d].", strings.TrimSuffix(prefix, "."), i), out)
		}
		return
	}
	if n.Kind != yaml.MappingNode || v.Kind() != reflect.Struct {
		key := strings.TrimSuffix(prefix, ".")
		var empty []emptyExpansion
		if err := expandEnv(n, key, &empty); err != nil {
			*out = append(*out, Problem{key, err.Error()})
			return
		}
		bad := false
		for _, e := range empty {
			if isSecret(e.key) {
				*out = append(*out, Problem{e.key, fmt.Sprintf("${%s} expanded to an empty value (%q), which would turn this secret off: set the variable, or write \"\" (or leave the key out) to mean none",
					strings.Join(e.vars, "}, ${"), e.value)})
				bad = true
			}
		}
		if bad {
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			*out = append(*out, Problem{strings.TrimSuffix(prefix, "."), cleanYAMLError(err)})
		}
		return
	}
	t := v.Type()
	fields := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		idx, ok := fields[k.Value]
		if !ok {
			name := k.Value
			if name == "" {
				name = `""` // an empty or non-scalar key still names its place
			}
			*out = append(*out, Problem{prefix + name, fmt.Sprintf("unknown key (line %d)", k.Line)})
			continue
		}
		decode(val, v.Field(idx), prefix+k.Value+".", out)
	}
}

var envVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// secretKeys are the keys whose empty value turns a protection off or changes which credentials
// are used; warm.targets[N].headers.* are secrets too (Authorization and the like).
var secretKeys = map[string]bool{
	"hooks.token": true, "admin.token": true, "storage.access_key": true, "storage.secret_key": true, "redis.password": true,
	"redis.sentinel.password": true,
	"storage.session_token":   true, "storage.external_id": true,
}

var headerKey = regexp.MustCompile(`^warm\.targets\[\d+\]\.headers\.`)

func isSecret(key string) bool { return secretKeys[key] || headerKey.MatchString(key) }

// emptyExpansion is a scalar at key that held ${VAR} and came out empty, null or ~.
type emptyExpansion struct {
	key, value string
	vars       []string
}

// expandEnv replaces ${VAR} in every scalar under n (comments and keys are left alone), n being
// the value of key. Each scalar that referred to a variable and came out as nothing (empty,
// YAML's null or ~) is added to empty: for a secret, that is an error rather than "none".
func expandEnv(n *yaml.Node, key string, empty *[]emptyExpansion) error {
	switch n.Kind {
	case yaml.ScalarNode:
		var missing, used []string
		before := n.Value
		n.Value = envVar.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := m[2 : len(m)-1]
			used = append(used, name)
			v, ok := os.LookupEnv(name)
			if !ok {
				missing = append(missing, name)
			}
			return v
		})
		if len(missing) > 0 {
			return fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
		}
		if len(used) > 0 {
			switch strings.TrimSpace(n.Value) {
			case "", "~", "null", "Null", "NULL":
				*empty = append(*empty, emptyExpansion{key: key, value: n.Value, vars: used})
			}
		}
		if n.Value != before && n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) == 0 {
			n.Tag = "" // a plain ${X} takes the type of what it expands to (db: ${DB} is an int)
		}
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := expandEnv(n.Content[i+1], key+"."+n.Content[i].Value, empty); err != nil {
				return err
			}
		}
		return nil
	}
	for i, c := range n.Content {
		if err := expandEnv(c, fmt.Sprintf("%s[%d]", key, i), empty); err != nil {
			return err
		}
	}
	return nil
}

// cleanYAMLError drops yaml's "yaml: unmarshal errors:" framing.
func cleanYAMLError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return err.Error()
}

// Size is a byte count written as 8388608, "8MiB" or "16MB".
type Size int64

func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSize reads a byte count with an optional KiB/MiB/GiB/KB/MB/GB suffix.
func ParseSize(v string) (Size, error) {
	v = strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}} {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q: want a byte count such as 8MiB", v)
	}
	return Size(n * mult), nil
}
