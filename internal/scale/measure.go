package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/srs-offload/srs-offload/internal/testbed"
)

// snap is everything measured at one moment: Redis (INFO), srs-offload (/metrics, /proc), the
// other processes' CPU, versitygw's request counts and the driver's counters.
type snap struct {
	at                            time.Time
	usedMem                       int64
	keys                          int64
	cmds                          map[string]cmdStat
	off, redis, s3, self          time.Duration // CPU
	offRSS                        int64
	metrics                       map[string]float64
	reqs                          map[string]int64 // versitygw's StatsD counts
	s3req                         map[string]int64 // the proxy's
	hlsOK                         int64
	pending, active, sched, retry int64 // asynq, every queue
	completed                     int64
	// own is the commands the harness had sent to Redis before this snapshot's INFO
	own map[string]int64
}

type cmdStat struct {
	calls int64
	usec  int64
}

// own counts the commands the harness itself sends to Redis (per command name, as INFO
// commandstats names them), so that they are left out of srs-offload's.
var own = struct {
	sync.Mutex
	m map[string]int64
}{m: map[string]int64{}}

func ownCmd(name string, n int64) {
	own.Lock()
	own.m[name] += n
	own.Unlock()
}

func ownCmds() map[string]int64 {
	own.Lock()
	defer own.Unlock()
	out := make(map[string]int64, len(own.m))
	for k, v := range own.m {
		out[k] = v
	}
	return out
}

// take measures now. INFO comes first: it is the moment of the snapshot for Redis.
func (r *run) take() (snap, error) {
	ctx := context.Background()
	s := snap{at: time.Now(), own: ownCmds()}
	ownCmd("info", 1)
	info, err := r.e.redis.Client.Info(ctx, "memory", "commandstats", "keyspace").Result()
	if err != nil {
		return s, fmt.Errorf("redis INFO: %w", err)
	}
	s.usedMem, s.keys, s.cmds = parseInfo(info)
	s.off, s.redis, s.s3, s.self = testbed.CPUTime(r.o.Pid()), testbed.CPUTime(r.e.redis.P.Pid()), testbed.CPUTime(r.e.s3.P.Pid()), selfCPU()
	s.offRSS, _ = testbed.RSS(r.o.Pid())
	s.hlsOK = r.d.hlsOKNow()
	s.reqs = r.e.s3.Stats.Now(r.bucket)
	s.s3req = r.e.proxy.now()
	m, err := httpGet("http://" + r.o.admin + "/metrics")
	if err != nil {
		return s, fmt.Errorf("srs-offload /metrics: %w", err)
	}
	s.metrics = parseMetrics(m)
	if err := r.queues(ctx, &s); err != nil {
		return s, err
	}
	return s, nil
}

// queues adds up asynq's queues (the node's, its priorities).
func (r *run) queues(ctx context.Context, s *snap) error {
	c := r.e.redis.Client
	ownCmd("smembers", 1)
	qs, err := c.SMembers(ctx, "asynq:queues").Result()
	if err != nil {
		return fmt.Errorf("redis: asynq queues: %w", err)
	}
	pipe := c.Pipeline()
	var lens []*redis.IntCmd
	for _, q := range qs {
		p := "asynq:{" + q + "}:"
		lens = append(lens, pipe.LLen(ctx, p+"pending"), pipe.LLen(ctx, p+"active"),
			pipe.ZCard(ctx, p+"scheduled"), pipe.ZCard(ctx, p+"retry"), pipe.ZCard(ctx, p+"completed"))
	}
	ownCmd("llen", int64(2*len(qs)))
	ownCmd("zcard", int64(3*len(qs)))
	if len(qs) == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis: asynq queue sizes: %w", err)
	}
	for i := 0; i < len(lens); i += 5 {
		s.pending += lens[i].Val()
		s.active += lens[i+1].Val()
		s.sched += lens[i+2].Val()
		s.retry += lens[i+3].Val()
		s.completed += lens[i+4].Val()
	}
	return nil
}

