package objkey

import (
	"testing"
	"unicode/utf8"
)

// Keys are valid UTF-8 whatever bytes a file name holds: each byte outside valid UTF-8 is %XX.
func TestKeyOfNonUTF8Name(t *testing.T) {
	tmpl, err := Parse("{app}/{basename}")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"a\xff.ts":           "live/a%FF.ts",
		"caf\xe9-1.ts":       "live/caf%E9-1.ts",
		"\xc3\x28.ts":        "live/%C3(.ts",
		"café-1.ts":          "live/café-1.ts",
		"\xe2\x82.ts":        "live/%E2%82.ts", // a truncated sequence: each byte
		"ok\xf0\x9f\x98\x80": "live/ok\xf0\x9f\x98\x80",
	} {
		got, err := tmpl.Expand(Vars{App: "live", Basename: name})
		if err != nil || got != want || !utf8.ValidString(got) {
			t.Errorf("key of %q = %q, %v; want %q", name, got, err, want)
		}
	}
}
