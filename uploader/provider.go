package uploader

import (
	"net/url"
	"slices"
	"strings"
)

// provider holds every S3-compatible provider quirk, decided once from the endpoint. Callers never
// branch on the provider; they read these fields.
type provider struct {
	name string
	// pathStyle is the addressing the provider needs when the config does not say.
	pathStyle bool
	// conditionalWrites: the provider honours If-None-Match: * on PUT and on
	// CompleteMultipartUpload (AWS since 2024-08, MinIO, R2, B2, versitygw, gofakes3). Alibaba OSS
	// and Tencent COS use their own forbid-overwrite headers instead; for them srs-offload looks
	// before it writes. Old Ceph RGW releases ignore the header (a reused name then overwrites).
	conditionalWrites bool
	// etagMD5: the ETag of an object stored unencrypted or with SSE-S3 is the MD5 of its bytes
	// (multipart: the MD5 of the part MD5s), so storage.verify auto compares it.
	etagMD5 bool
	// checksums: the provider accepts x-amz-checksum-* headers on PUT, UploadPart and
	// CompleteMultipartUpload, checks the body against them, and reports them back (PUT answer,
	// HeadObject with ChecksumMode). Backblaze B2 rejects the headers; Alibaba OSS and Tencent COS
	// have their own CRC64 schemes.
	checksums bool
	// fullObject lists the algorithms whose multipart checksum can be FULL_OBJECT (a checksum of
	// the whole file); the others are COMPOSITE (a checksum of the part checksums).
	fullObject []string
}

// fullObjectFor reports whether a multipart upload with alg gets a full-object checksum.
func (p provider) fullObjectFor(alg string) bool { return slices.Contains(p.fullObject, alg) }

// detectProvider picks the provider from the endpoint's host name.
func detectProvider(endpoint string) provider {
	if endpoint == "" {
		return awsProvider
	}
	host := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		host = u.Hostname()
	}
	host = strings.ToLower(host)
	switch {
	case strings.HasSuffix(host, ".amazonaws.com"):
		return awsProvider
	case strings.HasSuffix(host, ".r2.cloudflarestorage.com"):
		// Cloudflare R2 accepts both; the account endpoint is path-style in its docs. Its region is "auto".
		// R2 stores CRC32, CRC32C, SHA-1 and SHA-256 as composite, CRC64NVME as full-object only.
		return provider{name: "r2", pathStyle: true, conditionalWrites: true, etagMD5: true, checksums: true,
			fullObject: []string{ChecksumCRC64NVME}}
	case strings.HasSuffix(host, ".aliyuncs.com"):
		// Alibaba OSS rejects path-style requests (SecondLevelDomainForbidden).
		return provider{name: "oss", pathStyle: false, etagMD5: true}
	case strings.HasSuffix(host, ".myqcloud.com"):
		// Tencent COS addresses buckets by virtual host only.
		return provider{name: "cos", pathStyle: false, etagMD5: true}
	case strings.HasSuffix(host, ".backblazeb2.com"):
		// Backblaze B2 serves both; path-style keeps bucket names with dots working under TLS.
		return provider{name: "b2", pathStyle: true, conditionalWrites: true, etagMD5: true}
	default:
		// MinIO, Ceph RGW, versitygw, gofakes3 and other self-hosted servers: a plain host:port where
		// bucket.host does not resolve, so path-style. MinIO (since 2025-01) and versitygw store
		// CRC32C and CRC64NVME full-object; gofakes3 ignores checksum headers and reports none.
		return provider{name: "generic", pathStyle: true, conditionalWrites: true, etagMD5: true, checksums: true,
			fullObject: []string{ChecksumCRC32C, ChecksumCRC64NVME}}
	}
}

// AWS S3 itself: virtual-hosted addressing is the default and the only form for new buckets.
// CRC32, CRC32C and CRC64NVME may be full-object for multipart uploads; SHA-256 is composite.
var awsProvider = provider{name: "aws", pathStyle: false, conditionalWrites: true, etagMD5: true, checksums: true,
	fullObject: []string{ChecksumCRC32C, ChecksumCRC64NVME}}
