package uploader

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// googResponse is the header of an answer carrying these x-goog-hash values.
func googResponse(values ...string) http.Header {
	h := http.Header{}
	for _, v := range values {
		h.Add("X-Goog-Hash", v)
	}
	return h
}

func crc32cB64(b []byte) string {
	var c [4]byte
	binary.BigEndian.PutUint32(c[:], crc32.Checksum(b, crc32cTable))
	return base64.StdEncoding.EncodeToString(c[:])
}

func md5B64(b []byte) string {
	s := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

// GCS uploads are proven by x-goog-hash: its crc32c (of the whole object, multipart too) must be
// the one computed here, and its md5, where GCS reports one, too. Any difference, or no crc32c
// at all, is ErrVerify: the worker keeps a file whose upload ends in ErrVerify (never purged).
func TestGCSVerify(t *testing.T) {
	body := []byte(strings.Repeat("segment bytes ", 5000))
	other := append([]byte(nil), body...)
	other[len(other)/2] ^= 1
	crc, m := crc32cB64(body), md5B64(body)

	// Parsing: one header per hash, or both in one, in either order.
	for _, vals := range [][]string{
		{"crc32c=" + crc, "md5=" + m},
		{"crc32c=" + crc + ",md5=" + m},
		{"md5=" + m + ", crc32c=" + crc},
	} {
		var r reported
		r.fromGoogHash(googResponse(vals...))
		if r.crc32c != crc || r.googMD5 != m || r.typ != "FULL_OBJECT" {
			t.Errorf("%q: crc32c %q md5 %q type %q", vals, r.crc32c, r.googMD5, r.typ)
		}
	}
	var none reported
	none.fromGoogHash(googResponse())
	if none.crc32c != "" || none.googMD5 != "" {
		t.Errorf("no header: %+v", none)
	}

	u := &Uploader{provider: presets["gcs"], verify: VerifyAuto, checksum: ChecksumCRC32C, bucket: "b", log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	n := u.needFor(false)
	if n.checksum != ChecksumCRC32C || !n.md5Whole {
		t.Fatalf("gcs needs %+v: want crc32c computed and the MD5 for Content-MD5", n)
	}
	d, err := digest(strings.NewReader(string(body)), int64(len(body)), 0, n)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		hashes []string
		ok     bool
		says   string
	}{
		{"crc32c and md5 match", []string{"crc32c=" + crc, "md5=" + m}, true, ""},
		{"crc32c only (a composite object)", []string{"crc32c=" + crc}, true, ""},
		{"crc32c differs", []string{"crc32c=" + crc32cB64(other), "md5=" + m}, false, "CRC32C"},
		{"md5 differs", []string{"crc32c=" + crc, "md5=" + md5B64(other)}, false, "x-goog-hash md5"},
		{"both differ", []string{"crc32c=" + crc32cB64(other) + ",md5=" + md5B64(other)}, false, "CRC32C"},
	} {
		var r reported
		r.size = -1
		r.fromGoogHash(googResponse(c.hashes...))
		obj, err := u.check(context.Background(), "k", int64(len(body)), r, n, d, false, true)
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.ok && obj.Verified != "checksum crc32c":
			t.Errorf("%s: verified by %q", c.name, obj.Verified)
		case !c.ok && !errors.Is(err, ErrVerify):
			t.Errorf("%s: %v, want ErrVerify (the file stays)", c.name, err)
		case !c.ok && !strings.Contains(err.Error(), c.says):
			t.Errorf("%s: %v does not say %q", c.name, err, c.says)
		}
	}

	// Holds (a later attempt proving an earlier upload) reads the same header: the object's
	// metadata carries the crc32c it was stored with.
	meta := n.metadata("origin", d, true, true)
	for _, c := range []struct {
		hash string
		held bool
	}{{"crc32c=" + crc, true}, {"crc32c=" + crc32cB64(other), false}, {"md5=" + m, false}} {
		var r reported
		r.fromGoogHash(googResponse(c.hash))
		if got := u.verified(r, meta); got != c.held {
			t.Errorf("verified with x-goog-hash %s: %v, want %v", c.hash, got, c.held)
		}
	}
}
