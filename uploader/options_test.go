package uploader_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/srs-offload/srs-offload/internal/s3test"
	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/storage"
	"github.com/srs-offload/srs-offload/uploader"
)

func mustText(t *testing.T, s string) objkey.Template {
	t.Helper()
	v, err := objkey.ParseText(s, []string{"vhost", "app", "stream", "basename"})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// objectOptions is a config using every object option.
func objectOptions(t *testing.T, class string) uploader.ObjectOptions {
	return uploader.ObjectOptions{
		StorageClassHLS: class, StorageClassDVR: class,
		Tags: []uploader.Text{{Name: "app", Template: mustText(t, "{app}")}, {Name: "stream name", Template: mustText(t, "{vhost} {stream}")},
			{Name: "fixed", Template: mustText(t, "live")}},
		Metadata:           []uploader.Text{{Name: "stream", Template: mustText(t, "{app}/{stream}")}, {Name: "file", Template: mustText(t, "{basename}")}},
		ContentDisposition: mustText(t, `attachment; filename="{basename}"`),
	}
}

// Tags, metadata and Content-Disposition are stored with single PUTs and multipart uploads alike,
// filled in from the stream's names and the object's own name; a stream name S3 would refuse in
// a tag (here '?' and '"') is made valid rather than failing the upload.
func TestObjectOptionsStored(t *testing.T) {
	for _, srv := range []*s3test.Server{s3test.Versity(t)} {
		for _, size := range []int{1000, 17 << 20} { // single PUT, multipart (threshold 16 MiB)
			u := srv.Uploader(t, func(c *uploader.Config) { c.Objects = objectOptions(t, "") })
			ctx := storage.WithNames(context.Background(), storage.Names{Vhost: "__defaultVhost__", App: "live", Stream: `cam?1"x`})
			body := bytes.Repeat([]byte{7}, size)
			key := "live/rec-" + strings.Repeat("m", min(size/1000, 2)) + ".flv"
			if _, err := u.Put(ctx, key, bytes.NewReader(body), int64(size), media.Type{Kind: media.Recording, ContentType: "video/x-flv"}, "o1"); err != nil {
				t.Fatalf("%s %d: %v", srv, size, err)
			}
			head, err := u.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			base := key[strings.LastIndexByte(key, '/')+1:]
			if got := aws.ToString(head.ContentDisposition); got != `attachment; filename="`+base+`"` {
				t.Errorf("%s %d: Content-Disposition %q", srv, size, got)
			}
			meta := map[string]string{}
			for k, v := range head.Metadata {
				meta[strings.ToLower(k)] = v
			}
			if meta["stream"] != `live/cam?1"x` || meta["file"] != base || meta["srs-offload-origin"] != "o1" {
				t.Errorf("%s %d: metadata %v", srv, size, meta)
			}
			tags, err := u.Client().GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatalf("%s %d: tagging: %v", srv, size, err)
			}
			got := map[string]string{}
			for _, tag := range tags.TagSet {
				got[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
			}
			want := map[string]string{"app": "live", "stream name": "__defaultVhost__ cam_1_x", "fixed": "live"}
			if len(got) != len(want) {
				t.Errorf("%s %d: tags %v, want %v", srv, size, got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s %d: tag %q = %q, want %q (all: %v)", srv, size, k, got[k], v, got)
				}
			}
		}
	}
}

// A template whose variable is empty for an object leaves that tag or entry out, and segments
// get no Content-Disposition (it is for recordings).
func TestObjectOptionsWithoutNames(t *testing.T) {
	srv := s3test.Versity(t)
	u := srv.Uploader(t, func(c *uploader.Config) { c.Objects = objectOptions(t, "") })
	ctx := context.Background()
	key := "live/seg-1.ts"
	if _, err := u.Put(ctx, key, strings.NewReader("ts"), 2, media.Type{Kind: media.Segment, ContentType: "video/mp2t"}, "o"); err != nil {
		t.Fatal(err)
	}
	head, err := u.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if head.ContentDisposition != nil {
		t.Errorf("segment has Content-Disposition %q", *head.ContentDisposition)
	}
	if _, ok := head.Metadata["stream"]; ok {
		t.Errorf("metadata %v: stream needs {app}, which this upload has not", head.Metadata)
	}
	tags, err := u.Client().GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Key) != "fixed" {
		t.Errorf("tags %v: want only fixed", tags.TagSet)
	}
}

