package s3test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// GCSServer imitates what Google Cloud Storage's XML API does with the headers of an S3 client
// that signs with HMAC keys, in front of gofakes3 (which stores the bytes):
//   - it checks the SigV4 signature, and wants the payload signed: x-amz-content-sha256 must be
//     the body's SHA-256 (UNSIGNED-PAYLOAD and the STREAMING-* forms are refused);
//   - it refuses every x-amz-checksum-* header (x-amz-checksum-mode on HEAD included),
//     x-amz-sdk-checksum-algorithm, x-amz-trailer and aws-chunked bodies, x-amz-tagging and
//     x-amz-server-side-encryption*, with 400 InvalidArgument;
//   - it checks Content-MD5 (400 BadDigest);
//   - it answers x-goog-hash (crc32c=…, md5=…) for PUT, HEAD and GET; an object made by a
//     multipart upload gets a crc32c only, and an ETag that is not an MD5.
//
// Corrupt makes it store every PUT or part body with one byte flipped after its Content-MD5 and
// signature were checked: storage that holds other bytes than it was sent.
type GCSServer struct {
	*Server
	Corrupt atomic.Bool
	Flipped atomic.Int32
	// NoHashOnPut leaves x-goog-hash out of PUT answers: the client must HEAD for it.
	NoHashOnPut atomic.Bool

	mu        sync.Mutex
	requests  []GCSRequest
	composite map[string]bool // keys whose object a multipart upload made
	gen       int64
}

// GCSRequest is one request the server saw, and its answer's status.
type GCSRequest struct {
	Method, Path, Query string
	Header              http.Header
	Status              int
	Refused             string // why it was refused, "" when it was served
}

// Requests returns the requests seen so far.
func (g *GCSServer) Requests() []GCSRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]GCSRequest(nil), g.requests...)
}

// GCS starts a GCSServer, over TLS when tls is set (Server.CABundle trusts its certificate).
func GCS(t testing.TB, tls bool) *GCSServer {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("test"); err != nil {
		t.Fatal(err)
	}
	g := &GCSServer{composite: map[string]bool{}}
	inner := gofakes3.New(backend, gofakes3.WithIntegrityCheck(true)).Server()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.serve(w, r, inner) }))
	var ca []byte
	if tls {
		srv.StartTLS()
		ca = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	g.Server = &Server{Name: "gcs-imitation", Provider: "gcs", Endpoint: srv.URL, Bucket: "test",
		AccessKey: "GOOG1EXAMPLEHMACKEY", SecretKey: "gcs-hmac-secret-for-tests", CABundle: ca}
	return g
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$`)

func (g *GCSServer) serve(w http.ResponseWriter, r *http.Request, inner http.Handler) {
	rec := GCSRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()}
	refuse := func(status int, code, why string) {
		rec.Status, rec.Refused = status, why
		g.mu.Lock()
		g.requests = append(g.requests, rec)
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/xml; charset=UTF-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<?xml version='1.0' encoding='UTF-8'?><Error><Code>%s</Code><Message>%s</Message></Error>", code, why)
	}
	for name := range r.Header {
		l := strings.ToLower(name)
		switch {
		case strings.HasPrefix(l, "x-amz-checksum-"), l == "x-amz-sdk-checksum-algorithm", l == "x-amz-trailer",
			l == "x-amz-decoded-content-length", l == "x-amz-tagging", strings.HasPrefix(l, "x-amz-server-side-encryption"):
			refuse(http.StatusBadRequest, "InvalidArgument", "Invalid argument: header "+l+" is not supported")
			return
		}
	}
	if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
		refuse(http.StatusBadRequest, "InvalidArgument", "Invalid argument: aws-chunked encoding")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		refuse(http.StatusBadRequest, "IncompleteBody", err.Error())
		return
	}
	sum := sha256.Sum256(body)
	switch ph := r.Header.Get("X-Amz-Content-Sha256"); {
	case ph == "UNSIGNED-PAYLOAD" || strings.HasPrefix(ph, "STREAMING-"):
		refuse(http.StatusBadRequest, "InvalidArgument", "Invalid argument: x-amz-content-sha256 "+ph+" (the payload must be signed)")
		return
	case ph != hex.EncodeToString(sum[:]):
		refuse(http.StatusBadRequest, "XAmzContentSHA256Mismatch", "x-amz-content-sha256 is not the body's SHA-256")
		return
	}
	if why := g.checkSignature(r, body); why != "" {
		refuse(http.StatusForbidden, "SignatureDoesNotMatch", why)
		return
	}
	if v := r.Header.Get("Content-MD5"); v != "" {
		m := md5.Sum(body)
		if v != base64.StdEncoding.EncodeToString(m[:]) {
			refuse(http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what was received.")
			return
		}
	}

	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	object := key != "" && bucket == g.Bucket
	putObject := object && r.Method == http.MethodPut && !q.Has("uploadId") && r.Header.Get("X-Amz-Copy-Source") == ""
	putPart := object && r.Method == http.MethodPut && q.Has("uploadId")
	if (putObject || putPart) && g.Corrupt.Load() && len(body) > 0 {
		body = append([]byte(nil), body...)
		body[len(body)/2] ^= 0x01
		r.Header.Del("Content-MD5") // checked above: storage went wrong after that
		g.Flipped.Add(1)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))

	gw := &googWriter{ResponseWriter: w}
	switch {
	case putObject && !g.NoHashOnPut.Load():
		gw.hash = googHash(body, true)
	case object && (r.Method == http.MethodHead || r.Method == http.MethodGet) && len(q) == 0:
		if stored, ok := g.stored(inner, r); ok {
			g.mu.Lock()
			composite := g.composite[key]
			g.mu.Unlock()
			gw.hash = googHash(stored, !composite)
			if composite {
				gw.etag = fmt.Sprintf(`"%x"`, sha256.Sum256(stored))[:34] + `"` // not an MD5
			}
		}
	}
	inner.ServeHTTP(gw, r)
	if !gw.wrote {
		gw.WriteHeader(http.StatusOK)
	}
	ok := gw.status/100 == 2
	g.mu.Lock()
	switch {
	case ok && putObject, ok && object && r.Method == http.MethodDelete:
		delete(g.composite, key)
	case ok && object && r.Method == http.MethodPost && q.Has("uploadId"):
		g.composite[key] = true
	}
	rec.Status = gw.status
	g.requests = append(g.requests, rec)
	g.mu.Unlock()
}

