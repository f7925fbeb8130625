package uploader

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// storage.verify auto picks per provider and per object: an object storage encrypted with SSE-KMS
// or SSE-C (its ETag is no MD5) is proven by its checksum, any other by its ETag where that is an
// MD5; a provider with neither falls back to size.
func TestAutoPicksPerObject(t *testing.T) {
	cases := []struct {
		endpoint string
		r        reported
		want     string
	}{
		{"http://127.0.0.1:9000", reported{}, VerifyMD5},
		{"http://127.0.0.1:9000", reported{sse: types.ServerSideEncryptionAes256}, VerifyMD5},
		{"http://127.0.0.1:9000", reported{sse: types.ServerSideEncryptionAwsKms}, VerifyChecksum},
		{"", reported{sse: types.ServerSideEncryptionAwsKmsDsse}, VerifyChecksum},
		{"", reported{sseC: "AES256"}, VerifyChecksum},
		{"https://s3.us-west-004.backblazeb2.com", reported{}, VerifyMD5},
		{"https://s3.us-west-004.backblazeb2.com", reported{sseC: "AES256"}, VerifySize},
	}
	for _, c := range cases {
		u := &Uploader{provider: detectProvider(c.endpoint), verify: VerifyAuto, checksum: ChecksumCRC32C}
		if got := u.method(c.r); got != c.want {
			t.Errorf("%s %+v: %s, want %s", u.provider.name, c.r, got, c.want)
		}
		u.verify = VerifyMD5
		if got := u.method(c.r); got != VerifyMD5 {
			t.Errorf("verify md5 chose %s", got)
		}
	}
}

// A checksum compares equal only to itself, with or without a composite's part count.
func TestSameChecksum(t *testing.T) {
	for _, c := range []struct {
		got, want string
		same      bool
	}{
		{"abc=", "abc=", true}, {"abc=-3", "abc=-3", true}, {"abc=", "abc=-3", true}, {"abc=-3", "abc=", true},
		{"abc=-2", "abc=-3", false}, {"abd=", "abc=", false}, {"", "", false}, {"", "abc=", false},
	} {
		if got := sameChecksum(c.got, c.want); got != c.same {
			t.Errorf("sameChecksum(%q, %q) = %v", c.got, c.want, got)
		}
	}
}
