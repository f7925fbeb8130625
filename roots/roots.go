// Package roots confines every file srs-offload reads, links or deletes to the folders the
// operator named, with the kernel's help rather than by string checks.
//
// Each root is held open twice from start to end: as an *os.Root, through which names are looked
// up beneath the root (os.Root refuses any name or symlink that leads out of it), and as a folder
// descriptor from which the operations that change the disk walk down one folder at a time with
// O_NOFOLLOW. The kernel resolves every name at the moment of use, relative to a descriptor
// inside the root, so a folder swapped for a symlink between a check and its use cannot lead out.
//
// Symlinks: a hook's path is resolved once (Resolve), and symlinks that stay inside the root are
// followed there, so a hook, the watcher and the worker all use one real name for a file. After
// that no operation follows a symlink in the last component of a name (a file is never a
// symlink), and Remove, Link and MkdirAll follow none at all, in any folder: a folder that became
// a symlink is refused with ErrSymlink and nothing is changed. Open follows folder symlinks that
// stay inside the root (as os.Root does), never one that leaves it. A root itself is never removed.
package roots

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/srs-offload/srs-offload/fileid"
)

var (
	// ErrOutside means a path does not lie inside any root, or a symlink on it leads out.
	ErrOutside = errors.New("outside every root")
	// ErrBadPath means a path is empty, relative without an absolute cwd, or holds a NUL byte.
	ErrBadPath = errors.New("bad path")
	// ErrNotRegular means the path names a directory, symlink, FIFO, device or socket.
	ErrNotRegular = errors.New("not a regular file")
	// ErrNotExist means the file does not exist. It wraps fs.ErrNotExist.
	ErrNotExist = fmt.Errorf("no such file: %w", fs.ErrNotExist)
	// ErrReplaced means Remove found another file under the name (SRS reused it).
	ErrReplaced = errors.New("the file was replaced after it was uploaded; keeping the new one")
	// ErrSymlink means a folder on a path is a symlink or not a folder, where srs-offload follows
	// none (Remove, Link, MkdirAll): someone swapped a folder for a symlink. Nothing was changed.
	ErrSymlink = errors.New("a folder on the path is a symlink or not a folder; srs-offload does not follow it")
)

// maxLinks bounds the symlinks Resolve follows for one path, as the kernel does (ELOOP).
const maxLinks = 40

// root is one configured folder: as written (cleaned), with symlinks resolved, and held open.
type root struct {
	clean, real string
	dir         *os.Root // lookups beneath the root
	fd          int      // the root folder, where walks without symlinks start
}

// Set is the list of roots. Its methods are safe for concurrent use.
type Set struct {
	roots []root

	mu   sync.RWMutex
	kept map[string]bool // folders, relative to every root, that pruning never removes

	pruneMu  sync.Mutex
	deferred int                 // DeferPruning calls not yet undone: Remove leaves folders to Prune
	emptied  map[string]struct{} // folders (resolved, absolute) a deferred Remove removed a file from
}

// New checks that every dir exists, is a readable directory, and is absolute, and opens it.
func New(dirs []string) (*Set, error) {
	if len(dirs) == 0 {
		return nil, errors.New("no roots: name at least one folder SRS records into")
	}
	s := &Set{}
	for _, d := range dirs {
		r, err := open(d)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.roots = append(s.roots, r)
	}
	return s, nil
}

func open(d string) (root, error) {
	if strings.IndexByte(d, 0) >= 0 || !filepath.IsAbs(d) {
		return root{}, fmt.Errorf("root %q: must be an absolute path", d)
	}
	clean := filepath.Clean(d)
	real, err := filepath.EvalSymlinks(clean)
	if err != nil {
		return root{}, fmt.Errorf("root %q: %w", d, err)
	}
	f, err := os.Open(real)
	if err != nil {
		return root{}, fmt.Errorf("root %q: %w", d, err)
	}
	_, err = f.Readdirnames(1)
	f.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return root{}, fmt.Errorf("root %q: not a readable directory: %w", d, err)
	}
	dir, err := os.OpenRoot(real)
	if err != nil {
		return root{}, fmt.Errorf("root %q: %w", d, err)
	}
	fd, err := unix.Open(real, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		dir.Close()
		return root{}, fmt.Errorf("root %q: %w", d, err)
	}
	return root{clean: clean, real: real, dir: dir, fd: fd}, nil
}

