package settings

import (
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// CannedACLs are the canned ACL names S3 knows (x-amz-acl). "private" is S3's own default for a
// new object, so it is sent as no header at all: buckets with ACLs disabled (Object Ownership
// "bucket owner enforced", the default for new AWS buckets) refuse any other x-amz-acl but
// bucket-owner-full-control.
var CannedACLs = []string{"private", "public-read", "public-read-write", "authenticated-read",
	"aws-exec-read", "bucket-owner-read", "bucket-owner-full-control"}

// Providers are the values of storage.provider (the presets are uploader's).
var Providers = []string{"aws", "gcs", "r2", "wasabi", "linode", "digitalocean", "b2", "oss", "cos", "minio", "generic"}

// ObjectVars are the key variables the object option templates (storage.tags, storage.metadata,
// storage.content_disposition) may use: those every stored file knows.
var ObjectVars = []string{"vhost", "app", "stream", "basename"}

var (
	storageClassName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	// S3 tag keys: letters, digits, spaces and + - = . _ : / @ (Unicode letters too).
	tagKey = regexp.MustCompile(`^[\p{L}\p{N}\p{Zs}+\-=._:/@]{1,128}$`)
	// Metadata names are sent as x-amz-meta-<name> headers and come back in the case a server
	// chooses: lower case letters, digits and '-' only.
	metaName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

// validateStorage checks the storage object options and credentials (storage.storage_class …
// storage.sts_endpoint). The templates' variables are checked where they are parsed (build).
func (c *Config) validateStorage(add func(key, format string, a ...any)) {
	s := c.Storage
	if msg := keyPathProblem(s.Prefix); msg != "" {
		add("storage.prefix", "%q %s (e.g. %q)", s.Prefix, msg, strings.Trim(s.Prefix, "/")+"/")
	}
	for _, k := range []struct{ key, v string }{{"storage.storage_class", s.StorageClass},
		{"storage.storage_class_hls", s.StorageClassHLS}, {"storage.storage_class_dvr", s.StorageClassDVR}} {
		if k.v != "" && !storageClassName.MatchString(k.v) {
			add(k.key, "want a storage class name such as STANDARD_IA or GLACIER_IR (upper case letters, digits, _), got %q", k.v)
		}
	}
	if !slices.Contains(CannedACLs, s.ACL) {
		add("storage.acl", "want one of S3's canned ACLs (%s), got %q", strings.Join(CannedACLs, ", "), s.ACL)
	}
	if len(s.Tags) > 10 {
		add("storage.tags", "S3 allows 10 tags per object, got %d", len(s.Tags))
	}
	for _, k := range sortedKeys(s.Tags) {
		if !tagKey.MatchString(k) || strings.HasPrefix(strings.ToLower(k), "aws:") {
			add("storage.tags."+k, "a tag key is 1..128 letters, digits, spaces or + - = . _ : / @, not starting with aws:")
		}
		if len(s.Tags[k]) > 256 {
			add("storage.tags."+k, "a tag value is at most 256 characters")
		}
	}
	for _, k := range sortedKeys(s.Metadata) {
		if !metaName.MatchString(k) {
			add("storage.metadata."+k, "a metadata name is lower case letters, digits and '-' (sent as x-amz-meta-%s)", k)
		} else if strings.HasPrefix(k, "srs-offload-") {
			add("storage.metadata."+k, "names starting with srs-offload- are srs-offload's own (they prove an upload)")
		}
	}
	if total := metaSize(s.Metadata); total > 1024 {
		add("storage.metadata", "%d bytes of names and templates; S3 allows 2 KiB of user metadata, and srs-offload's own takes some", total)
	}
	if !printableASCII(s.ContentDisposition) {
		add("storage.content_disposition", "must be printable ASCII (an HTTP header); the variables' values are made so")
	}

	if s.SessionToken != "" && s.AccessKey == "" {
		add("storage.session_token", "goes with access_key and secret_key (temporary credentials)")
	}
	if s.Profile != "" && s.AccessKey != "" {
		add("storage.profile", "the profile's keys or storage.access_key, not both")
	}
	if s.RoleARN != "" && !strings.HasPrefix(s.RoleARN, "arn:") {
		add("storage.role_arn", "want a role ARN (arn:aws:iam::123456789012:role/name), got %q", s.RoleARN)
	}
	for _, k := range []struct{ key, v string }{{"storage.external_id", s.ExternalID}, {"storage.web_identity_token_file", s.WebIdentityTokenFile}} {
		if k.v != "" && s.RoleARN == "" {
			add(k.key, "needs storage.role_arn")
		}
	}
	if s.RoleARN != "" && (len(s.SessionName) < 2 || len(s.SessionName) > 64) {
		add("storage.session_name", "want 2..64 characters, got %q", s.SessionName)
	}
	if s.STSEndpoint != "" {
		u, err := url.Parse(s.STSEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("storage.sts_endpoint", "want an http:// or https:// URL, got %q", withoutUserinfo(s.STSEndpoint))
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func metaSize(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
