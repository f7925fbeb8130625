// Package redisconn turns the redis settings into clients: the asynq connection options (queue
// client, worker server, inspector) and the go-redis client of our own commands and Lua scripts
// (playlist ledger, warm rendezvous). It is the one place that knows the three layouts (a single
// server, a master found through Sentinel, a Cluster), TLS and the ACL user, so every client of a
// process talks to the same Redis the same way.
package redisconn

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/settings"
)

// KeyError is a problem with one redis setting; Key names it (e.g. "redis.tls.ca_file").
type KeyError struct {
	Key   string
	Value string // the value at fault, when it helps (an address); never a secret
	Err   error
}

func (e *KeyError) Error() string {
	if e.Value != "" {
		return e.Key + " " + e.Value + ": " + e.Err.Error()
	}
	return e.Key + ": " + e.Err.Error()
}
func (e *KeyError) Unwrap() error { return e.Err }

// Conn is the redis settings made ready to connect: TLS files read once.
type Conn struct {
	cfg settings.Redis
	tls *tls.Config // nil: plain TCP
}

// New reads the TLS files (if any). Errors are *KeyError.
func New(cfg settings.Redis) (*Conn, error) {
	c := &Conn{cfg: cfg}
	if cfg.TLS.On() {
		t, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		c.tls = t
	}
	return c, nil
}

// Topology is "single", "sentinel" or "cluster".
func (c *Conn) Topology() string { return c.cfg.Topology() }

// Settings are the settings c was made from.
func (c *Conn) Settings() settings.Redis { return c.cfg }

func tlsConfig(t settings.RedisTLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, &KeyError{Key: "redis.tls.ca_file", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &KeyError{Key: "redis.tls.ca_file", Err: fmt.Errorf("%s holds no PEM certificate", t.CAFile)}
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, &KeyError{Key: "redis.tls.cert_file", Err: fmt.Errorf("with redis.tls.key_file: %w", err)}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// tlsFor is a copy of the TLS config (go-redis sets ServerName on it per address when empty).
func (c *Conn) tlsFor() *tls.Config {
	if c.tls == nil {
		return nil
	}
	return c.tls.Clone()
}

// A Sentinel or Cluster failover leaves no master for a few seconds (Sentinel: down-after plus
// the vote; Cluster: node-timeout plus the election). A command that meets the dead master is tried
// again, backing off to maxBackoff, for about 12 s: asynq's own bookkeeping (moving a task to
// retry or done) and our ledger then land on the new master instead of failing. asynq v0.26 gives
// a failed move to retry a context that is already cancelled when its syncer tries again, so the
// task would stay active until its lease (30 s) expires and the recoverer (every minute) finds it,
// holding its stream's live playlist all that time. A caller's context still bounds each command
// (hooks.enqueue_timeout for a hook).
const (
	failoverRetries = 14
	minBackoff      = 50 * time.Millisecond
	maxBackoff      = time.Second // 14 tries: about 12 s in all
)

// Asynq is the asynq connection option of the layout. timeout, when > 0, bounds each dial, read
// and write (asynq's client ignores context deadlines on reads; see queue.Options.RedisTimeout).
// A single server gets asynq's own RedisClientOpt; Sentinel and Cluster get options that build
// the same go-redis clients as Client (with its retries through a failover), since asynq's
// RedisFailoverClientOpt and RedisClusterClientOpt have no say over retries.
func (c *Conn) Asynq(timeout time.Duration) asynq.RedisConnOpt {
	r := c.cfg
	switch r.Topology() {
	case "sentinel":
		o := c.failover(timeout)
		return clientOpt(func() redis.UniversalClient { oc := *o; return redis.NewFailoverClient(&oc) })
	case "cluster":
		o := c.cluster(timeout)
		return clientOpt(func() redis.UniversalClient { return newCluster(o) })
	}
	return asynq.RedisClientOpt{
		Addr: r.Addr, Username: r.Username, Password: r.Password, DB: r.DB,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, TLSConfig: c.tlsFor(),
	}
}

// clientOpt is an asynq.RedisConnOpt that builds its client with a function: asynq asks it for a
// redis.UniversalClient (asynq.RedisConnOpt's MakeRedisClient).
type clientOpt func() redis.UniversalClient

func (f clientOpt) MakeRedisClient() any { return f() }

func (c *Conn) failover(timeout time.Duration) *redis.FailoverOptions {
	r := c.cfg
	return &redis.FailoverOptions{
		MasterName: r.Sentinel.MasterName, SentinelAddrs: r.Sentinel.Addrs,
		SentinelUsername: r.Sentinel.Username, SentinelPassword: r.Sentinel.Password,
		Username: r.Username, Password: r.Password, DB: r.DB,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout,
		MaxRetries: failoverRetries, MinRetryBackoff: minBackoff, MaxRetryBackoff: maxBackoff,
		TLSConfig: c.tlsFor(),
	}
}

func (c *Conn) cluster(timeout time.Duration) *redis.ClusterOptions {
	r := c.cfg
	return &redis.ClusterOptions{
		Addrs: r.Cluster.Addrs, Username: r.Username, Password: r.Password,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout,
		MaxRedirects: failoverRetries, MinRetryBackoff: minBackoff, MaxRetryBackoff: maxBackoff,
		TLSConfig: c.tlsFor(),
	}
}

// Client is the go-redis client of our own commands and scripts. timeout, when > 0, bounds each
// dial, read and write, and context deadlines are honoured.
func (c *Conn) Client(timeout time.Duration) redis.UniversalClient {
	r := c.cfg
	switch r.Topology() {
	case "sentinel":
		o := c.failover(timeout)
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o)
	case "cluster":
		o := c.cluster(timeout)
		o.ContextTimeoutEnabled = true
		return newCluster(o)
	}
	return redis.NewClient(&redis.Options{
		Addr: r.Addr, Username: r.Username, Password: r.Password, DB: r.DB,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, ContextTimeoutEnabled: true,
		TLSConfig: c.tlsFor(),
	})
}
