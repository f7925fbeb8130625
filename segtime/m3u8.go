package segtime

import (
	"bufio"
	"bytes"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Listed is one segment of SRS's own media playlist on disk.
type Listed struct {
	URI      string  // as written (relative to the playlist, or absolute with hls_entry_prefix)
	Seq      int64   // EXT-X-MEDIA-SEQUENCE plus its position: SRS's seq_no
	Duration float64 // its EXTINF
	Map      string  // the EXT-X-MAP URI in effect (fMP4), if any
}

// ParseM3U8 reads the segments SRS's .m3u8 lists. Lines it does not know are skipped: SRS's
// playlist is read for the places of segments, not checked.
func ParseM3U8(body []byte) []Listed {
	var out []Listed
	var msn int64
	var dur float64
	var curMap string
	inf := false
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			msn, _ = strconv.ParseInt(line[len("#EXT-X-MEDIA-SEQUENCE:"):], 10, 64)
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			curMap = uriAttr(line)
		case strings.HasPrefix(line, "#EXTINF:"):
			v, _, _ := strings.Cut(line[len("#EXTINF:"):], ",")
			d, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			inf = err == nil && d >= 0
			dur = d
		case strings.HasPrefix(line, "#"):
		default:
			if inf {
				out = append(out, Listed{URI: line, Seq: msn + int64(len(out)), Duration: dur, Map: curMap})
			}
			inf = false
		}
	}
	return out
}

// Find returns the entry of a playlist whose URI names the file at rel (a slash path below the
// root SRS's hls_path is), the playlist itself being at m3u8Rel. An absolute URL (SRS's
// hls_entry_prefix) names it when its path ends with rel.
func Find(entries []Listed, m3u8Rel, rel string) (Listed, bool) {
	for _, e := range entries {
		r := ResolveURI(m3u8Rel, e.URI)
		if r == rel || (isAbs(e.URI) && strings.HasSuffix("/"+r, "/"+rel)) {
			return e, true
		}
	}
	return Listed{}, false
}

func isAbs(uri string) bool {
	u, err := url.Parse(uri)
	return err == nil && (u.IsAbs() || u.Host != "" || strings.HasPrefix(u.Path, "/"))
}

// ResolveURI is the slash path below the root that a URI in the playlist at m3u8Rel names: relative
// URIs against the playlist's folder; an absolute URL (hls_entry_prefix) by the part of its path
// that the folders below the root end with.
func ResolveURI(m3u8Rel, uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	if u.IsAbs() || u.Host != "" || strings.HasPrefix(u.Path, "/") {
		return strings.TrimPrefix(path.Clean("/"+u.Path), "/")
	}
	return path.Join(path.Dir(m3u8Rel), u.Path)
}

func uriAttr(line string) string {
	i := strings.Index(line, `URI="`)
	if i < 0 {
		return ""
	}
	rest := line[i+len(`URI="`):]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return rest[:j]
}
