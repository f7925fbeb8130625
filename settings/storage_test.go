package settings_test

import (
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/settings"
)

// Each bad object option or credential setting is one problem naming its key.
func TestStorageOptionProblems(t *testing.T) {
	for _, c := range []struct{ yaml, key string }{
		{"storage_class: standard-ia", "storage.storage_class"},
		{"storage_class_hls: 'STANDARD IA'", "storage.storage_class_hls"},
		{"storage_class_dvr: glacier", "storage.storage_class_dvr"},
		{"acl: public", "storage.acl"},
		{"acl: ''", "storage.acl"},
		{"tags: {'aws:app': x}", "storage.tags.aws:app"},
		{"tags: {'a?b': x}", "storage.tags.a?b"},
		{"tags: {a: " + strings.Repeat("x", 257) + "}", "storage.tags.a"},
		{"tags: {a: 1, b: 1, c: 1, d: 1, e: 1, f: 1, g: 1, h: 1, i: 1, j: 1, k: 1}", "storage.tags"},
		{"metadata: {Stream: x}", "storage.metadata.Stream"},
		{"metadata: {srs-offload-origin: x}", "storage.metadata.srs-offload-origin"},
		{"metadata: {a: " + strings.Repeat("x", 1100) + "}", "storage.metadata"},
		{"content_disposition: \"attachment; filename=\\\"é\\\"\"", "storage.content_disposition"},
		{"session_token: t", "storage.session_token"},
		{"profile: p\n  access_key: a\n  secret_key: s", "storage.profile"},
		{"role_arn: offload", "storage.role_arn"},
		{"external_id: x", "storage.external_id"},
		{"web_identity_token_file: /t", "storage.web_identity_token_file"},
		{"role_arn: arn:aws:iam::1:role/r\n  session_name: ''", "storage.session_name"},
		{"sts_endpoint: sts.local", "storage.sts_endpoint"},
	} {
		cfg, err := settings.Parse([]byte("storage:\n  " + c.yaml + "\n"))
		if err != nil {
			t.Errorf("%q: parse: %v", c.yaml, err)
			continue
		}
		cfg.Node = "n"
		err = cfg.Validate()
		probs, ok := settings.AsErrors(err)
		if !ok || len(probs) != 1 || !probs.Has(c.key) {
			t.Errorf("%q: %v; want one problem at %s", c.yaml, err, c.key)
		}
	}
	good := `storage:
  storage_class: STANDARD_IA
  storage_class_dvr: GLACIER_IR
  acl: bucket-owner-full-control
  tags: {app: "{app}", "team name": video}
  metadata: {stream: "{app}/{stream}"}
  content_disposition: 'attachment; filename="{basename}"'
  access_key: a
  secret_key: s
  session_token: t
  role_arn: arn:aws:iam::123456789012:role/offload
  external_id: x
  sts_endpoint: http://127.0.0.1:9000
`
	cfg, err := settings.Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Node = "n"
	if err := cfg.Validate(); err != nil {
		t.Errorf("good config: %v", err)
	}
	if cfg.Storage.SessionName != "srs-offload" || cfg.Storage.Tags["team name"] != "video" {
		t.Errorf("parsed %+v", cfg.Storage)
	}
}

// session_token and external_id are secrets: ${VAR} expanding to nothing is refused, and a
// literal value in a world-readable file is found.
func TestStorageSecrets(t *testing.T) {
	t.Setenv("SRS_OFFLOAD_TEST_EMPTY", "")
	for _, key := range []string{"session_token", "external_id"} {
		_, err := settings.Parse([]byte("storage:\n  " + key + ": ${SRS_OFFLOAD_TEST_EMPTY}\n"))
		if probs, ok := settings.AsErrors(err); !ok || !probs.Has("storage."+key) {
			t.Errorf("%s: %v", key, err)
		}
		if got := settings.SecretsInFile([]byte("storage:\n  " + key + ": literal\n")); len(got) != 1 || got[0] != "storage."+key {
			t.Errorf("SecretsInFile(%s) = %v", key, got)
		}
	}
}
