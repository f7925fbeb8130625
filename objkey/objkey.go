// Package objkey owns object key templates ({app}/{stream}/{basename}…), their variables and the
// rules every expanded key must pass (ErrBadKey).
package objkey

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Vars are the values a key template may use.
type Vars struct {
	Vhost, App, Stream string
	// Basename is the file's name without folders.
	Basename string
	// URL is on_hls's segment URL, relative to the HLS root (live/livestream-0.ts). When SRS's
	// hls_entry_prefix makes it absolute, only its path is used.
	URL string
	// M3U8URL is on_hls's playlist URL (live/livestream.m3u8).
	M3U8URL string
	// Path is the file's path relative to the root it lies in.
	Path string
	// For VoD playlists: SRS's client_id and stream_id of the session, and the session's name
	// (its start time and publisher, e.g. 20261125T041500Z-2g6tz380).
	ClientID, StreamID, Session string
}

var keyVarNames = []string{"vhost", "app", "stream", "basename", "url", "m3u8_url", "path", "client_id", "stream_id", "session"}

func (v Vars) get(name string) string {
	switch name {
	case "vhost":
		return v.Vhost
	case "app":
		return v.App
	case "stream":
		return v.Stream
	case "basename":
		return v.Basename
	case "url":
		return urlPath(v.URL)
	case "m3u8_url":
		return urlPath(v.M3U8URL)
	case "path":
		return v.Path
	case "client_id":
		return v.ClientID
	case "stream_id":
		return v.StreamID
	case "session":
		return v.Session
	}
	return ""
}

// Template builds an object key from a template such as "{app}/{stream}/{basename}".
type Template struct {
	text  string
	parts []keyPart
}

type keyPart struct {
	lit string
	v   string // a variable name, when not empty
}

// Parse checks a template: braces balanced, every variable known, not empty.
func Parse(s string) (Template, error) {
	t := Template{text: s}
	if strings.TrimSpace(s) == "" {
		return t, errors.New("empty key template")
	}
	rest := s
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			t.parts = append(t.parts, keyPart{lit: rest})
			break
		}
		if rest[open] == '}' {
			return t, fmt.Errorf("key template %q: '}' without '{'", s)
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return t, fmt.Errorf("key template %q: '{' without '}'", s)
		}
		name := rest[open+1 : open+end]
		if !known(name) {
			return t, fmt.Errorf("key template %q: unknown variable {%s} (known: {%s})", s, name, strings.Join(keyVarNames, "}, {"))
		}
		if open > 0 {
			t.parts = append(t.parts, keyPart{lit: rest[:open]})
		}
		t.parts = append(t.parts, keyPart{v: name})
		rest = rest[open+end+1:]
	}
	return t, nil
}

func known(name string) bool {
	for _, n := range keyVarNames {
		if n == name {
			return true
		}
	}
	return false
}

func (t Template) String() string { return t.text }

// ErrBadKey means a template expanded to a key that cannot be stored safely.
var ErrBadKey = errors.New("bad object key")

// Expand fills in the template. The key must be non-empty, relative, and free of "." and ".."
// segments and control bytes, so that a hook cannot name an object outside its prefix.
func (t Template) Expand(v Vars) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.v == "" {
			b.WriteString(p.lit)
			continue
		}
		val := v.get(p.v)
		if val == "" {
			return "", fmt.Errorf("%w: template %q: {%s} is empty", ErrBadKey, t.text, p.v)
		}
		b.WriteString(val)
	}
	key := utf8Key(b.String())
	if err := checkKey(key); err != nil {
		return "", fmt.Errorf("%w: template %q gave %q: %w", ErrBadKey, t.text, key, err)
	}
	return key, nil
}

// utf8Key makes a key valid UTF-8, as S3 requires: each byte of a file name that is not part of
// valid UTF-8 (SRS writes names as bytes) is written as %XX, upper-case hex ("a\xff.ts" becomes
// "a%FF.ts"). A '%' already in a name is kept, so a file literally named "a%FF.ts" maps to the same
// key; the uploader never replaces another file's object, so the second is stored as name~<id>.
func utf8Key(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			fmt.Fprintf(&b, "%%%02X", s[i])
			i++
			continue
		}
		b.WriteString(s[i : i+n])
		i += n
	}
	return b.String()
}

func checkKey(key string) error {
	if key == "" || len(key) > 1024 {
		return errors.New("empty or longer than 1024 bytes")
	}
	if strings.HasPrefix(key, "/") {
		return errors.New("starts with /")
	}
	for _, c := range key {
		if c < 0x20 || c == 0x7f {
			return errors.New("holds a control byte")
		}
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("has an empty, '.' or '..' segment")
		}
	}
	return nil
}

// urlPath turns on_hls's url into a key path: an absolute http(s) URL gives its path, and a
// leading slash is dropped.
func urlPath(u string) string {
	if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
		if p, err := url.Parse(u); err == nil {
			u = p.Path
		}
	}
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	return strings.TrimLeft(u, "/")
}
