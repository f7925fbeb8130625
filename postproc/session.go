package postproc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/m3u8"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/queue"
)

// sessionMP4 handles TypeSessionMP4: the VoD playlist of an ended session and its segments are
// downloaded from storage into a temporary folder (the local segments are long gone) and joined
// by ffmpeg into one MP4 without re-encoding; with post.session_mp4 it is stored, verified and
// announced, with post.poster a JPEG of it is too.
func (s *Stage) sessionMP4(ctx context.Context, st queue.Stored) error {
	d := s.Derived
	origin := st.TaskID(queue.TypeSessionMP4)
	var outs []output
	if d.SessionMP4 {
		key, err := d.SessionKey.Expand(st)
		if err != nil {
			return fmt.Errorf("post.session_mp4.key: %w: %w", err, asynq.SkipRetry)
		}
		outs = append(outs, output{event: "session_mp4.stored", role: "mp4", key: key, origin: origin})
	}
	if d.Poster {
		key, err := d.PosterKey.Expand(st)
		if err != nil {
			return fmt.Errorf("post.poster.key: %w: %w", err, asynq.SkipRetry)
		}
		outs = append(outs, output{event: "poster.stored", role: "poster", key: key, origin: origin + "-poster"})
	}
	todo := false
	for i := range outs {
		used, held, err := d.Files.Find(ctx, outs[i].key, outs[i].origin)
		if err != nil {
			return err
		}
		if held {
			outs[i].key, outs[i].done = used, true
		}
		todo = todo || !held
	}
	if todo {
		if err := s.joinSession(ctx, st, outs); err != nil {
			return err
		}
	}
	derived := map[string]string{"playlist": st.Key}
	for _, o := range outs {
		derived[o.role] = o.key
	}
	for _, o := range outs {
		ds := queue.Stored{Event: o.event, Key: o.key, Origin: o.origin, Duration: st.Duration, Vhost: st.Vhost,
			App: st.App, Stream: st.Stream, Session: st.Session, Derived: derived, Time: time.Now().UTC()}
		if err := s.Queue.EnqueuePost(ctx, queue.TypeStored, ds.TaskID(queue.TypeStored), ds, s.Tasks); err != nil {
			return err
		}
	}
	return nil
}

// output is one derived object of a task.
type output struct {
	event, role, key, origin string
	done                     bool
}

// joinSession makes the session's MP4 in a temporary folder, and from it what outs still lack.
func (s *Stage) joinSession(ctx context.Context, st queue.Stored, outs []output) error {
	d := s.Derived
	dir, err := os.MkdirTemp(d.TempDir, "srs-offload-session-")
	if err != nil {
		return fmt.Errorf("post: temporary folder: %w", err)
	}
	defer os.RemoveAll(dir)
	var body bytes.Buffer
	if _, err := d.Files.Download(ctx, st.Key, &body); err != nil {
		return err
	}
	pl, err := m3u8.Parse(body.Bytes())
	if pl == nil || len(pl.Segments) == 0 {
		return fmt.Errorf("vod playlist %s: no segments (%v): %w", st.Key, err, asynq.SkipRetry)
	}
	if pl.Encrypted {
		return fmt.Errorf("vod playlist %s: %w: %w", st.Key, errEncrypted, asynq.SkipRetry)
	}
	var local strings.Builder
	local.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-PLAYLIST-TYPE:VOD\n")
	fmt.Fprintf(&local, "#EXT-X-TARGETDURATION:%d\n", max(pl.Target, 1))
	maps := map[string]string{}
	fetch := func(uri, name string) error {
		k, err := m3u8.ResolveKey(st.Key, uri)
		if err != nil {
			return fmt.Errorf("vod playlist %s: %w: %w", st.Key, err, asynq.SkipRetry)
		}
		return download(ctx, d.Files, k, filepath.Join(dir, name))
	}
	lastMap := ""
	for i, seg := range pl.Segments {
		if seg.Disc && i > 0 {
			local.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if seg.Map != "" && seg.Map != lastMap {
			name, ok := maps[seg.Map]
			if !ok {
				name = "map-" + strconv.Itoa(len(maps)) + ".mp4"
				if err := fetch(seg.Map, name); err != nil {
					return err
				}
				maps[seg.Map] = name
			}
			fmt.Fprintf(&local, "#EXT-X-MAP:URI=%q\n", name)
			lastMap = seg.Map
		}
		name := fmt.Sprintf("seg-%06d%s", i, strings.ToLower(path.Ext(strings.SplitN(seg.URI, "?", 2)[0])))
		if err := fetch(seg.URI, name); err != nil {
			return err
		}
		fmt.Fprintf(&local, "#EXTINF:%.3f,\n%s\n", seg.Duration, name)
	}
	local.WriteString("#EXT-X-ENDLIST\n")
	list := filepath.Join(dir, "session.m3u8")
	if err := os.WriteFile(list, []byte(local.String()), 0o600); err != nil {
		return err
	}
	out := filepath.Join(dir, "session.mp4")
	if err := d.FFmpeg.HLSToMP4(ctx, list, out); err != nil {
		return fmt.Errorf("session mp4 of %s: %w", st.Key, err)
	}
	for i := range outs {
		o := &outs[i]
		if o.done {
			continue
		}
		var err error
		switch o.role {
		case "mp4":
			o.key, err = put(ctx, d.Files, o.key, out, media.MP4Type, o.origin)
		case "poster":
			jpg := filepath.Join(dir, "poster.jpg")
			if err = d.FFmpeg.Poster(ctx, out, jpg, d.PosterOffset); err != nil {
				return fmt.Errorf("poster of %s: %w", st.Key, err)
			}
			o.key, err = put(ctx, d.Files, o.key, jpg, media.PosterType, o.origin)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
