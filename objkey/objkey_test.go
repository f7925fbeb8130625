package objkey_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/objkey"
)

func mustTemplate(t *testing.T, s string) objkey.Template {
	t.Helper()
	tmpl, err := objkey.Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return tmpl
}

func TestParseKeyTemplateErrors(t *testing.T) {
	tests := []struct {
		tmpl string
		want string // a piece of the message
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"{uri}", "unknown variable {uri}"},
		{"{APP}/{stream}", "unknown variable {APP}"},
		{"{}", "unknown variable {}"},
		{"{ app }", "unknown variable { app }"},
		{"{app}/{stream", "'{' without '}'"},
		{"{", "'{' without '}'"},
		{"app}/x", "'}' without '{'"},
		{"{app}}", "'}' without '{'"},
		{"}", "'}' without '{'"},
		{"{{app}}", "unknown variable {{app}"},
		{"live/{app{stream}}", "unknown variable {app{stream}"},
	}
	for _, tc := range tests {
		_, err := objkey.Parse(tc.tmpl)
		if err == nil {
			t.Errorf("Parse(%q) accepted it", tc.tmpl)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %q, want it to mention %q", tc.tmpl, err, tc.want)
		}
	}
}

func TestParseKeyTemplateGood(t *testing.T) {
	for _, s := range []string{
		"{url}", "{m3u8_url}", "{app}/{stream}/{basename}", "{vhost}/{path}", "fixed/name.ts",
		"pre-{app}-{stream}.{basename}", "{app}{stream}",
	} {
		tmpl := mustTemplate(t, s)
		if tmpl.String() != s {
			t.Errorf("String() = %q, want %q", tmpl.String(), s)
		}
	}
}

func TestExpandVariables(t *testing.T) {
	vars := objkey.Vars{
		Vhost: "__defaultVhost__", App: "live", Stream: "livestream", Basename: "livestream-3.ts",
		URL: "live/livestream-3.ts", M3U8URL: "live/livestream.m3u8", Path: "live/livestream-3.ts",
	}
	tests := []struct{ tmpl, want string }{
		{"{vhost}", "__defaultVhost__"},
		{"{app}", "live"},
		{"{stream}", "livestream"},
		{"{basename}", "livestream-3.ts"},
		{"{url}", "live/livestream-3.ts"},
		{"{m3u8_url}", "live/livestream.m3u8"},
		{"{path}", "live/livestream-3.ts"},
		{"{app}/{stream}/{basename}", "live/livestream/livestream-3.ts"},
		{"srs/{vhost}/{path}", "srs/__defaultVhost__/live/livestream-3.ts"},
		{"{app}-{stream}.x", "live-livestream.x"},
		{"fixed.ts", "fixed.ts"},
	}
	for _, tc := range tests {
		got, err := mustTemplate(t, tc.tmpl).Expand(vars)
		if err != nil || got != tc.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tc.tmpl, got, err, tc.want)
		}
	}
}

func TestExpandURL(t *testing.T) {
	tests := []struct {
		url, want string
	}{
		{"live/livestream-0.ts", "live/livestream-0.ts"},
		{"/live/livestream-0.ts", "live/livestream-0.ts"},
		{"live/livestream-0.ts?hls_ctx=abc", "live/livestream-0.ts"},
		{"live/livestream-0.ts#frag", "live/livestream-0.ts"},
		// SRS's hls_entry_prefix makes the segment URL absolute: only its path is used.
		{"http://cdn.example.com/live/livestream-0.ts", "live/livestream-0.ts"},
		{"https://cdn.example.com:8443/hls/live/livestream-0.ts?token=1", "hls/live/livestream-0.ts"},
		{"http://cdn.example.com/live/a%20b.ts", "live/a b.ts"},
	}
	tmpl := mustTemplate(t, "{url}")
	for _, tc := range tests {
		got, err := tmpl.Expand(objkey.Vars{URL: tc.url})
		if err != nil || got != tc.want {
			t.Errorf("{url} of %q = %q, %v; want %q", tc.url, got, err, tc.want)
		}
	}
	got, err := mustTemplate(t, "{m3u8_url}").Expand(objkey.Vars{M3U8URL: "http://cdn/live/livestream.m3u8?x=1"})
	if err != nil || got != "live/livestream.m3u8" {
		t.Errorf("{m3u8_url} = %q, %v", got, err)
	}
}

