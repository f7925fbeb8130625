package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestMakeBuildStampsVersion runs `make build` (into a temporary file) and `srs-offload version`
// on its binary: it prints the checkout's `git describe` and commit, not "dev".
func TestMakeBuildStampsVersion(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		out, err := cmd.Output()
		if err != nil {
			t.Skipf("not a git checkout (git %v: %v): make build has nothing to stamp", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	commit := git("rev-parse", "HEAD")
	describe := git("describe", "--tags", "--always", "--dirty")

	bin := filepath.Join(t.TempDir(), "srs-offload")
	mk := exec.Command("make", "--no-print-directory", "build", "BIN="+bin)
	mk.Dir = repo
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("srs-offload version: %v", err)
	}
	want := "srs-offload " + describe + " (commit " + commit + ", " + runtime.Version() + ")\n"
	if string(out) != want {
		t.Fatalf("srs-offload version printed %q, want %q", out, want)
	}
}
