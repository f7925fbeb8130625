package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestComposeConfigsCheck: configs/compose.yaml is a document (no container is built or run
// here), but the two configs it carries are checked as a pair, as `srs-offload check --srs` checks
// a host's: srs-offload's config is valid and SRS's config sends its hooks where srs-offload
// listens and writes inside its roots; check warns of nothing. SRS's folder is moved to a temporary one, which exists.
func TestComposeConfigsCheck(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "configs", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Configs map[string]struct {
			Content string `yaml:"content"`
		} `yaml:"configs"`
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("configs/compose.yaml: %v", err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "html")
	os.MkdirAll(root, 0o755)
	files := map[string]string{}
	for _, name := range []string{"srs-offload.yaml", "srs.conf"} {
		content := compose.Configs[name].Content
		if content == "" {
			t.Fatalf("configs/compose.yaml has no config %s", name)
		}
		// $$ is compose's escape of $: srs-offload sees ${VAR}.
		content = strings.ReplaceAll(content, "$$", "$")
		content = strings.ReplaceAll(content, "/usr/local/srs/objs/nginx/html", root)
		files[name] = filepath.Join(dir, name)
		os.WriteFile(files[name], []byte(content), 0o644)
	}
	env := compose.Services["srs-offload"].Environment
	if env["NODE_NAME"] == "" {
		t.Fatal("configs/compose.yaml: srs-offload has no NODE_NAME")
	}
	cmd := exec.Command(binary(t), "check", "-c", files["srs-offload.yaml"], "--srs", files["srs.conf"], "--srs-cwd", dir)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "config ok") || strings.Contains(string(out), "warning") {
		t.Fatalf("check of compose.yaml's configs: %v\n%s", err, out)
	}
}