// Close releases the roots' descriptors. No operation may run then, nor after.
func (s *Set) Close() error {
	for _, r := range s.roots {
		r.dir.Close()
		unix.Close(r.fd)
	}
	s.roots = nil
	return nil
}

// Keep names a folder, relative to every root (the spool folder), that pruning never removes.
func (s *Set) Keep(rel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kept == nil {
		s.kept = map[string]bool{}
	}
	s.kept[filepath.Clean(rel)] = true
}

func (s *Set) isKept(rel string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.kept[rel]
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
	if _, _, ok := s.find(p); !ok {
		return "", fmt.Errorf("file %q is %w (roots: %s)", p, ErrOutside, s)
	}
	return p, nil
}

// Resolve turns a hook's cwd and file into the real path of a regular file inside a root, and
// returns that file's Lstat. Symlinks are resolved beneath the root (os.Root); one that leads out
// of it is ErrOutside, and nothing outside the root is looked at.
func (s *Set) Resolve(cwd, file string) (string, fs.FileInfo, error) {
	p, err := s.Join(cwd, file)
	if err != nil {
		return "", nil, err
	}
	r, rel, _ := s.find(p)
	real, fi, err := r.resolve(rel)
	if err != nil {
		return "", nil, fmt.Errorf("file %q: %w", p, err)
	}
	abs := filepath.Join(r.real, real)
	if !fi.Mode().IsRegular() {
		return "", nil, fmt.Errorf("file %q is a %s: %w", abs, modeName(fi.Mode()), ErrNotRegular)
	}
	return abs, fi, nil
}

// Open opens a file inside a root for reading. Its folders are looked up beneath the root
// (symlinks that stay inside are followed), the file itself is opened with O_NOFOLLOW (a symlink
// is ErrNotRegular) and O_NONBLOCK (a FIFO never blocks), and must be a regular file.
func (s *Set) Open(path string) (*os.File, fs.FileInfo, error) {
	p, err := s.Join("/", path)
	if err != nil {
		return nil, nil, err
	}
	r, rel, _ := s.find(p)
	if rel == "." {
		return nil, nil, fmt.Errorf("file %q is a directory: %w", p, ErrNotRegular)
	}
	dir, _, err := r.resolve(filepath.Dir(rel))
	if err != nil {
		return nil, nil, fmt.Errorf("file %q: %w", p, err)
	}
	fds, err := r.openDirs(dir, false)
	if err != nil {
		return nil, nil, fmt.Errorf("file %q: %w", p, err)
	}
	defer closeAll(fds)
	fd, err := openat(fds[len(fds)-1], filepath.Base(rel), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return nil, nil, fmt.Errorf("file %q: %w", p, ErrNotExist)
		case errors.Is(err, unix.ELOOP):
			return nil, nil, fmt.Errorf("file %q is a symlink: %w", p, ErrNotRegular)
		}
		return nil, nil, fmt.Errorf("open %q: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat %q: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("file %q is a %s: %w", p, modeName(fi.Mode()), ErrNotRegular)
	}
	return f, fi, nil
}

// Lstat returns the Lstat of a path inside a root, looked up beneath the root (folder symlinks
// that stay inside are followed; the last component is not).
func (s *Set) Lstat(path string) (fs.FileInfo, error) {
	p, err := s.Join("/", path)
	if err != nil {
		return nil, err
	}
	r, rel, _ := s.find(p)
	fi, err := r.dir.Lstat(rel)
	if err != nil {
		return nil, fmt.Errorf("lstat %q: %w", p, lookupErr(err))
	}
	return fi, nil
}

