package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// check reports each config that would start but not work, naming its key: an error (exit 2)
// when it cannot work at all, a warning (exit 0) when it is allowed but probably a mistake.
func TestCheckReportsByKey(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "html")
	inner := filepath.Join(root, "live")
	os.MkdirAll(inner, 0o755)
	base := fmt.Sprintf("roots: [%q]\n", root)
	for _, tc := range []struct {
		name, doc string
		exit      int
		line      string // the line check prints for it, beginning with the key
	}{
		{"listen port out of range", base + "listen: 127.0.0.1:99999\n", 2,
			`listen: want host:port, got "127.0.0.1:99999" (port "99999" is not 1..65535)`},
		{"admin.listen port 0", base + "admin: {listen: \"127.0.0.1:0\"}\n", 2, `admin.listen: want host:port`},
		{"redis.addr port out of range", base + "redis: {addr: \"127.0.0.1:70000\"}\n", 2, `redis.addr: want host:port`},
		{"nested roots", fmt.Sprintf("roots: [%q, %q]\n", root, inner), 0,
			fmt.Sprintf(`warning: roots[1]: %q is inside roots[0] %q`, inner, root)},
		{"path_style against amazonaws.com", base + "storage: {endpoint: \"https://s3.eu-west-1.amazonaws.com\", region: eu-west-1, path_style: true}\n", 0,
			"warning: storage.path_style: true against AWS S3 (https://s3.eu-west-1.amazonaws.com)"},
		{"absolute storage.prefix", base + "storage: {prefix: /abs/}\n", 2,
			`storage.prefix: "/abs/" starts with /: object keys are relative to the bucket (e.g. "abs/")`},
		{"storage.prefix with an empty segment", base + "storage: {prefix: a//b/}\n", 2, `storage.prefix: "a//b/" holds //`},
		{"keys.hls starting with /", base + "keys: {hls: \"/{url}\"}\n", 2,
			`keys.hls: "/{url}" starts with /: object keys are relative to the bucket; every key made from it would be refused, and so every hook`},
		{"keys.dvr with a .. segment", base + "keys: {dvr: \"{app}/../{basename}\"}\n", 2, `keys.dvr: "{app}/../{basename}" holds a '.' or '..' segment`},
		{"playlist.vod_key ending with /", base + "playlist: {vod_key: \"{app}/{stream}/\"}\n", 2, `playlist.vod_key: "{app}/{stream}/" ends with /`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(cfg, []byte(tc.doc), 0o600)
			out, err := exec.Command(binary(t), "check", "-c", cfg).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, l := range strings.Split(string(out), "\n") {
				// Errors are "<file>: key: …", warnings "warning: key: …".
				found = found || strings.HasPrefix(strings.TrimPrefix(l, cfg+": "), tc.line)
			}
			if code != tc.exit || !found {
				t.Errorf("check: exit %d (want %d), output lacks a line starting %q:\n%s", code, tc.exit, tc.line, out)
			}
			if (tc.exit == 0) != strings.Contains(string(out), "config ok") {
				t.Errorf("\"config ok\" printed or missing, want it only with exit 0:\n%s", out)
			}
		})
	}
}
