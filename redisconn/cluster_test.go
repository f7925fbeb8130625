package redisconn

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/redis/go-redis/v9"
)

// A Cluster client reloads its slot map on what a dead or demoted master answers, not on a
// script's or a command's own error.
func TestNodeFailed(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{redis.Nil, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}, true},
		{fmt.Errorf("x: %w", io.EOF), true},
		{errors.New("CLUSTERDOWN The cluster is down"), true},
		{errors.New("READONLY You can't write against a read only replica."), true},
		{errors.New("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		{errors.New("ERR Error running script (call to f_x): @user_script:1: wrong number of args"), false},
		{errors.New("NOPERM this user has no permissions"), false},
	} {
		if got := nodeFailed(c.err); got != c.want {
			t.Errorf("nodeFailed(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
