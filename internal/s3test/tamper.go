package s3test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// WrongETags wraps an S3 server (see Fake) so that, for the requests match accepts, every ETag it
// reports is wrong: what storage says it holds is not what was sent. Part uploads of a multipart
// upload keep their real ETags so the upload still completes; the finished object's ETag (the PUT
// answer, HEAD, CompleteMultipartUpload) is wrong.
func WrongETags(match func(*http.Request) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !match(r) || (r.URL.Query().Has("uploadId") && r.URL.Query().Has("partNumber")) {
				next.ServeHTTP(w, r)
				return
			}
			rw := &etagRewriter{ResponseWriter: w}
			next.ServeHTTP(rw, r)
			if !rw.wrote { // the handler set headers and returned without writing a body
				rw.WriteHeader(http.StatusOK)
			}
		})
	}
}

type etagRewriter struct {
	http.ResponseWriter
	wrote bool
}

func (e *etagRewriter) WriteHeader(code int) {
	if e.Header().Get("ETag") != "" {
		e.Header().Set("ETag", `"00000000000000000000000000000000"`)
	}
	e.wrote = true
	e.ResponseWriter.WriteHeader(code)
}

func (e *etagRewriter) Write(b []byte) (int, error) {
	if !e.wrote {
		e.WriteHeader(http.StatusOK)
	}
	// CompleteMultipartUpload carries the ETag in its XML body.
	if i := bytes.Index(b, []byte("<ETag>")); i >= 0 {
		b = append([]byte{}, b...)
		if j := bytes.Index(b[i:], []byte("</ETag>")); j > 6 {
			copy(b[i+6:i+j], bytes.Repeat([]byte("0"), j-6))
		}
	}
	return e.ResponseWriter.Write(b)
}

// Corrupter is a proxy (httputil.ReverseProxy) in front of an S3 server that, while On, flips one
// byte in the middle of the body of every object PUT and part upload: storage receives bytes
// other than the ones sent, as from a faulty link or gateway. Requests are signed with
// UNSIGNED-PAYLOAD, so only the integrity headers (Content-MD5, x-amz-checksum-*) and the
// verification after the upload can notice.
type Corrupter struct {
	*Server
	On      atomic.Bool
	Flipped atomic.Int32 // bodies corrupted so far
}

// Corrupt starts a Corrupter in front of s; the returned Server's Endpoint is the proxy's.
func Corrupt(t testing.TB, s *Server) *Corrupter {
	t.Helper()
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c := &Corrupter{}
	proxy := reverseProxy(target, s) // keeps the signed Host header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.On.Load() && r.Method == http.MethodPut && r.ContentLength > 1 && r.Header.Get("X-Amz-Copy-Source") == "" {
			c.Flipped.Add(1)
			r.Body = &flipper{r: r.Body, at: r.ContentLength / 2, rc: r.Body}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cp := *s
	cp.Endpoint = srv.URL
	cp.Name = s.Name + "+corrupter"
	c.Server = &cp
	return c
}

type flipper struct {
	r   io.Reader
	rc  io.Closer
	off int64
	at  int64
}

func (f *flipper) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.at >= f.off && f.at < f.off+int64(n) {
		p[f.at-f.off] ^= 0x01
	}
	f.off += int64(n)
	return n, err
}

func (f *flipper) Close() error { return f.rc.Close() }

// WrongChecksums wraps an S3 server so that every checksum it reports for a finished object (the
// PUT answer, HEAD, CompleteMultipartUpload) is wrong, while the bytes are stored intact: it tests
// that the checksum storage reports is compared, not just requested.
func WrongChecksums(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("partNumber") {
			next.ServeHTTP(w, r)
			return
		}
		rw := &checksumRewriter{ResponseWriter: w}
		next.ServeHTTP(rw, r)
		if !rw.wrote {
			rw.WriteHeader(http.StatusOK)
		}
	})
}

type checksumRewriter struct {
	http.ResponseWriter
	wrote bool
}

// wrongChecksum changes the first character of a base64 value (A↔B), keeping its form.
func wrongChecksum(v []byte) {
	if len(v) > 0 {
		if v[0] == 'A' {
			v[0] = 'B'
		} else {
			v[0] = 'A'
		}
	}
}

func (c *checksumRewriter) WriteHeader(code int) {
	for k, vs := range c.Header() {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") && strings.ToLower(k) != "x-amz-checksum-type" && len(vs) > 0 {
			b := []byte(vs[0])
			wrongChecksum(b)
			c.Header().Set(k, string(b))
		}
	}
	c.wrote = true
	c.ResponseWriter.WriteHeader(code)
}

func (c *checksumRewriter) Write(b []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	// CompleteMultipartUpload carries the checksum in its XML body.
	for _, tag := range []string{"<ChecksumCRC32C>", "<ChecksumCRC64NVME>", "<ChecksumSHA256>", "<ChecksumCRC32>"} {
		if i := bytes.Index(b, []byte(tag)); i >= 0 {
			b = append([]byte{}, b...)
			wrongChecksum(b[i+len(tag):])
		}
	}
	return c.ResponseWriter.Write(b)
}

// Proxy starts a plain reverse proxy in front of s with wrap around it (for wrappers such as
// WrongChecksums in front of a gateway that runs as a separate process).
func Proxy(t testing.TB, s *Server, wrap func(http.Handler) http.Handler) *Server {
	t.Helper()
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(wrap(reverseProxy(target, s)))
	t.Cleanup(srv.Close)
	cp := *s
	cp.Endpoint = srv.URL
	cp.Name = s.Name + "+proxy"
	return &cp
}

// reverseProxy forwards to target, trusting the server's own certificate when it serves TLS with
// one (MinIO): the proxy itself serves plain HTTP on loopback, and storage still sees TLS.
func reverseProxy(target *url.URL, s *Server) *httputil.ReverseProxy {
	p := httputil.NewSingleHostReverseProxy(target)
	if len(s.CABundle) > 0 {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(s.CABundle)
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool}
		p.Transport = t
	}
	return p
}
