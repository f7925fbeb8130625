package uploader

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Providers are the values of storage.provider. Empty detects the provider from the endpoint's
// host name (an empty endpoint is AWS).
var Providers = []string{"aws", "gcs", "r2", "wasabi", "linode", "digitalocean", "b2", "oss", "cos", "minio", "generic"}

// provider holds every S3-compatible provider quirk, decided once from storage.provider or the
// endpoint. Callers never branch on the provider's name; they read these fields.
type provider struct {
	name string
	// pathStyle is the addressing the provider needs when the config does not say.
	pathStyle bool
	// conditionalWrites: the provider honours If-None-Match: * on PUT and on
	// CompleteMultipartUpload (AWS since 2024-08, MinIO, R2, B2, versitygw, gofakes3). Alibaba OSS
	// and Tencent COS use their own forbid-overwrite headers instead; for them, and for every
	// provider not proven to honour it, srs-offload looks before it writes. Old Ceph RGW releases
	// ignore the header (a reused name then overwrites).
	conditionalWrites bool
	// etagMD5: the ETag of an object stored unencrypted or with SSE-S3 is the MD5 of its bytes
	// (multipart: the MD5 of the part MD5s), so storage.verify auto compares it.
	etagMD5 bool
	// checksums: the provider accepts x-amz-checksum-* headers on PUT, UploadPart and
	// CompleteMultipartUpload, checks the body against them, and reports them back (PUT answer,
	// HeadObject with x-amz-checksum-mode). Only then are those headers sent. Backblaze B2
	// rejects them; Alibaba OSS and Tencent COS have their own CRC64 schemes.
	checksums bool
	// fullObject lists the algorithms whose multipart checksum can be FULL_OBJECT (a checksum of
	// the whole file); the others are COMPOSITE (a checksum of the part checksums).
	fullObject []string
	// googHash: the provider reports the stored object's hashes in x-goog-hash (crc32c=…,
	// md5=…) and takes none of the x-amz-checksum-* headers (Google Cloud Storage's XML API).
	// Its crc32c is of the whole object, multipart or not; a multipart object has no md5.
	googHash bool
	// signedPayload: every request is signed with its body's SHA-256 (x-amz-content-sha256),
	// never UNSIGNED-PAYLOAD nor a streaming form. Costs one more read of each body.
	signedPayload bool
	// multipartETag says what the ETag of a multipart object is (for check and the README).
	multipartETag string
	// endpoint makes the endpoint from the region when storage.endpoint is empty; nil with
	// needsEndpoint false: the SDK's own (AWS).
	endpoint func(region string) string
	// needsEndpoint: the endpoint cannot be derived (an account id in it, or self-hosted).
	needsEndpoint bool
}

// fullObjectFor reports whether a multipart upload with alg gets a full-object checksum.
func (p provider) fullObjectFor(alg string) bool { return slices.Contains(p.fullObject, alg) }

const md5OfParts = "MD5 of the part MD5s, -N"

