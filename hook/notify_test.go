package hook_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
)

type notices struct {
	mu    sync.Mutex
	paths []string
}

func (n *notices) Accept(_ context.Context, escapedPath string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.paths = append(n.paths, escapedPath)
	return nil
}

// on_hls_notify with a token: SRS builds the URL as <template>[param], so the publisher's own query
// (starting with '?') may follow or precede the token. The notify is handed on only with the token.
func TestNotifyToken(t *testing.T) {
	e := newEnv(t, envConfig{roots: []string{t.TempDir()}, token: "s3cret"})
	n := &notices{}
	e.handler.Notify = n
	for target, want := range map[string]int{
		"/api/v1/hls/live/cam/x-0.ts?token=s3cret":                  http.StatusOK,
		"/api/v1/hls/live/cam/x-1.ts?token=s3cret?pub=abc&salt=xyz": http.StatusOK,
		"/api/v1/hls/live/cam/x-2.ts?pub=abc?token=s3cret":          http.StatusOK,
		"/api/v1/hls/live/cam/x-3.ts?token=wrong?pub=abc":           http.StatusForbidden,
		"/api/v1/hls/live/cam/x-4.ts?pub=abc":                       http.StatusForbidden,
		"/api/v1/hls/live/cam/x-5.ts?xtoken=s3cret":                 http.StatusForbidden,
	} {
		if r := e.do(http.MethodGet, target, ""); r.status != want {
			t.Errorf("GET %s: %d, want %d", target, r.status, want)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.paths) != 3 {
		t.Fatalf("notices handed on: %v, want the 3 with the token", n.paths)
	}
}
