package uploader_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/srs-offload/srs-offload/internal/loopback"
	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/uploader"
)

// Storage down or overloaded is "unavailable"; storage saying no, or bytes that do not match, is not.
func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	ts, _ := media.ForHLS("x.ts")
	status := func(code int) func(http.Handler) http.Handler {
		return func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(code)
				fmt.Fprintf(w, "<Error><Code>Code%d</Code><Message>test</Message></Error>", code)
			})
		}
	}
	down := &s3test.Server{Name: "down", Endpoint: fmt.Sprintf("http://127.0.0.1:%d", loopback.FreePort(t)), Bucket: "test", AccessKey: "a", SecretKey: "b"}
	for _, tc := range []struct {
		name string
		srv  *s3test.Server
		want bool
	}{
		{"connection refused", down, true},
		{"503", s3test.Fake(t, status(503)), true},
		{"500", s3test.Fake(t, status(500)), true},
		{"429", s3test.Fake(t, status(429)), true},
		{"403", s3test.Fake(t, status(403)), false},
		{"404", s3test.Fake(t, status(404)), false},
		{"wrong ETag", s3test.Fake(t, s3test.WrongETags(func(*http.Request) bool { return true })), false},
	} {
		c := tc.srv.Config()
		u, err := uploader.New(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := randomFile(t, 1000)
		_, _, err = u.PutNew(ctx, "live/x.ts", f, 1000, ts, "o")
		if err == nil {
			t.Fatalf("%s: the upload succeeded", tc.name)
		}
		if got := uploader.Unavailable(err); got != tc.want {
			t.Errorf("%s: Unavailable(%v) = %v, want %v", tc.name, err, got, tc.want)
		}
	}
}
