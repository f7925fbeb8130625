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
	"github.com/srs-offload/srs-offload/m3u8"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
)

// A segment's EXT-X-KEY comes from SRS's playlist, read beneath the root (roots) and parsed with
// package m3u8, the one reader of playlists.

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
	tag, uri, found, encrypted := findKeyTag(o.Roots, body, p.Playlist, p.Path)
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

// findKeyTag looks up segment (a real path) in SRS's playlist at m3u8Path, and returns the
// EXT-X-KEY in effect for it and that tag's URI; found reports whether the segment is listed, and
// encrypted whether any segment is. A URI names the segment by its path, or through symlinks
// resolved beneath the root (roots.Set.Resolve): a symlink that leads out of the root is never
// followed, not even to come back in.
func findKeyTag(rs *roots.Set, body []byte, m3u8Path, segment string) (tag, uri string, found, encrypted bool) {
	list, _ := m3u8.Parse(body) // SRS's playlist is read for the segment's key, not checked
	dir := filepath.Dir(m3u8Path)
	s, ok := segmentOf(rs, list, dir, filepath.Base(m3u8Path), segment)
	if !ok {
		return "", "", false, list.Encrypted
	}
	return s.Key, m3u8.Attr(s.Key, "URI"), true, list.Encrypted
}

func segmentOf(rs *roots.Set, list *m3u8.Playlist, dir, name, segment string) (m3u8.Segment, bool) {
	if rel, err := filepath.Rel(dir, segment); err == nil {
		if s, ok := list.Find(name, filepath.ToSlash(rel)); ok {
			return s, true
		}
	}
	for _, s := range list.Segments {
		if m3u8.IsAbs(s.URI) || path.Base(s.URI) != filepath.Base(segment) {
			continue
		}
		if real, _, err := rs.Resolve(dir, filepath.FromSlash(s.URI)); err == nil && real == segment {
			return s, true
		}
	}
	return m3u8.Segment{}, false
}
