package fileid_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/srs-offload/srs-offload/fileid"
)

func TestOf(t *testing.T) {
	dir := t.TempDir()
	a, b, link := filepath.Join(dir, "a.ts"), filepath.Join(dir, "b.ts"), filepath.Join(dir, "link.ts")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, []byte("segment"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(a, link); err != nil {
		t.Fatal(err)
	}
	stat := func(p string) fileid.ID {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fileid.Of(fi)
	}
	ia, ib, il := stat(a), stat(b), stat(link)
	if ia.Ino == 0 || ia.Size != 7 || ia.MtimeNs == 0 {
		t.Fatalf("Of(a) = %+v: inode, size or mtime missing", ia)
	}
	if ia != il || !ia.SameFile(il) {
		t.Errorf("a hard link is another file: %+v, %+v", ia, il)
	}
	if ia.SameFile(ib) || ia == ib {
		t.Errorf("two files are the same: %+v, %+v", ia, ib)
	}
	if (fileid.ID{}).SameFile(fileid.ID{}) {
		t.Error("two IDs without inode are the same file")
	}

	// New content in the same file: the same file, another ID.
	if err := os.Chtimes(a, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if now := stat(a); now == ia || !now.SameFile(ia) {
		t.Errorf("after a new mtime: %+v, before %+v", now, ia)
	}

	var st unix.Stat_t
	if err := unix.Fstatat(unix.AT_FDCWD, b, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
	if got := fileid.OfUnix(&st); got != ib {
		t.Errorf("OfUnix = %+v, Of = %+v", got, ib)
	}
	fi, _ := os.Lstat(b)
	if fileid.Inode(fi) != ib.Ino {
		t.Errorf("Inode = %d, want %d", fileid.Inode(fi), ib.Ino)
	}
}
