package settings

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// hostPort checks a host:port to listen on or dial: the port a number 1..65535 (net's
// SplitHostPort takes 127.0.0.1:99999, and the failure would come only at bind time).
func hostPort(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not 1..65535", port)
	}
	return nil
}

// keyPathProblem says what is wrong with the literal text of an object key or key prefix that
// would make every key built from it unusable: a leading '/', an empty segment ("//"), a "." or
// ".." segment, a control byte. Empty when nothing is.
func keyPathProblem(v string) string {
	if strings.HasPrefix(v, "/") {
		return "starts with /: object keys are relative to the bucket"
	}
	if strings.Contains(v, "//") {
		return "holds //, an empty key segment"
	}
	for _, seg := range strings.Split(v, "/") {
		if seg == "." || seg == ".." {
			return "holds a '.' or '..' segment"
		}
	}
	for _, c := range v {
		if c < 0x20 || c == 0x7f {
			return "holds a control byte"
		}
	}
	return ""
}

// keyTemplateProblem is keyPathProblem for a key template ({vars} kept as they are): what makes
// every key it expands to be refused, and so every hook it serves.
func keyTemplateProblem(t string) string {
	if p := keyPathProblem(t); p != "" {
		return p + "; every key made from it would be refused, and so every hook"
	}
	if strings.HasSuffix(t, "/") {
		return "ends with /: a key names an object, not a folder; every hook would be refused"
	}
	return ""
}

// awsHost reports whether an endpoint URL is AWS S3's.
func awsHost(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	return h == "amazonaws.com" || strings.HasSuffix(h, ".amazonaws.com") || strings.HasSuffix(h, ".amazonaws.com.cn")
}
