package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
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

// check --connect says which verify mode uploads use and proves it: a probe object is written,
// verified by that mode and deleted (nothing is left in the bucket).
func TestCheckConnectProvesVerifyMode(t *testing.T) {
	s := newStack(t, t.TempDir())
	base, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ verify, checksum, by string }{
		{"auto", "crc32c", "verified by md5"},
		{"checksum", "crc64nvme", "verified by checksum crc64nvme"},
		{"size", "crc32c", "verified by size"},
	} {
		cfg := strings.Replace(string(base), "  part_size: 5MiB\n",
			fmt.Sprintf("  part_size: 5MiB\n  verify: %s\n  checksum: %s\n", c.verify, c.checksum), 1)
		os.WriteFile(s.config, []byte(cfg), 0o644)
		out, err := exec.Command(binary(t), "check", "--connect", "-c", s.config).CombinedOutput()
		if err != nil {
			t.Fatalf("check --connect (%s): %v\n%s", c.verify, err, out)
		}
		for _, want := range []string{"storage.verify: " + c.verify, "probe object", c.by, "deleted", "config ok"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("check --connect (%s) output lacks %q:\n%s", c.verify, want, out)
			}
		}
		t.Logf("%s", out)
	}
	list, err := s.store.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(s.s3.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 0 {
		t.Fatalf("check --connect left %d objects, first %s", len(list.Contents), aws.ToString(list.Contents[0].Key))
	}
}
