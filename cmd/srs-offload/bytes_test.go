package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// File names are bytes. SRS writes a name that is not UTF-8 into its hook JSON raw; such a file
// is enqueued under its real path (not one with U+FFFD, which names another file), uploaded to
// a key with the bad bytes as %XX, purged, and its spool link removed. A file with such a name
// whose hook never came is found and stored the same way by the reconciler.
func TestE2ENonUTF8Names(t *testing.T) {
	root := filepath.Join(t.TempDir(), "hls")
	os.MkdirAll(filepath.Join(root, "live"), 0o755)
	s := newStack(t, root)
	cfg, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = append(cfg, "reconcile: {min_age: 1s, interval: 1s, watch: false}\n"...)
	if err := os.WriteFile(s.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}

	hooked := filepath.Join(root, "live", "caf\xe9\xff-1.ts")        // Latin-1 é, then 0xff
	lookalike := filepath.Join(root, "live", "caf\ufffd\ufffd-1.ts") // what encoding/json made of it
	found := filepath.Join(root, "live", "\xfecam-7.ts")             // no hook: the reconciler's
	data, other, lost := randomBytes(300_000, 1), randomBytes(1000, 2), randomBytes(2000, 3)
	writeSegment(t, lookalike, other)
	writeSegment(t, found, lost)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(found, old, old)

	serve := s.start("serve")
	writeSegment(t, hooked, data) // young: min_age keeps the reconciler off it, the hook takes it
	// The body as SRS writes it: the name's bytes raw inside the JSON string.
	body := []byte(`{"server_id":"vid-i06a97s","action":"on_hls","client_id":"2g6tz380","ip":"127.0.0.1","vhost":"__defaultVhost__",` +
		`"app":"live","stream":"caf","param":"","duration":2.02,"cwd":"/usr/local/srs","file":"` + hooked +
		`","url":"live/caf` + "\xe9\xff" + `-1.ts","m3u8":"` + filepath.Join(root, "live", "caf.m3u8") +
		`","m3u8_url":"live/caf.m3u8","seq_no":1,"stream_url":"/live/caf","stream_id":"vid-1"}`)
	if !bytes.Contains(body, []byte("\xe9\xff")) {
		t.Fatal("the body lost its raw bytes")
	}
	post(t, "http://"+s.listen+"/api/v1/hls", body)
	s.settle([]want{
		{key: "live/caf%E9%FF-1.ts", local: hooked, data: data},
		{key: "live/%FEcam-7.ts", local: found, data: lost},
		// The look-alike UTF-8 name is another file, stored by the reconciler under its own key.
		{key: "live/caf\ufffd\ufffd-1.ts", local: lookalike, data: other},
	}, 30*time.Second)
	// The hook, not the reconciler, enqueued the hooked file (min_age keeps the reconciler off it
	// for a second).
	if !strings.Contains(serve.log.String(), `msg="hook: enqueued" action=on_hls`) || !strings.Contains(serve.log.String(), `key=live/caf%E9%FF-1.ts`) {
		t.Errorf("no hook enqueue of %q in the log:\n%s", hooked, serve.log.String())
	}
	// No spool link is left.
	var links []string
	filepath.WalkDir(filepath.Join(root, ".srs-offload"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			links = append(links, p)
		}
		return nil
	})
	if len(links) != 0 {
		t.Errorf("spool links left: %q", links)
	}
	if strings.Contains(serve.log.String(), "panic") {
		t.Errorf("serve log:\n%s", serve.log.String())
	}
	serve.stop(t)
}
