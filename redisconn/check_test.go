package redisconn_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/internal/loopback"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/redisconn"
	"github.com/srs-offload/srs-offload/settings"
)

// Check names the key at fault for each layout, against a real redis-server.
func TestCheckNamesTheKey(t *testing.T) {
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	ctx := context.Background()
	// A user that may only PING: it authenticates, but cannot write.
	if err := admin.Do(ctx, "ACL", "SETUSER", "pinger", "on", ">pw", "+ping", "+hello", "+auth").Err(); err != nil {
		t.Fatal(err)
	}
	dead := "127.0.0.1:" + itoa(loopback.FreePort(t))
	tests := []struct {
		name string
		cfg  settings.Redis
		key  string // "" : no problem
	}{
		{"single ok", settings.Redis{Addr: srv.Addr}, ""},
		{"single down", settings.Redis{Addr: dead}, "redis.addr " + dead},
		{"wrong password", settings.Redis{Addr: srv.Addr, Username: "pinger", Password: "nope"}, "redis.password"},
		{"user lacks commands", settings.Redis{Addr: srv.Addr, Username: "pinger", Password: "pw"}, "redis.username pinger"},
		{"sentinel is a plain server", settings.Redis{Sentinel: settings.RedisSentinel{MasterName: "m", Addrs: []string{srv.Addr}}}, "redis.sentinel.addrs[0]"},
		{"sentinel down", settings.Redis{Sentinel: settings.RedisSentinel{MasterName: "m", Addrs: []string{dead}}}, "redis.sentinel.addrs[0] " + dead},
		{"cluster node is not one", settings.Redis{Cluster: settings.RedisCluster{Addrs: []string{srv.Addr}}}, "redis.cluster.addrs[0] " + srv.Addr + ": not a Cluster node"},
		{"cluster node down", settings.Redis{Cluster: settings.RedisCluster{Addrs: []string{dead}}}, "redis.cluster.addrs[0] " + dead},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := redisconn.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			err = c.Check(ctx, time.Second)
			t.Log(err)
			switch {
			case tc.key == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tc.key != "" && err == nil:
				t.Fatalf("Check passed, want a problem with %s", tc.key)
			case tc.key != "" && !strings.HasPrefix(err.Error(), tc.key) && !strings.Contains(err.Error(), "\n"+tc.key):
				t.Fatalf("Check: %v\nwant a line starting %q", err, tc.key)
			}
		})
	}
}

// A TLS file that cannot be read names its key before anything connects.
func TestNewNamesTLSFiles(t *testing.T) {
	_, err := redisconn.New(settings.Redis{Addr: "127.0.0.1:6379", TLS: settings.RedisTLS{CAFile: "/nonexistent/ca.pem"}})
	var ke *redisconn.KeyError
	if !errors.As(err, &ke) || ke.Key != "redis.tls.ca_file" {
		t.Fatalf("New: %v, want a redis.tls.ca_file problem", err)
	}
	_, err = redisconn.New(settings.Redis{Addr: "127.0.0.1:6379", TLS: settings.RedisTLS{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}})
	if !errors.As(err, &ke) || ke.Key != "redis.tls.cert_file" {
		t.Fatalf("New: %v, want a redis.tls.cert_file problem", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
