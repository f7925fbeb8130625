package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/logging"
)

// After Install, what the log package, slog's default and go-redis print comes out as JSON lines
// of the installed logger, at the level each deserves. go-redis is made to log for real, against a
// real redis-server: an expiry under a millisecond, which it truncates and says so.
func TestInstallRoutesEveryLogger(t *testing.T) {
	var buf bytes.Buffer
	l := logging.New(&buf, "json", "debug")
	logging.Install(l)
	defer logging.Install(slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))

	log.Printf("Failed to collect metrics data: %v", "boom")
	slog.Info("from the default logger", "k", 1)

	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	if err := c.Set(context.Background(), "k", "v", 500*time.Microsecond).Err(); err != nil {
		t.Fatal(err)
	}

	var sawLog, sawDefault, sawRedis bool
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q (%v)", line, err)
		}
		switch {
		case m["msg"] == "Failed to collect metrics data: boom":
			sawLog = m["level"] == "WARN" && m["component"] == "log"
		case m["msg"] == "from the default logger":
			sawDefault = m["level"] == "INFO" && m["k"] == 1.0
		case strings.HasPrefix(m["msg"].(string), "specified duration is 500µs"):
			sawRedis = m["level"] == "WARN" && m["component"] == "go-redis"
		}
	}
	if !sawLog || !sawDefault || !sawRedis {
		t.Fatalf("routed: log package %v, slog default %v, go-redis %v; output:\n%s", sawLog, sawDefault, sawRedis, buf.String())
	}
}
