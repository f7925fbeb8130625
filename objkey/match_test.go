package objkey

import "testing"

func TestPrefixAndMatch(t *testing.T) {
	for _, c := range []struct {
		tmpl, app, stream, prefix string
		key                       string
		ok                        bool
		want                      Vars
	}{
		{"{app}/{stream}/{basename}", "live", "cam", "live/cam/", "live/cam/rec-1.flv", true, Vars{App: "live", Stream: "cam", Basename: "rec-1.flv"}},
		{"{app}/{stream}/{basename}", "live", "", "live/", "live/cam/sub/rec-1.flv", false, Vars{}},
		{"dvr/{vhost}/{app}/{stream}-{basename}", "live", "cam", "dvr/", "dvr/v/live/cam-a.mp4", true, Vars{Vhost: "v", App: "live", Stream: "cam", Basename: "a.mp4"}},
		{"{app}/{stream}/{app}.flv", "", "", "", "live/cam/other.flv", false, Vars{}},
		{"rec/{path}", "live", "cam", "rec/", "rec/live/cam/2026/a.flv", true, Vars{Path: "live/cam/2026/a.flv"}},
	} {
		tm, err := Parse(c.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if got := tm.Prefix(Vars{App: c.app, Stream: c.stream}); got != c.prefix {
			t.Errorf("%s: prefix %q, want %q", c.tmpl, got, c.prefix)
		}
		got, ok := tm.Match(c.key)
		if ok != c.ok || got != c.want {
			t.Errorf("%s: match %q = %+v %v, want %+v %v", c.tmpl, c.key, got, ok, c.want, c.ok)
		}
		if ok {
			if back, err := tm.Expand(got); err != nil || back != c.key {
				t.Errorf("%s: %q read back expands to %q (%v)", c.tmpl, c.key, back, err)
			}
		}
	}
}
