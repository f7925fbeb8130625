package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"
)

// runCheck validates a config. With --connect it also reaches Redis and the bucket.
func runCheck(args []string) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	path := configFlag(fs)
	connect := fs.Bool("connect", false, "also connect to Redis and the bucket")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path, os.Stderr)
	if err != nil {
		return 2
	}
	if *connect {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		bad := false
		if err := pingRedis(cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			bad = true
		}
		if _, err := openStorage(ctx, cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			bad = true
		}
		if bad {
			return 2
		}
	}
	fmt.Println("config ok")
	return 0
}
