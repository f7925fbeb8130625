package redisconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/rdb"
)

// Check reaches Redis the way the layout does and names what is wrong, per key: for Sentinel each
// sentinel is asked for the master, for a Cluster each seed node for its state; then the master
// (or the Cluster) must take a write and a Lua script as the configured user. It returns nil or a
// join of *KeyError.
func (c *Conn) Check(ctx context.Context, timeout time.Duration) error {
	r := c.cfg
	var errs []error
	switch r.Topology() {
	case "sentinel":
		errs = c.checkSentinels(ctx, timeout)
	case "cluster":
		errs = c.checkCluster(ctx, timeout)
	}
	if len(errs) > 0 && r.Topology() == "cluster" {
		return errors.Join(errs...)
	}
	// The sentinels may disagree or some be down: the master is still tried.
	cl := c.Client(timeout)
	defer cl.Close()
	if err := probe(ctx, cl); err != nil {
		errs = append(errs, c.blame(err))
	}
	return errors.Join(errs...)
}

// probe does what srs-offload does on Redis, in small: a write with expiry and a Lua script.
func probe(ctx context.Context, cl redis.UniversalClient) error {
	if err := cl.Ping(ctx).Err(); err != nil {
		return err
	}
	key := rdb.Probe
	token := strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := cl.Set(ctx, key, token, 10*time.Second).Err(); err != nil {
		return err
	}
	if err := rdb.Unlock.Run(ctx, cl, []string{key}, token).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	return nil
}

// blame names the key an error from the master or Cluster points at.
func (c *Conn) blame(err error) error {
	r := c.cfg
	key, val := "redis.addr", r.Addr
	switch r.Topology() {
	case "sentinel":
		key, val = "redis.sentinel.master_name", r.Sentinel.MasterName
	case "cluster":
		key, val = "redis.cluster.addrs", strings.Join(r.Cluster.Addrs, ",")
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "NOAUTH") || strings.Contains(msg, "invalid password"):
		return &KeyError{Key: "redis.password", Err: fmt.Errorf("%s %s refused redis.username %q with this password: %w", key, val, r.Username, err)}
	case strings.Contains(msg, "NOPERM"):
		return &KeyError{Key: "redis.username", Value: r.Username, Err: fmt.Errorf("the ACL user lacks a command or key srs-offload needs (README, Fleet): %w", err)}
	case isTLS(err):
		return &KeyError{Key: "redis.tls", Err: fmt.Errorf("%s %s: %w", key, val, err)}
	case r.TLS.On() && droppedAfterHandshake(err):
		// With TLS 1.3 the server checks the client certificate after the client's handshake
		// is done: a refused (or missing) certificate reads as a reset on the first command.
		return &KeyError{Key: "redis.tls", Err: fmt.Errorf("%s %s dropped the connection after the TLS handshake: does it require a client certificate (redis.tls.cert_file, .key_file) or trust another CA? %w", key, val, err)}
	}
	return &KeyError{Key: key, Value: val, Err: fmt.Errorf("not reachable: %w", err)}
}

func droppedAfterHandshake(err error) bool {
	m := err.Error()
	return errors.Is(err, io.EOF) || strings.Contains(m, "connection reset by peer") || strings.Contains(m, "broken pipe")
}

func isTLS(err error) bool {
	m := err.Error()
	return strings.Contains(m, "tls:") || strings.Contains(m, "x509:") || strings.Contains(m, "certificate")
}

// checkSentinels asks every sentinel for the master's address.
func (c *Conn) checkSentinels(ctx context.Context, timeout time.Duration) []error {
	r := c.cfg
	var errs []error
	known := 0
	for i, a := range r.Sentinel.Addrs {
		key := fmt.Sprintf("redis.sentinel.addrs[%d]", i)
		sc := redis.NewSentinelClient(&redis.Options{Addr: a, Username: r.Sentinel.Username, Password: r.Sentinel.Password,
			DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, TLSConfig: c.tlsFor()})
		_, err := sc.GetMasterAddrByName(ctx, r.Sentinel.MasterName).Result()
		sc.Close()
		switch {
		case errors.Is(err, redis.Nil):
			errs = append(errs, &KeyError{Key: "redis.sentinel.master_name", Value: r.Sentinel.MasterName, Err: fmt.Errorf("sentinel %s watches no master of this name", a)})
		case err != nil && (strings.Contains(err.Error(), "WRONGPASS") || strings.Contains(err.Error(), "NOAUTH")):
			errs = append(errs, &KeyError{Key: "redis.sentinel.password", Err: fmt.Errorf("sentinel %s refused redis.sentinel.username/password: %w", a, err)})
		case err != nil && strings.Contains(err.Error(), "unknown command"):
			errs = append(errs, &KeyError{Key: key, Value: a, Err: fmt.Errorf("not a sentinel (redis-server --sentinel): %w", err)})
		case err != nil:
			errs = append(errs, &KeyError{Key: key, Value: a, Err: fmt.Errorf("sentinel not reachable: %w", err)})
		default:
			known++
		}
	}
	if known == 0 && len(errs) == 0 {
		errs = append(errs, &KeyError{Key: "redis.sentinel.addrs", Err: errors.New("no sentinel answered")})
	}
	return errs
}

// checkCluster asks every seed node for the Cluster's state.
func (c *Conn) checkCluster(ctx context.Context, timeout time.Duration) []error {
	r := c.cfg
	var errs []error
	for i, a := range r.Cluster.Addrs {
		key := fmt.Sprintf("redis.cluster.addrs[%d]", i)
		nc := redis.NewClient(&redis.Options{Addr: a, Username: r.Username, Password: r.Password,
			DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, TLSConfig: c.tlsFor()})
		info, err := nc.ClusterInfo(ctx).Result()
		nc.Close()
		switch {
		case err != nil && strings.Contains(err.Error(), "cluster support disabled"):
			errs = append(errs, &KeyError{Key: key, Value: a, Err: errors.New("not a Cluster node (cluster-enabled no): use redis.addr or redis.sentinel for it")})
		case err != nil:
			errs = append(errs, c.blameNode(key, a, err))
		case !strings.Contains(info, "cluster_state:ok"):
			errs = append(errs, &KeyError{Key: key, Value: a, Err: errors.New("the Cluster does not serve every slot (cluster_state is not ok)")})
		}
	}
	return errs
}

func (c *Conn) blameNode(key, addr string, err error) error {
	e := c.blame(err).(*KeyError)
	if e.Key == "redis.cluster.addrs" {
		return &KeyError{Key: key, Value: addr, Err: fmt.Errorf("not reachable: %w", err)}
	}
	return e
}

// Reach is Check without asking each sentinel or seed node: the master (or the Cluster) takes a
// write and a Lua script as the configured user, or the error names the key at fault.
func (c *Conn) Reach(ctx context.Context, timeout time.Duration) error {
	cl := c.Client(timeout)
	defer cl.Close()
	if err := probe(ctx, cl); err != nil {
		return c.blame(err)
	}
	return nil
}
