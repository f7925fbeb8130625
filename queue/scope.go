package queue

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// SharedPrefix starts a shared scope in queue.scope ("shared:<name>") and the queue node of its
// queues (hls@shared:<name>).
const SharedPrefix = "shared:"

// Scope is where a process's files live, and so which queues their tasks run on.
//
// The zero Scope is a node's: files are on this host's disk, tasks go to the node's queues
// (hls@<node>) and only its workers take them. A shared Scope names a volume that several hosts
// mount (NFS, CephFS, EFS): tasks go to the volume's queues (hls@shared:<name>), which every
// worker mounting the volume takes. A shared task carries the volume, the enqueuing host's mount
// point and its node: its identity (TaskID) is the path relative to the volume and the file's
// inode, size and mtime, the same on every host whatever the mount point or the device number the
// host sees, so every host's hook and reconciler make the same task for one file.
type Scope struct {
	// Volume is the shared volume's name; empty for a node scope.
	Volume string
	// Mount is where this host mounts the volume (its one root, symlinks resolved).
	Mount string
	// Node is this host's node name: its spool folder on the volume is its own.
	Node string
}

// ParseScope reads queue.scope: "node" (or empty) or "shared:<name>".
func ParseScope(s string) (volume string, err error) {
	switch {
	case s == "" || s == "node":
		return "", nil
	case strings.HasPrefix(s, SharedPrefix):
		name := strings.TrimPrefix(s, SharedPrefix)
		if err := ValidNode(name); err != nil {
			return "", fmt.Errorf("shared volume name %w", err)
		}
		if strings.Contains(name, ":") {
			return "", fmt.Errorf("shared volume name %q: must not contain ':'", name)
		}
		return name, nil
	}
	return "", fmt.Errorf("want node or shared:<name> (a volume several hosts mount), got %q", s)
}

// Shared reports whether the scope is a shared volume's.
func (s Scope) Shared() bool { return s.Volume != "" }

// QueueNode is the node part of the scope's queue names: node for a node scope, shared:<name>
// for a shared volume.
func (s Scope) QueueNode(node string) string {
	if s.Shared() {
		return SharedPrefix + s.Volume
	}
	return node
}

// Stamp makes p a task of the scope: in a shared scope it records the volume, this host's mount
// point and node. p.Path must lie below the mount point. A node scope leaves p as it is.
func (s Scope) Stamp(p *Offload) {
	if !s.Shared() {
		return
	}
	p.Volume, p.Mount, p.Node = s.Volume, s.Mount, s.Node
}

// ErrOtherVolume means a task names a volume this worker does not mount.
var ErrOtherVolume = errors.New("the task's file is on another shared volume than this worker's queue.scope")

// Local is p as this host sees it: a shared task's paths (Path, Playlist) moved from the
// enqueuing host's mount point to this host's. A node task is returned as it is.
func (s Scope) Local(p Offload) (Offload, error) {
	if p.Volume == "" {
		return p, nil
	}
	if p.Volume != s.Volume {
		return p, fmt.Errorf("%w: task of volume %q, this worker's is %q", ErrOtherVolume, p.Volume, s.Volume)
	}
	rel, ok := p.Rel()
	if !ok {
		return p, fmt.Errorf("shared task: path %q is not below its mount point %q", p.Path, p.Mount)
	}
	local := p
	local.Path = filepath.Join(s.Mount, rel)
	if p.Playlist != "" {
		if prel, ok := relTo(p.Mount, p.Playlist); ok {
			local.Playlist = filepath.Join(s.Mount, prel)
		} else {
			local.Playlist = "" // not on the volume: not readable here
		}
	}
	local.Mount = s.Mount
	return local, nil
}

// Rel is a shared task's path relative to the volume (false for a node task or a path not below
// its mount point).
func (p Offload) Rel() (string, bool) {
	if p.Volume == "" {
		return "", false
	}
	return relTo(p.Mount, p.Path)
}

func relTo(mount, p string) (string, bool) {
	if mount == "" {
		return "", false
	}
	rel, err := filepath.Rel(mount, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return "", false
	}
	return rel, true
}