// presets are the providers by name.
var presets = map[string]provider{
	// AWS S3 itself: virtual-hosted addressing is the default and the only form for new buckets.
	// CRC32, CRC32C and CRC64NVME may be full-object for multipart uploads; SHA-256 is composite.
	"aws": {name: "aws", pathStyle: false, conditionalWrites: true, etagMD5: true, checksums: true,
		fullObject: []string{ChecksumCRC32C, ChecksumCRC64NVME}, multipartETag: md5OfParts},
	// Google Cloud Storage through its XML API with HMAC keys. It takes Content-MD5 (and
	// x-goog-hash), not x-amz-checksum-*; an object made by an XML API multipart upload has a
	// CRC32C but no MD5, and its ETag is not an MD5. Both addressing forms work; path-style keeps
	// dotted bucket names valid under TLS. Its If-None-Match support on PUT is not proven here.
	"gcs": {name: "gcs", pathStyle: true, googHash: true, signedPayload: true,
		fullObject: []string{ChecksumCRC32C}, multipartETag: "not an MD5 (the object has a CRC32C only)",
		endpoint: func(string) string { return "https://storage.googleapis.com" }},
	// Cloudflare R2 accepts both; the account endpoint is path-style in its docs. Its region is "auto".
	// R2 stores CRC32, CRC32C, SHA-1 and SHA-256 as composite, CRC64NVME as full-object only.
	"r2": {name: "r2", pathStyle: true, conditionalWrites: true, etagMD5: true, checksums: true,
		fullObject: []string{ChecksumCRC64NVME}, multipartETag: md5OfParts, needsEndpoint: true},
	// Wasabi: both addressing forms; regional endpoints s3.<region>.wasabisys.com.
	"wasabi": {name: "wasabi", pathStyle: true, etagMD5: true, multipartETag: md5OfParts,
		endpoint: func(r string) string { return "https://s3." + r + ".wasabisys.com" }},
	// Linode (Akamai) Object Storage: <region>.linodeobjects.com, buckets as virtual hosts in its docs.
	"linode": {name: "linode", pathStyle: false, etagMD5: true, multipartETag: md5OfParts,
		endpoint: func(r string) string { return "https://" + r + ".linodeobjects.com" }},
	// DigitalOcean Spaces: <region>.digitaloceanspaces.com, buckets as virtual hosts. It rejects
	// some unsigned and streaming payload forms, so every body is signed.
	"digitalocean": {name: "digitalocean", pathStyle: false, etagMD5: true, signedPayload: true, multipartETag: md5OfParts,
		endpoint: func(r string) string { return "https://" + r + ".digitaloceanspaces.com" }},
	// Backblaze B2 serves both; path-style keeps bucket names with dots working under TLS.
	"b2": {name: "b2", pathStyle: true, conditionalWrites: true, etagMD5: true, multipartETag: md5OfParts,
		endpoint: func(r string) string { return "https://s3." + r + ".backblazeb2.com" }},
	// Alibaba OSS rejects path-style requests (SecondLevelDomainForbidden).
	"oss": {name: "oss", pathStyle: false, etagMD5: true, multipartETag: md5OfParts,
		endpoint: func(r string) string { return "https://" + ensurePrefix(r, "oss-") + ".aliyuncs.com" }},
	// Tencent COS addresses buckets by virtual host only.
	"cos": {name: "cos", pathStyle: false, etagMD5: true, multipartETag: md5OfParts,
		endpoint: func(r string) string { return "https://cos." + r + ".myqcloud.com" }},
	// MinIO (since 2025-01) and versitygw store CRC32C and CRC64NVME full-object.
	"minio": {name: "minio", pathStyle: true, conditionalWrites: true, etagMD5: true, checksums: true,
		fullObject: []string{ChecksumCRC32C, ChecksumCRC64NVME}, multipartETag: md5OfParts, needsEndpoint: true},
	// MinIO, Ceph RGW, versitygw, gofakes3 and other self-hosted servers: a plain host:port where
	// bucket.host does not resolve, so path-style. gofakes3 ignores checksum headers and reports none.
	"generic": {name: "generic", pathStyle: true, conditionalWrites: true, etagMD5: true, checksums: true,
		fullObject: []string{ChecksumCRC32C, ChecksumCRC64NVME}, multipartETag: md5OfParts, needsEndpoint: true},
}

func ensurePrefix(s, p string) string {
	if strings.HasPrefix(s, p) {
		return s
	}
	return p + s
}

// hostSuffixes detect a provider from the endpoint's host name.
var hostSuffixes = []struct{ suffix, name string }{
	{".amazonaws.com", "aws"},
	{"storage.googleapis.com", "gcs"},
	{".r2.cloudflarestorage.com", "r2"},
	{".wasabisys.com", "wasabi"},
	{".linodeobjects.com", "linode"},
	{".digitaloceanspaces.com", "digitalocean"},
	{".backblazeb2.com", "b2"},
	{".aliyuncs.com", "oss"},
	{".myqcloud.com", "cos"},
}

// detectProvider picks the provider from the endpoint's host name.
func detectProvider(endpoint string) provider {
	if endpoint == "" {
		return presets["aws"]
	}
	host := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		host = u.Hostname()
	}
	host = strings.ToLower(host)
	for _, h := range hostSuffixes {
		if host == strings.TrimPrefix(h.suffix, ".") || strings.HasSuffix(host, "."+strings.TrimPrefix(h.suffix, ".")) {
			return presets[h.name]
		}
	}
	return presets["generic"]
}

// resolveProvider is the provider storage.provider names (empty: detected from the endpoint)
// and the endpoint to use: the configured one, or the provider's, made from the region.
func resolveProvider(name, endpoint, region string) (provider, string, error) {
	if name == "" {
		return detectProvider(endpoint), endpoint, nil
	}
	p, ok := presets[name]
	if !ok {
		return provider{}, "", fmt.Errorf("storage.provider: want one of %s (or empty: detected from storage.endpoint), got %q",
			strings.Join(Providers, ", "), name)
	}
	if endpoint != "" {
		return p, endpoint, nil
	}
	switch {
	case p.needsEndpoint:
		return provider{}, "", fmt.Errorf("storage.endpoint: required for storage.provider %s (%s)", name, endpointHint[name])
	case p.endpoint != nil:
		if region == "" {
			return provider{}, "", fmt.Errorf("storage.region: required for storage.provider %s without storage.endpoint (the endpoint is made from it)", name)
		}
		return p, p.endpoint(region), nil
	}
	return p, "", nil
}

var endpointHint = map[string]string{
	"r2":      "https://<account id>.r2.cloudflarestorage.com",
	"minio":   "the server's URL, e.g. http://127.0.0.1:9000",
	"generic": "the server's URL, e.g. http://127.0.0.1:9000",
}
