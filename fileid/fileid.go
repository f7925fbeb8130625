// Package fileid owns the identity of a local file: which file on which device (device and inode)
// and which content of it (size and modification time). It is the one place srs-offload reads a
// file's inode; the queue carries an ID in every offload task, the spool names its hard links by
// it, the worker and the reconciler compare it, and roots checks it before a delete or a link.
package fileid

import (
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// ID identifies one file's content on one host: the same file hooked twice has the same ID; a new
// recording that reuses a name (SRS restarting seq_no) has a new inode or mtime. Its JSON form is
// part of the task payload.
type ID struct {
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
}

// Of reads the identity from a stat result. On a system without inodes Dev and Ino are 0.
func Of(fi fs.FileInfo) ID {
	id := ID{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.Dev, id.Ino = uint64(st.Dev), uint64(st.Ino)
	}
	return id
}

// OfUnix reads the identity from an fstatat(2) result.
func OfUnix(st *unix.Stat_t) ID {
	return ID{
		Dev: uint64(st.Dev), Ino: uint64(st.Ino), Size: st.Size, MtimeNs: st.Mtim.Nano(),
	}
}

// Inode is fi's inode number, 0 when fi carries none.
func Inode(fi fs.FileInfo) uint64 { return Of(fi).Ino }

// SameFile reports whether a and b name the same file (device and inode), whatever its content
// now. Two IDs without an inode are never the same file.
func (a ID) SameFile(b ID) bool { return a.Ino != 0 && a.Dev == b.Dev && a.Ino == b.Ino }
