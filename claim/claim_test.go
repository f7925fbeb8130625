package claim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/claim"
	"github.com/srs-offload/srs-offload/internal/redistest"
)

// One owner at a time; the owner's renewals keep the claim past its TTL; only the owner releases
// it; a claim that expired (Redis lost it, or the owner stalled) is reported lost, so its former
// owner deletes nothing.
func TestClaim(t *testing.T) {
	rds := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rds.Addr})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	c := &claim.Claims{RDB: rdb, Volume: "vol", TTL: 300 * time.Millisecond}

	a, err := c.Take(ctx, "live/cam1-0.ts")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Take(ctx, "live/cam1-0.ts"); !errors.Is(err, claim.ErrHeld) {
		t.Fatalf("second Take: %v, want ErrHeld", err)
	}
	other, err := c.Take(ctx, "live/cam1-1.ts")
	if err != nil {
		t.Fatalf("another file: %v", err)
	}
	other.Release(ctx)
	time.Sleep(time.Second) // more than three TTLs: renewed meanwhile
	if busy, err := c.Busy(ctx, "live/cam1-0.ts"); err != nil || !busy {
		t.Fatalf("Busy after renewals: %v %v", busy, err)
	}
	if err := a.Still(ctx); err != nil {
		t.Fatalf("Still: %v", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if busy, _ := c.Busy(ctx, "live/cam1-0.ts"); busy {
		t.Fatal("released, still busy")
	}

	// Lost: the key goes (expired while Redis was away), another worker takes it.
	b, err := c.Take(ctx, "live/cam1-2.ts")
	if err != nil {
		t.Fatal(err)
	}
	rdb.Del(ctx, "so:claim:vol:live/cam1-2.ts")
	thief, err := c.Take(ctx, "live/cam1-2.ts")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Still(ctx); !errors.Is(err, claim.ErrHeld) {
		t.Fatalf("Still of a claim another took: %v, want ErrHeld", err)
	}
	b.Release(ctx) // must not delete the new owner's claim
	if err := thief.Still(ctx); err != nil {
		t.Fatalf("the old owner's Release removed the new owner's claim: %v", err)
	}
	thief.Release(ctx)
}
