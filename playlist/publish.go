package playlist

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/media"
)

// Store is where playlists are written.
type Store interface {
	Put(ctx context.Context, key string, src storage.Source, size int64, t media.Type, origin string) (storage.Object, error)
}

// release lets go of a stream's publish lock only if the version just uploaded is still the
// newest; otherwise it keeps the lock so its holder uploads again. A change made while an upload
// was in flight is therefore always published, by the one holder, in order.
// KEYS: lock, st. ARGV: token, version uploaded, lock ttl (ms).
var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local ver = tonumber(redis.call('HGET', KEYS[2], 'ver') or '0')
if ver > tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'pub', ARGV[2])
return 1`)

// publish uploads the stream's live playlist. At most one upload per stream is in flight: a
// caller that finds the lock taken returns at once, and the holder uploads its change after the
// current one. Each upload renders the newest state, and its deadline is shorter than the lock,
// so an older version can never land after a newer one.
func (l *Ledger) publish(ctx context.Context, store Store, playlistKey string, lockTTL time.Duration) error {
	k := streamKeys(playlistKey)
	lock := k.tag + "lock"
	tok := make([]byte, 8)
	rand.Read(tok)
	token := hex.EncodeToString(tok)
	ok, err := l.rdb.SetNX(ctx, lock, token, lockTTL).Result()
	if err != nil {
		return fmt.Errorf("playlist %s: lock: %w", playlistKey, err)
	}
	if !ok {
		return nil // the holder publishes this change too
	}
	// Once the lock is held, a cancelled caller (a worker shutting down) must not cut an upload
	// short: that would leave the lock to expire (see below) and the live playlist frozen until
	// then. The upload has its own deadline instead.
	dctx := context.WithoutCancel(ctx)
	for {
		s, err := l.snapshot(dctx, playlistKey)
		if err == nil && len(s.Entries) > 0 {
			body := s.render()
			pctx, cancel := context.WithTimeout(dctx, lockTTL/3)
			_, err = store.Put(pctx, playlistKey, bytes.NewReader(body), int64(len(body)), media.PlaylistType, "playlist")
			cancel()
		}
		if err != nil {
			// Keep the lock until it expires: a PUT that timed out here may still complete in
			// storage, and no newer version may go up before it could have landed. The sweeper
			// publishes the newest version once the lock is gone (pub < ver).
			return fmt.Errorf("playlist %s: %w", playlistKey, err)
		}
		r, err := release.Run(dctx, l.rdb, []string{lock, k.st}, token, s.Version, lockTTL.Milliseconds()).Int()
		if err != nil {
			return fmt.Errorf("playlist %s: unlock: %w", playlistKey, err)
		}
		if r != 0 {
			return nil
		}
		if ctx.Err() != nil {
			// Shutting down with a newer version waiting: no PUT of ours is in flight, so let go
			// now; the next Stored or the sweep publishes it.
			l.rdb.Eval(dctx, `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end`, []string{lock}, token)
			return ctx.Err()
		}
	}
}
