package settings_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/settings"
)

// marker stands for a secret in the seeds: a value the config's messages must never show.
const marker = "zSeKrEt9q"

// secretSpots returns the config's values that are secrets: tokens, passwords, keys, warm target
// headers, and the user:password part of URLs.
func secretSpots(c settings.Config) []string {
	out := []string{c.Hooks.Token, c.Admin.Token, c.Storage.AccessKey, c.Storage.SecretKey, c.Redis.Password, c.Redis.Sentinel.Password, userinfo(c.Storage.Endpoint)}
	for _, t := range c.Warm.Targets {
		out = append(out, userinfo(t.URL))
		for _, e := range t.Edges {
			out = append(out, userinfo(e))
		}
		for _, v := range t.Headers {
			out = append(out, v)
		}
	}
	return out
}

func userinfo(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		return rest[:i]
	}
	return ""
}

// openFDs counts this process's open file descriptors.
func openFDs(tb testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	return len(ents)
}

// FuzzConfig parses and validates config files (the shipped sample and broken ones as seeds), as
// `check` and `serve` do. Invariants: nothing panics; Parse is deterministic; every problem names
// its key; Validate and Warnings leave no file descriptor open; and a secret (a token, password,
// key, warm header or URL password) given once in the file never shows in a problem or warning.
func FuzzConfig(f *testing.F) {
	raw, err := os.ReadFile("../configs/srs-offload.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	for _, s := range []string{
		"hooks: {token: " + marker + "}\nlisten: 0.0.0.0:8085\n",
		"storage: {endpoint: 'http://user:" + marker + "@minio:9000/x', access_key: a, secret_key: b}\n",
		"storage: {endpoint: 'ftp://u:" + marker + "@h', secret_key: x}\nredis: {password: ''}\n",
		"redis: {password: " + marker + ", addr: nohost}\nadmin: {listen: 127.0.0.1:8085, token: t}\n",
		"warm:\n  targets:\n    - url: 'https://u:" + marker + "@cdn.example.com/{key}'\n      headers: {Authorization: 'Bearer x'}\n      edges: [bad]\n",
		"warm:\n  targets:\n    - url: 'https://cdn/{key}'\n      headers: {X-Key: " + marker + "}\n      method: '\\x00'\n",
		"hooks: {token: '${HOOK_TOKEN_UNSET_FUZZ}'}\n",
		"hooks: {token: ${HOME}x}\nroots: [/tmp, /tmp/a, /, relative]\n",
		"roots: [/tmp]\nkeys: {hls: \"0\\xff\"}\nreconcile: {hls_ts_file: ['0\\xff', '../[app].ts'], hls_m3u8_file: ['../x.m3u8']}\n",
		"storage: {part_size: 1KiB, multipart_threshold: 99999999999GiB}\nworker: {concurrency: -1, poll_interval: 1h}\n",
		"hooks: [1, 2]\nstorage: 3\nnope: 1\n",
		"listen: ':8085'\nhooks: {read_timeout: 1ns, max_conns: 1}\n",
		"a: b: c\n\t- x",
		"",
		"~",
		"- 1\n- 2",
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := settings.Parse(raw)
		c2, err2 := settings.Parse(raw)
		if !reflect.DeepEqual(c, c2) || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("Parse is not deterministic: %v / %v", err, err2)
		}
		var texts []string
		if err != nil {
			texts = append(texts, err.Error())
			if ps, ok := settings.AsErrors(err); ok {
				for _, p := range ps {
					if p.Key == "" {
						t.Fatalf("problem without a key: %+v", p)
					}
				}
			} else if !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("Parse: %v: neither problems by key nor a syntax error", err)
			}
		}
		fds := openFDs(t)
		verr := c.Validate()
		if verr != nil {
			texts = append(texts, verr.Error())
			ps, ok := settings.AsErrors(verr)
			if !ok {
				t.Fatalf("Validate: %v is not problems by key", verr)
			}
			for _, p := range ps {
				if p.Key == "" {
					t.Fatalf("problem without a key: %+v", p)
				}
			}
		}
		for _, w := range settings.Warnings(c, "") {
			if w.Key == "" {
				t.Fatalf("warning without a key: %+v", w)
			}
			texts = append(texts, w.Error())
		}
		if n := openFDs(t); n > fds {
			t.Fatalf("Validate and Warnings left %d file descriptors open", n-fds)
		}
		settings.SecretsInFile(raw)

		if strings.Count(string(raw), marker) != 1 {
			return
		}
		for _, s := range secretSpots(c) {
			if !strings.Contains(s, marker) {
				continue
			}
			for _, text := range texts {
				if strings.Contains(text, marker) {
					t.Fatalf("a secret shows in: %s", text)
				}
			}
		}
	})
}
