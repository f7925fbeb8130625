package playlist

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/srs-offload/srs-offload/internal/hlstest"
	"github.com/srs-offload/srs-offload/internal/redistest"
	"github.com/srs-offload/srs-offload/rdb"
)

func newLedger(t *testing.T, s Settings) *Ledger {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return New(rdb, s)
}

func seg(client string, seq int64) Item {
	return Item{ID: fmt.Sprintf("%s-%d", client, seq), Kind: KindSegment, Client: client, Seq: seq, Duration: 2.002,
		Key: fmt.Sprintf("live/cam/%s-%d.ts", client, seq)}
}

// keysOf renders the live playlist and returns its segment keys and media sequence.
func keysOf(t *testing.T, l *Ledger) (*hlstest.Playlist, []string) {
	t.Helper()
	s, err := l.snapshot(context.Background(), "live/cam.m3u8")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Entries) == 0 {
		return nil, nil
	}
	p, err := hlstest.Parse("live/cam.m3u8", s.render())
	if err != nil {
		t.Fatalf("%v\n%s", err, s.render())
	}
	if err := p.Check(nil); err != nil {
		t.Fatalf("%v\n%s", err, s.render())
	}
	var keys []string
	for _, sg := range p.Segments {
		k := strings.TrimPrefix(sg.Key, "live/cam/")
		if sg.Disc {
			k = "|" + k
		}
		keys = append(keys, k)
	}
	return p, keys
}

