package srsconf_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/srsconf"
)

var templates = srsconf.Offload{
	Reconcile:    true,
	HLSTemplates: []string{"[app]/[stream]-[seq].ts", "[app]/[stream]/[2006]/[01]/[02]/[15]/[timestamp]-[seq].ts"},
	DVRTemplates: []string{"[app]/[stream].[timestamp].flv", "[app]/[stream].[timestamp].mp4"},
}

func rootSet(t *testing.T, dirs ...string) *roots.Set {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := roots.New(dirs)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func audit(t *testing.T, conf, cwd string, o srsconf.Offload) []string {
	t.Helper()
	d, err := srsconf.Parse([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range srsconf.Audit(d, cwd, o) {
		out = append(out, f.String())
	}
	return out
}

func has(got []string, parts ...string) bool {
	for _, g := range got {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(g, p)
		}
		if all {
			return true
		}
	}
	return false
}

// The two configs SRS 7.0.18 ran with for the captured fixtures are clean against roots that are
// their hls_path and dvr folders.
func TestFixtureConfigsAreClean(t *testing.T) {
	abs, err := os.ReadFile("../testdata/srs/srs-abs-paths.conf")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := os.ReadFile("../testdata/srs/srs-rel-paths.conf")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	// The absolute config's folders, moved below a temp folder.
	absConf := strings.ReplaceAll(string(abs), "/data/srs", filepath.Join(tmp, "data"))
	o := templates
	o.Spool = true
	o.Roots = rootSet(t, filepath.Join(tmp, "data/hls"), filepath.Join(tmp, "data/dvr"))
	if got := audit(t, absConf, "/", o); len(got) != 0 {
		t.Errorf("abs-paths config: %q", got)
	}
	cwd := filepath.Join(tmp, "srs")
	o.Roots = rootSet(t, filepath.Join(cwd, "objs/nginx/html"))
	if got := audit(t, string(rel), cwd, o); len(got) != 0 {
		t.Errorf("rel-paths config: %q", got)
	}
}

// SRS's defaults delete segments whatever their upload state: safe only with the spool.
func TestDefaultsNeedTheSpool(t *testing.T) {
	conf := `# SRS defaults
listen 1935;
vhost __defaultVhost__ {
    hls { enabled on; }
    http_hooks { enabled on; on_hls "http://127.0.0.1:8085/api/v1/hls"; }
}`
	cwd := t.TempDir()
	o := templates
	o.Roots = rootSet(t, filepath.Join(cwd, "objs/nginx/html"))
	o.Spool = true
	if got := audit(t, conf, cwd, o); len(got) != 0 {
		t.Errorf("with the spool: %q", got)
	}
	o.Spool = false
	got := audit(t, conf, cwd, o)
	for _, want := range [][]string{
		{"error:", "hls.hls_cleanup (default; block at line 4)", "turn spool on"},
		{"error:", "hls.hls_dispose (default", "after 120s"},
		{"warning:", "hls.hls_ts_file", "[timestamp]"},
	} {
		if !has(got, want...) {
			t.Errorf("no finding with %q in %q", want, got)
		}
	}
}

func TestFindings(t *testing.T) {
	cwd := t.TempDir()
	o := templates
	o.Spool = true
	o.Roots = rootSet(t, filepath.Join(cwd, "objs"))
	conf := `vhost v1 {
    hls { enabled on; hls_path /elsewhere; }
    dvr { enabled on; dvr_path ./objs/nginx/html/[app]/[stream]/[2006]/[timestamp].mp4; }
    http_hooks { enabled off; on_hls http://x/; }
}
vhost v2 {
    hls { enabled on; hls_path ./objs/nginx/html; hls_ts_file '[app]/[stream]/[seq].ts'; }
    http_hooks { enabled on; on_hls http://x/; }
}
vhost v3 { hls { enabled off; } }`
	got := audit(t, conf, cwd, o)
	for _, want := range [][]string{
		{"error:", "vhost v1: hls.hls_path (line 2)", "/elsewhere is outside every root", "on_hls is refused"},
		{"warning:", "vhost v1: dvr.dvr_path (line 3)", "below the root"},
		{"warning:", "vhost v1: http_hooks.on_hls", "not set"},
		{"warning:", "vhost v1: http_hooks.on_dvr", "not set"},
		{"warning:", "vhost v2: hls.hls_path (line 7)", "below the root"},
		{"warning:", "vhost v2: hls.hls_ts_file (line 7)", "not in reconcile.hls_ts_file"},
	} {
		if !has(got, want...) {
			t.Errorf("no finding with %q in\n%s", want, strings.Join(got, "\n"))
		}
	}
	if has(got, "vhost v3") {
		t.Errorf("a vhost with hls off was audited: %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ conf, want string }{
		{"vhost a { hls { enabled on; }", "not closed"},
		{"vhost a { hls { enabled on } }", "does not end with ';'"},
		{"}", "without '{'"},
		{"listen 1935", "does not end with ';'"},
		{`a "b;`, "unclosed quote"},
	} {
		if _, err := srsconf.Parse([]byte(c.conf)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q): %v, want %q", c.conf, err, c.want)
		}
	}
}
