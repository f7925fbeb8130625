package playlist

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/rdb"
)

// The Ledger's records beside each stream's ledger: which streams exist and are active, where
// their playlists and folders are, which files were purged. Manager and Receiver use these
// methods; they never run a Redis command themselves.

// started records a stream whose session starts: its playlist under its name (for on_unpublish)
// and, unless folder is "", its m3u8_url folder under app/stream (for on_hls_notify).
func (l *Ledger) started(ctx context.Context, pk, name, appStream, folder string) error {
	pipe := l.rdb.Pipeline()
	pipe.HSet(ctx, rdb.Streams, name, pk)
	if folder != "" {
		pipe.HSet(ctx, rdb.Folders, appStream, folder)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// touchIn marks a stream active now and records its playlist under its name, in pipe.
func (l *Ledger) touchIn(ctx context.Context, pipe redis.Pipeliner, pk, name string) {
	pipe.ZAdd(ctx, rdb.Active, redis.Z{Score: float64(time.Now().UnixMilli()), Member: pk})
	pipe.HSet(ctx, rdb.Streams, name, pk)
}

// markActive marks a stream active now, so the sweep visits it.
func (l *Ledger) markActive(ctx context.Context, pk string) error {
	return l.rdb.ZAdd(ctx, rdb.Active, redis.Z{Score: float64(time.Now().UnixMilli()), Member: pk}).Err()
}

// active lists the active streams' playlist keys with the time of their last change (Unix ms).
func (l *Ledger) active(ctx context.Context) ([]redis.Z, error) {
	return l.rdb.ZRangeWithScores(ctx, rdb.Active, 0, -1).Result()
}

// deactivate removes a stream from the sweep's list.
func (l *Ledger) deactivate(ctx context.Context, pk string) {
	l.rdb.ZRem(ctx, rdb.Active, pk)
}

// published is the version of the live playlist last uploaded (0 when unknown).
func (l *Ledger) published(ctx context.Context, pk string) int64 {
	pub, _ := l.rdb.HGet(ctx, rdb.StreamKeys(pk).St, "pub").Int64()
	return pub
}

// playlistOf finds a stream's playlist key by its name (vhost/app/stream).
func (l *Ledger) playlistOf(ctx context.Context, name string) (string, bool, error) {
	pk, err := l.rdb.HGet(ctx, rdb.Streams, name).Result()
	if err == redis.Nil {
		return "", false, nil
	}
	return pk, err == nil, err
}

// folder finds the m3u8_url folder of app/stream.
func (l *Ledger) folder(ctx context.Context, appStream string) (string, bool, error) {
	f, err := l.rdb.HGet(ctx, rdb.Folders, appStream).Result()
	if err == redis.Nil {
		return "", false, nil
	}
	return f, err == nil, err
}

// purged remembers for purgedTTL that the file at path, with identity f, was purged.
func (l *Ledger) purged(ctx context.Context, path string, f fileid.ID) error {
	b, _ := json.Marshal(f)
	return l.rdb.Set(ctx, rdb.Purged(path), b, purgedTTL).Err()
}

// purgedFile reads what purged recorded.
func (l *Ledger) purgedFile(ctx context.Context, path string) (fileid.ID, bool, error) {
	var f fileid.ID
	b, err := l.rdb.Get(ctx, rdb.Purged(path)).Bytes()
	if err == redis.Nil {
		return f, false, nil
	}
	if err != nil {
		return f, false, fmt.Errorf("purged-file record of %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, false, fmt.Errorf("purged-file record of %s: %w", path, err)
	}
	return f, true, nil
}
