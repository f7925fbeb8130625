package main

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// keyClass names what a Redis key holds, for the memory breakdown.
func keyClass(k string) string {
	switch {
	case strings.HasPrefix(k, "so:purged:"):
		return "purged-file records (so:purged:*, 1 h)"
	case strings.HasPrefix(k, "so:{"):
		if strings.Contains(k, "}:v:") {
			return "VoD records (so:{…}:v:<session>)"
		}
		return "stream ledgers (so:{…}:st, q, e, w, dn, vs)"
	case strings.HasPrefix(k, "so:"):
		return "other so: keys"
	case strings.HasPrefix(k, "asynq:") && strings.Contains(k, "}:t:"):
		return "asynq tasks (asynq:{q}:t:*, done ones kept worker.dedup)"
	case strings.HasPrefix(k, "asynq:"):
		return "asynq queues and server state"
	}
	return "other"
}

// memSample estimates where Redis's memory is: RANDOMKEY samples keys, MEMORY USAGE sizes them,
// and each class's share of the sample scales to the database's key count. It returns bytes
// and keys per class.
func (r *run) memSample(ctx context.Context, samples int) (bytes, keys map[string]float64, err error) {
	c := r.e.redis.Client
	ownCmd("dbsize", 1)
	total, err := c.DBSize(ctx).Result()
	if err != nil || total == 0 {
		return nil, nil, err
	}
	// The keys every stream shares are few and large (a sample would rarely meet them): they are
	// measured one by one, the rest sampled.
	fixed := []string{"so:streams", "so:folders", "so:active", "asynq:queues"}
	ownCmd("smembers", 1)
	qs, _ := c.SMembers(ctx, "asynq:queues").Result()
	for _, q := range qs {
		for _, k := range []string{"pending", "active", "scheduled", "retry", "completed", "lease"} {
			fixed = append(fixed, "asynq:{"+q+"}:"+k)
		}
	}
	bytes, keys = map[string]float64{}, map[string]float64{}
	isFixed := map[string]bool{}
	pipe := c.Pipeline()
	var fs []*redis.IntCmd
	for _, k := range fixed {
		fs = append(fs, pipe.MemoryUsage(ctx, k, 0))
	}
	ownCmd("memory|usage", int64(len(fixed)))
	pipe.Exec(ctx) // a key that does not exist answers nil
	for i, k := range fixed {
		if n := fs[i].Val(); fs[i].Err() == nil && n > 0 {
			bytes[keyClass(k)] += float64(n)
			keys[keyClass(k)]++
			isFixed[k] = true
			total--
		}
	}
	pipe = c.Pipeline()
	var rk []*redis.StringCmd
	for range samples {
		rk = append(rk, pipe.RandomKey(ctx))
	}
	ownCmd("randomkey", int64(samples))
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, nil, err
	}
	pipe = c.Pipeline()
	var sizes []*redis.IntCmd
	var names []string
	for _, k := range rk {
		if k.Err() != nil || isFixed[k.Val()] {
			continue
		}
		names = append(names, k.Val())
		sizes = append(sizes, pipe.MemoryUsage(ctx, k.Val(), 0))
	}
	ownCmd("memory|usage", int64(len(names)))
	if len(names) == 0 {
		return bytes, keys, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, nil, err
	}
	scale := float64(total) / float64(len(names))
	for i, k := range names {
		cl := keyClass(k)
		bytes[cl] += float64(sizes[i].Val()) * scale
		keys[cl] += scale
	}
	return bytes, keys, nil
}
