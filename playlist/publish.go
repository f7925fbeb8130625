package playlist

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
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
	keys := []string{k.Lock, k.St, k.W}
	tok := make([]byte, 8)
	rand.Read(tok)
	token := hex.EncodeToString(tok)
	// Once the lock is held, a cancelled caller (a worker shutting down) must not cut an upload
	// short: that would leave the lock to expire (see below) and the live playlist frozen until
	// then. The upload has its own deadline instead.
	dctx := context.WithoutCancel(ctx)
	// One round trip takes the lock and reads what to upload; after each upload one more either
	// releases it (nothing newer) or reads the newer version to upload next (rdb.Publish).
	uploaded := ""
	for {
		c := ctx
		if uploaded != "" {
			c = dctx
		}
		res, err := rdb.Publish.Run(c, l.rdb, keys, token, uploaded, lockTTL.Milliseconds()).Result()
		if err != nil {
			return fmt.Errorf("playlist %s: lock: %w", playlistKey, err)
		}
		if _, done := res.(int64); done {
			return nil // -1: the holder publishes this change too; 1: released
		}
		if uploaded != "" && ctx.Err() != nil {
			// Shutting down with a newer version waiting: no PUT of ours is in flight, so let go
			// now; the next Stored or the sweep publishes it.
			rdb.Unlock.Run(dctx, l.rdb, []string{k.Lock}, token)
			return ctx.Err()
		}
		s, err := liveOf(playlistKey, res)
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
		uploaded = strconv.FormatInt(s.Version, 10)
	}
}
