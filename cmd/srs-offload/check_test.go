package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// check prints warnings without failing, and refuses a secret whose ${VAR} came out empty.
func TestCheckWarningsAndEmptySecret(t *testing.T) {
	dir := t.TempDir()
	inner := filepath.Join(dir, "live")
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "srs-offload.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: 0.0.0.0:8085\nroots: [%q, %q]\nredis: {password: hunter2}\n", dir, inner)), 0o644)
	os.Chmod(cfg, 0o644)
	out, err := exec.Command(binary(t), "check", "-c", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("check with warnings: %v\n%s", err, out)
	}
	for _, want := range []string{"warning: listen:", "warning: roots[1]:", "warning: redis.password:", "config ok"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "hunter2") {
		t.Errorf("check printed the secret:\n%s", out)
	}

	os.WriteFile(cfg, []byte(fmt.Sprintf("roots: [%q]\nhooks:\n  token: ${SRS_OFFLOAD_TEST_HOOK_TOKEN}\n", dir)), 0o600)
	cmd := exec.Command(binary(t), "check", "-c", cfg)
	cmd.Env = append(os.Environ(), "SRS_OFFLOAD_TEST_HOOK_TOKEN=null")
	out, err = cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "hooks.token:") || strings.Contains(string(out), "config ok") {
		t.Errorf("check with an empty token: err %v\n%s", err, out)
	}
}
