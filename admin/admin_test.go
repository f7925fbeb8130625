package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/srs-offload/srs-offload/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func do(t *testing.T, h http.Handler, target string, header ...string) (int, string) {
	t.Helper()
	r := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func TestToken(t *testing.T) {
	h := New(Options{Token: "s3cr/t"})
	for _, tc := range []struct {
		name   string
		target string
		header []string
		want   int
	}{
		{"none", "/healthz", nil, 401},
		{"wrong bearer", "/healthz", []string{"Authorization", "Bearer nope"}, 401},
		{"wrong query", "/metrics?token=nope", nil, 401},
		{"basic is not bearer", "/healthz", []string{"Authorization", "Basic s3cr/t"}, 401},
		{"bearer", "/healthz", []string{"Authorization", "Bearer s3cr/t"}, 200},
		{"query", "/metrics?token=s3cr%2Ft", nil, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, h, tc.target, tc.header...)
			if code != tc.want {
				t.Fatalf("%s: %d %s, want %d", tc.target, code, body, tc.want)
			}
			if code == 401 && !strings.Contains(body, "admin.token") {
				t.Errorf("401 body %q does not say what to send", body)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	SetBuildInfo("v9.9.9", "abc123")
	h := New(Options{})
	if code, body := do(t, h, "/healthz"); code != 200 || !strings.Contains(body, `"alive":true`) {
		t.Errorf("/healthz: %d %s", code, body)
	}
	code, body := do(t, h, "/metrics")
	if code != 200 || !strings.Contains(body, `srs_offload_build_info{commit="abc123",version="v9.9.9"} 1`) {
		t.Errorf("/metrics: %d, no build info in:\n%.2000s", code, body)
	}
	// Without debug.pprof there is no profiler, and nothing else is served.
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/profile?seconds=1", "/api/v1/hls", "/"} {
		if code, _ := do(t, h, p); code != 404 {
			t.Errorf("%s: %d, want 404", p, code)
		}
	}
}

func TestPProfBounded(t *testing.T) {
	h := New(Options{PProf: true})
	if code, body := do(t, h, "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/: %d", code)
	}
	for _, q := range []string{"61", "3600", "0", "-1", "x"} {
		for _, p := range []string{"profile", "trace"} {
			code, body := do(t, h, "/debug/pprof/"+p+"?seconds="+q)
			if code != 400 || !strings.Contains(body, "1..60") {
				t.Errorf("%s?seconds=%s: %d %s, want 400 naming the bound", p, q, code, body)
			}
		}
	}
	if code, body := do(t, h, "/debug/pprof/trace?seconds=1"); code != 200 {
		t.Errorf("trace?seconds=1: %d %.200s", code, body)
	}
}

func TestReadyz(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	root := t.TempDir()
	storageErr := errors.New("bucket live: 403 Forbidden")
	storageOK := true
	h := New(Options{Checks: []Check{
		{Name: "redis", Dependency: "redis", Run: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
		{Name: "storage", Dependency: "storage", Run: func(context.Context) error {
			if storageOK {
				return nil
			}
			return storageErr
		}},
		{Name: "roots", Run: Writable([]string{root})},
	}})
	ready := func() (int, Readiness) {
		code, body := do(t, h, "/readyz")
		var r Readiness
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("/readyz body %q: %v", body, err)
		}
		return code, r
	}
	upOf := func(dep string) float64 { return testutil.ToFloat64(up.WithLabelValues(dep)) }

	code, r := ready()
	if code != 200 || !r.Ready || r.Checks["redis"] != "ok" || r.Checks["storage"] != "ok" || r.Checks["roots"] != "ok" {
		t.Fatalf("all up: %d %+v", code, r)
	}
	if upOf("redis") != 1 || upOf("storage") != 1 {
		t.Errorf("srs_offload_up redis=%v storage=%v, want 1 1", upOf("redis"), upOf("storage"))
	}

	srv.Stop()
	storageOK = false
	code, r = ready()
	if code != 503 || r.Ready || r.Checks["redis"] == "ok" || r.Checks["storage"] != storageErr.Error() || r.Checks["roots"] != "ok" {
		t.Fatalf("redis and storage down: %d %+v", code, r)
	}
	if upOf("redis") != 0 || upOf("storage") != 0 {
		t.Errorf("srs_offload_up redis=%v storage=%v, want 0 0", upOf("redis"), upOf("storage"))
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	storageOK = true
	os.RemoveAll(root)
	code, r = ready()
	if code != 503 || r.Checks["redis"] != "ok" || !strings.Contains(r.Checks["roots"], filepath.Base(root)) {
		t.Fatalf("root gone: %d %+v", code, r)
	}
	if upOf("redis") != 1 {
		t.Errorf("srs_offload_up redis=%v after Redis came back", upOf("redis"))
	}
}
