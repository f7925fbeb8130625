package spool_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/spool"
)

const dir = ".srs-offload"

// newSpool makes a root (its real path, so paths compare as the Set reports them) and its spool.
func newSpool(t *testing.T) (*spool.Spool, string) {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := roots.New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spool.New(rs, dir)
	if err != nil {
		t.Fatal(err)
	}
	return sp, root
}

// write creates root/rel with b, making its folders, and returns its path and Lstat.
func write(t *testing.T, root, rel string, b []byte) (string, fs.FileInfo) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, fi
}

func inode(t *testing.T, fi fs.FileInfo) (ino, nlink uint64) {
	t.Helper()
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Fatal("no Stat_t")
	}
	return st.Ino, uint64(st.Nlink)
}

// Path and Orig are inverses, for a file at the root, in nested folders, and with '-' in its
// name and folders (the inode prefix is cut at the first '-' only).
func TestPathOrigRoundTrip(t *testing.T) {
	t.Parallel()
	sp, root := newSpool(t)
	for _, tc := range []struct {
		rel  string
		ino  uint64
		want string // the spooled path, relative to the root
	}{
		{"a.ts", 7, ".srs-offload/7-a.ts"},
		{"live/livestream-12.ts", 1234, ".srs-offload/live/1234-livestream-12.ts"},
		{"live/cam-1/2026/11/23/22/1763935200000-5.ts", 18446744073709551615, ".srs-offload/live/cam-1/2026/11/23/22/18446744073709551615-1763935200000-5.ts"},
		{"live/cam-1.1763935200000.flv", 1, ".srs-offload/live/1-cam-1.1763935200000.flv"},
	} {
		orig := filepath.Join(root, tc.rel)
		got, ok := sp.Path(orig, tc.ino)
		if !ok || got != filepath.Join(root, tc.want) {
			t.Errorf("Path(%s, %d) = %q, %v; want %q", tc.rel, tc.ino, got, ok, filepath.Join(root, tc.want))
			continue
		}
		if !sp.Contains(got) {
			t.Errorf("Contains(%s) is false for a spooled path", got)
		}
		back, ino, ok := sp.Orig(got)
		if !ok || back != orig || ino != tc.ino {
			t.Errorf("Orig(%s) = %q, %d, %v; want %q, %d", got, back, ino, ok, orig, tc.ino)
		}
	}

	// No spooled name for a file outside the roots or already in the spool.
	for _, p := range []string{
		"/elsewhere/live/a.ts",
		root + "-evil/live/a.ts",
		filepath.Join(root, dir, "live/7-a.ts"),
		filepath.Join(root, dir),
	} {
		if got, ok := sp.Path(p, 7); ok {
			t.Errorf("Path(%s) = %q, want none", p, got)
		}
	}
	// Orig only for a well-formed spooled name.
	for _, p := range []string{
		filepath.Join(root, "live/7-a.ts"),         // not in the spool
		filepath.Join(root, dir, "live/a.ts"),      // no inode
		filepath.Join(root, dir, "live/x-a.ts"),    // not a number
		filepath.Join(root, dir, "live/7-"),        // no name
		filepath.Join("/elsewhere", dir, "7-a.ts"), // outside the roots
	} {
		if orig, ino, ok := sp.Orig(p); ok {
			t.Errorf("Orig(%s) = %q, %d; want none", p, orig, ino)
		}
	}
}

func TestContains(t *testing.T) {
	t.Parallel()
	sp, root := newSpool(t)
	for p, want := range map[string]bool{
		filepath.Join(root, dir):                 true,
		filepath.Join(root, dir, "live/7-a.ts"):  true,
		filepath.Join(root, dir+"x", "7-a.ts"):   false, // a look-alike sibling
		filepath.Join(root, "live", dir, "a.ts"): false, // a folder of that name below the root
		filepath.Join(root, "live/a.ts"):         false,
		root:                                     false,
		filepath.Join("/elsewhere", dir, "a.ts"): false,
	} {
		if got := sp.Contains(p); got != want {
			t.Errorf("Contains(%s) = %v, want %v", p, got, want)
		}
	}
}

