package worker_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/hibiken/asynq"

	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/queue"
	"github.com/srs-offload/srs-offload/uploader"
)

// The encryption tests run on MinIO with its built-in KMS (s3test.MinIO). Each stores an HLS
// segment (single PUT, with its playlist) and a DVR recording above the multipart threshold, and
// reads both back byte for byte.

// encFiles writes a segment (single PUT) and a recording of dvrSize bytes (multipart: the rig
// uploads in 5 MiB parts from 5 MiB on) and returns their tasks and bytes.
func (r *rig) encFiles(dvrSize int) (seg, dvr queue.Offload, segBytes, dvrBytes []byte) {
	r.t.Helper()
	rel := "live/cam1/2026/12/02/02/cam1-1.ts"
	segBytes = r.writeRandom(rel, 300<<10+7)
	r.write("live/cam1/index.m3u8", playlistText([]string{rel}))
	seg = r.hls(rel, rel, "live/cam1/index.m3u8", "live/cam1/index.m3u8")
	drel := "dvr/live/cam1/cam1.1795478400123.flv"
	dvrBytes = r.writeRandom(drel, dvrSize)
	dvr = r.payload(queue.KindDVR, drel, "recordings/"+filepath.Base(drel))
	return seg, dvr, segBytes, dvrBytes
}

func multipart(c *uploader.Config) { c.MultipartThreshold, c.PartSize = 5<<20, 5<<20 }

// sseOf is the server-side encryption storage reports for key (HEAD, with the SSE-C key when
// given).
func (r *rig) sseOf(key string, ssecKey []byte) (types.ServerSideEncryption, string) {
	r.t.Helper()
	in := &s3.HeadObjectInput{Bucket: aws.String(r.s3.Bucket), Key: aws.String(r.up.Key(key))}
	if ssecKey != nil {
		sum := md5.Sum(ssecKey)
		in.SSECustomerAlgorithm = aws.String("AES256")
		in.SSECustomerKey = aws.String(base64.StdEncoding.EncodeToString(ssecKey))
		in.SSECustomerKeyMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
	}
	h, err := r.up.Client().HeadObject(context.Background(), in)
	if err != nil {
		r.t.Fatalf("head %s: %v", key, err)
	}
	return h.ServerSideEncryption, aws.ToString(h.SSECustomerAlgorithm)
}

// storage.sse: AES256 (SSE-S3) set by srs-offload: a segment and a 100 MB recording (20
// parts) are encrypted, stored byte for byte, verified (MinIO's SSE-S3 ETag is the MD5) and
// purged; the playlist is published.
func TestSSES3MinIO(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigConfig{s3: s3test.MinIO(t), upload: func(c *uploader.Config) {
		multipart(c)
		c.SSE = uploader.SSES3
	}})
	seg, dvr, segBytes, dvrBytes := r.encFiles(100 << 20)
	r.start(0)
	r.enqueue(seg, dvr)
	r.waitAll([]queue.Offload{seg, dvr}, asynq.TaskStateCompleted, 2*time.Minute)
	r.stored(seg.Key, segBytes)
	r.stored(dvr.Key, dvrBytes)
	for _, key := range []string{seg.Key, dvr.Key, seg.PlaylistKey} {
		if sse, _ := r.sseOf(key, nil); sse != types.ServerSideEncryptionAes256 {
			t.Errorf("%s: server-side encryption %q, want AES256", key, sse)
		}
	}
	if obj, _, err := r.up.Stat(context.Background(), dvr.Key); err != nil || !strings.HasSuffix(obj.ETag, "-20") {
		t.Errorf("recording %+v (err %v): want a 20-part multipart ETag", obj, err)
	}
	gone(t, seg.Path)
	gone(t, dvr.Path)
	r.livePlaylist(seg.PlaylistKey, []string{seg.Key})
}

// storedVerifiedPurged checks objects whose ETag is not their MD5 (SSE-KMS, SSE-C): with
// storage.verify auto (the uploader's default) they are proven by checksum, so each task completes,
// its object holds the file byte for byte, and the local file is gone. With md5 verification they
// stayed on disk forever (the ETag never matches).
func (r *rig) storedVerifiedPurged(ps []queue.Offload, want map[string][]byte) {
	r.t.Helper()
	r.waitAll(ps, asynq.TaskStateCompleted, 2*time.Minute)
	for _, p := range ps {
		r.stored(p.Key, want[p.Key])
		gone(r.t, p.Path)
		sum := md5.Sum(want[p.Key])
		if obj, _, _ := r.up.Stat(context.Background(), p.Key); obj.ETag == hex.EncodeToString(sum[:]) {
			r.t.Errorf("%s: ETag %s is the MD5: this storage needs no other verification", p.Key, obj.ETag)
		}
	}
}

