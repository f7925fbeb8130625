package srsconf

import (
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/srs-offload/srs-offload/roots"
)

// SRS's defaults for what the audit reads (SRS 5–7, see shared/srs/PROTOCOL.md).
const (
	defHLSPath    = "./objs/nginx/html"
	defHLSTSFile  = "[app]/[stream]-[seq].ts"
	defHLSCleanup = "on"
	defHLSDispose = "120"
	defDVRPath    = "./objs/nginx/html/[app]/[stream].[timestamp].flv"
)

// Offload is what the audit needs of srs-offload's own config.
type Offload struct {
	Roots *roots.Set
	// Spool: spool.enabled, and hard links work in every root.
	Spool bool
	// Reconcile: reconcile.enabled, with its templates.
	Reconcile    bool
	HLSTemplates []string
	DVRTemplates []string
}

// Finding is one problem. Error: files would be refused or lost, whatever srs-offload does;
// otherwise a warning.
type Finding struct {
	Error bool
	Where string // e.g. "vhost __defaultVhost__: hls.hls_cleanup (line 12)"
	Msg   string
}

func (f Finding) String() string {
	level := "warning"
	if f.Error {
		level = "error"
	}
	return fmt.Sprintf("%s: %s: %s", level, f.Where, f.Msg)
}

// Audit reads every vhost of an SRS config; cwd is SRS's working folder (relative paths in SRS's
// config are relative to it).
func Audit(conf *Directive, cwd string, o Offload) []Finding {
	var out []Finding
	for _, v := range conf.Block {
		if v.Name != "vhost" || v.Block == nil {
			continue
		}
		name := "vhost"
		if len(v.Args) > 0 {
			name += " " + v.Args[0]
		}
		out = append(out, auditVhost(v, name, cwd, o)...)
	}
	return out
}

func where(vhost string, block, key *Directive, blockName, keyName string) string {
	w := vhost + ": " + blockName + "." + keyName
	switch {
	case key != nil:
		w += fmt.Sprintf(" (line %d)", key.Line)
	case block != nil:
		w += fmt.Sprintf(" (default; block at line %d)", block.Line)
	}
	return w
}

func on(d *Directive, name, def string) bool { return d.Arg(name, def) == "on" }

func auditVhost(v *Directive, vhost, cwd string, o Offload) []Finding {
	var out []Finding
	add := func(isErr bool, w, format string, a ...any) {
		out = append(out, Finding{Error: isErr, Where: w, Msg: fmt.Sprintf(format, a...)})
	}
	hooks := v.Get("http_hooks")
	hooksOn := hooks != nil && on(hooks, "enabled", "off")

	if hls := v.Get("hls"); hls != nil && on(hls, "enabled", "off") {
		dir := abs(cwd, hls.Arg("hls_path", defHLSPath))
		tsFile := hls.Arg("hls_ts_file", defHLSTSFile)
		w := func(k string) string { return where(vhost, hls, hls.Get(k), "hls", k) }
		out = append(out, auditRoot(o, dir, w("hls_path"), "hls_path", "on_hls")...)
		cleanup := on(hls, "hls_cleanup", defHLSCleanup)
		dispose, _ := strconv.Atoi(hls.Arg("hls_dispose", defHLSDispose))
		if !o.Spool && cleanup {
			add(true, w("hls_cleanup"), "SRS deletes each segment that leaves its window, uploaded or not; with spool off a backlog loses segments: turn spool on (or set hls_cleanup off)")
		}
		if !o.Spool && dispose > 0 {
			add(true, w("hls_dispose"), "SRS deletes an idle stream's segments after %ds, uploaded or not; with spool off a backlog loses them: turn spool on (or set hls_dispose 0)", dispose)
		}
		if !o.Spool && strings.Contains(tsFile, "[seq]") && !strings.Contains(tsFile, "[timestamp]") {
			add(false, w("hls_ts_file"), "%q restarts at [seq] 0 when a stream is republished and SRS overwrites files that may not be uploaded yet; with spool off, add [timestamp]", tsFile)
		}
		if o.Reconcile && !hasTemplate(o.HLSTemplates, tsFile) {
			add(false, w("hls_ts_file"), "%q is not in reconcile.hls_ts_file: a segment whose hook is lost cannot be given its key and stays on disk", tsFile)
		}
		if !hooksOn || hooks.Get("on_hls") == nil {
			add(false, where(vhost, hooks, nil, "http_hooks", "on_hls"), "not set: segments reach storage only through the reconciler (after reconcile.min_age, and without playlists)")
		}
	}
	if dvr := v.Get("dvr"); dvr != nil && on(dvr, "enabled", "off") {
		p := abs(cwd, dvr.Arg("dvr_path", defDVRPath))
		w := func(k string) string { return where(vhost, dvr, dvr.Get(k), "dvr", k) }
		dir := templateRoot(p)
		out = append(out, auditRoot(o, dir, w("dvr_path"), "dvr_path", "on_dvr")...)
		if o.Reconcile {
			if rel, ok := relTo(o.Roots, p); ok && !hasTemplate(o.DVRTemplates, rel) {
				add(false, w("dvr_path"), "%q is not in reconcile.dvr_path: a recording whose hook is lost cannot be given its key and stays on disk", rel)
			}
		}
		if !hooksOn || hooks.Get("on_dvr") == nil {
			add(false, where(vhost, hooks, nil, "http_hooks", "on_dvr"), "not set: recordings reach storage only through the reconciler (after reconcile.min_age)")
		}
	}
	return out
}

// auditRoot checks that SRS's folder lies in a root (else every hook is refused) and is one (the
// reconciler reads key variables relative to the root).
func auditRoot(o Offload, dir, w, key, hook string) []Finding {
	if o.Roots == nil {
		return nil
	}
	root, rel, ok := o.Roots.Split(dir)
	if !ok {
		return []Finding{{Error: true, Where: w, Msg: fmt.Sprintf("%s is outside every root (%s): each %s is refused with 403; add it to roots", dir, o.Roots, hook)}}
	}
	if rel != "." {
		return []Finding{{Where: w, Msg: fmt.Sprintf("%s is below the root %s, not a root itself: the reconciler reads {app}/{stream}/{url} relative to the root; make %s a root", dir, root, key)}}
	}
	return nil
}

// templateRoot is the folder of a dvr_path before its first variable.
func templateRoot(p string) string {
	if i := strings.IndexByte(p, '['); i >= 0 {
		p = p[:i]
		if j := strings.LastIndexByte(p, '/'); j >= 0 {
			return filepath.Clean(p[:j+1])
		}
	}
	return filepath.Dir(p)
}

func relTo(rs *roots.Set, p string) (string, bool) {
	if rs == nil {
		return "", false
	}
	_, rel, ok := rs.Split(p)
	return filepath.ToSlash(rel), ok
}

func abs(cwd, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(cwd, p)
}

// hasTemplate reports whether t is among ts, the extension aside (a .ts template also matches
// an fMP4 stream's .m4s).
func hasTemplate(ts []string, t string) bool {
	strip := func(s string) string { return strings.TrimSuffix(s, path.Ext(s)) }
	for _, x := range ts {
		if strip(x) == strip(t) {
			return true
		}
	}
	return false
}
