package roots_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/srs-offload/srs-offload/roots"
)

// tree is a scratch layout:
//
//	base/hls/                    the root (real form)
//	base/hls/live/a.ts           a segment
//	base/hls/live/b.ts           another segment
//	base/hls/live/sub/           a folder
//	base/hls/live/fifo           a FIFO
//	base/hls/live/in.ts          -> a.ts (symlink inside the root)
//	base/hls/live/in-fifo.ts     -> fifo
//	base/hls/live/dangling.ts    -> nowhere.ts
//	base/hls/live/out-file.ts    -> base/outside/secret.ts
//	base/hls/live/out-dir        -> base/outside/dir
//	base/hls-evil/a.ts           a sibling sharing the root's prefix
//	base/outside/secret.ts
//	base/outside/dir/x.ts
//	base/link                    -> base/hls (a root configured through a symlink)
type tree struct {
	base, root, evil, outside, link string
}

func newTree(t *testing.T) tree {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tr := tree{
		base:    base,
		root:    filepath.Join(base, "hls"),
		evil:    filepath.Join(base, "hls-evil"),
		outside: filepath.Join(base, "outside"),
		link:    filepath.Join(base, "link"),
	}
	for _, d := range []string{
		filepath.Join(tr.root, "live", "sub"),
		tr.evil,
		filepath.Join(tr.outside, "dir"),
	} {
		mkdir(t, d)
	}
	write(t, filepath.Join(tr.root, "live", "a.ts"), "segment a")
	write(t, filepath.Join(tr.root, "live", "b.ts"), "segment b")
	write(t, filepath.Join(tr.evil, "a.ts"), "evil")
	write(t, filepath.Join(tr.outside, "secret.ts"), "secret")
	write(t, filepath.Join(tr.outside, "dir", "x.ts"), "outside x")
	if err := syscall.Mkfifo(filepath.Join(tr.root, "live", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	symlink(t, "a.ts", filepath.Join(tr.root, "live", "in.ts"))
	symlink(t, "fifo", filepath.Join(tr.root, "live", "in-fifo.ts"))
	symlink(t, "nowhere.ts", filepath.Join(tr.root, "live", "dangling.ts"))
	symlink(t, filepath.Join(tr.outside, "secret.ts"), filepath.Join(tr.root, "live", "out-file.ts"))
	symlink(t, filepath.Join(tr.outside, "dir"), filepath.Join(tr.root, "live", "out-dir"))
	symlink(t, tr.root, tr.link)
	return tr
}

func (tr tree) in(parts ...string) string {
	return filepath.Join(append([]string{tr.root}, parts...)...)
}

func mkdir(t *testing.T, d string) {
	t.Helper()
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p, body string) {
	t.Helper()
	mkdir(t, filepath.Dir(p))
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func newSet(t *testing.T, dirs ...string) *roots.Set {
	t.Helper()
	s, err := roots.New(dirs)
	if err != nil {
		t.Fatalf("New(%q): %v", dirs, err)
	}
	return s
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// noBlock runs f and fails the test if it has not returned within a few seconds (a FIFO opened
// for reading without O_NONBLOCK would wait for a writer forever).
func noBlock(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s blocked", what)
	}
}

func TestResolve(t *testing.T) {
	tr := newTree(t)
	plain := newSet(t, tr.root)
	viaLink := newSet(t, tr.link)
	a := tr.in("live", "a.ts")

	tests := []struct {
		name      string
		set       *roots.Set
		cwd, file string
		want      string // the real path, when no error
		wantErr   error
	}{
		{name: "absolute file inside", set: plain, cwd: "/", file: a, want: a},
		{name: "absolute file ignores cwd", set: plain, cwd: "relative/cwd", file: a, want: a},
		{name: "relative file joined to cwd", set: plain, cwd: tr.root, file: "live/a.ts", want: a},
		{name: "relative file with ./ joined to cwd", set: plain, cwd: tr.root, file: "./live/a.ts", want: a},
		{name: "cwd outside root, file inside", set: plain, cwd: tr.base, file: "hls/live/a.ts", want: a},
		{name: "cwd with trailing slash", set: plain, cwd: tr.root + "/", file: "live/a.ts", want: a},
		{name: "double slashes", set: plain, cwd: "/", file: tr.root + "//live//a.ts", want: a},
		{name: "dot-dot that stays inside", set: plain, cwd: tr.root, file: "live/sub/../a.ts", want: a},
		{name: "dot-dot escapes to outside", set: plain, cwd: tr.root, file: "../outside/secret.ts", wantErr: roots.ErrOutside},
		{name: "dot-dot escapes from deep", set: plain, cwd: tr.in("live"), file: "../../outside/secret.ts", wantErr: roots.ErrOutside},
		{name: "dot-dot in absolute file", set: plain, cwd: "/", file: tr.root + "/live/../../outside/secret.ts", wantErr: roots.ErrOutside},
		{name: "dot-dot to a missing file outside", set: plain, cwd: tr.root, file: "../nope.ts", wantErr: roots.ErrOutside},
		{name: "absolute outside every root", set: plain, cwd: "/", file: filepath.Join(tr.outside, "secret.ts"), wantErr: roots.ErrOutside},
		{name: "absolute system file", set: plain, cwd: "/", file: "/etc/passwd", wantErr: roots.ErrOutside},
		{name: "sibling sharing the root's prefix", set: plain, cwd: "/", file: filepath.Join(tr.evil, "a.ts"), wantErr: roots.ErrOutside},
		{name: "sibling via relative path", set: plain, cwd: tr.root, file: "../hls-evil/a.ts", wantErr: roots.ErrOutside},
		{name: "symlink to a file outside", set: plain, cwd: "/", file: tr.in("live", "out-file.ts"), wantErr: roots.ErrOutside},
		{name: "file through a symlinked dir outside", set: plain, cwd: "/", file: tr.in("live", "out-dir", "x.ts"), wantErr: roots.ErrOutside},
		{name: "symlink to a dir outside", set: plain, cwd: "/", file: tr.in("live", "out-dir"), wantErr: roots.ErrOutside},
		{name: "symlink to a file inside resolves", set: plain, cwd: "/", file: tr.in("live", "in.ts"), want: a},
		{name: "dangling symlink inside", set: plain, cwd: "/", file: tr.in("live", "dangling.ts"), wantErr: roots.ErrNotExist},
		{name: "missing file", set: plain, cwd: "/", file: tr.in("live", "missing.ts"), wantErr: roots.ErrNotExist},
		{name: "missing folder", set: plain, cwd: "/", file: tr.in("gone", "missing.ts"), wantErr: roots.ErrNotExist},
		{name: "NUL in file", set: plain, cwd: "/", file: a + "\x00.ts", wantErr: roots.ErrBadPath},
		{name: "NUL in relative file", set: plain, cwd: tr.root, file: "live/a.ts\x00", wantErr: roots.ErrBadPath},
		{name: "NUL in cwd", set: plain, cwd: tr.root + "\x00", file: "live/a.ts", wantErr: roots.ErrBadPath},
		{name: "NUL in cwd with absolute file", set: plain, cwd: "/\x00", file: a, wantErr: roots.ErrBadPath},
		{name: "empty file", set: plain, cwd: tr.root, file: "", wantErr: roots.ErrBadPath},
		{name: "relative file, relative cwd", set: plain, cwd: "objs/nginx/html", file: "live/a.ts", wantErr: roots.ErrBadPath},
		{name: "relative file, empty cwd", set: plain, cwd: "", file: "live/a.ts", wantErr: roots.ErrBadPath},
		{name: "relative file, dot cwd", set: plain, cwd: ".", file: "live/a.ts", wantErr: roots.ErrBadPath},
		{name: "directory", set: plain, cwd: "/", file: tr.in("live", "sub"), wantErr: roots.ErrNotRegular},
		{name: "the root itself", set: plain, cwd: "/", file: tr.root, wantErr: roots.ErrNotRegular},
		{name: "the root with a trailing slash", set: plain, cwd: tr.root, file: "./", wantErr: roots.ErrNotRegular},
		{name: "FIFO", set: plain, cwd: "/", file: tr.in("live", "fifo"), wantErr: roots.ErrNotRegular},
		{name: "symlink to a FIFO", set: plain, cwd: "/", file: tr.in("live", "in-fifo.ts"), wantErr: roots.ErrNotRegular},
		{name: "symlinked root, configured form", set: viaLink, cwd: "/", file: filepath.Join(tr.link, "live", "a.ts"), want: a},
		{name: "symlinked root, configured form, relative", set: viaLink, cwd: tr.link, file: "live/a.ts", want: a},
		{name: "symlinked root, real form", set: viaLink, cwd: "/", file: a, want: a},
		{name: "symlinked root, symlink inside", set: viaLink, cwd: "/", file: filepath.Join(tr.link, "live", "in.ts"), want: a},
		{name: "symlinked root, escape via dot-dot", set: viaLink, cwd: tr.link, file: "../outside/secret.ts", wantErr: roots.ErrOutside},
		{name: "symlinked root, symlink out", set: viaLink, cwd: "/", file: filepath.Join(tr.link, "live", "out-file.ts"), wantErr: roots.ErrOutside},
		{name: "symlinked root, the link itself", set: viaLink, cwd: "/", file: tr.link, wantErr: roots.ErrNotRegular},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				got string
				fi  fs.FileInfo
				err error
			)
			noBlock(t, "Resolve", func() { got, fi, err = tc.set.Resolve(tc.cwd, tc.file) })
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Resolve(%q, %q) = %q, %v; want error %v", tc.cwd, tc.file, got, err, tc.wantErr)
				}
				for _, other := range []error{roots.ErrOutside, roots.ErrBadPath, roots.ErrNotRegular, roots.ErrNotExist} {
					if other != tc.wantErr && errors.Is(err, other) {
						t.Errorf("error %v is also %v", err, other)
					}
				}
				if got != "" || fi != nil {
					t.Errorf("error came with a result: %q, %v", got, fi)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q, %q): %v", tc.cwd, tc.file, err)
			}
			if got != tc.want {
				t.Errorf("Resolve(%q, %q) = %q, want %q", tc.cwd, tc.file, got, tc.want)
			}
			if fi == nil || !fi.Mode().IsRegular() {
				t.Fatalf("FileInfo %v is not a regular file", fi)
			}
			want, err := os.Lstat(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if !os.SameFile(fi, want) {
				t.Errorf("FileInfo is not the file at %q", tc.want)
			}
		})
	}
}

