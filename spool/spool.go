// Package spool takes ownership of a hooked file before SRS can delete it.
//
// SRS's defaults (hls_cleanup on, hls_dispose) unlink a segment once it leaves the live window or
// the stream is idle, whatever srs-offload has done with it. During a backlog (storage slow or
// down) that would lose segments that were never uploaded. At hook time the receiver hard-links
// the file into a spool folder inside its root: a metadata-only operation on the same filesystem,
// so the bytes stay on disk under srs-offload's name until they are verified in storage, whatever
// SRS does to its own name. The spooled name is derived from the original path and inode, so the
// hook, the watcher and the worker all agree on it without storing it anywhere.
package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/roots"
)

// Spool is the spool folder of each root: <root>/<Dir>.
type Spool struct {
	Roots *roots.Set
	// Dir is the name of the folder created in each root.
	Dir string
	// changed is signalled when this process takes or releases a file (see Meter).
	changed chan struct{}
	// Host, when set (a shared volume: queue.scope shared:<name>), puts this host's links in a
	// folder of its own, <root>/<Dir>/<Host>, so hosts that mount one volume never fight over a
	// link; a worker that verified a file removes every host's link of it (Links).
	Host string

	mu    sync.Mutex
	took  map[string]took // SRS's path → the file this process linked lately (see Holds)
	swept time.Time       // when took was last cleared of old entries
}

// took is a file this process linked into the spool, and when; busy while its link is being made.
type took struct {
	id   fileid.ID
	at   time.Time
	busy chan struct{} // closed when the take in flight ends; nil once linked
}

// Recent is how long the spool remembers a file it took (Holds). The hook and the watcher of one
// process see a new file within milliseconds of each other; whichever comes second is spared the
// link (and the watcher its whole look at the file). Past Recent, a file is linked again as before.
const Recent = 30 * time.Second

// New checks the folder name. With rs, the folder is kept: removing the last spooled file never
// removes it.
func New(rs *roots.Set, dir string) (*Spool, error) {
	if dir == "" || dir == "." || dir == ".." || strings.ContainsAny(dir, "/\x00") {
		return nil, fmt.Errorf("spool folder %q: must be a plain folder name", dir)
	}
	if rs != nil {
		rs.Keep(dir) // the spool folder outlives its last file
	}
	return &Spool{Roots: rs, Dir: dir, changed: make(chan struct{}, 1)}, nil
}

// Shared gives this host its own spool folder, <Dir>/<host>, on a shared volume (see Host); it
// is kept like the spool folder.
func (s *Spool) Shared(host string) error {
	if host == "" || host == "." || host == ".." || strings.ContainsAny(host, "/\x00") {
		return fmt.Errorf("spool folder of host %q: must be a plain folder name", host)
	}
	s.Host = host
	if s.Roots != nil {
		s.Roots.Keep(filepath.Join(s.Dir, host))
	}
	return nil
}

// Path is where the file at orig, with inode ino, is spooled:
// <root>/<Dir>/<folder of orig below the root>/<ino>-<name>. It is false for a path outside the
// roots or already in the spool.
// With Host, it is <root>/<Dir>/<Host>/….
func (s *Spool) Path(orig string, ino uint64) (string, bool) {
	return s.PathOf(s.Host, orig, ino)
}

// PathOf is Path for the spool folder of host (a shared volume's; "" is the plain layout).
func (s *Spool) PathOf(host, orig string, ino uint64) (string, bool) {
	root, rel, ok := s.Roots.Split(orig)
	if !ok || s.inSpool(rel) || strings.ContainsAny(host, "/\x00") || host == "." || host == ".." {
		return "", false
	}
	dir, name := filepath.Split(rel)
	return filepath.Join(root, s.Dir, host, dir, strconv.FormatUint(ino, 10)+"-"+name), true
}

// Links returns the spooled links of the file at orig with inode ino in every host's spool
// folder of a shared volume (only this host's Path without Host), whether or not they exist.
func (s *Spool) Links(orig string, ino uint64) []string {
	own, ok := s.Path(orig, ino)
	if !ok {
		return nil
	}
	out := []string{own}
	if s.Host == "" {
		return out
	}
	root, _, _ := s.Roots.Split(orig)
	for _, h := range s.hosts(root) {
		if p, ok := s.PathOf(h, orig, ino); ok && h != s.Host {
			out = append(out, p)
		}
	}
	return out
}

