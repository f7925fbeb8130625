package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/srs-offload/srs-offload/internal/testbed"
	"golang.org/x/sys/unix"
)

// B4's disk bound: the archive-only run once more with the SRS root (and so srs-offload's spool)
// and versitygw's objects on a tmpfs, so that the disk is taken out of the latency.

// The B4 modes with the disk taken out, in two steps: first the S3 server's (in production
// storage is another machine's disk), then srs-offload's too (the SRS root and the spool in it).
// bounds names the mode whose target each bounds.
var (
	archiveS3TmpfsMode = mode{key: "archive-s3tmpfs", label: "srs-offload (archive only, S3 data on tmpfs: the S3 server's disk taken out)",
		short: "archive only, S3 data on tmpfs", tmpfs: "s3", bounds: archiveMode.short}
	archiveTmpfsMode = mode{key: "archive-tmpfs", label: "srs-offload (archive only, roots and S3 data on tmpfs: disk taken out)",
		short: "archive only, all on tmpfs", tmpfs: "all", bounds: archiveMode.short}
	playlistsS3TmpfsMode = mode{key: "playlists-s3tmpfs", label: "srs-offload (live + VoD playlists, S3 data on tmpfs: the S3 server's disk taken out)",
		short: "with playlists, S3 data on tmpfs", playlists: true, tmpfs: "s3", bounds: playlistsMode.short}
	playlistsTmpfsMode = mode{key: "playlists-tmpfs", label: "srs-offload (live + VoD playlists, roots and S3 data on tmpfs: disk taken out)",
		short: "with playlists, all on tmpfs", playlists: true, tmpfs: "all", bounds: playlistsMode.short}
)

const shmDir = "/dev/shm"

// tmpfsWhat says what a tmpfs mode put on the tmpfs.
var tmpfsWhat = map[string]string{"s3": "the S3 data on tmpfs", "all": "the roots and S3 data on tmpfs"}

// tmpfsBase makes a folder on /dev/shm for a run that needs need bytes there, or says why not.
func tmpfsBase(need int64) (string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(shmDir, &st); err != nil {
		return "", fmt.Errorf("%s: %v", shmDir, err)
	}
	if st.Type != unix.TMPFS_MAGIC {
		return "", fmt.Errorf("%s is not a tmpfs", shmDir)
	}
	if free := int64(st.Bavail) * st.Bsize; free < need {
		return "", fmt.Errorf("%s has %s free, the run needs %s", shmDir, mib(free), mib(need))
	}
	dir, err := os.MkdirTemp(shmDir, "srs-offload-bench-")
	if err != nil {
		return "", err
	}
	testbed.AddDir(dir)
	return dir, nil
}

// onTmpfs points the run at a folder on /dev/shm: its roots go there, and a versitygw of its own
// keeps its objects there (e.s3 is that server until the returned function puts the disk's back).
func (e *env) onTmpfs(need int64) (string, func(), error) {
	base, err := tmpfsBase(need)
	if err != nil {
		return "", nil, err
	}
	s3, err := testbed.StartVersity(filepath.Join(base, "versitygw"), "bench", "make bench")
	if err != nil {
		os.RemoveAll(base)
		return "", nil, err
	}
	disk := e.s3
	e.s3 = s3
	return base, func() {
		e.s3 = disk
		s3.P.Kill()
		s3.Stats.Close()
		os.RemoveAll(base)
	}, nil
}