// Storage classes go by kind: HLS media one, recordings another, playlists none (they are
// rewritten every few seconds). gofakes3 stores the class; versitygw reports STANDARD whatever
// was sent.
func TestStorageClassPerKind(t *testing.T) {
	srv := s3test.Fake(t, nil)
	u := srv.Uploader(t, func(c *uploader.Config) {
		c.Objects.StorageClassHLS, c.Objects.StorageClassDVR = "STANDARD_IA", "GLACIER_IR"
	})
	ctx := context.Background()
	for _, c := range []struct {
		key  string
		typ  media.Type
		size int
		want string
	}{
		{"s.ts", media.Type{Kind: media.Segment}, 10, "STANDARD_IA"},
		{"init.mp4", media.Type{Kind: media.Init}, 10, "STANDARD_IA"},
		{"k.key", media.KeyType, 16, "STANDARD_IA"},
		{"r.flv", media.Type{Kind: media.Recording}, 10, "GLACIER_IR"},
		{"big.flv", media.Type{Kind: media.Recording}, 17 << 20, "GLACIER_IR"},
		{"big.ts", media.Type{Kind: media.Segment}, 17 << 20, "STANDARD_IA"},
		{"p.m3u8", media.PlaylistType, 10, ""},
	} {
		if _, err := u.Put(ctx, c.key, bytes.NewReader(make([]byte, c.size)), int64(c.size), c.typ, "o"); err != nil {
			t.Fatal(err)
		}
		head, err := u.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(c.key)})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(head.StorageClass); got != c.want && !(c.want == "" && got == "STANDARD") {
			t.Errorf("%s: storage class %q, want %q", c.key, got, c.want)
		}
	}
}

// headerLog records one request header of every request a server gets, by method and query.
type headerLog struct {
	mu   sync.Mutex
	seen []string
}

func (l *headerLog) wrap(header string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut || r.Method == http.MethodPost {
				l.mu.Lock()
				l.seen = append(l.seen, r.Method+" "+r.URL.RawQuery+" "+header+"="+r.Header.Get(header))
				l.mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (l *headerLog) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.seen, "\n")
}

// acl private (the default) sends no x-amz-acl: buckets with ACLs disabled refuse the header. Any
// other canned ACL is sent with the PUT, and with CreateMultipartUpload.
func TestACLHeader(t *testing.T) {
	for _, acl := range []string{"", "private", "public-read", "bucket-owner-full-control"} {
		var log headerLog
		srv := s3test.Fake(t, log.wrap("X-Amz-Acl"))
		u := srv.Uploader(t, func(c *uploader.Config) { c.Objects.ACL = acl })
		for _, size := range []int{10, 17 << 20} {
			if _, err := u.Put(context.Background(), "r.flv", bytes.NewReader(make([]byte, size)), int64(size), media.Type{Kind: media.Recording}, "o"); err != nil {
				t.Fatal(err)
			}
		}
		want := acl
		if acl == "private" {
			want = ""
		}
		seen := log.all()
		for _, req := range []string{"PUT x-id=PutObject ", "POST uploads= "} { // the single PUT; CreateMultipartUpload
			if !strings.Contains(seen, req+"X-Amz-Acl="+want+"\n") {
				t.Errorf("acl %q: no %q with X-Amz-Acl=%q in\n%s", acl, req, want, seen)
			}
		}
	}
}