// WalkDir walks the tree at dir (inside a root) as fs.WalkDir does, but reads every folder
// beneath the root (os.Root) and gives absolute paths in the form dir uses. An entry's Info is
// its Lstat through the root. Symlinks are reported, never followed.
func (s *Set) WalkDir(dir string, fn fs.WalkDirFunc) error {
	p, err := s.Join("/", dir)
	if err != nil {
		return err
	}
	r, rel, _ := s.find(p)
	base := strings.TrimSuffix(p, rel)
	if rel == "." {
		base = p
	}
	abs := func(name string) string {
		if name == "." {
			return p
		}
		return filepath.Join(base, name)
	}
	return fs.WalkDir(r.dir.FS(), filepath.ToSlash(rel), func(name string, d fs.DirEntry, err error) error {
		if d != nil {
			d = entry{DirEntry: d, dir: r.dir, rel: name}
		}
		if err != nil {
			err = lookupErr(err)
		}
		return fn(abs(name), d, err)
	})
}

// entry is a DirEntry whose Info is an Lstat through the root, not through a path from /.
type entry struct {
	fs.DirEntry
	dir *os.Root
	rel string
}

func (e entry) Info() (fs.FileInfo, error) { return e.dir.Lstat(e.rel) }

// Remove deletes the file at path if it is still the same file as want (same device and inode),
// then removes the folders this leaves empty, up to but never including the root or a folder
// named with Keep (while pruning is deferred, Prune removes them later). A file that was replaced since (SRS reusing a name) is left alone and
// reported. No symlink is followed: every folder is opened from the root down with O_NOFOLLOW,
// and the file is checked and unlinked relative to its folder's descriptor.
func (s *Set) Remove(path string, want fs.FileInfo) error {
	p := filepath.Clean(path)
	r, rel, ok := s.find(p)
	if !ok || !filepath.IsAbs(path) {
		return fmt.Errorf("remove %q: %w (roots: %s)", p, ErrOutside, s)
	}
	if rel == "." {
		return fmt.Errorf("remove %q: a root is never removed: %w", p, ErrNotRegular)
	}
	dirs := splitRel(filepath.Dir(rel))
	fds, err := r.openDirs(filepath.Dir(rel), false)
	if errors.Is(err, ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %q: %w", p, err)
	}
	defer closeAll(fds)
	dirfd, name := fds[len(fds)-1], filepath.Base(rel)
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("remove %q: %w", p, err)
	}
	mode := fs.FileMode(st.Mode & unix.S_IFMT)
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("remove %q: a %s: %w", p, modeName(unixMode(mode)), ErrNotRegular)
	}
	if !sameFile(&st, want) {
		return fmt.Errorf("remove %q: %w", p, ErrReplaced)
	}
	if err := unix.Unlinkat(dirfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %q: %w", p, err)
	}
	if s.deferPrune(r, filepath.Dir(rel)) {
		return nil
	}
	s.pruneUp(r, fds, dirs)
	return nil
}

// pruneUp removes the folders dirs (a path below r, fds their descriptors after r's own) from
// the deepest up while they are empty, never the root or a folder named with Keep.
func (s *Set) pruneUp(r *root, fds []int, dirs []string) int {
	// fds[i+1] is the folder dirs[i]; it is removed from fds[i] by name, only if empty
	// (AT_REMOVEDIR never removes a file or a symlink).
	n := 0
	for i := len(dirs) - 1; i >= 0; i-- {
		if !s.prunable(r, dirs[:i+1]) {
			break
		}
		if err := unix.Unlinkat(fds[i], dirs[i], unix.AT_REMOVEDIR); err != nil {
			break // not empty (or gone): pruning stops here
		}
		n++
	}
	return n
}

// prunable reports whether the folder dirs below r may be pruned: not the root, another root or
// a kept folder.
func (s *Set) prunable(r *root, dirs []string) bool {
	below := filepath.Join(dirs...)
	return len(dirs) > 0 && !s.isKept(below) && !s.isRoot(filepath.Join(r.real, below))
}