func TestErrNotExistWrapsFS(t *testing.T) {
	tr := newTree(t)
	_, _, err := newSet(t, tr.root).Resolve("/", tr.in("missing.ts"))
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, roots.ErrNotExist) {
		t.Fatalf("err = %v, want both fs.ErrNotExist and roots.ErrNotExist", err)
	}
}

func TestJoin(t *testing.T) {
	tr := newTree(t)
	plain := newSet(t, tr.root)
	viaLink := newSet(t, tr.link)
	tests := []struct {
		name      string
		set       *roots.Set
		cwd, file string
		want      string
		wantErr   error
	}{
		{"relative", plain, tr.root, "live/a.ts", tr.in("live", "a.ts"), nil},
		// Join does not touch the disk: a missing file, a FIFO or a symlink out pass.
		{"missing file", plain, tr.root, "live/nope.ts", tr.in("live", "nope.ts"), nil},
		{"symlink out is lexically inside", plain, "/", tr.in("live", "out-file.ts"), tr.in("live", "out-file.ts"), nil},
		{"cleans", plain, "/", tr.root + "//live/./sub/../a.ts", tr.in("live", "a.ts"), nil},
		{"root itself", plain, "/", tr.root, tr.root, nil},
		{"keeps the configured form", viaLink, tr.link, "live/a.ts", filepath.Join(tr.link, "live", "a.ts"), nil},
		{"escape", plain, tr.root, "../outside/secret.ts", "", roots.ErrOutside},
		{"sibling", plain, "/", tr.evil + "/a.ts", "", roots.ErrOutside},
		{"parent of root", plain, "/", tr.base, "", roots.ErrOutside},
		{"NUL", plain, "/", tr.root + "/a\x00.ts", "", roots.ErrBadPath},
		{"relative cwd", plain, "x", "a.ts", "", roots.ErrBadPath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.set.Join(tc.cwd, tc.file)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Join = %q, %v; want %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Join = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	tr := newTree(t)
	s := newSet(t, tr.root)
	a := tr.in("live", "a.ts")

	t.Run("regular file", func(t *testing.T) {
		f, fi, err := s.Open(a)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil || string(b) != "segment a" {
			t.Fatalf("read %q, %v", b, err)
		}
		if fi.Size() != int64(len("segment a")) || !fi.Mode().IsRegular() {
			t.Errorf("FileInfo: size %d, mode %v", fi.Size(), fi.Mode())
		}
	})

	t.Run("configured symlinked root", func(t *testing.T) {
		f, _, err := newSet(t, tr.link).Open(filepath.Join(tr.link, "live", "a.ts"))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	})

	errCases := []struct {
		name    string
		path    string
		wantErr error
	}{
		{"missing", tr.in("live", "nope.ts"), roots.ErrNotExist},
		{"outside", filepath.Join(tr.outside, "secret.ts"), roots.ErrOutside},
		{"sibling", filepath.Join(tr.evil, "a.ts"), roots.ErrOutside},
		{"dot-dot", tr.root + "/../outside/secret.ts", roots.ErrOutside},
		// The last component is never followed, so where a symlink points is not looked at.
		{"symlink out", tr.in("live", "out-file.ts"), roots.ErrNotRegular},
		{"directory", tr.in("live", "sub"), roots.ErrNotRegular},
		{"root", tr.root, roots.ErrNotRegular},
		{"FIFO", tr.in("live", "fifo"), roots.ErrNotRegular},
		{"symlink to FIFO", tr.in("live", "in-fifo.ts"), roots.ErrNotRegular},
		{"symlink in last component", tr.in("live", "in.ts"), roots.ErrNotRegular},
		{"relative", "live/a.ts", roots.ErrOutside},
		{"NUL", a + "\x00", roots.ErrBadPath},
		{"empty", "", roots.ErrBadPath},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			var (
				f   *os.File
				err error
			)
			noBlock(t, "Open", func() { f, _, err = s.Open(tc.path) })
			if f != nil {
				f.Close()
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Open(%q): %v, want %v", tc.path, err, tc.wantErr)
			}
			if f != nil {
				t.Error("an error came with an open file")
			}
		})
	}

	// The hook resolved a real path; before the worker opens it, the last component is swapped
	// for a symlink. O_NOFOLLOW must refuse it, whether it points inside the root or out.
	for _, target := range []string{tr.in("live", "b.ts"), filepath.Join(tr.outside, "secret.ts")} {
		t.Run("swapped to symlink to "+filepath.Base(filepath.Dir(target)), func(t *testing.T) {
			p := tr.in("live", "swap-"+filepath.Base(filepath.Dir(target))+".ts")
			write(t, p, "original")
			real, _, err := s.Resolve("/", p)
			if err != nil || real != p {
				t.Fatalf("Resolve = %q, %v", real, err)
			}
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			symlink(t, target, p)
			f, _, err := s.Open(real)
			if err == nil {
				b, _ := io.ReadAll(f)
				f.Close()
				t.Fatalf("Open followed the swapped symlink and read %q", b)
			}
			if !errors.Is(err, roots.ErrNotRegular) && !errors.Is(err, roots.ErrOutside) {
				t.Errorf("err = %v, want ErrNotRegular or ErrOutside", err)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	lstat := func(t *testing.T, p string) fs.FileInfo {
		t.Helper()
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}

	t.Run("prunes empty folders up to the root", func(t *testing.T) {
		tr := newTree(t)
		s := newSet(t, tr.root)
		p := tr.in("app", "stream", "2024", "seg.ts")
		write(t, p, "x")
		if err := s.Remove(p, lstat(t, p)); err != nil {
			t.Fatal(err)
		}
		for _, gone := range []string{p, tr.in("app", "stream", "2024"), tr.in("app", "stream"), tr.in("app")} {
			if exists(gone) {
				t.Errorf("%s still exists", gone)
			}
		}
		if !exists(tr.root) || !exists(tr.in("live", "a.ts")) {
			t.Error("the root or its other files went away")
		}
	})

	t.Run("never removes an empty root", func(t *testing.T) {
		tr := newTree(t)
		root := filepath.Join(tr.base, "only")
		p := filepath.Join(root, "seg.ts")
		write(t, p, "x")
		s := newSet(t, root)
		if err := s.Remove(p, lstat(t, p)); err != nil {
			t.Fatal(err)
		}
		if exists(p) {
			t.Error("file still exists")
		}
		if !exists(root) {
			t.Fatal("the root was removed")
		}
		// Asked to remove the (now empty) root itself, it refuses.
		if err := s.Remove(root, lstat(t, root)); err == nil {
			t.Error("Remove(root) succeeded")
		}
		if !exists(root) {
			t.Fatal("the root was removed")
		}
	})

	t.Run("stops at a non-empty folder", func(t *testing.T) {
		tr := newTree(t)
		s := newSet(t, tr.root)
		p := tr.in("app", "s1", "seg.ts")
		keep := tr.in("app", "s2", "seg.ts")
		write(t, p, "x")
		write(t, keep, "y")
		if err := s.Remove(p, lstat(t, p)); err != nil {
			t.Fatal(err)
		}
		if exists(tr.in("app", "s1")) {
			t.Error("empty folder s1 was kept")
		}
		if !exists(keep) || !exists(tr.in("app")) {
			t.Error("removed a non-empty folder or a file it was not asked to")
		}
	})

	t.Run("keeps a sibling file in the same folder", func(t *testing.T) {
		tr := newTree(t)
		s := newSet(t, tr.root)
		a := tr.in("live", "a.ts")
		if err := s.Remove(a, lstat(t, a)); err != nil {
			t.Fatal(err)
		}
		if exists(a) || !exists(tr.in("live", "b.ts")) {
			t.Error("wrong files removed")
		}
	})

	t.Run("does not prune into another root nested inside", func(t *testing.T) {
		tr := newTree(t)
		inner := tr.in("dvr")
		p := filepath.Join(inner, "app", "rec.flv")
		write(t, p, "x")
		s := newSet(t, tr.root, inner)
		if err := s.Remove(p, lstat(t, p)); err != nil {
			t.Fatal(err)
		}
		if exists(filepath.Join(inner, "app")) {
			t.Error("empty folder kept")
		}
		if !exists(inner) {
			t.Fatal("removed the nested root")
		}
	})

	t.Run("refuses a replaced file", func(t *testing.T) {
		tr := newTree(t)
		s := newSet(t, tr.root)
		p := tr.in("live", "reused.ts")
		write(t, p, "old")
		old := lstat(t, p)
		// Create the new file while the old one still exists, so it cannot reuse the inode.
		tmp := tr.in("live", "reused.ts.tmp")
		write(t, tmp, "new")
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
		if os.SameFile(old, lstat(t, p)) {
			t.Fatal("test setup: the new file has the old inode")
		}
		if err := s.Remove(p, old); err == nil {
			t.Fatal("Remove deleted a replaced file")
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != "new" {
			t.Fatalf("the new file is gone or changed: %q, %v", b, err)
		}
	})

	t.Run("refuses a file swapped for a symlink", func(t *testing.T) {
		tr := newTree(t)
		s := newSet(t, tr.root)
		p := tr.in("live", "a.ts")
		fi := lstat(t, p)
		// Make the symlink while the file still exists, so it cannot reuse the inode.
		tmp := tr.in("live", "a.ts.tmp")
		symlink(t, "b.ts", tmp)
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(p, fi); err == nil {
			t.Fatal("Remove deleted a symlink that replaced the file")
		}
		if !exists(p) || !exists(tr.in("live", "b.ts")) {
			t.Error("files removed")
		}
	})

	t.Run("already gone is not an error", func(t *testing.T) {
		tr := newTree(t)
		s := newSet(t, tr.root)
		p := tr.in("live", "a.ts")
		fi := lstat(t, p)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(p, fi); err != nil {
			t.Fatalf("Remove of a missing file: %v", err)
		}
	})

	outside := []struct {
		name string
		path func(tr tree) string
	}{
		{"outside", func(tr tree) string { return filepath.Join(tr.outside, "secret.ts") }},
		{"sibling prefix", func(tr tree) string { return filepath.Join(tr.evil, "a.ts") }},
		{"dot-dot", func(tr tree) string { return tr.root + "/../outside/secret.ts" }},
		{"dot-dot to sibling", func(tr tree) string { return tr.root + "/live/../../hls-evil/a.ts" }},
	}
	for _, tc := range outside {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			tr := newTree(t)
			s := newSet(t, tr.root)
			p := tc.path(tr)
			fi := lstat(t, p)
			err := s.Remove(p, fi)
			if !errors.Is(err, roots.ErrOutside) {
				t.Fatalf("Remove(%q) = %v, want ErrOutside", p, err)
			}
			if !exists(p) {
				t.Fatalf("Remove deleted %q", p)
			}
		})
	}
}

func TestRel(t *testing.T) {
	tr := newTree(t)
	plain := newSet(t, tr.root)
	viaLink := newSet(t, tr.link)
	tests := []struct {
		name string
		set  *roots.Set
		p    string
		want string
		ok   bool
	}{
		{"inside", plain, tr.in("live", "a.ts"), "live/a.ts", true},
		{"root itself", plain, tr.root, ".", true},
		{"outside", plain, filepath.Join(tr.outside, "secret.ts"), "", false},
		{"sibling prefix", plain, filepath.Join(tr.evil, "a.ts"), "", false},
		{"dot-dot", plain, tr.root + "/../outside/secret.ts", "", false},
		{"relative", plain, "live/a.ts", "", false},
		{"symlinked root, configured form", viaLink, filepath.Join(tr.link, "live", "a.ts"), "live/a.ts", true},
		{"symlinked root, real form", viaLink, tr.in("live", "a.ts"), "live/a.ts", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.set.Rel(tc.p)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("Rel(%q) = %q, %v; want %q, %v", tc.p, got, ok, tc.want, tc.ok)
			}
		})
	}

	t.Run("second root", func(t *testing.T) {
		s := newSet(t, tr.evil, tr.root)
		if got, ok := s.Rel(tr.in("live", "a.ts")); !ok || got != "live/a.ts" {
			t.Fatalf("Rel = %q, %v", got, ok)
		}
		if got, ok := s.Rel(filepath.Join(tr.evil, "a.ts")); !ok || got != "a.ts" {
			t.Fatalf("Rel = %q, %v", got, ok)
		}
	})
}

func TestNew(t *testing.T) {
	tr := newTree(t)
	file := filepath.Join(tr.outside, "secret.ts")

	bad := []struct {
		name string
		dirs []string
		want string // a piece of the error message
	}{
		{"no roots", nil, "no roots"},
		{"relative", []string{"objs/nginx/html"}, "absolute"},
		{"dot", []string{"."}, "absolute"},
		{"empty", []string{""}, "absolute"},
		{"NUL", []string{tr.root + "\x00"}, "absolute"},
		{"missing", []string{filepath.Join(tr.base, "missing")}, "missing"},
		{"dangling symlink", []string{tr.in("live", "dangling.ts")}, "dangling.ts"},
		{"a file", []string{file}, "not a readable directory"},
		{"symlink to a file", []string{tr.in("live", "in.ts")}, "not a readable directory"},
		{"one good, one bad", []string{tr.root, filepath.Join(tr.base, "missing")}, "missing"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			s, err := roots.New(tc.dirs)
			if err == nil {
				t.Fatalf("New(%q) = %v, want an error", tc.dirs, s)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	t.Run("missing is ErrNotExist", func(t *testing.T) {
		_, err := roots.New([]string{filepath.Join(tr.base, "missing")})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("good", func(t *testing.T) {
		empty := filepath.Join(tr.base, "empty")
		mkdir(t, empty)
		s, err := roots.New([]string{tr.root + "/", tr.link, empty})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{tr.root, tr.root, empty}
		got := s.Dirs()
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("Dirs() = %q, want %q", got, want)
		}
		if s.String() != strings.Join(want, ", ") {
			t.Errorf("String() = %q", s.String())
		}
	})
}
