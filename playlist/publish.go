package playlist

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/rdb"
	"github.com/srs-offload/srs-offload/storage"
)

// Store is where playlists are written.
type Store interface {
	Put(ctx context.Context, key string, src storage.Source, size int64, t media.Type, origin string) (storage.Object, error)
}

// publish uploads the stream's live playlist. At most one upload per stream is in flight: a
// caller that finds the lock taken returns at once, and the holder uploads its change after the
// current one. Each upload renders the newest state, and its deadline is shorter than the lock,
// so an older version can never land after a newer one.
func (l *Ledger) publish(ctx context.Context, store Store, playlistKey string, lockTTL time.Duration) error {
	k := rdb.StreamKeys(playlistKey)
	lock := k.Lock
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
		r, err := rdb.Release.Run(dctx, l.rdb, []string{lock, k.St}, token, s.Version, lockTTL.Milliseconds()).Int()
		if err != nil {
			return fmt.Errorf("playlist %s: unlock: %w", playlistKey, err)
		}
		if r != 0 {
			return nil
		}
		if ctx.Err() != nil {
			// Shutting down with a newer version waiting: no PUT of ours is in flight, so let go
			// now; the next Stored or the sweep publishes it.
			rdb.Unlock.Run(dctx, l.rdb, []string{lock}, token)
			return ctx.Err()
		}
	}
}
