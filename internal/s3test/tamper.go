package s3test

import (
	"bytes"
	"net/http"
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
