package redistest

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

// The TLS Sentinel set and Cluster listen with TLS only, and their processes found each other
// over TLS: the sentinels name the master, and CLUSTER NODES the nodes, at their TLS ports.
func TestSentinelAndClusterTLSOnly(t *testing.T) {
	pki := NewPKI(t)
	ctx := context.Background()
	plainRefused := func(addr string) {
		t.Helper()
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer c.Close()
		if err := c.Ping(ctx).Err(); err == nil {
			t.Errorf("%s answered a plain TCP PING", addr)
		}
	}

	ss := StartSentinelTLS(t, pki)
	if got, err := ss.MasterAddr(ctx); err != nil || got != ss.Master.Addr {
		t.Fatalf("sentinels name %q (%v) as the master, want %s", got, err, ss.Master.Addr)
	}
	plainRefused(ss.Master.Addr)
	plainRefused(ss.Sentinels[0].Addr)

	cl := StartClusterTLS(t, pki)
	nodes, err := cl.Topology()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if cl.Server(n.Addr) == nil {
			t.Errorf("CLUSTER NODES names %s, not a node's TLS address (%v)", n.Addr, cl.Addrs())
		}
	}
	plainRefused(cl.Nodes[0].Addr)
}
