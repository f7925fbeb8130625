package uploader_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/uploader"
)

func randomFile(t *testing.T, size int) (*os.File, []byte) {
	t.Helper()
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(size), 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	p := filepath.Join(t.TempDir(), "f.ts")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, b
}

// Every upload path stores the exact bytes, with the content type and cache policy of its kind,
// on an in-process server and on a real gateway.
func TestPutStoresExactBytes(t *testing.T) {
	ctx := context.Background()
	ts, _ := media.ForHLS("x.ts")
	for _, srv := range s3test.Both(t) {
		u := srv.Uploader(t, func(c *uploader.Config) { c.Prefix = "pfx/" })
		for _, tc := range []struct {
			name  string
			size  int
			parts int
		}{
			{"empty", 0, 0},
			{"segment", 1<<20 + 17, 0},
			{"just-under-threshold", 16<<20 - 1, 0},
			{"multipart", 16<<20 + 3<<20 + 5, 4}, // 5 MiB parts: 5+5+5+4
		} {
			t.Run(srv.Name+"/"+tc.name, func(t *testing.T) {
				f, want := randomFile(t, tc.size)
				obj, err := u.Put(ctx, "live/"+tc.name+".ts", f, int64(tc.size), ts, "origin-"+tc.name)
				if err != nil {
					t.Fatal(err)
				}
				if obj.Key != "pfx/live/"+tc.name+".ts" || obj.Size != int64(tc.size) || obj.Parts != tc.parts {
					t.Fatalf("object %+v, want key pfx/live/%s.ts size %d parts %d", obj, tc.name, tc.size, tc.parts)
				}
				got, err := u.Get(ctx, "live/"+tc.name+".ts")
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("stored %d bytes differ from the local %d", len(got), len(want))
				}
				// Holds proves this origin's upload, and no other's.
				if held, err := u.Holds(ctx, "live/"+tc.name+".ts", "origin-"+tc.name); err != nil || !held {
					t.Fatalf("Holds(own origin) = %v, %v", held, err)
				}
				if held, _ := u.Holds(ctx, "live/"+tc.name+".ts", "another"); held {
					t.Fatal("Holds accepted another origin")
				}
				st, found, err := u.Stat(ctx, "live/"+tc.name+".ts")
				if err != nil || !found || st.Size != int64(tc.size) || st.ETag != obj.ETag {
					t.Fatalf("stat %+v found=%v err=%v, want size %d etag %s", st, found, err, tc.size, obj.ETag)
				}
			})
		}
		t.Run(srv.Name+"/headers", func(t *testing.T) {
			f, _ := randomFile(t, 1000)
			if _, err := u.Put(ctx, "live/h.ts", f, 1000, ts, "h"); err != nil {
				t.Fatal(err)
			}
			h, err := u.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("pfx/live/h.ts")})
			if err != nil {
				t.Fatal(err)
			}
			if ct := aws.ToString(h.ContentType); ct != "video/mp2t" {
				t.Errorf("Content-Type %q, want video/mp2t", ct)
			}
			// gofakes3 does not keep Cache-Control; the real gateway does.
			if cc := aws.ToString(h.CacheControl); srv.Name != "gofakes3" && !strings.Contains(cc, "immutable") {
				t.Errorf("Cache-Control %q, want immutable", cc)
			}
		})
		t.Run(srv.Name+"/missing", func(t *testing.T) {
			_, found, err := u.Stat(ctx, "live/nope.ts")
			if err != nil || found {
				t.Fatalf("stat of a missing key: found=%v err=%v", found, err)
			}
			if held, err := u.Holds(ctx, "live/nope.ts", "x"); err != nil || held {
				t.Fatalf("Holds of a missing key: %v, %v", held, err)
			}
		})
		t.Run(srv.Name+"/foreign-object", func(t *testing.T) {
			// Written by someone else (no srs-offload metadata), same key and size: not ours.
			_, err := u.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("pfx/live/foreign.ts"),
				Body: strings.NewReader("0123456789")})
			if err != nil {
				t.Fatal(err)
			}
			if held, err := u.Holds(ctx, "live/foreign.ts", ""); err != nil || held {
				t.Fatalf("Holds of a foreign object: %v, %v", held, err)
			}
		})
	}
}

// A storage answer whose ETag is not the MD5 of the local bytes is a verification failure, for a
// single PUT and for a multipart upload alike.
func TestPutRejectsWrongETag(t *testing.T) {
	tamper := s3test.WrongETags(func(*http.Request) bool { return true })
	srv := s3test.Fake(t, tamper)
	u := srv.Uploader(t, nil)
	ts, _ := media.ForHLS("x.ts")
	for _, size := range []int{1234, 17 << 20} {
		f, _ := randomFile(t, size)
		_, err := u.Put(context.Background(), "live/x.ts", f, int64(size), ts, "x")
		if !errors.Is(err, uploader.ErrVerify) {
			t.Fatalf("size %d: err = %v, want ErrVerify", size, err)
		}
	}
}
