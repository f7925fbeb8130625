package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/srs-offload/srs-offload/settings"
)

// The object options' templates are parsed at config time; a variable not every stored object
// knows, or a broken brace, is a problem naming the template's key.
func TestCompileObjectOptions(t *testing.T) {
	for _, tc := range []struct {
		key    string
		mutate func(c *settings.Config)
	}{
		{"storage.tags.where", func(c *settings.Config) { c.Storage.Tags = map[string]string{"ok": "{app}", "where": "{path}"} }},
		{"storage.metadata.stream", func(c *settings.Config) { c.Storage.Metadata = map[string]string{"stream": "{app"} }},
		{"storage.content_disposition", func(c *settings.Config) { c.Storage.ContentDisposition = `attachment; filename="{url}"` }},
	} {
		c := validConfig(t)
		tc.mutate(&c)
		_, err := compile(c)
		errs, ok := settings.AsErrors(err)
		if !ok || len(errs) != 1 || !errs.Has(tc.key) {
			t.Errorf("%s: %v; want one problem there", tc.key, err)
		}
	}
	c := validConfig(t)
	c.Storage.StorageClass, c.Storage.StorageClassDVR = "STANDARD_IA", "GLACIER_IR"
	c.Storage.Tags = map[string]string{"b": "{stream}", "a": "{vhost}"}
	c.Storage.ContentDisposition = `attachment; filename="{basename}"`
	p, err := compile(c)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	o := p.objects
	if o.StorageClassHLS != "STANDARD_IA" || o.StorageClassDVR != "GLACIER_IR" || len(o.Tags) != 2 || o.Tags[0].Name != "a" ||
		o.ContentDisposition.String() != c.Storage.ContentDisposition || o.ACL != "private" {
		t.Errorf("object options %+v", o)
	}
}

// A recording hooked by SRS is stored with the configured tags, metadata and Content-Disposition,
// filled in from its hook's vhost, app and stream (the worker passes them with the upload), read
// back from versitygw; a multipart one too.
func TestE2EObjectOptions(t *testing.T) {
	root := t.TempDir()
	s := newStack(t, root)
	b, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("  part_size: 5MiB\n"), []byte("  part_size: 5MiB\n"+
		"  tags: {app: \"{app}\", stream: \"{vhost}/{stream}\"}\n"+
		"  metadata: {stream: \"{app}/{stream}\"}\n"+
		"  content_disposition: 'attachment; filename=\"{basename}\"'\n"), 1)
	if err := os.WriteFile(s.config, b, 0o600); err != nil {
		t.Fatal(err)
	}
	serve := s.start("serve")
	var wants []want
	for i, size := range []int{3000, 6 << 20} { // single PUT; multipart (threshold 5 MiB)
		name := fmt.Sprintf("cam.%d.flv", i)
		local := filepath.Join(root, "live", name)
		data := randomBytes(size, uint64(i))
		writeSegment(t, local, data)
		body, _ := json.Marshal(map[string]any{"server_id": "vid-1", "action": "on_dvr", "client_id": "c1", "ip": "127.0.0.1",
			"vhost": "__defaultVhost__", "app": "live", "stream": "cam", "param": "", "cwd": "/usr/local/srs", "file": local,
			"stream_url": "/live/cam", "stream_id": "vid-2"})
		post(t, "http://"+s.listen+"/api/v1/dvrs", body)
		wants = append(wants, want{key: "live/cam/" + name, local: local, data: data})
	}
	s.settle(wants, 30*time.Second)
	ctx := context.Background()
	for _, w := range wants {
		head, err := s.store.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.s3.Bucket), Key: aws.String(w.key)})
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(w.key)
		if got := aws.ToString(head.ContentDisposition); got != `attachment; filename="`+base+`"` {
			t.Errorf("%s: Content-Disposition %q", w.key, got)
		}
		if got := head.Metadata["stream"]; got != "live/cam" {
			t.Errorf("%s: metadata %v", w.key, head.Metadata)
		}
		tags, err := s.store.Client().GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(s.s3.Bucket), Key: aws.String(w.key)})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, tag := range tags.TagSet {
			got[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		if len(got) != 2 || got["app"] != "live" || got["stream"] != "__defaultVhost__/cam" {
			t.Errorf("%s: tags %v", w.key, got)
		}
	}
	serve.stop(t)
}
