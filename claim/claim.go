// Package claim makes one worker the owner of one file on a shared volume while it uploads,
// verifies and purges it. Several hosts mount the volume and every one of their workers takes the
// volume's queues; asynq's task ids already make one task per file, and the claim covers what
// they do not: a task delivered again while its first delivery still runs (a lease that expired
// under load), a follow-up task of the same file, a reconciler on another host looking at a file
// in flight. The claim is a Redis key per file, by the volume's name and the path relative to
// the volume (the same on every host), holding its owner's random token with a short TTL that
// the owner renews while it works; a worker that dies lets go of it when the TTL runs out.
package claim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/rdb"
)

// ErrHeld means another worker holds the claim.
var ErrHeld = errors.New("another worker holds the file's claim")

// TTL is how long a claim outlives its owner's last renewal.
const TTL = 30 * time.Second

// Claims takes and checks claims in Redis.
type Claims struct {
	RDB *redis.Client
	// Volume is the shared volume's name.
	Volume string
	// TTL is the claim's lifetime between renewals (default TTL); renewed every TTL/3.
	TTL time.Duration
}

// Held is one claim owned by this process until Release.
type Held struct {
	c     *Claims
	key   string
	owner string
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	lost  error
}

func (c *Claims) ttl() time.Duration {
	if c.TTL > 0 {
		return c.TTL
	}
	return TTL
}

// Take claims the file at rel (relative to the volume). It returns ErrHeld when another owner
// has it. The claim is renewed in the background until Release.
func (c *Claims) Take(ctx context.Context, rel string) (*Held, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	h := &Held{c: c, key: rdb.Claim(c.Volume, rel), owner: hex.EncodeToString(b[:]), stop: make(chan struct{}), done: make(chan struct{})}
	ok, err := c.RDB.SetNX(ctx, h.key, h.owner, c.ttl()).Result()
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", rel, err)
	}
	if !ok {
		return nil, fmt.Errorf("claim %s: %w", rel, ErrHeld)
	}
	go h.renew()
	return h, nil
}

// Busy reports whether some worker holds the claim of the file at rel.
func (c *Claims) Busy(ctx context.Context, rel string) (bool, error) {
	n, err := c.RDB.Exists(ctx, rdb.Claim(c.Volume, rel)).Result()
	if err != nil {
		return false, fmt.Errorf("claim %s: %w", rel, err)
	}
	return n > 0, nil
}

func (h *Held) renew() {
	defer close(h.done)
	ttl := h.c.ttl()
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), ttl/3)
			n, err := rdb.ClaimRenew.Run(ctx, h.c.RDB, []string{h.key}, h.owner, ttl.Milliseconds()).Int()
			cancel()
			if err == nil && n == 0 {
				h.mu.Lock()
				h.lost = fmt.Errorf("claim %s: expired before it was renewed: %w", h.key, ErrHeld)
				h.mu.Unlock()
				return
			}
		}
	}
}

// Lost reports why the claim is no longer held (it expired: Redis was unreachable for a TTL),
// or nil while it is. A worker checks it before it deletes anything.
func (h *Held) Lost() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lost
}

// Release stops renewing and deletes the claim if this owner still holds it.
func (h *Held) Release(ctx context.Context) error {
	h.once.Do(func() { close(h.stop) })
	<-h.done
	return rdb.ClaimRelease.Run(ctx, h.c.RDB, []string{h.key}, h.owner).Err()
}

// Still reports nil when this owner holds the claim now, ErrHeld when it does not (it expired
// and another worker may have taken the file).
func (h *Held) Still(ctx context.Context) error {
	if err := h.Lost(); err != nil {
		return err
	}
	v, err := h.c.RDB.Get(ctx, h.key).Result()
	if errors.Is(err, redis.Nil) || (err == nil && v != h.owner) {
		return fmt.Errorf("claim %s: no longer ours: %w", h.key, ErrHeld)
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", h.key, err)
	}
	return nil
}
