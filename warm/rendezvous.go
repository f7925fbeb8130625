package warm

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/rdb"
)

// Rendezvous is where a notify and the segment's "stored and verified" meet, by the segment's
// expected key (the key the hook computed; a reused name may be stored under another, actual
// key). Whichever arrives second learns that both happened; a side left alone expires after Wait.
// The meeting point's key and its scripts are package rdb's (rdb.Warm, rdb.Meet, rdb.Collect).
type Rendezvous struct {
	rdb  redis.UniversalClient
	wait time.Duration
}

// NewRendezvous returns a rendezvous on Redis; wait bounds how long one side waits for the other.
func NewRendezvous(client redis.UniversalClient, wait time.Duration) *Rendezvous {
	if wait <= 0 {
		wait = time.Minute
	}
	return &Rendezvous{rdb: client, wait: wait}
}

// Notified records a notify for the segment with this expected key. ready is true when the
// segment is already stored, under actual.
func (r *Rendezvous) Notified(ctx context.Context, expected string) (actual string, ready bool, err error) {
	other, err := rdb.Meet.Run(ctx, r.rdb, []string{rdb.Warm(expected)}, "n", r.wait.Milliseconds()).Text()
	if err != nil || other == "" {
		return "", false, err
	}
	return strings.TrimPrefix(other, "s:"), true, nil
}

// Collect is Notified for a notify that may not leave a mark: it meets a segment already stored,
// and otherwise writes nothing to Redis (a notify for a stream the ledger does not know may come
// from anyone who can reach the hook listener).
func (r *Rendezvous) Collect(ctx context.Context, expected string) (actual string, ready bool, err error) {
	other, err := rdb.Collect.Run(ctx, r.rdb, []string{rdb.Warm(expected)}).Text()
	if err != nil || other == "" {
		return "", false, err
	}
	return strings.TrimPrefix(other, "s:"), true, nil
}

// Stored records that the segment with this expected key is stored and verified under actual.
// ready is true when its notify came already.
func (r *Rendezvous) Stored(ctx context.Context, expected, actual string) (ready bool, err error) {
	other, err := rdb.Meet.Run(ctx, r.rdb, []string{rdb.Warm(expected)}, "s:"+actual, r.wait.Milliseconds()).Text()
	return other != "", err
}

// Trigger is what the worker calls once a segment is stored: the warm task is enqueued now if the
// segment's notify came already (or at once, with OnUpload).
type Trigger struct {
	Rendezvous *Rendezvous
	Enqueue    func(context.Context, queue.Warm) error
	// OnUpload warms every segment right after its upload, without waiting for on_hls_notify.
	OnUpload bool
}

// Stored: the segment with this expected key is stored and verified under actual.
func (t *Trigger) Stored(ctx context.Context, expected, actual string) error {
	if !t.OnUpload {
		ready, err := t.Rendezvous.Stored(ctx, expected, actual)
		if err != nil || !ready {
			return err
		}
	}
	return t.Enqueue(ctx, queue.Warm{Key: actual})
}
