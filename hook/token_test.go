package hook

import "testing"

// The token is compared on the raw query value as SRS sends it: a token holding '+', '%' or
// other characters a query would escape matches when written as it is in the config.
func TestTokenRaw(t *testing.T) {
	for _, c := range []struct {
		query, token string
		want         bool
	}{
		{"token=a+b", "a+b", true},
		{"token=a%2Bb", "a%2Bb", true},
		{"x=1?token=p%20q&y=2", "p%20q", true},
		{"token=a+b", "a b", false},   // no unescaping: '+' is not a space
		{"token=a%2Bb", "a+b", false}, // nor is %2B a '+'
		{"token=p%20q", "p q", false},
		{"token=s3cr3t", "s3cr3t", true},
		{"token=s3cr3", "s3cr3t", false},
		{"tok=s3cr3t", "s3cr3t", false},
		{"", "s3cr3t", false},
	} {
		if got := tokenOK(c.query, c.token); got != c.want {
			t.Errorf("tokenOK(%q, %q) = %v, want %v", c.query, c.token, got, c.want)
		}
	}
}
