package objkey

import (
	"regexp"
	"strings"
)

// Prefix is the start of every key the template gives for v's values: the template expanded up
// to its first variable v leaves empty (the whole key when v fills every one). A listing of the
// bucket under it finds every key the template could have made for those values.
func (t Template) Prefix(v Vars) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.v == "" {
			b.WriteString(p.lit)
			continue
		}
		val := v.get(p.v)
		if val == "" {
			break
		}
		b.WriteString(val)
	}
	return b.String()
}

// Match reads a stored key back into the variables the template made it from; ok is false when
// the template cannot have made the key. A variable naming one folder level ({app}, {stream},
// {basename} …) matches no '/'; {url}, {m3u8_url} and {path} match any run of folders.
func (t Template) Match(key string) (Vars, bool) {
	var b strings.Builder
	b.WriteString("^")
	var names []string
	for _, p := range t.parts {
		if p.v == "" {
			b.WriteString(regexp.QuoteMeta(p.lit))
			continue
		}
		names = append(names, p.v)
		switch p.v {
		case "url", "m3u8_url", "path":
			b.WriteString("(.+?)")
		default:
			b.WriteString("([^/]+?)")
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return Vars{}, false
	}
	m := re.FindStringSubmatch(key)
	if m == nil {
		return Vars{}, false
	}
	var v Vars
	for i, name := range names {
		val := m[i+1]
		if prev := v.get(name); prev != "" && prev != val {
			return Vars{}, false // a variable used twice with two values
		}
		v.set(name, val)
	}
	return v, true
}

func (v *Vars) set(name, val string) {
	switch name {
	case "vhost":
		v.Vhost = val
	case "app":
		v.App = val
	case "stream":
		v.Stream = val
	case "basename":
		v.Basename = val
	case "url":
		v.URL = val
	case "m3u8_url":
		v.M3U8URL = val
	case "path":
		v.Path = val
	case "client_id":
		v.ClientID = val
	case "stream_id":
		v.StreamID = val
	case "session":
		v.Session = val
	}
}