// hosts lists the host folders in the spool folder of root.
func (s *Spool) hosts(root string) []string {
	var out []string
	top := s.Root(root)
	_ = s.Roots.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if p == top {
			return nil
		}
		if d.IsDir() {
			out = append(out, filepath.Base(p))
			return fs.SkipDir
		}
		return nil
	})
	return out
}

// Orig maps a spooled path back to the file it was taken from, and the inode it was taken at.
func (s *Spool) Orig(spooled string) (orig string, ino uint64, ok bool) {
	root, rel, ok := s.Roots.Split(spooled)
	if !ok || !s.inSpool(rel) {
		return "", 0, false
	}
	in := strings.TrimPrefix(rel, s.Dir+string(filepath.Separator))
	if s.Host != "" {
		// <Dir>/<host>/…: any host's link maps back to its file.
		_, below, found := strings.Cut(in, string(filepath.Separator))
		if !found {
			return "", 0, false
		}
		in = below
	}
	dir, name := filepath.Split(in)
	num, base, ok := strings.Cut(name, "-")
	if !ok || base == "" {
		return "", 0, false
	}
	ino, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return filepath.Join(root, dir, base), ino, true
}

// Root is the spool folder of a root.
func (s *Spool) Root(root string) string { return filepath.Join(root, s.Dir) }

// Contains reports whether p lies in a spool folder.
func (s *Spool) Contains(p string) bool {
	_, rel, ok := s.Roots.Split(p)
	return ok && s.inSpool(rel)
}

func (s *Spool) inSpool(rel string) bool {
	return rel == s.Dir || strings.HasPrefix(rel, s.Dir+string(filepath.Separator))
}

// Take hard-links the file at orig (whose Lstat is fi) into the spool. Taking a file twice is not
// an error (the spooled name is the same file). It fails when the file is gone or was replaced
// since fi, with ErrCrossDevice when the
// spool is on another filesystem than the file, and with roots.ErrSymlink when the spool folder
// (or a folder in it, or a folder of orig) is not a real folder: no symlink is ever followed, so
// nothing is created or linked outside the root, nor anywhere else a symlink points.
func (s *Spool) Take(orig string, fi fs.FileInfo) (string, error) {
	ino := fileid.Inode(fi)
	if ino == 0 {
		return "", fmt.Errorf("spool %s: no inode", orig)
	}
	dst, ok := s.Path(orig, ino)
	if !ok {
		return "", fmt.Errorf("spool %s: %w", orig, roots.ErrOutside)
	}
	held, end := s.begin(orig, fi)
	if held {
		return dst, nil // linked a moment ago by this process (the hook or the watcher)
	}
	linked := false
	defer func() { end(linked) }()
	// A worker pruning the empty folder of the previous spooled file can remove it between
	// the folder's creation and the link; that is retried.
	var err error
	for range 3 {
		if err = s.Roots.Link(orig, dst, fi); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
		if _, serr := s.Roots.Lstat(orig); serr != nil {
			break // the file itself is gone
		}
	}
	switch {
	case err == nil:
		linked = true
		s.touch()
		return dst, nil
	case errors.Is(err, roots.ErrReplaced):
		// Linked after SRS replaced the file: the new file is not ours to hold (Link removed
		// the link it made).
		return "", fmt.Errorf("spool %s: the file was replaced while it was being taken", orig)
	case errors.Is(err, syscall.EXDEV):
		return "", fmt.Errorf("spool %s: %w", orig, ErrCrossDevice)
	case errors.Is(err, roots.ErrSymlink):
		return "", fmt.Errorf("spool %s: nothing linked; make %s a real folder: %w", orig, s.Dir, err)
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("spool %s: %w", orig, roots.ErrNotExist)
	default:
		return "", fmt.Errorf("spool %s: %w", orig, err)
	}
}