func TestNewRejectsBadDirs(t *testing.T) {
	t.Parallel()
	rs, err := roots.New([]string{t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"", ".", "..", "a/b", "/abs", "a\x00b"} {
		if _, err := spool.New(rs, d); err == nil {
			t.Errorf("New(%q) accepted", d)
		}
	}
	for _, d := range []string{".srs-offload", "spool", "..x"} {
		if _, err := spool.New(rs, d); err != nil {
			t.Errorf("New(%q): %v", d, err)
		}
	}
}

// Take hard-links the file: the spooled name is the same inode, which now has two names.
// Taking it again is not an error and gives the same name.
func TestTakeLinks(t *testing.T) {
	t.Parallel()
	sp, root := newSpool(t)
	want := []byte("segment bytes")
	orig, fi := write(t, root, "live/cam-1/2026/cam-1-3.ts", want)
	dst, err := sp.Take(orig, fi)
	if err != nil {
		t.Fatal(err)
	}
	ino, _ := inode(t, fi)
	if p, _ := sp.Path(orig, ino); dst != p {
		t.Fatalf("Take gave %s, Path says %s", dst, p)
	}
	got, err := os.Lstat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(got, fi) {
		t.Fatal("the spooled name is another file")
	}
	if _, n := inode(t, got); n != 2 {
		t.Fatalf("nlink %d, want 2", n)
	}

	again, err := sp.Take(orig, fi)
	if err != nil || again != dst {
		t.Fatalf("second Take = %q, %v; want %q", again, err, dst)
	}
	cur, err := os.Lstat(orig)
	if err != nil {
		t.Fatal(err)
	}
	if _, n := inode(t, cur); n != 2 {
		t.Fatalf("nlink %d after a second Take, want 2", n)
	}
}

// SRS's hls_cleanup unlinks its name after Take: the bytes stay readable at the spooled name.
func TestTakeSurvivesCleanup(t *testing.T) {
	t.Parallel()
	sp, root := newSpool(t)
	want := bytes.Repeat([]byte("ts"), 4096)
	orig, fi := write(t, root, "live/livestream-0.ts", want)
	dst, err := sp.Take(orig, fi)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(orig); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatalf("spooled file after the original was deleted: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("spooled bytes differ")
	}
}

// A file that is gone before Take: an error wrapping roots.ErrNotExist, and nothing in the spool.
func TestTakeMissing(t *testing.T) {
	t.Parallel()
	sp, root := newSpool(t)
	orig, fi := write(t, root, "live/livestream-1.ts", []byte("x"))
	if err := os.Remove(orig); err != nil {
		t.Fatal(err)
	}
	dst, err := sp.Take(orig, fi)
	if !errors.Is(err, roots.ErrNotExist) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Take of a deleted file = %q, %v; want roots.ErrNotExist", dst, err)
	}
	if n := spoolFiles(t, sp, root); len(n) != 0 {
		t.Fatalf("spool holds %v", n)
	}
}

// SRS replaced the file under the same name between the hook's Lstat and Take: Take fails, and
// no link to the new file is left in the spool (neither under the old inode's name nor another).
func TestTakeReplaced(t *testing.T) {
	t.Parallel()
	sp, root := newSpool(t)
	orig, old := write(t, root, "live/livestream-2.ts", []byte("old"))
	// The new file is created while the old one exists, so it cannot get the old inode.
	tmp, _ := write(t, root, "live/livestream-2.ts.tmp", []byte("new file"))
	if err := os.Rename(tmp, orig); err != nil {
		t.Fatal(err)
	}
	dst, err := sp.Take(orig, old)
	if err == nil {
		t.Fatalf("Take of a replaced file gave %s", dst)
	}
	if files := spoolFiles(t, sp, root); len(files) != 0 {
		t.Fatalf("spool holds %v after a refused Take", files)
	}
	cur, err := os.Lstat(orig)
	if err != nil {
		t.Fatal(err)
	}
	if _, n := inode(t, cur); n != 1 {
		t.Fatalf("the new file has %d links, want 1", n)
	}
}

// Probe creates the spool folder of every root.
func TestProbe(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	rs, err := roots.New([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spool.New(rs, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Probe(); err != nil {
		t.Fatal(err)
	}
	for _, root := range rs.Dirs() {
		fi, err := os.Stat(sp.Root(root))
		if err != nil || !fi.IsDir() {
			t.Fatalf("spool folder of %s: %v", root, err)
		}
		entries, _ := os.ReadDir(sp.Root(root))
		if len(entries) != 0 {
			t.Fatalf("probe left %v", entries)
		}
	}
	// A folder that cannot be made is an error.
	if err := os.WriteFile(filepath.Join(rs.Dirs()[0], "blocked"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sp2, _ := spool.New(rs, "blocked")
	if err := sp2.Probe(); err == nil {
		t.Fatal("Probe succeeded where a file blocks the folder")
	}
}

// spoolFiles lists the files below the spool folder of root.
func spoolFiles(t *testing.T, sp *spool.Spool, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(sp.Root(root), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			out = append(out, strings.TrimPrefix(p, root))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
