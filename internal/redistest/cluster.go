package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of three masters, each with one replica, on loopback; a node is
// deemed failed after one second (cluster-node-timeout 1000).
type Cluster struct {
	Nodes []*Server
	t     testing.TB
}

// StartCluster starts six cluster-enabled servers, joins them with `redis-cli --cluster create
// --cluster-replicas 1`, and waits until every node sees all slots served.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	return StartClusterTLS(t, nil)
}

// StartClusterTLS is StartCluster; with a PKI every node listens with TLS only, requires client
// certificates, and talks to the others with TLS, replication and Cluster bus alike
// (PKI.NodeArgs, tls-cluster yes): CLUSTER SLOTS then names the nodes' TLS ports.
func StartClusterTLS(t testing.TB, pki *PKI) *Cluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not found (Debian's redis-tools, installed with redis-server)")
	}
	c := &Cluster{t: t}
	args := []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
		"--cluster-replica-validity-factor", "0", "--cluster-require-full-coverage", "yes"}
	var o Options
	var cliTLS []string
	if pki != nil {
		o = Options{TLS: pki.ClientTLS(), Args: append(pki.NodeArgs(), "--tls-cluster", "yes")}
		cliTLS = pki.CLIArgs()
	}
	var addrs []string
	for range 6 {
		s := StartWith(t, Options{TLS: o.TLS, Args: append(slices.Clone(args), o.Args...)})
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr)
	}
	cmd := exec.Command(cli, append(append(append(cliTLS, "--cluster", "create"), addrs...), "--cluster-replicas", "1", "--cluster-yes")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.WaitOK(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// Addrs are every node's address.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, s := range c.Nodes {
		out = append(out, s.Addr)
	}
	return out
}

// WaitOK waits until every running node reports cluster_state:ok and knows every node, and the
// nodes agree on which are masters.
func (c *Cluster) WaitOK(timeout time.Duration) error {
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		bad := ""
		for _, s := range c.Nodes {
			if !s.Running() {
				continue
			}
			nc := s.Client()
			info, err := nc.ClusterInfo(ctx).Result()
			nc.Close()
			if err != nil || !containsLine(info, "cluster_state:ok") || !containsLine(info, fmt.Sprintf("cluster_known_nodes:%d", len(c.Nodes))) {
				bad = fmt.Sprintf("%s: %v\n%s", s.Addr, err, info)
				break
			}
		}
		if bad == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not ok after %s: %s", timeout, bad)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Node is one line of CLUSTER NODES.
type Node struct {
	ID, Addr, Master string // Master: the ID of a replica's master
	IsMaster, Failed bool
}

// Topology is CLUSTER NODES as seen by the first running node.
func (c *Cluster) Topology() ([]Node, error) {
	for _, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		nc := s.Client()
		text, err := nc.ClusterNodes(context.Background()).Result()
		nc.Close()
		if err != nil {
			return nil, err
		}
		var out []Node
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			f := strings.Fields(l)
			if len(f) < 8 {
				continue
			}
			addr, _, _ := strings.Cut(f[1], "@")
			out = append(out, Node{ID: f[0], Addr: addr, Master: strings.Trim(f[3], "-"),
				IsMaster: strings.Contains(f[2], "master"), Failed: strings.Contains(f[2], "fail")})
		}
		return out, nil
	}
	return nil, fmt.Errorf("no cluster node running")
}

// Server is the node at addr.
func (c *Cluster) Server(addr string) *Server {
	for _, s := range c.Nodes {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// MasterOf is the address of the master serving key now, as the first running node sees it.
func (c *Cluster) MasterOf(key string) (string, error) {
	for _, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		nc := s.Client()
		defer nc.Close()
		slot, err := nc.ClusterKeySlot(context.Background(), key).Result()
		if err != nil {
			return "", err
		}
		slots, err := nc.ClusterSlots(context.Background()).Result()
		if err != nil {
			return "", err
		}
		for _, r := range slots {
			if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
				return r.Nodes[0].Addr, nil
			}
		}
		return "", fmt.Errorf("slot %d of %s served by no node", slot, key)
	}
	return "", fmt.Errorf("no cluster node running")
}

// FailOver fails over the master serving key as an operator does: CLUSTER FAILOVER on one of its
// replicas, then waits (up to timeout) until that replica serves the key. It returns the old
// master's and the new one's addresses.
func (c *Cluster) FailOver(key string, timeout time.Duration) (old, replica string, err error) {
	if old, err = c.MasterOf(key); err != nil {
		return "", "", err
	}
	nodes, err := c.Topology()
	if err != nil {
		return "", "", err
	}
	var oldID string
	for _, n := range nodes {
		if n.Addr == old {
			oldID = n.ID
		}
	}
	for _, n := range nodes {
		if !n.IsMaster && n.Master == oldID {
			replica = n.Addr
		}
	}
	if replica == "" {
		return "", "", fmt.Errorf("no replica of %s in %+v", old, nodes)
	}
	rc := c.Server(replica).Client()
	defer rc.Close()
	if err := rc.Do(context.Background(), "CLUSTER", "FAILOVER").Err(); err != nil {
		return "", "", fmt.Errorf("CLUSTER FAILOVER on %s: %w", replica, err)
	}
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		if m, err := c.MasterOf(key); err == nil && m == replica {
			return old, replica, nil
		}
		if time.Now().After(deadline) {
			return "", "", fmt.Errorf("%s did not take %s over from %s within %s", replica, key, old, timeout)
		}
	}
}
