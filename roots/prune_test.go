package roots_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// While pruning is deferred, Remove leaves the folders it empties; Prune removes them (and the
// empty folders above them) only once they have stayed unchanged since its cutoff, never a kept
// folder or a root, and forgets a folder that was filled again.
func TestDeferPruning(t *testing.T) {
	tr := newTree(t)
	s := newSet(t, tr.root)
	s.Keep(".spool")
	undo := s.DeferPruning()

	seg := tr.in("app", "cam1", "1-a.ts")
	spooled := tr.in(".spool", "app", "cam1", "7-1-a.ts")
	kept := tr.in(".spool", "top.ts") // its folder is the kept spool folder
	for _, p := range []string{seg, spooled, kept} {
		write(t, p, "x")
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(p, fi); err != nil {
			t.Fatal(err)
		}
		if exists(p) {
			t.Fatalf("%s not removed", p)
		}
	}
	emptied := []string{tr.in("app", "cam1"), tr.in(".spool", "app", "cam1")}
	for _, d := range emptied {
		if !exists(d) {
			t.Fatalf("%s pruned by Remove while pruning is deferred", d)
		}
	}

	// Emptied after the cutoff: kept for a later Prune.
	if n := s.Prune(time.Now().Add(-time.Hour)); n != 0 {
		t.Fatalf("Prune with a cutoff before the removals removed %d folders", n)
	}
	for _, d := range emptied {
		if !exists(d) {
			t.Fatalf("%s removed though emptied after the cutoff", d)
		}
	}

	// Filled again (the stream's next segment): not removed, and forgotten.
	next := tr.in("app", "cam1", "2-a.ts")
	write(t, next, "y")
	if n := s.Prune(time.Now().Add(time.Second)); n != 2 {
		t.Fatalf("Prune removed %d folders, want 2 (the spool's app/cam1 and app)", n)
	}
	if !exists(next) || !exists(tr.in("app", "cam1")) {
		t.Fatal("a folder in use again was removed")
	}
	if exists(tr.in(".spool", "app")) {
		t.Error("the spool's emptied folders are still there")
	}
	if !exists(tr.in(".spool")) || !exists(tr.root) {
		t.Fatal("the kept folder or the root was removed")
	}
	if err := os.Remove(next); err != nil {
		t.Fatal(err)
	}
	if n := s.Prune(time.Now().Add(time.Second)); n != 0 {
		t.Fatalf("Prune removed %d folders it had forgotten (emptied by someone else)", n)
	}

	// Undone: Remove prunes at once again.
	undo()
	p := tr.in("app", "cam2", "1-a.ts")
	write(t, p, "x")
	fi, _ := os.Lstat(p)
	if err := s.Remove(p, fi); err != nil {
		t.Fatal(err)
	}
	if exists(tr.in("app", "cam2")) {
		t.Error("Remove did not prune once the deferral was undone")
	}
}

// A folder noted for pruning that was swapped for a symlink (to a folder outside the roots) is
// neither followed nor removed.
func TestPruneFollowsNoSymlink(t *testing.T) {
	tr := newTree(t)
	s := newSet(t, tr.root)
	defer s.DeferPruning()()
	p := tr.in("app", "cam1", "1-a.ts")
	write(t, p, "x")
	fi, _ := os.Lstat(p)
	if err := s.Remove(p, fi); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(tr.outside, "empty")
	mkdir(t, empty)
	if err := os.Remove(tr.in("app", "cam1")); err != nil {
		t.Fatal(err)
	}
	symlink(t, empty, tr.in("app", "cam1"))
	if n := s.Prune(time.Now().Add(time.Hour)); n != 0 {
		t.Fatalf("Prune removed %d folders", n)
	}
	if !exists(empty) {
		t.Fatal("Prune removed a folder outside the root through a symlink")
	}
	if _, err := os.Lstat(tr.in("app", "cam1")); err != nil {
		t.Fatal("the symlink itself was removed:", err)
	}
}
