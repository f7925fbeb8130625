package main

// What the scale model reads of its own process and of srs-offload's admin listener; the servers
// (redis-server, versitygw, srs-offload) and the processes' bookkeeping are internal/testbed's.

import (
	"fmt"
	"io"
	"net/http"
	"syscall"
	"time"
)

// selfCPU is the harness's own CPU time (the load generator).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// httpGet reads a URL's body (the admin listener's /metrics).
func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return string(b), nil
}
