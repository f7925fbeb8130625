package uploader

import (
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Server-side encryption values of storage.sse.
const (
	SSES3  = "AES256"  // SSE-S3: keys managed by storage
	SSEKMS = "aws:kms" // SSE-KMS: a KMS key, KMSKeyID or the account's default
)

// encryption is the server-side encryption every request for an object carries. SSE-S3 and
// SSE-KMS are asked for when an object is written (PutObject, CreateMultipartUpload); SSE-C's
// key goes with every request that writes or reads the object's bytes or metadata (PutObject,
// CreateMultipartUpload, UploadPart, CompleteMultipartUpload, HeadObject, GetObject).
type encryption struct {
	sse       types.ServerSideEncryption
	kmsKeyID  *string
	bucketKey *bool
	ssec      *ssecKey
}

// ssecKey is an SSE-C customer key, as its headers carry it. It never prints its value.
type ssecKey struct{ key, keyMD5 string }

func (ssecKey) String() string   { return "SSE-C key (redacted)" }
func (ssecKey) GoString() string { return "SSE-C key (redacted)" }

// newEncryption checks the encryption settings; its errors name the config keys.
func newEncryption(c Config) (encryption, error) {
	var e encryption
	switch c.SSE {
	case "":
	case SSES3, SSEKMS:
		e.sse = types.ServerSideEncryption(c.SSE)
	default:
		return e, fmt.Errorf("storage.sse: want %q, %q or empty, got %q", SSES3, SSEKMS, c.SSE)
	}
	if c.KMSKeyID != "" {
		if c.SSE != SSEKMS {
			return e, fmt.Errorf("storage.kms_key_id: needs storage.sse %q (storage.sse is %q)", SSEKMS, c.SSE)
		}
		e.kmsKeyID = aws.String(c.KMSKeyID)
	}
	if c.BucketKey {
		if c.SSE != SSEKMS {
			return e, fmt.Errorf("storage.bucket_key: needs storage.sse %q (storage.sse is %q)", SSEKMS, c.SSE)
		}
		e.bucketKey = aws.Bool(true)
	}
	if c.SSECKey != nil {
		if c.SSE != "" {
			return e, fmt.Errorf("storage.sse_c_key_env: SSE-C excludes storage.sse (%q): set one of them", c.SSE)
		}
		if len(c.SSECKey) != 32 {
			return e, errors.New("storage.sse_c_key_env: the SSE-C key must be 32 bytes (AES-256)")
		}
		sum := md5.Sum(c.SSECKey)
		e.ssec = &ssecKey{key: base64.StdEncoding.EncodeToString(c.SSECKey), keyMD5: base64.StdEncoding.EncodeToString(sum[:])}
	}
	return e, nil
}

// String names the encryption without any key material, for logs and check.
func (e encryption) String() string {
	switch {
	case e.ssec != nil:
		return "SSE-C"
	case e.sse == SSEKMS && e.kmsKeyID != nil:
		return "SSE-KMS (key " + *e.kmsKeyID + ")"
	case e.sse == SSEKMS:
		return "SSE-KMS (default key)"
	case e.sse == SSES3:
		return "SSE-S3"
	}
	return "none (the bucket's default)"
}

// put sets the encryption of an upload; the multipart manager copies these fields into
// CreateMultipartUpload, UploadPart and CompleteMultipartUpload.
func (e encryption) put(in *s3.PutObjectInput) {
	in.ServerSideEncryption = e.sse
	in.SSEKMSKeyId = e.kmsKeyID
	in.BucketKeyEnabled = e.bucketKey
	if e.ssec != nil {
		in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = aws.String(SSES3), aws.String(e.ssec.key), aws.String(e.ssec.keyMD5)
	}
}

func (e encryption) head(in *s3.HeadObjectInput) {
	if e.ssec != nil {
		in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = aws.String(SSES3), aws.String(e.ssec.key), aws.String(e.ssec.keyMD5)
	}
}

func (e encryption) get(in *s3.GetObjectInput) {
	if e.ssec != nil {
		in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = aws.String(SSES3), aws.String(e.ssec.key), aws.String(e.ssec.keyMD5)
	}
}
