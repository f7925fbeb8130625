package uploader

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
)

// Verification modes (storage.verify): how an upload is proven before its local file may go.
const (
	// VerifyAuto picks per provider and per object: checksum for objects storage encrypts with
	// SSE-KMS or SSE-C (their ETag is not an MD5), md5 where the provider's ETag is the MD5,
	// checksum where it stores checksums, size otherwise.
	VerifyAuto = "auto"
	// VerifyMD5 compares the ETag storage computed with the MD5 (multipart: the MD5 of the part
	// MD5s) computed here.
	VerifyMD5 = "md5"
	// VerifyChecksum sends a checksum computed here as a header (per part for multipart) and
	// compares the checksum storage reports: full-object where the provider supports it for the
	// algorithm, composite (checksum of the part checksums) otherwise.
	VerifyChecksum = "checksum"
	// VerifySize is the weakest: storage is asked to check each request's Content-MD5, and only the
	// stored size is compared.
	VerifySize = "size"
)

// Checksum algorithms (storage.checksum).
const (
	ChecksumCRC32C    = "crc32c"
	ChecksumCRC64NVME = "crc64nvme"
	ChecksumSHA256    = "sha256"
)

var crc32cTable = crc32.MakeTable(crc32.Castagnoli)

// crc64NVMETable is CRC-64/NVME (the reflected polynomial S3 uses for CRC64NVME).
var crc64NVMETable = crc64.MakeTable(0x9a6c9329ac4bc9b5)

func newChecksum(alg string) hash.Hash {
	switch alg {
	case ChecksumCRC32C:
		return crc32.New(crc32cTable)
	case ChecksumCRC64NVME:
		return crc64.New(crc64NVMETable)
	case ChecksumSHA256:
		return sha256.New()
	}
	return nil
}

func sdkAlgorithm(alg string) types.ChecksumAlgorithm {
	switch alg {
	case ChecksumCRC32C:
		return types.ChecksumAlgorithmCrc32c
	case ChecksumCRC64NVME:
		return types.ChecksumAlgorithmCrc64nvme
	case ChecksumSHA256:
		return types.ChecksumAlgorithmSha256
	}
	return ""
}

// setChecksum sets the one field of alg among an input's or part's checksum fields.
func setChecksum(alg, value string, crc32c, crc64nvme, sha **string) {
	switch alg {
	case ChecksumCRC32C:
		*crc32c = aws.String(value)
	case ChecksumCRC64NVME:
		*crc64nvme = aws.String(value)
	case ChecksumSHA256:
		*sha = aws.String(value)
	}
}

// reported is what storage says about an object it holds (a PUT answer or a HEAD).
type reported struct {
	etag      string
	size      int64 // -1: not reported
	crc32c    string
	crc64nvme string
	sha256    string
	typ       types.ChecksumType
	sse       types.ServerSideEncryption
	sseC      string
	googMD5   string // base64 md5 of x-goog-hash (GCS, objects of a single PUT)
}

func (r reported) checksum(alg string) string {
	switch alg {
	case ChecksumCRC32C:
		return r.crc32c
	case ChecksumCRC64NVME:
		return r.crc64nvme
	case ChecksumSHA256:
		return r.sha256
	}
	return ""
}

// encrypted: storage encrypted the object with a key of its KMS or the client's, so its ETag is
// not the MD5 of the bytes.
func (r reported) encrypted() bool {
	return r.sse == types.ServerSideEncryptionAwsKms || r.sse == types.ServerSideEncryptionAwsKmsDsse || r.sseC != ""
}

// sameChecksum compares a reported checksum with the one computed here; a composite checksum may
// be reported with or without its "-N" part count.
func sameChecksum(got, want string) bool {
	if got == "" || want == "" {
		return false
	}
	if got == want {
		return true
	}
	g, gn, _ := strings.Cut(got, "-")
	w, wn, _ := strings.Cut(want, "-")
	return g == w && (gn == "" || wn == "") // one of them carries the count, the other not
}

// need says which digests of the local file an upload computes, all in one read pass.
type need struct {
	md5Whole bool   // the file's MD5 (single PUT: Content-MD5 and the expected ETag)
	md5Parts bool   // the part MD5s (multipart ETag; in size mode each part's Content-MD5)
	checksum string // algorithm of the checksum sent and compared, "" for none
	size     bool   // size may be the proof (written to the object's metadata for Holds)
}

