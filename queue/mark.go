package queue

import (
	"os"

	"golang.org/x/sys/unix"
)

// markAttr is the extended attribute that records, on a file kept on disk after its upload (purge
// off, fMP4 init, a failed purge), the task id it was stored under. The reconciler skips such a
// file without asking Redis or storage, which keeps a scan of a root that keeps 100,000 files
// local to the disk. The mark lives and dies with the file; a file changed since has another
// task id and is offloaded again.
const markAttr = "user.srs-offload.stored"

// Mark records on f that the task id stored its bytes. Filesystems without user extended
// attributes return an error; the file is then only checked again, never lost.
func Mark(f *os.File, id string) error {
	return unix.Fsetxattr(int(f.Fd()), markAttr, []byte(id), 0)
}

// Marked reports whether the open file f carries the mark of task id. It reads the mark from the
// descriptor, so it judges exactly the file that was opened (open it through package roots, which
// never leaves a root), never whatever a path names by the time it is read.
func Marked(f *os.File, id string) bool {
	buf := make([]byte, 64)
	n, err := unix.Fgetxattr(int(f.Fd()), markAttr, buf)
	return err == nil && string(buf[:n]) == id
}