// Release removes the spooled link at spooled if it is still the file fi, and the spool's folders
// this leaves empty, never the spool folder itself. It follows no symlink (see roots.Set.Remove).
func (s *Spool) Release(spooled string, fi fs.FileInfo) error {
	if !s.Contains(spooled) {
		return fmt.Errorf("release %s: not in a spool folder (%s)", spooled, s.Dir)
	}
	if orig, ino, ok := s.Orig(spooled); ok {
		s.forget(orig, ino)
	}
	err := s.Roots.Remove(spooled, fi)
	if err == nil {
		s.touch()
	}
	return err
}

// Holds reports whether this process linked the file fi at orig (the same file, with the same
// size and modification time) into the spool within Recent and has not released it since: the
// hook took it, so the watcher has nothing to do, or the watcher did, so the hook need not link
// again. A take of it in flight in this process is waited for. Only this process's takes and
// releases are known: a worker of another process releases a file only once it is stored (or
// marked as stored), after SRS's name is gone when it purges.
func (s *Spool) Holds(orig string, fi fs.FileInfo) bool {
	id := fileid.Of(fi)
	for {
		s.mu.Lock()
		t, ok := s.took[orig]
		s.mu.Unlock()
		if !ok || t.id != id || time.Since(t.at) >= Recent {
			return false
		}
		if t.busy == nil {
			return true
		}
		<-t.busy
	}
}

// begin reports whether this process holds the file fi at orig (as Holds, waiting for a take of
// it in flight); when it does not, the caller takes it and calls end with the outcome. The hook
// and the watcher often see a file within microseconds of each other: the second one waits for
// the first one's link instead of making it again.
func (s *Spool) begin(orig string, fi fs.FileInfo) (held bool, end func(linked bool)) {
	id := fileid.Of(fi)
	for {
		s.mu.Lock()
		now := time.Now()
		t, ok := s.took[orig]
		if ok && t.id == id && now.Sub(t.at) < Recent {
			if t.busy == nil {
				s.mu.Unlock()
				return true, nil
			}
			s.mu.Unlock()
			<-t.busy
			continue
		}
		if s.took == nil {
			s.took = map[string]took{}
		}
		if now.Sub(s.swept) >= Recent {
			for p, t := range s.took {
				if t.busy == nil && now.Sub(t.at) >= Recent {
					delete(s.took, p)
				}
			}
			s.swept = now
		}
		busy := make(chan struct{})
		s.took[orig] = took{id: id, at: now, busy: busy}
		s.mu.Unlock()
		return false, func(linked bool) {
			s.mu.Lock()
			if t, ok := s.took[orig]; ok && t.busy == busy {
				if linked {
					s.took[orig] = took{id: id, at: time.Now()}
				} else {
					delete(s.took, orig)
				}
			}
			s.mu.Unlock()
			close(busy)
		}
	}
}

func (s *Spool) forget(orig string, ino uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.took[orig]; ok && t.id.Ino == ino {
		delete(s.took, orig)
	}
}

// ErrCrossDevice means the spool folder and the file are on different filesystems, so the file
// cannot be hard-linked (a mount below a root).
var ErrCrossDevice = errors.New("spool folder is on another filesystem")

// Probe creates the spool folder of every root and checks that a file can be hard-linked there.
// A folder that cannot be created, or a spool folder that is not a real folder (a symlink, a
// file), is an error; a filesystem without hard links is reported with ErrNoLinks (the spool then
// protects nothing, but offloading still works). The spool folder stays: pruning never removes it.
func (s *Spool) Probe() error {
	for _, root := range s.Roots.Dirs() {
		dir := filepath.Join(s.Root(root), s.Host)
		if err := s.Roots.MkdirAll(dir); err != nil {
			return fmt.Errorf("spool folder %s: %w", dir, err)
		}
		var lerr *os.LinkError
		if err := s.Roots.CheckLinks(dir); errors.As(err, &lerr) {
			return fmt.Errorf("spool folder %s: %w: %w", dir, ErrNoLinks, err)
		} else if err != nil {
			return fmt.Errorf("spool folder %s: %w", dir, err)
		}
	}
	return nil
}

// ErrNoLinks means a root's filesystem cannot hard-link.
var ErrNoLinks = errors.New("cannot hard-link files")
