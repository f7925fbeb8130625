package uploader

import (
	"context"
	"net/url"
	"path"
	"sort"
	"strings"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/srs-offload/srs-offload/media"
	"github.com/srs-offload/srs-offload/objkey"
	"github.com/srs-offload/srs-offload/storage"
)

// ObjectOptions are written with every object, by single PUT and by multipart upload alike. The
// templates may use {vhost} {app} {stream} (from storage.WithNames) and {basename} (the object's
// own name); a tag or metadata entry whose template names a variable that is empty for an object
// (an upload without stream names) is left out of that object.
type ObjectOptions struct {
	// StorageClassHLS is for HLS segments, init segments and key files, StorageClassDVR for
	// recordings; empty sends none (the bucket's default, STANDARD on AWS). Playlists never get
	// one: they are rewritten every few seconds, and the infrequent-access and archive classes
	// bill a minimum duration for every write.
	StorageClassHLS, StorageClassDVR string
	// Tags are sent as x-amz-tagging, Metadata as x-amz-meta-<name>.
	Tags, Metadata []Text
	// ContentDisposition is for recordings (e.g. attachment; filename="{basename}").
	ContentDisposition objkey.Template
	// ACL is a canned ACL; empty or "private" sends none (private is S3's default, and buckets
	// with ACLs disabled refuse an x-amz-acl header).
	ACL string
}

// Text is a named template (a tag or a metadata entry).
type Text struct {
	Name     string
	Template objkey.Template
}

// apply sets the object options of in, the PutObjectInput of an object stored under full with
// type t.
func (o *ObjectOptions) apply(ctx context.Context, in *s3.PutObjectInput, full string, t media.Type) {
	names := storage.NamesFrom(ctx)
	vars := objkey.Vars{Vhost: names.Vhost, App: names.App, Stream: names.Stream, Basename: path.Base(full)}
	switch t.Kind {
	case media.Segment, media.Init, media.Key:
		in.StorageClass = types.StorageClass(o.StorageClassHLS)
	case media.Recording:
		in.StorageClass = types.StorageClass(o.StorageClassDVR)
		if s, ok := o.ContentDisposition.Fill(vars, headerValue(true)); ok && s != "" {
			in.ContentDisposition = aws.String(s)
		}
	}
	if o.ACL != "" && o.ACL != "private" {
		in.ACL = types.ObjectCannedACL(o.ACL)
	}
	for _, m := range o.Metadata {
		if s, ok := m.Template.Fill(vars, headerValue(false)); ok {
			in.Metadata[m.Name] = s
		}
	}
	if tags := o.tagging(vars); tags != "" {
		in.Tagging = aws.String(tags)
	}
}

// tagging is the x-amz-tagging value: the tags as URL query parameters, in name order, with a
// space as %20 (some servers read '+' literally).
func (o *ObjectOptions) tagging(vars objkey.Vars) string {
	var kv []string
	for _, tag := range o.Tags {
		v, ok := tag.Template.Fill(vars, tagValue)
		if !ok {
			continue
		}
		if r := []rune(v); len(r) > 256 {
			v = string(r[:256])
		}
		kv = append(kv, queryEscape(tag.Name)+"="+queryEscape(v))
	}
	sort.Strings(kv)
	return strings.Join(kv, "&")
}

func queryEscape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// tagValue makes a stream's name a valid S3 tag value: letters, digits, spaces and + - = . _ : / @
// stay; anything else becomes '_' (S3 refuses the whole upload for one bad character).
func tagValue(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == ' ' || strings.ContainsRune("+-=._:/@", r) {
			return r
		}
		return '_'
	}, s)
}

// headerValue makes a stream's name safe in an HTTP header: printable ASCII stays, anything else
// becomes '_', and inside a quoted string (Content-Disposition's filename) '"' and '\' too.
func headerValue(quoted bool) func(string) string {
	return func(s string) string {
		return strings.Map(func(r rune) rune {
			if r < 0x20 || r > 0x7e || (quoted && (r == '"' || r == '\\')) {
				return '_'
			}
			return r
		}, s)
	}
}
