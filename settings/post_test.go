package settings_test

import (
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/settings"
)

// Every post.* problem names its key.
func TestPostProblemsNameTheirKey(t *testing.T) {
	for _, tc := range []struct{ yaml, key string }{
		{"post: {remux: always}", "post.remux"},
		{"post: {concurrency: 0}", "post.concurrency"},
		{"post: {nice: 20}", "post.nice"},
		{"post: {max_retry: -1}", "post.max_retry"},
		{"post: {timeout: 0s}", "post.timeout"},
		{"post: {remux: beside, ffmpeg: \"\"}", "post.ffmpeg"},
		{"post: {remux: beside, ffmpeg_timeout: 2h}", "post.ffmpeg_timeout"},
		{"post: {poster: {offset: -1s}}", "post.poster.offset"},
		{"playlist: {vod_key: \"\"}\npost: {session_mp4: {enabled: true}}", "post.session_mp4.enabled"},
		{"post: {webhooks: [{url: \"https://a.example/h\"}]}", "post.webhooks[0].secret_env"},
		{"post: {webhooks: [{url: \"https://a.example/h\", secret_env: X, nope: 1}]}", "post.webhooks[0].nope"},
	} {
		cfg, err := settings.Parse([]byte("roots: [/tmp]\n" + tc.yaml))
		if err == nil {
			err = cfg.Validate()
		}
		errs, ok := settings.AsErrors(err)
		if !ok || !errs.Has(tc.key) {
			t.Errorf("%s: %v, want a problem at %s", tc.yaml, err, tc.key)
		}
	}
	cfg, err := settings.Parse([]byte("roots: [/tmp]\npost:\n  remux: instead\n  poster: {enabled: true}\n  webhooks:\n    - {url: \"https://a.example/h\", secret_env: HOOK_SECRET, events: [dvr.stored]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if !cfg.Post.On() || !cfg.Post.UsesFFmpeg() || cfg.Post.Remux != "instead" || !strings.Contains(cfg.Post.Webhooks[0].SecretEnv, "HOOK") {
		t.Errorf("%+v", cfg.Post)
	}
	if d := settings.Default(); d.Post.On() || d.Post.UsesFFmpeg() {
		t.Error("post-processing is on by default")
	}
}
