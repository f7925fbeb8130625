// Package playlist keeps the HLS playlists in storage consistent with the segments in storage.
//
// Why a ledger, not SRS's m3u8: SRS's playlist may name a segment whose upload is still in flight,
// restarts seq_no when a source is recreated, reuses file names across sessions, and only ever
// lists its sliding window. The ledger is per-stream state in Redis, shared by every worker: it
// records each segment in the order SRS announced it (the hook), learns when its bytes are
// verified in storage, and from that builds
//   - the live playlist: the longest run of verified segments in hook order, never past one still
//     in flight, numbered by its own media sequence that only grows (across republishes too);
//   - the VoD playlist of each publish session: every verified segment of it, however long ago it
//     was purged locally.
//
// Every change is one Lua script run atomically in Redis; each stream's keys share one hash tag.
// The key names and scripts are package rdb's; only the Ledger's methods run commands on them.
package playlist

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/rdb"
)

// Entry kinds.
const (
	KindSegment = "s" // a segment that plays alone (MPEG-TS, AAC)
	KindFMP4    = "m" // an fMP4 media segment: needs the EXT-X-MAP of its session's init segment
	KindInit    = "i" // an fMP4 initialisation segment
)

// Item is one file the ledger orders: a segment or an init segment, identified by its task id.
type Item struct {
	ID     string // the task id: the same file announced twice is one item
	Kind   string
	Client string // SRS's client_id of the publisher; a new one starts a new session
	Seq    int64  // SRS's seq_no
	// Key is the object key (without the storage prefix) once the bytes are verified.
	Key      string
	Duration float64
	// KeyTag is the EXT-X-KEY line SRS wrote for this segment, if any.
	KeyTag string
	// Written is when the file was last written (its mtime), if known. It tells an old segment
	// announced late from a recreated source restarting seq_no, and places an item without
	// Client (found on disk, no hook) in the session that was publishing then.
	Written time.Time
}

// Settings shape the live playlist.
type Settings struct {
	// Window is how much media the live playlist holds, like SRS's hls_window.
	Window time.Duration
	// Stall is how long the live playlist waits for a segment still in flight before it leaves it
	// out (with a discontinuity). The segment still goes into the VoD playlist when it arrives.
	Stall time.Duration
	// Retain is how long a finished session's records stay in Redis.
	Retain time.Duration
}

// DefaultStall is Settings.Stall when none is given; config's playlist.stall has the same default.
const DefaultStall = 2 * time.Minute

// Ledger is the Redis side.
type Ledger struct {
	rdb redis.UniversalClient
	set Settings
	// done is, per live playlist key, the token of this process's last publish that let go of
	// the lock: should the lock still hold it (a failover lost the release), it is free. Like the
	// lock itself (no fencing token reaches storage), this cannot cover every failover: one that
	// loses both this release and a later holder's SET lets this process upload beside that
	// holder, as one that loses only the later SET lets anyone: an older version may then land
	// last, until the stream's next change is published.
	done finished
}

// finished maps live playlist keys to the token of the last publish that let go of the lock. It
// is forgotten wholesale past maxFinished keys (streams come and go): a key it no longer knows
// only waits, after a lost release, for the lock to expire, as without it.
type finished struct {
	mu sync.Mutex
	m  map[string]string
}

const maxFinished = 16384

func (f *finished) load(key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[key]
}

func (f *finished) store(key, token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil || len(f.m) >= maxFinished {
		f.m = make(map[string]string)
	}
	f.m[key] = token
}

// New returns a ledger on a Redis client.
func New(client redis.UniversalClient, s Settings) *Ledger {
	if s.Window <= 0 {
		s.Window = 60 * time.Second
	}
	if s.Stall <= 0 {
		s.Stall = DefaultStall
	}
	if s.Retain <= 0 {
		s.Retain = 24 * time.Hour
	}
	return &Ledger{rdb: client, set: s}
}

// keepDone is how long the id of a consumed item is remembered, so that a repeated delivery of
// its task (asynq delivers at least once; redeliveries come within minutes) changes nothing.
// It bounds the ledger at about an hour of ids per stream.
const keepDone = time.Hour

// Result is what a change did.
type Result struct {
	Version int64 // the live playlist's version; grows with every change
	Changed bool  // the live playlist changed
	Session int64 // the item's session number
	// NewSession: this item started a publish session.
	NewSession bool
	// Reopened: the item joined the VoD record of a session whose VoD playlist is written
	// already (it came late), so that playlist must be written again.
	Reopened bool
}

// Announce records an item in hook order. It is idempotent.
func (l *Ledger) Announce(ctx context.Context, playlistKey string, it Item, info SessionInfo) (Result, error) {
	return l.run(ctx, "announce", playlistKey, it, info)
}

// Complete records that an item's bytes are verified in storage (announcing it first if the hook
// could not), and advances the live playlist.
func (l *Ledger) Complete(ctx context.Context, playlistKey string, it Item, info SessionInfo) (Result, error) {
	return l.run(ctx, "complete", playlistKey, it, info)
}

// completeTouch is Complete and touch in one round trip: the stream is marked active and its
// playlist recorded under its name (name), as touch does.
func (l *Ledger) completeTouch(ctx context.Context, playlistKey, name string, it Item, info SessionInfo) (Result, error) {
	return l.runWith(ctx, "complete", playlistKey, it, info, func(p redis.Pipeliner) { l.touchIn(ctx, p, playlistKey, name) })
}

