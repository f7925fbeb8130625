package uploader

import (
	"strings"
	"testing"
)

// Each storage.provider with an empty endpoint resolves to its preset: the endpoint made from
// the region, its addressing (unless storage.path_style says), signing, which headers are sent,
// how auto verifies, and whether If-None-Match is relied on.
func TestProviderPresets(t *testing.T) {
	f, tr := false, true
	type want struct {
		endpoint                 string
		path, signed, sums, goog bool
		cond                     bool
		describe                 string // part of Describe for verify auto
	}
	cases := []struct {
		name string
		c    Config
		want want
	}{
		{"aws", Config{Region: "eu-west-1"}, want{"", false, false, true, false, true, "md5 for objects stored unencrypted"}},
		{"aws path_style", Config{Provider: "aws", Region: "eu-west-1", PathStyle: &tr}, want{"", true, false, true, false, true, "checksum crc32c (sent as a header, full-object"}},
		{"gcs", Config{Provider: "gcs", Region: "auto"}, want{"https://storage.googleapis.com", true, true, false, true, false, "checksum crc32c from x-goog-hash"}},
		{"gcs virtual-host", Config{Provider: "gcs", Region: "auto", PathStyle: &f}, want{"https://storage.googleapis.com", false, true, false, true, false, "x-goog-hash"}},
		{"wasabi", Config{Provider: "wasabi", Region: "eu-central-1"}, want{"https://s3.eu-central-1.wasabisys.com", true, false, false, false, false, "size for objects storage encrypts"}},
		{"linode", Config{Provider: "linode", Region: "us-east-1"}, want{"https://us-east-1.linodeobjects.com", false, false, false, false, false, "md5 for objects"}},
		{"digitalocean", Config{Provider: "digitalocean", Region: "nyc3"}, want{"https://nyc3.digitaloceanspaces.com", false, true, false, false, false, "md5 for objects"}},
		{"b2", Config{Provider: "b2", Region: "us-west-004"}, want{"https://s3.us-west-004.backblazeb2.com", true, false, false, false, true, "md5 for objects"}},
		{"oss", Config{Provider: "oss", Region: "cn-hangzhou"}, want{"https://oss-cn-hangzhou.aliyuncs.com", false, false, false, false, false, "md5"}},
		{"oss region with prefix", Config{Provider: "oss", Region: "oss-cn-hangzhou"}, want{"https://oss-cn-hangzhou.aliyuncs.com", false, false, false, false, false, "md5"}},
		{"cos", Config{Provider: "cos", Region: "ap-guangzhou"}, want{"https://cos.ap-guangzhou.myqcloud.com", false, false, false, false, false, "md5"}},
		{"r2", Config{Provider: "r2", Endpoint: "https://acct.r2.cloudflarestorage.com", Region: "auto"}, want{"https://acct.r2.cloudflarestorage.com", true, false, true, false, true, "composite for multipart"}},
		{"minio", Config{Provider: "minio", Endpoint: "http://10.0.0.5:9000", Region: "us-east-1"}, want{"http://10.0.0.5:9000", true, false, true, false, true, "full-object for multipart"}},
		{"generic", Config{Provider: "generic", Endpoint: "http://ceph.lan:7480", Region: "us-east-1"}, want{"http://ceph.lan:7480", true, false, true, false, true, "md5"}},
		{"gcs on a private endpoint", Config{Provider: "gcs", Endpoint: "https://gcs.internal:8443", Region: "auto"}, want{"https://gcs.internal:8443", true, true, false, true, false, "x-goog-hash"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.c.Bucket = "b"
			r, err := Resolve(c.c)
			if err != nil {
				t.Fatal(err)
			}
			got := want{r.Endpoint, r.PathStyle, r.SignedPayload, r.ChecksumHeaders, r.GoogHash, r.ConditionalWrites, ""}
			w := c.want
			w.describe = ""
			if got != w {
				t.Errorf("resolved\n %+v\nwant\n %+v", got, w)
			}
			if r.Verify != VerifyAuto || r.Checksum != ChecksumCRC32C || r.MultipartETag == "" {
				t.Errorf("resolved %+v", r)
			}
			u := &Uploader{provider: presetOf(t, r.Provider), resolved: r, verify: r.Verify, checksum: r.Checksum}
			if d := u.Describe(); !strings.Contains(d, c.want.describe) {
				t.Errorf("Describe %q lacks %q", d, c.want.describe)
			}
		})
	}
}

func presetOf(t *testing.T, name string) provider {
	t.Helper()
	p, ok := presets[name]
	if !ok {
		t.Fatalf("no preset %q", name)
	}
	return p
}

