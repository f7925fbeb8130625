// Package uploader puts local files into S3-compatible storage with aws-sdk-go-v2 and proves that
// the stored bytes are the local bytes before anyone deletes the local copy. It is the one package
// that imports the SDK (it implements storage.Store), and it owns the cleanup of multipart uploads
// killed workers left behind (Janitor).
package uploader

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/storage"
)

// Config is what the uploader needs to reach a bucket.
type Config struct {
	// Provider is a name of Providers; empty: detected from Endpoint's host (empty Endpoint: aws).
	Provider  string
	Endpoint  string // empty: AWS, or the provider's endpoint made from Region
	Region    string
	Bucket    string
	PathStyle *bool // nil: the provider's default
	AccessKey string
	SecretKey string
	// Prefix is put in front of every key.
	Prefix string
	// Files of at least MultipartThreshold bytes go up in parts of PartSize, PartConcurrency at a time.
	MultipartThreshold int64
	PartSize           int64
	PartConcurrency    int
	// MaxConns sizes the shared connection pool; about twice the number of upload workers.
	MaxConns int
	// Verify is how an upload is proven before its file may be deleted: VerifyAuto (""),
	// VerifyMD5, VerifyChecksum or VerifySize.
	Verify string
	// Checksum is the algorithm of VerifyChecksum (and of auto's checksum): ChecksumCRC32C
	// (""), ChecksumCRC64NVME or ChecksumSHA256.
	Checksum string
	// Log gets what the uploader cleans up on its own (default: slog.Default()).
	Log *slog.Logger

	// Objects are the options every object is written with.
	Objects ObjectOptions
	// Credentials beyond AccessKey/SecretKey (see credentials.go).
	Credentials Credentials
	// SSE is the server-side encryption each upload asks for: "", SSES3 (AES256) or SSEKMS
	// (aws:kms). Empty leaves it to the bucket's default encryption.
	SSE string
	// KMSKeyID is the KMS key of SSE-KMS (an id, ARN or alias; MinIO: the key name); empty: the
	// account's default key.
	KMSKeyID string
	// BucketKey asks for an S3 Bucket Key with SSE-KMS (fewer KMS requests).
	BucketKey bool
	// SSECKey, when set, is the 32-byte customer key of SSE-C, sent with every object request.
	// It excludes SSE. It is never logged nor put in an error.
	SSECKey []byte
	// CABundle, when not empty, is the PEM certificates that sign the endpoint's TLS certificate
	// (a private CA, a test server), trusted besides the system's.
	CABundle []byte
}

// Uploader uploads and verifies. It is safe for concurrent use.
type Uploader struct {
	client    *s3.Client
	parts     *manager.Uploader
	bucket    string
	prefix    string
	threshold int64
	partSize  int64
	provider  provider
	resolved  Resolved
	payload   func(*s3.Options) // how bodies are signed: unsignedPayload or signedPayload
	verify    string
	checksum  string
	enc       encryption
	log       *slog.Logger
	objects   ObjectOptions
}

// ErrVerify means storage holds bytes other than the local file's. The local file must stay.
var ErrVerify = storage.ErrVerify

