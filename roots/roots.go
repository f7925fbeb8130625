// Package roots confines every file srs-offload reads or deletes to the folders the operator named.
//
// A path from a hook is joined to SRS's cwd, cleaned, checked lexically, resolved through symlinks
// and checked again; the worker re-checks at open time and opens with O_NOFOLLOW. Nothing outside a
// root is ever opened, and a root itself is never removed.
package roots

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

var (
	// ErrOutside means a path does not lie inside any root.
	ErrOutside = errors.New("outside every root")
	// ErrBadPath means a path is empty, relative without an absolute cwd, or holds a NUL byte.
	ErrBadPath = errors.New("bad path")
	// ErrNotRegular means the path names a directory, FIFO, device or socket.
	ErrNotRegular = errors.New("not a regular file")
	// ErrNotExist means the file does not exist. It wraps fs.ErrNotExist.
	ErrNotExist = fmt.Errorf("no such file: %w", fs.ErrNotExist)
	// ErrReplaced means Remove found another file under the name (SRS reused it).
	ErrReplaced = errors.New("the file was replaced after it was uploaded; keeping the new one")
)

// root is one configured folder: as written (cleaned) and with symlinks resolved.
type root struct{ clean, real string }

// Set is the list of roots.
type Set struct{ roots []root }

// New checks that every dir exists, is a readable directory, and is absolute.
func New(dirs []string) (*Set, error) {
	if len(dirs) == 0 {
		return nil, errors.New("no roots: name at least one folder SRS records into")
	}
	s := &Set{}
	for _, d := range dirs {
		if strings.IndexByte(d, 0) >= 0 || !filepath.IsAbs(d) {
			return nil, fmt.Errorf("root %q: must be an absolute path", d)
		}
		clean := filepath.Clean(d)
		real, err := filepath.EvalSymlinks(clean)
		if err != nil {
			return nil, fmt.Errorf("root %q: %w", d, err)
		}
		f, err := os.Open(real)
		if err != nil {
			return nil, fmt.Errorf("root %q: %w", d, err)
		}
		_, err = f.Readdirnames(1)
		f.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("root %q: not a readable directory: %w", d, err)
		}
		s.roots = append(s.roots, root{clean: clean, real: real})
	}
	return s, nil
}

// Dirs returns the roots with symlinks resolved.
func (s *Set) Dirs() []string {
	out := make([]string, len(s.roots))
	for i, r := range s.roots {
		out[i] = r.real
	}
	return out
}

func (s *Set) String() string { return strings.Join(s.Dirs(), ", ") }

// Join joins a hook's file to its cwd and cleans it, without touching the disk. It checks only
// that the result lies lexically inside a root.
func (s *Set) Join(cwd, file string) (string, error) {
	if file == "" || strings.IndexByte(file, 0) >= 0 || strings.IndexByte(cwd, 0) >= 0 {
		return "", fmt.Errorf("%w: %q", ErrBadPath, file)
	}
	p := file
	if !filepath.IsAbs(p) {
		if !filepath.IsAbs(cwd) {
			return "", fmt.Errorf("%w: file %q is relative and cwd %q is not absolute", ErrBadPath, file, cwd)
		}
		p = filepath.Join(cwd, p)
	}
	p = filepath.Clean(p)
	if _, ok := s.contains(p, true); !ok {
		return "", fmt.Errorf("file %q is %w (roots: %s)", p, ErrOutside, s)
	}
	return p, nil
}

// Resolve turns a hook's cwd and file into the real path of a regular file inside a root, and
// returns that file's Lstat.
func (s *Set) Resolve(cwd, file string) (string, fs.FileInfo, error) {
	p, err := s.Join(cwd, file)
	if err != nil {
		return "", nil, err
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil, fmt.Errorf("file %q: %w", p, ErrNotExist)
		}
		return "", nil, fmt.Errorf("file %q: %w", p, err)
	}
	if _, ok := s.contains(real, false); !ok {
		return "", nil, fmt.Errorf("file %q resolves to %q, which is %w (roots: %s)", p, real, ErrOutside, s)
	}
	fi, err := os.Lstat(real)
	if err != nil {
		return "", nil, fmt.Errorf("file %q: %w", real, err)
	}
	if !fi.Mode().IsRegular() {
		return "", nil, fmt.Errorf("file %q is a %s: %w", real, modeName(fi.Mode()), ErrNotRegular)
	}
	return real, fi, nil
}

