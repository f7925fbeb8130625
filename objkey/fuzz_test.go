package objkey_test

import (
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/srs-offload/srs-offload/objkey"
)

// FuzzTemplate parses a key template and renders it with hook values an attacker chooses (every
// variable but the template comes from a hook or a file name). Invariants: Parse and Expand never
// panic; a template that parses renders either an error or a key S3 can store that stays below
// the storage prefix: valid UTF-8, relative, at most 1024 bytes, no control byte, no empty, "."
// or ".." segment, so prefix + "/" + key cleans to a name under the prefix.
func FuzzTemplate(f *testing.F) {
	f.Add("{app}/{stream}/{basename}", "live", "cam", "cam-1.ts", "live/cam-1.ts", "live/cam.m3u8", "live/cam-1.ts")
	f.Add("{url}", "live", "cam", "cam-1.ts", "http://h:8080/live/cam-1.ts?x=1", "", "")
	f.Add("{m3u8_url}", "", "", "", "", "/../../etc/passwd", "")
	f.Add("{url}", "", "", "", "https://h/../x.ts", "", "")
	f.Add("{app}/{stream}/{basename}", "..", "..", "..", "", "", "")
	f.Add("x/{path}", "", "", "", "", "", "a/../../b.ts")
	f.Add("0\xff", "", "", "", "", "", "") // the fuzzer's crasher of reconcile's layout
	f.Add("{app}/{basename}", "live", "", "a\xff.ts", "", "", "")
	f.Add("{app}{stream}", ".", ".", "", "", "", "")
	f.Add("{vhost}/{path}", "__defaultVhost__", "", "", "", "", "live/x\x00y.ts")
	f.Add("{{app}}", "a", "", "", "", "", "")
	f.Add("pre-{app}-{stream}.{basename}", "a/b", "c", "d\n", "", "", "")
	f.Fuzz(func(t *testing.T, tmpl, app, stream, basename, url, m3u8, rel string) {
		tm, err := objkey.Parse(tmpl)
		if err != nil {
			return
		}
		if tm.String() != tmpl {
			t.Fatalf("String() = %q, want %q", tm.String(), tmpl)
		}
		v := objkey.Vars{Vhost: app, App: app, Stream: stream, Basename: basename, URL: url, M3U8URL: m3u8, Path: rel,
			ClientID: stream, StreamID: basename, Session: app}
		key, err := tm.Expand(v)
		if err != nil {
			return
		}
		if key == "" || len(key) > 1024 || strings.HasPrefix(key, "/") || !utf8.ValidString(key) {
			t.Fatalf("template %q gave key %q: empty, too long, absolute or not UTF-8", tmpl, key)
		}
		for _, c := range key {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("template %q gave key %q with a control byte", tmpl, key)
			}
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("template %q gave key %q with segment %q", tmpl, key, seg)
			}
		}
		for _, prefix := range []string{"p", "a/b"} {
			if j := path.Join(prefix, key); !strings.HasPrefix(j, prefix+"/") {
				t.Fatalf("key %q leaves prefix %q: %q", key, prefix, j)
			}
		}
	})
}
