package reconcile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"path/filepath"
	"strings"

	"github.com/srs-offload/srs-offload/m3u8"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/segtime"
)

// maxM3U8 bounds the SRS playlist read to place a found segment (SRS's lists a few segments).
const maxM3U8 = 1 << 20

// Placer gives an HLS segment found on disk what its hook would have told the playlists: its
// stream's playlist and that playlist's key, its seq_no and its duration. They come from SRS's
// own .m3u8 on disk while it still lists the file (EXT-X-MEDIA-SEQUENCE plus the position, the
// EXTINF); else seq_no comes from the file's name ([seq] in hls_ts_file) and the duration from
// the media itself (package segtime). A segment whose seq_no or duration stays unknown is left
// without playlist: archived, not listed.
type Placer struct {
	Roots *roots.Set
	// M3U8 are SRS's hls_m3u8_file templates relative to the root ([vhost], [app], [stream]).
	M3U8 []string
	// PlaylistKey is keys.playlist.
	PlaylistKey objkey.Template
	Log         *slog.Logger
}

// place fills the playlist fields of a found segment's task (its bytes read from c.disk, its
// spooled link or SRS's name), when the reconciler has a Placer.
func (r *Reconciler) place(p *queue.Offload, c candidate) {
	if r.Placer == nil || p.Kind != queue.KindHLS {
		return
	}
	if t, _ := p.Type(); t.Kind == media.Init {
		return // an fMP4 init segment is listed as EXT-X-MAP, from its hook
	}
	rel, ok := r.Roots.Rel(c.orig)
	if !ok {
		return
	}
	rel = filepath.ToSlash(rel)
	vars, ok := r.Layout.Vars(p.Kind, rel)
	if !ok {
		return
	}
	root := strings.TrimSuffix(c.orig, filepath.FromSlash(rel))
	seq, seqOK := r.Layout.Seq(rel)
	if err := r.Placer.Place(p, root, rel, c.disk, vars, seq, seqOK); err != nil {
		r.Log.Info("reconcile: found segment stored without a place in the playlists", "path", p.Path, "err", err)
	}
}

// Place fills p.Playlist, p.M3U8URL, p.PlaylistKey, p.SeqNo and p.Duration, or returns why it
// cannot (and leaves them empty).
func (pl *Placer) Place(p *queue.Offload, root, rel, disk string, vars objkey.Vars, seq int64, seqOK bool) error {
	rel = filepath.ToSlash(rel)
	first := ""
	var mapURI string
	for _, t := range pl.M3U8 {
		m3u8Rel, ok := expandSRS(t, vars)
		if !ok {
			continue
		}
		body, err := pl.read(filepath.Join(root, filepath.FromSlash(m3u8Rel)), maxM3U8)
		if err != nil {
			if first == "" && !errors.Is(err, roots.ErrNotExist) {
				pl.log().Debug("reconcile: cannot read SRS's playlist", "m3u8", m3u8Rel, "err", err)
			}
			continue
		}
		if first == "" {
			first = m3u8Rel
		}
		list, _ := m3u8.Parse(body) // SRS's playlist is read for the places of segments, not checked
		if e, ok := list.Find(m3u8Rel, rel); ok {
			return pl.fill(p, root, m3u8Rel, vars, e.Seq, e.Duration)
		}
		if n := len(list.Segments); mapURI == "" && n > 0 && list.Segments[n-1].Map != "" {
			mapURI = m3u8.ResolveURI(m3u8Rel, list.Segments[n-1].Map)
		}
	}
	if first == "" {
		// SRS's playlist is gone (or never was): its name from the first template still gives the key.
		for _, t := range pl.M3U8 {
			if m, ok := expandSRS(t, vars); ok {
				first = m
				break
			}
		}
	}
	if first == "" {
		return fmt.Errorf("no reconcile.hls_m3u8_file template names this stream's playlist")
	}
	if !seqOK {
		return fmt.Errorf("SRS's playlist %s does not list it and its name has no [seq]", first)
	}
	t, err := pl.timing(root, rel, disk, vars, mapURI)
	if err != nil {
		return fmt.Errorf("SRS's playlist %s does not list it and its duration is unknown: %w", first, err)
	}
	return pl.fill(p, root, first, vars, seq, t.Duration)
}

