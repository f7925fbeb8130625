package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// jsonLines checks that every line of out is one JSON object with time, level and msg, and
// returns them.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("not a JSON line: %q", line)
			continue
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := m[k]; !ok {
				t.Errorf("JSON line without %s: %q", k, line)
			}
		}
		lines = append(lines, m)
	}
	return lines
}

// findLine is the first line whose msg contains text.
func findLine(lines []map[string]any, text string) map[string]any {
	for _, m := range lines {
		if msg, _ := m["msg"].(string); strings.Contains(msg, text) {
			return m
		}
	}
	return nil
}

// With log.format json every line serve writes is JSON, also what the libraries print: the
// uploader's warning at start (it logged through slog's text default), asynq's metrics collector
// with Redis stopped (the log package), the hook receiver's refusals, and the shutdown.
func TestE2ELogsJSON(t *testing.T) {
	s, root := newStackWith(t, "")
	b, _ := os.ReadFile(s.config)
	cfg := strings.Replace(string(b), "storage:\n", "storage:\n  verify: size\n", 1)
	cfg = strings.Replace(cfg, "log: {level: debug}\n", "log: {format: json}\n", 1)
	os.WriteFile(s.config, []byte(cfg), 0o644)
	p := s.start("serve")

	seg := filepath.Join(root, "live", "cam", "20261125", "1795474211734-0.ts")
	data := randomBytes(20_000, 5)
	writeSegment(t, seg, data)
	post(t, "http://"+s.listen+"/api/v1/hls", srsHook("c1", "cam", "/", seg, "live/cam/20261125/1795474211734-0.ts", filepath.Join(root, "live", "cam.m3u8"), 0, 2.0))
	s.settle([]want{{key: "live/cam/20261125/1795474211734-0.ts", local: seg, data: data}}, 20*time.Second)
	resp, err := http.Post("http://"+s.listen+"/api/v1/hls", "application/json", strings.NewReader(`{"action":"on_hls","file":"/etc/passwd","cwd":"/"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// Redis stopped: a scrape makes asynq's collector fail, which it prints with the log package.
	s.redis.Stop()
	if resp, err := http.Get("http://" + s.admin + "/metrics"); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	s.redis.Start()
	p.stop(t)

	lines := jsonLines(t, p.log.String())
	for text, level := range map[string]string{
		"storage.verify is size":         "WARN", // the uploader, through slog's default
		"Failed to collect metrics data": "WARN", // asynq's collector, through the log package
		"hook: refused":                  "WARN",
		"shutting down":                  "INFO",
	} {
		m := findLine(lines, text)
		if m == nil || m["level"] != level {
			t.Errorf("no %s line %q in the log (found %v)", level, text, m)
		}
	}
	if t.Failed() {
		t.Logf("serve's stderr:\n%s", p.log.String())
	}
}

// The AWS SDK's own lines are JSON too: with no keys, the SDK's credential chain asks the EC2
// metadata service (here a local one without IMDSv2, as many are), whose client logs a warning
// before falling back to IMDSv1; no role is found, and the failure at start is a JSON line too.
func TestE2ELogsJSONFromTheSDK(t *testing.T) {
	var imds atomic.Int64
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		imds.Add(1)
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		http.NotFound(w, r)
	}))
	defer meta.Close()
	s := newStack(t, t.TempDir())
	cfg := filepath.Join(s.dir, "sdk.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
listen: %s
admin: {listen: %s}
node: e2e
log: {format: json}
redis: {addr: %s}
roots: [%q]
storage: {endpoint: %s, bucket: %s}
`, s.listen, s.admin, s.redis.Addr, s.dir, s.s3.Endpoint, s.s3.Bucket)), 0o644)
	cmd := exec.Command(binary(t), "serve", "-c", cfg)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.dir,
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + meta.URL,
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(s.dir, "none"), "AWS_CONFIG_FILE=" + filepath.Join(s.dir, "none")}
	var out []byte
	done := make(chan error, 1)
	go func() {
		var err error
		out, err = cmd.CombinedOutput()
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("serve without credentials did not exit:\n%s", out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("serve without credentials: %v, want exit 1\n%s", err, out)
	}
	if imds.Load() == 0 {
		t.Fatalf("the SDK never asked the metadata service:\n%s", out)
	}
	lines := jsonLines(t, string(out))
	if m := findLine(lines, "falling back to IMDSv1"); m == nil || m["level"] != "WARN" || m["component"] != "aws-sdk" {
		t.Errorf("no WARN line of the SDK's (component aws-sdk) about IMDSv1: %v", m)
	}
	if m := findLine(lines, "srs-offload serve:"); m == nil || m["level"] != "ERROR" {
		t.Errorf("no ERROR line for the failure at start: %v", m)
	}
	if t.Failed() {
		t.Logf("serve's output:\n%s", out)
	}
}

// `srs-offload dev` starts and runs without a warning: its embedded S3 (gofakes3) answers
// ListMultipartUploads with NoSuchUpload until a multipart upload was started, which made the
// multipart janitor warn every minute and every big upload warn once. A segment and a DVR file
// big enough for a multipart upload go through; every line is JSON and none is a warning or error,
// shutdown included.
func TestE2EDevNoWarning(t *testing.T) {
	var d *devServer
	// Registered first, so it runs last: after startDev's cleanup has stopped the process.
	t.Cleanup(func() {
		for _, m := range jsonLines(t, d.stderr.String()) {
			if m["level"] != "INFO" && m["level"] != "DEBUG" {
				t.Errorf("dev logged a %s: %v", m["level"], m)
			}
		}
		if t.Failed() {
			t.Logf("dev's stderr:\n%s", d.stderr.String())
		}
	})
	d = startDev(t, "log: {format: json}\nstorage: {multipart_threshold: 5MiB, part_size: 5MiB}\n")

	seg := filepath.Join(d.root, "live", "cam", "20261125", "1795474211734-0.ts")
	segData := randomBytes(100_000, 21)
	writeSegment(t, seg, segData)
	post(t, "http://"+d.listen+"/api/v1/hls", srsHook("c1", "cam", "/", seg, "live/cam/20261125/1795474211734-0.ts", filepath.Join(d.root, "live", "cam.m3u8"), 0, 2.0))

	dvr := filepath.Join(d.root, "live", "cam", "20261125", "1795474211734.flv")
	dvrData := randomBytes(12<<20, 22)
	writeSegment(t, dvr, dvrData)
	body, _ := json.Marshal(map[string]any{"action": "on_dvr", "client_id": "c1", "ip": "127.0.0.1", "vhost": "__defaultVhost__",
		"app": "live", "stream": "cam", "param": "", "cwd": "/", "file": dvr, "stream_url": "/live/cam", "stream_id": "vid-1"})
	post(t, "http://"+d.listen+"/api/v1/dvrs", body)

	for key, want := range map[string][]byte{"live/cam/20261125/1795474211734-0.ts": segData, "live/cam/1795474211734.flv": dvrData} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, _, found, err := d.bucket.get(key)
			if err == nil && found && string(got) == string(want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not stored within 30 s (found %v, %d bytes, %v)", key, found, len(got), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
