package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/internal/s3test"
)

// /readyz of a serving process follows its dependencies: it answers 503 naming the one that is
// down within 2 s of a real redis-server or a real versitygw stopping, 200 within 2 s of it
// coming back, and srs_offload_up{dependency} says the same.
func TestReadyzFollowsRedisAndStorage(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, root)
	gw := s3test.VersityGateway(t)
	b, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "endpoint: "+s.s3.Endpoint, "endpoint: "+gw.Endpoint, 1)
	cfg = strings.Replace(cfg, "bucket: "+s.s3.Bucket, "bucket: "+gw.Bucket, 1)
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_AK", gw.AccessKey)
	t.Setenv("E2E_SK", gw.SecretKey)
	s.start("serve")

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.admin + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// until polls /readyz until it answers code, and returns how long that took and the checks.
	until := func(code int, what string) map[string]string {
		t.Helper()
		t0 := time.Now()
		for {
			got, body := get("/readyz")
			if got == code {
				var r struct {
					Ready  bool              `json:"ready"`
					Checks map[string]string `json:"checks"`
				}
				if err := json.Unmarshal([]byte(body), &r); err != nil || r.Ready != (code == 200) {
					t.Fatalf("/readyz %d %q: %v", got, body, err)
				}
				took := time.Since(t0)
				t.Logf("%s: /readyz %d after %v: %s", what, code, took.Round(time.Millisecond), body)
				if took > 2*time.Second {
					t.Errorf("%s: /readyz took %v to answer %d, want at most 2 s", what, took, code)
				}
				return r.Checks
			}
			if time.Since(t0) > 10*time.Second {
				t.Fatalf("%s: /readyz still %d %s after 10 s, want %d", what, got, body, code)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	up := func(dep, want string) {
		t.Helper()
		_, m := get("/metrics")
		line := `srs_offload_up{dependency="` + dep + `"} ` + want
		if !strings.Contains(m, line+"\n") {
			t.Errorf("/metrics has no %q", line)
		}
	}
	until(200, "all up")
	up("redis", "1")
	up("storage", "1")
	if _, m := get("/metrics"); !strings.Contains(m, `srs_offload_build_info{commit="`) {
		t.Errorf("/metrics has no srs_offload_build_info")
	}

	s.redis.Stop()
	checks := until(503, "redis stopped")
	if checks["redis"] == "ok" || checks["storage"] != "ok" || checks["roots"] != "ok" {
		t.Errorf("redis stopped: checks %v, want only redis failing", checks)
	}
	up("redis", "0")
	if err := s.redis.Start(); err != nil {
		t.Fatal(err)
	}
	until(200, "redis back")
	up("redis", "1")

	gw.Stop()
	checks = until(503, "storage stopped")
	if checks["storage"] == "ok" || checks["redis"] != "ok" {
		t.Errorf("storage stopped: checks %v, want only storage failing", checks)
	}
	up("storage", "0")
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	until(200, "storage back")
	up("storage", "1")
}
