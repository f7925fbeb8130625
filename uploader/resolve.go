package uploader

import (
	"cmp"
	"fmt"
)

// Resolved is what the uploader does with a config once the provider's preset is applied: the
// options check prints and the provider tests compare.
type Resolved struct {
	Provider string // the preset's name
	Detected bool   // from the endpoint's host (storage.provider empty)
	Endpoint string // "" for the SDK's AWS endpoint
	// PathStyle is the addressing: the preset's unless storage.path_style says.
	PathStyle bool
	// SignedPayload: bodies are signed by their SHA-256; else UNSIGNED-PAYLOAD (they are proven by
	// Content-MD5 and the verify mode).
	SignedPayload bool
	// ChecksumHeaders: x-amz-checksum-* are sent (and x-amz-checksum-mode on HEAD).
	ChecksumHeaders bool
	// GoogHash: uploads are verified by the x-goog-hash the provider answers.
	GoogHash bool
	// ConditionalWrites: If-None-Match: * is sent; else a HEAD looks before a write.
	ConditionalWrites bool
	Verify            string // the configured mode
	Checksum          string // its algorithm
	MultipartETag     string
	Encryption        string
}

// Addressing names the addressing.
func (r Resolved) Addressing() string {
	if r.PathStyle {
		return "path-style"
	}
	return "virtual-host"
}

// Signing names the payload signing.
func (r Resolved) Signing() string {
	if r.SignedPayload {
		return "SigV4, signed payload (SHA-256 of every body)"
	}
	return "SigV4, UNSIGNED-PAYLOAD (bodies proven by Content-MD5 and storage.verify)"
}

// Resolve applies the provider's preset to c and checks what the provider cannot honour. Its
// errors name the config key.
func Resolve(c Config) (Resolved, error) {
	r, _, err := resolve(c)
	return r, err
}

func resolve(c Config) (Resolved, provider, error) {
	p, endpoint, err := resolveProvider(c.Provider, c.Endpoint, c.Region)
	if err != nil {
		return Resolved{}, p, err
	}
	verify := cmp.Or(c.Verify, VerifyAuto)
	sum := cmp.Or(c.Checksum, ChecksumCRC32C)
	r := Resolved{
		Provider: p.name, Detected: c.Provider == "", Endpoint: endpoint, PathStyle: p.pathStyle,
		SignedPayload: p.signedPayload, ChecksumHeaders: p.checksums, GoogHash: p.googHash,
		ConditionalWrites: p.conditionalWrites, Verify: verify, Checksum: sum, MultipartETag: p.multipartETag,
	}
	if c.PathStyle != nil {
		r.PathStyle = *c.PathStyle
	}
	if err := p.honours(c, verify, sum); err != nil {
		return Resolved{}, p, err
	}
	return r, p, nil
}

// honours returns an error naming the key of the first setting the provider cannot honour.
func (p provider) honours(c Config, verify, sum string) error {
	switch {
	case verify == VerifyMD5 && !p.etagMD5:
		return fmt.Errorf("storage.verify: md5 cannot be honoured by provider %s: an object it stores from a multipart upload has no MD5 "+
			"and an ETag that is not one; use auto, checksum (crc32c) or size", p.name)
	case verify == VerifyChecksum && !p.checksums && !p.googHash:
		return fmt.Errorf("storage.verify: checksum needs a provider that stores x-amz-checksum-* values; %s is not known to "+
			"(use auto, md5 or size, or storage.provider: generic to send the headers anyway)", p.name)
	case p.googHash && (verify == VerifyChecksum || verify == VerifyAuto) && sum != ChecksumCRC32C:
		return fmt.Errorf("storage.checksum: provider %s reports crc32c only (x-goog-hash), got %s", p.name, sum)
	case p.googHash && c.SSE != "":
		return fmt.Errorf("storage.sse: not with provider %s: its XML API encrypts every object with the bucket's key "+
			"(Google-managed or CMEK, set on the bucket), not by x-amz-server-side-encryption", p.name)
	case p.googHash && c.SSECKey != nil:
		return fmt.Errorf("storage.sse_c_key_env: not with provider %s: its customer-supplied keys travel in x-goog-encryption-* "+
			"headers, which srs-offload does not send", p.name)
	case p.googHash && len(c.Objects.Tags) > 0:
		return fmt.Errorf("storage.tags: provider %s has no object tags (x-amz-tagging); use storage.metadata", p.name)
	}
	return nil
}

// Resolved says what this uploader does: provider, addressing, signing, verification, encryption.
func (u *Uploader) Resolved() Resolved { return u.resolved }

// Summary is Resolved in words, one line per subject, for check.
func (u *Uploader) Summary() []string {
	r := u.resolved
	how := "set by storage.provider"
	switch {
	case r.Detected && r.Endpoint == "":
		how = "no storage.endpoint"
	case r.Detected:
		how = "detected from storage.endpoint"
	}
	endpoint := cmp.Or(r.Endpoint, "the SDK's AWS endpoint for storage.region")
	var cond string
	if r.ConditionalWrites {
		cond = "If-None-Match: * on every media write"
	} else {
		cond = "a HEAD before every media write (If-None-Match is not relied on)"
	}
	return []string{
		fmt.Sprintf("storage.provider: %s (%s); endpoint %s", r.Provider, how, endpoint),
		"storage addressing: " + r.Addressing(),
		"storage signing: " + r.Signing(),
		"storage.verify: " + u.Describe(),
		"storage multipart ETag: " + r.MultipartETag,
		"storage overwrite guard: " + cond,
		"storage encryption: " + r.Encryption,
	}
}
