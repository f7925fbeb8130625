package settings_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/settings"
)

func warned(ws []settings.Problem, key, text string) bool {
	for _, w := range ws {
		if w.Key == key && strings.Contains(w.Msg, text) {
			return true
		}
	}
	return false
}

// Each warning of check, and the configs that do not get it.
func TestWarnings(t *testing.T) {
	// listen off loopback without hooks.token.
	for _, l := range []string{"0.0.0.0:8085", ":8085", "[::]:8085", "192.0.2.1:8085", "srs-host:8085"} {
		c := valid(t)
		c.Listen = l
		if !warned(settings.Warnings(c, ""), "listen", "hooks.token") {
			t.Errorf("listen %s without token: no warning", l)
		}
		c.Hooks.Token = "s3cret"
		if ws := settings.Warnings(c, ""); len(ws) != 0 {
			t.Errorf("listen %s with a token: %v", l, ws)
		}
	}
	for _, l := range []string{"127.0.0.1:8085", "[::1]:8085", "localhost:8085", "127.0.0.2:1"} {
		c := valid(t)
		c.Listen = l
		if ws := settings.Warnings(c, ""); len(ws) != 0 {
			t.Errorf("listen %s: %v", l, ws)
		}
	}

	// admin.listen off loopback without admin.token; off (empty) or on loopback is fine.
	for _, l := range []string{"0.0.0.0:8086", ":8086", "192.0.2.1:8086"} {
		c := valid(t)
		c.Admin.Listen = l
		if !warned(settings.Warnings(c, ""), "admin.listen", "admin.token") {
			t.Errorf("admin.listen %s without token: no warning", l)
		}
		c.Admin.Token = "s3cret"
		if ws := settings.Warnings(c, ""); len(ws) != 0 {
			t.Errorf("admin.listen %s with a token: %v", l, ws)
		}
	}
	for _, l := range []string{"", "127.0.0.1:8086", "[::1]:8086"} {
		c := valid(t)
		c.Admin.Listen = l
		if ws := settings.Warnings(c, ""); len(ws) != 0 {
			t.Errorf("admin.listen %q: %v", l, ws)
		}
	}

	// roots: / and roots holding system folders, also through a symlink.
	link := filepath.Join(t.TempDir(), "slash")
	if err := os.Symlink("/", link); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"/", "/var", link} {
		c := valid(t)
		c.Roots = []string{r}
		ws := settings.Warnings(c, "")
		if !warned(ws, "roots[0]", "whole filesystem") && !warned(ws, "roots[0]", "system folders") {
			t.Errorf("root %s: no warning (%v)", r, ws)
		}
	}

	// nested roots.
	outer := t.TempDir()
	inner := filepath.Join(outer, "live")
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	c := valid(t)
	c.Roots = []string{outer, inner, t.TempDir()}
	if ws := settings.Warnings(c, ""); !warned(ws, "roots[1]", "inside roots[0]") || len(ws) != 1 {
		t.Errorf("nested roots: %v", ws)
	}
	c.Roots = []string{outer, outer + "-sibling"}
	if ws := settings.Warnings(c, ""); len(ws) != 0 {
		t.Errorf("sibling roots sharing a prefix: %v", ws)
	}

	// A config file readable by others that holds a secret; not when it takes it from ${VAR},
	// and not when only its owner can read it.
	dir := t.TempDir()
	file := filepath.Join(dir, "srs-offload.yaml")
	write := func(content string, mode os.FileMode) {
		if err := os.WriteFile(file, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, mode); err != nil {
			t.Fatal(err)
		}
	}
	c = valid(t)
	write("storage:\n  access_key: AKIA\n  secret_key: s3cr3t\n", 0o644)
	if ws := settings.Warnings(c, file); !warned(ws, "storage.access_key", "storage.secret_key") {
		t.Errorf("world-readable file with secrets: %v", ws)
	}
	write("hooks:\n  token: tok\n", 0o604)
	if ws := settings.Warnings(c, file); !warned(ws, "hooks.token", "readable by every user") {
		t.Errorf("world-readable file with a token: %v", ws)
	}
	write("storage:\n  access_key: ${AK}\n  secret_key: \"${SK}\"\nhooks: {token: \"\"}\n", 0o644)
	if ws := settings.Warnings(c, file); len(ws) != 0 {
		t.Errorf("secrets from the environment: %v", ws)
	}
	write("storage:\n  access_key: AKIA\n  secret_key: s3cr3t\n", 0o640)
	if ws := settings.Warnings(c, file); len(ws) != 0 {
		t.Errorf("file readable by its group only: %v", ws)
	}
	// The defaults warn about nothing.
	if ws := settings.Warnings(valid(t), ""); len(ws) != 0 {
		t.Errorf("defaults: %v", ws)
	}
}
