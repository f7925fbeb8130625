package postproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/remux"
	"github.com/srs-offload/srs-offload/storage"
)

// Files is what the derived files need of storage beyond Store (package uploader).
type Files interface {
	Download(ctx context.Context, key string, w io.Writer) (int64, error)
	PutNew(ctx context.Context, key string, src storage.Source, size int64, t media.Type, origin string) (string, storage.Object, error)
	Find(ctx context.Context, key, origin string) (string, bool, error)
	Delete(ctx context.Context, key string) error
}

// Remux modes of post.remux.
const (
	RemuxOff     = "off"
	RemuxBeside  = "beside"
	RemuxInstead = "instead"
)

// Derived configures the files made from recordings and sessions.
type Derived struct {
	Files Files
	// FFmpeg runs ffmpeg (Path found on PATH, Nice, Timeout).
	FFmpeg remux.FFmpeg
	// Remux is RemuxOff (or ""), RemuxBeside or RemuxInstead; RemuxKey names the MP4.
	Remux    string
	RemuxKey Key
	// Poster, when set, makes a JPEG at PosterOffset, named by PosterKey.
	Poster       bool
	PosterOffset time.Duration
	PosterKey    Key
	// SessionMP4, when set, makes one MP4 per VoD playlist, named by SessionKey.
	SessionMP4 bool
	SessionKey Key
	// TempDir is where downloads and ffmpeg's outputs live while a task runs (default: the
	// system's); each task's folder is removed on every path.
	TempDir string
}

func (d *Derived) remuxing() bool { return d != nil && d.Remux != "" && d.Remux != RemuxOff }

// recording reports whether a DVR key is something ffmpeg remuxes (FLV, MP4).
func recording(key string) bool {
	switch strings.ToLower(path.Ext(key)) {
	case ".flv", ".mp4":
		return true
	}
	return false
}

// derive handles TypeDerive: one download of the recording, then its MP4 and its poster, each
// stored and verified (and found again by origin when an earlier attempt stored it), then the
// recording deleted when post.remux is instead, and the derived files announced.
func (s *Stage) derive(ctx context.Context, st queue.Stored) error {
	d := s.Derived
	origin := st.TaskID(queue.TypeDerive)
	var mp4Key, posterKey string
	var err error
	wantMP4 := d.remuxing()
	if wantMP4 {
		if mp4Key, err = d.RemuxKey.Expand(st); err != nil {
			return fmt.Errorf("post.remux_key: %w: %w", err, asynq.SkipRetry)
		}
		if mp4Key == st.Key {
			// An MP4 recording named like its own MP4: only made faststart when it is not.
			mp4Key = strings.TrimSuffix(mp4Key, path.Ext(mp4Key)) + ".faststart.mp4"
		}
	}
	if d.Poster {
		if posterKey, err = d.PosterKey.Expand(st); err != nil {
			return fmt.Errorf("post.poster.key: %w: %w", err, asynq.SkipRetry)
		}
	}
	mp4Done, posterDone := !wantMP4, !d.Poster
	if wantMP4 {
		if k, held, err := d.Files.Find(ctx, mp4Key, origin+"-mp4"); err != nil {
			return err
		} else if held {
			mp4Key, mp4Done = k, true
		}
	}
	if d.Poster {
		if k, held, err := d.Files.Find(ctx, posterKey, origin+"-poster"); err != nil {
			return err
		} else if held {
			posterKey, posterDone = k, true
		}
	}
	if !mp4Done || !posterDone {
		if err := s.makeDerived(ctx, st, origin, &mp4Key, &posterKey, mp4Done, posterDone, &st.Duration); err != nil {
			return err
		}
	}
	if wantMP4 && d.Remux == RemuxInstead && mp4Key != "" {
		// Only now that the MP4 is verified in storage.
		if err := d.Files.Delete(ctx, st.Key); err != nil {
			return err
		}
	}
	derived := map[string]string{"source": st.Key}
	if mp4Key != "" {
		derived["mp4"] = mp4Key
	}
	if posterKey != "" {
		derived["poster"] = posterKey
	}
	for _, x := range []struct{ event, key, origin string }{{"mp4.stored", mp4Key, origin + "-mp4"}, {"poster.stored", posterKey, origin + "-poster"}} {
		if x.key == "" {
			continue
		}
		ds := queue.Stored{Event: x.event, Key: x.key, Origin: x.origin, Duration: st.Duration, Vhost: st.Vhost, App: st.App,
			Stream: st.Stream, Session: st.Session, Derived: derived, Time: time.Now().UTC()}
		if err := s.Queue.EnqueuePost(ctx, queue.TypeStored, ds.TaskID(queue.TypeStored), ds, s.Tasks); err != nil {
			return err
		}
	}
	return nil
}

// makeDerived downloads the recording into a temporary folder and makes what is not done yet.
// mp4Key and posterKey become the keys PutNew used; mp4Key is emptied when the recording is an
// MP4 that already plays from its start. duration becomes ffprobe's, when there is ffprobe.
func (s *Stage) makeDerived(ctx context.Context, st queue.Stored, origin string, mp4Key, posterKey *string, mp4Done, posterDone bool, duration *float64) error {
	d := s.Derived
	dir, err := os.MkdirTemp(d.TempDir, "srs-offload-post-")
	if err != nil {
		return fmt.Errorf("post: temporary folder: %w", err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "source"+strings.ToLower(path.Ext(st.Key)))
	if err := download(ctx, d.Files, st.Key, src); err != nil {
		return err
	}
	if dur, err := d.FFmpeg.Duration(ctx, src); err != nil {
		s.Log.Warn("post: no duration for the recording's events", "key", st.Key, "err", err)
	} else if dur > 0 {
		*duration = dur
	}
	if !mp4Done {
		skip := false
		if strings.EqualFold(path.Ext(st.Key), ".mp4") {
			fast, err := remux.FastStart(src)
			if err != nil {
				return fmt.Errorf("%s: %w: %w", st.Key, err, asynq.SkipRetry)
			}
			skip = fast
		}
		if skip {
			*mp4Key = ""
		} else {
			out := filepath.Join(dir, "out.mp4")
			if err := d.FFmpeg.ToMP4(ctx, src, out); err != nil {
				return fmt.Errorf("remux %s: %w", st.Key, err)
			}
			if *mp4Key, err = put(ctx, d.Files, *mp4Key, out, media.MP4Type, origin+"-mp4"); err != nil {
				return err
			}
			os.Remove(out)
		}
	}
	if !posterDone {
		out := filepath.Join(dir, "poster.jpg")
		if err := d.FFmpeg.Poster(ctx, src, out, d.PosterOffset); err != nil {
			return fmt.Errorf("poster of %s: %w", st.Key, err)
		}
		if *posterKey, err = put(ctx, d.Files, *posterKey, out, media.PosterType, origin+"-poster"); err != nil {
			return err
		}
	}
	return nil
}

func download(ctx context.Context, files Files, key, dst string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := files.Download(ctx, key, f); err != nil {
		return err
	}
	return f.Close()
}

// put uploads a local file like any upload: verified, never replacing another's object.
func put(ctx context.Context, files Files, key, local string, t media.Type, origin string) (string, error) {
	f, err := os.Open(local)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	used, _, err := files.PutNew(ctx, key, f, fi.Size(), t, origin)
	if err != nil {
		return "", fmt.Errorf("store %s: %w", key, err)
	}
	return used, nil
}

// errEncrypted refuses a session whose segments SRS encrypted.
var errEncrypted = errors.New("encrypted HLS (EXT-X-KEY) is not joined into a session MP4")