// SSE-KMS, from the bucket's default encryption (no srs-offload setting) and set by srs-offload
// (storage.sse: aws:kms with the KMS key): stored encrypted, byte for byte, single PUT and
// multipart (a 100 MB recording, 21 parts). MinIO's SSE-KMS ETag is not the MD5: storage.verify auto proves the bytes by checksum,
// and the files are purged.
func TestSSEKMSMinIOPurged(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		bucket bool // the bucket's default encryption is SSE-KMS
		sse    string
	}{{"bucket default", true, ""}, {"storage.sse aws:kms", false, uploader.SSEKMS}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := s3test.MinIO(t)
			if c.bucket {
				srv.DefaultKMS(t)
			}
			r := newRig(t, rigConfig{s3: srv, upload: func(u *uploader.Config) {
				multipart(u)
				u.SSE = c.sse
				if c.sse != "" {
					u.KMSKeyID = srv.KMSKey
				}
			}})
			seg, dvr, segBytes, dvrBytes := r.encFiles(100<<20 + 345)
			r.start(0)
			r.enqueue(seg, dvr)
			r.storedVerifiedPurged([]queue.Offload{seg, dvr}, map[string][]byte{seg.Key: segBytes, dvr.Key: dvrBytes})
			for _, key := range []string{seg.Key, dvr.Key} {
				if sse, _ := r.sseOf(key, nil); sse != types.ServerSideEncryptionAwsKms {
					t.Errorf("%s: server-side encryption %q, want aws:kms", key, sse)
				}
			}
		})
	}
}

// SSE-C (the key from storage.sse_c_key_env): stored encrypted with the customer key, single PUT
// and multipart (a 100 MB recording, 21 parts; UploadPart carries the key too), and read back byte for byte with it; without
// the key MinIO refuses to show the object. The ETag is not the MD5: storage.verify auto proves the
// bytes by checksum, and the files are purged. The key appears in no log line
// (debug level), no task error and no task payload.
func TestSSECMinIOPurged(t *testing.T) {
	t.Parallel()
	srv := s3test.MinIO(t)
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte('A' + i%26) // printable, so that the raw key could show in a text too
	}
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := newRig(t, rigConfig{s3: srv, upload: func(c *uploader.Config) {
		multipart(c)
		c.SSECKey = key
		c.Log = log
	}})
	r.off.Log, r.opts.Log, r.pm.Log = log, log, log
	seg, dvr, segBytes, dvrBytes := r.encFiles(100<<20 + 345)
	r.start(0)
	r.enqueue(seg, dvr)
	r.storedVerifiedPurged([]queue.Offload{seg, dvr}, map[string][]byte{seg.Key: segBytes, dvr.Key: dvrBytes})
	for _, k := range []string{seg.Key, dvr.Key} {
		if _, alg := r.sseOf(k, key); alg != "AES256" {
			t.Errorf("%s: SSE-C algorithm %q, want AES256", k, alg)
		}
		if _, err := r.s3.Uploader(t, nil).Get(context.Background(), k); err == nil {
			t.Errorf("%s: read without the SSE-C key", k)
		}
	}

	// A wrong key: storage refuses, and the error quotes neither key.
	other := bytes.Repeat([]byte{'z'}, 32)
	wrong := r.s3.Uploader(t, func(c *uploader.Config) { c.SSECKey = other })
	_, _, errStat := wrong.Stat(context.Background(), seg.Key)
	_, errGet := wrong.Get(context.Background(), seg.Key)
	_, errNew := uploader.New(context.Background(), uploader.Config{Bucket: "b", SSECKey: key[:31]})
	if errStat == nil || errGet == nil || errNew == nil {
		t.Fatalf("wrong key: stat %v, get %v; 31-byte key: %v; want errors", errStat, errGet, errNew)
	}
	texts := map[string]string{"log": logs.String(), "stat error": errStat.Error(), "get error": errGet.Error(), "New error": errNew.Error()}
	for _, p := range []queue.Offload{seg, dvr} {
		ti := r.taskInfo(p)
		texts["task error "+p.Key] = ti.LastErr
		texts["task payload "+p.Key] = string(ti.Payload)
	}
	if !strings.Contains(logs.String(), "level=") {
		t.Fatalf("captured no log lines")
	}
	for _, k := range [][]byte{key, other} {
		sum := md5.Sum(k)
		for _, form := range []string{string(k), base64.StdEncoding.EncodeToString(k), hex.EncodeToString(k),
			base64.StdEncoding.EncodeToString(sum[:]), string(k[:16])} {
			for where, text := range texts {
				if strings.Contains(text, form) {
					t.Errorf("the SSE-C key (as %q) is in the %s:\n%s", form, where, text)
				}
			}
		}
	}
}

// lockedBuffer is a log destination for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
