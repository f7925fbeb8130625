package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// check prints the provider it resolved and what it will do with it (addressing, signing,
// verification, encryption), and refuses what the provider cannot honour, naming the key.
func TestCheckPrintsProvider(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "srs-offload.yaml")
	for _, c := range []struct {
		name, storage string
		ok            bool
		want          []string
	}{
		{"gcs", "provider: gcs\n  region: auto", true, []string{
			"storage.provider: gcs (set by storage.provider); endpoint https://storage.googleapis.com",
			"storage addressing: path-style", "storage signing: SigV4, signed payload",
			"storage.verify: auto for provider gcs: checksum crc32c from x-goog-hash", "storage encryption: none", "config ok"}},
		{"digitalocean", "provider: digitalocean\n  region: nyc3\n  sse: AES256", true, []string{
			"storage.provider: digitalocean (set by storage.provider); endpoint https://nyc3.digitaloceanspaces.com",
			"storage addressing: virtual-host", "storage signing: SigV4, signed payload",
			"storage.verify: auto for provider digitalocean: md5", "storage encryption: SSE-S3", "config ok"}},
		{"wasabi detected", "endpoint: https://s3.eu-central-1.wasabisys.com\n  region: eu-central-1\n  path_style: false", true, []string{
			"storage.provider: wasabi (detected from storage.endpoint); endpoint https://s3.eu-central-1.wasabisys.com",
			"storage addressing: virtual-host", "storage signing: SigV4, UNSIGNED-PAYLOAD", "config ok"}},
		{"aws", "region: eu-west-1", true, []string{
			"storage.provider: aws (no storage.endpoint); endpoint the SDK's AWS endpoint",
			"storage addressing: virtual-host", "storage.verify: auto for provider aws", "config ok"}},
		{"gcs md5", "provider: gcs\n  region: auto\n  verify: md5", false, []string{"storage.verify: md5 cannot be honoured by provider gcs"}},
		{"gcs sse", "provider: gcs\n  region: auto\n  sse: aws:kms", false, []string{"storage.sse: not with provider gcs"}},
		{"r2 no endpoint", "provider: r2\n  region: auto", false, []string{"storage.endpoint: required for storage.provider r2"}},
	} {
		doc := fmt.Sprintf("roots: [%q]\nstorage:\n  %s\n", dir, c.storage)
		if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(binary(t), "check", "-c", cfg).CombinedOutput()
		if c.ok != (err == nil) {
			t.Errorf("%s: check: %v\n%s", c.name, err, out)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s: check output lacks %q:\n%s", c.name, w, out)
			}
		}
		if !c.ok && strings.Contains(string(out), "config ok") {
			t.Errorf("%s: config ok after an error:\n%s", c.name, out)
		}
	}
}
