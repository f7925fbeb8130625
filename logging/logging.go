// Package logging builds the process's logger from log.format and log.level, and makes it the
// only writer of log lines: the loggers of the libraries srs-offload runs write through it too,
// so with `log.format: json` every line on stderr is one JSON object.
//
// Routed here: slog's default logger (used by packages given no logger, e.g. the uploader's
// warnings), the standard library's log package (asynq's metrics collector, net/http servers
// without an ErrorLog) and go-redis's logger (which writes to stderr itself). The AWS SDK's logger
// is set by the uploader, the one package that imports the SDK; asynq's by the worker.
package logging

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// New returns a logger writing to w: JSON lines for format "json", else slog's text format;
// level is debug, info, warn or error (info when empty or unknown).
func New(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Install makes l the process's one logger: slog's default, the log package's output (each line
// a warning, attributed to component "log": what libraries print there is trouble) and go-redis's
// logger (warnings, component "go-redis").
func Install(l *slog.Logger) {
	slog.SetDefault(l)
	// After SetDefault, which also points the log package at l (at info level): warnings instead.
	log.SetFlags(0)
	log.SetPrefix("")
	log.SetOutput(lineWriter{l.With("component", "log")})
	redis.SetLogger(redisLogger{l.With("component", "go-redis")})
}

// lineWriter logs each Write (the log package writes one line per call) as a warning.
type lineWriter struct{ l *slog.Logger }

func (w lineWriter) Write(p []byte) (int, error) {
	w.l.Warn(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// redisLogger is go-redis's Logging: its lines are about lost connections and pool trouble.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.WarnContext(ctx, strings.TrimRight(fmt.Sprintf(format, v...), "\n"))
}
