package uploader

import (
	"encoding/base64"
	"net/http"
	"strings"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Google Cloud Storage's XML API answers the hashes of a stored object in x-goog-hash, one header
// per hash or comma-separated: "crc32c=n03x6A==", "md5=Ojk9c3dhfxgoKVVHYwFbHQ==". The crc32c is
// the big-endian CRC32C in base64, the same encoding as x-amz-checksum-crc32c, and is of the
// whole object, also for an object made by a multipart upload (which has no md5).

// fromGoogHash fills r's crc32c (as a full-object checksum) and googMD5 from the x-goog-hash
// headers of an answer; an answer without them leaves r as it is.
func (r *reported) fromGoogHash(h http.Header) {
	crc, md5 := parseGoogHash(h.Values("X-Goog-Hash"))
	if crc != "" {
		r.crc32c, r.typ = crc, types.ChecksumTypeFullObject
	}
	r.googMD5 = md5
}

// rawHeader is the HTTP header of the answer an SDK call's result metadata holds.
func rawHeader(md middleware.Metadata) http.Header {
	if raw, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok && raw != nil && raw.Response != nil {
		return raw.Header
	}
	return nil
}

// parseGoogHash returns the base64 crc32c and md5 of x-goog-hash header values.
func parseGoogHash(values []string) (crc32c, md5 string) {
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			name, val, ok := strings.Cut(strings.TrimSpace(item), "=")
			if !ok {
				continue
			}
			// base64 ends in '=' padding: Cut took the first '=' only.
			if _, err := base64.StdEncoding.DecodeString(val); err != nil {
				continue
			}
			switch strings.ToLower(name) {
			case "crc32c":
				crc32c = val
			case "md5":
				md5 = val
			}
		}
	}
	return crc32c, md5
}

// signPayloads makes every request carry its body's SHA-256 as x-amz-content-sha256, where the
// SDK would send UNSIGNED-PAYLOAD: over TLS for PutObject and UploadPart, always for HEAD, GET
// and DELETE. GCS and DigitalOcean Spaces want signed payloads.
func signPayloads(s *middleware.Stack) error {
	id := (&v4.ComputePayloadSHA256{}).ID()
	if _, ok := s.Finalize.Get(id); !ok {
		return nil
	}
	_, err := s.Finalize.Swap(id, &v4.ComputePayloadSHA256{})
	return err
}

// signedPayload is signPayloads as a per-request option (the counterpart of unsignedPayload).
var signedPayload = s3.WithAPIOptions(signPayloads)
