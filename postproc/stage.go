// Package postproc is srs-offload's post-processing stage: once a DVR recording or a VoD playlist is
// stored and verified, it announces it to the operator's webhooks and makes the derived files
// (an MP4 of the recording, a poster, a session MP4), each stored and verified like any upload
// and announced in turn. It runs on its own queue (post@node) with its own asynq server and
// concurrency, so it never takes an upload's slot or delays a purge. Every task is at-least-once
// and idempotent: ids derive from what was stored, derived uploads are found again by origin.
package postproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/playlist"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/storage"
	"github.com/srs-offload/srs-offload/webhook"
)

// Store is the storage the stage reads and writes (package uploader).
type Store interface {
	Bucket() string
	// Key is a key with the storage prefix.
	Key(key string) string
	Stat(ctx context.Context, key string) (storage.Object, bool, error)
}

// Queue enqueues post-processing tasks (queue.Client).
type Queue interface {
	EnqueuePost(ctx context.Context, typ, id string, payload any, o queue.PostOptions) error
}

// Stage is the post-processing of stored objects.
type Stage struct {
	Store Store
	Queue Queue
	// Webhooks are the receivers of events.
	Webhooks []webhook.Target
	Sender   webhook.Sender
	// PublicURL is the template of an object's public URL ({bucket}, {key}); empty: none.
	PublicURL string
	// Derived, when set, makes MP4s, posters and session MP4s.
	Derived *Derived
	// Tasks are the enqueue options of post tasks (retries, time limit).
	Tasks queue.PostOptions
	Log   *slog.Logger
}

// Recorded starts the post-processing of a DVR recording the worker stored and verified under
// key. It only enqueues (one Redis write); the rest runs on the post queue.
func (s *Stage) Recorded(ctx context.Context, p queue.Offload, key string) error {
	st := queue.Stored{Event: "dvr.stored", Key: key, Origin: p.TaskID(), Size: p.File.Size, Vhost: p.Vhost, App: p.App,
		Stream: p.Stream, Session: p.Client, Time: time.Now().UTC()}
	return s.Queue.EnqueuePost(ctx, queue.TypeStored, st.TaskID(queue.TypeStored), st, s.Tasks)
}

// stored handles TypeStored: it looks the object up, then enqueues one delivery per webhook
// that wants the event, and the derived files of the object.
func (s *Stage) stored(ctx context.Context, st queue.Stored) error {
	obj, found, err := s.Store.Stat(ctx, st.Key)
	if err != nil {
		return err
	}
	if !found && st.Event == "dvr.stored" && s.Derived != nil && s.Derived.Remux == RemuxInstead {
		// A repeat of this task after its MP4 replaced the recording: all was done.
		s.Log.Info("post: recording already replaced by its MP4", "key", st.Key)
		return nil
	}
	if !found {
		return fmt.Errorf("%s: %s is not in storage (deleted since?): %w", st.Event, st.Key, asynq.SkipRetry)
	}
	if d := s.Derived; d != nil {
		// Every enqueue here is deduplicated by its id: a retry of this task repeats none.
		var err error
		switch {
		case st.Event == "dvr.stored" && (d.remuxing() || d.Poster) && recording(st.Key):
			err = s.Queue.EnqueuePost(ctx, queue.TypeDerive, st.TaskID(queue.TypeDerive), st, s.Tasks)
		case st.Event == "vod.stored" && (d.SessionMP4 || d.Poster):
			err = s.Queue.EnqueuePost(ctx, queue.TypeSessionMP4, st.TaskID(queue.TypeSessionMP4), st, s.Tasks)
		}
		if err != nil {
			return err
		}
	}
	return s.announce(ctx, st, obj)
}

// announce enqueues the deliveries of st's event. The body is fixed here, so that every
// delivery of the event sends the same bytes with the same id.
func (s *Stage) announce(ctx context.Context, st queue.Stored, obj storage.Object) error {
	full := s.Store.Key(st.Key)
	ev := webhook.Event{
		ID: webhook.EventID(st.Event, s.Store.Bucket(), full, st.Origin), Event: st.Event, Bucket: s.Store.Bucket(),
		Key: full, URL: webhook.PublicURL(s.PublicURL, s.Store.Bucket(), full), Size: obj.Size, Duration: st.Duration,
		Vhost: st.Vhost, App: st.App, Stream: st.Stream, Session: st.Session, Time: st.Time,
	}
	if obj.ETag != "" {
		ev.Checksum = "etag:" + obj.ETag
	}
	if len(st.Derived) > 0 {
		ev.Derived = map[string]string{}
		for role, k := range st.Derived {
			ev.Derived[role] = s.Store.Key(k)
		}
	}
	body, err := ev.Body()
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	for _, t := range s.Webhooks {
		if !t.Wants(st.Event) {
			continue
		}
		w := queue.Webhook{Target: t.ID(), ID: ev.ID, Body: body}
		if err := s.Queue.EnqueuePost(ctx, queue.TypeWebhook, w.TaskID(), w, s.Tasks); err != nil {
			return err
		}
	}
	return nil
}

// deliver handles TypeWebhook.
func (s *Stage) deliver(ctx context.Context, w queue.Webhook, event string) error {
	for _, t := range s.Webhooks {
		if t.ID() != w.Target {
			continue
		}
		err := s.Sender.Deliver(ctx, t, w.ID, event, w.Body)
		if errors.Is(err, webhook.ErrRejected) {
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		return err
	}
	s.Log.Warn("post: webhook no longer configured; dropping its event", "id", w.ID, "target", w.Target)
	return nil
}

// VODWritten starts the post-processing of a session's VoD playlist: announced, and made into a
// session MP4 when post.session_mp4 is on. A rewrite with more items is a new event.
func (s *Stage) VODWritten(ctx context.Context, v playlist.VOD) error {
	st := queue.Stored{Event: "vod.stored", Key: v.Key, Origin: fmt.Sprintf("vod:%d", v.Items), Duration: v.Duration,
		Vhost: v.Vhost, App: v.App, Stream: v.Stream, Session: v.Session, Time: time.Now().UTC()}
	return s.Queue.EnqueuePost(ctx, queue.TypeStored, st.TaskID(queue.TypeStored), st, s.Tasks)
}