// The live playlist is the run of verified segments in hook order: it waits for a segment in
// flight, moves past a lost one with a discontinuity, and a new publisher starts a discontinuity
// without its media sequence going back.
func TestLedgerOrder(t *testing.T) {
	ctx := context.Background()
	l := newLedger(t, Settings{Window: time.Hour, Stall: time.Hour})
	pk := "live/cam.m3u8"
	for seq := int64(0); seq < 5; seq++ {
		if _, err := l.Announce(ctx, pk, seg("a", seq), SessionInfo{Client: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	step := func(op string, it Item, want string) {
		t.Helper()
		var err error
		switch op {
		case "complete":
			_, err = l.Complete(ctx, pk, it, SessionInfo{Client: it.Client})
		case "lost":
			_, err = l.Lost(ctx, pk, it, SessionInfo{Client: it.Client})
		}
		if err != nil {
			t.Fatal(err)
		}
		_, keys := keysOf(t, l)
		if got := strings.Join(keys, " "); got != want {
			t.Fatalf("after %s %s: live %q, want %q", op, it.ID, got, want)
		}
	}
	step("complete", seg("a", 1), "")              // 0 in flight
	step("complete", seg("a", 0), "a-0.ts a-1.ts") // now both
	step("lost", seg("a", 2), "a-0.ts a-1.ts")
	step("complete", seg("a", 4), "a-0.ts a-1.ts") // 3 in flight
	step("complete", seg("a", 3), "a-0.ts a-1.ts |a-3.ts a-4.ts")
	step("complete", seg("a", 3), "a-0.ts a-1.ts |a-3.ts a-4.ts") // a repeated delivery
	// Republish: a new client restarts seq_no at 0.
	l.Announce(ctx, pk, seg("b", 0), SessionInfo{Client: "b"})
	l.Announce(ctx, pk, seg("b", 1), SessionInfo{Client: "b"})
	step("complete", seg("b", 1), "a-0.ts a-1.ts |a-3.ts a-4.ts")
	step("complete", seg("b", 0), "a-0.ts a-1.ts |a-3.ts a-4.ts |b-0.ts b-1.ts")
	p, _ := keysOf(t, l)
	if p.MSN != 0 || len(p.Segments) != 6 {
		t.Fatalf("msn %d, %d segments", p.MSN, len(p.Segments))
	}
	// The VoD records hold each session whole.
	for sess, want := range map[int64]int{1: 4, 2: 2} {
		items, err := l.vodEntries(ctx, pk, sess)
		if err != nil || len(items) != want {
			t.Fatalf("session %d: %d vod items (%v), want %d", sess, len(items), err, want)
		}
	}
}

// The window slides: old segments leave, the media sequence and discontinuity sequence grow.
func TestLedgerWindow(t *testing.T) {
	ctx := context.Background()
	l := newLedger(t, Settings{Window: 10 * time.Second, Stall: time.Hour})
	pk := "live/cam.m3u8"
	var prev *hlstest.Playlist
	for seq := int64(0); seq < 40; seq++ {
		l.Announce(ctx, pk, seg("a", seq), SessionInfo{Client: "a"}) // as the hook does
		if seq == 20 {
			l.Lost(ctx, pk, seg("a", seq), SessionInfo{Client: "a"})
			continue
		}
		if _, err := l.Complete(ctx, pk, seg("a", seq), SessionInfo{Client: "a"}); err != nil {
			t.Fatal(err)
		}
		p, _ := keysOf(t, l)
		if d := p.Duration(); d > 10.01 {
			t.Fatalf("window holds %.3f s", d)
		}
		if prev != nil {
			if err := p.Follows(prev); err != nil {
				t.Fatal(err)
			}
		}
		prev = p
	}
	// 39 appended (indices 0..38), five 2.002 s segments fit in 10 s.
	if prev.MSN != 34 || prev.DiscSeq != 1 || len(prev.Segments) != 5 {
		t.Fatalf("msn %d dseq %d", prev.MSN, prev.DiscSeq)
	}
}

// A key file stored in the bucket is named relative to each playlist that uses it.
func TestKeyTagFor(t *testing.T) {
	tag := `#EXT-X-KEY:METHOD=AES-128,URI="` + KeyURI("live/keys/cam-0.key") + `",IV=0x01`
	for from, want := range map[string]string{
		"live/cam.m3u8":            `#EXT-X-KEY:METHOD=AES-128,URI="keys/cam-0.key",IV=0x01`,
		"live/cam/vod/2026-a.m3u8": `#EXT-X-KEY:METHOD=AES-128,URI="../../keys/cam-0.key",IV=0x01`,
		"other/x/y.m3u8":           `#EXT-X-KEY:METHOD=AES-128,URI="../../live/keys/cam-0.key",IV=0x01`,
	} {
		if got := keyTagFor(from, tag); got != want {
			t.Errorf("from %s: %s, want %s", from, got, want)
		}
	}
	server := `#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example.com/k?id=1"`
	if got := keyTagFor("live/cam.m3u8", server); got != server {
		t.Errorf("a key server URI changed: %s", got)
	}
}

// An item whose record vanished (a hand-edited Redis) is dropped, not left to wedge the stream.
func TestLedgerMissingRecord(t *testing.T) {
	ctx := context.Background()
	l := newLedger(t, Settings{Window: time.Hour, Stall: time.Hour})
	pk := "live/cam.m3u8"
	for seq := int64(0); seq < 3; seq++ {
		l.Announce(ctx, pk, seg("a", seq), SessionInfo{Client: "a"})
	}
	l.Complete(ctx, pk, seg("a", 0), SessionInfo{Client: "a"})
	l.rdb.HDel(ctx, rdb.StreamKeys(pk).E, "a-1")
	if _, err := l.Complete(ctx, pk, seg("a", 2), SessionInfo{Client: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, keys := keysOf(t, l); strings.Join(keys, " ") != "a-0.ts |a-2.ts" {
		t.Fatalf("live %v", keys)
	}
}

// A segment whose announce at hook time failed is learnt of only when it is stored ("late"): it
// stays in its publisher's session, in seq_no order in the VoD record, and does not split the
// session or move the live playlist backwards; also after a republish. Within the stall it takes
// the place the live playlist kept for it.
func TestLedgerLateAnnounce(t *testing.T) {
	ctx := context.Background()
	l := newLedger(t, Settings{Window: time.Hour, Stall: time.Hour})
	pk := "live/cam.m3u8"
	for seq := int64(0); seq < 10; seq++ {
		if seq != 5 {
			l.Announce(ctx, pk, seg("a", seq), SessionInfo{Client: "a"})
		}
	}
	for seq := int64(0); seq < 3; seq++ {
		l.Announce(ctx, pk, seg("b", seq), SessionInfo{Client: "b"}) // a republish
	}
	for _, c := range []string{"a", "b"} {
		for seq := int64(0); seq < 10; seq++ {
			if c == "b" && seq >= 3 {
				break
			}
			if _, err := l.Complete(ctx, pk, seg(c, seq), SessionInfo{Client: c}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for c, want := range map[string][]int64{"a": {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, "b": {0, 1, 2}} {
		s, found, err := l.sessionOf(ctx, pk, c)
		if err != nil || !found {
			t.Fatal(found, err)
		}
		items, _ := l.vodEntries(ctx, pk, s.Number)
		var got []int64
		for _, it := range items {
			got = append(got, it.Seq)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("publisher %s: session %d VoD seqs %v, want %v", c, s.Number, got, want)
		}
	}
	all, _ := l.rdb.HGetAll(ctx, rdb.StreamKeys(pk).Vs).Result()
	if len(all) != 2 {
		t.Errorf("%d sessions, want 2", len(all))
	}
	// Live: a's run in full (5 came within the stall), then b after a discontinuity.
	if _, keys := keysOf(t, l); strings.Join(keys, " ") != "a-0.ts a-1.ts a-2.ts a-3.ts a-4.ts a-5.ts a-6.ts a-7.ts a-8.ts a-9.ts |b-0.ts b-1.ts b-2.ts" {
		t.Errorf("live %v", keys)
	}
}

// A ledger built without a stall waits as long as the config's default says (they once disagreed:
// 2m in the config, 5m here).
func TestLedgerDefaultStall(t *testing.T) {
	l := New(nil, Settings{})
	if l.set.Stall != DefaultStall || DefaultStall != 2*time.Minute {
		t.Fatalf("stall %v, DefaultStall %v; want 2m", l.set.Stall, DefaultStall)
	}
}

// vodSeqs is a session's VoD record as seq_nos ("s:<n>": the newest session of publisher c; "n:<n>":
// session number n).
func vodSeqs(t *testing.T, l *Ledger, pk string, sess int64) []int64 {
	t.Helper()
	items, err := l.vodEntries(context.Background(), pk, sess)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, it := range items {
		got = append(got, it.Seq)
	}
	return got
}

func sessionsOf(t *testing.T, l *Ledger, pk string) int {
	t.Helper()
	all, err := l.rdb.HGetAll(context.Background(), rdb.StreamKeys(pk).Vs).Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// A segment whose hook never came, found on disk (no client_id; its seq_no and duration from SRS's
// m3u8 or its bytes), takes the place the live playlist kept for it when it comes within the
// stall: no discontinuity, its own duration, and its place in the VoD record.
func TestLedgerFoundSegmentWithinStall(t *testing.T) {
	ctx := context.Background()
	l := newLedger(t, Settings{Window: time.Hour, Stall: time.Hour})
	pk := "live/cam.m3u8"
	base := time.Now().Add(-time.Minute)
	at := func(it Item) Item { it.Written = base.Add(time.Duration(it.Seq) * 2 * time.Second); return it }
	for seq := int64(0); seq < 6; seq++ {
		if seq == 3 {
			continue // its hook never came
		}
		l.Announce(ctx, pk, at(seg("a", seq)), SessionInfo{Client: "a"})
		l.Complete(ctx, pk, at(seg("a", seq)), SessionInfo{Client: "a"})
	}
	if _, keys := keysOf(t, l); strings.Join(keys, " ") != "a-0.ts a-1.ts a-2.ts" {
		t.Fatalf("live %v: want it to wait at the missing seq_no 3", keys)
	}
	found := at(Item{ID: "found-3", Kind: KindSegment, Seq: 3, Duration: 1.5, Key: "live/cam/found-3.ts"})
	res, err := l.Complete(ctx, pk, found, SessionInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if res.NewSession || res.Session != 1 {
		t.Fatalf("found segment: %+v, want session 1", res)
	}
	p, keys := keysOf(t, l)
	if strings.Join(keys, " ") != "a-0.ts a-1.ts a-2.ts found-3.ts a-4.ts a-5.ts" {
		t.Fatalf("live %v", keys)
	}
	if d := p.Segments[3].Duration; d != 1.5 {
		t.Fatalf("found segment listed with %v s, want 1.5", d)
	}
	if got := vodSeqs(t, l, pk, 1); fmt.Sprint(got) != "[0 1 2 3 4 5]" {
		t.Fatalf("VoD %v", got)
	}
	if n := sessionsOf(t, l, pk); n != 1 {
		t.Fatalf("%d sessions", n)
	}
	// Its hook, late after all, changes nothing.
	if res, err := l.Announce(ctx, pk, Item{ID: "found-3", Kind: KindSegment, Client: "a", Seq: 3}, SessionInfo{Client: "a"}); err != nil || res.NewSession {
		t.Fatalf("late hook: %+v %v", res, err)
	}
	if _, keys2 := keysOf(t, l); fmt.Sprint(keys2) != fmt.Sprint(keys) {
		t.Fatalf("live after the late hook %v", keys2)
	}
}

// Past the stall the live playlist moves on with a discontinuity; a segment found later still
// joins the VoD record at its place, and says so when that session's VoD was written already.
func TestLedgerFoundSegmentAfterStall(t *testing.T) {
	ctx := context.Background()
	l := newLedger(t, Settings{Window: time.Hour, Stall: 200 * time.Millisecond})
	pk := "live/cam.m3u8"
	for _, seq := range []int64{0, 1, 3, 4} {
		l.Announce(ctx, pk, seg("a", seq), SessionInfo{Client: "a"})
		l.Complete(ctx, pk, seg("a", seq), SessionInfo{Client: "a"})
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := l.Advance(ctx, pk); err != nil {
		t.Fatal(err)
	}
	if _, keys := keysOf(t, l); strings.Join(keys, " ") != "a-0.ts a-1.ts |a-3.ts a-4.ts" {
		t.Fatalf("live %v", keys)
	}
	s, _, _ := l.sessionOf(ctx, pk, "a")
	if _, err := l.endSession(ctx, pk, s, false); err != nil {
		t.Fatal(err)
	}
	res, err := l.Complete(ctx, pk, Item{ID: "found-2", Kind: KindSegment, Seq: 2, Duration: 2, Key: "live/cam/found-2.ts"}, SessionInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reopened || res.Changed || res.Session != 1 {
		t.Fatalf("late found segment: %+v, want session 1 reopened, live unchanged", res)
	}
	if got := vodSeqs(t, l, pk, 1); fmt.Sprint(got) != "[0 1 2 3 4]" {
		t.Fatalf("VoD %v", got)
	}
	if _, keys := keysOf(t, l); strings.Join(keys, " ") != "a-0.ts a-1.ts |a-3.ts a-4.ts" {
		t.Fatalf("live changed: %v", keys)
	}
}

// A hook repeated or delayed never opens a publish session: not an earlier publisher's after a
// republish, not an older seq_no of the current publisher. A newer file restarting seq_no (SRS
// recreated the source) does.
func TestLedgerLateHookKeepsSession(t *testing.T) {
	ctx := context.Background()
	l := newLedger(t, Settings{Window: time.Hour, Stall: time.Hour})
	pk := "live/cam.m3u8"
	base := time.Now().Add(-time.Hour)
	at := func(it Item, sec int) Item { it.Written = base.Add(time.Duration(sec) * time.Second); return it }
	for seq := int64(0); seq < 5; seq++ {
		if seq == 2 {
			continue
		}
		l.Announce(ctx, pk, at(seg("a", seq), int(seq)*2), SessionInfo{Client: "a"})
	}
	// a's seq 2, late: an older file than a's newest.
	res, err := l.Announce(ctx, pk, at(seg("a", 2), 4), SessionInfo{Client: "a"})
	if err != nil || res.NewSession || res.Session != 1 {
		t.Fatalf("late hook of the current publisher: %+v %v", res, err)
	}
	l.Announce(ctx, pk, at(seg("b", 0), 100), SessionInfo{Client: "b"})
	// a's seq 1 again, and a's seq 5 (never seen) after b took over.
	for _, it := range []Item{at(seg("a", 1), 2), at(seg("a", 5), 10)} {
		res, err := l.Announce(ctx, pk, it, SessionInfo{Client: "a"})
		if err != nil || res.NewSession || res.Session != 1 {
			t.Fatalf("hook of %s after the republish: %+v %v", it.ID, res, err)
		}
	}
	for seq := int64(0); seq < 6; seq++ {
		l.Complete(ctx, pk, seg("a", seq), SessionInfo{Client: "a"})
	}
	l.Complete(ctx, pk, seg("b", 0), SessionInfo{Client: "b"})
	if n := sessionsOf(t, l, pk); n != 2 {
		t.Fatalf("%d sessions, want 2", n)
	}
	if got := vodSeqs(t, l, pk, 1); fmt.Sprint(got) != "[0 1 2 3 4 5]" {
		t.Fatalf("a's VoD %v", got)
	}
	if _, keys := keysOf(t, l); strings.Join(keys, " ") != "a-0.ts a-1.ts a-2.ts a-3.ts a-4.ts |b-0.ts" {
		t.Fatalf("live %v", keys)
	}
	// b's source recreated: seq_no back to 0 in a newer file.
	l.Announce(ctx, pk, at(seg("b", 1), 102), SessionInfo{Client: "b"})
	res, err = l.Announce(ctx, pk, at(Item{ID: "b2-0", Kind: KindSegment, Client: "b", Seq: 0}, 200), SessionInfo{Client: "b"})
	if err != nil || !res.NewSession || res.Session != 3 {
		t.Fatalf("recreated source: %+v %v", res, err)
	}
}

// A segment without client_id joins the session that was publishing when its file was written.
func TestLedgerFoundSegmentSession(t *testing.T) {
	ctx := context.Background()
	l := newLedger(t, Settings{Window: time.Hour, Stall: time.Hour})
	pk := "live/cam.m3u8"
	l.Announce(ctx, pk, seg("a", 0), SessionInfo{Client: "a"})
	l.Announce(ctx, pk, seg("a", 1), SessionInfo{Client: "a"})
	old := time.Now().Add(-time.Second)
	time.Sleep(1100 * time.Millisecond)
	bStart := time.Now()
	time.Sleep(1100 * time.Millisecond)
	l.Announce(ctx, pk, seg("b", 0), SessionInfo{Client: "b"})
	for _, tc := range []struct {
		written time.Time
		want    int64
	}{{old, 1}, {bStart.Add(2 * time.Second), 2}} {
		it := Item{ID: fmt.Sprint("found-", tc.want), Kind: KindSegment, Seq: 7, Duration: 0.1, Key: "k.ts", Written: tc.written}
		res, err := l.Complete(ctx, pk, it, SessionInfo{})
		if err != nil || res.Session != tc.want || res.NewSession {
			t.Fatalf("file written %v: %+v %v, want session %d", tc.written, res, err, tc.want)
		}
	}
}
