package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// check reports a missing ffmpeg when post.remux is on, and passes once ffmpeg is on PATH; a
// webhook's secret is read from its variable and never printed.
func TestCheckPostFFmpegAndWebhookSecret(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg not found: run scripts/tools.sh")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "srs-offload.yaml")
	body := fmt.Sprintf("roots: [%q]\npost:\n  remux: beside\n  webhooks:\n    - url: https://app.example.com/srs\n      secret_env: SRS_OFFLOAD_TEST_WEBHOOK_SECRET\n", dir)
	os.WriteFile(cfg, []byte(body), 0o600)
	run := func(path string) (string, int) {
		cmd := exec.Command(binary(t), "check", "-c", cfg)
		cmd.Env = append(os.Environ(), "PATH="+path, "SRS_OFFLOAD_TEST_WEBHOOK_SECRET=s3cr3t-value")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	empty := t.TempDir()
	out, code := run(empty)
	if code != 2 || !strings.Contains(out, "post.ffmpeg:") || !strings.Contains(out, "ffmpeg not found") {
		t.Errorf("check without ffmpeg on PATH: exit %d\n%s", code, out)
	}
	out, code = run(os.Getenv("PATH"))
	if code != 0 || !strings.Contains(out, "config ok") {
		t.Errorf("check with ffmpeg on PATH: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "s3cr3t-value") {
		t.Errorf("check printed the webhook secret:\n%s", out)
	}
	// A temp_dir that is not a folder is refused by name.
	os.WriteFile(cfg, []byte(body+"  temp_dir: /nonexistent/post\n"), 0o600)
	if out, code := run(os.Getenv("PATH")); code != 2 || !strings.Contains(out, "post.temp_dir:") {
		t.Errorf("check with a missing post.temp_dir: exit %d\n%s", code, out)
	}
	os.WriteFile(cfg, []byte(body), 0o600)
	// Off: no ffmpeg needed.
	os.WriteFile(cfg, []byte(fmt.Sprintf("roots: [%q]\npost:\n  remux: \"off\"\n", dir)), 0o600)
	if out, code := run(empty); code != 0 {
		t.Errorf("check with post.remux off and no ffmpeg: exit %d\n%s", code, out)
	}
	// A webhook without its secret in the environment is refused by name.
	os.WriteFile(cfg, []byte(body), 0o600)
	cmd := exec.Command(binary(t), "check", "-c", cfg)
	cmd.Env = append(os.Environ(), "SRS_OFFLOAD_TEST_WEBHOOK_SECRET=")
	b, _ := cmd.CombinedOutput()
	if !strings.Contains(string(b), "post.webhooks[0]: secret_env") {
		t.Errorf("check with an empty webhook secret:\n%s", b)
	}
}