// New builds the client. It makes no request; call CheckBucket for that.
func New(ctx context.Context, c Config) (*Uploader, error) {
	if c.Bucket == "" {
		return nil, errors.New("storage.bucket: required")
	}
	if c.PartSize < manager.MinUploadPartSize {
		c.PartSize = manager.MinUploadPartSize
	}
	if c.MultipartThreshold < c.PartSize {
		c.MultipartThreshold = c.PartSize
	}
	if c.PartConcurrency < 1 {
		c.PartConcurrency = 1
	}
	if c.MaxConns < 2 {
		c.MaxConns = 32
	}
	c.Verify = cmp.Or(c.Verify, VerifyAuto)
	switch c.Verify {
	case VerifyAuto, VerifyMD5, VerifyChecksum, VerifySize:
	default:
		return nil, fmt.Errorf("storage.verify: want auto, md5, checksum or size, got %q", c.Verify)
	}
	c.Checksum = cmp.Or(c.Checksum, ChecksumCRC32C)
	if newChecksum(c.Checksum) == nil {
		return nil, fmt.Errorf("storage.checksum: want crc32c, crc64nvme or sha256, got %q", c.Checksum)
	}
	log := cmp.Or(c.Log, slog.Default())
	if c.Verify == VerifySize {
		log.Warn("storage.verify is size, the weakest check: storage is asked to check each request's Content-MD5, " +
			"and nothing compares a digest of what it stored; use md5 or checksum where the provider allows")
	}
	enc, err := newEncryption(c)
	if err != nil {
		return nil, err
	}
	resolved, p, err := resolve(c)
	if err != nil {
		return nil, err
	}
	resolved.Encryption = enc.String()
	c.Endpoint = resolved.Endpoint
	payload := unsignedPayload
	if p.signedPayload {
		payload = signedPayload
	}

	// One pooled client for every request. The SDK's default keeps only 10 idle connections per
	// host, so with more workers than that connections would be closed and re-dialled.
	httpClient := awshttp.NewBuildableClient().
		WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = c.MaxConns
			t.MaxIdleConnsPerHost = c.MaxConns
		}).
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = 5 * time.Second })

	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(c.Region),
		awsconfig.WithHTTPClient(httpClient),
		// Few SDK attempts and no retry quota: asynq owns long-horizon retries, and an outage must
		// not exhaust a process-wide token bucket.
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 3
				o.RateLimiter = ratelimit.None
			})
		}),
		// The SDK's default (when_supported) sends aws-chunked bodies with checksum trailers, which
		// several S3-compatible servers store verbatim or reject. We send Content-MD5 ourselves and
		// verify after the upload instead.
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		// The SDK's own lines (e.g. the IMDS client's "falling back to IMDSv1") go to our log, not
		// as plain text to stderr.
		awsconfig.WithLogger(sdkLogger{log.With("component", "aws-sdk")}),
	}
	if len(c.CABundle) > 0 {
		opts = append(opts, awsconfig.WithCustomCABundle(bytes.NewReader(c.CABundle)))
	}
	if c.AccessKey != "" || c.SecretKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, c.Credentials.SessionToken)))
	}
	if c.Credentials.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(c.Credentials.Profile))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	c.Credentials.assumeRole(&awsCfg)
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = resolved.PathStyle
		o.DisableLogOutputChecksumValidationSkipped = true
		if p.signedPayload {
			// Every request: the SDK's own choice is UNSIGNED-PAYLOAD for PutObject and
			// UploadPart over TLS, and this keeps any other operation from going unsigned.
			o.APIOptions = append(o.APIOptions, signPayloads)
		}
	})
	parts := manager.NewUploader(client, func(m *manager.Uploader) {
		m.PartSize = c.PartSize
		m.Concurrency = c.PartConcurrency
		m.LeavePartsOnError = false // abort a failed multipart upload
		m.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		m.ClientOptions = append(m.ClientOptions, payload)
	})
	return &Uploader{
		client: client, parts: parts, bucket: c.Bucket, prefix: c.Prefix,
		threshold: c.MultipartThreshold, partSize: c.PartSize, provider: p, resolved: resolved, payload: payload, enc: enc, log: log,
		verify: c.Verify, checksum: c.Checksum, objects: c.Objects,
	}, nil
}

// Bucket is the bucket name.
func (u *Uploader) Bucket() string { return u.bucket }

// Key returns the full object key for a key made by a template (the prefix in front).
func (u *Uploader) Key(key string) string { return u.prefix + key }

// CheckBucket makes one request to prove the endpoint, credentials and bucket work.
func (u *Uploader) CheckBucket(ctx context.Context) error {
	_, err := u.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(u.bucket)})
	if err != nil {
		return classify(fmt.Errorf("storage.bucket %q is not reachable (provider %s): %w", u.bucket, u.provider.name, err))
	}
	return nil
}

// Object and Source are the domain's (package storage).
type (
	Object = storage.Object
	Source = storage.Source
)

// The Uploader is srs-offload's object storage.
var _ storage.Store = (*Uploader)(nil)

// Object metadata written with every upload, so that a later attempt can prove an earlier one
// stored exactly this file (see Holds).
const (
	metaOrigin = "srs-offload-origin" // the caller's identity of the local file
	metaETag   = "srs-offload-etag"   // the ETag the local bytes give: MD5, or the multipart ETag
	metaMD5    = "srs-offload-md5"    // the whole file's MD5, for servers that report it for multipart
	// the checksum storage reports for these bytes, "algorithm:base64" (composite: "...-N")
	metaChecksum = "srs-offload-checksum"
	metaSize     = "srs-offload-size" // storage.verify size: the size is the proof
)

