package roots_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/srs-offload/srs-offload/roots"
)

// These tests stand for the findings of the security review (issue 11): a folder swapped for a
// symlink between a check and its use must not let an operation leave its root. The tests run as
// root, so "allowed to write anywhere" is real; the outside is a second temporary folder.

// swapForSymlink moves the folder dir aside and puts a symlink to target in its place, the way an
// attacker with write access to the root (or a race with SRS) would.
func swapForSymlink(t *testing.T, dir, target string) {
	t.Helper()
	if err := os.Rename(dir, dir+".moved"); err != nil {
		t.Fatal(err)
	}
	symlink(t, target, dir)
}

// link hard-links old to new (the same inode under a name outside the root).
func link(t *testing.T, old, new string) {
	t.Helper()
	mkdir(t, filepath.Dir(new))
	if err := os.Link(old, new); err != nil {
		t.Fatal(err)
	}
}

// Finding 2: the folder of a hooked file is swapped, after the hook, for a symlink to an outside
// folder holding a hard link of the same file under the same name (so an inode check passes).
// Remove must delete nothing outside and remove no outside folder.
func TestRemoveThroughSwappedFolder(t *testing.T) {
	for _, depth := range []string{"live", "live/cam1"} {
		t.Run(depth, func(t *testing.T) {
			tr := newTree(t)
			s := newSet(t, tr.root)
			p := tr.in(depth, "seg-1.ts")
			write(t, p, "segment")
			hooked, fi, err := s.Resolve("/", p)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(tr.outside, "victim")
			outFile := filepath.Join(out, filepath.Base(depth), "seg-1.ts")
			link(t, p, outFile)
			swapForSymlink(t, tr.in(depth), filepath.Dir(outFile))

			err = s.Remove(hooked, fi)
			if err == nil {
				t.Fatal("Remove went through a folder swapped for a symlink")
			}
			if !errors.Is(err, roots.ErrSymlink) {
				t.Errorf("err = %v, want ErrSymlink", err)
			}
			if !exists(outFile) {
				t.Fatal("Remove deleted the file outside the root")
			}
			if !exists(filepath.Dir(outFile)) || !exists(out) {
				t.Fatal("Remove pruned a folder outside the root")
			}
			if !exists(tr.in(depth)) {
				t.Fatal("Remove removed the symlink itself")
			}
		})
	}
}

// The same swap, to a folder inside the root: Remove follows no symlink at all, so the hard link
// there stays too.
func TestRemoveThroughFolderSwappedInside(t *testing.T) {
	tr := newTree(t)
	s := newSet(t, tr.root)
	p := tr.in("live", "cam1", "seg-1.ts")
	write(t, p, "segment")
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	other := tr.in("other", "seg-1.ts")
	link(t, p, other)
	swapForSymlink(t, tr.in("live", "cam1"), "../other")
	if err := s.Remove(p, fi); !errors.Is(err, roots.ErrSymlink) {
		t.Fatalf("Remove = %v, want ErrSymlink", err)
	}
	if !exists(other) {
		t.Fatal("Remove deleted the file a symlinked folder led to")
	}
}

// Finding 3: the worker opens a file whose folder was swapped for a symlink to an outside folder
// holding a file of the same name: nothing outside is read.
func TestOpenThroughSwappedFolder(t *testing.T) {
	tr := newTree(t)
	s := newSet(t, tr.root)
	p := tr.in("live", "cam1", "seg-1.ts")
	write(t, p, "segment")
	hooked, _, err := s.Resolve("/", p)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(tr.outside, "cam1", "seg-1.ts"), "secret")
	swapForSymlink(t, tr.in("live", "cam1"), filepath.Join(tr.outside, "cam1"))

	f, _, err := s.Open(hooked)
	if err == nil {
		b, _ := io.ReadAll(f)
		f.Close()
		t.Fatalf("Open read %q through a folder swapped for a symlink out", b)
	}
	if !errors.Is(err, roots.ErrOutside) {
		t.Errorf("err = %v, want ErrOutside", err)
	}
	// A relative symlink out (../../../outside) is refused the same way.
	if err := os.Remove(tr.in("live", "cam1")); err != nil {
		t.Fatal(err)
	}
	symlink(t, "../../outside/cam1", tr.in("live", "cam1"))
	if f, _, err := s.Open(hooked); !errors.Is(err, roots.ErrOutside) {
		if f != nil {
			f.Close()
		}
		t.Fatalf("Open through a relative symlink out = %v, want ErrOutside", err)
	}
}

// Resolve looks at nothing outside the root: a path through a symlink out is ErrOutside whether
// or not the file exists there (no oracle for files outside).
func TestResolveLooksAtNothingOutside(t *testing.T) {
	tr := newTree(t)
	s := newSet(t, tr.root)
	for _, name := range []string{"x.ts", "missing.ts"} {
		_, _, err := s.Resolve("/", tr.in("live", "out-dir", name))
		if !errors.Is(err, roots.ErrOutside) || errors.Is(err, roots.ErrNotExist) {
			t.Errorf("%s: err = %v, want only ErrOutside", name, err)
		}
	}
}

