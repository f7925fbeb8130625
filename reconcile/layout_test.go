package reconcile_test

import (
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/reconcile"
)

// Vars recovers from a path what the file's hook would have said, for SRS's default templates and
// the date templates the README recommends.
func TestLayoutVars(t *testing.T) {
	t.Parallel()
	const dv = "__defaultVhost__"
	for _, tc := range []struct {
		name     string
		template string
		kind     string
		rel      string
		want     objkey.Vars
		ok       bool
	}{
		{
			name: "srs default", template: "[app]/[stream]-[seq].ts", kind: "hls",
			rel:  "live/livestream-12.ts",
			want: objkey.Vars{Vhost: dv, App: "live", Stream: "livestream", Basename: "livestream-12.ts", URL: "live/livestream-12.ts", Path: "live/livestream-12.ts"},
			ok:   true,
		},
		{
			name: "stream name with dashes", template: "[app]/[stream]-[seq].ts", kind: "hls",
			rel:  "live/cam-front-2-7.ts",
			want: objkey.Vars{Vhost: dv, App: "live", Stream: "cam-front-2", Basename: "cam-front-2-7.ts", URL: "live/cam-front-2-7.ts", Path: "live/cam-front-2-7.ts"},
			ok:   true,
		},
		{
			name: ".m4s under a .ts template", template: "[app]/[stream]-[seq].ts", kind: "hls",
			rel:  "live/livestream-3.m4s",
			want: objkey.Vars{Vhost: dv, App: "live", Stream: "livestream", Basename: "livestream-3.m4s", URL: "live/livestream-3.m4s", Path: "live/livestream-3.m4s"},
			ok:   true,
		},
		{
			name: "date folders", template: "[app]/[stream]/[2006][01][02]/[timestamp]-[seq].ts", kind: "hls",
			rel:  "live/cam1/20261123/1763935200123-42.ts",
			want: objkey.Vars{Vhost: dv, App: "live", Stream: "cam1", Basename: "1763935200123-42.ts", URL: "live/cam1/20261123/1763935200123-42.ts", Path: "live/cam1/20261123/1763935200123-42.ts"},
			ok:   true,
		},
		{
			name: "hour folders", template: "[app]/[stream]/[2006]/[01]/[02]/[15]/[timestamp]-[seq].ts", kind: "hls",
			rel:  "live/cam1/2026/11/23/22/1763935200123-42.ts",
			want: objkey.Vars{Vhost: dv, App: "live", Stream: "cam1", Basename: "1763935200123-42.ts", URL: "live/cam1/2026/11/23/22/1763935200123-42.ts", Path: "live/cam1/2026/11/23/22/1763935200123-42.ts"},
			ok:   true,
		},
		{
			name: "fmp4 init", template: "[app]/[stream]/init.mp4", kind: "hls",
			rel:  "live/cam1/init.mp4",
			want: objkey.Vars{Vhost: dv, App: "live", Stream: "cam1", Basename: "init.mp4", URL: "live/cam1/init.mp4", Path: "live/cam1/init.mp4"},
			ok:   true,
		},
		{
			name: "vhost", template: "[vhost]/[app]/[stream]-[seq].ts", kind: "hls",
			rel:  "example.com/live/cam1-0.ts",
			want: objkey.Vars{Vhost: "example.com", App: "live", Stream: "cam1", Basename: "cam1-0.ts", URL: "example.com/live/cam1-0.ts", Path: "example.com/live/cam1-0.ts"},
			ok:   true,
		},
		{
			name: "dvr default", template: "[app]/[stream].[timestamp].flv", kind: "dvr",
			rel:  "live/livestream.1763935200123.flv",
			want: objkey.Vars{Vhost: dv, App: "live", Stream: "livestream", Basename: "livestream.1763935200123.flv", Path: "live/livestream.1763935200123.flv"},
			ok:   true,
		},
		{
			name: "dvr stream with dashes", template: "[app]/[stream].[timestamp].flv", kind: "dvr",
			rel:  "live/cam-1.1763935200123.flv",
			want: objkey.Vars{Vhost: dv, App: "live", Stream: "cam-1", Basename: "cam-1.1763935200123.flv", Path: "live/cam-1.1763935200123.flv"},
			ok:   true,
		},
		{name: "one folder too many", template: "[app]/[stream]-[seq].ts", kind: "hls", rel: "live/extra/livestream-1.ts"},
		{name: "seq not a number", template: "[app]/[stream]-[seq].ts", kind: "hls", rel: "live/livestream-x.ts"},
		{name: "no seq", template: "[app]/[stream]-[seq].ts", kind: "hls", rel: "live/livestream.ts"},
		{name: "date too short", template: "[app]/[stream]/[2006][01][02]/[timestamp]-[seq].ts", kind: "hls", rel: "live/cam1/2026112/1-1.ts"},
		{name: "literal differs", template: "[app]/[stream]/init.mp4", kind: "hls", rel: "live/cam1/main.mp4"},
		{name: "hls template, dvr kind", template: "[app]/[stream]-[seq].ts", kind: "dvr", rel: "live/livestream-12.ts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hls, dvr []string
			if strings.HasSuffix(tc.template, ".flv") {
				dvr = []string{tc.template}
			} else {
				hls = []string{tc.template}
			}
			l, err := reconcile.NewLayout(hls, dvr)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := l.Vars(tc.kind, tc.rel)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("Vars(%s, %q) with %q\n got  %+v, %v\n want %+v, %v", tc.kind, tc.rel, tc.template, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// With several templates, the first that matches gives the variables, whatever the order of the
// others; kinds do not mix.
func TestLayoutSeveralTemplates(t *testing.T) {
	t.Parallel()
	l, err := reconcile.NewLayout(
		[]string{"[app]/[stream]-[seq].ts", "[app]/[stream]/[2006][01][02]/[timestamp]-[seq].ts", "[app]/[stream]/init.mp4"},
		[]string{"[app]/[stream].[timestamp].flv", "[app]/[stream]/[2006][01][02]/[timestamp].flv"},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kind, rel, app, stream string
	}{
		{"hls", "live/a-1.ts", "live", "a"},
		{"hls", "live/b/20261123/1763935200123-1.ts", "live", "b"},
		{"hls", "live/c/init.mp4", "live", "c"},
		{"dvr", "live/d.1763935200123.flv", "live", "d"},
		{"dvr", "live/e/20261123/1763935200123.flv", "live", "e"},
	} {
		v, ok := l.Vars(tc.kind, tc.rel)
		if !ok || v.App != tc.app || v.Stream != tc.stream || v.Path != tc.rel {
			t.Errorf("Vars(%s, %s) = %+v, %v", tc.kind, tc.rel, v, ok)
		}
	}
	if v, ok := l.Vars("dvr", "live/b/20261123/1763935200123-1.ts"); ok {
		t.Errorf("an HLS path matched a DVR template: %+v", v)
	}
	if v, ok := l.Vars("hls", "live/d.1763935200123.flv"); ok {
		t.Errorf("a DVR path matched an HLS template: %+v", v)
	}
}

func TestCheckTemplate(t *testing.T) {
	t.Parallel()
	for tmpl, want := range map[string]string{
		"[app]/[sream]-[seq].ts":        "unknown variable [sream]",
		"[app]/[stream]-[seq.ts":        "'[' without ']'",
		"[app/[stream]-[seq].ts":        "unknown variable [app/[stream]",
		"/usr/local/srs/[app]/[seq].ts": "relative to the root",
		"":                              "relative to the root",
	} {
		err := reconcile.CheckTemplate(tmpl)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckTemplate(%q) = %v, want an error containing %q", tmpl, err, want)
		}
	}
	for _, good := range []string{
		"[app]/[stream]-[seq].ts",
		"[app]/[stream]/[2006][01][02]/[timestamp]-[seq].ts",
		"[app]/[stream]/[2006]/[01]/[02]/[15]/[timestamp]-[seq].ts",
		"[app]/[stream]/init.mp4",
		"[app]/[stream].[timestamp].flv",
		"[vhost]/[app]/[stream]-[15][04][05][999]-[duration].ts",
	} {
		if err := reconcile.CheckTemplate(good); err != nil {
			t.Errorf("CheckTemplate(%q): %v", good, err)
		}
	}
	// NewLayout names the template at fault.
	if _, err := reconcile.NewLayout([]string{"[app]/[stream]-[seq].ts"}, []string{"[app]/[nope].flv"}); err == nil || !strings.Contains(err.Error(), "dvr_path[0]") {
		t.Errorf("NewLayout with a bad dvr_path: %v", err)
	}
	if _, err := reconcile.NewLayout([]string{"[app]/[stream]-[seq].ts", "[x]"}, nil); err == nil || !strings.Contains(err.Error(), "hls_ts_file[1]") {
		t.Errorf("NewLayout with a bad hls_ts_file: %v", err)
	}
}
