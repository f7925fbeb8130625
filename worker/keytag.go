package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
)

// errKeyUnknown: the stream is encrypted, but SRS's playlist no longer shows which key a segment
// used (it slid out of SRS's window during a backlog). The segment cannot be listed.
var errKeyUnknown = errors.New("encrypted stream: the segment's EXT-X-KEY is no longer in SRS's playlist")

// keyTag returns the EXT-X-KEY line SRS wrote for the segment ("" when it is not encrypted). A
// key file the tag names relative to the playlist is stored first, and the tag then names it by
// object key (playlist.KeyURI), so every playlist can refer to it relative to itself.
func (o *Offloader) keyTag(ctx context.Context, p queue.Offload) (string, error) {
	if p.Playlist == "" {
		return "", nil
	}
	f, _, err := o.Roots.Open(p.Playlist)
	if errors.Is(err, roots.ErrNotExist) {
		return "", nil // no playlist yet (fMP4 init segments come first)
	}
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(io.LimitReader(f, 4<<20))
	f.Close()
	if err != nil {
		return "", err
	}
	tag, uri, found, encrypted := findKeyTag(string(body), filepath.Dir(p.Playlist), p.Path)
	switch {
	case !found && encrypted:
		return "", errKeyUnknown
	case !found || tag == "":
		return "", nil
	case uri == "" || strings.Contains(uri, "://") || strings.HasPrefix(uri, "data:"):
		return tag, nil // a key server or inline key: nothing to store
	}
	local := filepath.Join(filepath.Dir(p.Playlist), filepath.FromSlash(uri))
	objKey := path.Join(path.Dir(p.PlaylistKey), uri)
	if strings.HasPrefix(objKey, "../") {
		return "", fmt.Errorf("key URI %q leaves the bucket", uri)
	}
	kf, fi, err := o.Roots.Open(local)
	if err != nil {
		return "", fmt.Errorf("key file: %w", err)
	}
	defer kf.Close()
	id := fileid.Of(fi)
	origin := fmt.Sprintf("key-%x-%x-%x", id.Ino, id.Size, id.MtimeNs)
	stored, _, err := o.Store.PutNew(ctx, objKey, kf, fi.Size(), media.KeyType, origin)
	if err != nil {
		return "", fmt.Errorf("key file: %w", err)
	}
	return strings.Replace(tag, `URI="`+uri+`"`, `URI="`+playlist.KeyURI(stored)+`"`, 1), nil
}

// findKeyTag looks up segment (a real path) in an m3u8 whose folder is dir, and returns the
// EXT-X-KEY in effect for it and that tag's URI; found reports whether the segment is listed, and
// encrypted whether any segment is.
func findKeyTag(m3u8, dir, segment string) (tag, uri string, found, encrypted bool) {
	cur := ""
	for _, line := range strings.Split(m3u8, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#EXT-X-KEY:"):
			cur = line
			if strings.Contains(line, "METHOD=NONE") {
				cur = ""
			} else {
				encrypted = true
			}
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			if strings.Contains(line, "://") || filepath.Base(line) != filepath.Base(segment) {
				continue
			}
			p := filepath.Join(dir, filepath.FromSlash(line))
			if p != segment {
				if real, err := filepath.EvalSymlinks(p); err != nil || real != segment {
					continue
				}
			}
			return cur, attr(cur, "URI"), true, encrypted || cur != ""
		}
	}
	return "", "", false, encrypted
}

func attr(line, name string) string {
	i := strings.Index(line, name+`="`)
	if i < 0 {
		return ""
	}
	rest := line[i+len(name)+2:]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}