// DeferPruning makes Remove leave the folders it empties in place, for Prune to remove once they
// have stayed empty for a while: a stream's folder that SRS fills again with its next segment is
// not removed and made again for every segment (nor its spool folder, nor the watcher's watch of
// it). The returned function undoes it (calls nest); Remove prunes at once again when every one
// was undone.
func (s *Set) DeferPruning() (undo func()) {
	s.pruneMu.Lock()
	s.deferred++
	s.pruneMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.pruneMu.Lock()
			s.deferred--
			s.pruneMu.Unlock()
		})
	}
}

// deferPrune notes the folder relDir below r for Prune, and reports whether pruning is deferred.
func (s *Set) deferPrune(r *root, relDir string) bool {
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	if s.deferred == 0 {
		return false
	}
	if relDir == "." {
		return true
	}
	abs := r.real + string(filepath.Separator) + relDir
	if _, ok := s.emptied[abs]; ok {
		return true // the usual case: the stream's folder, noted at its previous segment
	}
	if !s.isKept(relDir) && !s.isRoot(abs) {
		if s.emptied == nil {
			s.emptied = map[string]struct{}{}
		}
		s.emptied[abs] = struct{}{}
	}
	return true
}

// Prune removes the folders that Remove left behind while pruning was deferred and that are
// empty and unchanged since before cutoff (their modification time: the last file removed from
// or added to them), then the folders above them this leaves empty, as Remove would have. A
// folder that is not empty is forgotten (the next Remove in it names it again); one changed after
// cutoff is kept for a later Prune. No symlink is followed. It returns how many folders it removed.
func (s *Set) Prune(cutoff time.Time) int {
	s.pruneMu.Lock()
	todo := make([]string, 0, len(s.emptied))
	for p := range s.emptied {
		todo = append(todo, p)
	}
	s.pruneMu.Unlock()
	n := 0
	for _, p := range todo {
		removed, keep := s.pruneOne(p, cutoff)
		n += removed
		if !keep {
			s.pruneMu.Lock()
			delete(s.emptied, p)
			s.pruneMu.Unlock()
		}
	}
	return n
}

// pruneOne removes the folder p if it is empty and unchanged since cutoff, and the empty folders
// above it; keep is true when p is still to be looked at later (changed after cutoff).
func (s *Set) pruneOne(p string, cutoff time.Time) (removed int, keep bool) {
	r, rel, ok := s.find(p)
	if !ok || rel == "." {
		return 0, false
	}
	dirs := splitRel(rel)
	if !s.prunable(r, dirs) {
		return 0, false
	}
	fds, err := r.openDirs(filepath.Dir(rel), false)
	if err != nil {
		return 0, false // gone, or a folder on the way is a symlink now
	}
	defer closeAll(fds)
	parent, name := fds[len(fds)-1], dirs[len(dirs)-1]
	var st unix.Stat_t
	if err := unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0, false
	}
	if time.Unix(st.Mtim.Unix()).After(cutoff) {
		return 0, true
	}
	if err := unix.Unlinkat(parent, name, unix.AT_REMOVEDIR); err != nil {
		return 0, false // not empty: in use again
	}
	return 1 + s.pruneUp(r, fds, dirs[:len(dirs)-1]), false
}