// Put uploads size bytes of src under key (the prefix is added here) and verifies them. It returns
// nil only when storage has confirmed the exact bytes by the verify mode (see VerifyAuto): the
// ETag storage computed equals the MD5 (single PUT) or the multipart ETag (MD5 of the part MD5s)
// computed here from the local file, or the checksum storage reports equals the one computed
// here, or (size mode) the stored size equals the local size. origin names the local file (ASCII, e.g. a task id); it
// is stored with the object for Holds.
func (u *Uploader) Put(ctx context.Context, key string, src Source, size int64, t media.Type, origin string) (Object, error) {
	obj, err := u.put(ctx, u.Key(key), src, size, t, origin, false)
	return obj, classify(err)
}

// ErrConflict means the key holds an object another file stored.
var ErrConflict = storage.ErrConflict

// PutNew is Put for media, which must never replace another file's object: SRS reuses names
// (init.mp4 is rewritten within a session; [stream]-[seq].ts restarts at 0 when a source is
// recreated), and a playlist already in storage may name the old object. It writes only where the
// key is free (If-None-Match: *) or holds this origin's own object; when another file's object is
// there it stores under an alternate key made from the origin, and returns the key it used.
func (u *Uploader) PutNew(ctx context.Context, key string, src Source, size int64, t media.Type, origin string) (string, Object, error) {
	obj, err := u.putNew(ctx, key, src, size, t, origin)
	if !errors.Is(err, ErrConflict) {
		return key, obj, classify(err)
	}
	alt := alternateKey(key, origin)
	obj, err = u.putNew(ctx, alt, src, size, t, origin)
	return alt, obj, classify(err)
}

func (u *Uploader) putNew(ctx context.Context, key string, src Source, size int64, t media.Type, origin string) (Object, error) {
	full := u.Key(key)
	// Look first where the header is not honoured, and for multipart uploads (some servers ignore
	// it on CompleteMultipartUpload; a HEAD is nothing next to a multipart upload). A small race
	// remains there between two different files.
	if !u.provider.conditionalWrites || size >= u.threshold {
		if err := u.mayWrite(ctx, full, origin); err != nil {
			return Object{}, err
		}
	}
	if !u.provider.conditionalWrites {
		return u.put(ctx, full, src, size, t, origin, false)
	}
	obj, err := u.put(ctx, full, src, size, t, origin, true)
	if !isPreconditionFailed(err) {
		return obj, err
	}
	// The key is taken. Ours from an earlier attempt: done if intact, else ours to rewrite.
	if err := u.mayWrite(ctx, full, origin); err != nil {
		return Object{}, err
	}
	if obj, found, meta, err := u.head(ctx, full); err == nil && found && u.verified(obj.reported, meta) {
		return obj.Object, nil
	}
	return u.put(ctx, full, src, size, t, origin, false)
}

// mayWrite returns ErrConflict when full holds an object stored for another origin.
func (u *Uploader) mayWrite(ctx context.Context, full, origin string) error {
	_, found, meta, err := u.head(ctx, full)
	if err != nil || !found || meta[metaOrigin] == origin {
		return err
	}
	return fmt.Errorf("%w: s3://%s/%s (origin %q)", ErrConflict, u.bucket, full, meta[metaOrigin])
}

// alternateKey puts a part of the origin before the extension: live/init.mp4 → live/init~1a2b3c4d.mp4.
func alternateKey(key, origin string) string {
	tag := origin
	if i := strings.LastIndexByte(tag, '-'); i >= 0 {
		tag = tag[i+1:]
	}
	if len(tag) > 12 {
		tag = tag[:12]
	}
	ext := path.Ext(key)
	return strings.TrimSuffix(key, ext) + "~" + tag + ext
}

func isPreconditionFailed(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && (api.ErrorCode() == "PreconditionFailed" || api.ErrorCode() == "ConditionalRequestConflict")
}

