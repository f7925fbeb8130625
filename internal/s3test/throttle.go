package s3test

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// Throttle limits the request bodies passing through it (every request together) to about
// bytesPerSec, as a slow link to storage would: for tests that watch an upload while it runs.
// Use it with Proxy.
func Throttle(bytesPerSec int64) func(http.Handler) http.Handler {
	l := &limiter{rate: bytesPerSec, start: time.Now()}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = &slowBody{rc: r.Body, l: l}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// limiter is a shared budget: after n bytes in all, a reader waits until n/rate seconds have
// passed since the start.
type limiter struct {
	mu    sync.Mutex
	rate  int64
	start time.Time
	n     int64
}

func (l *limiter) take(n int) {
	l.mu.Lock()
	l.n += int64(n)
	due := l.start.Add(time.Duration(float64(l.n) / float64(l.rate) * float64(time.Second)))
	if now := time.Now(); due.Before(now.Add(-time.Second)) {
		// Idle for a while: no burst of credit.
		l.start, l.n = now, int64(n)
		due = now.Add(time.Duration(float64(n) / float64(l.rate) * float64(time.Second)))
	}
	l.mu.Unlock()
	time.Sleep(time.Until(due))
}

type slowBody struct {
	rc io.ReadCloser
	l  *limiter
}

func (b *slowBody) Read(p []byte) (int, error) {
	if len(p) > 64<<10 {
		p = p[:64<<10]
	}
	n, err := b.rc.Read(p)
	if n > 0 {
		b.l.take(n)
	}
	return n, err
}

func (b *slowBody) Close() error { return b.rc.Close() }