// Link makes newpath a hard link to the file at oldpath, both in the same root, creating the
// folders of newpath, and checks that newpath then names the file want. An existing newpath that
// is want is not an error. When newpath names another file (SRS replaced oldpath after want was
// taken), a link Link made is removed again and the error is ErrReplaced. No symlink is followed,
// neither in a folder nor in either name.
func (s *Set) Link(oldpath, newpath string, want fs.FileInfo) error {
	ro, oldRel, ok1 := s.find(filepath.Clean(oldpath))
	rn, newRel, ok2 := s.find(filepath.Clean(newpath))
	if !ok1 || !ok2 || !filepath.IsAbs(oldpath) || !filepath.IsAbs(newpath) {
		return &os.LinkError{Op: "link", Old: oldpath, New: newpath, Err: ErrOutside}
	}
	if ro.real != rn.real {
		return &os.LinkError{Op: "link", Old: oldpath, New: newpath, Err: unix.EXDEV}
	}
	if oldRel == "." || newRel == "." {
		return &os.LinkError{Op: "link", Old: oldpath, New: newpath, Err: ErrNotRegular}
	}
	from, err := ro.openDirs(filepath.Dir(oldRel), false)
	if err != nil {
		return &os.LinkError{Op: "link", Old: oldpath, New: newpath, Err: err}
	}
	defer closeAll(from)
	to, err := ro.openDirs(filepath.Dir(newRel), true)
	if err != nil {
		return &os.LinkError{Op: "link", Old: oldpath, New: newpath, Err: err}
	}
	defer closeAll(to)
	dirfd, name := to[len(to)-1], filepath.Base(newRel)
	err = unix.Linkat(from[len(from)-1], filepath.Base(oldRel), dirfd, name, 0)
	made := err == nil
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return &os.LinkError{Op: "link", Old: oldpath, New: newpath, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.LinkError{Op: "link", Old: oldpath, New: newpath, Err: err}
	}
	if !sameFile(&st, want) {
		if made {
			_ = unix.Unlinkat(dirfd, name, 0)
		}
		return &os.LinkError{Op: "link", Old: oldpath, New: newpath, Err: ErrReplaced}
	}
	return nil
}

// sameFile reports whether st is the file want (device and inode).
func sameFile(st *unix.Stat_t, want fs.FileInfo) bool {
	return fileid.OfUnix(st).SameFile(fileid.Of(want))
}

// MkdirAll creates the folder dir inside a root and the folders above it. An existing folder on
// the way must be a real folder: a symlink is ErrSymlink, never followed.
func (s *Set) MkdirAll(dir string) error {
	p := filepath.Clean(dir)
	r, rel, ok := s.find(p)
	if !ok || !filepath.IsAbs(dir) {
		return fmt.Errorf("mkdir %q: %w (roots: %s)", p, ErrOutside, s)
	}
	fds, err := r.openDirs(rel, true)
	if err != nil {
		return fmt.Errorf("mkdir %q: %w", p, err)
	}
	closeAll(fds)
	return nil
}

