package settings_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/settings"
)

// Encryption settings that do not go together are config errors naming their key; the SSE-C key's
// variable is checked for a usable key, and no problem quotes its value.
func TestEncryptionSettings(t *testing.T) {
	const env = "SRS_OFFLOAD_TEST_SSEC"
	secret := "0123456789abcdef0123456789abcdef0123" // 36 characters: neither a key nor base64 of one
	t.Setenv(env, secret)
	for _, c := range []struct {
		yaml, key, says string
	}{
		{"storage:\n  sse: aes256\n", "storage.sse", "AES256"},
		{"storage:\n  sse: kms\n", "storage.sse", "aws:kms"},
		{"storage:\n  kms_key_id: my-key\n", "storage.kms_key_id", "aws:kms"},
		{"storage:\n  sse: AES256\n  kms_key_id: my-key\n", "storage.kms_key_id", "aws:kms"},
		{"storage:\n  sse: AES256\n  bucket_key: true\n", "storage.bucket_key", "aws:kms"},
		{"storage:\n  sse_c_key_env: SRS_OFFLOAD_TEST_UNSET_VARIABLE\n", "storage.sse_c_key_env", "SRS_OFFLOAD_TEST_UNSET_VARIABLE is not set"},
		{"storage:\n  sse_c_key_env: " + env + "\n", "storage.sse_c_key_env", "32-byte"},
		{"storage:\n  sse: aws:kms\n  sse_c_key_env: " + env + "\n", "storage.sse_c_key_env", "excludes storage.sse"},
	} {
		err := validate(c.yaml)
		probs, ok := settings.AsErrors(err)
		if !ok || !probs.Has(c.key) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%q: err = %v; want a problem at %s saying %q", c.yaml, err, c.key, c.says)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), secret[:16]) {
			t.Errorf("%q: the problem quotes the key: %v", c.yaml, err)
		}
	}

	key := bytes.Repeat([]byte{0xa5}, 32)
	for _, v := range []string{base64.StdEncoding.EncodeToString(key), string(key)} {
		t.Setenv(env, v)
		cfg, err := settings.Parse([]byte("storage:\n  sse_c_key_env: " + env + "\n"))
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			t.Fatalf("a 32-byte key (%d characters): %v", len(v), err)
		}
		got, err := cfg.Storage.SSECKey()
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("SSECKey() = %x, %v; want %x", got, err, key)
		}
	}
	for _, y := range []string{
		"storage:\n  sse: AES256\n",
		"storage:\n  sse: aws:kms\n",
		"storage:\n  sse: aws:kms\n  kms_key_id: arn:aws:kms:us-east-1:111122223333:key/1234\n  bucket_key: true\n",
	} {
		if err := validate(y); err != nil {
			t.Errorf("%q: %v", y, err)
		}
	}
}

// validate parses a config and validates it.
func validate(yaml string) error {
	cfg, err := settings.Parse([]byte(yaml))
	if err != nil {
		return err
	}
	return cfg.Validate()
}
