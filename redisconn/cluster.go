package redisconn

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// newCluster builds a Cluster client that reloads its slot map as soon as a node fails. go-redis
// reloads it on MOVED, or when it is 10 s old; a master that dies takes its slots to a replica
// without any MOVED from it, so until then every command for those slots would dial the dead
// master again, retries included. With the reload, the next retry (after its backoff) asks the
// new master.
func newCluster(shared *redis.ClusterOptions) *redis.ClusterClient {
	o := *shared // each client its own: NewClient below names this client
	var cc atomic.Pointer[redis.ClusterClient]
	h := reloadHook{reload: func() {
		if c := cc.Load(); c != nil {
			c.ReloadState(context.Background()) // lazy: one reload at a time, in the background
		}
	}}
	o.NewClient = func(opt *redis.Options) *redis.Client {
		n := redis.NewClient(opt)
		n.AddHook(h)
		return n
	}
	c := redis.NewClusterClient(&o)
	cc.Store(c)
	return c
}

// reloadHook calls reload when a node's command or dial fails the way a dead or demoted node
// does.
type reloadHook struct{ reload func() }

func (h reloadHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			h.reload()
		}
		return conn, err
	}
}

func (h reloadHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if nodeFailed(err) {
			h.reload()
		}
		return err
	}
}

func (h reloadHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if nodeFailed(err) {
			h.reload()
		}
		return err
	}
}

// nodeFailed: the node is gone (network) or the Cluster is between masters (CLUSTERDOWN,
// TRYAGAIN, a write to a replica).
func nodeFailed(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	m := err.Error()
	for _, p := range []string{"CLUSTERDOWN", "TRYAGAIN", "READONLY", "MASTERDOWN", "LOADING"} {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return false
}