func (pl *Placer) fill(p *queue.Offload, root, m3u8Rel string, vars objkey.Vars, seq int64, dur float64) error {
	vars.M3U8URL = m3u8Rel
	key, err := pl.PlaylistKey.Expand(vars)
	if err != nil {
		return fmt.Errorf("keys.playlist: %w", err)
	}
	p.Playlist = filepath.Join(root, filepath.FromSlash(m3u8Rel))
	p.M3U8URL, p.PlaylistKey, p.SeqNo, p.Duration = m3u8Rel, key, seq, dur
	return nil
}

// timing reads the segment's duration from its bytes: MPEG-TS, or fMP4 with its init segment
// (SRS's EXT-X-MAP, else an init.mp4 beside it as SRS's hls_init_file defaults put it).
func (pl *Placer) timing(root, rel, disk string, vars objkey.Vars, mapURI string) (segtime.Timing, error) {
	f, _, err := pl.Roots.Open(disk)
	if err != nil {
		return segtime.Timing{}, err
	}
	defer f.Close()
	switch strings.ToLower(path.Ext(rel)) {
	case ".ts":
		return segtime.TS(f)
	case ".m4s":
		dir := path.Dir(rel)
		var lastErr error = errors.New("no init segment found")
		for _, c := range []string{mapURI, path.Join(dir, "init.mp4"), path.Join(dir, vars.Stream, "init.mp4"), path.Join(dir, vars.Stream+"-init.mp4")} {
			if c == "" {
				continue
			}
			b, err := pl.read(filepath.Join(root, filepath.FromSlash(c)), 4<<20)
			if err != nil {
				continue
			}
			in, err := segtime.ParseInit(bytes.NewReader(b))
			if err != nil {
				lastErr = err
				continue
			}
			return in.Fragment(f)
		}
		return segtime.Timing{}, lastErr
	}
	return segtime.Timing{}, fmt.Errorf("no timing reader for %s files", path.Ext(rel))
}

// read reads a small file below a root, at most limit bytes.
func (pl *Placer) read(p string, limit int64) ([]byte, error) {
	f, _, err := pl.Roots.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

func (pl *Placer) log() *slog.Logger {
	if pl.Log == nil {
		return slog.Default()
	}
	return pl.Log
}

// expandSRS substitutes SRS's [vhost], [app] and [stream] in an hls_m3u8_file template; false
// when it has another variable, a value is unknown, or the path leads out of the root.
func expandSRS(t string, v objkey.Vars) (string, bool) {
	s := strings.NewReplacer("[vhost]", v.Vhost, "[app]", v.App, "[stream]", v.Stream).Replace(t)
	if strings.ContainsAny(s, "[]") || (strings.Contains(t, "[app]") && v.App == "") || (strings.Contains(t, "[stream]") && v.Stream == "") {
		return "", false
	}
	s = path.Clean(s)
	if path.IsAbs(s) || escapes(s) {
		return "", false // a value or the template leads out of the root
	}
	return s, true
}

// CheckM3U8Template reports what is wrong with one hls_m3u8_file template.
func CheckM3U8Template(t string) error {
	if t == "" || strings.HasPrefix(t, "/") {
		return fmt.Errorf("%q: must be a path relative to the root, like SRS's hls_m3u8_file", t)
	}
	if escapes(t) {
		return fmt.Errorf("%q: a '..' segment leads out of the root", t)
	}
	if !strings.HasSuffix(strings.ToLower(t), ".m3u8") {
		return fmt.Errorf("%q: must end in .m3u8", t)
	}
	rest := strings.NewReplacer("[vhost]", "", "[app]", "", "[stream]", "").Replace(t)
	if strings.ContainsAny(rest, "[]") {
		return fmt.Errorf("%q: only [vhost], [app] and [stream] are known in hls_m3u8_file", t)
	}
	return nil
}
