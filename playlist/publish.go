package playlist

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
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
// so an older version can never land after a newer one. With an interval, uploads of one stream
// are at least that far apart: a change within it is left for later, and publish returns how long
// until then (the caller publishes again; the sweep does if the caller is gone).
func (l *Ledger) publish(ctx context.Context, store Store, playlistKey string, lockTTL, interval time.Duration) (time.Duration, error) {
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
	staleToken := l.done.load(playlistKey)
	for {
		c := ctx
		if uploaded != "" {
			c = dctx
		}
		res, err := rdb.Publish.Run(c, l.rdb, keys, token, uploaded, lockTTL.Milliseconds(), time.Now().UnixMilli(), interval.Milliseconds(), staleToken).Result()
		if err != nil {
			return 0, fmt.Errorf("playlist %s: lock: %w", playlistKey, err)
		}
		switch r := res.(type) {
		case int64:
			if uploaded != "" && r != -1 {
				l.done.store(playlistKey, token) // let go: this token is over
			}
			if r == 2 {
				return interval, nil // released; the newer version goes up after the interval
			}
			return 0, nil // -1: the holder publishes this change too; 1: released, or nothing new
		case string:
			ms, _ := strconv.ParseInt(strings.TrimPrefix(r, "wait:"), 10, 64)
			return time.Duration(max(ms, 1)) * time.Millisecond, nil
		}
		if uploaded != "" && ctx.Err() != nil {
			// Shutting down with a newer version waiting: no PUT of ours is in flight, so let go
			// now; the next Stored or the sweep publishes it.
			// This publish is over whether or not the DEL gets through (Unlock answers nil, which
			// go-redis reports as redis.Nil): a lock still holding its token is free.
			rdb.Unlock.Run(dctx, l.rdb, []string{k.Lock}, token)
			l.done.store(playlistKey, token)
			return 0, ctx.Err()
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
			return 0, fmt.Errorf("playlist %s: %w", playlistKey, err)
		}
		uploaded = strconv.FormatInt(s.Version, 10)
	}
}

// later publishes the live playlist of pk again after d, once per stream however many changes
// ask for it meanwhile. The timers live in this process only: if it stops first, the sweep
// publishes what is newer than the last upload.
func (m *Manager) later(pk string, d time.Duration) {
	if _, pending := m.pending.LoadOrStore(pk, struct{}{}); pending {
		return
	}
	time.AfterFunc(d, func() {
		m.pending.Delete(pk)
		ctx, cancel := context.WithTimeout(context.Background(), m.lockTTL())
		defer cancel()
		if err := m.publish(ctx, pk); err != nil {
			m.log().Warn("playlist: could not publish", "playlist", pk, "err", err)
		}
	})
}
