package uploader

import (
	"context"
	"io"

	"github.com/srs-offload/srs-offload/storage"
)

// body is the request body of an upload of size bytes of src: a section reader (the multipart
// manager reads each part through its own section of it), counting what is read for the
// upload's storage.WithSent function when ctx carries one.
func body(ctx context.Context, src Source, size int64) *io.SectionReader {
	if f := storage.SentFrom(ctx); f != nil {
		src = counted{src, f}
	}
	return io.NewSectionReader(src, 0, size)
}

// counted reports every read of the source to sent.
type counted struct {
	r    io.ReaderAt
	sent func(int64)
}

func (c counted) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	if n > 0 {
		c.sent(int64(n))
	}
	return n, err
}
