package settings

import (
	"encoding/base64"
	"fmt"
	"os"
)

// encryptionProblems checks storage.sse, storage.kms_key_id, storage.bucket_key and
// storage.sse_c_key_env together, and that the SSE-C key's variable holds a usable key (its
// problems name the variable, never its value).
func (s Storage) encryptionProblems() []Problem {
	var p []Problem
	add := func(key, format string, a ...any) { p = append(p, Problem{key, fmt.Sprintf(format, a...)}) }
	switch s.SSE {
	case "", "AES256", "aws:kms":
	default:
		add("storage.sse", `want AES256 (SSE-S3), aws:kms (SSE-KMS) or empty (the bucket's default), got %q`, s.SSE)
	}
	if s.KMSKeyID != "" && s.SSE != "aws:kms" {
		add("storage.kms_key_id", "needs storage.sse: aws:kms (storage.sse is %q)", s.SSE)
	}
	if s.BucketKey && s.SSE != "aws:kms" {
		add("storage.bucket_key", "needs storage.sse: aws:kms (storage.sse is %q)", s.SSE)
	}
	if s.SSECKeyEnv != "" {
		if s.SSE != "" {
			add("storage.sse_c_key_env", "SSE-C excludes storage.sse (%q): set one of them", s.SSE)
		}
		if _, err := s.SSECKey(); err != nil {
			add("storage.sse_c_key_env", "%v", err)
		}
	}
	return p
}

// SSECKey returns the SSE-C key from the environment variable storage.sse_c_key_env names: the
// variable holds the 32 bytes themselves or their standard base64 (`openssl rand -base64 32`).
// It returns nil when SSE-C is not configured. Its errors never quote the variable's value.
func (s Storage) SSECKey() ([]byte, error) {
	if s.SSECKeyEnv == "" {
		return nil, nil
	}
	v, ok := os.LookupEnv(s.SSECKeyEnv)
	if !ok || v == "" {
		return nil, fmt.Errorf("environment variable %s is not set (it holds the SSE-C key)", s.SSECKeyEnv)
	}
	if k, err := base64.StdEncoding.DecodeString(v); err == nil && len(k) == 32 {
		return k, nil
	}
	if len(v) == 32 {
		return []byte(v), nil
	}
	return nil, fmt.Errorf("environment variable %s: want a 32-byte key or its base64 (44 characters), got %d characters", s.SSECKeyEnv, len(v))
}