// stored reads the object's bytes from the backend (a GET of its own, unsigned).
func (g *GCSServer) stored(inner http.Handler, r *http.Request) ([]byte, bool) {
	req := httptest.NewRequest(http.MethodGet, r.URL.Path, nil)
	rr := httptest.NewRecorder()
	inner.ServeHTTP(rr, req)
	return rr.Body.Bytes(), rr.Code == http.StatusOK
}

// googHash is the x-goog-hash value of b: crc32c always, md5 where the object has one.
func googHash(b []byte, withMD5 bool) string {
	var c [4]byte
	binary.BigEndian.PutUint32(c[:], crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	v := "crc32c=" + base64.StdEncoding.EncodeToString(c[:])
	if withMD5 {
		m := md5.Sum(b)
		v += ",md5=" + base64.StdEncoding.EncodeToString(m[:])
	}
	return v
}

type googWriter struct {
	http.ResponseWriter
	hash, etag string
	status     int
	wrote      bool
}

func (g *googWriter) WriteHeader(code int) {
	if g.wrote {
		return
	}
	g.wrote, g.status = true, code
	if code/100 == 2 {
		if g.hash != "" {
			g.Header().Set("X-Goog-Hash", g.hash)
		}
		if g.etag != "" {
			g.Header().Set("ETag", g.etag)
		}
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *googWriter) Write(b []byte) (int, error) {
	if !g.wrote {
		g.WriteHeader(http.StatusOK)
	}
	return g.ResponseWriter.Write(b)
}

// checkSignature recomputes the SigV4 signature over the headers the client signed, with the
// HMAC secret, and returns why it does not match ("" when it does).
func (g *GCSServer) checkSignature(r *http.Request, body []byte) string {
	m := authRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return "no AWS4-HMAC-SHA256 authorization"
	}
	if m[1] != g.AccessKey {
		return "unknown HMAC access id " + m[1]
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "bad x-amz-date"
	}
	req, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return err.Error()
	}
	req.URL.RawPath = r.URL.RawPath
	req.Host = r.Host
	req.ContentLength = r.ContentLength
	for _, h := range strings.Split(m[4], ";") {
		if h == "host" || h == "content-length" {
			continue
		}
		for _, v := range r.Header.Values(h) {
			req.Header.Add(h, v)
		}
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: g.AccessKey, SecretAccessKey: g.SecretKey}
	if err := signer.SignHTTP(context.Background(), creds, req, r.Header.Get("X-Amz-Content-Sha256"), "s3", m[3], at); err != nil {
		return err.Error()
	}
	got := authRE.FindStringSubmatch(req.Header.Get("Authorization"))
	if got == nil || got[5] != m[5] {
		return fmt.Sprintf("signature does not match (signed headers %s)", m[4])
	}
	return ""
}
