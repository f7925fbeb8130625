package roots_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/srs-offload/srs-offload/roots"
)

// A refused lookup is this package's error and keeps os.Root's: both are in the chain.
func TestLookupErrorsKeepTheCause(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := roots.New([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if err := os.Symlink("../../..", filepath.Join(dir, "up")); err != nil {
		t.Fatal(err)
	}
	var pe *fs.PathError
	_, err = rs.Lstat(filepath.Join(dir, "up", "etc", "passwd"))
	if !errors.Is(err, roots.ErrOutside) || !errors.As(err, &pe) {
		t.Errorf("through a symlink out: %v: want ErrOutside and os.Root's *fs.PathError", err)
	}
	_, err = rs.Lstat(filepath.Join(dir, "missing"))
	if !errors.Is(err, roots.ErrNotExist) || !errors.As(err, &pe) {
		t.Errorf("missing: %v: want ErrNotExist and os.Root's *fs.PathError", err)
	}
}
