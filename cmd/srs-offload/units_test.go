package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/settings"
)

// unitFile is a systemd unit file: section → key → its values, in order (a key may repeat).
type unitFile map[string]map[string][]string

func readUnit(t *testing.T, name string) unitFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "configs", name))
	if err != nil {
		t.Fatal(err)
	}
	u, section := unitFile{}, ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: line %q is not key=value in a section", name, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// TestUnitFilesSandbox: the services restart always and run sandboxed (the file system read-only
// but for the roots of the sample config, no new privileges), and the sockets listen where the
// sample config's listen and admin.listen say, under the names serve looks for.
// (TestUnitFilesVerify runs systemd-analyze verify on the same files.)
func TestUnitFilesSandbox(t *testing.T) {
	cfg, err := settings.Load(filepath.Join("..", "..", "configs", "srs-offload.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Roots) == 0 {
		t.Fatal("configs/srs-offload.yaml lists no roots")
	}
	for _, name := range []string{"srs-offload.service", "srs-offload-worker.service"} {
		svc := readUnit(t, name)["Service"]
		for key, want := range map[string]string{"Restart": "always", "ProtectSystem": "strict", "NoNewPrivileges": "true", "PrivateTmp": "true"} {
			if got := svc[key]; len(got) != 1 || got[0] != want {
				t.Errorf("%s: %s=%v, want %s", name, key, got, want)
			}
		}
		var rw []string
		for _, v := range svc["ReadWritePaths"] {
			for _, p := range strings.Fields(v) {
				rw = append(rw, strings.TrimLeft(p, "-+"))
			}
		}
		for _, root := range cfg.Roots {
			if !slices.Contains(rw, root) {
				t.Errorf("%s: ReadWritePaths %v lacks the root %s of configs/srs-offload.yaml", name, rw, root)
			}
		}
		if len(rw) != len(cfg.Roots) {
			t.Errorf("%s: ReadWritePaths %v, want only the roots %v", name, rw, cfg.Roots)
		}
	}
	for name, want := range map[string][2]string{
		"srs-offload.socket":       {cfg.Listen, "hooks"},
		"srs-offload-admin.socket": {cfg.Admin.Listen, "admin"},
	} {
		sock := readUnit(t, name)["Socket"]
		if got := sock["ListenStream"]; len(got) != 1 || got[0] != want[0] {
			t.Errorf("%s: ListenStream=%v, want %s as in configs/srs-offload.yaml", name, got, want[0])
		}
		if got := sock["FileDescriptorName"]; len(got) != 1 || got[0] != want[1] {
			t.Errorf("%s: FileDescriptorName=%v, want %s", name, got, want[1])
		}
		if got := sock["Service"]; len(got) != 1 || got[0] != "srs-offload.service" {
			t.Errorf("%s: Service=%v, want srs-offload.service", name, got)
		}
	}
}
