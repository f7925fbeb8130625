package spool_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/spool"
)

// BenchmarkResolveTake is the file work of one hook with the spool on: resolve the hooked path
// (roots.Set.Resolve) and hard-link it into the spool (Take), for a file at live/<name>.ts.
//
//	go test -run '^$' -bench ResolveTake ./spool/
func BenchmarkResolveTake(b *testing.B) {
	root, err := filepath.EvalSymlinks(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "live"), 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range b.N {
		if err := os.WriteFile(filepath.Join(root, "live", fmt.Sprintf("livestream-%d.ts", i)), []byte("x"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	rs, err := roots.New([]string{root})
	if err != nil {
		b.Fatal(err)
	}
	sp, err := spool.New(rs, dir)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		real, fi, err := rs.Resolve(root, fmt.Sprintf("./live/livestream-%d.ts", i))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sp.Take(real, fi); err != nil {
			b.Fatal(err)
		}
	}
}
