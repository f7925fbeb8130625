package warm

import (
	"errors"
	"net/url"
	"testing"
)

// A refused notify path is ErrUnsafe, and keeps why it was refused.
func TestUnsafeKeepsTheCause(t *testing.T) {
	p, err := ParsePattern("/api/v1/hls/{app}/{stream}/{ts_url}")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/hls/live/cam%zz/x.ts", "/api/v1/hls/live/cam/x%zz.ts"} {
		_, err := p.Match(path)
		var esc url.EscapeError
		if !errors.Is(err, ErrUnsafe) || !errors.As(err, &esc) {
			t.Errorf("%s: %v: want ErrUnsafe and the url.EscapeError", path, err)
		}
	}
}
