package spool_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/spool"
)

// On a shared volume each host links into <dir>/<host>/: Path names this host's link, PathOf
// another's, Orig maps any host's link back, Links lists every host's, and a host's folder is kept
// when its last link goes.
func TestSharedHostFolders(t *testing.T) {
	sp1, root := newSpool(t)
	if err := sp1.Shared("srs1"); err != nil {
		t.Fatal(err)
	}
	rs, err := roots.New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	sp2, err := spool.New(rs, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp2.Shared("srs2"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", ".", "..", "a/b"} {
		if err := sp2.Shared(bad); err == nil {
			t.Errorf("Shared(%q) accepted", bad)
		}
	}
	p, fi := write(t, root, "live/cam1-0.ts", []byte("segment"))
	ino, _ := inode(t, fi)
	l1, err := sp1.Take(p, fi)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := sp2.Take(p, fi)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, dir, "srs1", "live", itoa(ino)+"-cam1-0.ts"); l1 != want {
		t.Fatalf("srs1's link %s, want %s", l1, want)
	}
	if other, _ := sp1.PathOf("srs2", p, ino); other != l2 {
		t.Fatalf("PathOf(srs2) = %s, srs2 linked %s", other, l2)
	}
	for _, l := range []string{l1, l2} {
		for _, sp := range []*spool.Spool{sp1, sp2} {
			orig, gotIno, ok := sp.Orig(l)
			if !ok || orig != p || gotIno != ino {
				t.Fatalf("Orig(%s) = %s %d %v", l, orig, gotIno, ok)
			}
		}
	}
	links := sp1.Links(p, ino)
	slices.Sort(links)
	if !slices.Equal(links, []string{l1, l2}) {
		t.Fatalf("Links = %q, want both hosts' %q %q", links, l1, l2)
	}
	for _, l := range links {
		if err := sp1.Release(l, fi); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(root, dir, "srs1")); err != nil || !fi.IsDir() {
		t.Fatalf("this host's spool folder went with its last link: %v", err)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
