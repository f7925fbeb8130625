package uploader_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/roots"
	"github.com/srs-offload/srs-offload/uploader"
	"github.com/srs-offload/srs-offload/worker"
)

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// On the wire against a loopback server that treats headers as GCS's XML API does (s3test.GCS:
// signature checked, x-amz-checksum-* and unsigned payloads refused, Content-MD5 checked,
// x-goog-hash answered), over plain HTTP and over TLS (where the SDK's own defaults go
// unsigned): with storage.provider gcs a segment (single PUT) and a recording (multipart, 3
// parts) are stored byte for byte, verified by x-goog-hash crc32c and purged; with a byte flipped
// in storage they are never purged. Without the preset (what srs-offload sent before: checksum
// headers, x-amz-checksum-mode, UNSIGNED-PAYLOAD) the same server refuses the upload, so it can
// tell. A single PUT is proven by the PUT answer's x-goog-hash, or by a HEAD where the answer has
// none.
func TestGCSOnTheWire(t *testing.T) {
	t.Parallel()
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) {
			t.Parallel()
			g := s3test.GCS(t, tls)
			ctx := context.Background()
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
				rnd := rand.New(rand.NewPCG(rand.Uint64(), 3))
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
			log := slog.New(slog.NewTextHandler(&testWriter{t}, nil))
			gcsConfig := func(c *uploader.Config) {
				c.MultipartThreshold, c.PartSize = 5<<20, 5<<20
				c.PathStyle = nil // the preset's
				c.Log = log
			}

			// The generic preset on the same server: refused, nothing stored.
			generic := g.Uploader(t, func(c *uploader.Config) { gcsConfig(c); c.Provider = "generic" })
			f, _ := randomFile(t, 64<<10)
			ts, _ := media.ForHLS("x.ts")
			if _, err := generic.Put(ctx, "generic.ts", f, 64<<10, ts, "o"); err == nil {
				t.Fatal("the generic preset's upload was accepted by a server that refuses x-amz-checksum-*")
			}
			refused := 0
			for _, r := range g.Requests() {
				if r.Refused != "" {
					refused++
				}
			}
			if refused == 0 {
				t.Fatal("the server refused nothing of the generic preset")
			}

			// A wrong HMAC secret: the signature is checked.
			c := g.Config()
			gcsConfig(&c)
			c.SecretKey = "not-the-secret"
			wrong, err := uploader.New(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if err := wrong.CheckBucket(ctx); err == nil {
				t.Fatal("a request signed with the wrong secret was served")
			}
			if rs := g.Requests(); !strings.Contains(rs[len(rs)-1].Refused, "signature does not match") {
				t.Fatalf("a request signed with the wrong secret: refused for %q", rs[len(rs)-1].Refused)
			}

			up := g.Uploader(t, gcsConfig)
			if r := up.Resolved(); r.Provider != "gcs" || !r.SignedPayload || r.ChecksumHeaders || !r.GoogHash || !r.PathStyle {
				t.Fatalf("resolved %+v", r)
			}
			off := &worker.Offloader{Roots: set, Store: up, Purge: true, Log: log}
			before := len(g.Requests())
			for _, c := range []struct {
				size   int
				noHash bool
			}{{200<<10 + 3, false}, {200<<10 + 4, true}, {11<<20 + 5, false}} {
				size, name := c.size, fmt.Sprintf("%d", c.size)
				g.NoHashOnPut.Store(c.noHash) // the single PUT is then proven by a HEAD

				g.Corrupt.Store(true)
				flipped := g.Flipped.Load()
				p, want := write("dvr/bad/"+name+".flv", size)
				for attempt := range 2 {
					err := off.Offload(ctx, p)
					if err == nil {
						t.Fatalf("%s: attempt %d of an upload storage corrupted succeeded", name, attempt)
					}
					if !errors.Is(err, uploader.ErrVerify) {
						t.Fatalf("%s: attempt %d: %v, want a verification failure", name, attempt, err)
					}
					if !strings.Contains(err.Error(), "CRC32C") && !strings.Contains(err.Error(), "x-goog-hash md5") {
						t.Errorf("%s: %v does not name the hash that differed", name, err)
					}
				}
				if g.Flipped.Load() == flipped {
					t.Fatalf("%s: the server corrupted nothing", name)
				}
				if got, err := os.ReadFile(p.Path); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s: the local file of a corrupted upload is gone or changed (%v)", name, err)
				}

				g.Corrupt.Store(false)
				p, want = write("dvr/ok/"+name+".flv", size)
				if err := off.Offload(ctx, p); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if _, err := os.Lstat(p.Path); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("%s: verified upload not purged (%v)", name, err)
				}
				got, err := up.Get(ctx, p.Key)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s: stored %d bytes (%v), not the file's %d", name, len(got), err, size)
				}
			}

			// What went on the wire for the preset: nothing refused, every body signed by its
			// SHA-256 and carrying Content-MD5, no checksum header, parts for the recording.
			parts, puts, heads := 0, 0, 0
			for _, r := range g.Requests()[before:] {
				if r.Refused != "" {
					t.Errorf("%s %s?%s refused: %s", r.Method, r.Path, r.Query, r.Refused)
				}
				if h := r.Header.Get("X-Amz-Content-Sha256"); !sha256Hex.MatchString(h) {
					t.Errorf("%s %s?%s: x-amz-content-sha256 %q, want the body's SHA-256", r.Method, r.Path, r.Query, h)
				}
				for name := range r.Header {
					if l := strings.ToLower(name); strings.HasPrefix(l, "x-amz-checksum") || l == "x-amz-trailer" || l == "x-amz-sdk-checksum-algorithm" {
						t.Errorf("%s %s?%s sent %s", r.Method, r.Path, r.Query, name)
					}
				}
				switch {
				case r.Method == "PUT" && strings.Contains(r.Query, "partNumber="):
					parts++
				case r.Method == "PUT":
					puts++
				case r.Method == "HEAD":
					heads++
				}
				if r.Method == "PUT" && r.Header.Get("Content-Md5") == "" {
					t.Errorf("PUT %s?%s without Content-MD5", r.Path, r.Query)
				}
			}
			// 2 corrupted attempts and 1 good upload per file: 6 single PUTs, 3×3 parts.
			if puts != 6 || parts != 9 || heads == 0 {
				t.Errorf("saw %d PUTs, %d parts, %d HEADs; want 6, 9, some", puts, parts, heads)
			}
		})
	}
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Logf("%s", bytes.TrimRight(b, "\n"))
	return len(b), nil
}