// needFor is what mode u.verify needs for an upload of that many parts (0: single PUT).
func (u *Uploader) needFor(multipart bool) need {
	var n need
	switch u.verify {
	case VerifyMD5:
		n.md5Whole, n.md5Parts = true, multipart
	case VerifyChecksum:
		n.checksum = u.checksum
		if u.provider.googHash { // GCS checks each body by its Content-MD5
			n.md5Whole, n.md5Parts = true, multipart
		}
	case VerifySize:
		n.md5Whole, n.md5Parts, n.size = !multipart, multipart, true
	default: // auto: the checksum travels with every object, the ETag is compared where it is an MD5
		if u.provider.checksums || u.provider.googHash {
			n.checksum = u.checksum
		}
		if u.provider.etagMD5 || u.provider.googHash {
			n.md5Whole, n.md5Parts = true, multipart
		}
		n.size = !u.provider.checksums && !u.provider.etagMD5 && !u.provider.googHash
	}
	return n
}

// digests of a local file.
type digests struct {
	md5       []byte   // whole file
	partMD5s  [][]byte // per part
	etag      string   // multipart ETag: MD5 of the part MD5s, "-N"
	sum       string   // full-object checksum, base64
	partSums  []string // per part, base64
	composite string   // checksum of the part checksums, base64, "-N"
	parts     int
	size      int64
}

// digest reads the local file once for what n asks (the whole-file MD5 and the part MD5s, when
// both are wanted, side by side on two cores, as MD5 is the slowest step of a big upload).
// partSize 0 means a single PUT.
func digest(src io.ReaderAt, size, partSize int64, n need) (digests, error) {
	var d digests
	single := partSize == 0
	if single {
		partSize = max(size, 1)
	}
	var partErr error
	done := make(chan struct{})
	// The part MD5s, on their own core when the whole-file hashes also run.
	go func() {
		defer close(done)
		if !n.md5Parts {
			return
		}
		all, part := md5.New(), md5.New()
		partErr = eachPart(src, size, partSize, func(r io.Reader) error {
			part.Reset()
			if _, err := io.Copy(part, r); err != nil {
				return err
			}
			s := part.Sum(nil)
			d.partMD5s = append(d.partMD5s, s)
			all.Write(s)
			return nil
		})
		d.etag = fmt.Sprintf("%s-%d", hex.EncodeToString(all.Sum(nil)), len(d.partMD5s))
	}()
	var whole, sum hash.Hash
	var ws []io.Writer
	if n.md5Whole {
		whole = md5.New()
		ws = append(ws, whole)
	}
	if n.checksum != "" {
		sum = newChecksum(n.checksum)
		ws = append(ws, sum)
	}
	var err error
	if len(ws) > 0 {
		var part, all hash.Hash
		if n.checksum != "" && !single {
			part, all = newChecksum(n.checksum), newChecksum(n.checksum)
			ws = append(ws, part)
		}
		w := io.MultiWriter(ws...)
		err = eachPart(src, size, partSize, func(r io.Reader) error {
			if part != nil {
				part.Reset()
			}
			if _, err := io.Copy(w, r); err != nil {
				return err
			}
			if part != nil {
				s := part.Sum(nil)
				d.partSums = append(d.partSums, base64.StdEncoding.EncodeToString(s))
				all.Write(s)
			}
			return nil
		})
		if all != nil {
			d.composite = fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(all.Sum(nil)), len(d.partSums))
		}
	}
	<-done
	if err = cmpErr(err, partErr); err != nil {
		return digests{}, fmt.Errorf("read local file: %w", err)
	}
	if whole != nil {
		d.md5 = whole.Sum(nil)
	}
	if sum != nil {
		d.sum = base64.StdEncoding.EncodeToString(sum.Sum(nil))
	}
	d.parts = int((size + partSize - 1) / partSize)
	d.size = size
	return d, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// eachPart calls f with a reader of each part of the file in order.