func TestExpandRejectsBadKeys(t *testing.T) {
	good := objkey.Vars{
		Vhost: "v", App: "live", Stream: "s", Basename: "s-0.ts",
		URL: "live/s-0.ts", M3U8URL: "live/s.m3u8", Path: "live/s-0.ts",
	}
	tests := []struct {
		name string
		tmpl string
		vars func(v *objkey.Vars)
	}{
		{"empty app", "{app}/{stream}/{basename}", func(v *objkey.Vars) { v.App = "" }},
		{"empty url", "{url}", func(v *objkey.Vars) { v.URL = "" }},
		{"url is only a slash", "{url}", func(v *objkey.Vars) { v.URL = "/" }},
		{"url is only a query", "{url}", func(v *objkey.Vars) { v.URL = "?x=1" }},
		{"absolute url without path", "{url}", func(v *objkey.Vars) { v.URL = "http://cdn.example.com" }},
		{"empty m3u8_url", "{m3u8_url}", func(v *objkey.Vars) { v.M3U8URL = "" }},
		{"empty path", "x/{path}", func(v *objkey.Vars) { v.Path = "" }},
		{"dot-dot in stream", "{app}/{stream}/{basename}", func(v *objkey.Vars) { v.Stream = ".." }},
		{"dot-dot inside stream", "{app}/{stream}/{basename}", func(v *objkey.Vars) { v.Stream = "a/../../b" }},
		{"dot segment", "{app}/{stream}", func(v *objkey.Vars) { v.Stream = "." }},
		{"dot-dot in url", "{url}", func(v *objkey.Vars) { v.URL = "../other/x.ts" }},
		{"dot-dot in absolute url", "{url}", func(v *objkey.Vars) { v.URL = "http://cdn/live/../../x.ts" }},
		{"encoded dot-dot in absolute url", "{url}", func(v *objkey.Vars) { v.URL = "http://cdn/a/%2e%2e/x.ts" }},
		{"dot-dot in path", "{path}", func(v *objkey.Vars) { v.Path = "../etc/passwd" }},
		{"leading slash from literal", "/{app}/{basename}", nil},
		{"leading slash from vhost", "{vhost}{path}", func(v *objkey.Vars) { v.Vhost = "/v/" }},
		{"empty segment", "{app}//{basename}", nil},
		{"trailing slash", "{app}/", nil},
		{"trailing slash from value", "{app}/{stream}", func(v *objkey.Vars) { v.Stream = "s/" }},
		{"newline", "{app}/{stream}", func(v *objkey.Vars) { v.Stream = "s\nx" }},
		{"NUL", "{app}/{stream}", func(v *objkey.Vars) { v.Stream = "s\x00" }},
		{"tab", "{basename}", func(v *objkey.Vars) { v.Basename = "a\tb.ts" }},
		{"DEL", "{basename}", func(v *objkey.Vars) { v.Basename = "a\x7f.ts" }},
		{"escape", "{basename}", func(v *objkey.Vars) { v.Basename = "\x1b[31m.ts" }},
		{"control in literal", "x\x01/{basename}", nil},
		{"too long", "{stream}/{basename}", func(v *objkey.Vars) { v.Stream = strings.Repeat("s", 1020) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := good
			if tc.vars != nil {
				tc.vars(&v)
			}
			tmpl := mustTemplate(t, tc.tmpl)
			got, err := tmpl.Expand(v)
			if !errors.Is(err, objkey.ErrBadKey) {
				t.Fatalf("Expand(%q) = %q, %v; want ErrBadKey", tc.tmpl, got, err)
			}
			if got != "" {
				t.Errorf("an error came with key %q", got)
			}
		})
	}
	// The same templates accept the good values.
	for _, tmpl := range []string{"{app}/{stream}/{basename}", "{url}", "{m3u8_url}", "x/{path}", "{vhost}/{path}"} {
		if _, err := mustTemplate(t, tmpl).Expand(good); err != nil {
			t.Errorf("Expand(%q) of good vars: %v", tmpl, err)
		}
	}
}

func TestExpandAllowsOddButSafeNames(t *testing.T) {
	tests := []struct {
		stream, want string
	}{
		{"a..b", "live/a..b/x.ts"},
		{"...", "live/.../x.ts"},
		{".hidden", "live/.hidden/x.ts"},
		{"sub/stream", "live/sub/stream/x.ts"},
		{"ünïcode", "live/ünïcode/x.ts"},
		{strings.Repeat("s", 1024-len("live//x.ts")), "live/" + strings.Repeat("s", 1024-len("live//x.ts")) + "/x.ts"},
	}
	tmpl := mustTemplate(t, "{app}/{stream}/{basename}")
	for _, tc := range tests {
		got, err := tmpl.Expand(objkey.Vars{App: "live", Stream: tc.stream, Basename: "x.ts"})
		if err != nil || got != tc.want {
			t.Errorf("stream %q: %q, %v; want %q", tc.stream, got, err, tc.want)
		}
	}
}