func (u *Uploader) put(ctx context.Context, full string, src Source, size int64, t media.Type, origin string, ifAbsent bool) (Object, error) {
	var ifNoneMatch *string
	if ifAbsent {
		ifNoneMatch = aws.String("*")
	}
	if size >= u.threshold {
		return u.putParts(ctx, full, src, size, t, origin, ifNoneMatch)
	}
	n := u.needFor(false)
	d, err := digest(src, size, 0, n)
	if err != nil {
		return Object{}, err
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(u.bucket),
		Key:           aws.String(full),
		Body:          body(ctx, src, size),
		ContentLength: aws.Int64(size),
		ContentType:   aws.String(t.ContentType),
		CacheControl:  aws.String(t.CacheControl),
		Metadata:      n.metadata(origin, d, false, true),
		IfNoneMatch:   ifNoneMatch,
	}
	if d.md5 != nil {
		// Storage rejects the body (BadDigest) when it does not hash to this.
		in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(d.md5))
	}
	if n.checksum != "" && u.provider.checksums {
		// A precomputed value goes as a plain x-amz-checksum-* header (no aws-chunked trailer);
		// storage rejects a body that does not match it, and reports it back.
		in.ChecksumAlgorithm = sdkAlgorithm(n.checksum)
		setChecksum(n.checksum, d.sum, &in.ChecksumCRC32C, &in.ChecksumCRC64NVME, &in.ChecksumSHA256)
	}
	u.objects.apply(ctx, in, full, t)
	u.enc.put(in)
	out, err := u.client.PutObject(ctx, in, u.payload)
	if err != nil {
		return Object{}, fmt.Errorf("put s3://%s/%s: %w", u.bucket, full, err)
	}
	r := reported{etag: etag(out.ETag), size: -1, crc32c: aws.ToString(out.ChecksumCRC32C),
		crc64nvme: aws.ToString(out.ChecksumCRC64NVME), sha256: aws.ToString(out.ChecksumSHA256),
		typ: out.ChecksumType, sse: out.ServerSideEncryption, sseC: aws.ToString(out.SSECustomerAlgorithm)}
	if u.provider.googHash {
		r.fromGoogHash(rawHeader(out.ResultMetadata))
	}
	return u.check(ctx, full, size, r, n, d, false, false)
}

// check proves an upload by the mode the object calls for (see method), asking storage with a
// HEAD for what the upload's answer did not say.
func (u *Uploader) check(ctx context.Context, full string, size int64, r reported, n need, d digests, multipart, full0 bool) (Object, error) {
	m := u.method(r)
	obj := Object{Key: full, Size: size, ETag: r.etag, Verified: m}
	if multipart {
		obj.Parts = d.parts
	}
	headed := false
	head := func() error {
		if headed {
			return nil
		}
		h, found, _, err := u.head(ctx, full)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: s3://%s/%s is missing right after its upload", ErrVerify, u.bucket, full)
		}
		headed, r = true, h.reported
		return nil
	}
	if m == VerifySize || multipart {
		if err := head(); err != nil {
			return Object{}, err
		}
		if r.size != size {
			return Object{}, fmt.Errorf("%w: s3://%s/%s: size %d, local size %d", ErrVerify, u.bucket, full, r.size, size)
		}
		m = u.method(r) // the HEAD tells encryption for sure
		obj.Verified, obj.ETag = m, r.etag
	}
	switch m {
	case VerifyMD5:
		if multipart {
			// S3, MinIO, Ceph and versitygw report the multipart ETag; some servers (gofakes3)
			// report the MD5 of the whole object instead. Either one proves the content.
			whole := hex.EncodeToString(d.md5)
			if r.etag != d.etag && r.etag != whole {
				return Object{}, fmt.Errorf("%w: s3://%s/%s: ETag %q, local multipart ETag %q or MD5 %q (%d parts of %d bytes)",
					ErrVerify, u.bucket, full, r.etag, d.etag, whole, d.parts, u.partSizeFor(size))
			}
			return obj, nil
		}
		if want := hex.EncodeToString(d.md5); r.etag != want {
			return Object{}, fmt.Errorf("%w: s3://%s/%s: ETag %q, local MD5 %q", ErrVerify, u.bucket, full, r.etag, want)
		}
	case VerifyChecksum:
		alg := n.checksum
		if alg == "" {
			return Object{}, fmt.Errorf("%w: s3://%s/%s: storage encrypted the object (%s), so its ETag is not an MD5, and provider %s reports no checksums; set storage.verify",
				ErrVerify, u.bucket, full, cmp.Or(string(r.sse), "SSE-C"), u.provider.name)
		}
		want := d.sum
		if multipart && !full0 {
			want = d.composite
		}
		if r.checksum(alg) == "" {
			if err := head(); err != nil {
				return Object{}, err
			}
		}
		got := r.checksum(alg)
		if got == "" {
			return Object{}, fmt.Errorf("%w: s3://%s/%s: storage reports no %s checksum (storage.verify checksum needs a provider that stores checksums)",
				ErrVerify, u.bucket, full, strings.ToUpper(alg))
		}
		if !sameChecksum(got, want) {
			return Object{}, fmt.Errorf("%w: s3://%s/%s: %s %s %q, local %q", ErrVerify, u.bucket, full, r.typ, strings.ToUpper(alg), got, want)
		}
		if r.googMD5 != "" && d.md5 != nil {
			// GCS reports the md5 of an object stored by a single PUT: compared too.
			if want := base64.StdEncoding.EncodeToString(d.md5); r.googMD5 != want {
				return Object{}, fmt.Errorf("%w: s3://%s/%s: x-goog-hash md5 %q, local %q", ErrVerify, u.bucket, full, r.googMD5, want)
			}
		}
		obj.Verified = VerifyChecksum + " " + alg
	case VerifySize:
		if err := head(); err != nil { // single PUT in auto mode that fell back to size
			return Object{}, err
		}
		if r.size != size {
			return Object{}, fmt.Errorf("%w: s3://%s/%s: size %d, local size %d", ErrVerify, u.bucket, full, r.size, size)
		}
		if u.verify == VerifyAuto {
			u.log.Warn("object verified by its size only: storage encrypted it and reports no checksum", "key", full)
		}
	}
	return obj, nil
}