func eachPart(src io.ReaderAt, size, partSize int64, f func(io.Reader) error) error {
	for off := int64(0); off < size || off == 0; off += partSize {
		n := min(partSize, size-off)
		cr := &countReader{r: io.NewSectionReader(src, off, n)}
		if err := f(cr); err != nil {
			return err
		}
		if cr.n != n {
			return fmt.Errorf("got %d bytes at %d, want %d (file shrank)", cr.n, off, n)
		}
		if size == 0 {
			break
		}
	}
	return nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// partInputs sets, on the requests of one multipart upload, the values computed here: the
// checksum type on CreateMultipartUpload, each part's checksum (or in size mode its Content-MD5)
// on UploadPart, and the full-object checksum and the part checksums on CompleteMultipartUpload.
// They go as plain headers: with the value given, the SDK neither computes one nor sends an
// aws-chunked trailer.
func partInputs(alg string, full bool, d digests) func(*s3.Options) {
	typ := types.ChecksumTypeComposite
	if full {
		typ = types.ChecksumTypeFullObject
	}
	part := func(num *int32) int { return int(aws.ToInt32(num)) - 1 }
	mw := middleware.InitializeMiddlewareFunc("srs-offload-part-checksums", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		switch p := in.Parameters.(type) {
		case *s3.CreateMultipartUploadInput:
			if alg != "" {
				p.ChecksumType = typ
			}
		case *s3.UploadPartInput:
			i := part(p.PartNumber)
			if alg != "" && i >= 0 && i < len(d.partSums) {
				setChecksum(alg, d.partSums[i], &p.ChecksumCRC32C, &p.ChecksumCRC64NVME, &p.ChecksumSHA256)
			}
			if alg == "" && i >= 0 && i < len(d.partMD5s) {
				p.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(d.partMD5s[i]))
			}
		case *s3.CompleteMultipartUploadInput:
			if alg == "" {
				break
			}
			p.ChecksumType = typ
			if full {
				setChecksum(alg, d.sum, &p.ChecksumCRC32C, &p.ChecksumCRC64NVME, &p.ChecksumSHA256)
			}
			if p.MultipartUpload != nil {
				for j := range p.MultipartUpload.Parts {
					cp := &p.MultipartUpload.Parts[j]
					if i := part(cp.PartNumber); i >= 0 && i < len(d.partSums) {
						setChecksum(alg, d.partSums[i], &cp.ChecksumCRC32C, &cp.ChecksumCRC64NVME, &cp.ChecksumSHA256)
					}
				}
			}
		case *s3.PutObjectInput: // a file of exactly one part goes up in a single PUT
			if alg != "" {
				setChecksum(alg, d.sum, &p.ChecksumCRC32C, &p.ChecksumCRC64NVME, &p.ChecksumSHA256)
			} else if d.md5 != nil {
				p.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(d.md5))
			}
		}
		return next.HandleInitialize(ctx, in)
	})
	return s3.WithAPIOptions(func(s *middleware.Stack) error { return s.Initialize.Add(mw, middleware.Before) })
}

// method is the mode that proves this object: the configured one, or auto's pick for it.
func (u *Uploader) method(r reported) string {
	if u.verify != VerifyAuto {
		return u.verify
	}
	switch {
	case u.provider.googHash: // x-goog-hash crc32c, for every object
		return VerifyChecksum
	case r.encrypted() && u.provider.checksums:
		return VerifyChecksum
	case u.provider.etagMD5 && !r.encrypted():
		return VerifyMD5
	case u.provider.checksums:
		return VerifyChecksum
	}
	return VerifySize
}

// Metadata written with the object so that Holds can prove it later with the same mode.
func (n need) metadata(origin string, d digests, multipart bool, full bool) map[string]string {
	m := map[string]string{metaOrigin: origin}
	if d.md5 != nil && !multipart {
		m[metaETag] = hex.EncodeToString(d.md5)
	}
	if multipart && d.etag != "" && n.md5Whole {
		m[metaETag] = d.etag
		if d.md5 != nil {
			m[metaMD5] = hex.EncodeToString(d.md5)
		}
	}
	if n.checksum != "" {
		v := d.sum
		if multipart && !full {
			v = d.composite
		}
		m[metaChecksum] = n.checksum + ":" + v
	}
	if n.size {
		m[metaSize] = strconv.FormatInt(d.size, 10)
	}
	return m
}

// verified reports whether what storage reports about an object proves the bytes an earlier
// upload wrote, by the metadata that upload stored with it, compared the way the verify mode
// proves this object (see method).
func (u *Uploader) verified(r reported, meta map[string]string) bool {
	switch u.method(r) {
	case VerifyMD5:
		e := meta[metaETag]
		return e != "" && (r.etag == e || r.etag == meta[metaMD5])
	case VerifyChecksum:
		alg, v, ok := strings.Cut(meta[metaChecksum], ":")
		return ok && sameChecksum(r.checksum(alg), v)
	default:
		s := meta[metaSize]
		return s != "" && s == strconv.FormatInt(r.size, 10)
	}
}
