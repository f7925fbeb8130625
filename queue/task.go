// Package queue defines srs-offload's asynq tasks: their types, payloads, identity (TaskID, from
// the path and the file's fileid.ID) and per-node queues, and the client that enqueues them durably
// in Redis. It owns the one decision of what a task's file is (TypeOf: its media type by the hook
// that names it), which the receiver, the worker, the reconciler and the playlists all use.
package queue

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/srs-offload/srs-offload/fileid"
)

// Task types.
const (
	// TypeOffload uploads one closed file (HLS segment, fMP4 init, DVR recording), verifies it and
	// purges the local copy.
	TypeOffload = "offload"
	// TypeEnd ends a publish session: its VoD playlist is written once its segments are stored.
	TypeEnd = "playlist:end"
	// TypeWarm warms the CDN edges with one stored segment.
	TypeWarm = "warm"
)

// Kinds of offload; each has its own queue so DVR backlogs cannot starve live segments.
const (
	KindHLS = "hls"
	KindDVR = "dvr"
	// KindWarm is the queue of CDN warming, below offloading.
	KindWarm = "warm"
)

// Offload is the payload of a TypeOffload task. It carries everything the worker needs, so the
// worker never looks at the hook again.
type Offload struct {
	Kind string `json:"kind"` // KindHLS or KindDVR
	// Path is the resolved absolute path of the file, inside a root.
	Path string `json:"path"`
	// Key is the object key (without the storage prefix).
	Key string `json:"key"`
	// File is the identity of the file at hook time.
	File fileid.ID `json:"file"`

	Vhost  string `json:"vhost,omitempty"`
	App    string `json:"app,omitempty"`
	Stream string `json:"stream,omitempty"`
	// M3U8URL is on_hls's m3u8_url: its folder is where on_hls_notify's [ts_url] is relative to.
	M3U8URL string `json:"m3u8_url,omitempty"`
	// Client is SRS's client_id of the publisher (a string or, in SRS 3, a number); a new one
	// means a new publish session.
	Client string `json:"client,omitempty"`
	// StreamID is SRS's stream_id (SRS 5+), for VoD key templates.
	StreamID string `json:"stream_id,omitempty"`

	// HLS only: the stream's playlist on disk and its key, and the segment's place in it.
	Playlist    string  `json:"playlist,omitempty"`
	PlaylistKey string  `json:"playlist_key,omitempty"`
	SeqNo       int64   `json:"seq_no,omitempty"`
	Duration    float64 `json:"duration,omitempty"`

	// Hooked is when the hook arrived, for end-to-end latency.
	Hooked time.Time `json:"hooked"`
	// Followup marks a second task for a file whose hook found a task already in the queue (the
	// reconciler's, made without the hook's playlist fields, or an earlier delivery). It has its
	// own queue id, the same TaskID: it finds the file stored by the first and tells the playlists.
	Followup bool `json:"followup,omitempty"`

	// Shared volume (queue.scope shared:<name>, see Scope): the volume's name, the mount point of
	// the host that enqueued the task (Path and Playlist are below it) and that host's node. Empty
	// for a node's task.
	Volume string `json:"volume,omitempty"`
	Mount  string `json:"mount,omitempty"`
	Node   string `json:"node,omitempty"`
}

