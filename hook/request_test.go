package hook

import (
	"encoding/json"
	"testing"
)

// cwd, file, url and m3u8 keep the bytes SRS sent, valid UTF-8 or not; escapes decode as in
// encoding/json; other fields decode as before.
func TestRequestKeepsRawBytes(t *testing.T) {
	body := []byte("{\"action\":\"on_hls\",\"cwd\":\"/srv/\xff\",\"file\":\"./a\xe9\\u00e9\\ud83d\\ude00\\/\\\"\\\\\\n\xc3\\u0041.ts\"," +
		"\"url\":\"live/\xfe.ts\",\"m3u8\":null,\"stream\":\"s\xff\",\"duration\":2.02,\"client_id\":12}")
	var r Request
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if r.Cwd != "/srv/\xff" || r.File != "./a\xe9é😀/\"\\\n\xc3A.ts" || r.URL != "live/\xfe.ts" || r.M3U8 != "" {
		t.Errorf("raw fields: cwd %q file %q url %q m3u8 %q", r.Cwd, r.File, r.URL, r.M3U8)
	}
	if r.Action != "on_hls" || r.Stream != "s\ufffd" || r.Duration != 2.02 || string(r.ClientID) != "12" {
		t.Errorf("other fields: %+v", r)
	}
	// Lone surrogates become U+FFFD, as encoding/json does.
	var a, b struct {
		File string `json:"file"`
	}
	for _, s := range []string{`{"file":"\ud800x"}`, `{"file":"\udc00\ud800\u0041"}`, `{"file":"\ud83d\u0041"}`} {
		var r Request
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			t.Fatal(err)
		}
		json.Unmarshal([]byte(s), &a)
		if b = a; r.File != b.File {
			t.Errorf("%s: %q, encoding/json %q", s, r.File, b.File)
		}
	}
	for _, bad := range []string{`{"file":12}`, `{"cwd":{}}`, `{"url":["x"]}`, "{\"file\":\"a\x01\"}", `[]`} {
		var r Request
		if err := json.Unmarshal([]byte(bad), &r); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
