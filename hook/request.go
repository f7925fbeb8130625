// Package hook receives SRS's http_hooks. It answers at once, and for on_dvr and on_hls it first
// validates the file and records one offload task durably. It never reads file contents or talks
// to storage.
package hook

import (
	"encoding/json"
)

// Request is the JSON SRS POSTs, decoded leniently: every SRS version from 3 to 7 fits, fields
// missing in older ones stay empty, and client_id may be a number (SRS ≤ 3) or a string.
type Request struct {
	Action   string          `json:"action"`
	ClientID json.RawMessage `json:"client_id"`
	ServerID string          `json:"server_id"`
	StreamID string          `json:"stream_id"`
	Vhost    string          `json:"vhost"`
	App      string          `json:"app"`
	Stream   string          `json:"stream"`
	Param    string          `json:"param"`
	Cwd      string          `json:"cwd"`
	File     string          `json:"file"`
	// on_hls only.
	URL      string  `json:"url"`
	M3U8     string  `json:"m3u8"`
	M3U8URL  string  `json:"m3u8_url"`
	SeqNo    int64   `json:"seq_no"`
	Duration float64 `json:"duration"`
}

// actions SRS may send that srs-offload answers with success and otherwise ignores, so it can be
// SRS's only hook target.
var ignored = map[string]bool{
	"on_connect": true, "on_close": true,
	"on_publish": true, "on_unpublish": true,
	"on_play": true, "on_stop": true,
}
