package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// KindPost is the queue of post-processing (webhooks, remuxing, posters, session MP4s). Its own
// server takes it with its own concurrency, so post-processing never holds an upload's slot.
const KindPost = "post"

// Post-processing task types, all on the post queue.
const (
	// TypeStored starts the post-processing of one stored and verified object (a DVR recording,
	// a VoD playlist): it announces it and schedules its derived files.
	TypeStored = "post:stored"
	// TypeWebhook delivers one event to one webhook.
	TypeWebhook = "post:webhook"
	// TypeDerive makes the files derived from a DVR recording: its MP4 (post.remux) and its
	// poster (post.poster), from one download of it.
	TypeDerive = "post:derive"
	// TypeSessionMP4 makes the MP4 of a whole session from its VoD playlist.
	TypeSessionMP4 = "post:session_mp4"
)

// Stored is the payload of the post-processing tasks but TypeWebhook: an object in storage and
// what it was made from.
type Stored struct {
	// Event is what happened: "dvr.stored", "vod.stored", "mp4.stored", "poster.stored",
	// "session_mp4.stored".
	Event string `json:"event"`
	// Key is the object's key, without the storage prefix.
	Key string `json:"key"`
	// Origin identifies what was stored (the offload task's TaskID, or the VoD's key and size);
	// the event's id derives from it, so a repeated task announces the same event.
	Origin string `json:"origin"`
	// Size is the stored bytes (0: unknown, the post stage looks it up).
	Size int64 `json:"size,omitempty"`
	// Duration is the media's duration in seconds (0: unknown).
	Duration float64 `json:"duration,omitempty"`
	Vhost    string  `json:"vhost,omitempty"`
	App      string  `json:"app,omitempty"`
	Stream   string  `json:"stream,omitempty"`
	// Session is SRS's client_id of the publisher, or the VoD playlist's session name.
	Session string `json:"session,omitempty"`
	// Derived are the keys made from this object so far, by role ("mp4", "poster", "source").
	Derived map[string]string `json:"derived,omitempty"`
	// Time is when the object was stored.
	Time time.Time `json:"time"`
}

// TaskID makes one task of a type per stored object.
func (s Stored) TaskID(typ string) string {
	h := sha256.Sum256([]byte(typ + "\x00" + s.Event + "\x00" + s.Key + "\x00" + s.Origin))
	return typ + "-" + hex.EncodeToString(h[:16])
}

// Webhook is the payload of a TypeWebhook task: one event's body for one target.
type Webhook struct {
	// Target names the webhook by a hash of its URL (never the URL, which may carry a token):
	// the config's list may change between enqueue and delivery, and a removed target's events
	// are then dropped.
	Target string `json:"target"`
	// ID is the event's idempotency id, the same on every delivery of it.
	ID string `json:"id"`
	// Body is the JSON body, fixed at enqueue: every delivery sends the same bytes.
	Body json.RawMessage `json:"body"`
}

// TaskID makes one delivery task per event and target.
func (w Webhook) TaskID() string {
	h := sha256.Sum256([]byte(w.ID + "\x00" + w.Target))
	return "webhook-" + hex.EncodeToString(h[:16])
}

// PostOptions are the enqueue-time settings of post-processing tasks.
type PostOptions struct {
	MaxRetry int
	Timeout  time.Duration
}

// EnqueuePost records one post-processing task on the node's post queue, once: a repeat within
// the dedup window (asynq delivers at least once, and a retried upload announces again) is not
// an error.
func (c *Client) EnqueuePost(ctx context.Context, typ, id string, payload any, o PostOptions) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Minute
	}
	_, err = c.c.EnqueueContext(ctx, asynq.NewTask(typ, b),
		asynq.TaskID(id),
		asynq.Queue(Name(KindPost, c.opts.Node)),
		asynq.MaxRetry(o.MaxRetry),
		asynq.Timeout(o.Timeout),
		asynq.Retention(c.opts.Dedup),
	)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("enqueue %s %s: %w", typ, id, err)
	}
	return nil
}

// PostKey is the object key a post-processing task is about (for operators' listings): the
// stored object's, or the announced event's.
func PostKey(typ string, payload []byte) (string, bool) {
	switch typ {
	case TypeStored, TypeDerive, TypeSessionMP4:
		var st Stored
		if json.Unmarshal(payload, &st) == nil && st.Key != "" {
			return st.Key, true
		}
	case TypeWebhook:
		var w Webhook
		var ev struct {
			Key string `json:"key"`
		}
		if json.Unmarshal(payload, &w) == nil && json.Unmarshal(w.Body, &ev) == nil && ev.Key != "" {
			return ev.Key, true
		}
	}
	return "", false
}