// A symlink inside the root with an absolute target inside it is resolved to the real name.
func TestResolveAbsoluteSymlinkInside(t *testing.T) {
	tr := newTree(t)
	s := newSet(t, tr.root)
	symlink(t, tr.in("live"), tr.in("alias"))
	got, _, err := s.Resolve("/", tr.in("alias", "a.ts"))
	if err != nil || got != tr.in("live", "a.ts") {
		t.Fatalf("Resolve = %q, %v; want %q", got, err, tr.in("live", "a.ts"))
	}
}

// Link and MkdirAll create nothing where a symlinked folder points, inside or outside the root.
func TestLinkAndMkdirFollowNoSymlink(t *testing.T) {
	tr := newTree(t)
	s := newSet(t, tr.root)
	a := tr.in("live", "a.ts")
	fa, err := os.Lstat(a)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tr.outside, "spool")
	mkdir(t, out)
	symlink(t, out, tr.in(".spool"))
	symlink(t, "live", tr.in(".inside"))

	for _, dir := range []string{tr.in(".spool"), tr.in(".inside")} {
		err := s.Link(a, filepath.Join(dir, "live", "1-a.ts"), fa)
		if !errors.Is(err, roots.ErrSymlink) {
			t.Errorf("Link into %s = %v, want ErrSymlink", dir, err)
		}
		if err := s.MkdirAll(filepath.Join(dir, "live")); !errors.Is(err, roots.ErrSymlink) {
			t.Errorf("MkdirAll below %s = %v, want ErrSymlink", dir, err)
		}
		if err := s.CheckLinks(dir); !errors.Is(err, roots.ErrSymlink) {
			t.Errorf("CheckLinks in %s = %v, want ErrSymlink", dir, err)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("created outside: %v", entries)
	}
	if exists(tr.in("live", "live")) {
		t.Fatal("created through the symlink inside the root")
	}
	// The source's folder is not followed either.
	if err := s.Link(tr.in("live", "out-dir", "x.ts"), tr.in("new", "x.ts"), fa); !errors.Is(err, roots.ErrSymlink) {
		t.Errorf("Link from a symlinked folder = %v, want ErrSymlink", err)
	}
	// Without symlinks, Link makes the folders and the link.
	dst := tr.in("new", "deep", "1-a.ts")
	if err := s.Link(a, dst, fa); err != nil {
		t.Fatal(err)
	}
	fd, _ := os.Lstat(dst)
	if !os.SameFile(fa, fd) {
		t.Fatal("Link made another file")
	}
	// Again: the name is already the file.
	if err := s.Link(a, dst, fa); err != nil {
		t.Fatalf("second Link: %v", err)
	}
	// want is another file (the source was replaced since): the link made is removed again.
	fb, _ := os.Lstat(tr.in("live", "b.ts"))
	other := tr.in("new", "2-a.ts")
	if err := s.Link(a, other, fb); !errors.Is(err, roots.ErrReplaced) {
		t.Fatalf("Link of a replaced file = %v, want ErrReplaced", err)
	}
	if exists(other) {
		t.Fatal("the link to the replacing file was left")
	}
}

// Pruning stops at a kept folder (the spool folder) and removes what is empty below it.
func TestRemoveStopsAtKept(t *testing.T) {
	tr := newTree(t)
	s := newSet(t, tr.root)
	s.Keep(".spool")
	p := tr.in(".spool", "live", "cam1", "1-a.ts")
	write(t, p, "x")
	fi, _ := os.Lstat(p)
	if err := s.Remove(p, fi); err != nil {
		t.Fatal(err)
	}
	if exists(tr.in(".spool", "live")) {
		t.Error("the emptied folder below the kept one is still there")
	}
	if !exists(tr.in(".spool")) {
		t.Fatal("the kept folder was removed")
	}
}

// WalkDir reports a symlinked folder as a symlink and does not descend into it; a walk started
// through a symlink out is refused.
func TestWalkDirStaysInside(t *testing.T) {
	tr := newTree(t)
	s := newSet(t, tr.root)
	var seen []string
	err := s.WalkDir(tr.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			fi, err := d.Info()
			if err != nil {
				t.Errorf("Info(%s): %v", p, err)
			} else if fi.Name() != d.Name() {
				t.Errorf("Info(%s) names %s", p, fi.Name())
			}
		}
		seen = append(seen, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range seen {
		if p == tr.in("live", "out-dir", "x.ts") {
			t.Fatal("walked through a symlink out")
		}
	}
	if len(seen) == 0 || seen[0] != tr.root {
		t.Fatalf("walk started at %v", seen)
	}
	var got error
	_ = s.WalkDir(tr.in("live", "out-dir"), func(p string, d fs.DirEntry, err error) error {
		if err != nil && got == nil {
			got = err
		}
		return nil
	})
	if !errors.Is(got, roots.ErrOutside) {
		t.Fatalf("walk through a symlink out: %v, want ErrOutside", got)
	}
}