// CheckLinks creates a file in the folder dir (made as MkdirAll does), hard-links it, and
// removes both: it reports whether the folder's filesystem can hard-link. A failed link is an
// *os.LinkError; any other error means the folder or the file could not be made.
func (s *Set) CheckLinks(dir string) error {
	p := filepath.Clean(dir)
	r, rel, ok := s.find(p)
	if !ok || !filepath.IsAbs(dir) {
		return fmt.Errorf("folder %q: %w (roots: %s)", p, ErrOutside, s)
	}
	fds, err := r.openDirs(rel, true)
	if err != nil {
		return fmt.Errorf("folder %q: %w", p, err)
	}
	defer closeAll(fds)
	fd := fds[len(fds)-1]
	name := ".probe-" + strconv.Itoa(os.Getpid())
	for i := 0; ; i++ {
		f, err := openat(fd, name+"-"+strconv.Itoa(i), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) && i < 100 {
			continue
		}
		if err != nil {
			return fmt.Errorf("folder %q: cannot create a file: %w", p, err)
		}
		unix.Close(f)
		name += "-" + strconv.Itoa(i)
		break
	}
	lerr := unix.Linkat(fd, name, fd, name+".link", 0)
	_ = unix.Unlinkat(fd, name+".link", 0)
	_ = unix.Unlinkat(fd, name, 0)
	if lerr != nil {
		return &os.LinkError{Op: "link", Old: filepath.Join(p, name), New: filepath.Join(p, name+".link"), Err: lerr}
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

// find returns the root p (clean and absolute) lies in, innermost first, and p relative to it.
func (s *Set) find(p string) (*root, string, bool) {
	var best *root
	base := ""
	for i := range s.roots {
		r := &s.roots[i]
		for _, b := range []string{r.real, r.clean} {
			if within(p, b) && (best == nil || len(b) > len(base)) {
				best, base = r, b
			}
		}
	}
	if best == nil {
		return nil, "", false
	}
	rel, err := filepath.Rel(base, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil, "", false
	}
	return best, rel, true
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

// resolve turns rel (clean, relative, inside the root) into the same place with every symlink
// resolved, looking names up only beneath the root, and returns its Lstat. A symlink that leads
// out is ErrOutside.
func (r *root) resolve(rel string) (string, fs.FileInfo, error) {
	var done []string
	var last fs.FileInfo // Lstat of the last name resolved
	todo := splitRel(rel)
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", nil, fmt.Errorf("a symlink leads out of root %s: %w", r.real, ErrOutside)
			}
			done, last = done[:len(done)-1], nil
			continue
		}
		cur := filepath.Join(append(done, c)...)
		fi, err := r.dir.Lstat(cur)
		if err != nil {
			return "", nil, lookupErr(err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done, last = append(done, c), fi
			continue
		}
		if links++; links > maxLinks {
			return "", nil, fmt.Errorf("%s: too many symlinks: %w", cur, unix.ELOOP)
		}
		target, err := r.dir.Readlink(cur)
		if err != nil {
			return "", nil, lookupErr(err)
		}
		if filepath.IsAbs(target) {
			t := filepath.Clean(target)
			var in string
			switch {
			case within(t, r.real):
				in, _ = filepath.Rel(r.real, t)
			case within(t, r.clean):
				in, _ = filepath.Rel(r.clean, t)
			default:
				return "", nil, fmt.Errorf("%s is a symlink to %s: %w", cur, target, ErrOutside)
			}
			done, last = nil, nil
			target = in
		}
		todo = append(splitRel(target), todo...)
		last = nil
	}
	out := "."
	if len(done) > 0 {
		out = filepath.Join(done...)
	}
	if last == nil {
		fi, err := r.dir.Lstat(out)
		if err != nil {
			return "", nil, lookupErr(err)
		}
		last = fi
	}
	return out, last, nil
}

// openDirs opens the folder rel (clean, relative; "." is the root) and every folder above it,
// from the root down, each with O_NOFOLLOW relative to the one above; with create, missing
// folders are made. It returns the descriptors, the root's own first; closeAll closes the others.
func (r *root) openDirs(rel string, create bool) ([]int, error) {
	fds := make([]int, 1, 8)
	fds[0] = r.fd
	for _, c := range splitRel(rel) {
		parent := fds[len(fds)-1]
		const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		fd, err := openat(parent, c, flags, 0)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(parent, c, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				fd, err = openat(parent, c, flags, 0)
			}
		}
		if err != nil {
			closeAll(fds)
			switch {
			case errors.Is(err, unix.ENOENT):
				return nil, fmt.Errorf("folder %s: %w", c, ErrNotExist)
			case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
				return nil, fmt.Errorf("folder %s: %w", c, ErrSymlink)
			}
			return nil, fmt.Errorf("folder %s: %w", c, err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

func openat(dirfd int, name string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, perm)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// closeAll closes what openDirs opened: every descriptor but the first, the root's own.
func closeAll(fds []int) {
	for _, fd := range fds[1:] {
		unix.Close(fd)
	}
}

// splitRel splits a clean relative path into its names ("." is none).
func splitRel(rel string) []string {
	if rel == "." || rel == "" {
		return nil
	}
	return strings.Split(filepath.ToSlash(rel), "/")
}

// lookupErr maps an error of an os.Root lookup to this package's errors: a missing name is
// ErrNotExist, a name or symlink leading out of the root is ErrOutside.
func lookupErr(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w (%w)", ErrNotExist, err)
	case isEscape(err):
		return fmt.Errorf("%w: %w", err, ErrOutside)
	}
	return err
}

// isEscape reports whether err is os.Root's refusal of a name that leads out of the root. The
// os package does not export that error; its text is part of the Go 1 behaviour of os.Root.
func isEscape(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}

// unixMode turns the S_IFMT bits of a stat into an fs.FileMode type.
func unixMode(m fs.FileMode) fs.FileMode {
	switch uint32(m) {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFBLK:
		return fs.ModeDevice
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	}
	return 0
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
