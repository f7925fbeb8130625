package reconcile

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/srs-offload/srs-offload/objkey"
)

// Layout recovers what a hook would have said about a file from its path alone, using SRS's own
// path templates (hls_ts_file, dvr_path below the root). A file whose hook never came is then
// stored under the same key its hook would have given it.
type Layout struct {
	hls, dvr []pattern
}

type pattern struct {
	text string
	re   *regexp.Regexp
}

// srsVars are the variables SRS substitutes in hls_ts_file and dvr_path, and what they match.
var srsVars = map[string]string{
	"vhost": `(?P<vhost>[^/]+)`, "app": `(?P<app>[^/]+)`, "stream": `(?P<stream>[^/]+)`,
	"seq": `(?P<seq>\d+)`, "timestamp": `\d+`, "duration": `\d+(?:\.\d+)?`,
	"2006": `\d{4}`, "01": `\d{2}`, "02": `\d{2}`, "15": `\d{2}`, "04": `\d{2}`, "05": `\d{2}`, "999": `\d{3}`,
}

// NewLayout parses SRS path templates relative to a root, e.g. "[app]/[stream]-[seq].ts". The
// extension of a template stands for every extension of its kind, so "[app]/[stream]-[seq].ts"
// also matches the .m4s of an fMP4 stream.
func NewLayout(hls, dvr []string) (*Layout, error) {
	l := &Layout{}
	for i, t := range hls {
		p, err := compile(t)
		if err != nil {
			return nil, fmt.Errorf("hls_ts_file[%d]: %w", i, err)
		}
		l.hls = append(l.hls, p)
	}
	for i, t := range dvr {
		p, err := compile(t)
		if err != nil {
			return nil, fmt.Errorf("dvr_path[%d]: %w", i, err)
		}
		l.dvr = append(l.dvr, p)
	}
	return l, nil
}

// CheckTemplate reports what is wrong with one SRS path template.
func CheckTemplate(t string) error {
	_, err := compile(t)
	return err
}

func compile(t string) (pattern, error) {
	if t == "" || strings.HasPrefix(t, "/") {
		return pattern{}, fmt.Errorf("%q: must be a path relative to the root, like SRS's hls_ts_file", t)
	}
	if escapes(t) {
		return pattern{}, fmt.Errorf("%q: a '..' segment leads out of the root", t)
	}
	if !utf8.ValidString(t) {
		return pattern{}, fmt.Errorf("%q: not valid UTF-8 (write the template in UTF-8; a file name's other bytes are matched by the variables)", t)
	}
	body := strings.TrimSuffix(t, path.Ext(t))
	var re strings.Builder
	re.WriteString("^")
	seen := map[string]bool{}
	for rest := body; rest != ""; {
		i := strings.IndexByte(rest, '[')
		if i < 0 {
			re.WriteString(regexp.QuoteMeta(rest))
			break
		}
		re.WriteString(regexp.QuoteMeta(rest[:i]))
		j := strings.IndexByte(rest[i:], ']')
		if j < 0 {
			return pattern{}, fmt.Errorf("%q: '[' without ']'", t)
		}
		name := rest[i+1 : i+j]
		expr, ok := srsVars[name]
		if !ok {
			return pattern{}, fmt.Errorf("%q: unknown variable [%s]", t, name)
		}
		if seen[name] && strings.HasPrefix(expr, "(?P") {
			expr = `[^/]+` // a repeated name: its first place captures it
		}
		seen[name] = true
		re.WriteString(expr)
		rest = rest[i+j+1:]
	}
	re.WriteString(`\.[A-Za-z0-9]+$`)
	c, err := regexp.Compile(re.String())
	if err != nil {
		return pattern{}, fmt.Errorf("%q: %w", t, err)
	}
	return pattern{text: t, re: c}, nil
}

// escapes reports whether a slash path relative to a root has a ".." segment.
func escapes(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return true
		}
	}
	return false
}

// dots reports whether a variable's value is "." or "..".
func dots(s string) bool { return s == "." || s == ".." }

// below cleans rel, a path below a root; false when it is absolute or leads out of the root.
func below(rel string) (string, bool) {
	rel = path.Clean(strings.ReplaceAll(rel, "\\", "/"))
	return rel, rel != "." && !path.IsAbs(rel) && !escapes(rel)
}

// Seq returns SRS's seq_no of an HLS file at rel below its root when the first hls_ts_file template
// that matches it has [seq]; false otherwise.
func (l *Layout) Seq(rel string) (int64, bool) {
	rel, ok := below(rel)
	if !ok {
		return 0, false
	}
	for _, p := range l.hls {
		m := p.re.FindStringSubmatch(rel)
		if m == nil {
			continue
		}
		if i := p.re.SubexpIndex("seq"); i >= 0 {
			n, err := strconv.ParseInt(m[i], 10, 64)
			return n, err == nil
		}
		return 0, false
	}
	return 0, false
}

// Vars returns the key variables of a file at rel below its root, from the first template of its
// kind ("hls" or "dvr") that matches; false when none does, or when rel leads out of the root.
func (l *Layout) Vars(kind, rel string) (objkey.Vars, bool) {
	ps := l.hls
	if kind == "dvr" {
		ps = l.dvr
	}
	rel, ok := below(rel)
	if !ok {
		return objkey.Vars{}, false
	}
	for _, p := range ps {
		m := p.re.FindStringSubmatch(rel)
		if m == nil {
			continue
		}
		v := objkey.Vars{Basename: path.Base(rel), Path: rel}
		for i, name := range p.re.SubexpNames() {
			switch name {
			case "vhost":
				v.Vhost = m[i]
			case "app":
				v.App = m[i]
			case "stream":
				v.Stream = m[i]
			}
		}
		if dots(v.Vhost) || dots(v.App) || dots(v.Stream) {
			continue // "[app].flv" matching "...flv": no name SRS gives, and a way out of a folder
		}
		if v.Vhost == "" {
			v.Vhost = "__defaultVhost__"
		}
		if kind == "hls" {
			// on_hls's url is hls_ts_file after substitution: the path below hls_path.
			v.URL = rel
		}
		return v, true
	}
	return objkey.Vars{}, false
}
