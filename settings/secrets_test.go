package settings_test

import (
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/settings"
)

// A secret whose ${VAR} expands to nothing (empty, null, ~) is a config error naming its key:
// "token: ${HOOK_TOKEN}" with HOOK_TOKEN empty silently turned the hook auth off.
func TestEmptySecretAfterExpansion(t *testing.T) {
	for _, val := range []string{"", "null", "~", "NULL", " "} {
		t.Setenv("SRS_OFFLOAD_TEST_EMPTY", val)
		for _, c := range []struct{ yaml, key string }{
			{"hooks:\n  token: ${SRS_OFFLOAD_TEST_EMPTY}\n", "hooks.token"},
			{"hooks:\n  token: \"${SRS_OFFLOAD_TEST_EMPTY}\"\n", "hooks.token"},
			{"admin:\n  token: ${SRS_OFFLOAD_TEST_EMPTY}\n", "admin.token"},
			{"storage:\n  access_key: ${SRS_OFFLOAD_TEST_EMPTY}\n  secret_key: x\n", "storage.access_key"},
			{"storage:\n  access_key: x\n  secret_key: ${SRS_OFFLOAD_TEST_EMPTY}\n", "storage.secret_key"},
			{"redis:\n  password: ${SRS_OFFLOAD_TEST_EMPTY}\n", "redis.password"},
			{"warm:\n  targets:\n    - url: http://127.0.0.1:1/{key}\n      headers:\n        Authorization: ${SRS_OFFLOAD_TEST_EMPTY}\n", "warm.targets[0].headers.Authorization"},
		} {
			_, err := settings.Parse([]byte(c.yaml))
			probs, ok := settings.AsErrors(err)
			if !ok || !probs.Has(c.key) || !strings.Contains(err.Error(), "SRS_OFFLOAD_TEST_EMPTY") {
				t.Errorf("value %q, %q: err = %v; want a problem at %s naming the variable", val, c.yaml, err, c.key)
			}
		}
	}
	// Left out, or "" on purpose: none, as before. A non-secret may expand to nothing.
	t.Setenv("SRS_OFFLOAD_TEST_EMPTY", "")
	for _, y := range []string{
		"hooks:\n  token: \"\"\n",
		"hooks: {}\n",
		"storage:\n  access_key: \"\"\n  secret_key: ''\n",
		"storage:\n  prefix: ${SRS_OFFLOAD_TEST_EMPTY}\n",
	} {
		cfg, err := settings.Parse([]byte(y))
		if err != nil {
			t.Errorf("%q: %v", y, err)
		}
		if cfg.Hooks.Token != "" {
			t.Errorf("%q: token %q", y, cfg.Hooks.Token)
		}
	}
	t.Setenv("SRS_OFFLOAD_TEST_EMPTY", "s3cret")
	if cfg, err := settings.Parse([]byte("hooks:\n  token: ${SRS_OFFLOAD_TEST_EMPTY}\n")); err != nil || cfg.Hooks.Token != "s3cret" {
		t.Errorf("set variable: %+v, %v", cfg.Hooks, err)
	}
}

// Templates that are not valid UTF-8 (from ${VAR} or a Go caller) are config errors naming the key,
// never a panic (reconcile's layout compiled them with regexp.MustCompile).
func TestTemplatesNotUTF8(t *testing.T) {
	for _, c := range []struct {
		key    string
		mutate func(c *settings.Config)
	}{
		{"keys.hls", func(c *settings.Config) { c.Keys.HLS = "{url}\xff" }},
		{"keys.playlist", func(c *settings.Config) { c.Keys.Playlist = "\xff{m3u8_url}" }},
		{"keys.dvr", func(c *settings.Config) { c.Keys.DVR = "{app}/\xc3/{basename}" }},
		{"playlist.vod_key", func(c *settings.Config) { c.Playlist.VODKey = "vod/\xff/{session}.m3u8" }},
		{"warm.folder", func(c *settings.Config) { c.Warm.Folder = "{app}\xff" }},
		{"warm.notify_path", func(c *settings.Config) { c.Warm.NotifyPath = "/api/\xff/{app}/{stream}/{ts_url}" }},
		{"reconcile.hls_ts_file[1]", func(c *settings.Config) { c.Reconcile.HLSTSFile[1] = "0\xff" }},
		{"reconcile.dvr_path[0]", func(c *settings.Config) { c.Reconcile.DVRPath[0] = "[app]/\xff[stream].flv" }},
	} {
		cfg := valid(t)
		c.mutate(&cfg)
		err := cfg.Validate()
		probs, ok := settings.AsErrors(err)
		if !ok || !probs.Has(c.key) || !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("%s: err = %v; want a problem at %s", c.key, err, c.key)
		}
	}
	// Through the environment, as an operator would get there.
	t.Setenv("SRS_OFFLOAD_TEST_TMPL", "[app]/\xff.ts")
	cfg, err := settings.Parse([]byte("reconcile:\n  hls_ts_file: [\"${SRS_OFFLOAD_TEST_TMPL}\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Roots, cfg.Node = []string{t.TempDir()}, "n1"
	if probs, ok := settings.AsErrors(cfg.Validate()); !ok || !probs.Has("reconcile.hls_ts_file[0]") {
		t.Errorf("from the environment: %v", probs)
	}
}

// A storage endpoint with credentials in it is named without them.
func TestEndpointProblemRedacted(t *testing.T) {
	cfg := valid(t)
	cfg.Storage.Endpoint = "ftp://AKIAUSER:s3cr3tpass@s3.example"
	err := cfg.Validate()
	probs, ok := settings.AsErrors(err)
	if !ok || !probs.Has("storage.endpoint") || strings.Contains(err.Error(), "s3cr3tpass") || strings.Contains(err.Error(), "AKIAUSER") {
		t.Errorf("err = %v", err)
	}
}
