package spool_test

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/spool"
)

// Holds knows the files this spool took: the same file (inode, size, mtime) under the same name,
// until it is released. A replaced file, another name of it, or another process's spool over the
// same root (a worker's holder) does not count.
func TestHoldsOwnTakes(t *testing.T) {
	t.Parallel()
	sp, root := newSpool(t)
	p, fi := write(t, root, "live/cam1/1-a.ts", []byte("segment"))
	if sp.Holds(p, fi) {
		t.Fatal("holds a file it never took")
	}
	link, err := sp.Take(p, fi)
	if err != nil {
		t.Fatal(err)
	}
	if !sp.Holds(p, fi) {
		t.Fatal("does not hold the file it just took")
	}
	other, err := spool.New(sp.Roots, dir)
	if err != nil {
		t.Fatal(err)
	}
	if other.Holds(p, fi) {
		t.Fatal("another spool (another process) holds this process's take")
	}
	// Taken again by this process (the watcher after the hook): the same link, nothing new.
	if again, err := sp.Take(p, fi); err != nil || again != link {
		t.Fatalf("Take again = %q, %v; want %q", again, err, link)
	}
	// Another process takes it too: the link exists already, which is not an error.
	if again, err := other.Take(p, fi); err != nil || again != link {
		t.Fatalf("Take by another spool = %q, %v; want %q", again, err, link)
	}

	// SRS reuses the name for a new file: not held.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	p2, fi2 := write(t, root, "live/cam1/1-a.ts", []byte("a new segment"))
	if p2 != p || sp.Holds(p2, fi2) {
		t.Fatal("holds a new file under a name it took before")
	}

	// Released: not held any more, and a new take links again.
	lfi, err := os.Lstat(link)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Release(link, lfi); err != nil {
		t.Fatal(err)
	}
	if sp.Holds(p, fi) {
		t.Fatal("holds a file it released")
	}
	q, qfi := write(t, root, "live/cam1/2-a.ts", []byte("next"))
	ql, err := sp.Take(q, qfi)
	if err != nil {
		t.Fatal(err)
	}
	lq, err := os.Lstat(ql)
	if err != nil {
		t.Fatal("no link made:", err)
	}
	if err := sp.Release(ql, lq); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Take(q, qfi); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(ql); err != nil {
		t.Fatal("a take after the release did not link again:", err)
	}
}

// Takes of one file that run at once (the hook and the watcher) all end as the one that links
// it: held when it is linked, and failing, never held, when it could not be (the file is gone).
func TestTakeAtOnce(t *testing.T) {
	t.Parallel()
	sp, root := newSpool(t)
	take := func(p string, fi os.FileInfo) []error {
		errs := make([]error, 16)
		links := make([]string, 16)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() { links[i], errs[i] = sp.Take(p, fi) })
		}
		wg.Wait()
		for i, l := range links {
			if errs[i] == nil && l != links[0] {
				t.Fatalf("takes returned links %q and %q", links[0], l)
			}
		}
		return errs
	}
	p, fi := write(t, root, "live/cam1/1-a.ts", []byte("segment"))
	for _, err := range take(p, fi) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !sp.Holds(p, fi) {
		t.Fatal("not held after the takes")
	}

	gone, gfi := write(t, root, "live/cam1/2-a.ts", []byte("deleted by SRS"))
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	for _, err := range take(gone, gfi) {
		if !errors.Is(err, roots.ErrNotExist) {
			t.Fatalf("take of a gone file = %v, want ErrNotExist", err)
		}
	}
	if sp.Holds(gone, gfi) {
		t.Fatal("holds a file no take could link")
	}
}
