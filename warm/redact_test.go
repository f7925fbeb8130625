package warm

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Credentials in a target URL never reach a log line or an error: not when the edge fails, not
// when it cannot be reached, not when it works (debug), not in CheckTarget's complaint.
func TestWarmerRedactsCredentials(t *testing.T) {
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "fail") {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer edge.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0") // a port nothing answers on
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	host := strings.TrimPrefix(edge.URL, "http://")
	w, err := NewWarmer([]Target{
		{Name: "up", URL: "http://alice:pa55word@" + host + "/{key}"},
		{Name: "down", URL: "http://t0kenuser@" + closed + "/{key}"},
	}, "live", "", log)
	if err != nil {
		t.Fatal(err)
	}
	w.Warm(context.Background(), "live/ok.ts")
	w.Warm(context.Background(), "live/fail.ts")
	out := logs.String()
	for _, secret := range []string{"alice", "pa55word", "t0kenuser"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "xxxxx@"+host) || !strings.Contains(out, "edge not warmed") || !strings.Contains(out, "edge warmed") {
		t.Errorf("log does not show the redacted URLs:\n%s", out)
	}
	err = CheckTarget(Target{URL: "ftp://alice:pa55word@cdn.example/{key}"})
	if err == nil || strings.Contains(err.Error(), "pa55word") || strings.Contains(err.Error(), "alice") {
		t.Errorf("CheckTarget error %v", err)
	}
}
