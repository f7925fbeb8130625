package main

import (
	"flag"
	"fmt"
	"os"
	"sort"

	"github.com/srs-offload/srs-offload/queue"
)

// runRequeue moves this node's archived (failed-for-good) tasks back to the queue.
func runRequeue(args []string) int {
	fs := flag.NewFlagSet("requeue", flag.ContinueOnError)
	path := configFlag(fs)
	which := fs.String("queue", "all", "which queues: hls, dvr, warm, post or all")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	kinds := []string{queue.KindHLS, queue.KindDVR, queue.KindWarm, queue.KindPost}
	switch *which {
	case "all":
	case queue.KindHLS, queue.KindDVR, queue.KindWarm, queue.KindPost:
		kinds = []string{*which}
	default:
		fmt.Fprintf(os.Stderr, "requeue: --queue %q: want hls, dvr, warm, post or all\n", *which)
		return 2
	}
	p, err := load(*path, os.Stderr)
	if err != nil {
		return 2
	}
	defer p.close()
	got, err := queue.Requeue(redisOpt(p.cfg), p.cfg.Node, kinds...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "srs-offload requeue:", err)
		return 1
	}
	names := make([]string, 0, len(got))
	for q := range got {
		names = append(names, q)
	}
	sort.Strings(names)
	for _, q := range names {
		fmt.Printf("%s: %d archived tasks back in the queue\n", q, got[q])
	}
	return 0
}
