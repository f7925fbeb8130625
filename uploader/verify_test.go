package uploader_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/uploader"
)

// verifyCases is every storage.verify mode (checksum with each algorithm) and what versitygw,
// whose ETags are MD5s and which stores checksums, is proven by.
var verifyCases = []struct{ verify, checksum, by string }{
	{uploader.VerifyAuto, "", "md5"},
	{uploader.VerifyMD5, "", "md5"},
	{uploader.VerifyChecksum, uploader.ChecksumCRC32C, "checksum crc32c"},
	{uploader.VerifyChecksum, uploader.ChecksumCRC64NVME, "checksum crc64nvme"},
	{uploader.VerifyChecksum, uploader.ChecksumSHA256, "checksum sha256"},
	{uploader.VerifySize, "", "size"},
}

// Each mode, single PUT and multipart, through a proxy in front of versitygw: untouched, every
// upload verifies by its mode and storage holds the file byte for byte; with one byte of the body
// of every PUT and part flipped on the way, no upload is reported stored, and Holds does not
// vouch for what storage kept.
func TestVerifyModesOnVersity(t *testing.T) {
	gw := s3test.Versity(t)
	proxy := s3test.Corrupt(t, gw)
	for _, size := range []int{300 << 10, 12 << 20} {
		f, want := randomFile(t, size)
		for _, c := range verifyCases {
			name := fmt.Sprintf("%s-%s-%d", c.verify, c.checksum, size)
			t.Run(name, func(t *testing.T) {
				u := proxy.Uploader(t, func(cfg *uploader.Config) {
					cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
					cfg.Verify, cfg.Checksum = c.verify, c.checksum
				})
				typ, _ := media.ForDVR("x.flv")
				ctx := context.Background()

				proxy.On.Store(false)
				key := "ok/" + name + ".flv"
				obj, err := u.Put(ctx, key, f, int64(size), typ, "origin-ok")
				if err != nil {
					t.Fatal(err)
				}
				if obj.Verified != c.by || obj.Size != int64(size) {
					t.Fatalf("object %+v, want %d bytes verified by %q", obj, size, c.by)
				}
				if size > 5<<20 && obj.Parts != 3 {
					t.Fatalf("parts %d, want 3", obj.Parts)
				}
				got, err := u.Get(ctx, key)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("stored bytes differ from the file (%d of %d bytes, %v)", len(got), size, err)
				}
				if held, err := u.Holds(ctx, key, "origin-ok"); err != nil || !held {
					t.Fatalf("Holds = %v, %v; want the verified upload", held, err)
				}

				proxy.On.Store(true)
				before := proxy.Flipped.Load()
				bad := "bad/" + name + ".flv"
				obj, err = u.Put(ctx, bad, f, int64(size), typ, "origin-bad")
				proxy.On.Store(false)
				if proxy.Flipped.Load() == before {
					t.Fatal("the proxy corrupted nothing")
				}
				if err == nil {
					t.Fatalf("a corrupted upload was reported stored: %+v", obj)
				}
				t.Logf("corrupted upload refused: %v", err)
				if held, herr := u.Holds(ctx, bad, "origin-bad"); herr != nil || held {
					t.Fatalf("Holds = %v, %v for a corrupted upload", held, herr)
				}
			})
		}
	}
}

// Storage reporting a checksum other than the one sent is a mismatch (ErrVerify), single PUT and
// multipart, full-object (crc32c) and composite (sha256).
func TestChecksumMismatchIsErrVerify(t *testing.T) {
	srv := s3test.Proxy(t, s3test.Versity(t), s3test.WrongChecksums)
	for _, alg := range []string{uploader.ChecksumCRC32C, uploader.ChecksumSHA256} {
		u := srv.Uploader(t, func(cfg *uploader.Config) {
			cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
			cfg.Verify, cfg.Checksum = uploader.VerifyChecksum, alg
		})
		for _, size := range []int{100 << 10, 11 << 20} {
			f, _ := randomFile(t, size)
			typ, _ := media.ForDVR("x.flv")
			key := fmt.Sprintf("%s-%d.flv", alg, size)
			_, err := u.Put(context.Background(), key, f, int64(size), typ, "o")
			if !errors.Is(err, uploader.ErrVerify) {
				t.Fatalf("%s: err = %v, want ErrVerify", key, err)
			}
			t.Logf("%s: %v", key, err)
			if held, _ := u.Holds(context.Background(), key, "o"); held {
				t.Fatalf("%s: Holds vouches for a mismatched checksum", key)
			}
		}
	}
}