// The provider is detected from the endpoint's host when storage.provider is empty, and what a
// provider cannot do is a config error naming the key.
func TestDetectAndResolveProvider(t *testing.T) {
	for endpoint, want := range map[string]string{
		"":                                          "aws",
		"https://s3.eu-west-1.amazonaws.com":        "aws",
		"https://storage.googleapis.com":            "gcs",
		"https://live.storage.googleapis.com":       "gcs",
		"https://acct.r2.cloudflarestorage.com":     "r2",
		"https://s3.eu-central-1.wasabisys.com":     "wasabi",
		"https://us-east-1.linodeobjects.com":       "linode",
		"https://NYC3.DigitalOceanSpaces.com":       "digitalocean",
		"https://s3.us-west-004.backblazeb2.com":    "b2",
		"https://oss-cn-hangzhou.aliyuncs.com":      "oss",
		"https://cos.ap-guangzhou.myqcloud.com":     "cos",
		"http://127.0.0.1:9000":                     "generic",
		"https://notstorage.googleapis.com.evil.io": "generic",
		"https://fakeamazonaws.com":                 "generic",
	} {
		r, err := Resolve(Config{Endpoint: endpoint, Region: "us-east-1", Bucket: "b"})
		if err != nil {
			t.Fatalf("%q: %v", endpoint, err)
		}
		if r.Provider != want || !r.Detected || r.Endpoint != endpoint {
			t.Errorf("%q: %+v, want %s detected, endpoint kept", endpoint, r, want)
		}
	}
	// An explicit provider wins over the host.
	if r, err := Resolve(Config{Provider: "minio", Endpoint: "https://s3.amazonaws.com", Region: "x", Bucket: "b"}); err != nil || r.Provider != "minio" || r.Detected {
		t.Errorf("explicit minio: %+v %v", r, err)
	}

	key := []byte{31: 1}
	for _, c := range []struct {
		name string
		c    Config
		key  string
	}{
		{"unknown", Config{Provider: "s4"}, "storage.provider:"},
		{"r2 without endpoint", Config{Provider: "r2", Region: "auto"}, "storage.endpoint:"},
		{"minio without endpoint", Config{Provider: "minio", Region: "us-east-1"}, "storage.endpoint:"},
		{"wasabi without region", Config{Provider: "wasabi"}, "storage.region:"},
		{"gcs md5", Config{Provider: "gcs", Region: "auto", Verify: VerifyMD5}, "storage.verify: md5 cannot be honoured by provider gcs"},
		{"gcs checksum sha256", Config{Provider: "gcs", Region: "auto", Verify: VerifyChecksum, Checksum: ChecksumSHA256}, "storage.checksum:"},
		{"gcs auto crc64nvme", Config{Provider: "gcs", Region: "auto", Checksum: ChecksumCRC64NVME}, "storage.checksum:"},
		{"gcs sse", Config{Provider: "gcs", Region: "auto", SSE: SSEKMS}, "storage.sse:"},
		{"gcs sse-c", Config{Provider: "gcs", Region: "auto", SSECKey: key}, "storage.sse_c_key_env:"},
		{"gcs tags", Config{Provider: "gcs", Region: "auto", Objects: ObjectOptions{Tags: []Text{{Name: "app"}}}}, "storage.tags:"},
		{"b2 checksum", Config{Endpoint: "https://s3.us-west-004.backblazeb2.com", Region: "us-west-004", Verify: VerifyChecksum}, "storage.verify: checksum"},
		{"digitalocean checksum", Config{Provider: "digitalocean", Region: "nyc3", Verify: VerifyChecksum}, "storage.verify: checksum"},
	} {
		c.c.Bucket = "b"
		_, err := Resolve(c.c)
		if err == nil || !strings.HasPrefix(err.Error(), c.key) {
			t.Errorf("%s: %v, want an error starting %q", c.name, err, c.key)
		}
		// New refuses the same config with the same error.
		if _, nerr := New(t.Context(), c.c); nerr == nil || !strings.HasPrefix(nerr.Error(), c.key) {
			t.Errorf("%s: New: %v, want an error starting %q", c.name, nerr, c.key)
		}
	}
	// What GCS can honour: auto, checksum crc32c, size.
	for _, v := range []string{VerifyAuto, VerifyChecksum, VerifySize} {
		if _, err := Resolve(Config{Provider: "gcs", Region: "auto", Bucket: "b", Verify: v}); err != nil {
			t.Errorf("gcs verify %s: %v", v, err)
		}
	}
}
