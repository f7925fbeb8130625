package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/settings"
)

// validConfig returns a config that compiles.
func validConfig(t *testing.T) settings.Config {
	t.Helper()
	c := settings.Default()
	c.Roots = []string{t.TempDir()}
	c.Node = "node-1"
	return c
}

func TestCompileGood(t *testing.T) {
	for i, v := range []func(c *settings.Config){
		func(c *settings.Config) {},
		func(c *settings.Config) { c.Keys.DVR = "dvr/{vhost}/{path}" },
		func(c *settings.Config) { c.Roots = append(c.Roots, t.TempDir()) },
		func(c *settings.Config) { c.Queue.Scope = "shared:vol" },
		func(c *settings.Config) {
			c.Warm.Targets = []settings.WarmTarget{{URL: "https://cdn.example.com/{key}"}}
		},
	} {
		c := validConfig(t)
		v(&c)
		p, err := compile(c)
		if err != nil {
			t.Errorf("variant %d: %v", i, err)
			continue
		}
		if p.layout == nil || p.spool == nil || p.vodKey == nil || len(p.roots.Dirs()) != len(c.Roots) {
			t.Errorf("variant %d: plan incomplete: %+v", i, p)
		}
		p.close()
	}
}

// Every problem compile finds beyond settings.Validate names its key, alone.
func TestCompileEachProblem(t *testing.T) {
	missing := t.TempDir() + "/missing"
	file := t.TempDir() + "/file"
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	target := func(url string) []settings.WarmTarget { return []settings.WarmTarget{{URL: url}} }
	tests := []struct {
		key    string
		mutate func(c *settings.Config)
	}{
		{"node", func(c *settings.Config) { c.Node = "edge{1}" }},
		{"node", func(c *settings.Config) { c.Node = "a@b" }},
		{"node", func(c *settings.Config) { c.Node = "a b" }},
		{"node", func(c *settings.Config) { c.Node = "shared:vol" }},
		{"queue.scope", func(c *settings.Config) { c.Queue.Scope = "cluster" }},
		{"queue.scope", func(c *settings.Config) { c.Queue.Scope = "shared:" }},
		{"queue.scope", func(c *settings.Config) { c.Queue.Scope = "shared:a@b" }},
		{"queue.scope", func(c *settings.Config) { c.Queue.Scope, c.Roots = "shared:vol", append(c.Roots, t.TempDir()) }},
		{"roots[0]", func(c *settings.Config) { c.Roots = []string{missing} }},
		{"roots[1]", func(c *settings.Config) { c.Roots = append(c.Roots, file) }},
		{"roots[1]", func(c *settings.Config) { c.Roots = append(c.Roots, "relative/dir") }},
		{"keys.hls", func(c *settings.Config) { c.Keys.HLS = "{uri}" }},
		{"keys.hls", func(c *settings.Config) { c.Keys.HLS = "{url" }},
		{"keys.playlist", func(c *settings.Config) { c.Keys.Playlist = "" }},
		{"keys.dvr", func(c *settings.Config) { c.Keys.DVR = "{app}}" }},
		{"playlist.vod_key", func(c *settings.Config) { c.Playlist.VODKey = "{nope}" }},
		{"spool.dir", func(c *settings.Config) { c.Spool.Dir = "a/b" }},
		{"spool.dir", func(c *settings.Config) { c.Spool.Dir = ".." }},
		{"reconcile.hls_ts_file[1]", func(c *settings.Config) { c.Reconcile.HLSTSFile = []string{"[app]/[seq].ts", "[app]/[nope].ts"} }},
		{"reconcile.dvr_path[0]", func(c *settings.Config) { c.Reconcile.DVRPath = []string{"/abs/[app].flv"} }},
		{"reconcile.hls_m3u8_file[0]", func(c *settings.Config) { c.Reconcile.HLSM3U8File = []string{"[app]/[seq].m3u8"} }},
		{"reconcile.hls_m3u8_file[1]", func(c *settings.Config) { c.Reconcile.HLSM3U8File = []string{"[app]/[stream].m3u8", "live.ts"} }},
		{"warm.targets[0]", func(c *settings.Config) { c.Warm.Targets = target("ftp://cdn/{key}") }},
		{"warm.notify_path", func(c *settings.Config) {
			c.Warm.Targets, c.Warm.NotifyPath = target("https://cdn.example.com/{key}"), "/api/{nope}"
		}},
		{"warm.folder", func(c *settings.Config) {
			c.Warm.Targets, c.Warm.Folder = target("https://cdn.example.com/{key}"), "{app"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			c := validConfig(t)
			tc.mutate(&c)
			p, err := compile(c)
			errs, ok := settings.AsErrors(err)
			if !ok {
				if p != nil {
					p.close()
				}
				t.Fatalf("compile = %v, want settings.Errors", err)
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

// settings' problems and compile's come out together, each once.
func TestCompileReportsAllAtOnce(t *testing.T) {
	c := validConfig(t)
	c.Listen = "nope"
	c.Node = "edge{1}"
	c.Log.Format = "xml"
	c.Roots = []string{t.TempDir() + "/missing", t.TempDir()}
	c.Hooks.EnqueueTimeout = 30 * time.Second
	c.Storage.Bucket = ""
	c.Storage.AccessKey = "AKIA"
	c.Storage.PartSize = 1 << 20
	c.Storage.MultipartThreshold = 512 << 10
	c.Keys.HLS = "{bad}"
	c.Keys.DVR = "{app}\xff" // not UTF-8: settings' problem, not judged again
	c.Worker.Concurrency = 0
	_, err := compile(c)
	errs, ok := settings.AsErrors(err)
	if !ok {
		t.Fatalf("compile = %v", err)
	}
	want := []string{
		"listen", "node", "log.format", "roots[0]", "hooks.enqueue_timeout", "storage.bucket",
		"storage.access_key", "storage.part_size", "storage.multipart_threshold", "keys.hls", "keys.dvr",
		"worker.concurrency",
	}
	for _, k := range want {
		if !errs.Has(k) {
			t.Errorf("no problem for %q", k)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("%d problems, want %d: %v", len(errs), len(want), errs)
	}
	if errs.Has("roots[1]") {
		t.Error("the good root was reported")
	}
}

// playlist.stall has one default: the config's. The ledger's fallback (for callers that give none)
// must say the same, or a test of the ledger would not test what a process runs.
func TestStallDefaultOneValue(t *testing.T) {
	if got, want := playlist.DefaultStall, settings.Default().Playlist.Stall; got != want {
		t.Fatalf("playlist.DefaultStall = %s, settings' playlist.stall default = %s", got, want)
	}
}

// queue.scope shared:<name> puts the tasks on the volume's queues, its spool links in a folder
// of this host's, and check says so.
func TestCompileSharedScope(t *testing.T) {
	c := validConfig(t)
	c.Queue.Scope = "shared:vol"
	p, err := compile(c)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if p.queueNode() != "shared:vol" || p.scope.Volume != "vol" || p.scope.Mount != p.roots.Dirs()[0] || p.scope.Node != "node-1" {
		t.Fatalf("scope %+v, queue node %q", p.scope, p.queueNode())
	}
	if p.spool.Host != "node-1" {
		t.Fatalf("spool host %q, want the node", p.spool.Host)
	}
	if txt := scopeText(p); !strings.Contains(txt, "hls@shared:vol") || !strings.Contains(txt, ".srs-offload/node-1") {
		t.Fatalf("check's explanation: %s", txt)
	}
	c = validConfig(t)
	p2, err := compile(c)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.close()
	if p2.queueNode() != "node-1" || p2.scope.Shared() || p2.spool.Host != "" || !strings.Contains(scopeText(p2), "hls@node-1") {
		t.Fatalf("node scope: %+v %q %s", p2.scope, p2.queueNode(), scopeText(p2))
	}
}