// The digitalocean preset signs every body by its SHA-256 over TLS too, where the SDK's own
// default for PutObject and UploadPart is UNSIGNED-PAYLOAD (Spaces rejects some unsigned and
// streaming forms). The GCS imitation refuses unsigned payloads, so it serves as the strict
// server here; the generic preset is refused by it for the same reason.
func TestDigitalOceanSignsPayloads(t *testing.T) {
	t.Parallel()
	g := s3test.GCS(t, true)
	ctx := context.Background()
	ts, _ := media.ForHLS("x.ts")
	for _, c := range []struct {
		provider string
		ok       bool
	}{{"digitalocean", true}, {"generic", false}} {
		before := len(g.Requests())
		up := g.Uploader(t, func(cf *uploader.Config) { cf.Provider, cf.Verify = c.provider, uploader.VerifyMD5 })
		f, want := randomFile(t, 300<<10)
		obj, err := up.Put(ctx, c.provider+".ts", f, int64(len(want)), ts, "o")
		if c.ok != (err == nil) {
			t.Fatalf("%s: %+v, %v", c.provider, obj, err)
		}
		if !c.ok {
			if !strings.Contains(err.Error(), "UNSIGNED-PAYLOAD") {
				t.Errorf("%s refused for another reason: %v", c.provider, err)
			}
			continue
		}
		if got, err := up.Get(ctx, c.provider+".ts"); err != nil || !bytes.Equal(got, want) || obj.Verified != uploader.VerifyMD5 {
			t.Fatalf("%s: stored %d bytes (%v), verified by %q", c.provider, len(got), err, obj.Verified)
		}
		for _, r := range g.Requests()[before:] {
			if h := r.Header.Get("X-Amz-Content-Sha256"); !sha256Hex.MatchString(h) || r.Refused != "" {
				t.Errorf("%s %s %s: x-amz-content-sha256 %q, refused %q", c.provider, r.Method, r.Path, h, r.Refused)
			}
		}
	}
}
