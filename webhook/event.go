package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strings"
	"time"
)

// Event is the JSON body of a delivery.
type Event struct {
	// ID is the idempotency id, also in Srs-Offload-Event-Id: the same on every delivery.
	ID string `json:"id"`
	// Event is what happened: dvr.stored, vod.stored, mp4.stored, poster.stored,
	// session_mp4.stored.
	Event  string `json:"event"`
	Bucket string `json:"bucket"`
	// Key is the object's full key in the bucket (with the storage prefix).
	Key string `json:"key"`
	// URL is the object's public URL, from post.public_url (empty without it).
	URL string `json:"url,omitempty"`
	// Size is the stored bytes.
	Size int64 `json:"size"`
	// Duration is the media's duration in seconds, when known.
	Duration float64 `json:"duration,omitempty"`
	Vhost    string  `json:"vhost,omitempty"`
	App      string  `json:"app,omitempty"`
	Stream   string  `json:"stream,omitempty"`
	Session  string  `json:"session,omitempty"`
	// Checksum is storage's ETag of the object ("etag:<hex>"), for the receiver to compare with
	// what it downloads (the MD5 of a single-part upload).
	Checksum string `json:"checksum,omitempty"`
	// Derived are the full keys of objects made from this one, by role (mp4, poster, source).
	Derived map[string]string `json:"derived,omitempty"`
	// Time is when the object was stored.
	Time time.Time `json:"time"`
}

// EventID is the idempotency id of an event about key made from origin: a repeated task gives
// the same id.
func EventID(event, bucket, key, origin string) string {
	h := sha256.Sum256([]byte(event + "\x00" + bucket + "\x00" + key + "\x00" + origin))
	return "evt_" + hex.EncodeToString(h[:12])
}

// Body is the JSON of an event.
func (e Event) Body() ([]byte, error) { return json.Marshal(e) }

// PublicURL expands a public URL template: {bucket}, and {key} with each path segment escaped.
// An empty template gives "".
func PublicURL(tmpl, bucket, key string) string {
	if tmpl == "" {
		return ""
	}
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.NewReplacer("{bucket}", url.PathEscape(bucket), "{key}", strings.Join(segs, "/")).Replace(tmpl)
}