// TaskID is the asynq task id: a hash of the path and the file's identity. Enqueueing the same
// file twice conflicts, so it is uploaded once.
//
// A shared volume's task (Volume set) is named by the volume, the path relative to it, and the
// file's inode, size and mtime: every host mounting the volume makes the same id for one file,
// whatever its mount point and the device number it sees (NFS clients differ in both).
func (p Offload) TaskID() string {
	h := sha256.New()
	if rel, ok := p.Rel(); ok {
		fmt.Fprintf(h, "%s\x00shared:%s\x00%s\x00%d\x00%d\x00%d", p.Kind, p.Volume, rel, p.File.Ino, p.File.Size, p.File.MtimeNs)
		return p.Kind + "-" + hex.EncodeToString(h.Sum(nil)[:16])
	}
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00%d\x00%d", p.Kind, p.Path, p.File.Dev, p.File.Ino, p.File.Size, p.File.MtimeNs)
	return p.Kind + "-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// QueueID is the asynq task id: TaskID, or a follow-up's own id.
func (p Offload) QueueID() string {
	if p.Followup {
		return p.TaskID() + "-f"
	}
	return p.TaskID()
}

// Encode is the task payload.
//
// It is MarshalJSON itself: json.Marshal(p) would call it and then scan and copy its (already
// compact, already HTML-escaped) output once more, which a profile of the hook path showed.
func (p Offload) Encode() ([]byte, error) { return p.MarshalJSON() }

// offloadFields is Offload without its JSON methods.
type offloadFields Offload

// offloadWire is the JSON form of an Offload. File names are bytes, but a JSON string holds only
// UTF-8 (encoding/json turns every other byte into U+FFFD), so a Path or Playlist that is not
// valid UTF-8 is carried exactly in path_b64 or playlist_b64 (standard base64), and path or
// playlist then hold a readable form (U+FFFD for each bad byte) for people looking at the queue.
// A valid UTF-8 path is encoded as before, so payloads and TaskIDs do not change.
type offloadWire struct {
	offloadFields
	PathB64     string `json:"path_b64,omitempty"`
	PlaylistB64 string `json:"playlist_b64,omitempty"`
	MountB64    string `json:"mount_b64,omitempty"`
}

// MarshalJSON writes the payload, carrying non-UTF-8 paths losslessly (see offloadWire).
func (p Offload) MarshalJSON() ([]byte, error) {
	w := offloadWire{offloadFields: offloadFields(p)}
	if !utf8.ValidString(p.Path) {
		w.PathB64, w.Path = base64.StdEncoding.EncodeToString([]byte(p.Path)), strings.ToValidUTF8(p.Path, "\uFFFD")
	}
	if !utf8.ValidString(p.Playlist) {
		w.PlaylistB64, w.Playlist = base64.StdEncoding.EncodeToString([]byte(p.Playlist)), strings.ToValidUTF8(p.Playlist, "\uFFFD")
	}
	if !utf8.ValidString(p.Mount) {
		w.MountB64, w.Mount = base64.StdEncoding.EncodeToString([]byte(p.Mount)), strings.ToValidUTF8(p.Mount, "\uFFFD")
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (p *Offload) UnmarshalJSON(b []byte) error {
	var w offloadWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = Offload(w.offloadFields)
	for _, f := range []struct {
		b64 string
		dst *string
	}{{w.PathB64, &p.Path}, {w.PlaylistB64, &p.Playlist}, {w.MountB64, &p.Mount}} {
		if f.b64 == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(f.b64)
		if err != nil {
			return fmt.Errorf("path_b64/playlist_b64: %w", err)
		}
		*f.dst = string(raw)
	}
	return nil
}

// DecodeOffload reads a payload.
func DecodeOffload(b []byte) (Offload, error) {
	var p Offload
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("offload payload: %w", err)
	}
	if p.Path == "" || p.Key == "" || (p.Kind != KindHLS && p.Kind != KindDVR) {
		return p, fmt.Errorf("offload payload: missing path, key or kind")
	}
	return p, nil
}

// Name is the queue a kind of task runs on for one node. Files live on one host's disk, so each
// node has its own queues and only that node's workers take them. A shared volume's queues are
// those of the node shared:<name> (Scope.QueueNode), taken by every worker mounting it.
func Name(kind, node string) string { return kind + "@" + node }

// Queues returns the queues of a node with their weights: live segments first, DVR after, but
// neither starves the other.
func Queues(node string) map[string]int {
	return map[string]int{Name(KindHLS, node): 6, Name(KindDVR, node): 2, Name(KindWarm, node): 1}
}

// ValidNode reports whether a node name is usable in a queue name (no braces: asynq uses them as
// Redis Cluster hash tags).
func ValidNode(node string) error {
	if node == "" {
		return fmt.Errorf("empty")
	}
	if strings.ContainsAny(node, "{}@ \t\n") {
		return fmt.Errorf("%q: must not contain braces, '@' or spaces", node)
	}
	return nil
}

// End is the payload of a TypeEnd task, from on_unpublish or from a stream gone idle.
type End struct {
	Vhost  string `json:"vhost"`
	App    string `json:"app"`
	Stream string `json:"stream"`
	Client string `json:"client"`
	// PlaylistKey is set when known (an idle stream); otherwise it is looked up from the stream.
	PlaylistKey string `json:"playlist_key,omitempty"`
	// Node is the host whose queue takes the task (default: the enqueuing client's).
	Node string `json:"node,omitempty"`
	// Since is when the session was seen ending.
	Since time.Time `json:"since"`
}

// TaskID makes one end task per stream and publisher.
func (e End) TaskID() string {
	h := sha256.Sum256([]byte(e.Vhost + "\x00" + e.App + "\x00" + e.Stream + "\x00" + e.Client + "\x00" + e.PlaylistKey))
	return "end-" + hex.EncodeToString(h[:16])
}

// DecodeEnd reads a payload.
func DecodeEnd(b []byte) (End, error) {
	var e End
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("end payload: %w", err)
	}
	return e, nil
}

// Warm is the payload of a TypeWarm task.
type Warm struct {
	// Key is the stored object's key (without the storage prefix).
	Key string `json:"key"`
	// Notified is when SRS's on_hls_notify arrived (zero when warming follows the upload).
	Notified time.Time `json:"notified,omitzero"`
}

// TaskID makes one warm task per object.
func (w Warm) TaskID() string {
	h := sha256.Sum256([]byte(w.Key))
	return "warm-" + hex.EncodeToString(h[:16])
}

// ErrNotYet means a task's precondition does not hold yet (segments still in flight): it is tried
// again a second later, and that does not count as a failure.
var ErrNotYet = errors.New("not yet")
