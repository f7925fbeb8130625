// Package storage is the domain's view of object storage: the values every part shares (an
// Object, a Source to upload from) and the errors callers branch on. It imports nothing of
// srs-offload's and no SDK; package uploader implements it for S3-compatible storage, and the
// packages that store objects (worker, playlist) declare the small interface they use in terms of
// these types.
package storage

import (
	"context"
	"errors"
	"io"

	"github.com/srs-offload/srs-offload/media"
)

// Object is what storage holds under a key.
type Object struct {
	Key  string
	Size int64
	ETag string
	// Parts is the number of multipart parts, or 0 for a single PUT.
	Parts int
	// Verified says how the stored bytes were proven to be the local file's: "md5",
	// "checksum crc32c" (or another algorithm), or "size".
	Verified string
}

// Source is a local file: os.File satisfies it.
type Source interface {
	io.ReaderAt
}

var (
	// ErrVerify means the stored object does not match the local file: the file is kept and the
	// upload is tried again.
	ErrVerify = errors.New("stored object does not match the local file")
	// ErrConflict means the key holds another file's object: a file is never replaced by another.
	ErrConflict = errors.New("the key holds another file's object")
	// ErrUnavailable means storage could not be reached or asked to come back later (a transport
	// error, a timeout, a 5xx, throttling). It says nothing about the file: retrying it must not
	// use up a task's retries.
	ErrUnavailable = errors.New("storage unavailable")
)

// Unavailable reports whether err is, or wraps, ErrUnavailable.
func Unavailable(err error) bool { return errors.Is(err, ErrUnavailable) }

// Store is what srs-offload needs of object storage. Keys are given without the storage prefix;
// origin names the local file (ASCII, e.g. a task id) and is stored with the object, so that a
// later attempt can prove an earlier one stored exactly this file.
type Store interface {
	// Put uploads size bytes of src under key and returns nil only once storage confirmed the
	// exact bytes; it may replace what key held (playlists).
	Put(ctx context.Context, key string, src Source, size int64, t media.Type, origin string) (Object, error)
	// PutNew is Put that never replaces another file's object: when key holds one, it stores
	// under an alternate key and returns the key it used.
	PutNew(ctx context.Context, key string, src Source, size int64, t media.Type, origin string) (string, Object, error)
	// Find reports whether an earlier PutNew for origin completed and its bytes are still
	// verified, and under which key.
	Find(ctx context.Context, key, origin string) (string, bool, error)
}
