package srsconf_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/srsconf"
)

// FuzzParse reads SRS configs (SRS's own samples and srs-offload's as seeds) and audits them.
// Invariants: Parse and Audit never panic; what Parse accepts, written out again, parses to the
// same directives; every finding says where and what.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../configs/srs.conf", "../testdata/srs/srs-abs-paths.conf", "../testdata/srs/srs-rel-paths.conf"} {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("vhost a { hls { enabled on; hls_path '/x'; hls_ts_file \"[app]/[stream]-[seq].ts\"; hls_cleanup off; } }"))
	f.Add([]byte("vhost __defaultVhost__ { dvr { enabled on; dvr_path ../../[app]/[stream].flv; } http_hooks { enabled on; on_hls http://h; } }"))
	f.Add([]byte("vhost { } vhost x; \"a;b\" '{' \"}\";\n# c\n"))
	f.Add([]byte("a \"b\nc\" 'd\"e';"))
	f.Add([]byte("a { } } b;"))
	f.Add([]byte("a {"))
	f.Add([]byte("'unclosed"))

	tmp := f.TempDir()
	cwd := filepath.Join(tmp, "srs")
	root := filepath.Join(cwd, "objs", "nginx", "html")
	if err := os.MkdirAll(root, 0o755); err != nil {
		f.Fatal(err)
	}
	rs, err := roots.New([]string{root})
	if err != nil {
		f.Fatal(err)
	}
	o := srsconf.Offload{Roots: rs, Spool: true, Reconcile: true,
		HLSTemplates: []string{"[app]/[stream]-[seq].ts"}, DVRTemplates: []string{"[app]/[stream].[timestamp].flv"}}

	f.Fuzz(func(t *testing.T, src []byte) {
		d, err := srsconf.Parse(src)
		if err != nil {
			if d != nil {
				t.Fatalf("Parse returned %v and a tree", err)
			}
			return
		}
		if text, ok := write(d.Block, ""); ok {
			again, err := srsconf.Parse([]byte(text))
			if err != nil {
				t.Fatalf("written out as\n%s\nit does not parse: %v", text, err)
			}
			if a, b := dump(d.Block, ""), dump(again.Block, ""); a != b {
				t.Fatalf("written out and parsed again:\n%s\nwas:\n%s", b, a)
			}
		}
		for _, x := range []srsconf.Offload{o, {Roots: rs}} {
			for _, fd := range srsconf.Audit(d, cwd, x) {
				if fd.Where == "" || fd.Msg == "" {
					t.Fatalf("finding without place or message: %+v", fd)
				}
			}
		}
	})
}

// write writes directives in SRS's syntax, every word quoted; false when a word holds both quotes.
func write(ds []*srsconf.Directive, indent string) (string, bool) {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(indent)
		for i, w := range append([]string{d.Name}, d.Args...) {
			q := `"`
			if strings.Contains(w, `"`) {
				q = "'"
				if strings.Contains(w, "'") {
					return "", false
				}
			}
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(q + w + q)
		}
		if d.Block == nil {
			b.WriteString(";\n")
			continue
		}
		inner, ok := write(d.Block, indent+"  ")
		if !ok {
			return "", false
		}
		b.WriteString(" {\n" + inner + indent + "}\n")
	}
	return b.String(), true
}

// dump shows the tree without line numbers.
func dump(ds []*srsconf.Directive, indent string) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(indent)
		for _, w := range append([]string{d.Name}, d.Args...) {
			b.WriteString(strings.ReplaceAll(w, "\n", `\n`) + "|")
		}
		if d.Block != nil {
			b.WriteString("{\n" + dump(d.Block, indent+"  ") + indent + "}")
		}
		b.WriteString("\n")
	}
	return b.String()
}
