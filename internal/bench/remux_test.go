package main

import (
	"strings"
	"testing"
	"time"
)

// The B3 remux row measures a real remux: a scaled-down recording gives a time and an MP4 with
// its moov first.
func TestRemuxCost(t *testing.T) {
	e := &env{tmp: t.TempDir(), sc: scale{dvrSize: 24 << 20}, started: time.Now()}
	var s section
	e.remuxCost(&s)
	if len(s.tables) != 1 || len(s.summary) != 1 {
		t.Fatalf("no measurement: %v", s.notes)
	}
	t.Logf("%v", s.tables[0].rows)
	if !strings.Contains(s.tables[0].rows[3][1], "moov before mdat: true") {
		t.Errorf("MP4 row %q", s.tables[0].rows[3][1])
	}
}