// partSize is the part size the upload of size bytes will use: the configured one, grown so the
// file fits in S3's 10,000 parts. The expected ETag depends on it.
func (u *Uploader) partSizeFor(size int64) int64 {
	ps := u.partSize
	if max := int64(manager.MaxUploadParts); size/ps >= max {
		// The manager would grow the part size itself (to size/max+1); choose it here instead, so
		// the expected ETag is computed with the size actually used.
		ps = (size/max + 1 + 1<<20 - 1) / (1 << 20) * (1 << 20)
	}
	return ps
}

func (u *Uploader) putParts(ctx context.Context, full string, src Source, size int64, t media.Type, origin string, ifNoneMatch *string) (Object, error) {
	started := time.Now()
	ps := u.partSizeFor(size)
	n := u.needFor(true)
	d, err := digest(src, size, ps, n)
	if err != nil {
		return Object{}, err
	}
	full0 := n.checksum != "" && u.provider.fullObjectFor(n.checksum)
	// An earlier attempt at this file that was killed mid-upload left its parts behind.
	if n, err := u.abortEarlier(ctx, full, started); errors.Is(err, ErrCannotListUploads) {
		u.log.Debug("no earlier attempt's multipart upload looked for", "key", full, "err", err)
	} else if err != nil {
		u.log.Warn("could not look for an earlier attempt's multipart upload", "key", full, "err", err)
	} else if n > 0 {
		u.log.Info("aborted the multipart upload of an earlier attempt", "key", full, "uploads", n)
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(u.bucket),
		Key:           aws.String(full),
		Body:          body(ctx, src, size),
		ContentLength: aws.Int64(size),
		ContentType:   aws.String(t.ContentType),
		CacheControl:  aws.String(t.CacheControl),
		Metadata:      n.metadata(origin, d, true, full0),
		IfNoneMatch:   ifNoneMatch, // the manager sends it with CompleteMultipartUpload
	}
	u.objects.apply(ctx, in, full, t) // the manager sends them with CreateMultipartUpload
	headers := n.checksum != "" && u.provider.checksums
	if headers {
		in.ChecksumAlgorithm = sdkAlgorithm(n.checksum)
	}
	var values func(*s3.Options)
	switch {
	case headers:
		values = partInputs(n.checksum, full0, d)
	case u.verify == VerifySize || u.provider.googHash:
		values = partInputs("", false, d) // each part's Content-MD5
	}
	// The manager reads each part through its own io.SectionReader of the file, so memory stays at
	// about PartConcurrency × a small copy buffer, whatever the file size.
	u.enc.put(in)
	_, err = u.parts.Upload(ctx, in, func(m *manager.Uploader) {
		m.PartSize = ps
		if values != nil {
			m.ClientOptions = append(slices.Clip(m.ClientOptions), values)
		}
	})
	if err != nil {
		return Object{}, fmt.Errorf("multipart upload s3://%s/%s: %w", u.bucket, full, err)
	}
	return u.check(ctx, full, size, reported{size: -1}, n, d, true, full0)
}

