package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/uploader"
	"github.com/srs-offload/srs-offload/worker"
)

// Every storage.verify mode, a segment-sized file (single PUT) and a recording (multipart),
// through a proxy in front of versitygw that flips one byte of every PUT and part body: the file
// is never purged. Without corruption every mode verifies, the file is purged, and storage holds
// it byte for byte.
func TestCorruptedUploadNeverPurged(t *testing.T) {
	t.Parallel()
	proxy := s3test.Corrupt(t, s3test.Versity(t))
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	set, err := roots.New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	write := func(rel string, size int) (queue.Offload, []byte) {
		b := make([]byte, size)
		rnd := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return queue.Offload{Kind: queue.KindDVR, Path: p, Key: rel, File: fileid.Of(fi),
			Vhost: "__defaultVhost__", App: "live", Stream: "cam1"}, b
	}
	for _, mode := range []struct{ verify, checksum string }{
		{"auto", ""}, {"md5", ""}, {"checksum", "crc32c"}, {"checksum", "crc64nvme"}, {"checksum", "sha256"}, {"size", ""},
	} {
		up := proxy.Uploader(t, func(c *uploader.Config) {
			c.MultipartThreshold, c.PartSize = 5<<20, 5<<20
			c.Verify, c.Checksum = mode.verify, mode.checksum
		})
		off := &worker.Offloader{Roots: set, Store: up, Purge: true, Log: testLogger(t)}
		for _, size := range []int{200 << 10, 11 << 20} {
			ctx := context.Background()
			name := fmt.Sprintf("%s%s-%d", mode.verify, mode.checksum, size)

			proxy.On.Store(true)
			before := proxy.Flipped.Load()
			p, want := write("dvr/bad/"+name+".flv", size)
			for attempt := range 2 {
				if err := off.Offload(ctx, p); err == nil {
					t.Fatalf("%s: attempt %d of a corrupted upload succeeded", name, attempt)
				}
			}
			if proxy.Flipped.Load() == before {
				t.Fatalf("%s: the proxy corrupted nothing", name)
			}
			hasContent(t, p.Path, want)

			proxy.On.Store(false)
			p, want = write("dvr/ok/"+name+".flv", size)
			if err := off.Offload(ctx, p); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			gone(t, p.Path)
			got, err := up.Get(ctx, p.Key)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: stored %d bytes (%v), not the file's %d", name, len(got), err, size)
			}
		}
	}
}