// backlog is the tasks not yet done.
func (s snap) backlog() int64 { return s.pending + s.active + s.sched + s.retry }

func parseInfo(info string) (used, keys int64, cmds map[string]cmdStat) {
	cmds = map[string]cmdStat{}
	for _, l := range strings.Split(info, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "used_memory:"):
			used, _ = strconv.ParseInt(strings.TrimPrefix(l, "used_memory:"), 10, 64)
		case strings.HasPrefix(l, "db0:keys="):
			v, _, _ := strings.Cut(strings.TrimPrefix(l, "db0:keys="), ",")
			keys, _ = strconv.ParseInt(v, 10, 64)
		case strings.HasPrefix(l, "cmdstat_"):
			name, rest, _ := strings.Cut(strings.TrimPrefix(l, "cmdstat_"), ":")
			var c cmdStat
			for _, kv := range strings.Split(rest, ",") {
				k, v, _ := strings.Cut(kv, "=")
				n, _ := strconv.ParseInt(v, 10, 64)
				switch k {
				case "calls":
					c.calls = n
				case "usec":
					c.usec = n
				}
			}
			cmds[name] = c
		}
	}
	return used, keys, cmds
}

// parseMetrics reads the srs_offload_ samples of a /metrics page, by name with labels.
func parseMetrics(page string) map[string]float64 {
	out := map[string]float64{}
	for _, l := range strings.Split(page, "\n") {
		if !strings.HasPrefix(l, "srs_offload_") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err == nil {
			out[l[:i]] = v
		}
	}
	return out
}

// stored is the segments srs-offload stored and verified so far.
func (s snap) stored() float64 { return s.metrics[`srs_offload_tasks_total{kind="hls",outcome="ok"}`] }

// delta is what happened between two snapshots.
type delta struct {
	dt                   time.Duration
	hls                  int64   // on_hls answered
	stored               float64 // segments stored
	off, redis, s3, self time.Duration
	mem                  int64
	cmds                 map[string]int64 // srs-offload's commands (the harness's own left out)
	cmdUsec              int64
	reqs, s3req          map[string]int64
	sweeps               float64 // sweeps run
	sweepWall, sweepCPU  float64 // seconds
}

func diff(a, b snap) delta {
	d := delta{dt: b.at.Sub(a.at), hls: b.hlsOK - a.hlsOK, stored: b.stored() - a.stored(),
		off: b.off - a.off, redis: b.redis - a.redis, s3: b.s3 - a.s3, self: b.self - a.self,
		mem: b.usedMem - a.usedMem, cmds: map[string]int64{}, reqs: map[string]int64{}, s3req: map[string]int64{}}
	for k, c := range b.cmds {
		// A command counts once it has run: b's INFO holds a's INFO and what the harness sent
		// after it, not b's own INFO.
		n := c.calls - a.cmds[k].calls - (b.own[k] - a.own[k])
		if n > 0 {
			d.cmds[k] = n
		}
		d.cmdUsec += c.usec - a.cmds[k].usec
	}
	for k, v := range b.reqs {
		if n := v - a.reqs[k]; n > 0 {
			d.reqs[k] = n
		}
	}
	for k, v := range b.s3req {
		if n := v - a.s3req[k]; n > 0 {
			d.s3req[k] = n
		}
	}
	d.sweeps = b.metrics["srs_offload_sweep_duration_seconds_count"] - a.metrics["srs_offload_sweep_duration_seconds_count"]
	d.sweepWall = b.metrics["srs_offload_sweep_duration_seconds_sum"] - a.metrics["srs_offload_sweep_duration_seconds_sum"]
	d.sweepCPU = b.metrics["srs_offload_sweep_cpu_seconds_total"] - a.metrics["srs_offload_sweep_cpu_seconds_total"]
	return d
}

func (d delta) totalCmds() int64 {
	var n int64
	for _, v := range d.cmds {
		n += v
	}
	return n
}