// Open opens a resolved path for reading. It re-checks the roots, refuses a symlink in the last
// component (O_NOFOLLOW), never blocks on a FIFO (O_NONBLOCK), and checks the opened file is regular.
func (s *Set) Open(path string) (*os.File, fs.FileInfo, error) {
	p, err := s.Join("/", path)
	if err != nil {
		return nil, nil, err
	}
	_, want, err := s.Resolve("/", p)
	if err != nil {
		return nil, nil, err
	}
	// Open the path as given, not as resolved, so that O_NOFOLLOW sees a symlink in its last
	// component; then make sure it is the file that was checked.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, nil, fmt.Errorf("file %q: %w", p, ErrNotExist)
		case errors.Is(err, syscall.ELOOP):
			return nil, nil, fmt.Errorf("file %q is a symlink: %w", p, ErrNotRegular)
		}
		return nil, nil, fmt.Errorf("open %q: %w", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat %q: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("file %q is a %s: %w", p, modeName(fi.Mode()), ErrNotRegular)
	}
	if !os.SameFile(fi, want) {
		f.Close()
		return nil, nil, fmt.Errorf("file %q changed while it was being opened", p)
	}
	return f, fi, nil
}

// Remove deletes the file at path if it is still the same file as want (same device and inode),
// then removes the folders this leaves empty, up to but never including the root. A file that
// was replaced since (SRS reusing a name) is left alone and reported.
func (s *Set) Remove(path string, want fs.FileInfo) error {
	path = filepath.Clean(path)
	r, ok := s.contains(path, false)
	if !ok {
		return fmt.Errorf("remove %q: %w (roots: %s)", path, ErrOutside, s)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove %q: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("remove %q: a %s: %w", path, modeName(fi.Mode()), ErrNotRegular)
	}
	if !os.SameFile(fi, want) {
		return fmt.Errorf("remove %q: %w", path, ErrReplaced)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %q: %w", path, err)
	}
	for dir := filepath.Dir(path); dir != r.real && strings.HasPrefix(dir, r.real+string(filepath.Separator)) && !s.isRoot(dir); dir = filepath.Dir(dir) {
		// rmdir fails on a folder that is not empty, which is where we stop.
		if err := syscall.Rmdir(dir); err != nil {
			break
		}
	}
	return nil
}

// Rel returns p relative to the root it lies in.
func (s *Set) Rel(p string) (string, bool) {
	_, rel, ok := s.Split(p)
	return rel, ok
}

// Split returns the root p lies in (in the form p uses: resolved or as written) and p relative
// to it. With nested roots, the innermost root is taken.
func (s *Set) Split(p string) (root, rel string, ok bool) {
	p = filepath.Clean(p)
	for _, r := range s.roots {
		for _, base := range []string{r.real, r.clean} {
			if within(p, base) && len(base) > len(root) {
				root = base
			}
		}
	}
	if root == "" {
		return "", "", false
	}
	rel, err := filepath.Rel(root, p)
	return root, rel, err == nil
}

// contains returns the root p lies in. Lexical checks accept either the written or the resolved
// form of a root; checks after symlink resolution accept only the resolved form.
func (s *Set) contains(p string, lexical bool) (root, bool) {
	for _, r := range s.roots {
		if within(p, r.real) || (lexical && within(p, r.clean)) {
			return r, true
		}
	}
	return root{}, false
}

// isRoot reports whether dir is one of the roots (resolved form); with nested roots, pruning
// below one root must not remove another.
func (s *Set) isRoot(dir string) bool {
	for _, r := range s.roots {
		if dir == r.real {
			return true
		}
	}
	return false
}

// within is a separator-aware prefix check: /data/hls-evil is not within /data/hls.
func within(p, dir string) bool {
	if p == dir {
		return true
	}
	if dir == string(filepath.Separator) {
		return strings.HasPrefix(p, dir)
	}
	return strings.HasPrefix(p, dir+string(filepath.Separator))
}

func modeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "non-regular file"
}
