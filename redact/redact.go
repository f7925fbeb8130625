// Package redact hides the credentials a URL may carry (https://user:password@host/…) before the
// URL reaches a log line or an error message. It is the one place that decides how: the whole
// user information is replaced by "xxxxx", since the user name alone is often a token too.
package redact

import (
	"regexp"
	"strings"
)

// Mask is what replaces the user information of a URL.
const Mask = "xxxxx"

// URL returns the URL s with its user information masked, leaving the rest as written (a
// template's {key} stays readable). s is one URL, valid or not: its user information is all
// between "://" and the last '@' before the host's '/', '?' or '#', spaces included, whatever
// the scheme.
func URL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
		return s[:i+3] + Mask + Text(rest[at:])
	}
	return s[:i+3] + Text(rest)
}

// userinfo matches "://userinfo@" anywhere in a text, after any scheme (a mistyped one too).
// The user information ends at the last '@' before the host's '/', '?', '#' or a space.
var userinfo = regexp.MustCompile(`(://)[^/?#\s]*@`)

// Text masks the user information of every URL inside a free text, such as an error message
// that quotes one.
func Text(s string) string {
	return userinfo.ReplaceAllString(s, "${1}"+Mask+"@")
}

// Error returns err with its message redacted by Text; errors.Is and errors.As still see err.
// A nil err stays nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := Text(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redacted{msg: msg, err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
