// Package hook receives SRS's http_hooks. It answers at once, and for on_dvr and on_hls it first
// validates the file and records one offload task durably. It never reads file contents or talks
// to storage. Which files a hook may name, and which are spooled, is queue.TypeOf's decision.
package hook

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Request is the JSON SRS POSTs, decoded leniently: every SRS version from 3 to 7 fits, fields
// missing in older ones stay empty, and client_id may be a number (SRS ≤ 3) or a string.
//
// File names are bytes: SRS writes a name that is not UTF-8 into its JSON raw, and Go's
// encoding/json would turn each such byte into U+FFFD, naming a file that does not exist. So
// cwd, file, url and m3u8 keep the exact bytes SRS sent (see UnmarshalJSON).
type Request struct {
	Action   string          `json:"action"`
	ClientID json.RawMessage `json:"client_id"`
	ServerID string          `json:"server_id"`
	StreamID string          `json:"stream_id"`
	Vhost    string          `json:"vhost"`
	App      string          `json:"app"`
	Stream   string          `json:"stream"`
	Param    string          `json:"param"`
	Cwd      string          `json:"cwd"`
	File     string          `json:"file"`
	// on_hls only.
	URL      string  `json:"url"`
	M3U8     string  `json:"m3u8"`
	M3U8URL  string  `json:"m3u8_url"`
	SeqNo    int64   `json:"seq_no"`
	Duration float64 `json:"duration"`
}

// actions SRS may send that srs-offload answers with success and otherwise ignores, so it can be
// SRS's only hook target.
var ignored = map[string]bool{
	"on_connect": true, "on_close": true,
	"on_publish": true, "on_unpublish": true,
	"on_play": true, "on_stop": true,
}

// UnmarshalJSON decodes a hook body like encoding/json does, except that cwd, file, url and m3u8
// keep their raw bytes when they are not valid UTF-8.
func (r *Request) UnmarshalJSON(b []byte) error {
	type plain Request // without this method
	var raw struct {
		plain
		Cwd  json.RawMessage `json:"cwd"`
		File json.RawMessage `json:"file"`
		URL  json.RawMessage `json:"url"`
		M3U8 json.RawMessage `json:"m3u8"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = Request(raw.plain)
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{{"cwd", raw.Cwd, &r.Cwd}, {"file", raw.File, &r.File}, {"url", raw.URL, &r.URL}, {"m3u8", raw.M3U8, &r.M3U8}} {
		s, err := rawString(f.raw)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		*f.dst = s
	}
	return nil
}

// rawString unquotes a JSON string (already checked by encoding/json) byte for byte: escapes are
// decoded, every other byte is kept as it is, valid UTF-8 or not. null and an absent value are "".
func rawString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", fmt.Errorf("want a string, got %.20s", raw)
	}
	in := raw[1 : len(raw)-1]
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(in) {
			return "", fmt.Errorf("string ends in a backslash")
		}
		switch in[i] {
		case '"', '\\', '/':
			out = append(out, in[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n, err := unicodeEscape(in[i-1:])
			if err != nil {
				return "", err
			}
			out = utf8.AppendRune(out, r)
			i += n - 2
		default:
			return "", fmt.Errorf("bad escape \\%c", in[i])
		}
	}
	return string(out), nil
}

// unicodeEscape reads \uXXXX at the start of b, or a surrogate pair \uXXXX\uXXXX, and returns the
// rune (U+FFFD for a lone surrogate, as encoding/json does) and the bytes read.
func unicodeEscape(b []byte) (rune, int, error) {
	hex4 := func(b []byte) (rune, bool) {
		if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(b[2:6]), 16, 16)
		return rune(v), err == nil
	}
	r, ok := hex4(b)
	if !ok {
		return 0, 0, fmt.Errorf("bad \\u escape")
	}
	if utf16.IsSurrogate(r) {
		if r2, ok := hex4(b[6:]); ok {
			if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
				return dec, 12, nil
			}
		}
		return utf8.RuneError, 6, nil
	}
	return r, 6, nil
}
