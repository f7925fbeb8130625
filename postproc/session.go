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
// downloaded from storage into a temporary folder (the local segments are long gone), joined by
// ffmpeg into one MP4 without re-encoding, stored, verified and announced.
func (s *Stage) sessionMP4(ctx context.Context, st queue.Stored) error {
	d := s.Derived
	key, err := d.SessionKey.Expand(st)
	if err != nil {
		return fmt.Errorf("post.session_mp4.key: %w: %w", err, asynq.SkipRetry)
	}
	origin := st.TaskID(queue.TypeSessionMP4)
	used, held, err := d.Files.Find(ctx, key, origin)
	if err != nil {
		return err
	}
	if !held {
		if used, err = s.joinSession(ctx, st, key, origin); err != nil {
			return err
		}
	}
	ds := queue.Stored{Event: "session_mp4.stored", Key: used, Origin: origin, Duration: st.Duration, Vhost: st.Vhost,
		App: st.App, Stream: st.Stream, Session: st.Session, Derived: map[string]string{"playlist": st.Key}, Time: time.Now().UTC()}
	return s.Queue.EnqueuePost(ctx, queue.TypeStored, ds.TaskID(queue.TypeStored), ds, s.Tasks)
}

func (s *Stage) joinSession(ctx context.Context, st queue.Stored, key, origin string) (string, error) {
	d := s.Derived
	dir, err := os.MkdirTemp(d.TempDir, "srs-offload-session-")
	if err != nil {
		return "", fmt.Errorf("post: temporary folder: %w", err)
	}
	defer os.RemoveAll(dir)
	var body bytes.Buffer
	if _, err := d.Files.Download(ctx, st.Key, &body); err != nil {
		return "", err
	}
	pl, err := m3u8.Parse(body.Bytes())
	if pl == nil || len(pl.Segments) == 0 {
		return "", fmt.Errorf("vod playlist %s: no segments (%v): %w", st.Key, err, asynq.SkipRetry)
	}
	if pl.Encrypted {
		return "", fmt.Errorf("vod playlist %s: %w: %w", st.Key, errEncrypted, asynq.SkipRetry)
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
					return "", err
				}
				maps[seg.Map] = name
			}
			fmt.Fprintf(&local, "#EXT-X-MAP:URI=%q\n", name)
			lastMap = seg.Map
		}
		name := fmt.Sprintf("seg-%06d%s", i, strings.ToLower(path.Ext(strings.SplitN(seg.URI, "?", 2)[0])))
		if err := fetch(seg.URI, name); err != nil {
			return "", err
		}
		fmt.Fprintf(&local, "#EXTINF:%.3f,\n%s\n", seg.Duration, name)
	}
	local.WriteString("#EXT-X-ENDLIST\n")
	list := filepath.Join(dir, "session.m3u8")
	if err := os.WriteFile(list, []byte(local.String()), 0o600); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "session.mp4")
	if err := d.FFmpeg.HLSToMP4(ctx, list, out); err != nil {
		return "", fmt.Errorf("session mp4 of %s: %w", st.Key, err)
	}
	return put(ctx, d.Files, key, out, media.MP4Type, origin)
}