// Stat returns what storage holds under key (the prefix is added here).
func (u *Uploader) Stat(ctx context.Context, key string) (Object, bool, error) {
	h, found, _, err := u.head(ctx, u.Key(key))
	return h.Object, found, err
}

// Holds reports whether storage holds a verified upload of origin under key: an object that an
// earlier Put stored for that origin, whose ETag storage computed is still the one the local
// bytes gave. A worker whose file is gone uses it to tell "uploaded, then purged by an earlier
// attempt" from "lost", which an object of the same size alone cannot.
func (u *Uploader) Holds(ctx context.Context, key, origin string) (bool, error) {
	h, found, meta, err := u.head(ctx, u.Key(key))
	if err != nil || !found {
		return false, err
	}
	return meta[metaOrigin] == origin && u.verified(h.reported, meta), nil
}

// Find is Holds for an object PutNew stored: it looks under key, then under the alternate key
// PutNew uses when the name was taken, and returns the key that holds origin's upload.
func (u *Uploader) Find(ctx context.Context, key, origin string) (string, bool, error) {
	for _, k := range []string{key, alternateKey(key, origin)} {
		held, err := u.Holds(ctx, k, origin)
		if err != nil || held {
			return k, held, classify(err)
		}
	}
	return key, false, nil
}

// headed is what a HEAD tells about an object.
type headed struct {
	Object
	reported
}

func (u *Uploader) head(ctx context.Context, full string) (headed, bool, map[string]string, error) {
	in := &s3.HeadObjectInput{Bucket: aws.String(u.bucket), Key: aws.String(full)}
	if u.provider.checksums {
		in.ChecksumMode = types.ChecksumModeEnabled // x-amz-checksum-mode; GCS refuses it
	}
	u.enc.head(in)
	out, err := u.client.HeadObject(ctx, in)
	if err != nil {
		var nf *types.NotFound
		var api smithy.APIError
		if errors.As(err, &nf) || (errors.As(err, &api) && (api.ErrorCode() == "NotFound" || api.ErrorCode() == "NoSuchKey")) {
			return headed{}, false, nil, nil
		}
		return headed{}, false, nil, fmt.Errorf("head s3://%s/%s: %w", u.bucket, full, err)
	}
	meta := make(map[string]string, len(out.Metadata))
	for k, v := range out.Metadata {
		meta[strings.ToLower(k)] = v // servers differ in the case they return
	}
	r := reported{etag: etag(out.ETag), size: aws.ToInt64(out.ContentLength), crc32c: aws.ToString(out.ChecksumCRC32C),
		crc64nvme: aws.ToString(out.ChecksumCRC64NVME), sha256: aws.ToString(out.ChecksumSHA256),
		typ: out.ChecksumType, sse: out.ServerSideEncryption, sseC: aws.ToString(out.SSECustomerAlgorithm)}
	if u.provider.googHash {
		r.fromGoogHash(rawHeader(out.ResultMetadata))
	}
	return headed{Object{Key: full, Size: r.size, ETag: r.etag}, r}, true, meta, nil
}

// Get returns the stored bytes of key; for tests and tools, not for the upload path.
func (u *Uploader) Get(ctx context.Context, key string) ([]byte, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(u.bucket), Key: aws.String(u.Key(key))}
	u.enc.get(in)
	out, err := u.client.GetObject(ctx, in)
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// Client exposes the S3 client, for tests and tools.
func (u *Uploader) Client() *s3.Client { return u.client }

func etag(s *string) string { return strings.ToLower(strings.Trim(aws.ToString(s), `"`)) }

// unsignedPayload signs a request without hashing its body (x-amz-content-sha256:
// UNSIGNED-PAYLOAD). Over plain http the SDK would otherwise read every byte a second time for a
// SHA-256 that proves nothing more: a single PUT carries Content-MD5 (storage refuses a body that
// does not match) and every upload's ETag is checked against the local MD5s before anything is
// deleted.
var unsignedPayload = s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)

// sdkLogger is the AWS SDK's logging.Logger writing to slog, at the SDK's level.
type sdkLogger struct{ l *slog.Logger }

func (s sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelInfo
	switch c {
	case logging.Warn:
		level = slog.LevelWarn
	case logging.Debug:
		level = slog.LevelDebug
	}
	s.l.Log(context.Background(), level, strings.TrimRight(fmt.Sprintf(format, v...), "\n"))
}