// Lost records that an item will never be in storage; the live playlist moves past it with a
// discontinuity.
func (l *Ledger) Lost(ctx context.Context, playlistKey string, it Item, info SessionInfo) (Result, error) {
	return l.run(ctx, "lost", playlistKey, it, info)
}

// Advance moves the live playlist past items that stalled, without any new item.
func (l *Ledger) Advance(ctx context.Context, playlistKey string) (Result, error) {
	return l.run(ctx, "advance", playlistKey, Item{}, SessionInfo{})
}

// SessionInfo describes a publish session, for VoD key templates.
type SessionInfo struct {
	Vhost    string `json:"vhost,omitempty"`
	App      string `json:"app,omitempty"`
	Stream   string `json:"stream,omitempty"`
	StreamID string `json:"stream_id,omitempty"`
	Client   string `json:"client,omitempty"`
	// Start is when the session's first item was announced (Unix ms), set by the ledger.
	Start int64 `json:"start,omitempty"`
	// Ended is set once its VoD playlist is written.
	Ended bool `json:"ended,omitempty"`
	// Node is the host whose disk has the session's files.
	Node string `json:"node,omitempty"`
}

func (l *Ledger) run(ctx context.Context, op, playlistKey string, it Item, info SessionInfo) (Result, error) {
	return l.runWith(ctx, op, playlistKey, it, info, nil)
}

// runWith runs the ledger script and, in the same round trip (a pipeline), the commands also
// adds: commands on keys outside the stream's hash slot, which the script may not touch in a
// Redis Cluster. They run whatever the script's outcome.
func (l *Ledger) runWith(ctx context.Context, op, playlistKey string, it Item, info SessionInfo, also func(redis.Pipeliner)) (Result, error) {
	k := rdb.StreamKeys(playlistKey)
	args := l.args(op, playlistKey, k, it, info)
	var res []int64
	var err error
	if also == nil {
		res, err = rdb.Ledger.Run(ctx, l.rdb, k.LedgerKeys(), args...).Int64Slice()
	} else {
		res, err = l.pipelined(ctx, k, args, also)
	}
	if err != nil {
		return Result{}, fmt.Errorf("playlist ledger %s %s: %w", op, playlistKey, err)
	}
	return resultOf(res), nil
}

// args is the ARGV of the ledger script (rdb/ledger.lua).
func (l *Ledger) args(op, playlistKey string, k rdb.Stream, it Item, info SessionInfo) []any {
	infoJSON, _ := json.Marshal(info)
	var written int64
	if !it.Written.IsZero() {
		written = it.Written.UnixMilli()
	}
	return []any{op, it.ID, it.Kind, it.Client, it.Seq, it.Key, strconv.FormatFloat(it.Duration, 'f', 3, 64), it.KeyTag,
		time.Now().UnixMilli(), l.set.Window.Seconds(), l.set.Stall.Milliseconds(), keepDone.Milliseconds(),
		string(infoJSON), playlistKey, k.Tag, written}
}

func resultOf(res []int64) Result {
	return Result{Version: res[0], Changed: res[1] == 1, Session: res[2], NewSession: res[3] == 1, Reopened: res[4] == 1}
}

// advanceMany is Advance, then published, for each of pks, all in one pipeline: the sweep's two
// round trips per stream become two per batch of streams. It returns each stream's result and
// the version of its live playlist last uploaded.
func (l *Ledger) advanceMany(ctx context.Context, pks []string) ([]Result, []int64, error) {
	for attempt := 0; ; attempt++ {
		pipe := l.rdb.Pipeline()
		scripts := make([]*redis.Cmd, len(pks))
		pubs := make([]*redis.StringCmd, len(pks))
		for i, pk := range pks {
			k := rdb.StreamKeys(pk)
			scripts[i] = rdb.Ledger.EvalSha(ctx, pipe, k.LedgerKeys(), l.args("advance", pk, k, Item{}, SessionInfo{})...)
			pubs[i] = pipe.HGet(ctx, k.St, "pub")
		}
		pipe.Exec(ctx) // each command's error is its own (HGET answers redis.Nil for no upload yet)
		if attempt == 0 && len(scripts) > 0 {
			if err := scripts[0].Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
				if lerr := rdb.Ledger.Load(ctx, l.rdb).Err(); lerr != nil {
					return nil, nil, lerr
				}
				continue // advance is idempotent: running it again changes nothing
			}
		}
		res := make([]Result, len(pks))
		pub := make([]int64, len(pks))
		for i, pk := range pks {
			v, err := scripts[i].Int64Slice()
			if err != nil {
				return nil, nil, fmt.Errorf("playlist ledger advance %s: %w", pk, err)
			}
			res[i] = resultOf(v)
			pub[i], _ = pubs[i].Int64()
		}
		return res, pub, nil
	}
}

// pipelined sends the ledger script by its SHA with the commands of also, loading the script
// once when Redis does not know it yet (a new or restarted Redis).
func (l *Ledger) pipelined(ctx context.Context, k rdb.Stream, args []any, also func(redis.Pipeliner)) ([]int64, error) {
	for attempt := 0; ; attempt++ {
		pipe := l.rdb.Pipeline()
		script := rdb.Ledger.EvalSha(ctx, pipe, k.LedgerKeys(), args...)
		also(pipe)
		_, err := pipe.Exec(ctx)
		if serr := script.Err(); serr != nil && redis.HasErrorPrefix(serr, "NOSCRIPT") && attempt == 0 {
			if lerr := rdb.Ledger.Load(ctx, l.rdb).Err(); lerr != nil {
				return nil, lerr
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		return script.Int64Slice()
	}
}
