// Package s3stats receives versitygw's StatsD counters on a loopback UDP port: the S3 requests
// per bucket and action, so the benchmark and scale harnesses can say how many requests each
// run made (each run has its own bucket).
package s3stats

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Counter counts what versitygw reports (its --metrics-statsd-servers is Addr).
type Counter struct {
	Addr   string
	conn   *net.UDPConn
	mu     sync.Mutex
	last   time.Time
	counts map[string]map[string]int64 // bucket → action (+ " <status>" when it failed) → requests
}

// Start listens on a free loopback port.
func Start() (*Counter, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	conn.SetReadBuffer(4 << 20)
	c := &Counter{Addr: conn.LocalAddr().String(), conn: conn, counts: map[string]map[string]int64{}}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			c.parse(string(buf[:n]))
		}
	}()
	return c, nil
}

// Close stops listening.
func (c *Counter) Close() error { return c.conn.Close() }

// parse takes lines such as
// versitygw.success_count,service=x,method=PUT,api=s3,action=PutObject,bucket=b,status=200:1|c
func (c *Counter) parse(pkt string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = time.Now()
	for _, line := range strings.Split(pkt, "\n") {
		head, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v, _, _ := strings.Cut(val, "|")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		parts := strings.Split(head, ",")
		failed := parts[0] == "versitygw.failed_count"
		if parts[0] != "versitygw.success_count" && !failed {
			continue
		}
		tags := map[string]string{}
		for _, t := range parts[1:] {
			if k, v, ok := strings.Cut(t, "="); ok {
				tags[k] = v
			}
		}
		key := tags["action"]
		if failed {
			key += " " + tags["status"]
		}
		if c.counts[tags["bucket"]] == nil {
			c.counts[tags["bucket"]] = map[string]int64{}
		}
		c.counts[tags["bucket"]][key] += n
	}
}

// Now returns the requests made to bucket so far, as counted at this moment.
func (c *Counter) Now(bucket string) map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int64{}
	for k, v := range c.counts[bucket] {
		out[k] = v
	}
	return out
}

// Settled waits until no counter has arrived for 300 ms (at most 3 s: versitygw sends them in
// batches) and returns the requests made to bucket so far.
func (c *Counter) Settled(bucket string) map[string]int64 {
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c.mu.Lock()
		quiet := time.Since(c.last) > 300*time.Millisecond
		c.mu.Unlock()
		if quiet {
			break
		}
	}
	return c.Now(bucket)
}
