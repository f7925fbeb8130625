package redistest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelSet is one master, one replica and three sentinels (`redis-server --sentinel`) watching
// it with a quorum of two, all on loopback; the sentinels mark a master down after one second.
type SentinelSet struct {
	MasterName string
	Master     *Server
	Replica    *Server
	Sentinels  []*Server
	t          testing.TB
	tls        *tls.Config // the clients' config of a TLS set
}

// StartSentinel starts the set and waits until every sentinel knows the replica and the other
// sentinels, so that a failover can be voted at once.
func StartSentinel(t testing.TB) *SentinelSet {
	t.Helper()
	return StartSentinelTLS(t, nil)
}

// StartSentinelTLS is StartSentinel; with a PKI every process listens with TLS only and requires
// client certificates, and the replica and the sentinels dial the others with TLS
// (PKI.NodeArgs), as a managed Redis with TLS does.
func StartSentinelTLS(t testing.TB, pki *PKI) *SentinelSet {
	t.Helper()
	ss := &SentinelSet{MasterName: "offload", t: t}
	var o Options // each process's TLS
	if pki != nil {
		o = Options{TLS: pki.ClientTLS(), Args: pki.NodeArgs()}
		ss.tls = o.TLS
	}
	ss.Master = StartWith(t, o)
	ss.Replica = StartWith(t, Options{TLS: o.TLS, Args: append(slices.Clone(o.Args), "--replicaof", "127.0.0.1", portOf(ss.Master.Addr))})
	conf := fmt.Sprintf(`sentinel monitor %s 127.0.0.1 %s 2
sentinel down-after-milliseconds %[1]s 1000
sentinel failover-timeout %[1]s 10000
sentinel parallel-syncs %[1]s 1
`, ss.MasterName, portOf(ss.Master.Addr))
	for range 3 {
		ss.Sentinels = append(ss.Sentinels, StartWith(t, Options{TLS: o.TLS, Args: o.Args, SentinelConf: conf}))
	}
	ctx := context.Background()
	deadline := time.Now().Add(15 * time.Second)
	for _, s := range ss.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, TLSConfig: ss.tls})
		for {
			reps, err1 := c.Replicas(ctx, ss.MasterName).Result()
			sens, err2 := c.Sentinels(ctx, ss.MasterName).Result()
			if err1 == nil && err2 == nil && len(reps) == 1 && len(sens) == 2 {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				t.Fatalf("sentinel %s: replicas %v (%v), other sentinels %d (%v) after 15 s", s.Addr, reps, err1, len(sens), err2)
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.Close()
	}
	// The replica has the master's data in sync before the set is handed out.
	rc := ss.Replica.Client()
	defer rc.Close()
	for {
		info, _ := rc.Info(ctx, "replication").Result()
		if containsLine(info, "master_link_status:up") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s never linked to its master:\n%s", ss.Replica.Addr, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ss
}

// Addrs are the sentinels' addresses.
func (ss *SentinelSet) Addrs() []string {
	var out []string
	for _, s := range ss.Sentinels {
		out = append(out, s.Addr)
	}
	return out
}

// MasterAddr asks the first sentinel that answers for the master's address now.
func (ss *SentinelSet) MasterAddr(ctx context.Context) (string, error) {
	var last error
	for _, s := range ss.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, TLSConfig: ss.tls})
		a, err := c.GetMasterAddrByName(ctx, ss.MasterName).Result()
		c.Close()
		if err == nil && len(a) == 2 {
			return a[0] + ":" + a[1], nil
		}
		last = err
	}
	return "", last
}

// WaitPromoted waits until the sentinels name addr as the master and it answers as one.
func (ss *SentinelSet) WaitPromoted(addr string, timeout time.Duration) error {
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		got, err := ss.MasterAddr(ctx)
		if err == nil && got == addr {
			c := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: ss.tls})
			role, err := c.Do(ctx, "ROLE").Slice()
			c.Close()
			if err == nil && len(role) > 0 && role[0] == "master" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sentinels name %q (%v) as the master after %s, want %s", got, err, timeout, addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

func containsLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimRight(l, "\r") == line {
			return true
		}
	}
	return false
}
