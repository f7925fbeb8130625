package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/internal/loopback"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/internal/s3test"
)

// No secret appears in check's output (plain, and --connect against a failing endpoint), nor in
// a serving process's log (debug level, a stored segment, a refused hook, a bad hook) or its
// /metrics. Every secret is set, from ${VAR}, to a marker: storage keys, session token, the
// role's external ID, Redis's password, the hooks and admin tokens, a warm target's header. The
// secrets are real where they can be: Redis requires the password, the STS stub checks the
// external ID and the hooks token is enforced.
func TestNoSecretInOutput(t *testing.T) {
	markers := map[string]string{
		"M_AK": "AKIAMARKERACCESS01", "M_SK": "secretkey-MARKER-7f3a", "M_TOKEN": "sessiontoken-MARKER-91c2",
		"M_EXT": "externalid-MARKER-55d1", "M_REDIS": "redispass-MARKER-0b8e", "M_HOOK": "hooktoken-MARKER-3e6f",
		"M_ADMIN": "admintoken-MARKER-c4a9", "M_WARM": "warmheader-MARKER-a2d7",
	}
	for k, v := range markers {
		t.Setenv(k, v)
	}
	rds := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: rds.Addr})
	if err := rc.ConfigSet(context.Background(), "requirepass", markers["M_REDIS"]).Err(); err != nil {
		t.Fatal(err)
	}
	rc.Close()

	// The STS stub answers AssumeRole only with the configured external ID; gofakes3 records the
	// token the uploads are signed with (the role's).
	var mu sync.Mutex
	var extIDs, tokens []string
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		extIDs = append(extIDs, r.PostForm.Get("ExternalId"))
		mu.Unlock()
		if r.PostForm.Get("ExternalId") != markers["M_EXT"] {
			http.Error(w, "<ErrorResponse><Error><Code>AccessDenied</Code><Message>bad external id</Message></Error></ErrorResponse>", 403)
			return
		}
		fmt.Fprint(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>`+
			`<AccessKeyId>ROLEKEY</AccessKeyId><SecretAccessKey>rolesecret</SecretAccessKey><SessionToken>roletoken</SessionToken>`+
			`<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>`)
	}))
	t.Cleanup(sts.Close)
	s3 := s3test.Fake(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			tokens = append(tokens, r.Header.Get("X-Amz-Security-Token"))
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	})

	dir, root := t.TempDir(), t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	config := func(endpoint, stsURL string) string {
		return fmt.Sprintf(`listen: %s
admin: {listen: %s, token: "${M_ADMIN}"}
node: nosecret
log: {level: debug}
redis: {addr: %s, password: "${M_REDIS}"}
roots: [%q]
hooks: {token: "${M_HOOK}"}
storage:
  endpoint: %s
  bucket: %s
  access_key: ${M_AK}
  secret_key: ${M_SK}
  session_token: ${M_TOKEN}
  role_arn: arn:aws:iam::123456789012:role/offload
  external_id: ${M_EXT}
  sts_endpoint: %s
warm:
  targets:
    - url: http://127.0.0.1:1/{key}
      headers: {Authorization: "Bearer ${M_WARM}"}
worker: {concurrency: 2, retry_base: 100ms, retry_max: 1s, poll_interval: 10ms, shutdown_timeout: 5s}
`, listen, adminAddr, rds.Addr, root, endpoint, s3.Bucket, stsURL)
	}
	var seen bytes.Buffer // everything printed or served
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", config(s3.Endpoint, sts.URL))
	bad := write("bad.yaml", config("http://127.0.0.1:1", "http://127.0.0.1:1"))

	out, err := exec.Command(binary(t), "check", "-c", good).CombinedOutput()
	seen.Write(out)
	if err != nil || !strings.Contains(string(out), "config ok") {
		t.Fatalf("check: %v\n%s", err, out)
	}
	out, err = exec.Command(binary(t), "check", "--connect", "-c", good).CombinedOutput()
	seen.Write(out)
	if err != nil {
		t.Fatalf("check --connect: %v\n%s", err, out)
	}
	out, err = exec.Command(binary(t), "check", "--connect", "-c", bad).CombinedOutput()
	seen.Write(out)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "storage.bucket") {
		t.Errorf("check --connect against a failing endpoint: %v\n%s", err, out)
	}
	// A wrong Redis password: the error names the key, not the password.
	wrongRedis := write("redis.yaml", strings.Replace(config(s3.Endpoint, sts.URL), `password: "${M_REDIS}"`, `password: "${M_REDIS}x"`, 1))
	out, _ = exec.Command(binary(t), "check", "--connect", "-c", wrongRedis).CombinedOutput()
	seen.Write(out)
	if !strings.Contains(string(out), "redis") {
		t.Errorf("check --connect with a wrong Redis password:\n%s", out)
	}

	var log syncBuffer
	cmd := exec.Command(binary(t), "serve", "-c", good)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	get := func(path string) string {
		req, _ := http.NewRequest("GET", "http://"+adminAddr+path, nil)
		req.Header.Set("Authorization", "Bearer "+markers["M_ADMIN"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(get("/metrics"), "srs_offload_") {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer /metrics:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	seg := filepath.Join(root, "live", "cam-1.ts")
	writeSegment(t, seg, randomBytes(5000, 9))
	body := fmt.Sprintf(`{"server_id":"vid-1","action":"on_hls","client_id":"c1","ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","stream":"cam",`+
		`"param":"?token=%s","duration":2.0,"cwd":"/usr/local/srs","file":%q,"url":"live/cam-1.ts","m3u8":%q,"m3u8_url":"live/cam.m3u8","seq_no":1,`+
		`"stream_url":"/live/cam","stream_id":"vid-2"}`, markers["M_HOOK"], seg, filepath.Join(root, "live", "cam.m3u8"))
	post(t, "http://"+listen+"/api/v1/hls?token="+markers["M_HOOK"], []byte(body))
	for _, q := range []string{"?token=wrong-" + markers["M_HOOK"][:4], "?token=" + markers["M_HOOK"]} { // refused; malformed
		resp, err := http.Post("http://"+listen+"/api/v1/hls"+q, "application/json", strings.NewReader(`{"action":"on_hls","file":`))
		if err == nil {
			resp.Body.Close()
		}
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(seg); os.IsNotExist(err) {
			break // stored, verified and purged
		}
		if time.Now().After(deadline) {
			t.Fatalf("the segment was not offloaded:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	seen.WriteString(get("/metrics"))
	seen.WriteString(get("/healthz"))
	seen.WriteString(get("/readyz"))
	// The web UI's views: the finished task with its payload (it completes a moment after the
	// purge), the queues, the workers, Redis's INFO.
	for deadline = time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		b := get("/monitor/api/queues/hls@nosecret/completed_tasks")
		if strings.Contains(b, "live/cam-1.ts") {
			seen.WriteString(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the web UI shows no completed task of live/cam-1.ts: %.300s", b)
		}
	}
	for _, p := range []string{"/monitor/api/queues", "/monitor/api/servers", "/monitor/api/redis_info"} {
		b := get(p)
		if !strings.Contains(b, "{") {
			t.Errorf("web UI %s: %.300s", p, b)
		}
		seen.WriteString(b)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		done <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	seen.WriteString(log.String())

	mu.Lock()
	if len(extIDs) == 0 || !strings.Contains(strings.Join(tokens, ","), "roletoken") {
		t.Errorf("the role was not used: external IDs %q, tokens %q", extIDs, tokens)
	}
	mu.Unlock()
	for name, m := range markers {
		if i := strings.Index(seen.String(), m); i >= 0 {
			s := seen.String()
			t.Errorf("%s (%s) appears in the output: …%s…", name, m, s[max(0, i-200):min(len(s), i+100)])
		}
	}
	if t.Failed() {
		t.Logf("all output:\n%s", seen.String())
	}
}
