package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/settings"
	"github.com/srs-offload/srs-offload/status"
)

// runStatus prints every node's queues, disk backlog, uploads in flight, last errors and live
// streams, read from Redis (package status).
func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	errs := fs.Int("errors", 10, "how many of the last task errors to list")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *errs < 0 {
		fmt.Fprintf(stderr, "status: --errors %d: want 0 or more\n", *errs)
		return 2
	}
	cfg, err := redisConfig(*path, stderr)
	if err != nil {
		return 2
	}
	insp := asynq.NewInspector(redisOpt(cfg))
	defer insp.Close()
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr, Password: cfg.Redis.Password, DB: cfg.Redis.DB,
		DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := status.Gather(ctx, insp, rdb, status.Options{Errors: *errs})
	if err != nil {
		fmt.Fprintf(stderr, "srs-offload status: redis %s (redis.addr): %v\n", cfg.Redis.Addr, err)
		return 1
	}
	if *asJSON {
		err = r.WriteJSON(stdout)
	} else {
		err = r.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "srs-offload status:", err)
		return 1
	}
	return 0
}

// redisConfig reads a config for its redis keys only: status runs on any host that reaches Redis,
// also one without the storage secrets the config takes from the environment, so a problem of
// another key is not one here.
func redisConfig(path string, stderr io.Writer) (settings.Config, error) {
	if path == "" {
		return settings.Default(), nil
	}
	cfg, err := settings.Load(path)
	probs, ok := settings.AsErrors(err)
	if err == nil || !ok {
		if err != nil {
			printProblems(stderr, path, err)
		}
		return cfg, err
	}
	var mine settings.Errors
	for _, p := range probs {
		if p.Key == "redis" || strings.HasPrefix(p.Key, "redis.") {
			mine = append(mine, p)
		}
	}
	if len(mine) > 0 {
		printProblems(stderr, path, mine)
		return cfg, mine
	}
	return cfg, nil
}
