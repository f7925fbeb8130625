package redact_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/redact"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pa55@cdn.example/live/{key}": "https://xxxxx@cdn.example/live/{key}",
		"http://t0ken@127.0.0.1:9000":              "http://xxxxx@127.0.0.1:9000",
		"https://cdn.example/live/a.ts":            "https://cdn.example/live/a.ts",
		"redis://:pw@10.0.0.1:6379/0":              "redis://xxxxx@10.0.0.1:6379/0",
		"127.0.0.1:6379":                           "127.0.0.1:6379",
		"http://u:p@h/%zz":                         "http://xxxxx@h/%zz", // does not parse: masked as text
		"0://u:pw@h":                               "0://xxxxx@h",        // not a scheme: masked all the same
		"http://u:p w@h/{key}":                     "http://xxxxx@h/{key}",
		"://u:pw@h":                                "://xxxxx@h",
		"https://cdn/{key}?next=http://u:pw@h":     "https://cdn/{key}?next=http://xxxxx@h",
	} {
		if got := redact.URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTextAndError(t *testing.T) {
	base := errors.New("boom")
	err := fmt.Errorf(`Get "https://user:s3cret@cdn.example/a.ts": dial tcp: refused; also http://tok@h: %w`, base)
	r := redact.Error(err)
	if strings.Contains(r.Error(), "s3cret") || strings.Contains(r.Error(), "user") || strings.Contains(r.Error(), "tok@") {
		t.Errorf("redacted error still holds credentials: %s", r)
	}
	if !strings.Contains(r.Error(), "https://xxxxx@cdn.example/a.ts") || !errors.Is(r, base) {
		t.Errorf("redacted error %q lost its URL or its chain", r)
	}
	if redact.Error(nil) != nil || redact.Error(base) != base {
		t.Error("Error of nil or of a clean error changed it")
	}
	if got := redact.Text(`got "0://u:pw@h"`); got != `got "0://xxxxx@h"` {
		t.Errorf("Text of a URL with a mistyped scheme: %q", got)
	}
	if got := redact.Text("see mailto:a@b and user@host"); got != "see mailto:a@b and user@host" {
		t.Errorf("Text touched a non-URL: %q", got)
	}
}
