package rdb_test

import (
	"testing"

	"github.com/srs-offload/srs-offload/rdb"
)

// The key names are what a running srs-offload finds in Redis after an upgrade: a renamed key
// loses every stream's ledger, sessions and purged-file records. This test pins each name as
// srs-offload has written it since the ledger began; it must not be edited to follow a change.
func TestKeyNamesPinned(t *testing.T) {
	k := rdb.StreamKeys("live/cam1.m3u8") // sha1("live/cam1.m3u8") starts 93ee3ff4550520ec
	for _, c := range []struct{ got, want string }{
		{rdb.Streams, "so:streams"},
		{rdb.Folders, "so:folders"},
		{rdb.Active, "so:active"},
		{rdb.Purged("/srs/live/cam1-3.ts"), "so:purged:/srs/live/cam1-3.ts"},
		{rdb.Warm("live/cam1-3.ts"), "so:warm:live/cam1-3.ts"},
		{rdb.Disk("n1"), "so:disk:n1"},
		{rdb.DiskMatch, "so:disk:*"},
		{rdb.Progress("n1", "hls:abc"), "so:progress:n1:hls:abc"},
		{rdb.ProgressMatch, "so:progress:*"},
		{rdb.Claim("vol", "live/cam1-3.ts"), "so:claim:vol:live/cam1-3.ts"},
		{k.Tag, "so:{93ee3ff4550520ec}:"},
		{k.St, "so:{93ee3ff4550520ec}:st"},
		{k.Q, "so:{93ee3ff4550520ec}:q"},
		{k.E, "so:{93ee3ff4550520ec}:e"},
		{k.W, "so:{93ee3ff4550520ec}:w"},
		{k.Dn, "so:{93ee3ff4550520ec}:dn"},
		{k.Vs, "so:{93ee3ff4550520ec}:vs"},
		{k.Lock, "so:{93ee3ff4550520ec}:lock"},
		{k.VOD(12), "so:{93ee3ff4550520ec}:v:12"},
	} {
		if c.got != c.want {
			t.Errorf("key %q, want %q (key names must not change: upgrades read them)", c.got, c.want)
		}
	}
	if got := k.LedgerKeys(); len(got) != 6 || got[0] != k.St || got[1] != k.Q || got[2] != k.E ||
		got[3] != k.W || got[4] != k.Dn || got[5] != k.Vs {
		t.Errorf("LedgerKeys = %q, want st q e w dn vs (ledger.lua's KEYS order)", got)
	}
}
