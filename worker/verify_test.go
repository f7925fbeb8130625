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
	corruptedNeverPurged(t, s3test.Corrupt(t, s3test.Versity(t)), []verifyMode{
		{"auto", ""}, {"md5", ""}, {"checksum", "crc32c"}, {"checksum", "crc64nvme"}, {"checksum", "sha256"}, {"size", ""},
	}, nil)
}

// The same on MinIO (with its KMS), for each encryption: SSE-S3, SSE-KMS from the bucket's default
// encryption, SSE-KMS set by srs-offload, SSE-C. The ETag of the last three is not the MD5, so
// verify auto (and checksum) prove the bytes by checksum: a flipped byte is never purged, intact
// files are stored byte for byte (read back, with the SSE-C key where it applies) and purged.
func TestCorruptedUploadNeverPurgedMinIO(t *testing.T) {
	t.Parallel()
	ssecKey := bytes.Repeat([]byte{'k'}, 32)
	for _, c := range []struct {
		name, sse string
		bucketKMS bool
		ssec      bool
	}{
		{"SSE-S3", uploader.SSES3, false, false},
		{"bucket default SSE-KMS", "", true, false},
		{"storage.sse aws:kms", uploader.SSEKMS, false, false},
		{"SSE-C", "", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := s3test.MinIO(t)
			if c.bucketKMS {
				srv.DefaultKMS(t)
			}
			configure := func(u *uploader.Config) {
				u.SSE = c.sse
				if c.sse == uploader.SSEKMS {
					u.KMSKeyID = srv.KMSKey
				}
				if c.ssec {
					u.SSECKey = ssecKey
				}
			}
			corruptedNeverPurged(t, s3test.Corrupt(t, srv), []verifyMode{{"auto", ""}, {"checksum", "crc32c"}}, configure)

			// MinIO refuses a corrupted body already (Content-MD5, x-amz-checksum-*); the check
			// after the upload must catch what it does not: storage reporting a checksum other
			// than the one computed here. Intact bytes, wrong checksums: never purged (verify
			// auto, which picks checksum for SSE-KMS and SSE-C objects; checksum for SSE-S3).
			wrong := s3test.Proxy(t, srv, s3test.WrongChecksums)
			root := t.TempDir()
			set, _ := roots.New([]string{root})
			for _, size := range []int{200 << 10, 11 << 20} {
				up := wrong.Uploader(t, func(u *uploader.Config) {
					u.MultipartThreshold, u.PartSize = 5<<20, 5<<20
					configure(u)
					if c.sse == uploader.SSES3 {
						u.Verify = "checksum" // auto proves SSE-S3 objects by their ETag (the MD5)
					}
				})
				off := &worker.Offloader{Roots: set, Store: up, Purge: true, Log: testLogger(t)}
				p := filepath.Join(root, fmt.Sprintf("dvr/wrong-%d.flv", size))
				os.MkdirAll(filepath.Dir(p), 0o755)
				want := bytes.Repeat([]byte{'w'}, size)
				os.WriteFile(p, want, 0o644)
				fi, _ := os.Lstat(p)
				task := queue.Offload{Kind: queue.KindDVR, Path: p, Key: fmt.Sprintf("dvr/wrong-%d.flv", size), File: fileid.Of(fi),
					Vhost: "__defaultVhost__", App: "live", Stream: "cam1"}
				if err := off.Offload(context.Background(), task); err == nil {
					t.Fatalf("%d bytes: storage reported wrong checksums, and the upload was taken as verified", size)
				}
				hasContent(t, p, want)
			}
		})
	}
}

type verifyMode struct{ verify, checksum string }

// corruptedNeverPurged uploads, for each mode, a segment-sized file and an 11 MiB recording
// (multipart) through proxy: corrupted, each attempt fails and the file stays; intact, the file is
// stored byte for byte and purged. configure, when set, adds to each uploader's config.
func corruptedNeverPurged(t *testing.T, proxy *s3test.Corrupter, modes []verifyMode, configure func(*uploader.Config)) {
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
	for _, mode := range modes {
		up := proxy.Uploader(t, func(c *uploader.Config) {
			c.MultipartThreshold, c.PartSize = 5<<20, 5<<20
			c.Verify, c.Checksum = mode.verify, mode.checksum
			if configure != nil {
				configure(c)
			}
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
