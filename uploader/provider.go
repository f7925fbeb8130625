package uploader

import (
	"net/url"
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
}

// detectProvider picks the provider from the endpoint's host name.
func detectProvider(endpoint string) provider {
	if endpoint == "" {
		// AWS S3 itself: virtual-hosted addressing is the default and the only form for new buckets.
		return provider{name: "aws", pathStyle: false, conditionalWrites: true}
	}
	host := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		host = u.Hostname()
	}
	host = strings.ToLower(host)
	switch {
	case strings.HasSuffix(host, ".amazonaws.com"):
		return provider{name: "aws", pathStyle: false, conditionalWrites: true}
	case strings.HasSuffix(host, ".r2.cloudflarestorage.com"):
		// Cloudflare R2 accepts both; the account endpoint is path-style in its docs. Its region is "auto".
		return provider{name: "r2", pathStyle: true, conditionalWrites: true}
	case strings.HasSuffix(host, ".aliyuncs.com"):
		// Alibaba OSS rejects path-style requests (SecondLevelDomainForbidden).
		return provider{name: "oss", pathStyle: false}
	case strings.HasSuffix(host, ".myqcloud.com"):
		// Tencent COS addresses buckets by virtual host only.
		return provider{name: "cos", pathStyle: false}
	case strings.HasSuffix(host, ".backblazeb2.com"):
		// Backblaze B2 serves both; path-style keeps bucket names with dots working under TLS.
		return provider{name: "b2", pathStyle: true, conditionalWrites: true}
	default:
		// MinIO, Ceph RGW, versitygw, gofakes3 and other self-hosted servers: a plain host:port where
		// bucket.host does not resolve, so path-style.
		return provider{name: "generic", pathStyle: true, conditionalWrites: true}
	}
}
