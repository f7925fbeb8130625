package spool_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/spool"
)

// outsideTree lists every name below dir (nothing may appear there).
func outsideTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Finding 1 (issue 11): the worker removes the empty spool folder, and the name is replaced by a
// symlink to a folder outside the root. Take must create and link nothing there (as root, it
// could write anywhere), and say why.
func TestTakeRefusesSymlinkedSpool(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, root, outside string)
		inner bool // the spool folder itself is fine (Probe accepts it)
	}{
		{"spool folder is a symlink out", func(t *testing.T, root, outside string) {
			if err := os.Symlink(outside, filepath.Join(root, dir)); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"spool folder is a relative symlink inside", func(t *testing.T, root, outside string) {
			if err := os.Mkdir(filepath.Join(root, "elsewhere"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("elsewhere", filepath.Join(root, dir)); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"a folder in the spool is a symlink out", func(t *testing.T, root, outside string) {
			if err := os.Mkdir(filepath.Join(root, dir), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, filepath.Join(root, dir, "live")); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"spool folder is a file", func(t *testing.T, root, outside string) {
			if err := os.WriteFile(filepath.Join(root, dir), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp, root := newSpool(t)
			outside := t.TempDir()
			orig, fi := write(t, root, "live/livestream-1.ts", []byte("segment"))
			tc.setup(t, root, outside)
			dst, err := sp.Take(orig, fi)
			if err == nil {
				t.Fatalf("Take linked %s through a spool folder that is not a real folder", dst)
			}
			if !errors.Is(err, roots.ErrSymlink) {
				t.Errorf("err = %v, want roots.ErrSymlink", err)
			}
			if got := outsideTree(t, outside); len(got) != 0 {
				t.Fatalf("created outside the root: %v", got)
			}
			if _, n := inode(t, fi); n != 1 {
				t.Fatalf("the file got another name")
			}
			cur, _ := os.Lstat(orig)
			if _, n := inode(t, cur); n != 1 {
				t.Fatalf("the file has %d links, want 1", n)
			}
			if err := sp.Probe(); err == nil && !tc.inner {
				t.Error("Probe accepted a spool folder that is not a real folder")
			}
			if got := outsideTree(t, outside); len(got) != 0 {
				t.Fatalf("Probe created outside the root: %v", got)
			}
		})
	}
}

// The spool folder outlives its last file: releasing it prunes the folders below, not the spool.
func TestReleaseKeepsSpoolFolder(t *testing.T) {
	sp, root := newSpool(t)
	if err := sp.Probe(); err != nil {
		t.Fatal(err)
	}
	orig, fi := write(t, root, "live/cam1/livestream-1.ts", []byte("segment"))
	dst, err := sp.Take(orig, fi)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Release(dst, fi); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the spooled link is still there: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, dir, "live")); !errors.Is(err, os.ErrNotExist) {
		t.Error("the emptied folder in the spool is still there")
	}
	st, err := os.Lstat(filepath.Join(root, dir))
	if err != nil || !st.IsDir() {
		t.Fatalf("the spool folder went away: %v", err)
	}
	// Release refuses a path outside the spool.
	if err := sp.Release(orig, fi); err == nil {
		t.Fatal("Release removed a file outside the spool")
	}
	if _, err := os.Lstat(orig); err != nil {
		t.Fatal(err)
	}
}

// Two Sets on the same root (the hook's and the worker's) both keep the spool folder once a
// Spool was made on each.
func TestNewKeepsFolderOnItsSet(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := roots.New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spool.New(rs, dir); err != nil {
		t.Fatal(err)
	}
	p, fi := write(t, root, filepath.Join(dir, "x.ts"), []byte("x"))
	if err := rs.Remove(p, fi); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(root, dir)); err != nil {
		t.Fatalf("the spool folder was pruned: %v", err)
	}
}
